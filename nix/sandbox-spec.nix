# What goes into a sandbox: the single source of truth (ARCHITECTURE.md, D1). Every backend
# imports this file; `profile` is the JSON shape `sandbox-deck launch --profile` reads (the
# same shape as the built-in host profile in src/spec.rs, and a test checks they match).
# Chromium is not in `packages`: each backend brings its own wrapper (nix/chromium.nix).
{ pkgs, lib ? pkgs.lib, extraPackages ? [ ] }:
let
  # The agent's userland, as in the seed: what an agent reaches for in a shell.
  packages = with pkgs; [
    bashInteractive
    coreutils
    findutils
    diffutils
    gnused
    gawk
    gnugrep
    gnutar
    gzip
    xz
    unzip
    file
    less
    which
    procps
    git
    gh
    openssh
    nodejs
    bun
    (python3.withPackages (ps: [ ps.pip ]))
    uv
    ripgrep
    fd
    jq
    curl
    gcc
    gnumake
    xclip
  ] ++ extraPackages;

  # Claude in Chrome, forced by managed policy.
  chromiumExtensions = [ "fcoeoabgfenejglbffodgkkbkcdhcgfn" ];

  # Entries of the host's /etc a sandbox reads (names relative to /etc); nothing else of it.
  etc = [
    "ca-certificates"
    "fonts"
    "group"
    "host.conf"
    "hosts"
    "localtime"
    "nsswitch.conf"
    "passwd"
    "resolv.conf"
    "ssl"
    "static"
    "zoneinfo"
  ];

  notice = ''
    You are running inside a sandbox managed by sandbox-deck. Only the project directory is
    shared with the host; your home directory is temporary except for your own ~/.claude. A
    private X display (DISPLAY) with Chromium is available for the browser.'';

  # Prebuilt binaries (npm packages with native parts, downloaded tools) find their libraries
  # through nix-ld, bound at the system's ELF interpreter path.
  nixLdLibraries = with pkgs; [
    stdenv.cc.cc.lib
    zlib
    openssl
    glib
    nss
    nspr
  ];

  userland = pkgs.symlinkJoin {
    name = "sandbox-userland";
    paths = packages;
  };

  profile = {
    name = "nix";
    path = [ "${userland}/bin" ];
    ro_paths = [ "/nix/store" ];
    inherit etc;
    env = {
      # nix-ld hands over to the real loader.
      NIX_LD = pkgs.stdenv.cc.bintools.dynamicLinker;
      NIX_LD_LIBRARY_PATH = lib.makeLibraryPath nixLdLibraries;
      SSL_CERT_FILE = "${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt";
    };
    chromium_extensions = chromiumExtensions;
    inherit notice;
    nix_ld = "${pkgs.nix-ld}/libexec/nix-ld";
  };
in
{
  inherit packages chromiumExtensions etc notice nixLdLibraries userland profile;
  profileFile = pkgs.writeText "sandbox-profile.json" (builtins.toJSON profile);
}
