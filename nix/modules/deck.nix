# services.sandbox-deck: installs the control center and writes its system-wide config
# (/etc/sandbox-deck/config.toml, read under each user's own ~/.config/sandbox-deck/config.toml).
# The options of `settings` are made from assets/default-config.toml, so they can never drift
# from the keys the deck knows; a key nobody set is left out of the file.
{ config, lib, pkgs, ... }:
let
  cfg = config.services.sandbox-deck;
  inherit (lib) types;
  toml = pkgs.formats.toml { };
  defaults = lib.importTOML ../../assets/default-config.toml;

  # Keys whose strings come from a fixed set (the Rust enums behind them).
  enums = {
    "sandbox.backend" = [ "bubblewrap" "container" "vm" ];
    "ui.image_protocol" = [ "auto" "kitty" "sixel" "iterm2" "halfblocks" ];
    "usage.cost_mode" = [ "calculate" "display" "auto" ];
  };
  # Tables whose keys are the user's (model names), not ours.
  openTables = {
    "usage.prices" = types.attrsOf (types.attrsOf types.number);
  };

  typeOfDefault = key: value:
    if enums ? ${key} then types.enum enums.${key}
    else if builtins.isBool value then types.bool
    else if builtins.isInt value then types.int
    else if builtins.isFloat value then types.number
    else if builtins.isString value then types.str
    else if builtins.isList value then types.listOf types.str
    else types.anything;

  settingOptions = path: table: lib.genAttrs (builtins.attrNames table) (name:
    let
      key = lib.concatStringsSep "." (path ++ [ name ]);
      value = table.${name};
    in
    if openTables ? ${key} then
      lib.mkOption { type = types.nullOr openTables.${key}; default = null; description = "`${key}` (see assets/default-config.toml)."; }
    else if builtins.isAttrs value then
      lib.mkOption { type = types.submodule { options = settingOptions (path ++ [ name ]) value; }; default = { }; description = "The `[${key}]` table."; }
    else
      lib.mkOption {
        type = types.nullOr (typeOfDefault key value);
        default = null;
        description = "`${key}`; unset keeps the deck's default, ${builtins.toJSON value}.";
      });

  # Only what was set: nulls and tables left empty are dropped.
  prune = table: lib.filterAttrs (_: v: v != null && v != { })
    (builtins.mapAttrs (_: v: if builtins.isAttrs v && !lib.isDerivation v then prune v else v) table);
in
{
  options.services.sandbox-deck = {
    enable = lib.mkEnableOption "sandbox-deck, the control center for AI coding agents in sandboxes";
    package = lib.mkOption {
      type = types.package;
      default = pkgs.callPackage ../wrapped.nix { sandbox-deck = pkgs.callPackage ../package.nix { }; };
      defaultText = lib.literalExpression "sandbox-deck with tmux, Xvfb and bubblewrap on its PATH";
      description = "The sandbox-deck package to install.";
    };
    users = lib.mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "alice" ];
      description = ''
        Users who run agents with the deck. Lingering is enabled for them, so their systemd
        user manager, and with it their sandboxes, outlive the SSH session that started them.
      '';
    };
    settings = lib.mkOption {
      type = types.submodule { options = settingOptions [ ] defaults; };
      default = { };
      example = lib.literalExpression ''{ sandbox.network = "none"; ui.mouse = true; }'';
      description = "System-wide defaults written to /etc/sandbox-deck/config.toml.";
    };
  };

  config = lib.mkIf cfg.enable {
    environment.systemPackages = [ cfg.package ];
    environment.etc."sandbox-deck/config.toml".source = toml.generate "sandbox-deck-config.toml" (prune cfg.settings);
    users.users = lib.genAttrs cfg.users (_: { linger = true; });
    assertions = map (user: {
      assertion = builtins.match "[a-z_][a-z0-9_-]*[$]?" user != null;
      message = "services.sandbox-deck.users: `${user}` is not a valid user name.";
    }) cfg.users;
  };
}
