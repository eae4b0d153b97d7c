//! Validating JSON values against courier schemas.
//!
//! Courier validates in two places: every message payload at run time (so a
//! schema is compiled once into a [`Validator`] and then checked against many
//! values), and `channels.json` files against their meta-schema.
//!
//! The engine is the `jsonschema` crate (draft 2020-12, formats asserted).
//! courier adds two things around it:
//!
//! * before compiling, its own pass ([`crate::subset`]) refuses what the code
//!   generator cannot express, other drafts' spellings and references other
//!   than `#` and `#/$defs/<name>`, with a message that says what to write
//!   instead; the keywords come from one table, [`crate::keywords`], shared
//!   with the compatibility checker;
//! * after validating, each error becomes a [`ValidationError`] with the
//!   instance path, the keyword, and a message that says what was expected
//!   and what was found. Dead-letter reasons are these messages.
//!
//! # Supported keywords
//!
//! * annotations, accepted and ignored: `$schema` (root only, and it must be
//!   draft 2020-12), `$id` (root only), `$comment`, `title`, `description`,
//!   `default`, `examples`, `deprecated`, `readOnly`, `writeOnly`, `$defs`
//!   (root only), and any key starting with `x-`;
//! * `$ref`, limited to `#` and `#/$defs/<name>` (recursion is allowed);
//! * `type`, `enum`, `const`;
//! * numbers: `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`,
//!   `multipleOf`;
//! * strings: `minLength`, `maxLength`, `pattern` (ECMA-262), `format`
//!   (`date-time`, `date`, `uuid`, `email`, `uri`, `ipv4`, `ipv6`; formats are
//!   asserted, not just annotations);
//! * arrays: `items`, `minItems`, `maxItems`, `uniqueItems`;
//! * objects: `properties`, `required`, `additionalProperties`;
//! * combinators: `allOf`, `oneOf`;
//! * the boolean schemas `true` and `false`.
//!
//! See [`SUPPORTED_KEYWORDS`] for the exact list.
//!
//! # Why a subset
//!
//! Every courier schema is also turned into Rust types by the code generator,
//! so a keyword is only worth supporting if it has a faithful Rust
//! representation. A keyword that validates one thing while the generated
//! type says another is worse than an error.

use std::fmt::{self, Write as _};
use std::sync::{Arc, LazyLock};

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

use crate::keywords::{self, FORMATS, TYPE_NAMES};
use crate::subset;
pub use crate::subset::SchemaProblem;
pub use crate::text::escape_pointer_token;
use crate::text::{quote, show, show_pointer, type_name};

/// The keywords [`Validator::compile`] accepts (sorted), for docs and lints.
///
/// Keys starting with `x-` are also accepted, as annotations.
pub static SUPPORTED_KEYWORDS: LazyLock<Vec<&'static str>> = LazyLock::new(keywords::supported);

/// Values nested deeper than this are refused before validation, which
/// recurses once per level. serde_json already refuses input deeper than
/// 128 levels, so this only stops values built in code from overflowing the
/// stack.
const MAX_VALUE_DEPTH: usize = 256;

/// `enum` lists longer than this are abbreviated in messages.
const MAX_SHOWN_ENUM: usize = 10;

/// A value that breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// JSON pointer into the instance, `""` for the root.
    pub instance_path: String,
    /// JSON pointer to the failing keyword in the schema document.
    pub schema_path: String,
    /// The failing keyword (`type`, `required`, ...; `false` for a `false`
    /// schema).
    pub keyword: String,
    /// What was expected and what was found, lowercase, without a trailing
    /// period.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", show_pointer(&self.instance_path), self.message)
    }
}

impl std::error::Error for ValidationError {}

/// A compiled JSON Schema, ready to validate many values.
///
/// Cheap to share: it is `Send + Sync`, clones share the compiled schema,
/// and validation takes `&self`.
#[derive(Debug, Clone)]
pub struct Validator {
    inner: Arc<jsonschema::Validator>,
}

impl Validator {
    /// Compile a schema document. Reports every problem of courier's subset
    /// at once, sorted by pointer; a schema inside the subset that the engine
    /// still refuses (an invalid `pattern`, say) is reported with its
    /// pointer too.
    pub fn compile(schema: &Value) -> Result<Validator, Vec<SchemaProblem>> {
        let problems = subset::check(schema);
        if !problems.is_empty() {
            return Err(problems);
        }
        Validator::compile_engine_only(schema)
    }

    /// Compile with the engine alone, without courier's subset pass. The
    /// compatibility checker compiles this way, to verify a witness or to
    /// check a listed value, only when a schema lies outside the subset (an
    /// `anyOf`, a keyword it does not model): the subset pass refuses
    /// schemas but never changes what an accepted one means. Everything
    /// else compiles with [`Validator::compile`].
    pub(crate) fn compile_engine_only(schema: &Value) -> Result<Validator, Vec<SchemaProblem>> {
        match jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(schema)
        {
            Ok(inner) => Ok(Validator {
                inner: Arc::new(inner),
            }),
            Err(error) => Err(vec![SchemaProblem {
                pointer: error.instance_path().as_str().to_owned(),
                message: schema_message(&error),
            }]),
        }
    }

    /// Validate an instance; collects every error (not just the first).
    pub fn validate(&self, instance: &Value) -> Result<(), Vec<ValidationError>> {
        if too_deep(instance) {
            return Err(vec![ValidationError {
                instance_path: String::new(),
                schema_path: String::new(),
                keyword: String::new(),
                message: format!(
                    "value is nested too deeply to validate (limit {MAX_VALUE_DEPTH} levels)"
                ),
            }]);
        }
        // The fast path first: a valid value builds no error at all.
        if self.inner.is_valid(instance) {
            return Ok(());
        }
        let mut errors: Vec<ValidationError> = Vec::new();
        for error in self.inner.iter_errors(instance) {
            convert(&error, &mut errors);
        }
        if errors.is_empty() {
            // Guards the contract that `Err` is never empty.
            errors.push(ValidationError {
                instance_path: String::new(),
                schema_path: String::new(),
                keyword: String::new(),
                message: "value does not match the schema".to_owned(),
            });
        }
        Err(errors)
    }

