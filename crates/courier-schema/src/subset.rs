//! courier's own pass over a schema: the JSON Schema subset it supports.
//!
//! Validation itself is the `jsonschema` crate's ([`crate::validate`]). This
//! pass runs first and refuses what the crate would accept but courier must
//! not: keywords the code generator cannot express, other drafts' spellings,
//! references other than `#` and `#/$defs/<name>`, formats outside the
//! supported list, unsatisfiable bounds, and `$ref` cycles that never step
//! into the value. Every problem names its JSON pointer and says what to
//! write instead; all of them are reported at once, sorted by pointer.
//!
//! Which keyword is what comes from the one table in [`crate::keywords`].

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde_json::{Map, Value};

use crate::keywords::{self, Role, DRAFT_2020_12, FORMATS, TYPE_NAMES};
use crate::text::{escape_pointer_token, quote, show_pointer, type_name};

/// Schemas nested deeper than this are refused, so that a hostile or
/// generated schema cannot overflow a stack.
const MAX_SCHEMA_DEPTH: usize = 128;

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

/// Every problem of `schema` against courier's subset; empty when it is in.
pub fn check(schema: &Value) -> Vec<SchemaProblem> {
    let defs: HashSet<String> = match schema.get("$defs") {
        Some(Value::Object(defs)) => defs.keys().cloned().collect(),
        _ => HashSet::new(),
    };
    let mut pass = Pass {
        problems: Vec::new(),
        defs,
        edges: HashMap::new(),
    };
    pass.schema(schema, "", 0, true);
    pass.check_cycles();
    let mut problems = pass.problems;
    problems.sort_by(|a, b| a.pointer.cmp(&b.pointer));
    problems
}

struct Pass {
    problems: Vec<SchemaProblem>,
    /// The root's `$defs`, the only ones a `$ref` can name.
    defs: HashSet<String>,
    /// Schema pointer to the schemas it evaluates on the same value
    /// (`$ref`, `allOf`, `oneOf`), each with the keyword's pointer.
    edges: HashMap<String, Vec<(String, String)>>,
}

fn child_pointer(parent: &str, token: &str) -> String {
    format!("{parent}/{}", escape_pointer_token(token))
}

impl Pass {
    fn problem(&mut self, pointer: &str, message: impl Into<String>) {
        self.problems.push(SchemaProblem {
            pointer: pointer.to_owned(),
            message: message.into(),
        });
    }

    fn wrong_type(&mut self, at: &str, keyword: &str, expected: &str, found: &Value) {
        self.problem(
            at,
            format!("{keyword} must be {expected}, found {}", type_name(found)),
        );
    }

    fn edge(&mut self, from: &str, to: String, at: &str) {
        self.edges
            .entry(from.to_owned())
            .or_default()
            .push((to, at.to_owned()));
    }

    fn schema(&mut self, schema: &Value, pointer: &str, depth: usize, is_root: bool) {
        if depth > MAX_SCHEMA_DEPTH {
            self.problem(
                pointer,
                format!("schema is nested more than {MAX_SCHEMA_DEPTH} levels deep"),
            );
            return;
        }
        match schema {
            Value::Bool(_) => {}
            Value::Object(obj) => self.object(obj, pointer, depth, is_root),
            other => self.problem(
                pointer,
                format!(
                    "a schema must be an object or a boolean, found {}",
                    type_name(other)
                ),
            ),
        }
    }

    fn object(&mut self, obj: &Map<String, Value>, pointer: &str, depth: usize, is_root: bool) {
        for (key, value) in obj {
            let at = child_pointer(pointer, key);
            if key.starts_with("x-") {
                continue;
            }
            match keywords::lookup(key).map(|k| k.role) {
                Some(Role::Annotation) => self.annotation(key, value, &at, depth, is_root),
                Some(Role::Assertion) => self.assertion(key, value, pointer, &at, depth),
                Some(Role::Refused(why)) => {
                    self.problem(&at, format!("unsupported keyword \"{key}\": {why}"))
                }
                None => self.problem(&at, unknown_keyword(key)),
            }
        }
        self.check_bounds(obj, pointer);
    }

