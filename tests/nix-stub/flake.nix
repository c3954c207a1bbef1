{
  description = "A stub of nixpkgs for checking sandbox-deck's Nix code offline (see pkgs.nix)";

  outputs = { self }:
    let
      lib = import ./lib.nix;
      # tests/nix/check writes host-tools.nix into its copy of this flake: the path of the
      # sandbox-deck binary it built, which the stub's buildRustPackage links.
      hostTools = if builtins.pathExists ./host-tools.nix then import ./host-tools.nix else { };
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ]
        (system: import ./pkgs.nix { inherit system hostTools; });
    };
}
