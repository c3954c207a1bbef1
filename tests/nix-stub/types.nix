# Option types as nixpkgs' `lib.types` defines them, for the types our modules and the NixOS
# option declarations in ./nixos use: a name, a `check` on each definition, and a `merge` of
# the definitions ({ file, value }) that survived their priorities.
{ lib }:
let
  inherit (builtins)
    all attrNames concatLists concatStringsSep elem filter head isAttrs isBool isFloat
    isFunction isInt isList isPath isString length toJSON;
  inherit (lib) concatMap showOption unique;

  mkOptionType = attrs: {
    _type = "option-type";
    check = _: true;
    merge = mergeEqualOption;
  } // attrs;

  showValue = v:
    if lib.isDerivation v then "<derivation ${v.name}>"
    else if isFunction v then "<function>"
    else toJSON v;
  showDefs = defs: concatStringsSep ", " (map (d: "${showValue d.value} in `${d.file}'") defs);

  mergeEqualOption = loc: defs:
    let first = head defs;
    in if all (d: d.value == first.value) defs then first.value
    else throw "The option `${showOption loc}' has conflicting definition values: ${showDefs defs}.";

  mergeOneOption = loc: defs:
    if length defs == 1 then (head defs).value
    else throw "The option `${showOption loc}' is defined multiple times: ${showDefs defs}.";

  # One element or attribute merged by `type`, after checking it (as nixpkgs does lazily).
  mergeElement = type: loc: defs:
    let wrong = filter (d: !type.check d.value) defs;
    in if wrong != [ ] then
      throw "A definition for option `${showOption loc}' is not of type `${type.description}'. Definition values: ${showDefs wrong}."
    else type.merge loc defs;

  types = rec {
    inherit mkOptionType;
    anything = mkOptionType {
      name = "anything";
      description = "anything";
      merge = loc: defs:
        if all (d: isAttrs d.value && !lib.isDerivation d.value) defs
        then builtins.foldl' (acc: d: lib.recursiveUpdate acc d.value) { } defs
        else mergeEqualOption loc defs;
    };
    unspecified = anything;
    attrs = mkOptionType {
      name = "attrs";
      description = "attribute set";
      check = isAttrs;
      merge = _loc: defs: builtins.foldl' (acc: d: acc // d.value) { } defs;
    };
    bool = mkOptionType { name = "bool"; description = "boolean"; check = isBool; };
    int = mkOptionType { name = "int"; description = "signed integer"; check = isInt; };
    float = mkOptionType { name = "float"; description = "floating point number"; check = isFloat; };
    number = either int float;
    port = mkOptionType {
      name = "port";
      description = "16 bit unsigned integer";
      check = x: isInt x && x >= 0 && x <= 65535;
    };
    ints.positive = mkOptionType {
      name = "positiveInt";
      description = "positive integer, meaning >0";
      check = x: isInt x && x > 0;
    };
    ints.unsigned = mkOptionType {
      name = "unsignedInt";
      description = "unsigned integer, meaning >=0";
      check = x: isInt x && x >= 0;
    };
    str = mkOptionType { name = "str"; description = "string"; check = isString; };
    nonEmptyStr = mkOptionType {
      name = "nonEmptyStr";
      description = "non-empty string";
      check = x: isString x && builtins.match "[ \t\n]*" x == null;
    };
    strMatching = pattern: mkOptionType {
      name = "strMatching ${toJSON pattern}";
      description = "string matching the pattern ${pattern}";
      check = x: isString x && builtins.match pattern x != null;
    };
    lines = mkOptionType {
      name = "lines";
      description = "strings concatenated with \"\\n\"";
      check = isString;
      merge = _loc: defs: concatStringsSep "\n" (map (d: d.value) defs);
    };
    path = mkOptionType {
      name = "path";
      description = "path";
      check = x: isPath x || lib.isDerivation x || (isString x && builtins.substring 0 1 x == "/");
    };
    package = mkOptionType {
      name = "package";
      description = "package";
      check = x: lib.isDerivation x || isPath x;
      merge = mergeOneOption;
    };
    enum = values: mkOptionType {
      name = "enum";
      description = "one of ${concatStringsSep ", " (map toJSON values)}";
      check = x: elem x values;
    };
    nullOr = type: mkOptionType {
      name = "nullOr";
      description = "null or ${type.description}";
      check = x: x == null || type.check x;
      merge = loc: defs:
        let nulls = filter (d: d.value == null) defs;
        in if nulls == [ ] then type.merge loc defs
        else if length nulls == length defs then null
        else throw "The option `${showOption loc}' is defined both null and not null: ${showDefs defs}.";
    };
    either = a: b: mkOptionType {
      name = "either";
      description = "${a.description} or ${b.description}";
      check = x: a.check x || b.check x;
      merge = loc: defs:
        if all (d: a.check d.value) defs then a.merge loc defs
        else if all (d: b.check d.value) defs then b.merge loc defs
        else mergeOneOption loc defs;
    };
    oneOf = ts: builtins.foldl' either (head ts) (builtins.tail ts);
    listOf = elemType: mkOptionType {
      name = "listOf";
      description = "list of ${elemType.description}";
      check = isList;
      merge = loc: defs:
        concatLists (map (d: builtins.genList (i:
          mergeElement elemType (loc ++ [ "[definition ${toString i}]" ]) [ { inherit (d) file; value = builtins.elemAt d.value i; } ]
        ) (length d.value)) defs);
    };
    attrsOf = elemType: mkOptionType {
      name = "attrsOf";
      description = "attribute set of ${elemType.description}";
      check = isAttrs;
      merge = loc: defs:
        let
          pushed = concatMap (d: map (value: { inherit (d) file; inherit value; }) (lib.pushDownProperties d.value)) defs;
          names = unique (concatMap (d: attrNames d.value) pushed);
          defsOf = name: lib.filterOverrides (concatMap (d:
            if d.value ? ${name}
            then map (x: x // { inherit (d) file; }) (lib.dischargeProperties d.value.${name})
            else [ ]) pushed);
          present = filter (name: defsOf name != [ ]) names;
        in
        lib.genAttrs present (name: mergeElement elemType (loc ++ [ name ]) (map (d: { inherit (d) file value; }) (defsOf name)));
    };
    submoduleWith = { modules, specialArgs ? { } }: mkOptionType {
      name = "submodule";
      description = "submodule";
      check = x: isAttrs x || isFunction x || isPath x;
      merge = loc: defs:
        (lib.evalModules {
          modules = modules ++ map (d: { _file = d.file; imports = [ d.value ]; }) defs;
          specialArgs = specialArgs // lib.optionalAttrs (loc != [ ]) { name = lib.last loc; };
          prefix = loc;
        }).config;
    };
    submodule = modules: submoduleWith { modules = if isList modules then modules else [ modules ]; };
  };
in
types
