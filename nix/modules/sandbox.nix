# services.claude-sandbox: puts the launchers on every user's PATH and makes sure the kernel
# lets unprivileged users create the user namespaces bubblewrap needs.
{ config, lib, pkgs, ... }:
let
  cfg = config.services.claude-sandbox;
  deck = pkgs.callPackage ../package.nix { };
  launcher = name: network: pkgs.callPackage ../backends/bubblewrap.nix {
    inherit name network;
    sandbox-deck = deck;
    inherit (cfg.bubblewrap) extraPackages;
  };
in
{
  options.services.claude-sandbox = {
    enable = lib.mkEnableOption "the claude-sandbox launchers (Claude Code in a sandbox)";
    network = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Whether `claude-sandbox` gives the agent the network (it needs it to reach its API).
        `claude-sandbox-no-network` is installed either way.
      '';
    };
    bubblewrap.enable = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = "Whether to install the bubblewrap launchers (unprivileged user namespaces).";
    };
    bubblewrap.extraPackages = lib.mkOption {
      type = lib.types.listOf lib.types.package;
      default = [ ];
      example = lib.literalExpression "[ pkgs.go pkgs.cargo ]";
      description = "Packages added to what the sandbox holds (nix/sandbox-spec.nix).";
    };
  };

  config = lib.mkIf cfg.enable (lib.mkMerge [
    {
      assertions = [
        {
          assertion = cfg.bubblewrap.enable;
          message = "services.claude-sandbox: no backend is enabled; set services.claude-sandbox.bubblewrap.enable (container and VM backends are not there yet).";
        }
      ];
    }
    (lib.mkIf cfg.bubblewrap.enable {
      environment.systemPackages = [
        (launcher "claude-sandbox" cfg.network)
        (launcher "claude-sandbox-no-network" false)
      ];
      assertions = [
        {
          assertion = config.security.allowUserNamespaces;
          message = "services.claude-sandbox.bubblewrap needs user namespaces: security.allowUserNamespaces must be true.";
        }
      ];
      # Hardened kernels forbid unprivileged user namespaces unless this is set.
      security.unprivilegedUsernsClone = lib.mkDefault true;
      warnings = lib.optional config.security.apparmor.enable
        "services.claude-sandbox: AppArmor is on; if its policy restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns), bwrap fails. Run `sandbox-deck doctor` to check.";
    })
  ]);
}
