//! No import circle between the modules of `src/` (issue 11): a newcomer reads the layers
//! from the file names only if no module needs one that needs it back.
//!
//! What is checked, and at which granularity:
//! - **Between top-level modules** (`src/<top>.rs` or `src/<top>/`): every reference from
//!   one to another (`use crate::…`, an inline `crate::…` path, `super::…` that leaves the
//!   module) is an edge; the graph must have no cycle.
//! - **Inside a directory module, at every depth** (`src/<top>/`, `src/<top>/<sub>/`, …): its
//!   direct submodules (`<sub>.rs` or `<sub>/`, deeper files folded into `<sub>`) and its
//!   `mod.rs` are the nodes.
//!   A submodule may use what `mod.rs` defines, and `mod.rs` declares and re-exports its
//!   submodules, so edges from `mod.rs` down to a submodule are not counted: what must not
//!   happen is two siblings needing each other (directly or through others). A path through a
//!   re-export (`crate::usage::Report`, re-exported from `usage/report.rs`) counts as an edge
//!   to the submodule that defines it.
//!
//! Test code is left out (`#[cfg(test)]` items, `tests` modules): a test may use anything.
//! Comments and string literals are left out too. Only this crate's own paths count, so what
//! is reached without naming a path is not seen: a method of a type whose `impl` blocks are
//! spread over several files (`Deck` in `engine/*`), or a name brought in by a glob import.
//! Known circles, each with the part of issue 11 that removes it, are in [`KNOWN_CYCLES`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Circles known when this check was written, each to be removed by the issue that owns its
/// files: (scope, one of its modules, why). A circle listed here is reported, not failed on;
/// one that grows (a module more) or a new one fails. Empty is the goal.
const KNOWN_CYCLES: &[(&str, &[&str], &str)] = &[];

#[test]
fn no_module_in_src_needs_one_that_needs_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = check(&src);
    let (known, new): (Vec<_>, Vec<_>) = found.into_iter().partition(|c| {
        KNOWN_CYCLES.iter().any(|(scope, members, _)| {
            c.scope == *scope && c.members.iter().all(|m| members.contains(&m.as_str()))
        })
    });
    for cycle in &known {
        eprintln!("known import circle (to remove): {cycle}");
    }
    for (scope, members, _) in KNOWN_CYCLES {
        let gone = !known
            .iter()
            .any(|c| c.scope == *scope && c.members.iter().any(|m| members.contains(&m.as_str())));
        if gone {
            eprintln!("no longer found, remove it from KNOWN_CYCLES: {scope}: {members:?}");
        }
    }
    assert!(
        new.is_empty(),
        "import circles in src/:\n{}",
        new.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_planted_circle_between_top_level_modules_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    write(
        src,
        "lib.rs",
        "pub mod alpha;\npub mod beta;\npub mod gamma;\n",
    );
    write(src, "alpha.rs", "use crate::beta::B;\npub struct A;\n");
    // The way back goes through a re-export, an inline path and a nested use group.
    write(src, "beta/mod.rs", "pub mod inner;\npub use inner::B;\n");
    write(
        src,
        "beta/inner.rs",
        "use crate::{gamma::{self, G}};\npub struct B;\nfn f() -> G { gamma::g() }\n",
    );
    write(
        src,
        "gamma.rs",
        "pub struct G;\npub fn g() -> G { let _ = crate::alpha::A; G }\n",
    );
    let found = check(src);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].scope, "crate");
    assert_eq!(found[0].members, ["alpha", "beta", "gamma"]);
    let text = found[0].to_string();
    assert!(text.contains("beta -> gamma (beta/inner.rs:1)"), "{text}");
}

