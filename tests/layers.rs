//! The crate is layered: no import cycle between its top-level modules (`src/x.rs` or
//! `src/x/`). The same scan as `scripts/module-cycles.py` (run by `.ci/run`): `crate::x` paths
//! and `crate::{x, ..}` groups outside comments are edges. It also follows crate-root
//! re-exports (`crate::RoutingPool`, `crate::with_session`) to the module that defines them, so
//! a path through `lib.rs` cannot hide an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text without `//` comments (line, doc and module docs: they do not import).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| line.find("//").map_or(line, |i| &line[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The first path segment of every `crate::` reference, `crate::{a, b::c}` groups included.
fn references(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].ends_with(|c: char| is_name_char(c)) {
            continue; // `my_crate::`
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let first = item.trim().split("::").next().unwrap_or("").trim();
                if !first.is_empty() {
                    found.insert(first.to_string());
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| is_name_char(*c)).collect();
            found.insert(name);
        }
    }
    found
}

/// `name -> module` for everything `lib.rs` re-exports with `pub use module::...;`.
fn root_exports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let lib = code(lib);
    for (at, _) in lib.match_indices("pub use ") {
        let stmt = &lib[at + "pub use ".len()..];
        let stmt = &stmt[..stmt.find(';').unwrap_or(stmt.len())];
        let module = stmt.split("::").next().unwrap_or("").trim().to_string();
        let names = stmt.replace(['{', '}', '\n'], ",");
        for item in names.split(',') {
            let last = item.trim().rsplit("::").next().unwrap_or("").trim();
            let name = last.rsplit(" as ").next().unwrap_or(last).trim();
            if !name.is_empty() && name != module {
                map.insert(name.to_string(), module.clone());
            }
        }
    }
    map
}

fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            let mut files = Vec::new();
            rust_files(&path, &mut files);
            modules.insert(name, files);
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" && name != "main" {
            modules.insert(name, vec![path]);
        }
    }
    let exports = root_exports(&fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut edges = BTreeMap::new();
    for (module, files) in &modules {
        let mut to = BTreeSet::new();
        for file in files {
            for name in references(&code(&fs::read_to_string(file).unwrap())) {
                let target = if modules.contains_key(&name) {
                    Some(name)
                } else {
                    exports.get(&name).cloned()
                };
                if let Some(target) = target.filter(|t| t != module) {
                    to.insert(target);
                }
            }
        }
        edges.insert(module.clone(), to);
    }
    edges
}

/// A cycle through `from`, if there is one (as a path of module names).
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|m| visit(m, edges, &mut Vec::new(), &mut done))
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = graph(&src);
    assert!(edges.len() > 10, "found the modules: {edges:?}");
    if let Some(cycle) = cycle(&edges) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_scan_sees_paths_groups_and_root_re_exports() {
    let text = code("use crate::{a::X, b};\nlet _ = crate::c::f(); // crate::d\nmy_crate::e");
    let found: Vec<_> = references(&text).into_iter().collect();
    assert_eq!(found, ["a", "b", "c"]);
    let exports = root_exports("pub use m::{A, B as C};\npub use n::D;\n// pub use o::E;");
    assert_eq!(exports.get("C").map(String::as_str), Some("m"));
    assert_eq!(exports.get("D").map(String::as_str), Some("n"));
    assert!(!exports.contains_key("E"));
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(cycle(&edges).unwrap(), ["a", "b", "a"]);
}