    fn annotation(&mut self, key: &str, value: &Value, at: &str, depth: usize, is_root: bool) {
        match key {
            "$schema" => self.check_dialect(at, value, is_root),
            "$id" if !is_root => self.problem(
                at,
                "$id is only supported at the root: a nested $id starts a new schema \
                 resource, which changes how $ref resolves",
            ),
            "$id" | "$comment" | "title" | "description" if !value.is_string() => {
                self.wrong_type(at, key, "a string", value)
            }
            "deprecated" | "readOnly" | "writeOnly" if !value.is_boolean() => {
                self.wrong_type(at, key, "a boolean", value)
            }
            "examples" if !value.is_array() => self.wrong_type(at, key, "an array", value),
            // Only the root's definitions can be named by a `$ref`; nested
            // ones are checked all the same.
            "$defs" => match value {
                Value::Object(defs) => {
                    for (name, schema) in defs {
                        self.schema(schema, &child_pointer(at, name), depth + 1, false);
                    }
                }
                other => self.wrong_type(at, "$defs", "an object of schemas", other),
            },
            _ => {}
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

    fn assertion(&mut self, name: &str, value: &Value, pointer: &str, at: &str, depth: usize) {
        match name {
            "$ref" => match value {
                Value::String(reference) => match self.resolve_ref(reference) {
                    Ok(target) => self.edge(pointer, target, at),
                    Err(message) => self.problem(at, message),
                },
                other => self.wrong_type(at, "$ref", "a string", other),
            },
            "type" => self.check_type(at, value),
            "enum" => match value {
                Value::Array(values) if values.is_empty() => {
                    self.problem(at, "enum must not be empty")
                }
                Value::Array(_) => {}
                other => self.wrong_type(at, name, "an array", other),
            },
            "const" => {}
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" | "multipleOf" => {
                self.limit(at, name, value)
            }
            "minLength" | "maxLength" | "minItems" | "maxItems" => self.count(at, name, value),
            "pattern" => match value {
                // The validator compiles the pattern; its error is reported
                // there with this pointer.
                Value::String(_) => {}
                other => self.wrong_type(at, name, "a string", other),
            },
            "format" => match value {
                Value::String(format) if !FORMATS.iter().any(|(n, _)| n == format) => {
                    let supported: Vec<&str> = FORMATS.iter().map(|(n, _)| *n).collect();
                    self.problem(
                        at,
                        format!(
                            "unsupported format {}; supported: {}",
                            quote(format),
                            supported.join(", ")
                        ),
                    );
                }
                Value::String(_) => {}
                other => self.wrong_type(at, name, "a string", other),
            },
            "items" => match value {
                Value::Array(_) => self.problem(
                    at,
                    "items as an array is the draft-07 tuple form; courier schemas are draft \
                     2020-12, and its prefixItems is not supported either",
                ),
                Value::Object(_) | Value::Bool(_) => self.schema(value, at, depth + 1, false),
                other => self.wrong_type(at, name, "a schema (an object or a boolean)", other),
            },
            "uniqueItems" if !value.is_boolean() => self.wrong_type(at, name, "a boolean", value),
            "properties" => match value {
                Value::Object(props) => {
                    for (prop, schema) in props {
                        self.schema(schema, &child_pointer(at, prop), depth + 1, false);
                    }
                }
                other => self.wrong_type(at, name, "an object of schemas", other),
            },
            "required" => self.check_required(at, value),
            "additionalProperties" => match value {
                Value::Bool(_) => {}
                Value::Object(_) => self.schema(value, at, depth + 1, false),
                other => self.wrong_type(at, name, "a boolean or a schema", other),
            },
            "allOf" | "oneOf" => match value {
                Value::Array(branches) if branches.is_empty() => {
                    self.problem(at, format!("{name} must not be empty"))
                }
                Value::Array(branches) => {
                    for (i, branch) in branches.iter().enumerate() {
                        let branch_at = format!("{at}/{i}");
                        self.edge(pointer, branch_at.clone(), at);
                        self.schema(branch, &branch_at, depth + 1, false);
                    }
                }
                other => self.wrong_type(at, name, "an array of schemas", other),
            },
            _ => {}
        }
    }

    /// `#` and `#/$defs/<name>` to the pointer they name; every other form
    /// is an error message.
    fn resolve_ref(&self, reference: &str) -> Result<String, String> {
        if reference == "#" {
            return Ok(String::new());
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
            return if self.defs.contains(&name) {
                Ok(child_pointer("/$defs", &name))
            } else {
                Err(format!("$ref target {} does not exist", quote(reference)))
            };
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

    fn check_type(&mut self, at: &str, value: &Value) {
        let unknown = |name: &str| {
            format!(
                "unknown type {}; expected one of {}",
                quote(name),
                TYPE_NAMES.join(", ")
            )
        };
        match value {
            Value::String(name) if !TYPE_NAMES.contains(&name.as_str()) => {
                self.problem(at, unknown(name))
            }
            Value::String(_) => {}
            Value::Array(names) if names.is_empty() => {
                self.problem(at, "type must not be an empty array")
            }
            Value::Array(names) => {
                let mut seen = HashSet::new();
                for (i, name) in names.iter().enumerate() {
                    let item_at = format!("{at}/{i}");
                    match name {
                        Value::String(name) if !TYPE_NAMES.contains(&name.as_str()) => {
                            self.problem(&item_at, unknown(name))
                        }
                        Value::String(name) if !seen.insert(name.as_str()) => {
                            self.problem(&item_at, format!("type {} is listed twice", quote(name)))
                        }
                        Value::String(_) => {}
                        other => self.wrong_type(&item_at, "each type", "a string", other),
                    }
                }
            }
            other => self.wrong_type(at, "type", "a string or an array of strings", other),
        }
    }

    fn check_required(&mut self, at: &str, value: &Value) {
        let Value::Array(names) = value else {
            self.wrong_type(at, "required", "an array of strings", value);
            return;
        };
        let mut seen = HashSet::new();
        for (i, name) in names.iter().enumerate() {
            let item_at = format!("{at}/{i}");
            match name {
                Value::String(name) if !seen.insert(name.as_str()) => {
                    self.problem(&item_at, format!("required lists {} twice", quote(name)))
                }
                Value::String(_) => {}
                other => self.wrong_type(&item_at, "each required name", "a string", other),
            }
        }
    }

    fn limit(&mut self, at: &str, keyword: &str, value: &Value) {
        match value {
            Value::Number(n) if keyword == "multipleOf" && n.as_f64().is_none_or(|f| f <= 0.0) => {
                self.problem(at, format!("multipleOf must be greater than 0, found {n}"))
            }
            Value::Number(_) => {}
            Value::Bool(_) if keyword.starts_with("exclusive") => self.problem(
                at,
                format!(
                    "{keyword} must be a number: a boolean {keyword} is draft-04; in draft \
                     2020-12 write the limit itself, e.g. \"{keyword}\": 0"
                ),
            ),
            other => self.wrong_type(at, keyword, "a number", other),
        }
    }

    fn count(&mut self, at: &str, keyword: &str, value: &Value) {
        // 2.0 is an integer in JSON Schema, so accept it.
        let is_count = match value {
            Value::Number(n) => {
                n.as_u64().is_some()
                    || n.as_f64()
                        .is_some_and(|f| f >= 0.0 && f.fract() == 0.0 && f < 1.8e19)
            }
            _ => false,
        };
        if !is_count {
            let found = match value {
                Value::Number(n) => n.to_string(),
                other => type_name(other).to_owned(),
            };
            self.problem(
                at,
                format!("{keyword} must be a non-negative integer, found {found}"),
            );
        }
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
                if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
                    if x > y {
                        self.problem(
                            &child_pointer(pointer, low),
                            format!("{low} {a} is greater than {high} {b}, so no value can match"),
                        );
                    }
                }
            }
        }
    }

