# `sandbox-deck` with the host tools it drives on its PATH (tmux, Xvfb, bubblewrap, and what
# doctor and the tests of a running deck use), so `nix run` works on any Linux with Nix.
{ lib, writeShellApplication, sandbox-deck, tmux, xorg, bubblewrap, util-linux, procps }:
writeShellApplication {
  name = "sandbox-deck";
  runtimeInputs = [
    sandbox-deck
    tmux
    xorg.xorgserver
    xorg.xdpyinfo
    bubblewrap
    util-linux
    procps
  ];
  text = ''
    exec ${lib.getExe sandbox-deck} "$@"
  '';
  meta = sandbox-deck.meta // { mainProgram = "sandbox-deck"; };
}