    /// Whether the instance is valid, stopping at the first failure. This
    /// is the fast path: it builds no messages.
    pub fn is_valid(&self, instance: &Value) -> bool {
        !too_deep(instance) && self.inner.is_valid(instance)
    }
}

/// Whether `value` nests arrays and objects deeper than [`MAX_VALUE_DEPTH`].
/// Its own recursion is bounded by that limit, and it allocates nothing.
fn too_deep(value: &Value) -> bool {
    fn deeper(value: &Value, allowed: usize) -> bool {
        match value {
            Value::Array(items) => allowed == 0 || items.iter().any(|v| deeper(v, allowed - 1)),
            Value::Object(map) => allowed == 0 || map.values().any(|v| deeper(v, allowed - 1)),
            _ => false,
        }
    }
    deeper(value, MAX_VALUE_DEPTH)
}

/// The engine's complaint about a schema, without its own prefix.
fn schema_message(error: &jsonschema::ValidationError<'_>) -> String {
    match error.kind() {
        ValidationErrorKind::Format { format } if format == "regex" => format!(
            "invalid pattern {}: not a regular expression",
            show(error.instance())
        ),
        _ => error.to_string(),
    }
}

fn convert(error: &jsonschema::ValidationError<'_>, out: &mut Vec<ValidationError>) {
    let kind = error.kind();
    let instance_path = error.instance_path().as_str();
    let schema_path = error.schema_path().as_str();
    // One error per property that is not allowed, at that property, so that
    // each reads like every other error: where, and what is wrong there.
    if let ValidationErrorKind::AdditionalProperties { unexpected } = kind {
        for name in unexpected {
            out.push(ValidationError {
                instance_path: format!("{instance_path}/{}", escape_pointer_token(name)),
                schema_path: schema_path.to_owned(),
                keyword: "additionalProperties".to_owned(),
                message: format!(
                    "property {} is not allowed (additionalProperties is false)",
                    quote(name)
                ),
            });
        }
        return;
    }
    out.push(ValidationError {
        instance_path: instance_path.to_owned(),
        schema_path: schema_path.to_owned(),
        keyword: match kind {
            ValidationErrorKind::FalseSchema => "false".to_owned(),
            other => other.keyword().to_owned(),
        },
        message: describe(error),
    });
}

/// What was expected and what was found, for one error.
fn describe(error: &jsonschema::ValidationError<'_>) -> String {
    use ValidationErrorKind as K;
    let instance: &Value = error.instance();
    match error.kind() {
        K::FalseSchema => "no value is allowed here (the schema is false)".to_owned(),
        K::Type { kind } => {
            let expected: Vec<String> = match kind {
                TypeKind::Single(t) => vec![t.to_string()],
                TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect(),
            };
            let mut names: Vec<&str> = expected.iter().map(String::as_str).collect();
            names.sort_by_key(|name| TYPE_NAMES.iter().position(|t| t == name));
            let mut message = String::from("expected ");
            write_or_list(&mut message, &names);
            let _ = write!(message, ", found {}", type_name(instance));
            message
        }
        K::Constant { expected_value } => format!(
            "{} is not equal to const {}",
            show(instance),
            show(expected_value)
        ),
        K::Enum { options } => enum_message(instance, options),
        K::Minimum { limit } => format!("{} is less than the minimum {limit}", show(instance)),
        K::Maximum { limit } => format!("{} is greater than the maximum {limit}", show(instance)),
        K::ExclusiveMinimum { limit } => format!(
            "{} is less than or equal to the exclusiveMinimum {limit}",
            show(instance)
        ),
        K::ExclusiveMaximum { limit } => format!(
            "{} is greater than or equal to the exclusiveMaximum {limit}",
            show(instance)
        ),
        K::MultipleOf { multiple_of } => format!(
            "{} is not a multiple of {multiple_of} (multipleOf)",
            show(instance)
        ),
        K::MinLength { limit } => format!(
            "string of {} is shorter than minLength {limit}",
            plural(char_count(instance), "character", "characters")
        ),
        K::MaxLength { limit } => format!(
            "string of {} is longer than maxLength {limit}",
            plural(char_count(instance), "character", "characters")
        ),
        K::Pattern { pattern } => format!(
            "{} does not match pattern {}",
            show(instance),
            quote(pattern)
        ),
        K::Format { format } => {
            let described = FORMATS
                .iter()
                .find(|(name, _)| name == format)
                .map_or(format.as_str(), |(_, described)| described);
            format!("{} is not a valid {described}", show(instance))
        }
        K::MinItems { limit } => format!(
            "array of {} is shorter than minItems {limit}",
            plural(item_count(instance), "item", "items")
        ),
        K::MaxItems { limit } => format!(
            "array of {} is longer than maxItems {limit}",
            plural(item_count(instance), "item", "items")
        ),
        K::UniqueItems => match first_duplicate(instance) {
            Some((i, j)) => format!("items at index {i} and {j} are equal (uniqueItems)"),
            None => "items are not unique (uniqueItems)".to_owned(),
        },
        K::Required { property } => format!("missing required property {}", show(property)),
        K::OneOfMultipleValid { context } => {
            let matched = context.iter().filter(|errors| errors.is_empty()).count();
            format!("value matches {matched} branches of oneOf, expected exactly 1")
        }
        K::OneOfNotValid { context } => {
            // Say briefly why each branch failed, which is usually enough to
            // spot the branch that was meant.
            let mut message = String::from("value matches no branch of oneOf (");
            for (i, errors) in context.iter().enumerate() {
                if i > 0 {
                    message.push_str("; ");
                }
                let _ = write!(message, "branch {i}: ");
                match errors.first() {
                    Some(first) => {
                        let path = first.instance_path().as_str();
                        let relative = path
                            .strip_prefix(error.instance_path().as_str())
                            .unwrap_or(path);
                        if !relative.is_empty() {
                            let _ = write!(message, "{relative}: ");
                        }
                        message.push_str(&describe(first));
                        if errors.len() > 1 {
                            let _ = write!(message, " (+{} more)", errors.len() - 1);
                        }
                    }
                    None => message.push_str("does not match"),
                }
            }
            message.push(')');
            message
        }
        // Keywords outside courier's subset never reach here; the engine's
        // own words are the best fallback.
        _ => error.to_string(),
    }
}

