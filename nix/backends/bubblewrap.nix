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
  spec = import ../sandbox-spec.nix { inherit pkgs lib extraPackages; };
  browser = import ../chromium.nix {
    inherit lib writeShellApplication chromium spec;
    inherit (pkgs) writeText;
  };
in
writeShellApplication {
  inherit name;
  # The deck finds the browser on its PATH and shows it inside behind its own wrapper.
  runtimeInputs = [ sandbox-deck chromium ];
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