#[test]
fn a_planted_circle_between_siblings_is_found_and_mod_rs_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    write(src, "lib.rs", "pub mod usage;\n");
    write(
        src,
        "usage/mod.rs",
        "pub mod report;\npub mod blocks;\npub mod store;\n\
         pub use report::Totals;\npub struct Tokens;\nfn f() { store::open(); }\n",
    );
    write(
        src,
        "usage/report.rs",
        "pub struct Totals;\nfn f() -> super::blocks::Block { todo!() }\n",
    );
    // `super::Totals` is report's, through the re-export in mod.rs.
    write(
        src,
        "usage/blocks.rs",
        "use super::{Tokens, Totals};\npub struct Block;\n",
    );
    write(
        src,
        "usage/store.rs",
        "use super::Tokens;\npub fn open() {}\n",
    );
    let found = check(src);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].scope, "usage");
    assert_eq!(found[0].members, ["usage::blocks", "usage::report"]);
}

#[test]
fn a_planted_circle_two_levels_down_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    write(src, "lib.rs", "pub mod tui;\n");
    write(src, "tui/mod.rs", "pub mod update;\npub mod state;\n");
    write(src, "tui/state.rs", "pub struct State;\n");
    write(src, "tui/update/mod.rs", "mod table;\nmod form;\n");
    // Both only need their parent's siblings and each other: the circle is one level down.
    write(
        src,
        "tui/update/table.rs",
        "use crate::tui::state::State;\nuse super::form::open;\npub fn draw() {}\n",
    );
    write(
        src,
        "tui/update/form.rs",
        "pub fn open() { super::table::draw() }\n",
    );
    let found = check(src);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].scope, "tui::update");
    assert_eq!(
        found[0].members,
        ["tui::update::form", "tui::update::table"]
    );
}

#[test]
fn comments_strings_and_test_code_are_not_imports() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    write(src, "lib.rs", "pub mod alpha;\npub mod beta;\n");
    write(src, "alpha.rs", "use crate::beta::B;\npub struct A;\n");
    write(
        src,
        "beta.rs",
        r####"pub struct B;
// crate::alpha::A in a comment
/* crate::alpha::A /* nested */ crate::alpha::A */
const S: &str = "crate::alpha::A \" crate::alpha::A";
const R: &str = r#"crate::alpha::A "quoted" "#;
const C: char = '"';
fn life<'a>(x: &'a [u8; 2]) -> &'a [u8; 2] { x }
#[cfg(test)]
fn helper() -> [u8; 1] { let _ = crate::alpha::A; [0] }
#[cfg(test)]
mod tests {
    use crate::alpha::A;
    fn t() { let _ = "}"; let _ = crate::alpha::A; }
}
"####,
    );
    assert!(check(src).is_empty());
}

fn write(src: &Path, file: &str, text: &str) {
    let path = src.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// One strongly connected set of modules: each needs the others.
#[derive(Debug)]
struct Cycle {
    /// `crate` for top-level modules, else the directory module whose submodules these are.
    scope: String,
    members: Vec<String>,
    /// The edges among the members, each with the first place it is made.
    edges: Vec<(String, String, String)>,
}

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "in {}: {}", self.scope, self.members.join(", "))?;
        for (from, to, place) in &self.edges {
            writeln!(f, "  {from} -> {to} ({place})")?;
        }
        Ok(())
    }
}

/// A module path (`["usage", "store"]`), the crate root being empty.
type ModPath = Vec<String>;

/// Node → node it needs → where it first does.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

struct SourceFile {
    module: ModPath,
    /// Relative to `src/`, for the report.
    name: String,
    tokens: Vec<(Token, usize)>,
}

/// Every import circle under `src`, at the granularity described at the top.
fn check(src: &Path) -> Vec<Cycle> {
    let files = load(src);
    let modules: BTreeSet<ModPath> = files.iter().map(|f| f.module.clone()).collect();
    let reexports = reexports(&files, &modules);
    // By scope (`crate`, or the module whose children these are): its graph.
    let mut graphs: BTreeMap<String, Graph> = BTreeMap::new();
    for file in &files {
        let from = &file.module;
        if from.is_empty() {
            continue;
        }
        for (path, line) in paths(&file.tokens) {
            let Some(to) = resolve(from, &path, &modules, &reexports) else {
                continue;
            };
            let shared = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            // Inside itself, or a module's own submodule (`mod.rs` down): not counted.
            if shared == from.len() {
                continue;
            }
            let scope = if shared == 0 {
                String::from("crate")
            } else {
                from[..shared].join("::")
            };
            // Up to the scope's own `mod.rs`, or across to a sibling (deeper files folded).
            let target = &to[..to.len().min(shared + 1)];
            graphs
                .entry(scope)
                .or_default()
                .entry(from[..=shared].join("::"))
                .or_default()
                .entry(target.join("::"))
                .or_insert_with(|| format!("{}:{line}", file.name));
        }
    }
    graphs
        .iter()
        .flat_map(|(scope, graph)| cycles(scope, graph))
        .collect()
}

