# A stub of nixpkgs' package set, for checking sandbox-deck's Nix code on a machine without
# nixpkgs or network (../../tests/nix/check). It has only what our files use, under the real
# attribute names: the builders (writeShellApplication with nixpkgs' text layout,
# writeTextFile, writeText, symlinkJoin, runCommand, callPackage, mkShell, formats.toml,
# rustPlatform.buildRustPackage) and packages as derivations that link the host's own
# binaries, so built launchers really run here. Builders run on the host: builds need
# `sandbox = false`. Checked by hand against the nixpkgs manual; keep it short.
{ system ? builtins.currentSystem, hostTools ? { } }:
let
  lib = import ./lib.nix;
  hostPath = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

  stubDerivation = { name, script, passthru ? { }, meta ? { }, ... }@args:
    let
      drv = derivation ({
        inherit name system;
        builder = "/bin/sh";
        args = [ "-c" script ];
        PATH = hostPath;
      } // removeAttrs args [ "name" "script" "passthru" "meta" ]);
    in
    drv // passthru // { inherit meta passthru; };

  # A package made of the host's binaries of these names (absent ones are skipped), linked:
  # for what runs on the host (builders, launchers, the deck's own tools).
  hostPackage = pname: bins: extra: stubDerivation ({
    name = "${pname}-host-stub";
    inherit pname;
    script = ''
      mkdir -p "$out/bin"
      for b in ${toString bins}; do
        if p=$(command -v "$b"); then ln -s "$p" "$out/bin/$b"; fi
      done
    '' + (extra.script or "");
    meta.mainProgram = if bins == [ ] then pname else builtins.head bins;
  } // removeAttrs extra [ "script" ]);

  # A package that runs inside a sandbox, where only /nix/store is visible: the shell and
  # core tools are applets of the host's static busybox (busybox-static), copied into the
  # store; other binaries are copied so that they are found on PATH (they need the host's
  # libraries to run, which a sandbox of the Nix profile does not have).
  storePackage = pname: { applets ? [ ], bins ? [ ] }: stubDerivation {
    name = "${pname}-store-stub";
    inherit pname;
    script = ''
      mkdir -p "$out/bin"
      ${lib.optionalString (applets != [ ]) ''
        cp /bin/busybox "$out/bin/busybox"
        for a in ${toString applets}; do ln -s busybox "$out/bin/$a"; done
      ''}
      for b in ${toString bins}; do
        if p=$(command -v "$b"); then cp -L "$p" "$out/bin/$b"; fi
      done
    '';
    meta.mainProgram = builtins.head (applets ++ bins);
  };

  writeTextFile = { name, text, executable ? false, destination ? "", checkPhase ? "", meta ? { }, passthru ? { }, ... }:
    stubDerivation {
      inherit name text meta passthru;
      passAsFile = [ "text" ];
      script = ''
        target="$out${destination}"
        mkdir -p "$(dirname "$target")"
        cat "$textPath" > "$target"
        ${lib.optionalString executable ''chmod +x "$target"''}
        ${checkPhase}
      '';
    };

  pkgs = rec {
    inherit lib system;
    stdenv = {
      hostPlatform = { inherit system; isLinux = true; };
      cc = {
        cc.lib = hostPackage "gcc-lib" [ ] { };
        bintools.dynamicLinker =
          if system == "aarch64-linux" then "/lib/ld-linux-aarch64.so.1" else "/lib64/ld-linux-x86-64.so.2";
      };
    };
    runtimeShell = "${bash}/bin/bash";

    callPackage = fn: overrides:
      let f = if builtins.isFunction fn then fn else import fn;
      in f (builtins.intersectAttrs (builtins.functionArgs f) (pkgs // { inherit pkgs; }) // overrides);

    inherit writeTextFile;
    writeText = name: text: writeTextFile { inherit name text; };
    writeShellApplication = { name, text, runtimeInputs ? [ ], meta ? { }, passthru ? { }, ... }:
      writeTextFile {
        inherit name meta passthru;
        executable = true;
        destination = "/bin/${name}";
        text = ''
          #!${runtimeShell}
          set -o errexit
          set -o nounset
          set -o pipefail
        '' + lib.optionalString (runtimeInputs != [ ]) ''

          export PATH="${lib.makeBinPath runtimeInputs}:$PATH"
        '' + ''

          ${text}
        '';
        # nixpkgs also runs shellcheck here; tests/nix/check runs it on the text instead.
        checkPhase = ''${runtimeShell} -n "$target"'';
      };
    symlinkJoin = { name, paths, postBuild ? "", passthru ? { }, meta ? { } }:
      stubDerivation {
        inherit name passthru meta;
        script = ''
          mkdir -p "$out"
          for p in ${toString paths}; do cp -rs --no-preserve=mode -f "$p/." "$out/"; done
          ${postBuild}
        '';
      };
    runCommand = name: env: script: stubDerivation (env // { inherit name script; });
    mkShell = { packages ? [ ], ... }: stubDerivation {
      name = "nix-shell";
      script = "echo ${toString packages} > $out";
    };
    formats.toml = { }: {
      type = lib.types.anything;
      generate = name: value: writeText name (toTOML value);
    };
    rustPlatform.buildRustPackage = { pname, version, meta ? { }, ... }:
      if hostTools ? sandboxDeck then
        stubDerivation {
          name = "${pname}-${version}";
          inherit pname version meta;
          script = ''mkdir -p "$out/bin"; ln -s ${hostTools.sandboxDeck} "$out/bin/sandbox-deck"'';
        }
      else throw "the stub builds no Rust: pass hostTools.sandboxDeck (a built sandbox-deck binary)";

    # packages, by their nixpkgs names
    bash = hostPackage "bash" [ "bash" "sh" ] { };
    bashInteractive = storePackage "bash-interactive" { applets = [ "sh" "bash" ]; };
    coreutils = storePackage "coreutils" { applets = [ "ls" "cat" "cp" "mv" "rm" "mkdir" "ln" "chmod" "echo" "env" "head" "tail" "sort" "uniq" "wc" "tr" "cut" "date" "id" "printf" "sleep" "touch" "basename" "dirname" "readlink" "realpath" "mktemp" "tee" "true" "false" "test" "stat" "du" "df" ]; };
    findutils = storePackage "findutils" { applets = [ "find" "xargs" ]; };
    diffutils = storePackage "diffutils" { applets = [ "diff" "cmp" ]; };
    gnused = storePackage "gnused" { applets = [ "sed" ]; };
    gawk = storePackage "gawk" { applets = [ "awk" ]; };
    gnugrep = storePackage "gnugrep" { applets = [ "grep" ]; };
    gnutar = storePackage "gnutar" { applets = [ "tar" ]; };
    gzip = storePackage "gzip" { applets = [ "gzip" ]; };
    xz = storePackage "xz" { applets = [ "xz" ]; };
    unzip = storePackage "unzip" { applets = [ "unzip" ]; };
    file = storePackage "file" { bins = [ "file" ]; };
    less = storePackage "less" { applets = [ "less" ]; };
    which = storePackage "which" { applets = [ "which" ]; };
    procps = storePackage "procps" { applets = [ "ps" "pgrep" ]; };
    util-linux = hostPackage "util-linux" [ "setpriv" "script" "unshare" "nsenter" ] { };
    git = storePackage "git" { bins = [ "git" ]; };
    gh = storePackage "gh" { bins = [ "gh" ]; };
    openssh = storePackage "openssh" { bins = [ "ssh" "scp" "ssh-keygen" ]; };
    nodejs = storePackage "nodejs" { bins = [ "node" ]; };
    bun = storePackage "bun" { bins = [ "bun" ]; };
    python3 = storePackage "python3" { bins = [ "python3" ]; } // { withPackages = _: python3; };
    uv = storePackage "uv" { bins = [ "uv" ]; };
    ripgrep = storePackage "ripgrep" { bins = [ "rg" ]; };
    fd = storePackage "fd" { bins = [ "fd" ]; };
    jq = storePackage "jq" { bins = [ "jq" ]; };
    curl = storePackage "curl" { bins = [ "curl" ]; };
    gcc = storePackage "gcc" { bins = [ "gcc" ]; };
    gnumake = storePackage "gnumake" { bins = [ "make" ]; };
    xclip = storePackage "xclip" { bins = [ "xclip" ]; };
    tmux = hostPackage "tmux" [ "tmux" ] { };
    bubblewrap = hostPackage "bubblewrap" [ "bwrap" ] { };
    # Debian's /usr/bin/chromium is a script; its copy is found in the store (so the deck
    # offers a browser and writes its policy) but cannot start in a Nix-profile sandbox here.
    chromium = storePackage "chromium" { bins = [ "chromium" ]; };
    xorg = {
      xorgserver = hostPackage "xorg-server" [ "Xvfb" ] { };
      xdpyinfo = hostPackage "xdpyinfo" [ "xdpyinfo" ] { };
    };
    cacert = hostPackage "cacert" [ ] {
      script = ''
        mkdir -p "$out/etc/ssl/certs"
        ln -s /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/ca-bundle.crt"
      '';
    };
    # nix-ld hands programs to the real loader; the host's own loader stands in for it here.
    nix-ld = hostPackage "nix-ld" [ ] {
      script = ''
        mkdir -p "$out/libexec"
        ln -s ${stdenv.cc.bintools.dynamicLinker} "$out/libexec/nix-ld"
      '';
    };
    zlib = hostPackage "zlib" [ ] { };
    openssl = hostPackage "openssl" [ ] { };
    glib = hostPackage "glib" [ ] { };
    nss = hostPackage "nss" [ ] { };
    nspr = hostPackage "nspr" [ ] { };
    cargo = hostPackage "cargo" [ "cargo" ] { };
    rustc = hostPackage "rustc" [ "rustc" ] { };
    clippy = hostPackage "clippy" [ "cargo-clippy" ] { };
    rustfmt = hostPackage "rustfmt" [ "rustfmt" ] { };
    nix = hostPackage "nix" [ "nix" ] { };
    shellcheck = hostPackage "shellcheck" [ "shellcheck" ] { };
    nixfmt-rfc-style = hostPackage "nixfmt" [ "nixfmt" ] { };
  };

  # TOML for the nested tables of a config file (nixpkgs uses remarshal for this).
  toTOML = value:
    let
      isTable = v: builtins.isAttrs v;
      scalar = v:
        if builtins.isString v then builtins.toJSON v
        else if builtins.isBool v then (if v then "true" else "false")
        else if builtins.isList v then "[${lib.concatMapStringsSep ", " scalar v}]"
        else toString v;
      quoteKey = k: if builtins.match "[A-Za-z0-9_-]+" k != null then k else builtins.toJSON k;
      table = path: t:
        let
          names = builtins.attrNames t;
          plain = builtins.filter (n: !isTable t.${n}) names;
          nested = builtins.filter (n: isTable t.${n}) names;
          header = lib.optionalString (path != [ ] && plain != [ ]) "[${lib.concatMapStringsSep "." quoteKey path}]\n";
        in
        header
        + lib.concatMapStrings (n: "${quoteKey n} = ${scalar t.${n}}\n") plain
        + lib.concatMapStrings (n: table (path ++ [ n ]) t.${n}) nested;
    in
    table [ ] value;
in
pkgs
