//! Reviewing a schema change for CI: compatibility per channel mode,
//! breaks of generated Rust code, and immutability of released versions,
//! reported as `file:line:col: error[RULE] pointer: message (mode, vA -> vB)`,
//! JSON, or GitHub Actions annotations.
//!
//! Every compatibility violation carries the finding's witness: a document
//! the writer's version accepts and the reader's rejects, verified with the
//! validator (or, when none could be verified, a note saying why). The text
//! report shows it on an indented line under the violation, the JSON report
//! as the fields `witness` and `witness_note`, the GitHub annotation on a
//! second line of its message. Generated-code and immutability violations
//! have none: they are not about a document one version accepts and the
//! other rejects.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::compat::{accepts, pairs, Direction, Witness};
use crate::position::Positions;
use crate::registry::{parse_version_file_name, resolve_ref, CompatException, Message, Registry};
// The rule lists were defined here; the re-export keeps their old paths.
pub use crate::rules::{rule_known, CODEGEN_RULES, IMMUTABILITY_RULES};
use crate::rules::{
    CODEGEN_FIELD_OPTIONALITY_CHANGED, CODEGEN_FIELD_REMOVED, CODEGEN_FIELD_TYPE_CHANGED,
    CODEGEN_TYPE_REMOVED, RELEASED_VERSION_CHANGED, RELEASED_VERSION_DELETED,
};
use crate::Compatibility;

/// How serious a violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Fails the check.
    Error,
    /// Reported, passes.
    Warning,
}

/// What a violation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A reader of one version may reject messages of another.
    Compatibility,
    /// The JSON stays compatible but Rust code using the generated crate
    /// breaks.
    GeneratedCode,
    /// A released version file changed or disappeared.
    Immutability,
}

/// One reported problem.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Violation {
    /// The file to fix (the newer version's file).
    pub file: PathBuf,
    /// 1-based line of the offending keyword.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Error or warning.
    pub severity: Severity,
    /// The rule id.
    pub rule: String,
    /// JSON pointer in `file`.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
    /// Which kind of check found it.
    pub category: Category,
    /// The channel whose mode asked for the check, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    /// The older version of the pair.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<u32>,
    /// The newer version of the pair.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<u32>,
    /// Backward or forward.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// For a compatibility violation, a document the writer's version
    /// accepts and the reader's rejects, or why there is none; serialized
    /// as `witness` (and `witness_note`).
    #[serde(flatten)]
    pub witness: Option<Witness>,
}

/// What a review found, and which exceptions it used.
#[derive(Debug, Clone, Default)]
pub struct Review {
    /// Everything reported, sorted.
    pub violations: Vec<Violation>,
    /// Exceptions that matched nothing (stale: remove them).
    pub unused_exceptions: Vec<CompatException>,
    /// How many version pairs were checked.
    pub pairs_checked: usize,
}

impl Review {
    /// Whether any error remains.
    pub fn failed(&self) -> bool {
        self.violations
            .iter()
            .any(|v| v.severity == Severity::Error)
    }
}

/// Checks every message of every domain in every direction its channels'
/// modes ask for, plus generated-code breaks (errors when
/// `codegen_errors`), minus the domain's reviewed exceptions.
pub fn review(registry: &Registry, codegen_errors: bool) -> Review {
    let mut review = Review::default();
    for domain in registry.domains.values() {
        let mut used = BTreeSet::new();
        for message in domain.messages.values() {
            let versions: Vec<u32> = message.versions.iter().map(|v| v.version).collect();
            let mut checked = BTreeSet::new();
            for channel in domain.channels_of(&message.name) {
                for (older, newer, direction) in pairs(channel.compatibility, &versions) {
                    review.pairs_checked += 1;
                    for violation in compat_pair(
                        message,
                        older,
                        newer,
                        direction,
                        channel.compatibility,
                        &channel.name,
                    ) {
                        let key = (
                            violation.rule.clone(),
                            violation.pointer.clone(),
                            older,
                            newer,
                            direction,
                        );
                        if checked.insert(key) {
                            review.violations.push(violation);
                        }
                    }
                }
            }
            let severity = if codegen_errors {
                Severity::Error
            } else {
                Severity::Warning
            };
            review.violations.extend(codegen_breaks(message, severity));
        }
        // Reviewed exceptions silence matching violations of their version.
        review.violations.retain(|v| {
            let excused = domain.exceptions.iter().position(|e| {
                v.file.starts_with(&domain.dir)
                    && v.to == Some(e.version)
                    && file_message(&v.file).as_deref() == Some(e.message.as_str())
                    && v.rule == e.rule
                    && v.pointer == e.pointer
            });
            if let Some(i) = excused {
                used.insert(i);
            }
            excused.is_none()
        });
        review.unused_exceptions.extend(
            domain
                .exceptions
                .iter()
                .enumerate()
                .filter(|(i, _)| !used.contains(i))
                .map(|(_, e)| e.clone()),
        );
    }
    review.violations.sort();
    review
}

