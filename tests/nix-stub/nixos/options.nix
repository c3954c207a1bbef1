# Declarations of the NixOS options that sandbox-deck's modules set or read, with the names,
# types and defaults NixOS gives them (nixos/modules: config/system-path.nix, system/etc/etc.nix,
# config/users-groups.nix, system/boot/systemd/user.nix, security/misc.nix,
# security/apparmor.nix, misc/assertions.nix). Only these; keep them in step by hand.
{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
      description = "Conditions that must hold, with the message shown when one does not.";
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Messages printed when the system is built.";
    };
    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
      description = "Packages installed in the system profile.";
    };
    environment.etc = mkOption {
      type = types.attrsOf (types.submodule ({ name, ... }: {
        options = {
          enable = mkOption { type = types.bool; default = true; description = "Whether the file is generated."; };
          target = mkOption { type = types.str; default = name; description = "Name under /etc."; };
          text = mkOption { type = types.nullOr types.lines; default = null; description = "The file's text."; };
          source = mkOption { type = types.path; description = "The file's source."; };
          mode = mkOption { type = types.str; default = "symlink"; description = "A mode, or a symlink."; };
        };
      }));
      default = { };
      description = "Files placed under /etc.";
    };
    users.users = mkOption {
      type = types.attrsOf (types.submodule ({ name, ... }: {
        options = {
          name = mkOption { type = types.str; default = name; description = "The user's name."; };
          isNormalUser = mkOption { type = types.bool; default = false; description = "A normal user."; };
          linger = mkOption { type = types.bool; default = false; description = "Whether the user's systemd manager outlives their sessions."; };
          extraGroups = mkOption { type = types.listOf types.str; default = [ ]; description = "Groups."; };
        };
      }));
      default = { };
      description = "User accounts.";
    };
    systemd.user.services = mkOption {
      type = types.attrsOf (types.submodule {
        options = {
          enable = mkOption { type = types.bool; default = true; description = "Whether the unit is installed."; };
          description = mkOption { type = types.str; default = ""; description = "Unit description."; };
          wantedBy = mkOption { type = types.listOf types.str; default = [ ]; description = "Targets that want it."; };
          after = mkOption { type = types.listOf types.str; default = [ ]; description = "Units it starts after."; };
          path = mkOption { type = types.listOf types.package; default = [ ]; description = "Packages on its PATH."; };
          environment = mkOption { type = types.attrsOf types.str; default = { }; description = "Its environment."; };
          serviceConfig = mkOption { type = types.attrsOf types.unspecified; default = { }; description = "[Service] settings."; };
          unitConfig = mkOption { type = types.attrsOf types.unspecified; default = { }; description = "[Unit] settings."; };
        };
      });
      default = { };
      description = "systemd user units.";
    };
    security.allowUserNamespaces = mkOption {
      type = types.bool;
      default = true;
      description = "Whether processes may create user namespaces.";
    };
    security.unprivilegedUsernsClone = mkOption {
      type = types.bool;
      default = false;
      description = "Whether unprivileged users may create user namespaces on kernels that restrict it.";
    };
    security.apparmor.enable = mkOption {
      type = types.bool;
      default = false;
      description = "Whether AppArmor is enabled.";
    };
  };
}
