# Evaluates NixOS modules the way a system build would, as far as our modules go: the option
# declarations in ./options.nix, the modules given, and the assertions checked at the end.
{ modules, system ? "x86_64-linux" }:
let
  lib = import ../lib.nix;
  pkgs = import ../pkgs.nix { inherit system; hostTools.sandboxDeck = "/nonexistent/sandbox-deck"; };
  evaluated = lib.evalModules {
    modules = [ ./options.nix ] ++ modules;
    specialArgs = { inherit pkgs; };
  };
  failed = builtins.filter (a: !a.assertion) evaluated.config.assertions;
in
evaluated // {
  # What `nixos-rebuild` would accept: every definition declared, every assertion true.
  system =
    if !evaluated.checked then throw "unreachable"
    else if failed != [ ] then throw "Failed assertions:\n${lib.concatMapStringsSep "\n" (a: "- ${a.message}") failed}"
    else evaluated.config;
}
