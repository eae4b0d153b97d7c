//! The AsyncAPI documents against the official AsyncAPI 3.0.0 JSON Schema
//! (vendored under `tests/vendor/asyncapi/`, with its license): what the
//! generator writes for every domain of the workspace, and what is
//! committed under `docs/asyncapi/` (which `cargo xtask codegen --check`
//! keeps equal to it).

use std::path::{Path, PathBuf};

use courier_codegen::asyncapi;
use courier_schema::Registry;
use serde_json::{json, Value};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The official schema, compiled as the draft it declares (draft-07).
fn asyncapi_schema() -> jsonschema::Validator {
    let schema =
        read_json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vendor/asyncapi/3.0.0.json"));
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema");
    jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the AsyncAPI 3.0.0 schema compiles")
}

/// Every way `document` breaks the AsyncAPI schema, one line each.
fn errors(validator: &jsonschema::Validator, document: &Value) -> Vec<String> {
    validator
        .iter_errors(document)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn every_domain_s_document_is_valid_asyncapi_3() {
    let validator = asyncapi_schema();
    let registry = Registry::load(&workspace_root().join("schemas"))
        .unwrap_or_else(|problems| panic!("{problems}"));
    assert!(!registry.domains.is_empty());
    for domain in registry.domains.values() {
        let document = asyncapi::document(domain, "0.1.0");
        let found = errors(&validator, &document);
        assert!(found.is_empty(), "{}: {found:#?}", domain.name);
        // The schema does not look inside a payload of a custom
        // schemaFormat: each payload must itself be a draft 2020-12 schema.
        let messages = document["components"]["messages"].as_object().unwrap();
        assert!(!messages.is_empty());
        for (id, message) in messages {
            assert_eq!(message["payload"]["schemaFormat"], asyncapi::SCHEMA_FORMAT);
            assert!(
                jsonschema::meta::is_valid(&message["payload"]["schema"]),
                "{}: {id}'s payload is not a JSON Schema",
                domain.name
            );
        }
        // One channel per channels.json entry, one send per producer role
        // and one receive per consumer role.
        let channels = document["channels"].as_object().unwrap();
        assert_eq!(channels.len(), domain.channels.len(), "{}", domain.name);
        let operations = document["operations"].as_object().unwrap();
        let expected: usize = domain
            .channels
            .values()
            .map(|spec| spec.producers.len() + spec.consumers.len())
            .sum();
        assert_eq!(operations.len(), expected, "{}", domain.name);
    }
}

#[test]
fn the_committed_documents_are_valid_and_complete() {
    let validator = asyncapi_schema();
    let dir = workspace_root().join(asyncapi::ASYNCAPI_DIR);
    let registry = Registry::load(&workspace_root().join("schemas"))
        .unwrap_or_else(|problems| panic!("{problems}"));
    for domain in registry.domains.values() {
        let path = dir.join(format!("{}.json", domain.name));
        let document = read_json(&path);
        let found = errors(&validator, &document);
        assert!(found.is_empty(), "{}: {found:#?}", path.display());
    }
}

#[test]
fn the_schema_check_is_live() {
    // A document the official schema refuses, so a pass above means
    // something: no info.version, an unknown action, a key that is not
    // an extension.
    let validator = asyncapi_schema();
    let broken = json!({
        "asyncapi": "3.0.0",
        "info": {"title": "t"},
        "operations": {"o": {"action": "publish", "channel": {"$ref": "#/channels/c"}}},
        "courier-settings": {}
    });
    let found = errors(&validator, &broken);
    assert!(found.len() >= 3, "{found:#?}");
}