    /// A `$ref` cycle that never steps into the value (`{"$ref": "#"}` at
    /// the root, or two definitions referring to each other) would recurse
    /// forever at validation time, so it is a schema problem. Only `$ref`,
    /// `allOf` and `oneOf` evaluate a subschema on the same value.
    fn check_cycles(&mut self) {
        const GREY: u8 = 1;
        const BLACK: u8 = 2;
        let mut state: HashMap<&str, u8> = HashMap::new();
        let mut found = Vec::new();
        let mut starts: Vec<&str> = self.edges.keys().map(String::as_str).collect();
        starts.sort_unstable();
        let none = Vec::new();
        for start in starts {
            if state.contains_key(start) {
                continue;
            }
            state.insert(start, GREY);
            // Iterative depth-first search, so a long chain cannot overflow.
            let mut stack = vec![(start, 0usize)];
            while let Some(top) = stack.last_mut() {
                let (node, next) = *top;
                let edges = self.edges.get(node).unwrap_or(&none);
                match edges.get(next) {
                    Some((target, at)) => {
                        top.1 += 1;
                        match state.get(target.as_str()) {
                            None => {
                                state.insert(target, GREY);
                                stack.push((target, 0));
                            }
                            Some(&GREY) => found.push(at.clone()),
                            _ => {}
                        }
                    }
                    None => {
                        state.insert(node, BLACK);
                        stack.pop();
                    }
                }
            }
        }
        found.sort();
        found.dedup();
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
    match keywords::supported()
        .into_iter()
        .find(|k| k.eq_ignore_ascii_case(key))
    {
        Some(right) => format!("unknown keyword {} (did you mean \"{right}\"?)", quote(key)),
        None => format!(
            "unknown keyword {}; custom annotations must start with \"x-\"",
            quote(key)
        ),
    }
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
