//! The crate's import graph has no cycle, and follows the layer table in
//! lib.rs.
//!
//! Reads the sources and collects, for every module, the modules it names
//! through `crate::`; inside a module directory, the sibling files a file
//! names through `super::`. Both graphs must be acyclic, and every module
//! may use only modules of lower layers in lib.rs's table (or of its own
//! layer, listed before it). Run with
//! `cargo test --test layering -- --nocapture` to print the edges.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Source text without comments and without the unit-test module (tests
/// may use anything).
fn code_of(path: &Path) -> String {
    let text = fs::read_to_string(path).expect("readable source");
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(cut) => &text[..cut],
        None => &text[..],
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(cut) => &line[..cut],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifiers that follow `prefix` (`crate::`, `super::`), including
/// each name of a braced group: `crate::{a, b::c}` gives `a` and `b`.
fn names_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices(prefix) {
        let preceded_by_ident = code[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        if preceded_by_ident {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let first = item.trim().split("::").next().unwrap_or("").trim();
                if !first.is_empty() && first != "self" {
                    names.insert(first.to_string());
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

/// Top-level modules (`src/x.rs` or `src/x/mod.rs`) and their `crate::` edges.
fn crate_graph(src: &Path) -> Graph {
    let mut files: BTreeMap<String, Vec<std::path::PathBuf>> = BTreeMap::new();
    for entry in fs::read_dir(src).expect("src/") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" {
            continue;
        }
        if path.is_dir() {
            let mut inner: Vec<_> = fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "rs"))
                .collect();
            inner.sort();
            files.entry(name).or_default().extend(inner);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.entry(name).or_default().push(path);
        }
    }
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    files
        .iter()
        .map(|(module, paths)| {
            let mut edges = BTreeSet::new();
            for path in paths {
                for name in names_after(&code_of(path), "crate::") {
                    if modules.contains(&name) && &name != module {
                        edges.insert(name);
                    }
                }
            }
            (module.clone(), edges)
        })
        .collect()
}

/// The files of one module directory and their `super::` edges to siblings.
fn directory_graph(dir: &Path) -> Graph {
    let mut files = BTreeSet::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if stem != "mod" && path.extension().is_some_and(|e| e == "rs") {
            files.insert(stem);
        }
    }
    files
        .iter()
        .map(|file| {
            let code = code_of(&dir.join(format!("{file}.rs")));
            let edges = names_after(&code, "super::")
                .into_iter()
                .filter(|name| files.contains(name) && name != file)
                .collect();
            (file.clone(), edges)
        })
        .collect()
}

/// A cycle of `graph`, if it has one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

fn print(title: &str, graph: &Graph) {
    println!("{title}");
    for (module, edges) in graph {
        let edges: Vec<&str> = edges.iter().map(String::as_str).collect();
        let shown = if edges.is_empty() {
            "(none)".to_string()
        } else {
            edges.join(", ")
        };
        println!("  {module:<14} -> {shown}");
    }
}

/// lib.rs's layer table: each module with its (layer, row) position.
fn layer_table(lib: &Path) -> BTreeMap<String, (u32, usize)> {
    let mut table = BTreeMap::new();
    let mut layer = 0;
    for (row, line) in fs::read_to_string(lib).unwrap().lines().enumerate() {
        let Some(rest) = line.strip_prefix("//! |") else {
            continue;
        };
        let cells: Vec<&str> = rest.split('|').map(str::trim).collect();
        let (Some(layer_cell), Some(module_cell)) = (cells.first(), cells.get(1)) else {
            continue;
        };
        if let Ok(number) = layer_cell.parse() {
            layer = number;
        }
        if let Some(name) = module_cell
            .strip_prefix("[`")
            .and_then(|rest| rest.strip_suffix("`]"))
        {
            table.insert(name.to_string(), (layer, row));
        }
    }
    table
}

#[test]
fn the_crate_import_graph_has_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = crate_graph(&src);
    print("use crate:: edges per module", &graph);
    assert!(
        graph.len() > 10,
        "expected the crate's modules, got {graph:?}"
    );
    assert_eq!(
        find_cycle(&graph),
        None,
        "the crate's modules import in a circle"
    );
}

#[test]
fn every_module_uses_only_lower_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let graph = crate_graph(&root.join("src"));
    let table = layer_table(&root.join("src/lib.rs"));
    for (module, edges) in &graph {
        let place = table
            .get(module)
            .unwrap_or_else(|| panic!("{module} is missing from lib.rs's layer table"));
        for used in edges {
            let used_place = table[used];
            assert!(
                used_place < *place,
                "{module} (layer {}) uses {used} (layer {}): not below it in lib.rs's table",
                place.0,
                used_place.0
            );
        }
    }
}

#[test]
fn module_directories_have_no_cycle_between_their_files() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in fs::read_dir(&src).unwrap() {
        let dir = entry.unwrap().path();
        if dir.is_dir() {
            let graph = directory_graph(&dir);
            let name = dir.strip_prefix(&src).unwrap().display().to_string();
            print(&format!("super:: edges in src/{name}/"), &graph);
            assert_eq!(
                find_cycle(&graph),
                None,
                "files of src/{name}/ import in a circle"
            );
        }
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph: Graph = [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"])]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into_iter().map(String::from).collect()))
        .collect();
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        names_after(
            "use crate::{atoms, convert::x};\nlet y = crate::job::f();",
            "crate::"
        ),
        ["atoms", "convert", "job"].map(String::from).into()
    );
}
