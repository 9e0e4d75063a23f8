//! The module tree reads as the data flow: the leaves import nothing of the
//! node, the wire module only the registry's and the auth tables' data, and no two top-level
//! modules import each other, directly or round about. Read from the source
//! (`use crate::…` and `crate::…` paths outside comments and test modules).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules its code names.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![src.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            let entries = std::fs::read_dir(&path).expect("readable source folder");
            files.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
            continue;
        }
        let Ok(relative) = path.strip_prefix(&src) else {
            continue;
        };
        let first = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default();
        let module = first.trim_end_matches(".rs").to_string();
        if path.extension().is_none_or(|e| e != "rs") || module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable source file");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let named = graph.entry(module.clone()).or_default();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    named.insert(name);
                }
            }
        }
    }
    graph
}

#[test]
fn the_registry_and_the_clock_are_leaves() {
    let graph = imports();
    for leaf in ["registry", "accounts", "clock", "shutdown", "metrics"] {
        let named = graph.get(leaf).cloned().unwrap_or_default();
        assert!(named.is_empty(), "{leaf} imports {named:?}");
    }
}

#[test]
fn cluster_messages_depend_on_the_registry_data_only() {
    let graph = imports();
    let named = graph.get("wire").cloned().unwrap_or_default();
    assert_eq!(
        named,
        BTreeSet::from(["accounts".to_string(), "registry".to_string()])
    );
}

#[test]
fn no_module_imports_itself_round_about() {
    let graph = imports();
    // Depth-first search for a path back to the start.
    fn reaches(
        graph: &BTreeMap<String, BTreeSet<String>>,
        from: &str,
        target: &str,
        seen: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> bool {
        for next in graph.get(from).into_iter().flatten() {
            path.push(next.clone());
            if next == target {
                return true;
            }
            if seen.insert(next.clone()) && reaches(graph, next, target, seen, path) {
                return true;
            }
            path.pop();
        }
        false
    }
    for module in graph.keys() {
        let mut path = vec![module.clone()];
        let cycle = reaches(&graph, module, module, &mut BTreeSet::new(), &mut path);
        assert!(!cycle, "import cycle: {}", path.join(" -> "));
    }
}
