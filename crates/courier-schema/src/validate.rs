//! A compiled JSON Schema validator for the subset of draft 2020-12 that courier supports.
//!
//! Courier uses it in two places: on every message payload at run time (so a
//! schema is compiled once into a [`Validator`] and then checked against many
//! values), and to check `channels.json` files against a meta-schema.
//!
//! # Supported keywords
//!
//! * annotations, accepted and ignored: `$schema` (root only, and it must be
//!   draft 2020-12), `$id` (root only), `$comment`, `title`, `description`,
//!   `default`, `examples`, `deprecated`, `readOnly`, `writeOnly`, `$defs`, and
//!   any key starting with `x-`;
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
//! representation. Keywords that the generator cannot express (`not`,
//! `if`/`then`/`else`, `anyOf`, `patternProperties`, ...) and draft-07 spellings
//! (`definitions`, `dependencies`, tuple `items`) are rejected at compile time
//! with a message that says what to write instead, rather than silently
//! ignored: a keyword that validates one thing while the generated type says
//! another is worse than an error.
//!
//! # Design
//!
//! [`Validator::compile`] turns the schema into an arena of nodes whose
//! keywords are an enum, so validation never looks at the schema JSON again
//! and a recursive `$ref` is simply an index into the arena. Instance paths
//! are kept as a linked list on the stack and only turned into strings when an
//! error is reported, so a successful [`Validator::is_valid`] allocates
//! nothing (apart from what the regex engine uses for `pattern`, and sorting
//! scratch space for `uniqueItems` on long arrays).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};

use serde_json::{Map, Number, Value};

/// The keywords `Validator::compile` accepts (sorted), for docs and lints.
///
/// Keys starting with `x-` are also accepted, as annotations.
pub const SUPPORTED_KEYWORDS: &[&str] = &[
    "$comment",
    "$defs",
    "$id",
    "$ref",
    "$schema",
    "additionalProperties",
    "allOf",
    "const",
    "default",
    "deprecated",
    "description",
    "enum",
    "examples",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "format",
    "items",
    "maxItems",
    "maxLength",
    "maximum",
    "minItems",
    "minLength",
    "minimum",
    "multipleOf",
    "oneOf",
    "pattern",
    "properties",
    "readOnly",
    "required",
    "title",
    "type",
    "uniqueItems",
    "writeOnly",
];

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

/// A problem in the schema itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaProblem {
    /// JSON pointer into the schema, `""` for the root.
    pub pointer: String,
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
}

impl fmt::Display for SchemaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", show_pointer(&self.pointer), self.message)
    }
}

impl std::error::Error for SchemaProblem {}

/// A value that breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// JSON pointer into the instance, `""` for the root.
    pub instance_path: String,
    /// JSON pointer to the failing keyword in the schema document.
    ///
    /// This is where the keyword is written, so after a `$ref` it points into
    /// `$defs`, not along the path that led there.
    pub schema_path: String,
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", show_pointer(&self.instance_path), self.message)
    }
}

impl std::error::Error for ValidationError {}

/// The root pointer `""` is invisible in a message, so it is shown as `/`.
fn show_pointer(pointer: &str) -> &str {
    if pointer.is_empty() {
        "/"
    } else {
        pointer
    }
}

/// The only `$schema` courier accepts.
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Schemas nested deeper than this are rejected, so that a hostile or
/// generated schema cannot overflow the stack of the compiler.
const MAX_SCHEMA_DEPTH: usize = 128;

/// Validation gives up below this many nested schema evaluations. JSON parsed
/// by serde_json is at most 128 levels deep, so this only stops values built
/// in code from overflowing the stack.
const MAX_EVAL_DEPTH: usize = 512;

/// Arrays up to this length are checked for `uniqueItems` pairwise, which
/// allocates nothing; longer ones are hashed and sorted.
const UNIQUE_PAIRWISE_LIMIT: usize = 32;

/// Long values are cut in messages so that an error stays readable.
const MAX_SHOWN_CHARS: usize = 80;

/// `enum` lists longer than this are abbreviated in messages.
const MAX_SHOWN_ENUM: usize = 10;

type NodeId = usize;

/// The root schema is always the first node of the arena, so `"#"` needs no
/// lookup.
const ROOT: NodeId = 0;

/// A compiled JSON Schema, ready to validate many values.
///
/// Cheap to share: it is `Send + Sync`, and validation takes `&self`.
#[derive(Debug, Clone)]
pub struct Validator {
    nodes: Box<[Node]>,
}

#[derive(Debug, Clone)]
enum Node {
    True,
    False {
        path: Box<str>,
    },
    Schema {
        path: Box<str>,
        keywords: Box<[Keyword]>,
    },
}

#[derive(Debug, Clone)]
struct Keyword {
    /// Pointer to this keyword in the schema, reported in errors.
    path: Box<str>,
    check: Check,
}

#[derive(Debug, Clone)]
enum Check {
    Ref(NodeId),
    Type(TypeSet),
    Enum(Box<[Value]>),
    Const(Value),
    Minimum(Limit),
    Maximum(Limit),
    ExclusiveMinimum(Limit),
    ExclusiveMaximum(Limit),
    MultipleOf(Limit),
    MinLength(u64),
    MaxLength(u64),
    Pattern(Box<Pattern>),
    Format(Format),
    Items(NodeId),
    MinItems(u64),
    MaxItems(u64),
    UniqueItems,
    /// Sorted by name.
    Properties(Box<[(Box<str>, NodeId)]>),
    Required(Box<[Box<str>]>),
    AdditionalProperties(Box<Additional>),
    AllOf(Box<[NodeId]>),
    OneOf(Box<[NodeId]>),
}

#[derive(Debug, Clone)]
struct Pattern {
    source: Box<str>,
    regex: regress::Regex,
}

#[derive(Debug, Clone)]
struct Additional {
    /// The names in the sibling `properties`, sorted for binary search.
    known: Box<[Box<str>]>,
    /// `None` for `additionalProperties: false`, which gets its own message.
    schema: Option<NodeId>,
}

/// A numeric keyword value: `num` to compare, `shown` to print exactly as the
/// schema wrote it.
#[derive(Debug, Clone)]
struct Limit {
    num: Num,
    shown: Number,
}

// ---------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------

/// A JSON number in the form that compares without losing precision: large
/// integers stay integers instead of going through `f64`.
#[derive(Debug, Clone, Copy)]
enum Num {
    U(u64),
    /// Only ever negative.
    I(i64),
    /// Only non-integral values or integers outside the `i64`/`u64` range, so
    /// that equal values always have the same variant.
    F(f64),
}

const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

impl Num {
    fn of(n: &Number) -> Num {
        if let Some(u) = n.as_u64() {
            Num::U(u)
        } else if let Some(i) = n.as_i64() {
            Num::I(i)
        } else {
            // `as_f64` only fails with serde_json's arbitrary_precision; NaN
            // then makes every comparison fail rather than pass.
            Num::from_f64(n.as_f64().unwrap_or(f64::NAN))
        }
    }

