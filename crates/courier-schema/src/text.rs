//! Small text helpers shared by the subset pass and the validator: JSON
//! pointer tokens, and values shown in messages.

use std::borrow::Cow;

use serde_json::Value;

/// Long values are cut in messages so that an error stays readable.
const MAX_SHOWN_CHARS: usize = 80;

/// Escape one JSON-pointer token (~ -> ~0, / -> ~1).
///
/// Borrows when there is nothing to escape, which is almost always.
pub fn escape_pointer_token(s: &str) -> Cow<'_, str> {
    if s.contains(['~', '/']) {
        // `~` first, or the `~` of a freshly written `~1` would be escaped again.
        Cow::Owned(s.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(s)
    }
}

/// The JSON Schema type of a value; an integral number is an `integer`.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(n)
            if n.as_f64()
                .is_some_and(|f| f.is_finite() && f.fract() == 0.0) =>
        {
            "integer"
        }
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value as JSON, cut to a readable length.
pub fn show(value: &Value) -> String {
    truncate(value.to_string())
}

/// A string as a JSON string literal, cut to a readable length.
pub fn quote(s: &str) -> String {
    truncate(Value::String(s.to_owned()).to_string())
}

fn truncate(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_SHOWN_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// The root pointer `""` is invisible in a message, so it is shown as `/`.
pub fn show_pointer(pointer: &str) -> &str {
    if pointer.is_empty() {
        "/"
    } else {
        pointer
    }
}
