//! The import rules of `docs/architecture.md`, checked on the source so they stay true:
//! only `store` names diesel, only `http` and the start-up code (`app`, `cli`) name
//! actix-web, and only `http` names utoipa. A new file that breaks a rule fails here with its path and line.

use std::path::{Path, PathBuf};

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading src/") {
        let path = entry.expect("reading src/").path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(file relative to src/, line number, line)` of every code line naming `crate_name`
/// as a path, outside the allowed modules.
fn offending_lines(crate_name: &str, allowed: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .to_string();
        let module = relative.trim_end_matches(".rs").trim_end_matches("/mod");
        if allowed
            .iter()
            .any(|a| module == *a || module.starts_with(&format!("{a}/")))
        {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let named = code.match_indices(crate_name).any(|(at, _)| {
                let before = code[..at].chars().last();
                let after = &code[at + crate_name.len()..];
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    && (after.starts_with("::") || after.starts_with(';'))
            });
            if named {
                found.push(format!("src/{relative}:{}: {}", number + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn only_the_store_names_diesel() {
    let found = offending_lines("diesel", &["store"]);
    assert!(
        found.is_empty(),
        "diesel outside src/store:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_http_and_start_up_code_name_actix_web() {
    let found = offending_lines("actix_web", &["http", "app", "cli"]);
    assert!(
        found.is_empty(),
        "actix_web outside src/http, app, cli:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_http_describes_wire_shapes_with_utoipa() {
    // The OpenAPI document must describe what is sent, so the types it is built from are
    // the ones `http` serializes; a domain type deriving `ToSchema` would be a second copy.
    let found = offending_lines("utoipa", &["http"]);
    assert!(
        found.is_empty(),
        "utoipa outside src/http:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_rule_checker_sees_a_violation() {
    // The checker itself must be able to fail: `store` names diesel, so with no module
    // allowed it reports lines.
    assert!(!offending_lines("diesel", &[]).is_empty());
    assert!(!offending_lines("actix_web", &["app", "cli"]).is_empty());
    assert!(!offending_lines("utoipa", &[]).is_empty());
}

// ---- the module graph: no import cycles, `AppState` only at the edges ----

use std::collections::{BTreeMap, BTreeSet};

/// Modules that may name `AppState`: the edges and the start-up code (`""` is the crate
/// root, `lib.rs`).
const STATE_MODULES: &[&str] = &["http", "cli", "app", "state", ""];

/// Every source file of `src/` by module path (`grants::password`, `http`, `""` for the
/// root), with its text.
fn modules() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    files
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix(&src).unwrap().with_extension("");
            let parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().to_string())
                .collect();
            let mut module = parts.join("::");
            if module == "mod" || module.ends_with("::mod") {
                module = module
                    .trim_end_matches("mod")
                    .trim_end_matches("::")
                    .to_string();
            }
            if module == "lib" || module == "main" {
                module.clear();
            }
            (module, std::fs::read_to_string(&file).unwrap())
        })
        .collect()
}

/// `text` without `#[cfg(test)] mod … { … }` blocks (imports there are not architecture)
/// and without `//` comments (a doc comment that names a module is not an import).
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        let after = rest[at + "#[cfg(test)]".len()..].trim_start();
        let is_mod_block = after.starts_with("mod ")
            && after
                .find(['{', ';'])
                .is_some_and(|i| after.as_bytes()[i] == b'{');
        if !is_mod_block {
            out.push_str(&rest[..at + "#[cfg(test)]".len()]);
            rest = &rest[at + "#[cfg(test)]".len()..];
            continue;
        }
        out.push_str(&rest[..at]);
        let open = rest.len() - after.len() + after.find('{').unwrap();
        let mut depth = 0usize;
        let mut end = rest.len();
        for (i, c) in rest[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The paths of a use tree starting at `text` (just after `crate::` or `super::`):
/// `a::b`, `a::{b, c::{d}}` (→ `a::b`, `a::c::d`), `a::b::*` (→ `a::b`).
fn use_tree(text: &str, prefix: &str, out: &mut Vec<String>) -> usize {
    let mut path = prefix.to_string();
    let mut i = 0;
    let bytes = text.as_bytes();
    loop {
        let start = i;
        while i < text.len() && is_ident(text[i..].chars().next().unwrap()) {
            i += text[i..].chars().next().unwrap().len_utf8();
        }
        if i > start {
            let segment = &text[start..i];
            if segment != "self" {
                if !path.is_empty() {
                    path.push_str("::");
                }
                path.push_str(segment);
            }
        }
        if text[i..].starts_with("::") {
            i += 2;
            let skipped = text[i..].len() - text[i..].trim_start().len();
            i += skipped;
            if i < text.len() && bytes[i] == b'{' {
                i += 1;
                loop {
                    let skipped = text[i..].len() - text[i..].trim_start().len();
                    i += skipped;
                    if i >= text.len() {
                        return i;
                    }
                    match bytes[i] {
                        b'}' => return i + 1,
                        b',' => i += 1,
                        _ => {
                            let used = use_tree(&text[i..], &path, out);
                            if used == 0 {
                                i += 1;
                            } else {
                                i += used;
                            }
                        }
                    }
                }
            }
            continue;
        }
        // `as` renames and everything after the path leave the path as it is.
        out.push(path);
        return i;
    }
}

/// The module `path` names: its longest prefix that is a module.
fn resolve<'a>(modules: &'a BTreeSet<String>, path: &str) -> Option<&'a String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .find_map(|k| modules.get(&parts[..k].join("::")))
}

