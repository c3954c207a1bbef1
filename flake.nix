{
  description = "sandbox-deck: a terminal control center for AI coding agents in sandboxes";

  inputs.nixpkgs.url = "github:nixos/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      packagesFor = pkgs:
        let
          sandbox-deck = pkgs.callPackage ./nix/package.nix { };
          launcher = network: pkgs.callPackage ./nix/backends/bubblewrap.nix { inherit sandbox-deck network; };
        in
        {
          inherit sandbox-deck;
          default = pkgs.callPackage ./nix/wrapped.nix { inherit sandbox-deck; };
          claude-sandbox = launcher true;
          claude-sandbox-no-network = launcher false;
        };
    in
    {
      packages = forAllSystems packagesFor;

      apps = forAllSystems (pkgs:
        let
          packages = self.packages.${pkgs.stdenv.hostPlatform.system};
          app = drv: { type = "app"; program = lib.getExe drv; };
        in
        {
          default = app packages.default;
          claude-sandbox = app packages.claude-sandbox;
          claude-sandbox-no-network = app packages.claude-sandbox-no-network;
        });

      overlays.default = final: _prev: {
        sandbox-deck = (packagesFor final).default;
        claude-sandbox = (packagesFor final).claude-sandbox;
        claude-sandbox-no-network = (packagesFor final).claude-sandbox-no-network;
      };

      nixosModules = {
        # Wrapped in `imports`, so a configuration that imports several of them gets each
        # file once (NixOS deduplicates imported paths).
        sandbox = { imports = [ ./nix/modules/sandbox.nix ]; };
        deck = { imports = [ ./nix/modules/deck.nix ]; };
        default = { imports = [ ./nix/modules/sandbox.nix ./nix/modules/deck.nix ]; };
      };

      # Run everywhere (also by tests/nix/check against the stub nixpkgs): the spec's profile
      # is valid JSON and the launchers are valid bash. With real nixpkgs (it has `testers`),
      # also a NixOS VM test of both modules (nix/tests/vm.nix).
      checks = forAllSystems (pkgs:
        let packages = self.packages.${pkgs.stdenv.hostPlatform.system};
        in
        {
          profile = pkgs.runCommand "sandbox-deck-profile-check" { } ''
            ${lib.getExe pkgs.jq} -e '.name == "nix" and (.chromium_extensions | length) > 0' \
              ${packages.claude-sandbox.passthru.spec.profileFile} >/dev/null
            touch $out
          '';
          launchers = pkgs.runCommand "sandbox-deck-launcher-syntax" { } ''
            for launcher in ${packages.claude-sandbox}/bin/* ${packages.claude-sandbox-no-network}/bin/*; do
              ${pkgs.bash}/bin/bash -n "$launcher"
            done
            touch $out
          '';
        }
        // lib.optionalAttrs (pkgs ? testers && pkgs.testers ? runNixOSTest) {
          vm = pkgs.testers.runNixOSTest (import ./nix/tests/vm.nix { inherit self; });
        });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [
            cargo
            rustc
            clippy
            rustfmt
            tmux
            xorg.xorgserver
            bubblewrap
            nix
            shellcheck
          ];
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-rfc-style);
    };
}