    fn from_f64(f: f64) -> Num {
        // `1.0` is the integer 1 in JSON Schema; normalising here makes it
        // compare, hash and pass `multipleOf` exactly like `1`.
        if f.fract() == 0.0 {
            if (0.0..TWO_POW_64).contains(&f) {
                return Num::U(f as u64);
            }
            if (-TWO_POW_63..0.0).contains(&f) {
                return Num::I(f as i64);
            }
        }
        Num::F(f)
    }

    fn int(self) -> Option<i128> {
        match self {
            Num::U(u) => Some(i128::from(u)),
            Num::I(i) => Some(i128::from(i)),
            Num::F(_) => None,
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Num::U(u) => u as f64,
            Num::I(i) => i as f64,
            Num::F(f) => f,
        }
    }

    fn is_integer(self) -> bool {
        match self {
            Num::U(_) | Num::I(_) => true,
            Num::F(f) => f.is_finite() && f.fract() == 0.0,
        }
    }

    /// `None` only for NaN, which JSON cannot express.
    fn compare(self, other: Num) -> Option<Ordering> {
        match (self.int(), other.int()) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            (Some(a), None) => cmp_int_float(a, other.as_f64()),
            (None, Some(b)) => cmp_int_float(b, self.as_f64()).map(Ordering::reverse),
            (None, None) => self.as_f64().partial_cmp(&other.as_f64()),
        }
    }

    fn is_multiple_of(self, divisor: Num) -> bool {
        if let (Some(a), Some(b)) = (self.int(), divisor.int()) {
            return b != 0 && a % b == 0;
        }
        let (a, b) = (self.as_f64(), divisor.as_f64());
        if b == 0.0 {
            return false;
        }
        let q = a / b;
        if !q.is_finite() {
            // The quotient overflowed (1e308 / 0.5): fall back on the exact
            // floating-point remainder, which cannot overflow.
            return (a % b) == 0.0;
        }
        // Decimal fractions are inexact in binary (0.3 / 0.1 is
        // 2.9999999999999996), so allow a few ulps of rounding error.
        (q - q.round()).abs() <= 4.0 * f64::EPSILON * q.abs().max(1.0)
    }
}

/// Compares an integer with a float exactly (no rounding of the integer).
fn cmp_int_float(n: i128, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    let whole = f.trunc();
    // `as` saturates, and any float beyond the i128 range is beyond every
    // u64/i64 as well, so saturation gives the right order.
    match n.cmp(&(whole as i128)) {
        Ordering::Equal if f > whole => Some(Ordering::Less),
        Ordering::Equal if f < whole => Some(Ordering::Greater),
        order => Some(order),
    }
}

/// Equality as JSON Schema defines it: numbers by value, objects ignoring key
/// order.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            Num::of(x).compare(Num::of(y)) == Some(Ordering::Equal)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// A hash consistent with [`json_eq`].
fn json_hash(value: &Value, h: &mut impl Hasher) {
    match value {
        Value::Null => 0u8.hash(h),
        Value::Bool(b) => {
            1u8.hash(h);
            b.hash(h);
        }
        Value::Number(n) => {
            2u8.hash(h);
            let num = Num::of(n);
            match num.int() {
                Some(i) => i.hash(h),
                None => num.as_f64().to_bits().hash(h),
            }
        }
        Value::String(s) => {
            3u8.hash(h);
            s.hash(h);
        }
        Value::Array(items) => {
            4u8.hash(h);
            items.len().hash(h);
            for item in items {
                json_hash(item, h);
            }
        }
        Value::Object(map) => {
            5u8.hash(h);
            map.len().hash(h);
            // Key order must not matter: combine per-entry hashes commutatively.
            let mut sum = 0u64;
            for (k, v) in map {
                let mut entry = DefaultHasher::new();
                k.hash(&mut entry);
                json_hash(v, &mut entry);
                sum = sum.wrapping_add(entry.finish());
            }
            sum.hash(h);
        }
    }
}

// ---------------------------------------------------------------------------
// Types and formats
// ---------------------------------------------------------------------------

/// The seven JSON Schema type names, in the order messages list them.
const TYPE_NAMES: [&str; 7] = [
    "object", "array", "string", "integer", "number", "boolean", "null",
];

const T_OBJECT: u8 = 1 << 0;
const T_ARRAY: u8 = 1 << 1;
const T_STRING: u8 = 1 << 2;
const T_INTEGER: u8 = 1 << 3;
const T_NUMBER: u8 = 1 << 4;
const T_BOOLEAN: u8 = 1 << 5;
const T_NULL: u8 = 1 << 6;

/// A set of type names, one bit per entry of [`TYPE_NAMES`].
#[derive(Debug, Clone, Copy)]
struct TypeSet(u8);

impl TypeSet {
    fn bit(name: &str) -> Option<u8> {
        TYPE_NAMES.iter().position(|t| *t == name).map(|i| 1u8 << i)
    }

    fn matches(self, value: &Value) -> bool {
        let bits = match value {
            Value::Object(_) => T_OBJECT,
            Value::Array(_) => T_ARRAY,
            Value::String(_) => T_STRING,
            // `number` includes the integers, and an integer may be written
            // `1.0`.
            Value::Number(n) if Num::of(n).is_integer() => T_INTEGER | T_NUMBER,
            Value::Number(_) => T_NUMBER,
            Value::Bool(_) => T_BOOLEAN,
            Value::Null => T_NULL,
        };
        self.0 & bits != 0
    }
}

impl fmt::Display for TypeSet {
    /// "string", "string or null", "object, string or null".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = TYPE_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, name)| *name)
            .collect();
        write_or_list(f, &names)
    }
}

fn write_or_list(f: &mut impl fmt::Write, items: &[&str]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(if i + 1 == items.len() { " or " } else { ", " })?;
        }
        f.write_str(item)?;
    }
    Ok(())
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if Num::of(n).is_integer() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    DateTime,
    Date,
    Uuid,
    Email,
    Uri,
    Ipv4,
    Ipv6,
}

/// Sorted, as listed in the "unsupported format" message.
const FORMATS: [(&str, Format); 7] = [
    ("date", Format::Date),
    ("date-time", Format::DateTime),
    ("email", Format::Email),
    ("ipv4", Format::Ipv4),
    ("ipv6", Format::Ipv6),
    ("uri", Format::Uri),
    ("uuid", Format::Uuid),
];

