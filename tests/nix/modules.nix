# Scenarios for the NixOS modules, evaluated by tests/nix/check with the stub's module system.
# `good.<name>` must evaluate to true (each names what it checks); `bad.<name>` must fail to
# evaluate with the error text in `bad.<name>.expect`.
let
  eval = modules: import ../nix-stub/nixos/eval.nix { modules = [ ../../nix/modules/sandbox.nix ../../nix/modules/deck.nix ] ++ modules; };
  names = system: map (p: p.name) system.environment.systemPackages;
  has = list: x: builtins.elem x list;
in
{
  good = {
    sandbox_installs_both_launchers_and_allows_user_namespaces =
      let s = (eval [ { services.claude-sandbox.enable = true; } ]).system;
      in has (names s) "claude-sandbox" && has (names s) "claude-sandbox-no-network"
        && s.security.unprivilegedUsernsClone && s.warnings == [ ];

    network_off_makes_claude_sandbox_pass_no_network =
      let
        s = (eval [ { services.claude-sandbox = { enable = true; network = false; }; } ]).system;
        launcher = builtins.head (builtins.filter (p: p.name == "claude-sandbox") s.environment.systemPackages);
      in builtins.match ".*--no-network.*" launcher.text != null;

    extra_packages_go_into_the_sandbox =
      let
        pkgs = import ../nix-stub/pkgs.nix { };
        s = (eval [ { services.claude-sandbox = { enable = true; bubblewrap.extraPackages = [ pkgs.tmux ]; }; } ]).system;
        launcher = builtins.head s.environment.systemPackages;
      in has (map (p: p.name) launcher.passthru.spec.packages) pkgs.tmux.name;

    a_users_mkForce_wins_over_the_modules_mkDefault =
      let s = (eval [ { services.claude-sandbox.enable = true; security.unprivilegedUsernsClone = (import ../nix-stub/lib.nix).mkForce false; } ]).system;
      in !s.security.unprivilegedUsernsClone;

    apparmor_gives_a_warning =
      let s = (eval [ { services.claude-sandbox.enable = true; security.apparmor.enable = true; } ]).system;
      in builtins.length s.warnings == 1;

    disabled_modules_add_nothing =
      let s = (eval [ ]).system;
      in s.environment.systemPackages == [ ] && s.environment.etc == { } && s.users.users == { };

    deck_writes_only_the_settings_that_were_set =
      let
        s = (eval [ {
          services.sandbox-deck = {
            enable = true;
            users = [ "alice" ];
            settings = {
              sandbox.network = "none";
              ui.image_protocol = "kitty";
              ui.theme.accent = "#ff0000";
              usage.prices."my-model" = { input = 1; output = 2.5; cache_write_5m = 1; cache_write_1h = 2; cache_read = 0.1; };
            };
          };
        } ]).system;
        text = s.environment.etc."sandbox-deck/config.toml".source.text;
        expected = ''
          [sandbox]
          network = "none"
          [ui]
          image_protocol = "kitty"
          [ui.theme]
          accent = "#ff0000"
          [usage.prices.my-model]
          cache_read = 0.100000
          cache_write_1h = 2
          cache_write_5m = 1
          input = 1
          output = 2.500000
        '';
      in
      text == expected && s.users.users.alice.linger && has (names s) "sandbox-deck";
  };

  bad = {
    misspelled_option = {
      config = { services.claude-sandbox.netwrok = false; };
      expect = "The option `services.claude-sandbox.netwrok' does not exist";
    };
    bad_enum = {
      config = { services.sandbox-deck = { enable = true; settings.ui.image_protocol = "ascii"; }; };
      expect = "is not of type `null or one of";
    };
    wrong_type = {
      config = { services.claude-sandbox = { enable = true; network = "yes"; }; };
      expect = "A definition for option `services.claude-sandbox.network' is not of type `boolean'";
    };
    unknown_setting = {
      config = { services.sandbox-deck = { enable = true; settings.ui.colour = "red"; }; };
      expect = "The option `services.sandbox-deck.settings.ui.colour' does not exist";
    };
    user_namespaces_off = {
      config = { services.claude-sandbox.enable = true; security.allowUserNamespaces = false; };
      expect = "needs user namespaces: security.allowUserNamespaces must be true";
    };
    no_backend = {
      config = { services.claude-sandbox = { enable = true; bubblewrap.enable = false; }; };
      expect = "no backend is enabled";
    };
    bad_user_name = {
      config = { services.sandbox-deck = { enable = true; users = [ "Robert'); DROP" ]; }; };
      expect = "is not a valid user name";
    };
  };

  # One bad scenario's system, forced (the check expects this to fail with `expect`).
  evalBad = name: (eval [ (import ./modules.nix).bad.${name}.config ]).system;
}
