# The bubblewrap launcher `claude-sandbox`: the spec's closure and its profile, and a script
# that hands everything to `sandbox-deck launch bubblewrap`, which builds the bwrap argv
# (the policy lives in typed, tested Rust: src/backend/bubblewrap.rs). Flags pass through:
# `--shell`, `--gh-token`, a project dir, `-- claude args`.
{
  lib,
  pkgs,
  writeShellApplication,
  chromium,
  sandbox-deck,
  network ? true,
  name ? if network then "claude-sandbox" else "claude-sandbox-no-network",
  extraPackages ? [ ],
}:
let
  spec = import ../sandbox-spec.nix {
    inherit pkgs lib;
    extraPackages = extraPackages ++ [ browser.wrapper ];
  };
  browser = import ../chromium.nix {
    inherit lib writeShellApplication chromium;
    inherit (pkgs) writeText;
    spec = import ../sandbox-spec.nix { inherit pkgs lib; };
  };
in
writeShellApplication {
  inherit name;
  runtimeInputs = [ sandbox-deck ];
  text = ''
    exec sandbox-deck launch bubblewrap --profile ${spec.profileFile}${lib.optionalString (!network) " --no-network"} "$@"
  '';
  passthru = {
    inherit spec browser;
  };
  meta = {
    description = "Claude Code in a bubblewrap sandbox${lib.optionalString (!network) ", without network"}";
    mainProgram = name;
    platforms = lib.platforms.linux;
  };
}
