//! The runtime's layout, checked by reading its sources, so that
//! ARCHITECTURE.md's rules cannot drift: no import circles between modules
//! (here and in `courier-schema`), one file per concern (no file in
//! `src/` over 800 lines, no step of the consumer over 500).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The crate's top-level modules and the others each one uses: `crate::x`
/// paths outside comments and outside `#[cfg(test)]` modules (a folder
/// module and its files count as one).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in sources(src) {
        let relative = file.strip_prefix(src).unwrap();
        let module = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let uses = graph.entry(module.clone()).or_default();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let name: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    uses.insert(name);
                }
            }
        }
    }
    graph
}

/// Each circle as `a -> b -> ... -> a`.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    fn path(
        graph: &BTreeMap<String, BTreeSet<String>>,
        from: &str,
        to: &str,
        seen: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        for next in graph.get(from).into_iter().flatten() {
            if next == to {
                return Some(vec![next.clone()]);
            }
            if seen.insert(next.clone()) {
                if let Some(mut rest) = path(graph, next, to, seen) {
                    rest.insert(0, next.clone());
                    return Some(rest);
                }
            }
        }
        None
    }
    let mut found = Vec::new();
    for module in graph.keys() {
        if let Some(circle) = path(graph, module, module, &mut BTreeSet::new()) {
            found.push(format!("{module} -> {}", circle.join(" -> ")));
        }
    }
    found
}

fn crate_src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
        .join("src")
}

#[test]
fn no_import_circles() {
    for krate in ["courier", "courier-schema"] {
        let found = circles(&module_graph(&crate_src(krate)));
        assert!(
            found.is_empty(),
            "import circles in {krate}; move what both need into a leaf module:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn the_checker_finds_a_circle() {
    let graph = BTreeMap::from([
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["c".to_string()])),
        ("c".to_string(), BTreeSet::from(["a".to_string()])),
        ("d".to_string(), BTreeSet::from(["a".to_string()])),
    ]);
    assert_eq!(
        circles(&graph),
        ["a -> b -> c -> a", "b -> c -> a -> b", "c -> a -> b -> c"]
    );
}

#[test]
fn files_stay_small() {
    let src = crate_src("courier");
    let mut too_big = Vec::new();
    for file in sources(&src) {
        let lines = std::fs::read_to_string(&file).unwrap().lines().count();
        let limit = if file.starts_with(src.join("consumer")) {
            500
        } else {
            800
        };
        if lines > limit {
            too_big.push(format!("{}: {lines} lines (limit {limit})", file.display()));
        }
    }
    assert!(
        too_big.is_empty(),
        "split by concern:\n{}",
        too_big.join("\n")
    );
}

/// The lines of every source file of the runtime, comments left out, with
/// the file's path relative to `src/`.
fn code_lines() -> Vec<(String, String)> {
    let src = crate_src("courier");
    let mut lines = Vec::new();
    for file in sources(&src) {
        let name = file.strip_prefix(&src).unwrap().display().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            lines.push((name.clone(), line.to_string()));
        }
    }
    lines
}

#[test]
fn every_refusal_before_a_handler_is_in_admit() {
    // Reasons that only a check before the handler can give; a message
    // refused for one of them anywhere else skipped `admit()`.
    let reasons = ["Expired", "SchemaMismatch", "VersionUnsupported", "Poison"];
    let outside: Vec<String> = code_lines()
        .into_iter()
        .filter(|(file, line)| {
            file != "consumer/admit.rs"
                && file != "dlq.rs" // where the reasons are defined and named
                && !line.contains("==") // counting what admit refused is fine
                && reasons
                    .iter()
                    .any(|r| line.contains(&format!("DeadReason::{r}")))
        })
        .map(|(file, line)| format!("{file}: {}", line.trim()))
        .collect();
    assert!(
        outside.is_empty(),
        "messages refused outside consumer/admit.rs:\n{}",
        outside.join("\n")
    );
}

#[test]
fn blocking_reads_use_a_dedicated_connection() {
    // A blocking command on the shared connection would stall every writer
    // behind it and outlast its response timeout.
    let lines = code_lines();
    for blocking in ["\"BLMOVE\"", "\"BLOCK\""] {
        let files: BTreeSet<&str> = lines
            .iter()
            .filter(|(_, line)| line.contains(blocking))
            .map(|(file, _)| file.as_str())
            .collect();
        assert!(!files.is_empty(), "no {blocking} found: update this test");
        for file in files {
            assert!(
                lines
                    .iter()
                    .any(|(f, line)| f == file && line.contains("client.dedicated(")),
                "{file} sends {blocking} without a dedicated connection"
            );
        }
    }
}

#[test]
fn scripts_take_time_from_the_server() {
    let lua = Path::new(env!("CARGO_MANIFEST_DIR")).join("lua");
    let common = std::fs::read_to_string(lua.join("common.lua")).unwrap();
    assert!(
        common.contains("redis.call('TIME')"),
        "common.lua's clock is TIME"
    );
    for file in std::fs::read_dir(&lua).unwrap() {
        let path = file.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("--")) {
            let assigns_now = line.contains("now =") || line.contains("now=");
            assert!(
                !(assigns_now && line.contains("ARGV")),
                "{}: a time taken from a client: {line}",
                path.display()
            );
        }
    }
}

#[test]
fn keys_are_spelt_in_keys_rs_only() {
    // A hash tag (`{domain.channel}`) or a key part written by hand
    // anywhere but keys.rs would drift from the layout.
    let spelt: Vec<String> = code_lines()
        .into_iter()
        .filter(|(file, line)| {
            file != "keys.rs"
                && (line.contains(":{{")
                    || [
                        ":stream\"",
                        ":dlq\"",
                        ":delayed\"",
                        ":queue\"",
                        ":idem:",
                        ":done:",
                    ]
                    .iter()
                    .any(|part| line.contains(part)))
        })
        .map(|(file, line)| format!("{file}: {}", line.trim()))
        .collect();
    assert!(
        spelt.is_empty(),
        "keys built outside keys.rs:\n{}",
        spelt.join("\n")
    );
}
