# The part of nixpkgs' `lib` that sandbox-deck's Nix files and the module system below use.
# Every name is the real one and behaves like it for the inputs we give it; nothing more.
let
  inherit (builtins)
    attrNames concatLists concatStringsSep elem filter foldl' genList head isAttrs
    length listToAttrs mapAttrs tail;
  lib = rec {
  # attrsets
  nameValuePair = name: value: { inherit name value; };
  genAttrs = names: f: listToAttrs (map (n: nameValuePair n (f n)) names);
  optionalAttrs = cond: attrs: if cond then attrs else { };
  attrByPath = path: default: set:
    if path == [ ] then set
    else if isAttrs set && set ? ${head path} then attrByPath (tail path) default set.${head path}
    else default;
  getAttrFromPath = path: set: attrByPath path (throw "no attribute ${concatStringsSep "." path}") set;
  setAttrByPath = path: value:
    if path == [ ] then value else { ${head path} = setAttrByPath (tail path) value; };
  mapAttrsToList = f: set: map (n: f n set.${n}) (attrNames set);
  filterAttrs = pred: set:
    listToAttrs (filter (x: pred x.name x.value) (mapAttrsToList nameValuePair set));
  recursiveUpdate = a: b:
    a // mapAttrs (n: v: if isAttrs v && isAttrs (a.${n} or null) && !(isDerivation v) then recursiveUpdate a.${n} v else v) b;
  isDerivation = x: isAttrs x && (x.type or null) == "derivation";

  # lists and strings
  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  concatMap = f: xs: concatLists (map f xs);
  unique = foldl' (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ];
  last = xs: builtins.elemAt xs (length xs - 1);
  concatMapStringsSep = sep: f: xs: concatStringsSep sep (map f xs);
  inherit concatStringsSep;
  concatStrings = concatStringsSep "";
  concatMapStrings = f: xs: concatStringsSep "" (map f xs);
  optionalString = cond: s: if cond then s else "";
  toList = x: if builtins.isList x then x else [ x ];

  # files and package metadata
  importTOML = path: builtins.fromTOML (builtins.readFile path);
  cleanSource = src: src;
  licenses = {
    mit = { spdxId = "MIT"; };
    asl20 = { spdxId = "Apache-2.0"; };
  };
  platforms.linux = [ "x86_64-linux" "aarch64-linux" ];
  showOption = concatStringsSep ".";
  escapeShellArg = arg: "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString arg)}'";
  escapeShellArgs = concatMapStringsSep " " escapeShellArg;
  makeSearchPath = sub: paths: concatMapStringsSep ":" (p: "${p}/${sub}") paths;
  makeBinPath = makeSearchPath "bin";
  makeLibraryPath = makeSearchPath "lib";
  getExe = drv: "${drv}/bin/${drv.meta.mainProgram or drv.pname or drv.name}";
  versions.majorMinor = v: concatStringsSep "." (genList (i: builtins.elemAt (builtins.splitVersion v) i) 2);

  # the module system (./modules.nix) and its option types (./types.nix)
  inherit (import ./modules.nix { inherit lib; })
    evalModules mkOption mkEnableOption mkPackageOption mkIf mkMerge mkOverride mkDefault
    mkForce literalExpression mdDoc pushDownProperties dischargeProperties filterOverrides;
  types = import ./types.nix { inherit lib; };
  };
in
lib