/// Who imports whom: `crate::…` paths (use trees included) and `super::…` paths.
fn import_graph(sources: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let names: BTreeSet<String> = sources.keys().cloned().collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in sources {
        let code = code_of(text);
        let targets = edges.entry(module.clone()).or_default();
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        for (keyword, base) in [("crate::", ""), ("super::", parent)] {
            for (at, _) in code.match_indices(keyword) {
                if code[..at].chars().last().is_some_and(is_ident) {
                    continue;
                }
                let mut paths = Vec::new();
                let rest = &code[at + keyword.len()..];
                if rest.starts_with('{') {
                    // `crate::{a, b::c}`: a group straight after the root reads as `self::{…}`.
                    use_tree(&format!("self::{rest}"), base, &mut paths);
                } else {
                    use_tree(rest, base, &mut paths);
                }
                for path in paths {
                    if let Some(target) = resolve(&names, &path) {
                        if target != module {
                            targets.insert(target.clone());
                        }
                    }
                }
            }
        }
    }
    edges
}

/// Whether an edge between `a` and `b` is between a module and its own descendant (or the
/// crate root), which the module tree makes mutual anyway.
fn family(a: &str, b: &str) -> bool {
    a.is_empty()
        || b.is_empty()
        || a.starts_with(&format!("{b}::"))
        || b.starts_with(&format!("{a}::"))
}

/// The strongly connected sets of more than one module (Tarjan), parent/child edges left
/// out, and sets within one top-level module's own children left out too.
fn import_cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flatten() {
                let w = w.as_str();
                if family(v, w) {
                    continue;
                }
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
                loop {
                    let w = self.stack.pop().unwrap();
                    self.on_stack.remove(w);
                    set.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                let tops: BTreeSet<&str> =
                    set.iter().map(|m| m.split("::").next().unwrap()).collect();
                if set.len() > 1 && tops.len() > 1 {
                    set.sort();
                    self.found.push(set);
                }
            }
        }
    }
    let mut tarjan = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    let nodes: BTreeSet<&str> = edges
        .iter()
        .flat_map(|(k, v)| std::iter::once(k.as_str()).chain(v.iter().map(String::as_str)))
        .collect();
    for v in nodes {
        if !tarjan.index.contains_key(v) {
            tarjan.visit(v);
        }
    }
    tarjan.found.sort();
    tarjan.found
}

/// Whether code (tests and comments left out) names `AppState`.
fn names_app_state(text: &str) -> bool {
    let code = code_of(text);
    code.match_indices("AppState").any(|(at, _)| {
        !code[..at].chars().last().is_some_and(is_ident)
            && !code[at + "AppState".len()..]
                .chars()
                .next()
                .is_some_and(is_ident)
    })
}

#[test]
fn no_import_cycles_between_modules() {
    let cycles = import_cycles(&import_graph(&modules()));
    assert!(
        cycles.is_empty(),
        "modules that import each other (directly or round a cycle):\n{}",
        cycles
            .iter()
            .map(|set| format!("cycle of {} modules: {}", set.len(), set.join(", ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn only_the_edges_and_start_up_code_name_app_state() {
    let found: Vec<String> = modules()
        .into_iter()
        .filter(|(module, _)| !STATE_MODULES.contains(&module.split("::").next().unwrap()))
        .filter(|(_, text)| names_app_state(text))
        .map(|(module, _)| module)
        .collect();
    assert!(
        found.is_empty(),
        "domain modules that take AppState (give them what they use instead): {}",
        found.join(", ")
    );
}

fn graph(edges: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in edges {
        graph
            .entry(from.to_string())
            .or_default()
            .insert(to.to_string());
    }
    graph
}

#[test]
fn the_cycle_finder_sees_a_cycle_and_names_its_modules() {
    let cycles = import_cycles(&graph(&[
        ("grants", "app"),
        ("app", "http"),
        ("http", "grants"),
        ("http", "store"),
        ("store", "store::users"),
    ]));
    assert_eq!(cycles, vec![vec!["app", "grants", "http"]]);
    // A module and its children import each other freely; a chain is no cycle.
    assert!(import_cycles(&graph(&[
        ("grants", "grants::password"),
        ("grants::password", "grants")
    ]))
    .is_empty());
    assert!(import_cycles(&graph(&[("a", "b"), ("b", "c")])).is_empty());
}

#[test]
fn the_import_reader_follows_use_trees_and_super() {
    let sources: BTreeMap<String, String> = [
        ("a", "use crate::b::{self, x::Y};\nuse crate::{c::Z, d};\n// crate::e is only named\n"),
        ("f::g", "use super::h;\nfn g() { crate::i::run(); }\n#[cfg(test)]\nmod tests {\n    use crate::e;\n}\n"),
        ("b", ""),
        ("b::x", ""),
        ("c", ""),
        ("d", ""),
        ("e", ""),
        ("f", ""),
        ("f::h", ""),
        ("i", ""),
    ]
    .into_iter()
    .map(|(m, t)| (m.to_string(), t.to_string()))
    .collect();
    let edges = import_graph(&sources);
    let of = |m: &str| edges[m].iter().map(String::as_str).collect::<Vec<_>>();
    assert_eq!(of("a"), vec!["b", "b::x", "c", "d"]);
    assert_eq!(of("f::g"), vec!["f::h", "i"]);
    assert!(names_app_state("fn f(state: &crate::state::AppState) {}"));
    assert!(!names_app_state(
        "#[cfg(test)]\nmod tests {\n    use crate::state::AppState;\n}\n"
    ));
    assert!(!names_app_state("struct AppStateless;"));
}
