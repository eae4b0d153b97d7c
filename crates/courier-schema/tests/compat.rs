//! The compatibility checker over a table of schema pairs: for each pair
//! (older, newer), the rules the backward check (the newer schema reads
//! what the older wrote) and the forward check (the older reads what the
//! newer wrote) must report. Every rule is triggered by some pair, and
//! every finding carries a witness that the writer's schema accepts and the
//! reader's rejects, checked again here, or says why it has none.

use std::collections::BTreeSet;

use courier_schema::compat::{accepts, Finding, Rule, Witness};
use courier_schema::Validator;
use serde_json::{json, Value};

/// One row: a name, the older and newer schemas, and the rule ids expected
/// backward and forward (empty: compatible).
struct Case {
    name: &'static str,
    older: Value,
    newer: Value,
    backward: &'static [&'static str],
    forward: &'static [&'static str],
}

fn case(
    name: &'static str,
    older: Value,
    newer: Value,
    backward: &'static [&'static str],
    forward: &'static [&'static str],
) -> Case {
    Case {
        name,
        older,
        newer,
        backward,
        forward,
    }
}

/// A closed object with the given properties, all required.
fn closed(properties: Value) -> Value {
    let required: Vec<String> = properties.as_object().unwrap().keys().cloned().collect();
    json!({ "type": "object", "additionalProperties": false, "required": required, "properties": properties })
}

/// An object with property `v` of the given schema, required.
fn field(schema: Value) -> Value {
    closed(json!({ "v": schema }))
}

fn rules(reader: &Value, writer: &Value) -> Vec<String> {
    let ids: BTreeSet<String> = accepts(reader, writer)
        .into_iter()
        .map(|f| f.rule.id().to_string())
        .collect();
    ids.into_iter().collect()
}

