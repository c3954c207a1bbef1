# The browser inside a sandbox: the stock Chromium of nixpkgs behind a wrapper with the same
# behaviour as the deck's host-side wrapper (its own profile dir per sandbox, no D-Bus
# session, a window that fills the sandbox's display), plus the managed policy that forces
# the spec's extensions. bubblewrap sandboxes get the policy from the deck (it writes it at
# /etc/chromium/policies/managed inside); a NixOS guest can install `policy` under /etc.
{ lib, writeShellApplication, writeText, chromium, spec }:
let
  policy = writeText "sandbox-deck-chromium-policy.json" (builtins.toJSON {
    ExtensionInstallForcelist =
      map (id: "${id};https://clients2.google.com/service/update2/crx") spec.chromiumExtensions;
  });
in
{
  inherit policy;
  wrapper = writeShellApplication {
    name = "chromium";
    runtimeInputs = [ chromium ];
    text = ''
      # A session bus would let a page's helper processes reach the host's user services.
      unset DBUS_SESSION_BUS_ADDRESS
      profile="''${SANDBOX_DECK_CHROMIUM_PROFILE:-$HOME/.config/chromium}"
      mkdir -p "$profile"
      exec chromium \
        --user-data-dir="$profile" \
        --no-first-run \
        --no-default-browser-check \
        --start-maximized \
        --window-position=0,0 \
        "$@"
    '';
  };
}
