# A NixOS VM with both modules: the launcher starts a real bubblewrap shell sandbox and the
# deck lists it. Needs real nixpkgs and KVM: `nix flake check` on a NixOS/Nix machine with
# network (the offline CI check cannot run it; see README).
{ self }:
{
  name = "sandbox-deck";
  nodes.machine = { ... }: {
    imports = [ self.nixosModules.default ];
    services.claude-sandbox.enable = true;
    services.sandbox-deck = {
      enable = true;
      users = [ "alice" ];
      settings.sandbox.network = "none";
    };
    users.users.alice.isNormalUser = true;
    virtualisation.memorySize = 2048;
  };
  testScript = ''
    machine.wait_for_unit("multi-user.target")
    machine.succeed("test -f /etc/sandbox-deck/config.toml")
    machine.succeed("grep -q 'network = \"none\"' /etc/sandbox-deck/config.toml")
    out = machine.succeed("su - alice -c 'mkdir -p ~/p && claude-sandbox-no-network --shell ~/p -- sh -c \"echo inside-$((6*7)); ls /nix/store >/dev/null\"'")
    assert "inside-42" in out, out
    machine.succeed("su - alice -c 'mkdir -p ~/q && sandbox-deck --json create ~/q --shell -- sleep 600'")
    listed = machine.succeed("su - alice -c 'sandbox-deck --json list'")
    assert '"q"' in listed, listed
    machine.succeed("su - alice -c 'sandbox-deck rm --force q'")
  '';
}