fn table() -> Vec<Case> {
    let a = json!({ "type": "object", "additionalProperties": false, "required": ["kind", "r"],
        "properties": { "kind": { "const": "a" }, "r": { "type": "number" } } });
    let b = json!({ "type": "object", "additionalProperties": false, "required": ["kind", "s"],
        "properties": { "kind": { "const": "b" }, "s": { "type": "number" } } });
    let c = json!({ "type": "object", "additionalProperties": false, "required": ["kind"],
        "properties": { "kind": { "const": "c" } } });
    let tree = |leaf: Value| {
        json!({
            "$ref": "#/$defs/Node",
            "$defs": { "Node": { "type": "object", "additionalProperties": false, "required": ["value"],
                "properties": { "value": leaf, "children": { "type": "array", "items": { "$ref": "#/$defs/Node" } } } } }
        })
    };
    vec![
        case(
            "identical",
            field(json!({"type": "string"})),
            field(json!({"type": "string"})),
            &[],
            &[],
        ),
        case(
            "integer widened to number",
            field(json!({"type": "integer"})),
            field(json!({"type": "number"})),
            &[],
            &["TYPE_NARROWED"],
        ),
        case(
            "string changed to integer",
            field(json!({"type": "string"})),
            field(json!({"type": "integer"})),
            &["TYPE_CHANGED"],
            &["TYPE_CHANGED"],
        ),
        case(
            "null dropped from a type list",
            field(json!({"type": ["string", "null"]})),
            field(json!({"type": "string"})),
            &["TYPE_NARROWED"],
            &[],
        ),
        case(
            "enum value added",
            field(json!({"enum": ["a", "b"]})),
            field(json!({"enum": ["a", "b", "c"]})),
            &[],
            &["ENUM_VALUE_REMOVED"],
        ),
        case(
            "enum value removed",
            field(json!({"enum": ["a", "b", "c"]})),
            field(json!({"enum": ["a", "b"]})),
            &["ENUM_VALUE_REMOVED"],
            &[],
        ),
        case(
            "enum added to a free string",
            field(json!({"type": "string"})),
            field(json!({"type": "string", "enum": ["a"]})),
            &["ENUM_ADDED"],
            &[],
        ),
        case(
            "const changed",
            field(json!({"const": "a"})),
            field(json!({"const": "b"})),
            &["CONST_CHANGED"],
            &["CONST_CHANGED"],
        ),
        case(
            "const added",
            field(json!({"type": "string"})),
            field(json!({"const": "a"})),
            &["CONST_CHANGED"],
            &[],
        ),
        case(
            "enum narrowed to const",
            field(json!({"enum": ["a", "b"]})),
            field(json!({"const": "a"})),
            &["CONST_CHANGED"],
            &[],
        ),
        case(
            "format added",
            field(json!({"type": "string"})),
            field(json!({"type": "string", "format": "uuid"})),
            &["FORMAT_CHANGED"],
            &[],
        ),
        case(
            "format changed",
            field(json!({"type": "string", "format": "uuid"})),
            field(json!({"type": "string", "format": "email"})),
            &["FORMAT_CHANGED"],
            &["FORMAT_CHANGED"],
        ),
        case(
            "minimum raised",
            field(json!({"type": "integer", "minimum": 0})),
            field(json!({"type": "integer", "minimum": 5})),
            &["MINIMUM_TIGHTENED"],
            &[],
        ),
        case(
            "maximum lowered",
            field(json!({"type": "number", "maximum": 100})),
            field(json!({"type": "number", "maximum": 10})),
            &["MAXIMUM_TIGHTENED"],
            &[],
        ),
        case(
            "minimum made exclusive",
            field(json!({"type": "number", "minimum": 0})),
            field(json!({"type": "number", "exclusiveMinimum": 0})),
            &["MINIMUM_TIGHTENED"],
            &[],
        ),
        case(
            "exclusive maximum made inclusive",
            field(json!({"type": "number", "exclusiveMaximum": 10})),
            field(json!({"type": "number", "maximum": 10})),
            &[],
            &["MAXIMUM_TIGHTENED"],
        ),
        case(
            "maximum added",
            field(json!({"type": "number"})),
            field(json!({"type": "number", "maximum": 1})),
            &["MAXIMUM_TIGHTENED"],
            &[],
        ),
        case(
            "bounds widened",
            field(json!({"type": "integer", "minimum": 1, "maximum": 9})),
            field(json!({"type": "integer", "minimum": 0, "maximum": 10})),
            &[],
            &["MAXIMUM_TIGHTENED", "MINIMUM_TIGHTENED"],
        ),
        case(
            "multipleOf coarsened",
            field(json!({"type": "integer", "multipleOf": 2})),
            field(json!({"type": "integer", "multipleOf": 4})),
            &["MULTIPLE_OF_CHANGED"],
            &[],
        ),
        case(
            "minLength raised",
            field(json!({"type": "string", "minLength": 1})),
            field(json!({"type": "string", "minLength": 3})),
            &["MIN_LENGTH_TIGHTENED"],
            &[],
        ),
        case(
            "maxLength lowered",
            field(json!({"type": "string", "maxLength": 500})),
            field(json!({"type": "string", "maxLength": 100})),
            &["MAX_LENGTH_TIGHTENED"],
            &[],
        ),
        case(
            "maxLength raised",
            field(json!({"type": "string", "maxLength": 100})),
            field(json!({"type": "string", "maxLength": 500})),
            &[],
            &["MAX_LENGTH_TIGHTENED"],
        ),
        case(
            "pattern added",
            field(json!({"type": "string"})),
            field(json!({"type": "string", "pattern": "^[a-z]+$"})),
            &["PATTERN_CHANGED"],
            &[],
        ),
        case(
            "pattern changed",
            field(json!({"type": "string", "pattern": "^a"})),
            field(json!({"type": "string", "pattern": "^b"})),
            &["PATTERN_CHANGED"],
            &["PATTERN_CHANGED"],
        ),
        case(
            "minItems raised",
            field(json!({"type": "array", "minItems": 0})),
            field(json!({"type": "array", "minItems": 1})),
            &["MIN_ITEMS_TIGHTENED"],
            &[],
        ),
        case(
            "maxItems lowered",
            field(json!({"type": "array", "maxItems": 10})),
            field(json!({"type": "array", "maxItems": 5})),
            &["MAX_ITEMS_TIGHTENED"],
            &[],
        ),
        case(
            "uniqueItems added",
            field(json!({"type": "array"})),
            field(json!({"type": "array", "uniqueItems": true})),
            &["UNIQUE_ITEMS_ADDED"],
            &[],
        ),
        case(
            "item type narrowed",
            field(json!({"type": "array", "items": {"type": "number"}})),
            field(json!({"type": "array", "items": {"type": "integer"}})),
            &["TYPE_NARROWED"],
            &[],
        ),
        case(
            "optional property added to a closed model",
            json!({"type": "object", "additionalProperties": false, "required": ["a"], "properties": {"a": {"type": "string"}}}),
            json!({"type": "object", "additionalProperties": false, "required": ["a"], "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}),
            &[],
            &["PROPERTY_REMOVED"],
        ),
        case(
            "optional property added to an open model",
            json!({"type": "object", "additionalProperties": true, "required": ["a"], "properties": {"a": {"type": "string"}}}),
            json!({"type": "object", "additionalProperties": true, "required": ["a"], "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}),
            &["PROPERTY_ADDED_TO_OPEN_MODEL"],
            &[],
        ),
        case(
            "property removed from a closed model",
            json!({"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}),
            json!({"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}}),
            &["PROPERTY_REMOVED"],
            &[],
        ),
        case(
            "property removed from an open model",
            json!({"type": "object", "additionalProperties": true, "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}),
            json!({"type": "object", "additionalProperties": true, "properties": {"a": {"type": "string"}}}),
            &[],
            &["PROPERTY_ADDED_TO_OPEN_MODEL"],
        ),
        case(
            "unconstrained property added to an open model",
            json!({"type": "object", "additionalProperties": true, "properties": {}}),
            json!({"type": "object", "additionalProperties": true, "properties": {"note": true}}),
            &[],
            &[],
        ),
        case(
            "required added without default",
            json!({"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}}),
            json!({"type": "object", "additionalProperties": false, "required": ["a"], "properties": {"a": {"type": "string"}}}),
            &["REQUIRED_ADDED"],
            &[],
        ),
        case(
            "required added with a default",
            json!({"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}}),
            json!({"type": "object", "additionalProperties": false, "required": ["a"], "properties": {"a": {"type": "string", "default": "x"}}}),
            &[],
            &[],
        ),
        case(
            "required removed",
            json!({"type": "object", "additionalProperties": false, "required": ["a"], "properties": {"a": {"type": "string"}}}),
            json!({"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}}),
            &[],
            &["REQUIRED_ADDED"],
        ),
        case(
            "content model closed",
            json!({"type": "object", "additionalProperties": true, "properties": {}}),
            json!({"type": "object", "additionalProperties": false, "properties": {}}),
            &["ADDITIONAL_PROPERTIES_NARROWED"],
            &[],
        ),
        case(
            "additionalProperties schema narrowed",
            json!({"type": "object", "additionalProperties": {"type": "number"}}),
            json!({"type": "object", "additionalProperties": {"type": "integer"}}),
            &["ADDITIONAL_PROPERTIES_NARROWED"],
            &[],
        ),
        case(
            "oneOf branch added",
            field(json!({"oneOf": [a.clone(), b.clone()]})),
            field(json!({"oneOf": [a.clone(), b.clone(), c.clone()]})),
            &[],
            &["ONE_OF_BRANCH_NOT_ACCEPTED"],
        ),
        case(
            "oneOf branch removed",
            field(json!({"oneOf": [a.clone(), b.clone(), c.clone()]})),
            field(json!({"oneOf": [a.clone(), b.clone()]})),
            &["ONE_OF_BRANCH_NOT_ACCEPTED"],
            &[],
        ),
        case(
            "oneOf branch changed inside",
            field(json!({"oneOf": [a.clone(), b.clone()]})),
            field(json!({"oneOf": [a.clone(), {
                "type": "object", "additionalProperties": false, "required": ["kind", "s"],
                "properties": { "kind": { "const": "b" }, "s": { "type": "integer" } } }]})),
            &["ONE_OF_BRANCH_NOT_ACCEPTED"],
            &[],
        ),
        case(
            "overlapping oneOf branch added",
            field(json!({"oneOf": [{"type": "integer"}]})),
            field(json!({"oneOf": [{"type": "integer"}, {"type": "number"}]})),
            &["ONE_OF_BRANCHES_OVERLAP"],
            &["ONE_OF_BRANCH_NOT_ACCEPTED"],
        ),
        case(
            "overlap the writer already had",
            field(json!({"oneOf": [{"type": "integer"}, {"type": "number"}]})),
            field(json!({"oneOf": [{"type": "integer"}, {"type": "number"}, {"type": "string"}]})),
            &[],
            &["ONE_OF_BRANCH_NOT_ACCEPTED"],
        ),
        case(
            "oneOf branch without a discriminator added",
            field(json!({"oneOf": [a.clone(), b.clone()]})),
            field(json!({"oneOf": [a.clone(), b.clone(), {"type": "object"}]})),
            &["ONE_OF_BRANCHES_OVERLAP"],
            &["ONE_OF_BRANCH_NOT_ACCEPTED"],
        ),
        case(
            "oneOf branch added that overlaps a listed value",
            field(json!({"enum": [1, 2]})),
            field(json!({"oneOf": [{"enum": [1, 2]}, {"type": "integer", "minimum": 2}]})),
            &["ONE_OF_BRANCHES_OVERLAP"],
            &["ONE_OF_BRANCH_NOT_ACCEPTED"],
        ),
        case(
            "oneOf branches apart by range",
            field(json!({"oneOf": [{"type": "integer", "maximum": 0}]})),
            field(
                json!({"oneOf": [{"type": "integer", "maximum": 0}, {"type": "number", "exclusiveMinimum": 0}]}),
            ),
            &[],
            &["ONE_OF_BRANCH_NOT_ACCEPTED"],
        ),
        case(
            "enum split into oneOf constants",
            field(json!({"enum": ["a", "b"]})),
            field(json!({"oneOf": [{"const": "a"}, {"const": "b"}]})),
            &[],
            &[],
        ),
        case(
            "enum split into anyOf constants",
            field(json!({"enum": ["a", "b"]})),
            field(json!({"anyOf": [{"const": "a"}, {"const": "b"}]})),
            &[],
            &[],
        ),
        case(
            "anyOf branch added",
            field(json!({"anyOf": [{"type": "string"}]})),
            field(json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})),
            &[],
            &["ANY_OF_BRANCH_NOT_ACCEPTED"],
        ),
        case(
            "plain type widened to oneOf",
            field(json!({"type": "string"})),
            field(json!({"oneOf": [{"type": "string"}, {"type": "integer"}]})),
            &[],
            &["ONE_OF_BRANCH_NOT_ACCEPTED"],
        ),
        case(
            "nested object gains a required field",
            closed(json!({"customer": closed(json!({"name": {"type": "string"}}))})),
            closed(
                json!({"customer": closed(json!({"name": {"type": "string"}, "tier": {"type": "string"}}))}),
            ),
            &["REQUIRED_ADDED"],
            &["PROPERTY_REMOVED"],
        ),
        case(
            "referenced definition loses an enum value",
            json!({"type": "object", "additionalProperties": false, "required": ["region"], "properties": {"region": {"$ref": "#/$defs/Region"}},
                "$defs": {"Region": {"enum": ["amer", "emea", "apac"]}}}),
            json!({"type": "object", "additionalProperties": false, "required": ["region"], "properties": {"region": {"$ref": "#/$defs/Region"}},
                "$defs": {"Region": {"enum": ["amer", "emea"]}}}),
            &["ENUM_VALUE_REMOVED"],
            &[],
        ),
        case(
            "definition inlined, same meaning",
            json!({"type": "object", "additionalProperties": false, "properties": {"region": {"$ref": "#/$defs/Region"}},
                "$defs": {"Region": {"type": "string", "maxLength": 8}}}),
            json!({"type": "object", "additionalProperties": false, "properties": {"region": {"type": "string", "maxLength": 8}}}),
            &[],
            &[],
        ),
        case(
            "recursive tree unchanged",
            tree(json!({"type": "integer"})),
            tree(json!({"type": "integer"})),
            &[],
            &[],
        ),
        case(
            "recursive tree leaf narrowed",
            tree(json!({"type": "number"})),
            tree(json!({"type": "integer"})),
            &["TYPE_NARROWED"],
            &[],
        ),
        case(
            "allOf pieces unchanged",
            json!({"allOf": [{"type": "object", "additionalProperties": true, "properties": {"a": {"type": "string"}}}, {"required": ["a"]}]}),
            json!({"allOf": [{"type": "object", "additionalProperties": true, "properties": {"a": {"type": "string"}}}, {"required": ["a"]}]}),
            &[],
            &[],
        ),
        case(
            "allOf piece adds a bound",
            json!({"allOf": [{"type": "integer"}]}),
            json!({"allOf": [{"type": "integer"}, {"maximum": 5}]}),
            &["MAXIMUM_TIGHTENED"],
            &[],
        ),
        case(
            "false property removed from a closed model",
            json!({"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}, "b": false}}),
            json!({"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}}),
            &[],
            &[],
        ),
        case(
            "property never allowed (a $ref to false) removed from a closed model",
            json!({"type": "object", "additionalProperties": false, "properties": {"b": {"$ref": "#/$defs/Never"}},
                "$defs": {"Never": false}}),
            json!({"type": "object", "additionalProperties": false, "properties": {}}),
            &[],
            &[],
        ),
        case(
            "false property removed from an open model",
            json!({"type": "object", "additionalProperties": true, "properties": {"b": false}}),
            json!({"type": "object", "additionalProperties": true, "properties": {}}),
            &[],
            &["PROPERTY_ADDED_TO_OPEN_MODEL"],
        ),
        case(
            "required property that is false: no object is written",
            json!({"type": "object", "additionalProperties": false, "required": ["a"], "properties": {"a": false}}),
            json!({"type": "object", "additionalProperties": false, "properties": {}}),
            &[],
            &["REQUIRED_ADDED"],
        ),
        case(
            "a property becomes false",
            field(json!({"type": "string"})),
            field(json!(false)),
            &["SCHEMA_REJECTS_ALL"],
            &[],
        ),
        case(
            "unmodeled keyword changed",
            field(json!({"type": "string", "contentMediaType": "text/plain"})),
            field(json!({"type": "string", "contentMediaType": "text/html"})),
            &["UNSUPPORTED_KEYWORD_CHANGED"],
            &["UNSUPPORTED_KEYWORD_CHANGED"],
        ),
        case(
            "unmodeled keyword added",
            field(json!({"type": "object"})),
            field(json!({"type": "object", "minProperties": 1})),
            &["UNSUPPORTED_KEYWORD_CHANGED"],
            &["UNSUPPORTED_KEYWORD_CHANGED"],
        ),
        case(
            "annotations and extensions changed",
            field(json!({"type": "string", "description": "old", "x-note": 1, "examples": ["a"]})),
            field(json!({"type": "string", "description": "new", "x-note": 2})),
            &[],
            &[],
        ),
    ]
}

#[test]
fn every_pair_gets_its_verdict_in_both_directions() {
    let table = table();
    assert!(table.len() >= 40, "only {} pairs", table.len());
    let mut failures = Vec::new();
    for case in &table {
        let backward = rules(&case.newer, &case.older);
        let forward = rules(&case.older, &case.newer);
        if backward != case.backward || forward != case.forward {
            failures.push(format!(
                "{}: backward {backward:?} (expected {:?}), forward {forward:?} (expected {:?})",
                case.name, case.backward, case.forward
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Findings that may have no witness, with why: the checker fails closed
/// on keywords it does not model, and here the two schemas accept the same
/// documents (`contentMediaType` is an annotation in draft 2020-12), or the
/// writer's only difference narrows what it writes.
const NO_WITNESS: &[(&str, Direction, &str)] = &[
    (
        "unmodeled keyword changed",
        Direction::Backward,
        "UNSUPPORTED_KEYWORD_CHANGED",
    ),
    (
        "unmodeled keyword changed",
        Direction::Forward,
        "UNSUPPORTED_KEYWORD_CHANGED",
    ),
    (
        "unmodeled keyword added",
        Direction::Forward,
        "UNSUPPORTED_KEYWORD_CHANGED",
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Backward,
    Forward,
}

/// Every finding of the table: case name, direction, reader, writer.
fn all_findings() -> Vec<(&'static str, Direction, Value, Value, Finding)> {
    let mut found = Vec::new();
    for case in table() {
        for (direction, reader, writer) in [
            (Direction::Backward, &case.newer, &case.older),
            (Direction::Forward, &case.older, &case.newer),
        ] {
            for finding in accepts(reader, writer) {
                found.push((
                    case.name,
                    direction,
                    reader.clone(),
                    writer.clone(),
                    finding,
                ));
            }
        }
    }
    found
}

/// Whether `schema` accepts `document`: courier's validator, or for a
/// schema outside courier's subset (`anyOf`, unmodeled keywords) the
/// engine alone, configured as courier configures it.
fn valid(schema: &Value, document: &Value) -> bool {
    match Validator::compile(schema) {
        Ok(validator) => validator.is_valid(document),
        Err(_) => jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(schema)
            .expect("the schema compiles")
            .is_valid(document),
    }
}

#[test]
fn every_rule_is_triggered_by_some_pair_with_a_verified_witness() {
    let mut seen = BTreeSet::new();
    for case in table() {
        seen.extend(case.backward.iter().chain(case.forward).copied());
    }
    let missing: Vec<&str> = Rule::ALL
        .iter()
        .map(|r| r.id())
        .filter(|id| !seen.contains(id))
        .collect();
    assert!(missing.is_empty(), "rules no pair triggers: {missing:?}");
    for rule in Rule::ALL {
        assert_eq!(Rule::from_id(rule.id()), Some(*rule));
    }

    // For every rule, some finding shows a document the writer's schema
    // accepts and the reader's rejects, checked here again.
    let mut witnessed = BTreeSet::new();
    for (name, direction, reader, writer, finding) in all_findings() {
        if let Witness::Verified(document) = &finding.witness {
            assert!(
                valid(&writer, document) && !valid(&reader, document),
                "{name} ({direction:?}) {}: {document} is not a witness",
                finding.rule
            );
            witnessed.insert(finding.rule);
        }
    }
    let unwitnessed: Vec<&str> = Rule::ALL
        .iter()
        .filter(|rule| !witnessed.contains(rule))
        .map(|rule| rule.id())
        .collect();
    assert!(
        unwitnessed.is_empty(),
        "rules without a verified witness: {unwitnessed:?}"
    );
}

#[test]
fn every_finding_has_a_witness_or_says_why_not() {
    let mut failures = Vec::new();
    let mut expected_missing = 0;
    for (name, direction, _, _, finding) in all_findings() {
        let allowed = NO_WITNESS
            .iter()
            .any(|(n, d, rule)| *n == name && *d == direction && *rule == finding.rule.id());
        match (&finding.witness, allowed) {
            (Witness::Verified(_), false) => {}
            (Witness::Missing(note), true) => {
                assert!(!note.is_empty());
                expected_missing += 1;
            }
            (witness, _) => failures.push(format!(
                "{name} ({direction:?}) {}: {witness}",
                finding.rule
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(expected_missing, NO_WITNESS.len());
}

#[test]
fn witnesses_are_small_documents_that_show_the_finding() {
    check_witness(
        "a number branch beside an integer branch: 0 now matches both",
        field(json!({"oneOf": [{"type": "integer"}, {"type": "number"}]})),
        field(json!({"oneOf": [{"type": "integer"}]})),
        "ONE_OF_BRANCHES_OVERLAP",
        json!({"v": 0}),
    );
    check_witness(
        "an old reader meets the new branch: only fractions match it alone",
        field(json!({"oneOf": [{"type": "integer"}]})),
        field(json!({"oneOf": [{"type": "integer"}, {"type": "number"}]})),
        "ONE_OF_BRANCH_NOT_ACCEPTED",
        json!({"v": 0.5}),
    );
    check_witness(
        "maximum lowered",
        field(json!({"type": "integer", "maximum": 10})),
        field(json!({"type": "integer", "maximum": 100})),
        "MAXIMUM_TIGHTENED",
        json!({"v": 11}),
    );
    check_witness(
        "required added, other required fields filled in",
        json!({"type": "object", "additionalProperties": false, "required": ["id", "tier"],
            "properties": {"id": {"type": "string", "format": "uuid"}, "tier": {"enum": ["gold", "silver"]}}}),
        json!({"type": "object", "additionalProperties": false, "required": ["id"],
            "properties": {"id": {"type": "string", "format": "uuid"}, "tier": {"enum": ["gold", "silver"]}}}),
        "REQUIRED_ADDED",
        json!({"id": "00000000-0000-4000-8000-000000000000"}),
    );
    check_witness(
        "pattern added",
        field(json!({"type": "string", "pattern": "^[a-z]{2}$"})),
        field(json!({"type": "string"})),
        "PATTERN_CHANGED",
        json!({"v": "x"}),
    );
}

/// The witness of the one finding of `rule` when `reader` reads `writer`.
fn check_witness(name: &str, reader: Value, writer: Value, rule: &str, expected: Value) {
    let findings: Vec<Finding> = accepts(&reader, &writer)
        .into_iter()
        .filter(|f| f.rule.id() == rule)
        .collect();
    assert_eq!(findings.len(), 1, "{name}: {findings:?}");
    assert_eq!(findings[0].witness, Witness::Verified(expected), "{name}");
}

#[test]
fn findings_point_at_the_keyword_on_each_side() {
    let older = json!({"type": "object", "additionalProperties": false, "required": ["region"],
        "properties": {"region": {"$ref": "#/$defs/Region"}}, "$defs": {"Region": {"enum": ["amer", "emea"]}}});
    let newer = json!({"type": "object", "additionalProperties": false, "required": ["region"],
        "properties": {"region": {"$ref": "#/$defs/Region"}}, "$defs": {"Region": {"enum": ["amer"]}}});
    let findings = accepts(&newer, &older);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].reader_pointer, "/$defs/Region/enum");
    assert_eq!(findings[0].writer_pointer, "/$defs/Region/enum/1");
    assert_eq!(
        findings[0].message,
        "the writer may write \"emea\", which the reader rejects"
    );
    assert_eq!(
        findings[0].witness,
        Witness::Verified(json!({"region": "emea"}))
    );

    let required = accepts(
        &json!({"type": "object", "additionalProperties": false, "required": ["a"], "properties": {"a": {"type": "string"}}}),
        &json!({"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}}),
    );
    assert_eq!(required[0].reader_pointer, "/required");
    assert!(
        required[0].message.contains("\"a\""),
        "{}",
        required[0].message
    );
}