impl Format {
    fn parse(name: &str) -> Option<Format> {
        FORMATS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// How the message names the format, with a hint where the name alone
    /// does not say what is expected.
    fn describe(self) -> &'static str {
        match self {
            Format::DateTime => "date-time (RFC 3339)",
            Format::Date => "date (YYYY-MM-DD)",
            Format::Uuid => "uuid (8-4-4-4-12 hex digits)",
            Format::Email => "email address",
            Format::Uri => "uri (it needs a scheme such as \"https:\")",
            Format::Ipv4 => "ipv4 address",
            Format::Ipv6 => "ipv6 address",
        }
    }

    fn check(self, s: &str) -> bool {
        match self {
            Format::DateTime => is_date_time(s),
            Format::Date => is_date(s),
            Format::Uuid => is_uuid(s),
            Format::Email => is_email(s),
            Format::Uri => is_uri(s),
            Format::Ipv4 => s.parse::<std::net::Ipv4Addr>().is_ok(),
            Format::Ipv6 => s.parse::<std::net::Ipv6Addr>().is_ok(),
        }
    }
}

fn is_date_time(s: &str) -> bool {
    // chrono also accepts a space between date and time; RFC 3339's grammar
    // (and so JSON Schema) wants "T", in either case.
    matches!(s.as_bytes().get(10), Some(b'T' | b't'))
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

fn is_date(s: &str) -> bool {
    // chrono's `%Y` takes signs and more than four digits and `%m` takes one
    // digit, so check the RFC 3339 full-date shape first.
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
        && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_email(s: &str) -> bool {
    // Deliberately simple: full RFC 5322 accepts addresses no mail system
    // delivers to, and the real test of an address is sending to it.
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
        && !rest.is_empty()
        && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/// A value as JSON, cut to a readable length.
fn show(value: &Value) -> String {
    truncate(value.to_string())
}

/// A string as a JSON string literal, cut to a readable length.
fn quote(s: &str) -> String {
    truncate(Value::String(s.to_owned()).to_string())
}

fn truncate(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_SHOWN_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

// ---------------------------------------------------------------------------
// Compiling
// ---------------------------------------------------------------------------

/// Keywords that the code generator cannot express, or that belong to other
/// drafts, with the message to give.
fn rejection(keyword: &str) -> Option<String> {
    let message = match keyword {
        "if" | "then" | "else" => format!(
            "unsupported keyword \"{keyword}\": the code generator cannot handle \
             conditional schemas (if/then/else)"
        ),
        "not" => "unsupported keyword \"not\": the code generator cannot handle it".to_owned(),
        "anyOf" => "unsupported keyword \"anyOf\": use oneOf (the code generator turns anyOf \
                    into a struct of optional fields)"
            .to_owned(),
        "definitions" => "\"definitions\" is a draft-07 keyword; courier schemas are draft \
                          2020-12: use \"$defs\""
            .to_owned(),
        "dependencies" | "additionalItems" => {
            format!("\"{keyword}\" is a draft-07 keyword; courier schemas are draft 2020-12")
        }
        "patternProperties"
        | "propertyNames"
        | "unevaluatedProperties"
        | "unevaluatedItems"
        | "prefixItems"
        | "contains"
        | "minContains"
        | "maxContains"
        | "dependentRequired"
        | "dependentSchemas"
        | "minProperties"
        | "maxProperties"
        | "$anchor"
        | "$dynamicRef"
        | "$dynamicAnchor"
        | "$recursiveRef"
        | "$recursiveAnchor"
        | "$vocabulary" => format!("unsupported keyword \"{keyword}\""),
        _ => return None,
    };
    Some(message)
}

/// Assertion keywords in the order they are checked, so that errors come out
/// in the same order whatever the key order of the schema.
const ASSERTIONS: &[&str] = &[
    "$ref",
    "type",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "properties",
    "required",
    "additionalProperties",
    "allOf",
    "oneOf",
];

#[derive(Default)]
struct Compiler {
    nodes: Vec<Node>,
    problems: Vec<SchemaProblem>,
    /// The root's `$defs`, the only ones a `$ref` can name.
    defs: HashMap<String, NodeId>,
}

fn child_pointer(parent: &str, token: &str) -> String {
    format!("{parent}/{}", escape_pointer_token(token))
}

impl Compiler {
    fn problem(&mut self, pointer: &str, message: impl Into<String>) {
        self.problems.push(SchemaProblem {
            pointer: pointer.to_owned(),
            message: message.into(),
        });
    }

    fn alloc(&mut self) -> NodeId {
        self.nodes.push(Node::True);
        self.nodes.len() - 1
    }

    fn child(&mut self, schema: &Value, pointer: &str, depth: usize) -> NodeId {
        let id = self.alloc();
        self.compile_into(id, schema, pointer, depth);
        id
    }

    fn compile_into(&mut self, id: NodeId, schema: &Value, pointer: &str, depth: usize) {
        if depth > MAX_SCHEMA_DEPTH {
            self.problem(
                pointer,
                format!("schema is nested more than {MAX_SCHEMA_DEPTH} levels deep"),
            );
            return;
        }
        let node = match schema {
            Value::Bool(true) => Node::True,
            Value::Bool(false) => Node::False {
                path: pointer.into(),
            },
            Value::Object(obj) => {
                let keywords = self.compile_object(obj, pointer, depth, id == ROOT);
                // Only annotations (or nothing): as permissive as `true`, and
                // cheaper to evaluate.
                if keywords.is_empty() {
                    Node::True
                } else {
                    Node::Schema {
                        path: pointer.into(),
                        keywords,
                    }
                }
            }
            other => {
                self.problem(
                    pointer,
                    format!(
                        "a schema must be an object or a boolean, found {}",
                        type_name(other)
                    ),
                );
                Node::True
            }
        };
        if let Some(slot) = self.nodes.get_mut(id) {
            *slot = node;
        }
    }

    fn compile_object(
        &mut self,
        obj: &Map<String, Value>,
        pointer: &str,
        depth: usize,
        is_root: bool,
    ) -> Box<[Keyword]> {
        // Pass 1: everything that is not an assertion.
        for (key, value) in obj {
            let at = child_pointer(pointer, key);
            match key.as_str() {
                _ if key.starts_with("x-") => {}
                "$schema" => self.check_dialect(&at, value, is_root),
                "$id" => {
                    if !is_root {
                        self.problem(
                            &at,
                            "$id is only supported at the root: a nested $id starts a new \
                             schema resource, which changes how $ref resolves",
                        );
                    } else if !value.is_string() {
                        self.wrong_type(&at, "$id", "a string", value);
                    }
                }
                "$comment" | "title" | "description" => {
                    if !value.is_string() {
                        self.wrong_type(&at, key, "a string", value);
                    }
                }
                "deprecated" | "readOnly" | "writeOnly" => {
                    if !value.is_boolean() {
                        self.wrong_type(&at, key, "a boolean", value);
                    }
                }
                "examples" => {
                    if !value.is_array() {
                        self.wrong_type(&at, key, "an array", value);
                    }
                }
                "default" => {}
                "$defs" => self.compile_defs(&at, value, depth, is_root),
                _ if ASSERTIONS.contains(&key.as_str()) => {}
                _ => {
                    let message = rejection(key).unwrap_or_else(|| unknown_keyword(key));
                    self.problem(&at, message);
                }
            }
        }

        // Pass 2: assertions, in a fixed order.
        let mut keywords = Vec::new();
        for &name in ASSERTIONS {
            let Some(value) = obj.get(name) else {
                continue;
            };
            let at = child_pointer(pointer, name);
            if let Some(check) = self.compile_keyword(name, value, obj, &at, depth) {
                keywords.push(Keyword {
                    path: at.into(),
                    check,
                });
            }
        }
        self.check_bounds(obj, pointer);
        keywords.into_boxed_slice()
    }

    fn compile_defs(&mut self, at: &str, value: &Value, depth: usize, is_root: bool) {
        let Value::Object(defs) = value else {
            self.wrong_type(at, "$defs", "an object of schemas", value);
            return;
        };
        for (name, schema) in defs {
            // The root's definitions were given their slots up front so that
            // `$ref`s compiled before them (or inside them) can point there.
            let id = match self.defs.get(name) {
                Some(&id) if is_root => id,
                _ => self.alloc(),
            };
            self.compile_into(id, schema, &child_pointer(at, name), depth + 1);
        }
    }

    fn check_dialect(&mut self, at: &str, value: &Value, is_root: bool) {
        let Value::String(uri) = value else {
            self.wrong_type(at, "$schema", "a string", value);
            return;
        };
        if !is_root {
            self.problem(at, "$schema is only allowed at the root of a schema");
            return;
        }
        if uri == DRAFT_2020_12 {
            return;
        }
        let draft = [
            ("draft-03", "draft-03"),
            ("draft-04", "draft-04"),
            ("draft-06", "draft-06"),
            ("draft-07", "draft-07"),
            ("2019-09", "draft 2019-09"),
        ]
        .iter()
        .find(|(needle, _)| uri.contains(needle))
        .map(|(_, name)| *name);
        let message = match draft {
            Some(draft) => format!(
                "$schema {} is {draft}; courier schemas are draft 2020-12 (\"{DRAFT_2020_12}\")",
                quote(uri)
            ),
            None => format!(
                "unsupported $schema {}; courier schemas use \"{DRAFT_2020_12}\"",
                quote(uri)
            ),
        };
        self.problem(at, message);
    }

    fn wrong_type(&mut self, at: &str, keyword: &str, expected: &str, found: &Value) {
        self.problem(
            at,
            format!("{keyword} must be {expected}, found {}", type_name(found)),
        );
    }

    fn compile_keyword(
        &mut self,
        name: &str,
        value: &Value,
        obj: &Map<String, Value>,
        at: &str,
        depth: usize,
    ) -> Option<Check> {
        let check = match name {
            "$ref" => Check::Ref(self.compile_ref(at, value)?),
            "type" => Check::Type(self.compile_type(at, value)?),
            "enum" => match value {
                Value::Array(values) if !values.is_empty() => {
                    Check::Enum(values.clone().into_boxed_slice())
                }
                Value::Array(_) => {
                    self.problem(at, "enum must not be empty");
                    return None;
                }
                other => {
                    self.wrong_type(at, name, "an array", other);
                    return None;
                }
            },
            "const" => Check::Const(value.clone()),
            "minimum" => Check::Minimum(self.limit(at, name, value)?),
            "maximum" => Check::Maximum(self.limit(at, name, value)?),
            "exclusiveMinimum" => Check::ExclusiveMinimum(self.limit(at, name, value)?),
            "exclusiveMaximum" => Check::ExclusiveMaximum(self.limit(at, name, value)?),
            "multipleOf" => {
                let limit = self.limit(at, name, value)?;
                if limit.num.compare(Num::U(0)) != Some(Ordering::Greater) {
                    self.problem(
                        at,
                        format!("multipleOf must be greater than 0, found {}", limit.shown),
                    );
                    return None;
                }
                Check::MultipleOf(limit)
            }
            "minLength" => Check::MinLength(self.count(at, name, value)?),
            "maxLength" => Check::MaxLength(self.count(at, name, value)?),
            "minItems" => Check::MinItems(self.count(at, name, value)?),
            "maxItems" => Check::MaxItems(self.count(at, name, value)?),
            "pattern" => {
                let Value::String(source) = value else {
                    self.wrong_type(at, name, "a string", value);
                    return None;
                };
                match regress::Regex::new(source) {
                    Ok(regex) => Check::Pattern(Box::new(Pattern {
                        source: source.as_str().into(),
                        regex,
                    })),
                    Err(e) => {
                        self.problem(at, format!("invalid pattern {}: {e}", quote(source)));
                        return None;
                    }
                }
            }
            "format" => {
                let Value::String(format) = value else {
                    self.wrong_type(at, name, "a string", value);
                    return None;
                };
                match Format::parse(format) {
                    Some(format) => Check::Format(format),
                    None => {
                        let supported: Vec<&str> = FORMATS.iter().map(|(n, _)| *n).collect();
                        self.problem(
                            at,
                            format!(
                                "unsupported format {}; supported: {}",
                                quote(format),
                                supported.join(", ")
                            ),
                        );
                        return None;
                    }
                }
            }
            "items" => match value {
                Value::Array(_) => {
                    self.problem(
                        at,
                        "items as an array is the draft-07 tuple form; courier schemas are \
                         draft 2020-12, and its prefixItems is not supported either",
                    );
                    return None;
                }
                Value::Object(_) | Value::Bool(_) => Check::Items(self.child(value, at, depth + 1)),
                other => {
                    self.wrong_type(at, name, "a schema (an object or a boolean)", other);
                    return None;
                }
            },
            "uniqueItems" => match value {
                Value::Bool(true) => Check::UniqueItems,
                Value::Bool(false) => return None,
                other => {
                    self.wrong_type(at, name, "a boolean", other);
                    return None;
                }
            },
            "properties" => {
                let Value::Object(props) = value else {
                    self.wrong_type(at, name, "an object of schemas", value);
                    return None;
                };
                let mut compiled: Vec<(Box<str>, NodeId)> = props
                    .iter()
                    .map(|(prop, schema)| {
                        let id = self.child(schema, &child_pointer(at, prop), depth + 1);
                        (prop.as_str().into(), id)
                    })
                    .collect();
                compiled.sort_by(|a, b| a.0.cmp(&b.0));
                Check::Properties(compiled.into_boxed_slice())
            }
            "required" => Check::Required(self.compile_required(at, value)?),
            "additionalProperties" => {
                let schema = match value {
                    Value::Bool(true) => return None,
                    Value::Bool(false) => None,
                    Value::Object(_) => Some(self.child(value, at, depth + 1)),
                    other => {
                        self.wrong_type(at, name, "a boolean or a schema", other);
                        return None;
                    }
                };
                let mut known: Vec<Box<str>> = match obj.get("properties") {
                    Some(Value::Object(props)) => props.keys().map(|k| k.as_str().into()).collect(),
                    _ => Vec::new(),
                };
                known.sort();
                Check::AdditionalProperties(Box::new(Additional {
                    known: known.into_boxed_slice(),
                    schema,
                }))
            }
            "allOf" | "oneOf" => {
                let branches = match value {
                    Value::Array(branches) if !branches.is_empty() => branches,
                    Value::Array(_) => {
                        self.problem(at, format!("{name} must not be empty"));
                        return None;
                    }
                    other => {
                        self.wrong_type(at, name, "an array of schemas", other);
                        return None;
                    }
                };
                let ids: Box<[NodeId]> = branches
                    .iter()
                    .enumerate()
                    .map(|(i, b)| self.child(b, &format!("{at}/{i}"), depth + 1))
                    .collect();
                if name == "allOf" {
                    Check::AllOf(ids)
                } else {
                    Check::OneOf(ids)
                }
            }
            _ => return None,
        };
        Some(check)
    }

    fn compile_ref(&mut self, at: &str, value: &Value) -> Option<NodeId> {
        let Value::String(reference) = value else {
            self.wrong_type(at, "$ref", "a string", value);
            return None;
        };
        match resolve_ref(reference, &self.defs) {
            Ok(id) => Some(id),
            Err(message) => {
                self.problem(at, message);
                None
            }
        }
    }

    fn compile_type(&mut self, at: &str, value: &Value) -> Option<TypeSet> {
        let unknown = |name: &str| {
            format!(
                "unknown type {}; expected one of {}",
                quote(name),
                TYPE_NAMES.join(", ")
            )
        };
        match value {
            Value::String(name) => match TypeSet::bit(name) {
                Some(bit) => Some(TypeSet(bit)),
                None => {
                    self.problem(at, unknown(name));
                    None
                }
            },
            Value::Array(names) if !names.is_empty() => {
                let mut bits = 0u8;
                let mut ok = true;
                for (i, name) in names.iter().enumerate() {
                    let item_at = format!("{at}/{i}");
                    let Value::String(name) = name else {
                        self.wrong_type(&item_at, "each type", "a string", name);
                        ok = false;
                        continue;
                    };
                    match TypeSet::bit(name) {
                        Some(bit) if bits & bit != 0 => {
                            self.problem(&item_at, format!("type {} is listed twice", quote(name)));
                            ok = false;
                        }
                        Some(bit) => bits |= bit,
                        None => {
                            self.problem(&item_at, unknown(name));
                            ok = false;
                        }
                    }
                }
                ok.then_some(TypeSet(bits))
            }
            Value::Array(_) => {
                self.problem(at, "type must not be an empty array");
                None
            }
            other => {
                self.wrong_type(at, "type", "a string or an array of strings", other);
                None
            }
        }
    }

    fn compile_required(&mut self, at: &str, value: &Value) -> Option<Box<[Box<str>]>> {
        let Value::Array(names) = value else {
            self.wrong_type(at, "required", "an array of strings", value);
            return None;
        };
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(names.len());
        let mut ok = true;
        for (i, name) in names.iter().enumerate() {
            let item_at = format!("{at}/{i}");
            match name {
                Value::String(name) if !seen.insert(name.as_str()) => {
                    self.problem(&item_at, format!("required lists {} twice", quote(name)));
                    ok = false;
                }
                Value::String(name) => out.push(name.as_str().into()),
                other => {
                    self.wrong_type(&item_at, "each required name", "a string", other);
                    ok = false;
                }
            }
        }
        ok.then(|| out.into_boxed_slice())
    }

    fn limit(&mut self, at: &str, keyword: &str, value: &Value) -> Option<Limit> {
        match value {
            Value::Number(n) => Some(Limit {
                num: Num::of(n),
                shown: n.clone(),
            }),
            Value::Bool(_) if keyword.starts_with("exclusive") => {
                self.problem(
                    at,
                    format!(
                        "{keyword} must be a number: a boolean {keyword} is draft-04; in draft \
                         2020-12 write the limit itself, e.g. \"{keyword}\": 0"
                    ),
                );
                None
            }
            other => {
                self.wrong_type(at, keyword, "a number", other);
                None
            }
        }
    }

    fn count(&mut self, at: &str, keyword: &str, value: &Value) -> Option<u64> {
        // 2.0 is an integer in JSON Schema, so accept it.
        let count = match value {
            Value::Number(n) => match Num::of(n) {
                Num::U(u) => Some(u),
                _ => None,
            },
            _ => None,
        };
        if count.is_none() {
            let found = match value {
                Value::Number(n) => n.to_string(),
                other => type_name(other).to_owned(),
            };
            self.problem(
                at,
                format!("{keyword} must be a non-negative integer, found {found}"),
            );
        }
        count
    }

    /// Lower bounds above upper bounds make the schema unsatisfiable, which
    /// is always a mistake.
    fn check_bounds(&mut self, obj: &Map<String, Value>, pointer: &str) {
        for (low, high) in [
            ("minLength", "maxLength"),
            ("minItems", "maxItems"),
            ("minimum", "maximum"),
        ] {
            if let (Some(Value::Number(a)), Some(Value::Number(b))) = (obj.get(low), obj.get(high))
            {
                if Num::of(a).compare(Num::of(b)) == Some(Ordering::Greater) {
                    self.problem(
                        &child_pointer(pointer, low),
                        format!("{low} {a} is greater than {high} {b}, so no value can match"),
                    );
                }
            }
        }
    }

    /// A `$ref` cycle that never steps into the instance (`{"$ref": "#"}` at
    /// the root, or two definitions referring to each other) would recurse
    /// forever at validation time, so it is a schema problem. Only `$ref`,
    /// `allOf` and `oneOf` evaluate a subschema on the same value.
    fn check_cycles(&mut self) {
        let edges: Vec<Vec<(NodeId, &str)>> = self
            .nodes
            .iter()
            .map(|node| match node {
                Node::Schema { keywords, .. } => keywords
                    .iter()
                    .flat_map(|kw| {
                        let targets: &[NodeId] = match &kw.check {
                            Check::Ref(target) => std::slice::from_ref(target),
                            Check::AllOf(ids) | Check::OneOf(ids) => ids,
                            _ => &[],
                        };
                        targets.iter().map(move |&t| (t, &*kw.path))
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect();

        // Iterative depth-first search, so a long chain cannot overflow.
        const WHITE: u8 = 0;
        const GREY: u8 = 1;
        const BLACK: u8 = 2;
        let mut state = vec![WHITE; edges.len()];
        let mut found = Vec::new();
        for start in 0..edges.len() {
            if state[start] != WHITE {
                continue;
            }
            state[start] = GREY;
            let mut stack = vec![(start, 0usize)];
            while let Some(top) = stack.last_mut() {
                let (node, next) = *top;
                match edges[node].get(next) {
                    Some(&(target, path)) => {
                        top.1 += 1;
                        match state.get(target) {
                            Some(&WHITE) => {
                                state[target] = GREY;
                                stack.push((target, 0));
                            }
                            Some(&GREY) => found.push(path.to_owned()),
                            _ => {}
                        }
                    }
                    None => {
                        state[node] = BLACK;
                        stack.pop();
                    }
                }
            }
        }
        for pointer in found {
            self.problem(
                &pointer,
                "this $ref forms a cycle that never steps into the value, so validation \
                 would recurse forever",
            );
        }
    }
}

fn unknown_keyword(key: &str) -> String {
    // A wrongly-cased keyword is the commonest typo and is otherwise silently
    // ignored by most validators, so point at the right spelling.
    match SUPPORTED_KEYWORDS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(key))
    {
        Some(right) => format!("unknown keyword {} (did you mean \"{right}\"?)", quote(key)),
        None => format!(
            "unknown keyword {}; custom annotations must start with \"x-\"",
            quote(key)
        ),
    }
}

/// Resolves `#` and `#/$defs/<name>`; every other form is an error message.
fn resolve_ref(reference: &str, defs: &HashMap<String, NodeId>) -> Result<NodeId, String> {
    if reference == "#" {
        return Ok(ROOT);
    }
    let only = "only \"#\" and \"#/$defs/<name>\" are supported";
    if let Some(token) = reference.strip_prefix("#/$defs/") {
        if token.contains('/') {
            return Err(format!(
                "unsupported $ref {}: it points inside a definition; {only}",
                quote(reference)
            ));
        }
        // The fragment is a URI fragment, so it may be percent-encoded,
        // and then a JSON pointer token, so `~0`/`~1` are escapes.
        let decoded = percent_decode(token).unwrap_or_else(|| token.to_owned());
        let name = unescape_pointer_token(&decoded).ok_or_else(|| {
            format!(
                "$ref {} is not a valid JSON pointer (\"~\" must be followed by 0 or 1)",
                quote(reference)
            )
        })?;
        return defs
            .get(&name)
            .copied()
            .ok_or_else(|| format!("$ref target {} does not exist", quote(reference)));
    }
    if reference == "#/definitions" || reference.starts_with("#/definitions/") {
        return Err("\"definitions\" is draft-07; use \"$defs\" (draft 2020-12)".to_owned());
    }
    if reference.starts_with('#') {
        return Err(format!("unsupported $ref {}; {only}", quote(reference)));
    }
    Err(format!(
        "external $ref {} is not supported; {only}",
        quote(reference)
    ))
}

fn unescape_pointer_token(token: &str) -> Option<String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// `None` when there is nothing to decode or the escapes are not valid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return None;
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

// ---------------------------------------------------------------------------
// Validating
// ---------------------------------------------------------------------------

/// The path to the value being checked, as a linked list on the stack: it
/// costs nothing unless an error turns it into a string.
#[derive(Clone, Copy)]
enum Loc<'a> {
    Root,
    Key(&'a Loc<'a>, &'a str),
    Index(&'a Loc<'a>, usize),
}

impl Loc<'_> {
    fn pointer(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Loc::Root => {}
            Loc::Key(parent, key) => {
                parent.write(out);
                out.push('/');
                out.push_str(&escape_pointer_token(key));
            }
            Loc::Index(parent, index) => {
                parent.write(out);
                // Writing to a String cannot fail.
                let _ = write!(out, "/{index}");
            }
        }
    }
}

/// Where errors go: `None` when only validity matters, which also makes every
/// check stop at the first failure.
type Sink<'e> = Option<&'e mut Vec<ValidationError>>;

/// Records a failure (when collecting) and returns `false`, so checks can end
/// with `return fail(...)`. The message is only built when it is kept.
fn fail(
    out: &mut Sink<'_>,
    loc: &Loc<'_>,
    schema_path: &str,
    message: impl FnOnce() -> String,
) -> bool {
    if let Some(errors) = out.as_deref_mut() {
        errors.push(ValidationError {
            instance_path: loc.pointer(),
            schema_path: schema_path.to_owned(),
            message: message(),
        });
    }
    false
}

impl Validator {
    /// Compile a schema document. Reports EVERY problem at once.
    ///
    /// Problems are sorted by pointer, so the order does not depend on the
    /// key order of the schema.
    pub fn compile(schema: &Value) -> Result<Validator, Vec<SchemaProblem>> {
        let mut compiler = Compiler::default();
        let root = compiler.alloc();
        debug_assert_eq!(root, ROOT);
        // Give the root's definitions their slots before compiling anything,
        // so that a `$ref` can name a definition compiled later (or itself).
        if let Some(Value::Object(defs)) = schema.get("$defs") {
            for name in defs.keys() {
                let id = compiler.alloc();
                compiler.defs.insert(name.clone(), id);
            }
        }
        compiler.compile_into(root, schema, "", 0);
        compiler.check_cycles();
        if compiler.problems.is_empty() {
            Ok(Validator {
                nodes: compiler.nodes.into_boxed_slice(),
            })
        } else {
            let mut problems = compiler.problems;
            problems.sort_by(|a, b| a.pointer.cmp(&b.pointer));
            Err(problems)
        }
    }

    /// Validate an instance; collects every error (not just the first).
    pub fn validate(&self, instance: &Value) -> Result<(), Vec<ValidationError>> {
        let mut errors = Vec::new();
        let valid = self.eval(ROOT, instance, &Loc::Root, 0, Some(&mut errors));
        if valid {
            return Ok(());
        }
        if errors.is_empty() {
            // Every failing check reports itself; this only guards the
            // contract that `Err` is never empty.
            errors.push(ValidationError {
                instance_path: String::new(),
                schema_path: String::new(),
                message: "value does not match the schema".to_owned(),
            });
        }
        Err(errors)
    }

    /// Whether the instance is valid, stopping at the first failure.
    ///
    /// This is the fast path: it builds no messages and, on success,
    /// allocates nothing.
    pub fn is_valid(&self, instance: &Value) -> bool {
        self.eval(ROOT, instance, &Loc::Root, 0, None)
    }

    fn eval(
        &self,
        id: NodeId,
        instance: &Value,
        loc: &Loc<'_>,
        depth: usize,
        mut out: Sink<'_>,
    ) -> bool {
        // Ids come from the compiler, so `get` never fails; it just keeps
        // this free of indexing panics.
        let Some(node) = self.nodes.get(id) else {
            return true;
        };
        match node {
            Node::True => true,
            Node::False { path } => fail(&mut out, loc, path, || {
                "no value is allowed here (the schema is false)".to_owned()
            }),
            Node::Schema { path, keywords } => {
                if depth >= MAX_EVAL_DEPTH {
                    return fail(&mut out, loc, path, || {
                        format!("value is nested too deeply to validate (limit {MAX_EVAL_DEPTH})")
                    });
                }
                let mut valid = true;
                for keyword in keywords.iter() {
                    if !self.eval_keyword(keyword, instance, loc, depth, out.as_deref_mut()) {
                        valid = false;
                        if out.is_none() {
                            return false;
                        }
                    }
                }
                valid
            }
        }
    }

    fn eval_keyword(
        &self,
        keyword: &Keyword,
        instance: &Value,
        loc: &Loc<'_>,
        depth: usize,
        mut out: Sink<'_>,
    ) -> bool {
        let path = &*keyword.path;
        match &keyword.check {
            Check::Ref(target) => self.eval(*target, instance, loc, depth + 1, out),
            Check::Items(schema) => {
                let Value::Array(items) = instance else {
                    return true;
                };
                let mut valid = true;
                for (i, item) in items.iter().enumerate() {
                    let item_loc = Loc::Index(loc, i);
                    if !self.eval(*schema, item, &item_loc, depth + 1, out.as_deref_mut()) {
                        valid = false;
                        if out.is_none() {
                            return false;
                        }
                    }
                }
                valid
            }
            Check::Properties(props) => {
                let Value::Object(obj) = instance else {
                    return true;
                };
                let mut valid = true;
                for (name, schema) in props.iter() {
                    if let Some((key, value)) = obj.get_key_value(&**name) {
                        let prop_loc = Loc::Key(loc, key);
                        if !self.eval(*schema, value, &prop_loc, depth + 1, out.as_deref_mut()) {
                            valid = false;
                            if out.is_none() {
                                return false;
                            }
                        }
                    }
                }
                valid
            }
            Check::AdditionalProperties(additional) => {
                let Value::Object(obj) = instance else {
                    return true;
                };
                let mut valid = true;
                for (key, value) in obj {
                    if additional
                        .known
                        .binary_search_by(|known| (**known).cmp(key.as_str()))
                        .is_ok()
                    {
                        continue;
                    }
                    // Both outcomes point at the property itself, so a
                    // report names the field to delete or fix.
                    let prop_loc = Loc::Key(loc, key);
                    let ok = match additional.schema {
                        None => fail(&mut out, &prop_loc, path, || {
                            format!(
                                "property {} is not allowed (additionalProperties is false)",
                                quote(key)
                            )
                        }),
                        Some(schema) => {
                            self.eval(schema, value, &prop_loc, depth + 1, out.as_deref_mut())
                        }
                    };
                    if !ok {
                        valid = false;
                        if out.is_none() {
                            return false;
                        }
                    }
                }
                valid
            }
            Check::AllOf(branches) => {
                let mut valid = true;
                for &branch in branches.iter() {
                    if !self.eval(branch, instance, loc, depth + 1, out.as_deref_mut()) {
                        valid = false;
                        if out.is_none() {
                            return false;
                        }
                    }
                }
                valid
            }
            Check::OneOf(branches) => self.one_of(branches, instance, loc, depth, path, out),
            leaf => check_leaf(leaf, path, instance, loc, &mut out),
        }
    }

    fn one_of(
        &self,
        branches: &[NodeId],
        instance: &Value,
        loc: &Loc<'_>,
        depth: usize,
        path: &str,
        mut out: Sink<'_>,
    ) -> bool {
        // Count matches on the fast path first: the common, valid case
        // builds no error lists at all.
        let mut matched = 0usize;
        for &branch in branches {
            if self.eval(branch, instance, loc, depth + 1, None) {
                matched += 1;
                if matched > 1 && out.is_none() {
                    return false;
                }
            }
        }
        if matched == 1 {
            return true;
        }
        if matched > 1 {
            return fail(&mut out, loc, path, || {
                format!("value matches {matched} branches of oneOf, expected exactly 1")
            });
        }
        if out.is_none() {
            return false;
        }
        // No branch matched: say briefly why each one failed, which is
        // usually enough to spot the branch that was meant.
        let base = loc.pointer();
        let mut message = String::from("value matches no branch of oneOf (");
        for (i, &branch) in branches.iter().enumerate() {
            let mut errors = Vec::new();
            self.eval(branch, instance, loc, depth + 1, Some(&mut errors));
            if i > 0 {
                message.push_str("; ");
            }
            let _ = write!(message, "branch {i}: ");
            match errors.first() {
                Some(first) => {
                    let relative = first
                        .instance_path
                        .strip_prefix(base.as_str())
                        .unwrap_or(&first.instance_path);
                    if !relative.is_empty() {
                        let _ = write!(message, "{relative}: ");
                    }
                    message.push_str(&first.message);
                    if errors.len() > 1 {
                        let _ = write!(message, " (+{} more)", errors.len() - 1);
                    }
                }
                None => message.push_str("does not match"),
            }
        }
        message.push(')');
        fail(&mut out, loc, path, || message)
    }
}

/// The keywords that look at the value itself, without evaluating a
/// subschema. They live outside the recursive `eval`/`eval_keyword` pair so
/// that their locals do not weigh on every level of recursion.
fn check_leaf(
    check: &Check,
    path: &str,
    instance: &Value,
    loc: &Loc<'_>,
    out: &mut Sink<'_>,
) -> bool {
    match check {
        Check::Type(types) => {
            types.matches(instance)
                || fail(out, loc, path, || {
                    format!("expected {types}, found {}", type_name(instance))
                })
        }
        Check::Enum(values) => {
            values.iter().any(|v| json_eq(v, instance))
                || fail(out, loc, path, || enum_message(instance, values))
        }
        Check::Const(value) => {
            json_eq(value, instance)
                || fail(out, loc, path, || {
                    format!("{} is not equal to const {}", show(instance), show(value))
                })
        }
        Check::Minimum(limit) => bound(
            out,
            loc,
            path,
            instance,
            limit,
            |o| o != Ordering::Less,
            "is less than the minimum",
        ),
        Check::Maximum(limit) => bound(
            out,
            loc,
            path,
            instance,
            limit,
            |o| o != Ordering::Greater,
            "is greater than the maximum",
        ),
        Check::ExclusiveMinimum(limit) => bound(
            out,
            loc,
            path,
            instance,
            limit,
            |o| o == Ordering::Greater,
            "is less than or equal to the exclusiveMinimum",
        ),
        Check::ExclusiveMaximum(limit) => bound(
            out,
            loc,
            path,
            instance,
            limit,
            |o| o == Ordering::Less,
            "is greater than or equal to the exclusiveMaximum",
        ),
        Check::MultipleOf(limit) => match instance {
            Value::Number(n) if !Num::of(n).is_multiple_of(limit.num) => {
                fail(out, loc, path, || {
                    format!("{n} is not a multiple of {} (multipleOf)", limit.shown)
                })
            }
            _ => true,
        },
        Check::MinLength(min) => match instance {
            // A char is at most 4 bytes: skip the count when the byte length
            // already settles it.
            Value::String(s) if (s.len() as u64) / 4 < *min => {
                let n = s.chars().count() as u64;
                n >= *min
                    || fail(out, loc, path, || {
                        format!(
                            "string of {} is shorter than minLength {min}",
                            plural(n, "character", "characters")
                        )
                    })
            }
            _ => true,
        },
        Check::MaxLength(max) => match instance {
            // A char is at least 1 byte: same shortcut the other way.
            Value::String(s) if (s.len() as u64) > *max => {
                let n = s.chars().count() as u64;
                n <= *max
                    || fail(out, loc, path, || {
                        format!(
                            "string of {} is longer than maxLength {max}",
                            plural(n, "character", "characters")
                        )
                    })
            }
            _ => true,
        },
        Check::Pattern(pattern) => match instance {
            // JSON Schema patterns are not anchored: any match will do.
            Value::String(s) if pattern.regex.find(s).is_none() => fail(out, loc, path, || {
                format!(
                    "{} does not match pattern {}",
                    quote(s),
                    quote(&pattern.source)
                )
            }),
            _ => true,
        },
        Check::Format(format) => match instance {
            Value::String(s) if !format.check(s) => fail(out, loc, path, || {
                format!("{} is not a valid {}", quote(s), format.describe())
            }),
            _ => true,
        },
        Check::MinItems(min) => match instance {
            Value::Array(items) if (items.len() as u64) < *min => fail(out, loc, path, || {
                format!(
                    "array of {} is shorter than minItems {min}",
                    plural(items.len() as u64, "item", "items")
                )
            }),
            _ => true,
        },
        Check::MaxItems(max) => match instance {
            Value::Array(items) if (items.len() as u64) > *max => fail(out, loc, path, || {
                format!(
                    "array of {} is longer than maxItems {max}",
                    plural(items.len() as u64, "item", "items")
                )
            }),
            _ => true,
        },
        Check::UniqueItems => match instance {
            Value::Array(items) => unique_items(out, loc, path, items),
            _ => true,
        },
        Check::Required(names) => {
            let Value::Object(obj) = instance else {
                return true;
            };
            let mut valid = true;
            for name in names.iter() {
                if !obj.contains_key(&**name) {
                    valid = fail(out, loc, path, || {
                        format!("missing required property {}", quote(name))
                    });
                    if out.is_none() {
                        return false;
                    }
                }
            }
            valid
        }
        // The subschema keywords are handled by `eval_keyword`.
        _ => true,
    }
}

/// Checks a numeric bound: `holds` gets `instance.cmp(limit)`; `words` go
/// between the value and the limit in the message.
fn bound(
    out: &mut Sink<'_>,
    loc: &Loc<'_>,
    path: &str,
    instance: &Value,
    limit: &Limit,
    holds: fn(Ordering) -> bool,
    words: &str,
) -> bool {
    let Value::Number(n) = instance else {
        return true;
    };
    match Num::of(n).compare(limit.num) {
        Some(order) if holds(order) => true,
        Some(_) => fail(out, loc, path, || format!("{n} {words} {}", limit.shown)),
        None => fail(out, loc, path, || {
            format!("{n} cannot be compared with {}", limit.shown)
        }),
    }
}

fn enum_message(instance: &Value, values: &[Value]) -> String {
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

/// Reports each item that equals an earlier one, naming the first equal item.
fn unique_items(out: &mut Sink<'_>, loc: &Loc<'_>, path: &str, items: &[Value]) -> bool {
    let mut duplicates: Vec<(usize, usize)> = Vec::new();
    if items.len() <= UNIQUE_PAIRWISE_LIMIT {
        for j in 1..items.len() {
            if let Some(i) = (0..j).find(|&i| json_eq(&items[i], &items[j])) {
                if out.is_none() {
                    return false;
                }
                duplicates.push((i, j));
            }
        }
    } else {
        // Sort by a hash consistent with JSON equality, then compare only
        // within runs of equal hashes.
        let mut hashed: Vec<(u64, usize)> = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let mut h = DefaultHasher::new();
                json_hash(item, &mut h);
                (h.finish(), i)
            })
            .collect();
        hashed.sort_unstable();
        for run in hashed.chunk_by(|a, b| a.0 == b.0) {
            for (k, &(_, j)) in run.iter().enumerate() {
                // Runs are sorted by index, so earlier entries are earlier items.
                if let Some(&(_, i)) = run[..k]
                    .iter()
                    .find(|(_, i)| json_eq(&items[*i], &items[j]))
                {
                    if out.is_none() {
                        return false;
                    }
                    duplicates.push((i, j));
                }
            }
        }
        duplicates.sort_by_key(|&(_, j)| j);
    }
    for &(i, j) in &duplicates {
        fail(out, loc, path, || {
            format!("items at index {i} and {j} are equal (uniqueItems)")
        });
    }
    duplicates.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let mut sorted = SUPPORTED_KEYWORDS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, SUPPORTED_KEYWORDS);
        // Every keyword the compiler knows is listed, and vice versa.
        for &kw in ASSERTIONS {
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
        for &kw in SUPPORTED_KEYWORDS {
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
            ("email", "ops@example", false),
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
                Format::parse(format).map(Format::describe).unwrap_or("?")
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
                "/1: expected integer, found string",
                "/3: expected integer, found null",
                "/: array of 4 items is longer than maxItems 3",
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
            &[
                "/: items at index 0 and 2 are equal (uniqueItems)",
                "/: items at index 3 and 4 are equal (uniqueItems)",
            ],
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
            &[
                "/: items at index 7 and 100 are equal (uniqueItems)",
                "/: items at index 101 and 102 are equal (uniqueItems)",
            ],
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
                "/a~1b: expected integer, found string",
                r#"/: missing required property "region""#,
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
        let mut value = json!(1);
        for _ in 0..2000 {
            value = Value::Array(vec![value]);
        }
        let v = Validator::compile(&json!({"items": {"$ref": "#"}})).unwrap();
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
                r#""definitions" is a draft-07 keyword; courier schemas are draft 2020-12: use "$defs""#,
            ),
            (
                "dependencies",
                r#""dependencies" is a draft-07 keyword; courier schemas are draft 2020-12"#,
            ),
            (
                "additionalItems",
                r#""additionalItems" is a draft-07 keyword; courier schemas are draft 2020-12"#,
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
            let expected = format!("/items/{kw}: unsupported keyword \"{kw}\"");
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
            &[&format!(
                "/pattern: invalid pattern \"(unclosed\": {}",
                regress::Regex::new("(unclosed").unwrap_err()
            )],
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