fn file_message(file: &Path) -> Option<String> {
    let name = file.file_name()?.to_str()?;
    parse_version_file_name(name).map(|(message, _)| message)
}

fn compat_pair(
    message: &Message,
    older: u32,
    newer: u32,
    direction: Direction,
    mode: Compatibility,
    channel: &str,
) -> Vec<Violation> {
    let (Some(old), Some(new)) = (message.version(older), message.version(newer)) else {
        return Vec::new();
    };
    let (reader, writer) = match direction {
        Direction::Backward => (&new.schema, &old.schema),
        Direction::Forward => (&old.schema, &new.schema),
    };
    let positions = Positions::of(&new.text);
    accepts(reader, writer)
        .into_iter()
        .map(|finding| {
            let pointer = match direction {
                Direction::Backward => finding.reader_pointer,
                Direction::Forward => finding.writer_pointer,
            };
            let (line, column) = positions.find(&pointer);
            Violation {
                file: new.file.clone(),
                line,
                column,
                severity: Severity::Error,
                rule: finding.rule.id().to_string(),
                pointer,
                message: finding.message,
                category: Category::Compatibility,
                channel: Some(channel.to_string()),
                mode: Some(mode.as_str()),
                from: Some(older),
                to: Some(newer),
                direction: Some(direction),
                witness: Some(finding.witness),
            }
        })
        .collect()
}

