//! Witnesses: for each finding, a small JSON document that the writer's
//! schema accepts and the reader's rejects.
//!
//! A finding says where two schemas differ; a witness shows it with a
//! document a producer could send today and a consumer would dead-letter.
//! Three steps build one:
//!
//! 1. Where the checker reports a finding it proposes values for the spot
//!    the finding is about, sampled from the writer's schema there and
//!    stepped past the reader's constraint ([`super::sample`]).
//! 2. [`place`] puts each value into a whole document along the path of
//!    properties and items that led to the spot ([`Frame`]), filling the
//!    properties the writer requires (and those the reader requires, where
//!    the writer allows them) with samples of their own.
//! 3. Before the finding is reported, [`Verifier`] compiles both whole
//!    schemas with the [`Validator`] and keeps the first document that the
//!    writer's schema accepts and the reader's rejects, preferring one the
//!    reader rejects only at the finding's spot.
//!
//! A finding with no verified document says so ([`Witness::Missing`], with
//! why); nothing unverified is ever shown. Schemas outside courier's subset
//! (an `anyOf`, a keyword the checker does not model) are compiled by the
//! validator's engine without the subset pass, which refuses schemas but
//! never changes what an accepted one means.

use std::cmp::Ordering;
use std::fmt;
use std::rc::Rc;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::sample;
use crate::text::escape_pointer_token;
use crate::validate::Validator;

/// Candidates beyond this many per finding are not tried.
const MAX_CANDIDATES: usize = 64;

/// A document that shows a finding, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Witness {
    /// A document the writer's schema accepts and the reader's rejects,
    /// checked by compiling both whole schemas with the [`Validator`].
    Verified(Value),
    /// No document could be verified; the text says why. The finding still
    /// stands: the checker refuses what it cannot prove safe.
    Missing(String),
}

impl Witness {
    /// The verified document, if any.
    pub fn document(&self) -> Option<&Value> {
        match self {
            Witness::Verified(document) => Some(document),
            Witness::Missing(_) => None,
        }
    }

    /// Why there is no document, if there is none.
    pub fn note(&self) -> Option<&str> {
        match self {
            Witness::Verified(_) => None,
            Witness::Missing(note) => Some(note),
        }
    }
}

/// `{"a":1}` for a verified witness, `none (why)` otherwise: one line.
impl fmt::Display for Witness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Witness::Verified(document) => write!(f, "{document}"),
            Witness::Missing(note) => write!(f, "none ({note})"),
        }
    }
}

/// As fields of the finding: `"witness": <document>`, or `"witness": null`
/// with `"witness_note"` saying why there is none.
impl Serialize for Witness {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self {
            Witness::Verified(document) => map.serialize_entry("witness", document)?,
            Witness::Missing(note) => {
                map.serialize_entry("witness", &Value::Null)?;
                map.serialize_entry("witness_note", note)?;
            }
        }
        map.end()
    }
}

/// Findings sort by rule and pointer first; witnesses only break ties, by
/// their text.
impl Ord for Witness {
    fn cmp(&self, other: &Self) -> Ordering {
        self.to_string().cmp(&other.to_string())
    }
}

impl PartialOrd for Witness {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One step from a value to a value inside it.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// Into the property of this name.
    Property(String),
    /// Into an item of the array (the witness puts it first).
    Item,
}

/// One level of the path from the document's root to the spot a finding is
/// about.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// The writer's schema of the value at this level, `$ref`s, `allOf`
    /// and the writer's `oneOf` branch under check folded in.
    pub(crate) writer: Rc<Value>,
    /// The names the reader requires at this level, filled in where the
    /// writer allows them so that the reader rejects the witness for the
    /// finding's reason only.
    pub(crate) reader_required: Rc<Vec<String>>,
    /// How the next level is reached.
    pub(crate) step: Step,
}

/// A whole document proposed as a witness, with the instance pointer of
/// the spot it is about.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// The whole document.
    pub(crate) document: Value,
    /// The instance pointer of the value the finding is about; a document
    /// the reader rejects only there (or inside) is preferred.
    pub(crate) at: String,
}

/// The instance pointer a path leads to.
pub(crate) fn pointer(path: &[Frame]) -> String {
    path.iter()
        .map(|frame| match &frame.step {
            Step::Property(name) => format!("/{}", escape_pointer_token(name)),
            Step::Item => "/0".to_string(),
        })
        .collect()
}

/// Each leaf placed at the end of `path`, inside values sampled from the
/// writer's schema (in `root`) at each level; none when a level cannot be
/// sampled. The levels are sampled once for all leaves.
pub(crate) fn place(root: &Value, path: &[Frame], leaves: Vec<Value>) -> Vec<Value> {
    let mut containers = Vec::with_capacity(path.len());
    for frame in path {
        let container = match &frame.step {
            Step::Property(_) => {
                let hint = serde_json::json!({
                    "type": "object",
                    "required": *frame.reader_required,
                });
                let object = sample::hinted(root, &frame.writer, &hint)
                    .into_iter()
                    .find(Value::is_object);
                object.unwrap_or_else(|| Value::Object(Map::new()))
            }
            // The writer's shortest array; the leaf replaces its first
            // item, or is the only one.
            Step::Item => {
                let hint = serde_json::json!({"type": "array"});
                let array = sample::hinted(root, &frame.writer, &hint)
                    .into_iter()
                    .find(Value::is_array);
                match array {
                    Some(array) => array,
                    None => return Vec::new(),
                }
            }
        };
        containers.push(container);
    }
    leaves
        .into_iter()
        .map(|leaf| {
            let levels = path.iter().zip(&containers).rev();
            levels.fold(leaf, |value, (frame, container)| {
                let mut container = container.clone();
                match (&frame.step, &mut container) {
                    (Step::Property(name), Value::Object(object)) => {
                        object.insert(name.clone(), value);
                    }
                    (Step::Item, Value::Array(items)) if items.is_empty() => items.push(value),
                    (Step::Item, Value::Array(items)) => items[0] = value,
                    _ => {}
                }
                container
            })
        })
        .collect()
}

