//! One model of a channel: `courier_schema::ChannelSpec` is what the
//! registry parses, generated code declares and the runtime runs by, so a
//! new setting touches the meta-schema, that struct with its parsing, and
//! its rendering (`spec_literal.rs`), nothing else.
//!
//! These tests read the sources (in the manner of rust-analyzer's tidy
//! tests): a second struct describing a channel fails them, and so does a
//! field the meta-schema or the renderer does not know.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file of the workspace, generated crates included, build
/// output excluded.
fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "target" && !name.to_string_lossy().starts_with('.') {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    for dir in ["crates", "tests", "xtask"] {
        walk(&root().join(dir), &mut out);
    }
    assert!(out.len() > 50, "found only {} sources", out.len());
    out
}

/// The structs with named fields in `text`: (name, field names).
fn structs(text: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(rest) = line
            .strip_prefix("pub struct ")
            .or_else(|| line.strip_prefix("pub(crate) struct "))
            .or_else(|| line.strip_prefix("struct "))
        else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !rest.trim_end().ends_with('{') {
            continue;
        }
        let mut fields = Vec::new();
        for line in lines.by_ref() {
            let line = line.trim();
            if line.starts_with('}') {
                break;
            }
            let line = line
                .strip_prefix("pub ")
                .or_else(|| line.strip_prefix("pub(crate) "))
                .unwrap_or(line);
            if let Some((field, _)) = line.split_once(':') {
                if !field.is_empty() && field.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    fields.push(field.to_string());
                }
            }
        }
        found.push((name, fields));
    }
    found
}

fn channel_rs() -> String {
    std::fs::read_to_string(root().join("crates/courier-schema/src/channel.rs")).unwrap()
}

fn fields_of(text: &str, name: &str) -> Vec<String> {
    structs(text)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no struct {name}"))
        .1
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn exactly_one_struct_describes_a_channel() {
    let mut definitions = Vec::new();
    for (path, text) in sources() {
        for (name, _) in structs(&text) {
            if name == "Channel" || name == "ChannelSpec" {
                definitions.push(format!("{} {name}", relative(&path)));
            }
        }
    }
    assert_eq!(
        definitions,
        ["crates/courier-schema/src/channel.rs ChannelSpec"],
        "one struct describes a channel: courier_schema::ChannelSpec (courier::ChannelSpec is a re-export)"
    );
}

#[test]
fn no_other_struct_mirrors_the_channel_fields() {
    // Fields a channel has that few other things have; a struct with half
    // of them is a second model of a channel.
    let spec: BTreeSet<String> = fields_of(&channel_rs(), "ChannelSpec")
        .into_iter()
        .filter(|f| !["domain", "name", "description", "schema"].contains(&f.as_str()))
        .collect();
    assert!(spec.len() > 10, "{spec:?}");
    let mut mirrors = Vec::new();
    for (path, text) in sources() {
        for (name, fields) in structs(&text) {
            // `RawChannel` is the serde shape of one entry of
            // `channels.json`: the parsing of ChannelSpec, not a model.
            if name == "ChannelSpec" || name == "RawChannel" {
                continue;
            }
            let shared: Vec<&String> = fields.iter().filter(|f| spec.contains(*f)).collect();
            if shared.len() * 2 >= spec.len() {
                mirrors.push(format!("{} {name}: {shared:?}", relative(&path)));
            }
        }
    }
    assert!(
        mirrors.is_empty(),
        "structs mirroring ChannelSpec; extend ChannelSpec instead:\n{}",
        mirrors.join("\n")
    );
}

/// Which property of a `channels.json` channel entry a field comes from:
/// its own name, except for the three the registry fills from elsewhere.
fn property_of(field: &str) -> Option<&str> {
    match field {
        // The file's top-level `domain`.
        "domain" => None,
        // The entry's key under `channels`.
        "name" => None,
        // `message`, qualified with the domain.
        "schema" => Some("message"),
        other => Some(other),
    }
}

#[test]
fn every_field_is_in_the_meta_schema_and_the_renderer() {
    let meta: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/courier/channels.schema.json")).unwrap(),
    )
    .unwrap();
    let channel = &meta["$defs"]["channel"]["properties"];
    let renderer =
        std::fs::read_to_string(root().join("crates/courier-codegen/src/spec_literal.rs")).unwrap();
    let text = channel_rs();

    let fields = fields_of(&text, "ChannelSpec");
    let mut problems = Vec::new();
    for field in &fields {
        if let Some(property) = property_of(field) {
            if channel.get(property).is_none() {
                problems.push(format!(
                    "ChannelSpec.{field}: no property {property:?} in the meta-schema"
                ));
            }
        }
        if !renderer.contains(&format!("(\"{field}\", {field}.literal())")) {
            problems.push(format!("ChannelSpec.{field}: not rendered by spec_literal"));
        }
    }
    // And the other way: every property of a channel entry is a field.
    for property in channel.as_object().unwrap().keys() {
        if !fields.iter().any(|f| property_of(f) == Some(property)) {
            problems.push(format!(
                "meta-schema property {property:?}: no ChannelSpec field"
            ));
        }
    }
    // The parts with fields of their own.
    for (name, property) in [
        ("Backoff", "backoff"),
        ("Retention", "retention"),
        ("DependencySpec", "dependency"),
        ("RateSpec", "rate_limit"),
    ] {
        let properties: BTreeSet<&String> = channel[property]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        let fields = fields_of(&text, name);
        let fields: BTreeSet<&String> = fields.iter().collect();
        if properties != fields {
            problems.push(format!(
                "{name} has {fields:?}, the meta-schema's {property} {properties:?}"
            ));
        }
        for field in fields {
            if !renderer.contains(&format!("(\"{field}\", {field}.literal())")) {
                problems.push(format!("{name}.{field}: not rendered by spec_literal"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The helper the tests above rely on finds what it should.
#[test]
fn structs_are_read_with_their_fields() {
    let text = "/// A thing.\npub struct Thing {\n    /// Its size.\n    pub size: u32,\n    inner: Option<Vec<u8>>,\n}\nstruct Unit;\n";
    assert_eq!(
        structs(text),
        [(
            "Thing".to_string(),
            vec!["size".to_string(), "inner".to_string()]
        )]
    );
}