fn char_count(value: &Value) -> u64 {
    value.as_str().map_or(0, |s| s.chars().count() as u64)
}

fn item_count(value: &Value) -> u64 {
    value.as_array().map_or(0, |a| a.len() as u64)
}

/// The first pair of equal items, for the `uniqueItems` message. Only runs
/// on a value already known to break the rule.
fn first_duplicate(value: &Value) -> Option<(usize, usize)> {
    let items = value.as_array()?;
    (1..items.len()).find_map(|j| {
        (0..j)
            .find(|&i| json_eq(&items[i], &items[j]))
            .map(|i| (i, j))
    })
}

/// JSON Schema equality: `1` and `1.0` are the same number.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
                return a == b;
            }
            if let (Some(a), Some(b)) = (x.as_u64(), y.as_u64()) {
                return a == b;
            }
            x.as_f64() == y.as_f64()
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

fn write_or_list(out: &mut String, items: &[&str]) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(if i + 1 == items.len() { " or " } else { ", " });
        }
        out.push_str(item);
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn enum_message(instance: &Value, options: &Value) -> String {
    let values = options.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut message = format!("{} is not one of ", show(instance));
    for (i, value) in values.iter().take(MAX_SHOWN_ENUM).enumerate() {
        if i > 0 {
            message.push_str(", ");
        }
        message.push_str(&show(value));
    }
    if values.len() > MAX_SHOWN_ENUM {
        let _ = write!(message, ", … ({} more)", values.len() - MAX_SHOWN_ENUM);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::DRAFT_2020_12;
    use serde_json::{json, Map};
    use std::borrow::Cow;

    /// Compiles `schema`, validates `instance`, and compares the errors as
    /// Display strings. Also checks that `is_valid` agrees.
    #[track_caller]
    fn check(schema: Value, instance: Value, expected: &[&str]) {
        let validator = match Validator::compile(&schema) {
            Ok(v) => v,
            Err(problems) => panic!("schema {schema} does not compile: {problems:?}"),
        };
        let actual: Vec<String> = match validator.validate(&instance) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        };
        assert_eq!(actual, expected, "schema {schema}, instance {instance}");
        assert_eq!(
            validator.is_valid(&instance),
            expected.is_empty(),
            "is_valid disagrees: schema {schema}, instance {instance}"
        );
    }

    /// Compiles `schema` and compares the problems as Display strings.
    #[track_caller]
    fn problems(schema: Value, expected: &[&str]) {
        let actual: Vec<String> = match Validator::compile(&schema) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(ToString::to_string).collect(),
        };
        assert_eq!(actual, expected, "schema {schema}");
    }

    #[test]
    fn validator_is_send_sync_clone() {
        fn assert_traits<T: Send + Sync + Clone + fmt::Debug>() {}
        assert_traits::<Validator>();
        assert_traits::<ValidationError>();
        assert_traits::<SchemaProblem>();
    }

    #[test]
    fn supported_keywords_are_sorted_and_all_compile() {
        let mut sorted = SUPPORTED_KEYWORDS.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, *SUPPORTED_KEYWORDS);
        // Every keyword the compiler knows is listed, and vice versa.
        for kw in keywords::assertions() {
            assert!(SUPPORTED_KEYWORDS.contains(&kw), "{kw} not listed");
        }
        let sample = |kw: &str| -> Value {
            match kw {
                "$schema" => json!(DRAFT_2020_12),
                "$ref" => json!("#"),
                "type" | "format" | "pattern" | "$id" | "$comment" | "title" | "description" => {
                    json!(if kw == "type" {
                        "string"
                    } else if kw == "format" {
                        "uuid"
                    } else {
                        "x"
                    })
                }
                "enum" | "examples" | "required" => json!(["a"]),
                "allOf" | "oneOf" => json!([true]),
                "$defs" | "properties" | "items" | "additionalProperties" => json!({}),
                "deprecated" | "readOnly" | "writeOnly" | "uniqueItems" => json!(true),
                _ => json!(1),
            }
        };
        for &kw in SUPPORTED_KEYWORDS.iter() {
            let mut schema = Map::new();
            schema.insert(kw.to_owned(), sample(kw));
            // `{"$ref": "#"}` alone is an endless cycle; give it a step.
            let schema = if kw == "$ref" {
                json!({"items": {"$ref": "#"}})
            } else {
                Value::Object(schema)
            };
            assert!(
                Validator::compile(&schema).is_ok(),
                "{kw}: {:?}",
                Validator::compile(&schema).err()
            );
        }
    }

    #[test]
    fn display_shows_root_as_slash() {
        let e = ValidationError {
            instance_path: String::new(),
            schema_path: "/type".into(),
            keyword: "type".into(),
            message: "m".into(),
        };
        assert_eq!(e.to_string(), "/: m");
        let p = SchemaProblem {
            pointer: "/a~1b".into(),
            message: "m".into(),
        };
        assert_eq!(p.to_string(), "/a~1b: m");
    }

    #[test]
    fn escapes_pointer_tokens() {
        assert!(matches!(
            escape_pointer_token("plain"),
            Cow::Borrowed("plain")
        ));
        assert_eq!(escape_pointer_token("a/b~c"), "a~1b~0c");
        assert_eq!(escape_pointer_token("~1"), "~01");
    }

    #[test]
    fn boolean_schemas() {
        check(json!(true), json!({"anything": [1]}), &[]);
        check(
            json!(false),
            json!(null),
            &["/: no value is allowed here (the schema is false)"],
        );
        check(
            json!({"properties": {"a": false}}),
            json!({"a": 1}),
            &["/a: no value is allowed here (the schema is false)"],
        );
        check(json!({"properties": {"a": false}}), json!({"b": 1}), &[]);
    }

    #[test]
    fn type_keyword() {
        check(json!({"type": "string"}), json!("x"), &[]);
        check(
            json!({"type": "string"}),
            json!(1),
            &["/: expected string, found integer"],
        );
        check(json!({"type": ["string", "null"]}), json!(null), &[]);
        check(
            json!({"type": ["null", "string"]}),
            json!(true),
            &["/: expected string or null, found boolean"],
        );
        check(
            json!({"type": ["object", "array", "null"]}),
            json!(1.5),
            &["/: expected object, array or null, found number"],
        );
        check(json!({"type": "object"}), json!({}), &[]);
        check(json!({"type": "array"}), json!([]), &[]);
        check(json!({"type": "boolean"}), json!(false), &[]);
        check(
            json!({"type": "null"}),
            json!(0),
            &["/: expected null, found integer"],
        );
    }

    #[test]
    fn integer_versus_number() {
        let int = json!({"type": "integer"});
        check(int.clone(), json!(1), &[]);
        check(int.clone(), json!(-1), &[]);
        check(int.clone(), json!(1.0), &[]);
        check(int.clone(), json!(u64::MAX), &[]);
        check(int.clone(), json!(i64::MIN), &[]);
        check(int.clone(), json!(1e300), &[]);
        check(
            int.clone(),
            json!(1.5),
            &["/: expected integer, found number"],
        );
        check(int, json!("1"), &["/: expected integer, found string"]);
        let number = json!({"type": "number"});
        check(number.clone(), json!(1), &[]);
        check(number.clone(), json!(1.5), &[]);
        check(number, json!(null), &["/: expected number, found null"]);
    }

    #[test]
    fn enum_and_const() {
        let e = json!({"enum": ["a", "b"]});
        check(e.clone(), json!("a"), &[]);
        check(e, json!("x"), &[r#"/: "x" is not one of "a", "b""#]);
        // Numbers compare by value, objects ignore key order.
        check(json!({"enum": [1, {"a": 1, "b": [2.0]}]}), json!(1.0), &[]);
        check(
            json!({"enum": [1, {"a": 1, "b": [2.0]}]}),
            json!({"b": [2], "a": 1}),
            &[],
        );
        check(
            json!({"enum": [1]}),
            json!(true),
            &["/: true is not one of 1"],
        );
        let many: Vec<i32> = (0..12).collect();
        check(
            json!({"enum": many}),
            json!(99),
            &["/: 99 is not one of 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, … (2 more)"],
        );
        check(
            json!({"const": {"k": [1, null]}}),
            json!({"k": [1.0, null]}),
            &[],
        );
        check(
            json!({"const": "v1"}),
            json!("v2"),
            &[r#"/: "v2" is not equal to const "v1""#],
        );
        check(
            json!({"const": null}),
            json!(0),
            &["/: 0 is not equal to const null"],
        );
    }

    #[test]
    fn numeric_bounds() {
        check(json!({"maximum": 10}), json!(10), &[]);
        check(
            json!({"maximum": 10}),
            json!(12),
            &["/: 12 is greater than the maximum 10"],
        );
        check(json!({"minimum": 5}), json!(5.0), &[]);
        check(
            json!({"minimum": 5}),
            json!(4.5),
            &["/: 4.5 is less than the minimum 5"],
        );
        check(
            json!({"exclusiveMaximum": 10}),
            json!(10),
            &["/: 10 is greater than or equal to the exclusiveMaximum 10"],
        );
        check(json!({"exclusiveMaximum": 10}), json!(9.999), &[]);
        check(
            json!({"exclusiveMinimum": 0}),
            json!(0),
            &["/: 0 is less than or equal to the exclusiveMinimum 0"],
        );
        check(json!({"exclusiveMinimum": 0}), json!(1e-9), &[]);
        check(json!({"exclusiveMinimum": -1.5}), json!(-1), &[]);
        // Bounds ignore non-numbers.
        check(json!({"maximum": 1}), json!("big"), &[]);
    }

    #[test]
    fn big_integers_compare_exactly() {
        // u64::MAX - 1 and u64::MAX are the same f64; they must not compare equal.
        check(
            json!({"maximum": u64::MAX - 1}),
            json!(u64::MAX),
            &["/: 18446744073709551615 is greater than the maximum 18446744073709551614"],
        );
        check(json!({"maximum": u64::MAX}), json!(u64::MAX), &[]);
        check(
            json!({"minimum": i64::MIN + 1}),
            json!(i64::MIN),
            &["/: -9223372036854775808 is less than the minimum -9223372036854775807"],
        );
        check(json!({"minimum": -1}), json!(u64::MAX), &[]);
        check(
            json!({"maximum": 1.8446744073709552e19}),
            json!(u64::MAX),
            &[],
        );
        check(
            json!({"exclusiveMaximum": 9007199254740993u64}),
            json!(9007199254740993u64),
            &["/: 9007199254740993 is greater than or equal to the exclusiveMaximum 9007199254740993"],
        );
        check(
            json!({"const": 9007199254740993u64}),
            json!(9007199254740992u64),
            &["/: 9007199254740992 is not equal to const 9007199254740993"],
        );
        check(json!({"maximum": 1e300}), json!(u64::MAX), &[]);
        check(
            json!({"minimum": 1e300}),
            json!(u64::MAX),
            &["/: 18446744073709551615 is less than the minimum 1e+300"],
        );
    }

    #[test]
    fn multiple_of() {
        check(json!({"multipleOf": 2}), json!(10), &[]);
        check(
            json!({"multipleOf": 2}),
            json!(7),
            &["/: 7 is not a multiple of 2 (multipleOf)"],
        );
        check(json!({"multipleOf": 0.1}), json!(0.3), &[]);
        check(json!({"multipleOf": 0.0001}), json!(0.0075), &[]);
        check(
            json!({"multipleOf": 0.0001}),
            json!(0.00751),
            &["/: 0.00751 is not a multiple of 0.0001 (multipleOf)"],
        );
        check(json!({"multipleOf": 3}), json!(u64::MAX), &[]);
        check(
            json!({"multipleOf": 2}),
            json!(u64::MAX),
            &["/: 18446744073709551615 is not a multiple of 2 (multipleOf)"],
        );
        check(json!({"multipleOf": 2.0}), json!(4.0), &[]);
        check(json!({"multipleOf": 0.5}), json!(1e308), &[]);
        check(
            json!({"multipleOf": 0.123456789}),
            json!(1e308),
            &["/: 1e+308 is not a multiple of 0.123456789 (multipleOf)"],
        );
    }

    #[test]
    fn string_lengths_count_code_points() {
        check(json!({"maxLength": 3}), json!("héé"), &[]);
        check(json!({"minLength": 2}), json!("日本"), &[]);
        check(
            json!({"maxLength": 500}),
            json!("x".repeat(501)),
            &["/: string of 501 characters is longer than maxLength 500"],
        );
        check(
            json!({"minLength": 2}),
            json!("é"),
            &["/: string of 1 character is shorter than minLength 2"],
        );
        check(json!({"minLength": 2.0}), json!("ab"), &[]);
        check(json!({"minLength": 5}), json!(3), &[]);
    }

    #[test]
    fn pattern_is_unanchored_ecma() {
        check(json!({"pattern": "^[0-9]+$"}), json!("123"), &[]);
        check(
            json!({"pattern": "^[0-9]+$"}),
            json!("abc"),
            &[r#"/: "abc" does not match pattern "^[0-9]+$""#],
        );
        check(json!({"pattern": "b"}), json!("abc"), &[]);
        check(json!({"pattern": "\\d{2}"}), json!("a12"), &[]);
        check(json!({"pattern": "^a"}), json!(12), &[]);
    }

    #[test]
    fn formats() {
        let cases: &[(&str, &str, bool)] = &[
            ("date-time", "2024-02-29T12:30:00Z", true),
            ("date-time", "2024-02-29t12:30:00.123+05:30", true),
            ("date-time", "2024-02-29 12:30:00Z", false),
            ("date-time", "2023-02-29T12:30:00Z", false),
            ("date-time", "2024-02-29T12:30:00", false),
            ("date-time", "nope", false),
            ("date", "2024-02-29", true),
            ("date", "2023-02-29", false),
            ("date", "2024-2-29", false),
            ("date", "+2024-02-29", false),
            ("uuid", "67e55044-10b1-426f-9247-bb680e5fe0c8", true),
            ("uuid", "67E55044-10B1-426F-9247-BB680E5FE0C8", true),
            ("uuid", "67e5504410b1426f9247bb680e5fe0c8", false),
            ("uuid", "67e55044-10b1-426f-9247-bb680e5fe0cg", false),
            ("email", "ops@example.com", true),
            ("email", "ops@example", true),
            ("email", "ops.example.com", false),
            ("email", "@example.com", false),
            ("email", "a@b@example.com", false),
            ("email", "a b@example.com", false),
            ("uri", "https://example.com/a?b#c", true),
            ("uri", "urn:isbn:0451450523", true),
            ("uri", "/relative/path", false),
            ("uri", "1http://x", false),
            ("uri", "https://exa mple.com", false),
            ("ipv4", "192.168.0.1", true),
            ("ipv4", "256.1.1.1", false),
            ("ipv6", "::1", true),
            ("ipv6", "2001:db8::8a2e:370:7334", true),
            ("ipv6", "192.168.0.1", false),
        ];
        for &(format, value, ok) in cases {
            let schema = json!({"format": format});
            let expected = format!(
                "/: {} is not a valid {}",
                quote(value),
                FORMATS
                    .iter()
                    .find(|(n, _)| *n == format)
                    .map_or("?", |(_, d)| *d)
            );
            let expected: &[&str] = if ok { &[] } else { &[expected.as_str()] };
            check(schema, json!(value), expected);
        }
        check(
            json!({"format": "date-time"}),
            json!("nope"),
            &[r#"/: "nope" is not a valid date-time (RFC 3339)"#],
        );
        // Formats only apply to strings.
        check(json!({"format": "uuid"}), json!(5), &[]);
    }

    #[test]
    fn arrays() {
        let schema = json!({"items": {"type": "integer"}, "minItems": 1, "maxItems": 3});
        check(schema.clone(), json!([1, 2]), &[]);
        check(
            schema.clone(),
            json!([1, "x", 3, null]),
            &[
                "/: array of 4 items is longer than maxItems 3",
                "/1: expected integer, found string",
                "/3: expected integer, found null",
            ],
        );
        check(
            schema,
            json!([]),
            &["/: array of 0 items is shorter than minItems 1"],
        );
        check(
            json!({"items": false}),
            json!([1]),
            &["/0: no value is allowed here (the schema is false)"],
        );
        check(json!({"items": false}), json!([]), &[]);
    }

    #[test]
    fn unique_items() {
        let schema = json!({"uniqueItems": true});
        check(schema.clone(), json!([1, 2, "1", [1], {"a": 1}]), &[]);
        check(
            schema.clone(),
            json!([1, 2, 1.0, {"a": 1, "b": 2}, {"b": 2, "a": 1}]),
            // The first pair of equal items is named.
            &["/: items at index 0 and 2 are equal (uniqueItems)"],
        );
        // Long arrays take the hashing path.
        let mut long: Vec<Value> = (0..100).map(|i| json!({"id": i, "tags": [i]})).collect();
        check(schema.clone(), Value::Array(long.clone()), &[]);
        long.push(json!({"tags": [7.0], "id": 7}));
        long.push(json!(50));
        long.push(json!(50.0));
        check(
            schema.clone(),
            Value::Array(long),
            &["/: items at index 7 and 100 are equal (uniqueItems)"],
        );
        check(json!({"uniqueItems": false}), json!([1, 1]), &[]);
    }

    #[test]
    fn objects() {
        let schema = json!({
            "type": "object",
            "properties": {
                "region": {"type": "string"},
                "a/b": {"type": "integer"}
            },
            "required": ["region", "a/b"],
            "additionalProperties": false
        });
        check(schema.clone(), json!({"region": "eu", "a/b": 1}), &[]);
        check(
            schema.clone(),
            json!({"a/b": "x", "bar": 2, "foo": 1}),
            &[
                r#"/: missing required property "region""#,
                "/a~1b: expected integer, found string",
                r#"/bar: property "bar" is not allowed (additionalProperties is false)"#,
                r#"/foo: property "foo" is not allowed (additionalProperties is false)"#,
            ],
        );
        check(
            json!({"properties": {"a": true}, "additionalProperties": {"type": "integer"}}),
            json!({"a": "s", "b": 1, "c": "x"}),
            &["/c: expected integer, found string"],
        );
        check(json!({"required": ["a"]}), json!([1]), &[]);
    }

    #[test]
    fn schema_paths_point_at_the_keyword() {
        let schema = json!({
            "$defs": {"Region": {"enum": ["eu", "us"]}},
            "properties": {"r": {"$ref": "#/$defs/Region"}, "n": {"maximum": 1}}
        });
        let v = Validator::compile(&schema).unwrap();
        let errors = v.validate(&json!({"r": "mars", "n": 2})).unwrap_err();
        let paths: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.instance_path.as_str(), e.schema_path.as_str()))
            .collect();
        assert_eq!(
            paths,
            [
                ("/n", "/properties/n/maximum"),
                ("/r", "/$defs/Region/enum")
            ]
        );
    }

    #[test]
    fn refs_and_recursion() {
        let tree = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$defs": {
                "Node": {
                    "type": "object",
                    "properties": {
                        "value": {"type": "integer"},
                        "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}
                    },
                    "required": ["value"]
                }
            },
            "$ref": "#/$defs/Node"
        });
        check(
            tree.clone(),
            json!({"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]}),
            &[],
        );
        check(
            tree,
            json!({"value": 1, "children": [{"value": 2, "children": [{"value": "3"}, {}]}]}),
            &[
                "/children/0/children/0/value: expected integer, found string",
                r#"/children/0/children/1: missing required property "value""#,
            ],
        );
        // Recursion through the root.
        check(
            json!({"type": ["integer", "array"], "items": {"$ref": "#"}}),
            json!([1, [2, [3, "x"]]]),
            &["/1/1/1: expected array or integer, found string"],
        );
        // $ref with siblings applies both.
        check(
            json!({"$defs": {"S": {"type": "string"}}, "$ref": "#/$defs/S", "maxLength": 2}),
            json!("abc"),
            &["/: string of 3 characters is longer than maxLength 2"],
        );
        // Escaped and percent-encoded names.
        check(
            json!({"$defs": {"a/b~c": {"type": "null"}, "d e": {"type": "null"}},
                   "properties": {"x": {"$ref": "#/$defs/a~1b~0c"}, "y": {"$ref": "#/$defs/d%20e"}}}),
            json!({"x": 1, "y": null}),
            &["/x: expected null, found integer"],
        );
    }

    #[test]
    fn deep_values_do_not_overflow() {
        let nested = |levels: usize| {
            let mut value = json!(1);
            for _ in 0..levels {
                value = Value::Array(vec![value]);
            }
            value
        };
        let v = Validator::compile(&json!({"items": {"$ref": "#"}})).unwrap();
        assert!(v.is_valid(&nested(200)));
        // serde_json refuses input nested deeper than 128 levels, so only a
        // value built in code gets this deep.
        let value = nested(2000);
        assert!(!v.is_valid(&value));
        let errors = v.validate(&value).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.starts_with("value is nested too deeply"));
    }

    #[test]
    fn one_of() {
        let schema = json!({"oneOf": [
            {"type": "string", "maxLength": 3},
            {"type": "object", "required": ["kind"]},
            {"type": "integer"}
        ]});
        check(schema.clone(), json!("abc"), &[]);
        check(schema.clone(), json!(3), &[]);
        check(
            schema.clone(),
            json!(true),
            &["/: value matches no branch of oneOf (branch 0: expected string, found boolean; \
               branch 1: expected object, found boolean; branch 2: expected integer, found boolean)"],
        );
        check(
            json!({"properties": {"p": schema}}),
            json!({"p": {"a": {}}}),
            &[
                r#"/p: value matches no branch of oneOf (branch 0: expected string, found object; branch 1: missing required property "kind"; branch 2: expected integer, found object)"#,
            ],
        );
        check(
            json!({"oneOf": [{"type": "number"}, {"type": "integer"}, {"minimum": 0}]}),
            json!(5),
            &["/: value matches 3 branches of oneOf, expected exactly 1"],
        );
        check(
            json!({"oneOf": [{"properties": {"a": {"properties": {"b": {"type": "string"}}}}}, false]}),
            json!({"a": {"b": 1}}),
            &["/: value matches no branch of oneOf (branch 0: /a/b: expected string, found integer; branch 1: no value is allowed here (the schema is false))"],
        );
    }

    #[test]
    fn all_of() {
        let schema = json!({"allOf": [{"minimum": 1}, {"multipleOf": 2}]});
        check(schema.clone(), json!(4), &[]);
        check(
            schema,
            json!(-1),
            &[
                "/: -1 is less than the minimum 1",
                "/: -1 is not a multiple of 2 (multipleOf)",
            ],
        );
    }

    #[test]
    fn annotations_are_ignored() {
        check(
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$id": "https://courier.example/schemas/x.json",
                "$comment": "c", "title": "t", "description": "d",
                "default": 3, "examples": [1], "deprecated": true,
                "readOnly": false, "writeOnly": false, "x-rust-type": {"anything": 1},
                "$defs": {"Unused": {"type": "string"}}
            }),
            json!(null),
            &[],
        );
    }

    #[test]
    fn rejected_keywords_name_their_pointer() {
        let cases: &[(&str, &str)] = &[
            (
                "if",
                r#"unsupported keyword "if": the code generator cannot handle conditional schemas (if/then/else)"#,
            ),
            (
                "then",
                r#"unsupported keyword "then": the code generator cannot handle conditional schemas (if/then/else)"#,
            ),
            (
                "else",
                r#"unsupported keyword "else": the code generator cannot handle conditional schemas (if/then/else)"#,
            ),
            (
                "not",
                r#"unsupported keyword "not": the code generator cannot handle it"#,
            ),
            (
                "anyOf",
                r#"unsupported keyword "anyOf": use oneOf (the code generator turns anyOf into a struct of optional fields)"#,
            ),
            (
                "definitions",
                r#"unsupported keyword "definitions": it is draft-07; use "$defs" (draft 2020-12)"#,
            ),
            (
                "dependencies",
                r#"unsupported keyword "dependencies": it is a draft-07 keyword; courier schemas are draft 2020-12"#,
            ),
            (
                "additionalItems",
                r#"unsupported keyword "additionalItems": it is a draft-07 keyword; courier schemas are draft 2020-12"#,
            ),
        ];
        for &(kw, message) in cases {
            let mut inner = Map::new();
            inner.insert(kw.to_owned(), json!({}));
            let schema = json!({"properties": {"p": Value::Object(inner)}});
            let expected = format!("/properties/p/{kw}: {message}");
            problems(schema, &[expected.as_str()]);
        }
        for kw in [
            "patternProperties",
            "propertyNames",
            "unevaluatedProperties",
            "unevaluatedItems",
            "prefixItems",
            "contains",
            "minContains",
            "maxContains",
            "dependentRequired",
            "dependentSchemas",
            "minProperties",
            "maxProperties",
            "$anchor",
            "$dynamicRef",
            "$dynamicAnchor",
            "$recursiveRef",
        ] {
            let mut inner = Map::new();
            inner.insert(kw.to_owned(), json!(1));
            let schema = json!({"items": Value::Object(inner)});
            let Some(keywords::Keyword {
                role: keywords::Role::Refused(why),
                ..
            }) = keywords::lookup(kw)
            else {
                panic!("{kw} is not refused by the keyword table");
            };
            let expected = format!("/items/{kw}: unsupported keyword \"{kw}\": {why}");
            problems(schema, &[expected.as_str()]);
        }
    }

    #[test]
    fn unknown_keywords() {
        problems(
            json!({"maxlength": 3}),
            &[r#"/maxlength: unknown keyword "maxlength" (did you mean "maxLength"?)"#],
        );
        problems(
            json!({"nullable": true}),
            &[r#"/nullable: unknown keyword "nullable"; custom annotations must start with "x-""#],
        );
    }

    #[test]
    fn bad_refs() {
        problems(
            json!({"properties": {"a": {"$ref": "#/definitions/A"}}}),
            &[r#"/properties/a/$ref: "definitions" is draft-07; use "$defs" (draft 2020-12)"#],
        );
        problems(
            json!({"$ref": "#/$defs/X"}),
            &[r##"/$ref: $ref target "#/$defs/X" does not exist"##],
        );
        problems(
            json!({"$ref": "other.json#/$defs/X"}),
            &[
                r##"/$ref: external $ref "other.json#/$defs/X" is not supported; only "#" and "#/$defs/<name>" are supported"##,
            ],
        );
        problems(
            json!({"$defs": {"A": {"$defs": {"B": true}}}, "$ref": "#/$defs/A/$defs/B"}),
            &[
                r##"/$ref: unsupported $ref "#/$defs/A/$defs/B": it points inside a definition; only "#" and "#/$defs/<name>" are supported"##,
            ],
        );
        problems(
            json!({"$ref": "#/properties/a"}),
            &[
                r##"/$ref: unsupported $ref "#/properties/a"; only "#" and "#/$defs/<name>" are supported"##,
            ],
        );
        problems(
            json!({"$ref": 5}),
            &["/$ref: $ref must be a string, found integer"],
        );
    }

    #[test]
    fn ref_cycles_are_rejected() {
        problems(
            json!({"$ref": "#"}),
            &["/$ref: this $ref forms a cycle that never steps into the value, so validation would recurse forever"],
        );
        problems(
            json!({"$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"oneOf": [{"$ref": "#/$defs/A"}]}}}),
            &["/$defs/B/oneOf/0/$ref: this $ref forms a cycle that never steps into the value, so validation would recurse forever"],
        );
        // Stepping into the value breaks the cycle.
        assert!(Validator::compile(&json!({"properties": {"next": {"$ref": "#"}}})).is_ok());
    }

    #[test]
    fn dialect() {
        problems(
            json!({"$schema": "http://json-schema.org/draft-07/schema#"}),
            &[
                r#"/$schema: $schema "http://json-schema.org/draft-07/schema#" is draft-07; courier schemas are draft 2020-12 ("https://json-schema.org/draft/2020-12/schema")"#,
            ],
        );
        problems(
            json!({"$schema": "https://example.com/my-schema"}),
            &[
                r#"/$schema: unsupported $schema "https://example.com/my-schema"; courier schemas use "https://json-schema.org/draft/2020-12/schema""#,
            ],
        );
        problems(
            json!({"items": {"$schema": DRAFT_2020_12, "$id": "x"}}),
            &[
                "/items/$id: $id is only supported at the root: a nested $id starts a new schema resource, which changes how $ref resolves",
                "/items/$schema: $schema is only allowed at the root of a schema",
            ],
        );
    }

    #[test]
    fn wrongly_typed_keyword_values() {
        problems(
            json!({"minimum": "3"}),
            &["/minimum: minimum must be a number, found string"],
        );
        problems(
            json!({"exclusiveMinimum": true}),
            &[
                r#"/exclusiveMinimum: exclusiveMinimum must be a number: a boolean exclusiveMinimum is draft-04; in draft 2020-12 write the limit itself, e.g. "exclusiveMinimum": 0"#,
            ],
        );
        problems(
            json!({"multipleOf": 0}),
            &["/multipleOf: multipleOf must be greater than 0, found 0"],
        );
        problems(
            json!({"maxLength": -1, "minItems": 1.5, "maxItems": "2"}),
            &[
                "/maxItems: maxItems must be a non-negative integer, found string",
                "/maxLength: maxLength must be a non-negative integer, found -1",
                "/minItems: minItems must be a non-negative integer, found 1.5",
            ],
        );
        problems(
            json!({"type": ["string", "int", "string", 3]}),
            &[
                "/type/1: unknown type \"int\"; expected one of object, array, string, integer, number, boolean, null",
                "/type/2: type \"string\" is listed twice",
                "/type/3: each type must be a string, found integer",
            ],
        );
        problems(
            json!({"type": []}),
            &["/type: type must not be an empty array"],
        );
        problems(json!({"enum": []}), &["/enum: enum must not be empty"]);
        problems(json!({"oneOf": []}), &["/oneOf: oneOf must not be empty"]);
        problems(
            json!({"allOf": {}}),
            &["/allOf: allOf must be an array of schemas, found object"],
        );
        problems(
            json!({"required": ["a", "a", 1]}),
            &[
                "/required/1: required lists \"a\" twice",
                "/required/2: each required name must be a string, found integer",
            ],
        );
        problems(
            json!({"items": [{"type": "string"}]}),
            &["/items: items as an array is the draft-07 tuple form; courier schemas are draft 2020-12, and its prefixItems is not supported either"],
        );
        problems(
            json!({"pattern": "(unclosed"}),
            &["/pattern: invalid pattern \"(unclosed\": not a regular expression"],
        );
        problems(
            json!({"format": "hostname"}),
            &[
                r#"/format: unsupported format "hostname"; supported: date, date-time, email, ipv4, ipv6, uri, uuid"#,
            ],
        );
        problems(
            json!({"properties": {"a": 3}, "additionalProperties": "no", "uniqueItems": 1}),
            &[
                "/additionalProperties: additionalProperties must be a boolean or a schema, found string",
                "/properties/a: a schema must be an object or a boolean, found integer",
                "/uniqueItems: uniqueItems must be a boolean, found integer",
            ],
        );
        problems(
            json!({"title": 1, "deprecated": "yes", "examples": {}}),
            &[
                "/deprecated: deprecated must be a boolean, found string",
                "/examples: examples must be an array, found object",
                "/title: title must be a string, found integer",
            ],
        );
        problems(
            json!({"minLength": 5, "maxLength": 3}),
            &["/minLength: minLength 5 is greater than maxLength 3, so no value can match"],
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        problems(
            json!({
                "$defs": {"Region": {"type": "strng"}},
                "properties": {
                    "a": {"anyOf": [true]},
                    "b": {"$ref": "#/$defs/Missing"},
                    "c": {"items": {"not": {}}}
                },
                "if": true
            }),
            &[
                "/$defs/Region/type: unknown type \"strng\"; expected one of object, array, string, integer, number, boolean, null",
                "/if: unsupported keyword \"if\": the code generator cannot handle conditional schemas (if/then/else)",
                "/properties/a/anyOf: unsupported keyword \"anyOf\": use oneOf (the code generator turns anyOf into a struct of optional fields)",
                "/properties/b/$ref: $ref target \"#/$defs/Missing\" does not exist",
                "/properties/c/items/not: unsupported keyword \"not\": the code generator cannot handle it",
            ],
        );
    }

    #[test]
    fn deep_schemas_are_rejected_not_overflowed() {
        let mut schema = json!(true);
        for _ in 0..200 {
            schema = json!({"items": schema});
        }
        let result = Validator::compile(&schema);
        let problems = result.expect_err("too deep");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("nested more than"));
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "y".repeat(200);
        let errors = Validator::compile(&json!({"const": "x"}))
            .unwrap()
            .validate(&json!(long))
            .unwrap_err();
        assert!(errors[0].message.len() < 120, "{}", errors[0].message);
        assert!(errors[0].message.contains('…'));
    }
}