fn load(src: &Path) -> Vec<SourceFile> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap().to_owned();
                let Some(module) = module_of(&rel) else {
                    continue;
                };
                let text = std::fs::read_to_string(&path).unwrap();
                out.push(SourceFile {
                    module,
                    name: rel.display().to_string(),
                    tokens: tokens(&without_test_items(&code_only(&text))),
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// `usage/store.rs` → `usage::store`; None for the binary and for test-only modules.
fn module_of(rel: &Path) -> Option<ModPath> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    if last == "main.rs" && parts.is_empty() {
        return None;
    }
    match last.as_str() {
        "lib.rs" if parts.is_empty() => {}
        "mod.rs" => {}
        other => parts.push(other.trim_end_matches(".rs").to_owned()),
    }
    (!parts.iter().any(|p| p == "tests")).then_some(parts)
}

/// For each module, the names it imports from one of its own submodules (`pub use
/// report::Row` in `usage/mod.rs`): a path through them reaches that submodule.
fn reexports(
    files: &[SourceFile],
    modules: &BTreeSet<ModPath>,
) -> BTreeMap<ModPath, BTreeMap<String, ModPath>> {
    let mut out: BTreeMap<ModPath, BTreeMap<String, ModPath>> = BTreeMap::new();
    for file in files {
        for (path, alias) in use_trees(&file.tokens).into_iter().map(|(p, a, _)| (p, a)) {
            let Some(target) = resolve(&file.module, &path, modules, &BTreeMap::new()) else {
                continue;
            };
            let below = target.len() > file.module.len() && target.starts_with(&file.module);
            if below {
                let child = target[..file.module.len() + 1].to_vec();
                out.entry(file.module.clone())
                    .or_default()
                    .insert(alias, child);
            }
        }
    }
    out
}

/// The deepest module a path (as written in `module`) names, if it is one of ours.
fn resolve(
    module: &[String],
    path: &[String],
    modules: &BTreeSet<ModPath>,
    reexports: &BTreeMap<ModPath, BTreeMap<String, ModPath>>,
) -> Option<ModPath> {
    let (mut base, mut rest): (ModPath, &[String]) = match path.first()?.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (module.to_vec(), &path[1..]),
        "super" => {
            let mut base = module.to_vec();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            (base, rest)
        }
        first => {
            let mut child = module.to_vec();
            child.push(first.to_owned());
            if !modules.contains(&child) {
                return None;
            }
            (module.to_vec(), path)
        }
    };
    while let Some(segment) = rest.first() {
        let mut next = base.clone();
        next.push(segment.clone());
        if modules.contains(&next) {
            base = next;
            rest = &rest[1..];
        } else if let Some(child) = reexports.get(&base).and_then(|r| r.get(segment)) {
            return Some(child.clone());
        } else {
            break;
        }
    }
    (!base.is_empty()).then_some(base)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Punct(char),
}