/// Both whole schemas, compiled once per pair, to verify candidates.
pub(crate) struct Verifier {
    /// The writer's whole schema, or why it does not compile.
    writer: Result<Validator, String>,
    /// The reader's, likewise.
    reader: Result<Validator, String>,
}

impl Verifier {
    pub(crate) fn new(reader: &Value, writer: &Value) -> Verifier {
        Verifier {
            writer: compile(writer, "writer"),
            reader: compile(reader, "reader"),
        }
    }

    /// The first candidate the writer accepts and the reader rejects,
    /// preferring one the reader rejects only at the candidate's spot.
    pub(crate) fn pick(&self, candidates: &[Candidate]) -> Witness {
        let (writer, reader) = match (&self.writer, &self.reader) {
            (Ok(writer), Ok(reader)) => (writer, reader),
            (Err(why), _) | (_, Err(why)) => return Witness::Missing(why.clone()),
        };
        if candidates.is_empty() {
            return Witness::Missing(
                "the checker could not build a document for this finding".into(),
            );
        }
        let mut fallback = None;
        for candidate in candidates.iter().take(MAX_CANDIDATES) {
            let document = &candidate.document;
            if !writer.is_valid(document) {
                continue;
            }
            let Err(errors) = reader.validate(document) else {
                continue;
            };
            let at_spot = errors
                .iter()
                .all(|e| within(&e.instance_path, &candidate.at));
            if at_spot {
                return Witness::Verified(document.clone());
            }
            fallback.get_or_insert_with(|| document.clone());
        }
        match fallback {
            Some(document) => Witness::Verified(document),
            None => Witness::Missing(
                "no document the checker built is accepted by the writer's schema and rejected \
                 by the reader's; the two may accept the same documents here, but the checker \
                 cannot prove it"
                    .into(),
            ),
        }
    }
}

/// Whether instance pointer `path` is `at` or inside it.
fn within(path: &str, at: &str) -> bool {
    path.strip_prefix(at)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn compile(schema: &Value, side: &str) -> Result<Validator, String> {
    Validator::compile(schema)
        .or_else(|_| Validator::compile_engine_only(schema))
        .map_err(|problems| {
            let first = problems
                .first()
                .map_or_else(String::new, |p| format!(": {p}"));
            format!("the {side}'s schema does not compile, so no witness can be verified{first}")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_leaf_is_placed_inside_the_required_properties_of_each_level() {
        let root = json!({"type": "object", "required": ["id", "customer"], "properties": {
            "id": {"type": "string", "format": "uuid"},
            "customer": {"type": "object", "required": ["tags"], "properties": {
                "tags": {"type": "array", "minItems": 2, "items": {"type": "string"}}}}}});
        let path = [
            Frame {
                writer: Rc::new(root.clone()),
                reader_required: Rc::new(vec![]),
                step: Step::Property("customer".into()),
            },
            Frame {
                writer: Rc::new(root["properties"]["customer"].clone()),
                reader_required: Rc::new(vec![]),
                step: Step::Property("tags".into()),
            },
            Frame {
                writer: Rc::new(root["properties"]["customer"]["properties"]["tags"].clone()),
                reader_required: Rc::new(vec![]),
                step: Step::Item,
            },
        ];
        assert_eq!(pointer(&path), "/customer/tags/0");
        let id = "00000000-0000-4000-8000-000000000000";
        assert_eq!(
            place(&root, &path, vec![json!("leaf"), json!("other")]),
            [
                json!({"id": id, "customer": {"tags": ["leaf", "x"]}}),
                json!({"id": id, "customer": {"tags": ["other", "x"]}}),
            ]
        );
    }

    #[test]
    fn only_a_verified_document_is_a_witness() {
        let writer = json!({"type": "integer"});
        let reader = json!({"type": "integer", "maximum": 10});
        let verifier = Verifier::new(&reader, &writer);
        let candidate = |document: Value| Candidate {
            document,
            at: String::new(),
        };
        assert_eq!(
            verifier.pick(&[
                candidate(json!(3)),
                candidate(json!("x")),
                candidate(json!(11))
            ]),
            Witness::Verified(json!(11))
        );
        assert!(verifier.pick(&[candidate(json!(3))]).note().is_some());
        assert!(verifier.pick(&[]).note().is_some());
        let broken = Verifier::new(&json!({"type": 3}), &writer);
        let note = broken.pick(&[candidate(json!(11))]);
        assert!(
            note.note()
                .is_some_and(|n| n.starts_with("the reader's schema does not compile")),
            "{note}"
        );
    }
}
