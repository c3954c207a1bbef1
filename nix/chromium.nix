# The browser inside a sandbox: nixpkgs' Chromium behind the deck's own wrapper
# (assets/chromium-wrapper.sh, the one text for every backend: its own profile dir per
# sandbox, no D-Bus session, a window that fills the sandbox's display, Chromium's sandbox on),
# plus the managed policy that forces the spec's extensions. A bubblewrap sandbox gets both
# from the deck (the launcher puts this Chromium on the deck's PATH; the deck writes the policy
# at /etc/chromium/policies/managed inside); a NixOS guest installs `wrapper` and `policy`.
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
    text = ''
      export SANDBOX_DECK_BROWSER="''${SANDBOX_DECK_BROWSER:-${lib.getExe chromium}}"
      # shellcheck source=/dev/null
      . ${../assets/chromium-wrapper.sh}
    '';
  };
}