/// The paths a file names, with their lines: those of its `use` declarations and the inline
/// ones (`crate::x::y()`, `super::z`, `child::f()`).
fn paths(tokens: &[(Token, usize)]) -> Vec<(ModPath, usize)> {
    let mut out: Vec<(ModPath, usize)> = use_trees(tokens)
        .into_iter()
        .map(|(path, _, line)| (path, line))
        .collect();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i].0 == Token::Ident("use".into()) {
            while i < tokens.len() && tokens[i].0 != Token::Punct(';') {
                i += 1;
            }
            continue;
        }
        let starts = matches!(tokens[i].0, Token::Ident(_))
            && i.checked_sub(1)
                .is_none_or(|p| tokens[p].0 != Token::PathSep)
            && tokens.get(i + 1).is_some_and(|t| t.0 == Token::PathSep);
        if starts {
            let line = tokens[i].1;
            let mut path = Vec::new();
            while let Some((Token::Ident(name), _)) = tokens.get(i) {
                path.push(name.clone());
                if tokens.get(i + 1).is_some_and(|t| t.0 == Token::PathSep) {
                    i += 2;
                } else {
                    i += 1;
                    break;
                }
            }
            out.push((path, line));
            continue;
        }
        i += 1;
    }
    out
}

/// Every `use` declaration expanded: (path, the name it binds, line).
fn use_trees(tokens: &[(Token, usize)]) -> Vec<(ModPath, String, usize)> {
    let mut out = Vec::new();
    for (i, (token, line)) in tokens.iter().enumerate() {
        if *token == Token::Ident("use".into()) {
            let mut at = i + 1;
            if tokens.get(at).is_some_and(|t| t.0 == Token::PathSep) {
                at += 1;
            }
            use_tree(tokens, &mut at, &[], *line, &mut out);
        }
    }
    out
}

/// One use tree from `at`: `a::b`, `a::b as c`, `a::{tree, …}`, `a::*`.
fn use_tree(
    tokens: &[(Token, usize)],
    at: &mut usize,
    prefix: &[String],
    line: usize,
    out: &mut Vec<(ModPath, String, usize)>,
) {
    let mut path = prefix.to_vec();
    loop {
        match tokens.get(*at).map(|t| &t.0) {
            Some(Token::Ident(name)) => {
                path.push(name.clone());
                *at += 1;
            }
            Some(Token::Punct('{')) => {
                *at += 1;
                while !matches!(
                    tokens.get(*at).map(|t| &t.0),
                    Some(Token::Punct('}')) | None
                ) {
                    use_tree(tokens, at, &path, line, out);
                    if tokens.get(*at).is_some_and(|t| t.0 == Token::Punct(',')) {
                        *at += 1;
                    }
                }
                *at += 1;
                return;
            }
            Some(Token::Punct('*')) => {
                *at += 1;
                out.push((path, String::from("*"), line));
                return;
            }
            _ => return,
        }
        match tokens.get(*at).map(|t| &t.0) {
            Some(Token::PathSep) => *at += 1,
            Some(Token::Ident(kw)) if kw == "as" => {
                let alias = match tokens.get(*at + 1).map(|t| &t.0) {
                    Some(Token::Ident(a)) => a.clone(),
                    _ => String::new(),
                };
                *at += 2;
                out.push((path, alias, line));
                return;
            }
            _ => {
                let mut bound = path.last().cloned().unwrap_or_default();
                if bound == "self" {
                    path.pop();
                    bound = path.last().cloned().unwrap_or_default();
                }
                out.push((path, bound, line));
                return;
            }
        }
    }
}

fn tokens(code: &str) -> Vec<(Token, usize)> {
    let mut out = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Token::Ident(chars[start..i].iter().collect()), line));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push((Token::PathSep, line));
            i += 2;
        } else {
            out.push((Token::Punct(c), line));
            i += 1;
        }
    }
    out
}

