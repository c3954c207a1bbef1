# The deck itself. The agent (claude-code) is not in its closure: upgrading the agent must
# neither rebuild nor restart the deck.
{ lib, rustPlatform }:
let
  manifest = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = "sandbox-deck";
  inherit (manifest.package) version;
  src = lib.cleanSource ../.;
  cargoLock.lockFile = ../Cargo.lock;
  # The tests drive tmux, Xvfb and bubblewrap with user namespaces, which the Nix build
  # sandbox does not offer; CI runs them (scripts/test).
  doCheck = false;
  meta = {
    inherit (manifest.package) description;
    license = with lib.licenses; [ mit asl20 ];
    mainProgram = "sandbox-deck";
    platforms = lib.platforms.linux;
  };
}
