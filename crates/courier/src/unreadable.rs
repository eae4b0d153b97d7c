//! What a queue held for a message that has no readable envelope: bytes
//! that are not UTF-8 text, or a stream entry whose envelope is not under
//! the envelope field. Such a message is dead-lettered, and its dead
//! letter keeps what was found, escaped, so that nothing is lost.
//!
//! The escaping is the one `courier dlq show` prints and docs/protocol.md
//! (section 2.5) describes: UTF-8 text as it is, each backslash doubled,
//! each byte that is not part of valid UTF-8 as `\xNN` (two lowercase hex
//! digits). A stream entry without the envelope field is kept as a JSON
//! object of its fields, each value escaped the same way.

use std::collections::HashMap;
use std::fmt::Write as _;

use redis::Value;

/// A message without a readable envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unreadable {
    /// Why it cannot be read, for the dead letter's error.
    pub(crate) why: String,
    /// What was found, escaped.
    pub(crate) content: String,
}

impl Unreadable {
    /// Bytes that are not UTF-8 text, stored where an envelope belongs.
    pub(crate) fn bytes(what: &str, bytes: &[u8]) -> Unreadable {
        Unreadable {
            why: format!("{what} is not UTF-8 text"),
            content: escape(bytes),
        }
    }

    /// A stream entry without the envelope field `field`.
    pub(crate) fn entry_without(field: &str, fields: &HashMap<String, Value>) -> Unreadable {
        let mut names: Vec<&String> = fields.keys().collect();
        names.sort();
        let object: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .map(|name| {
                let text = match &fields[*name] {
                    Value::BulkString(bytes) => escape(bytes),
                    Value::SimpleString(text) => escape(text.as_bytes()),
                    other => format!("{other:?}"),
                };
                ((*name).clone(), serde_json::Value::String(text))
            })
            .collect();
        let listed: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
        Unreadable {
            why: format!(
                "the stream entry has no envelope field \"{field}\" (its fields: {})",
                if listed.is_empty() {
                    "none".to_owned()
                } else {
                    listed.join(", ")
                }
            ),
            content: serde_json::Value::Object(object).to_string(),
        }
    }
}

/// `bytes` as text: valid UTF-8 as it is with each backslash doubled, every
/// other byte as `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_without_the_envelope_field_keeps_every_field() {
        let fields = HashMap::from([
            (
                "payload".to_owned(),
                Value::BulkString(b"{\"a\":1}".to_vec()),
            ),
            ("z".to_owned(), Value::BulkString(b"\xff".to_vec())),
        ]);
        let found = Unreadable::entry_without("m", &fields);
        assert_eq!(
            found.why,
            "the stream entry has no envelope field \"m\" (its fields: payload, z)"
        );
        let kept: serde_json::Value = serde_json::from_str(&found.content).unwrap();
        assert_eq!(
            kept,
            serde_json::json!({"payload": "{\"a\":1}", "z": "\\xff"})
        );
    }
}