/// The text with comments, string and character literals blanked (newlines kept).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, s: &[char]| {
        out.extend(s.iter().map(|&c| if c == '\n' { '\n' } else { ' ' }));
    };
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        let end = if rest.starts_with(&['/', '/']) {
            i + rest.iter().position(|&c| c == '\n').unwrap_or(rest.len())
        } else if rest.starts_with(&['/', '*']) {
            block_comment_end(&chars, i)
        } else if rest[0] == '"' {
            string_end(&chars, i + 1)
        } else if rest[0] == 'r'
            && (i == 0
                || !ident(chars[i - 1])
                || (chars[i - 1] == 'b' && (i < 2 || !ident(chars[i - 2]))))
            && matches!(rest.get(1), Some('"' | '#'))
        {
            raw_string_end(&chars, i).unwrap_or(i + 1)
        } else if rest[0] == '\'' {
            char_end(&chars, i).unwrap_or(i + 1)
        } else {
            out.push(rest[0]);
            i += 1;
            continue;
        };
        let end = end.min(chars.len());
        if end > i + 1 || rest[0] != 'r' {
            blank(&mut out, &chars[i..end]);
        } else {
            out.push(rest[0]);
        }
        i = end;
    }
    out
}

fn block_comment_end(chars: &[char], start: usize) -> usize {
    let (mut depth, mut i) = (0, start);
    while i + 1 < chars.len() {
        if chars[i] == '/' && chars[i + 1] == '*' {
            depth += 1;
            i += 2;
        } else if chars[i] == '*' && chars[i + 1] == '/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    chars.len()
}

/// After the opening quote: the index past the closing one.
fn string_end(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// `r"…"`, `r#"…"#`: the index past the end, None when `r` starts no raw string.
fn raw_string_end(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    let mut hashes = 0;
    while chars.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    if chars.get(i) != Some(&'"') {
        return None;
    }
    i += 1;
    while i < chars.len() {
        if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
            return Some(i + 1 + hashes);
        }
        i += 1;
    }
    Some(chars.len())
}

/// `'x'`, `'\n'`, `'\u{1F600}'`: the index past the end; None for a lifetime (`'a`).
fn char_end(chars: &[char], start: usize) -> Option<usize> {
    if chars.get(start + 1) == Some(&'\\') {
        // The escaped character itself may be a quote (`'\''`).
        let close = chars.get(start + 3..)?.iter().position(|&c| c == '\'')?;
        return Some(start + 3 + close + 1);
    }
    (chars.get(start + 2) == Some(&'\'')).then_some(start + 3)
}

/// The code with every `#[cfg(test)]` item blanked: a block (`mod tests { … }`, an `impl`,
/// a `fn`) to its closing brace, or a declaration (`mod tests;`) to its semicolon.
fn without_test_items(code: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut chars: Vec<char> = code.chars().collect();
    let mut from = 0;
    loop {
        let text: String = chars[from..].iter().collect();
        let Some(found) = text.find(MARK) else {
            break;
        };
        let start = from + text[..found].chars().count();
        let mut i = start + MARK.chars().count();
        let mut brackets = 0i32;
        while i < chars.len() {
            match chars[i] {
                '(' | '[' => brackets += 1,
                ')' | ']' => brackets -= 1,
                ';' if brackets == 0 => break,
                '{' if brackets == 0 => {
                    let mut depth = 0;
                    while i < chars.len() {
                        match chars[i] {
                            '{' => depth += 1,
                            '}' => depth -= 1,
                            _ => {}
                        }
                        if depth == 0 {
                            break;
                        }
                        i += 1;
                    }
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let end = (i + 1).min(chars.len());
        for c in &mut chars[start..end] {
            if *c != '\n' {
                *c = ' ';
            }
        }
        from = end;
    }
    chars.into_iter().collect()
}

/// The strongly connected sets of two or more nodes (Tarjan), each a cycle.
fn cycles(scope: &str, graph: &Graph) -> Vec<Cycle> {
    struct Walk<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        sets: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flat_map(|e| e.keys()) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut set = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    set.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if set.len() > 1 {
                    set.sort();
                    self.sets.push(set);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        sets: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.sets
        .into_iter()
        .map(|members| {
            let edges = members
                .iter()
                .flat_map(|from| {
                    graph[from]
                        .iter()
                        .filter(|(to, _)| members.contains(to))
                        .map(move |(to, place)| (from.clone(), to.clone(), place.clone()))
                })
                .collect();
            Cycle {
                scope: scope.to_owned(),
                members,
                edges,
            }
        })
        .collect()
}