/// Changes between the two newest versions that keep JSON compatible but
/// break Rust code written against the channel's `Latest` type.
fn codegen_breaks(message: &Message, severity: Severity) -> Vec<Violation> {
    let n = message.versions.len();
    if n < 2 {
        return Vec::new();
    }
    let (old, new) = (&message.versions[n - 2], &message.versions[n - 1]);
    let positions = Positions::of(&new.text);
    let mut found = Vec::new();
    let mut push = |rule: &str, pointer: String, text: String| {
        let (line, column) = positions.find(&pointer);
        found.push(Violation {
            file: new.file.clone(),
            line,
            column,
            severity,
            rule: rule.to_string(),
            pointer,
            message: text,
            category: Category::GeneratedCode,
            channel: None,
            mode: None,
            from: Some(old.version),
            to: Some(new.version),
            direction: None,
            witness: None,
        });
    };
    let props = |schema: &Value| {
        schema
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let required = |schema: &Value| -> BTreeSet<String> {
        schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    // A referenced definition is its own Rust type, named after the
    // definition; otherwise the JSON type decides the Rust type.
    let type_of = |root: &Value, schema: &Value| -> Option<Value> {
        schema
            .get("$ref")
            .cloned()
            .or_else(|| resolve_ref(root, schema).get("type").cloned())
    };
    let (old_props, new_props) = (props(&old.schema), props(&new.schema));
    let (old_required, new_required) = (required(&old.schema), required(&new.schema));
    for (name, old_prop) in &old_props {
        let at = format!(
            "/properties/{}",
            crate::validate::escape_pointer_token(name)
        );
        let Some(new_prop) = new_props.get(name) else {
            push(
                CODEGEN_FIELD_REMOVED,
                "/properties".into(),
                format!("field `{name}` disappears from the generated type; code reading it stops compiling"),
            );
            continue;
        };
        let (was, is) = (old_required.contains(name), new_required.contains(name));
        if was != is {
            let (from, to) = if was {
                ("T", "Option<T>")
            } else {
                ("Option<T>", "T")
            };
            push(
                CODEGEN_FIELD_OPTIONALITY_CHANGED,
                at.clone(),
                format!("field `{name}` changes from {from} to {to} in the generated type"),
            );
        }
        let (old_type, new_type) = (
            type_of(&old.schema, old_prop),
            type_of(&new.schema, new_prop),
        );
        if old_type != new_type {
            push(
                CODEGEN_FIELD_TYPE_CHANGED,
                at,
                format!(
                    "field `{name}` changes type ({} to {}) in the generated type",
                    old_type.map_or("untyped".into(), |t| t.to_string()),
                    new_type.map_or("untyped".into(), |t| t.to_string())
                ),
            );
        }
    }
    let defs = |schema: &Value| -> BTreeSet<String> {
        schema
            .get("$defs")
            .and_then(Value::as_object)
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default()
    };
    for name in defs(&old.schema).difference(&defs(&new.schema)) {
        push(
            CODEGEN_TYPE_REMOVED,
            "/$defs".into(),
            format!("type `{name}` is no longer generated (renamed or removed); code naming it stops compiling"),
        );
    }
    found
}

/// Released version files (as they were at the base revision) that changed
/// or disappeared. `base` holds `(path relative to the workspace, bytes)`.
pub fn immutability(workspace: &Path, base: &[(PathBuf, Vec<u8>)]) -> Vec<Violation> {
    let mut found = Vec::new();
    for (path, old_bytes) in base {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if parse_version_file_name(name).is_none() {
            continue;
        }
        let (rule, message) = match std::fs::read(workspace.join(path)) {
            Ok(bytes) if &bytes == old_bytes => continue,
            Ok(_) => (
                RELEASED_VERSION_CHANGED,
                "a released version never changes; revert this file and add the change as a new version file".to_string(),
            ),
            Err(_) => (
                RELEASED_VERSION_DELETED,
                "a released version is never deleted: old messages and agents still use it; restore the file".to_string(),
            ),
        };
        found.push(Violation {
            file: path.clone(),
            line: 1,
            column: 1,
            severity: Severity::Error,
            rule: rule.to_string(),
            pointer: String::new(),
            message,
            category: Category::Immutability,
            channel: None,
            mode: None,
            from: None,
            to: None,
            direction: None,
            witness: None,
        });
    }
    found
}

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `file:line:col: error[RULE] pointer: message (mode, vA -> vB)`, and
    /// for a compatibility violation `  witness: <document>` (or
    /// `  witness: none (why)`) on the next line.
    Text,
    /// A JSON array of violations.
    Json,
    /// GitHub Actions workflow commands (`::error file=...`), the witness
    /// on a second line of the message.
    Github,
}

/// Renders violations in `format`.
pub fn render(violations: &[Violation], format: Format) -> String {
    let mut out = String::new();
    match format {
        Format::Json => {
            out = serde_json::to_string_pretty(violations).unwrap_or_else(|_| "[]".into());
            out.push('\n');
        }
        Format::Text => {
            for v in violations {
                let _ = writeln!(
                    out,
                    "{}:{}:{}: {}[{}] {}: {}{}",
                    v.file.display(),
                    v.line,
                    v.column,
                    severity_name(v.severity),
                    v.rule,
                    if v.pointer.is_empty() {
                        "/"
                    } else {
                        &v.pointer
                    },
                    v.message,
                    context(v)
                );
                if let Some(witness) = &v.witness {
                    let _ = writeln!(out, "  witness: {witness}");
                }
            }
        }
        Format::Github => {
            for v in violations {
                let _ = writeln!(
                    out,
                    "::{} file={},line={},col={},title={}::{}: {}{}{}",
                    severity_name(v.severity),
                    v.file.display(),
                    v.line,
                    v.column,
                    v.rule,
                    if v.pointer.is_empty() {
                        "/"
                    } else {
                        &v.pointer
                    },
                    escape_github(&v.message),
                    escape_github(&context(v)),
                    v.witness
                        .as_ref()
                        .map(|w| format!("%0Awitness: {}", escape_github(&w.to_string())))
                        .unwrap_or_default()
                );
            }
        }
    }
    out
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn context(v: &Violation) -> String {
    match (v.mode, v.from, v.to, &v.channel) {
        (Some(mode), Some(from), Some(to), Some(channel)) => {
            format!(" ({mode} on channel {channel}, v{from} -> v{to})")
        }
        (None, Some(from), Some(to), _) => format!(" (v{from} -> v{to})"),
        _ => String::new(),
    }
}

/// GitHub workflow commands need `%`, CR and LF escaped in messages.
fn escape_github(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::MessageVersion;
    use serde_json::json;

    fn version(version: u32, schema: Value) -> MessageVersion {
        MessageVersion {
            version,
            file: PathBuf::from(format!("shop/order.v{version}.json")),
            text: serde_json::to_string_pretty(&schema).unwrap(),
            schema,
            title: "Order".into(),
            description: "An order.".into(),
            idempotency_key: vec!["/id".into()],
        }
    }

    #[test]
    fn generated_code_breaks_are_named_by_rule() {
        let v1 = json!({
            "type": "object", "additionalProperties": false, "required": ["id", "qty"],
            "properties": {
                "id": {"type": "string"}, "qty": {"type": "integer"}, "note": {"type": "string"},
                "region": {"$ref": "#/$defs/Region"}
            },
            "$defs": {"Region": {"enum": ["eu"]}}
        });
        let v2 = json!({
            "type": "object", "additionalProperties": false, "required": ["id"],
            "properties": {"id": {"type": "string"}, "qty": {"type": "number"}, "region": {"$ref": "#/$defs/Area"}},
            "$defs": {"Area": {"enum": ["eu"]}}
        });
        let message = Message {
            domain: "shop".into(),
            name: "order".into(),
            versions: vec![version(1, v1), version(2, v2)],
        };
        let found: Vec<(String, String)> = codegen_breaks(&message, Severity::Warning)
            .into_iter()
            .map(|v| (v.rule, v.pointer))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "CODEGEN_FIELD_REMOVED".to_string(),
                    "/properties".to_string()
                ),
                (
                    "CODEGEN_FIELD_OPTIONALITY_CHANGED".into(),
                    "/properties/qty".into()
                ),
                (
                    "CODEGEN_FIELD_TYPE_CHANGED".into(),
                    "/properties/qty".into()
                ),
                (
                    "CODEGEN_FIELD_TYPE_CHANGED".into(),
                    "/properties/region".into()
                ),
                ("CODEGEN_TYPE_REMOVED".into(), "/$defs".into()),
            ]
        );
        assert!(CODEGEN_RULES
            .iter()
            .all(|rule| found.iter().any(|(r, _)| r == rule)));
    }

    #[test]
    fn renders_every_format_with_the_witness() {
        let violation = Violation {
            file: "schemas/shop/order.v2.json".into(),
            line: 7,
            column: 3,
            severity: Severity::Error,
            rule: "REQUIRED_ADDED".into(),
            pointer: "/required".into(),
            message: "100% new\\nline".into(),
            category: Category::Compatibility,
            channel: Some("orders".into()),
            mode: Some("backward"),
            from: Some(1),
            to: Some(2),
            direction: Some(Direction::Backward),
            witness: Some(Witness::Verified(json!({"id": "50%"}))),
        };
        let text = render(std::slice::from_ref(&violation), Format::Text);
        assert_eq!(
            text,
            "schemas/shop/order.v2.json:7:3: error[REQUIRED_ADDED] /required: 100% new\\nline (backward on channel orders, v1 -> v2)\n  witness: {\"id\":\"50%\"}\n"
        );
        let github = render(std::slice::from_ref(&violation), Format::Github);
        assert!(github.starts_with("::error file=schemas/shop/order.v2.json,line=7,col=3,title=REQUIRED_ADDED::/required: 100%25 new"), "{github}");
        assert!(
            github.ends_with(
                "(backward on channel orders, v1 -> v2)%0Awitness: {\"id\":\"50%25\"}\n"
            ),
            "{github}"
        );
        assert_eq!(github.lines().count(), 1, "{github}");
        let json: Value =
            serde_json::from_str(&render(std::slice::from_ref(&violation), Format::Json)).unwrap();
        assert_eq!(json[0]["direction"], "backward");
        assert_eq!(json[0]["category"], "compatibility");
        assert_eq!(json[0]["witness"], json!({"id": "50%"}));
        assert!(json[0].get("witness_note").is_none());

        // Without a verified witness every format says why.
        let missing = Violation {
            witness: Some(Witness::Missing("no document found".into())),
            ..violation.clone()
        };
        let text = render(std::slice::from_ref(&missing), Format::Text);
        assert!(
            text.ends_with("\n  witness: none (no document found)\n"),
            "{text}"
        );
        let github = render(std::slice::from_ref(&missing), Format::Github);
        assert!(
            github.ends_with("%0Awitness: none (no document found)\n"),
            "{github}"
        );
        let json: Value =
            serde_json::from_str(&render(std::slice::from_ref(&missing), Format::Json)).unwrap();
        assert_eq!(json[0]["witness"], Value::Null);
        assert_eq!(json[0]["witness_note"], "no document found");

        // Other categories have no witness line and no witness field.
        let codegen = Violation {
            category: Category::GeneratedCode,
            witness: None,
            ..violation
        };
        assert_eq!(
            render(std::slice::from_ref(&codegen), Format::Text)
                .lines()
                .count(),
            1
        );
        let json: Value = serde_json::from_str(&render(&[codegen], Format::Json)).unwrap();
        assert!(json[0].get("witness").is_none());
    }
}
