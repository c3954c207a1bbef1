# A small module system with the semantics of nixpkgs' `lib.evalModules` that sandbox-deck's
# NixOS modules rely on: imports (deduplicated by file), option declarations, definitions
# merged by their option's type, `mkIf` pushed down to each option (so a condition may read
# `config` and is evaluated only when an option below it is), `mkMerge`, priorities
# (`mkDefault`, `mkForce`, option defaults), `apply`, submodules, and the errors NixOS gives
# for an undeclared option, a value of the wrong type and conflicting definitions.
{ lib }:
let
  inherit (builtins)
    attrNames concatLists elem filter foldl' functionArgs head intersectAttrs isAttrs isBool
    isFunction isPath isString length mapAttrs removeAttrs;
  inherit (lib) concatMap showOption unique;

  isType = type: x: isAttrs x && (x._type or null) == type;
  isOption = isType "option";

  mkOption = attrs: attrs // { _type = "option"; };
  mkIf = condition: content: { _type = "if"; inherit condition content; };
  mkMerge = contents: { _type = "merge"; inherit contents; };
  mkOverride = priority: content: { _type = "override"; inherit priority content; };
  # Priorities as in nixpkgs: a plain definition is 100, mkDefault 1000, an option's default 1500.
  plainPriority = 100;
  defaultPriority = 1500;

  # mkMerge, mkIf and mkOverride around an attrset become properties of each attribute, so
  # that nothing but the attribute names is evaluated while walking the tree.
  pushDownProperties = value:
    if isType "merge" value then concatMap pushDownProperties value.contents
    else if isType "if" value then map (mapAttrs (_: mkIf value.condition)) (pushDownProperties value.content)
    else if isType "override" value then map (mapAttrs (_: mkOverride value.priority)) (pushDownProperties value.content)
    else [ value ];

  # A definition's properties resolved: the list of { priority, value } it contributes.
  dischargeProperties = value:
    if isType "merge" value then concatMap dischargeProperties value.contents
    else if isType "if" value then
      if !isBool value.condition then throw "mkIf called with a non-Boolean condition"
      else if value.condition then dischargeProperties value.content
      else [ ]
    else if isType "override" value then map (d: d // { inherit (value) priority; }) (dischargeProperties value.content)
    else [ { priority = plainPriority; inherit value; } ];

  # Only the definitions of the highest priority (lowest number) count.
  filterOverrides = defs:
    let best = foldl' (p: d: if d.priority < p then d.priority else p) 9999 defs;
    in filter (d: d.priority == best) defs;

  showFiles = defs: lib.concatMapStringsSep ", " (d: "`${d.file}'") defs;

  # A module in any of its forms (path, function, attrset) → { key, file, imports, options, config }.
  normalize = args: parentFile: module:
    let
      fromFile = isPath module || isString module;
      file = if fromFile then toString module else parentFile;
      loaded = if fromFile then import module else module;
      called = if isFunction loaded then loaded (intersectAttrs (functionArgs loaded) args) else loaded;
      structured = called ? config || called ? options;
      known = [ "_file" "key" "imports" "options" "config" "meta" ];
      unknown = filter (n: !elem n known) (attrNames called);
    in
    if structured && unknown != [ ] then
      throw "Module `${file}' has an unsupported attribute `${head unknown}'. Put definitions under `config'."
    else {
      key = if fromFile then file else null;
      file = called._file or file;
      imports = called.imports or [ ];
      options = called.options or { };
      config = if structured then called.config or { } else removeAttrs called [ "_file" "key" "imports" "meta" ];
    };

  collect = args: parentFile: modules:
    concatMap (m: let n = normalize args parentFile m; in [ n ] ++ collect args n.file n.imports) modules;

  dedupe = modules:
    (foldl' (acc: m:
      if m.key != null && elem m.key acc.keys then acc
      else { keys = acc.keys ++ [ m.key ]; list = acc.list ++ [ m ]; }
    ) { keys = [ ]; list = [ ]; } modules).list;

  # The declarations of every module merged into one tree whose leaves are options.
  mergeDeclarations = path: decls:
    let leaves = filter (d: isOption d.options) decls;
    in
    if leaves != [ ] then
      if length decls > 1 then
        throw "The option `${showOption path}' is declared more than once, in ${showFiles decls}."
      else (head leaves).options // { loc = path; declarations = map (d: d.file) decls; }
    else
      let names = unique (concatMap (d: attrNames d.options) decls);
      in lib.genAttrs names (name: mergeDeclarations (path ++ [ name ])
        (concatMap (d: if d.options ? ${name} then [ { inherit (d) file; options = d.options.${name}; } ] else [ ]) decls));

  # The value of every option below `options`, from the definitions `defs` ({ file, value }).
  evalTree = path: options: defs:
    let
      pushed = concatMap (d: map (value: { inherit (d) file; inherit value; }) (pushDownProperties d.value)) defs;
      notAttrs = filter (d: !isAttrs d.value) pushed;
      names = unique (concatMap (d: attrNames d.value) pushed);
      undeclared = filter (n: !(options ? ${n})) names;
      definedIn = name: filter (d: d.value ? ${name}) pushed;
    in
    if notAttrs != [ ] then
      throw "The option set `${showOption path}' is defined as a value, not an attribute set, in ${showFiles notAttrs}."
    else if undeclared != [ ] then
      let name = head undeclared;
      in throw "The option `${showOption (path ++ [ name ])}' does not exist. Definition values: in ${showFiles (definedIn name)}."
    else mapAttrs (name: option:
      let sub = map (d: { inherit (d) file; value = d.value.${name}; }) (definedIn name);
      in if isOption option then evalOption (path ++ [ name ]) option sub else evalTree (path ++ [ name ]) option sub
    ) options;

  # Forces the names of every definition in the tree, so a misspelled option anywhere fails
  # even when nothing reads it (NixOS does the same through `_module.check`).
  checkTree = path: options: defs:
    let
      tree = evalTree path options defs;
      pushed = concatMap (d: map (value: { inherit (d) file; inherit value; }) (pushDownProperties d.value)) defs;
    in
    foldl' (ok: name:
      let sub = concatMap (d: if d.value ? ${name} then [ { inherit (d) file; value = d.value.${name}; } ] else [ ]) pushed;
      in builtins.seq ok (if isOption options.${name} then true else checkTree (path ++ [ name ]) options.${name} sub)
    ) true (attrNames (builtins.seq tree options));

  evalOption = path: option: defs:
    let
      discharged = concatMap (d: map (x: x // { inherit (d) file; }) (dischargeProperties d.value)) defs;
      withDefault = discharged ++ lib.optional (option ? default) { priority = defaultPriority; value = option.default; file = "the default"; };
      kept = filterOverrides withDefault;
      type = option.type or lib.types.anything;
      wrong = filter (d: !type.check d.value) kept;
      merged =
        if kept == [ ] then throw "The option `${showOption path}' is used but not defined."
        else if wrong != [ ] then
          throw "A definition for option `${showOption path}' is not of type `${type.description}'. Definition values: in ${showFiles wrong}."
        else type.merge path (map (d: { inherit (d) file value; }) kept);
    in
    if option ? apply then option.apply merged else merged;

  evalModules = { modules, specialArgs ? { }, prefix ? [ ] }:
    let
      args = specialArgs // { inherit lib config options; };
      collected = dedupe (collect args "<unknown file>" modules);
      options = mergeDeclarations prefix (map (m: { inherit (m) file options; }) collected);
      defs = map (m: { inherit (m) file; value = m.config; }) collected;
      config = evalTree prefix options defs;
    in
    {
      inherit config options;
      # true once every definition names a declared option
      checked = checkTree prefix options defs;
    };
in
{
  inherit evalModules mkOption mkIf mkMerge mkOverride pushDownProperties dischargeProperties filterOverrides;
  mkDefault = mkOverride 1000;
  mkForce = mkOverride 50;
  mkEnableOption = name: mkOption {
    type = lib.types.bool;
    default = false;
    example = true;
    description = "Whether to enable ${name}.";
  };
  mkPackageOption = pkgs: name: { default ? [ name ], ... }:
    mkOption {
      type = lib.types.package;
      default = lib.getAttrFromPath (if builtins.isList default then default else [ default ]) pkgs;
      description = "The ${name} package to use.";
    };
  literalExpression = text: { _type = "literalExpression"; inherit text; };
  mdDoc = text: text;
}
