//! Schema compatibility: does one schema accept every document another
//! accepts?
//!
//! [`accepts`] answers that for a reader schema and a writer schema, and
//! lists every reason it may not, each under a stable rule id. The
//! compatibility modes of `channels.json` run it in one direction or both:
//!
//! | mode | check | safe rollout |
//! |---|---|---|
//! | `backward` | new reader accepts previous writer | consumers first |
//! | `forward` | previous reader accepts new writer | producers first |
//! | `full` | both | either order |
//! | `*_transitive` | as above, against every earlier version | |
//! | `none` | nothing | |
//!
//! The checker models the JSON Schema subset courier accepts. A keyword it
//! does not model fails closed: any change to it is reported as
//! [`Rule::UnsupportedKeywordChanged`], never passed silently.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::keywords;
pub use crate::rules::Rule;
use crate::validate::{escape_pointer_token, Validator};

/// One reason a reader may reject what a writer writes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    /// The rule.
    pub rule: Rule,
    /// Where in the reader schema.
    pub reader_pointer: String,
    /// Where in the writer schema.
    pub writer_pointer: String,
    /// What differs, lowercase.
    pub message: String,
}

/// Every reason `reader` may reject a document `writer` accepts; empty when
/// every writer document is valid for the reader. Both are whole schema
/// documents (their `$ref`s resolve within themselves).
pub fn accepts(reader: &Value, writer: &Value) -> Vec<Finding> {
    let mut checker = Checker {
        reader_root: reader,
        writer_root: writer,
        findings: Vec::new(),
        visiting: HashSet::new(),
    };
    checker.check(writer, "", reader, "");
    let mut findings = checker.findings;
    findings.sort();
    findings.dedup();
    findings
}

struct Checker<'a> {
    reader_root: &'a Value,
    writer_root: &'a Value,
    findings: Vec<Finding>,
    /// Pairs of pointers under check, so recursive `$ref`s terminate.
    visiting: HashSet<(String, String)>,
}

/// A schema after `$ref`s and `allOf` are folded in, with the pointer it
/// is reported at.
struct Resolved {
    schema: Map<String, Value>,
    pointer: String,
    /// `Some(false)` / `Some(true)` for boolean schemas.
    boolean: Option<bool>,
}

impl Checker<'_> {
    fn report(&mut self, rule: Rule, rp: &str, wp: &str, message: String) {
        self.findings.push(Finding {
            rule,
            reader_pointer: rp.to_string(),
            writer_pointer: wp.to_string(),
            message,
        });
    }

    /// Findings of a check, without recording them: for branch matching.
    fn trial(&self, w: &Value, wp: &str, r: &Value, rp: &str) -> Vec<Finding> {
        let mut sub = Checker {
            reader_root: self.reader_root,
            writer_root: self.writer_root,
            findings: Vec::new(),
            visiting: self.visiting.clone(),
        };
        sub.check(w, wp, r, rp);
        sub.findings
    }

    fn check(&mut self, w: &Value, wp: &str, r: &Value, rp: &str) {
        let w = resolve(self.writer_root, w, wp);
        let r = resolve(self.reader_root, r, rp);
        let (wp, rp) = (w.pointer.as_str(), r.pointer.as_str());
        if !self.visiting.insert((wp.to_string(), rp.to_string())) {
            return;
        }
        match (w.boolean, r.boolean) {
            (Some(false), _) | (_, Some(true)) => return,
            (_, Some(false)) => {
                return self.report(
                    Rule::SchemaRejectsAll,
                    rp,
                    wp,
                    "the reader accepts nothing here (false) where the writer writes".into(),
                )
            }
            _ => {}
        }
        let (ws, rs) = (&w.schema, &r.schema);

        self.unsupported(ws, wp, rs, rp);
        if self.combinators(ws, wp, rs, rp) {
            return;
        }
        // The reader's branches were matched above; its other keywords
        // still apply to the writer as a whole.
        let rs = &without(rs, &["oneOf", "anyOf"]);

        // A writer with a finite set of values is checked value by value
        // against the whole reader schema: exact, whatever the keywords.
        if let Some(values) = finite_values(ws) {
            self.finite(&values, ws, wp, rs, rp);
            return;
        }
        self.types(ws, wp, rs, rp);
        if let Some(expected) = rs.get("const") {
            self.report(
                Rule::ConstChanged,
                &child(rp, "const"),
                wp,
                format!(
                    "the reader requires the constant {expected}, the writer writes other values"
                ),
            );
        }
        if let Some(Value::Array(values)) = rs.get("enum") {
            self.report(
                Rule::EnumAdded,
                &child(rp, "enum"),
                wp,
                format!(
                    "the reader restricts values to {}, the writer does not",
                    list(values)
                ),
            );
        }
        let writes = writer_types(ws);
        if writes.contains("string") {
            self.strings(ws, wp, rs, rp);
        }
        if writes.contains("number") || writes.contains("integer") {
            self.numbers(ws, wp, rs, rp);
        }
        if writes.contains("array") {
            self.arrays(ws, wp, rs, rp);
        }
        if writes.contains("object") {
            self.objects(ws, wp, rs, rp);
        }
    }

    /// Keywords outside the model: any difference fails closed.
    fn unsupported(
        &mut self,
        ws: &Map<String, Value>,
        wp: &str,
        rs: &Map<String, Value>,
        rp: &str,
    ) {
        let keys: BTreeSet<&String> = ws.keys().chain(rs.keys()).collect();
        for key in keys {
            // `anyOf` is refused by the subset pass, but the checker still
            // models it, so a schema compared before the registry loads it
            // gets a precise verdict.
            let known =
                keywords::is_assertion(key) || keywords::is_annotation(key) || key == "anyOf";
            if !known && ws.get(key) != rs.get(key) {
                self.report(
                    Rule::UnsupportedKeywordChanged,
                    &child(rp, key),
                    &child(wp, key),
                    format!("\"{key}\" changed and the compatibility checker does not model it"),
                );
            }
        }
    }

    fn finite(
        &mut self,
        values: &[Value],
        ws: &Map<String, Value>,
        wp: &str,
        rs: &Map<String, Value>,
        rp: &str,
    ) {
        let Some(validator) = standalone(self.reader_root, rs) else {
            return self.report(
                Rule::UnsupportedKeywordChanged,
                rp,
                wp,
                "the reader schema does not compile on its own".into(),
            );
        };
        let keyword = if ws.contains_key("const") {
            "const"
        } else {
            "enum"
        };
        for (i, value) in values.iter().enumerate() {
            if validator.is_valid(value) {
                continue;
            }
            let writer_at = if keyword == "const" {
                child(wp, "const")
            } else {
                format!("{}/{i}", child(wp, "enum"))
            };
            let (rule, reader_at) = if rs.contains_key("const") {
                (Rule::ConstChanged, child(rp, "const"))
            } else if rs.contains_key("enum") {
                (Rule::EnumValueRemoved, child(rp, "enum"))
            } else if keyword == "const" {
                (Rule::ConstChanged, rp.to_string())
            } else {
                (Rule::EnumValueRemoved, rp.to_string())
            };
            self.report(
                rule,
                &reader_at,
                &writer_at,
                format!("the writer may write {value}, which the reader rejects"),
            );
        }
    }

    fn types(&mut self, ws: &Map<String, Value>, wp: &str, rs: &Map<String, Value>, rp: &str) {
        let Some(reads) = declared_types(rs) else {
            return;
        };
        let writes = writer_types(ws);
        let missing: Vec<&str> = writes
            .iter()
            .copied()
            .filter(|t| !(reads.contains(t) || *t == "integer" && reads.contains("number")))
            .collect();
        if missing.is_empty() {
            return;
        }
        let overlap = writes.iter().any(|t| {
            reads.contains(t)
                || (*t == "integer" && reads.contains("number"))
                || (*t == "number" && reads.contains("integer"))
        });
        let rule = if overlap {
            Rule::TypeNarrowed
        } else {
            Rule::TypeChanged
        };
        let writer_says = if declared_types(ws).is_some() {
            format!("writes {}", join(&writes))
        } else {
            "declares no type".to_string()
        };
        self.report(
            rule,
            &child(rp, "type"),
            &child(wp, "type"),
            format!(
                "the reader accepts {}, the writer {writer_says}",
                join(&reads)
            ),
        );
    }

    fn strings(&mut self, ws: &Map<String, Value>, wp: &str, rs: &Map<String, Value>, rp: &str) {
        if let Some(format) = rs.get("format") {
            if ws.get("format") != Some(format) {
                self.report(
                    Rule::FormatChanged,
                    &child(rp, "format"),
                    &child(wp, "format"),
                    format!(
                        "the reader requires format {format}, the writer {}",
                        ws.get("format")
                            .map_or("has none".to_string(), |f| format!("writes {f}"))
                    ),
                );
            }
        }
        if let Some(pattern) = rs.get("pattern") {
            if ws.get("pattern") != Some(pattern) {
                self.report(
                    Rule::PatternChanged,
                    &child(rp, "pattern"),
                    &child(wp, "pattern"),
                    format!(
                        "the reader requires pattern {pattern}, the writer {}",
                        ws.get("pattern")
                            .map_or("has none".to_string(), |p| format!("has {p}"))
                    ),
                );
            }
        }
        self.limit(
            (ws, wp),
            (rs, rp),
            "minLength",
            Side::Lower,
            Rule::MinLengthTightened,
        );
        self.limit(
            (ws, wp),
            (rs, rp),
            "maxLength",
            Side::Upper,
            Rule::MaxLengthTightened,
        );
    }

    /// A count limit (`minLength`, `maxItems`, ...): the writer's must lie
    /// within the reader's.
    fn limit(
        &mut self,
        (ws, wp): (&Map<String, Value>, &str),
        (rs, rp): (&Map<String, Value>, &str),
        keyword: &str,
        side: Side,
        rule: Rule,
    ) {
        let Some(reader) = rs.get(keyword).and_then(Value::as_f64) else {
            return;
        };
        let writer = ws.get(keyword).and_then(Value::as_f64);
        let outside = writer.is_none_or(|w| match side {
            Side::Lower => w < reader,
            Side::Upper => w > reader,
        });
        if outside {
            self.report(
                rule,
                &child(rp, keyword),
                &child(wp, keyword),
                format!(
                    "the reader requires {keyword} {reader}, the writer {}",
                    bound_text(writer)
                ),
            );
        }
    }

    fn numbers(&mut self, ws: &Map<String, Value>, wp: &str, rs: &Map<String, Value>, rp: &str) {
        self.bound(ws, wp, rs, rp, Side::Lower);
        self.bound(ws, wp, rs, rp, Side::Upper);
        if let Some(step) = rs.get("multipleOf").and_then(Value::as_f64) {
            let writer = ws.get("multipleOf").and_then(Value::as_f64);
            let divides = writer.is_some_and(|w| {
                let ratio = w / step;
                (ratio - ratio.round()).abs() < 1e-9
            });
            if !divides {
                self.report(
                    Rule::MultipleOfChanged,
                    &child(rp, "multipleOf"),
                    &child(wp, "multipleOf"),
                    format!(
                        "the reader requires multiples of {step}, the writer {}",
                        bound_text(writer)
                    ),
                );
            }
        }
    }

    /// One side of a numeric range: the writer's bound (inclusive or
    /// exclusive, whichever is tighter) must lie inside each of the reader's.
    fn bound(
        &mut self,
        ws: &Map<String, Value>,
        wp: &str,
        rs: &Map<String, Value>,
        rp: &str,
        side: Side,
    ) {
        let (inclusive, exclusive, rule) = match side {
            Side::Lower => ("minimum", "exclusiveMinimum", Rule::MinimumTightened),
            Side::Upper => ("maximum", "exclusiveMaximum", Rule::MaximumTightened),
        };
        // A bound as (value, exclusive); `inside(a, b)`: a is at least as
        // tight as b.
        let inside = |(a, ax): (f64, bool), (b, bx): (f64, bool)| {
            let beyond = match side {
                Side::Lower => a > b,
                Side::Upper => a < b,
            };
            beyond || (a == b && (ax || !bx))
        };
        let of = |s: &Map<String, Value>, keyword: &str, exclusive: bool| {
            s.get(keyword)
                .and_then(Value::as_f64)
                .map(|v| (v, exclusive))
        };
        let writer = [of(ws, inclusive, false), of(ws, exclusive, true)]
            .into_iter()
            .flatten()
            .fold(None, |best: Option<(f64, bool)>, b| match best {
                Some(best) if inside(best, b) => Some(best),
                _ => Some(b),
            });
        for (keyword, is_exclusive) in [(inclusive, false), (exclusive, true)] {
            let Some(reader) = of(rs, keyword, is_exclusive) else {
                continue;
            };
            if writer.is_some_and(|w| inside(w, reader)) {
                continue;
            }
            let writer_text = match (writer, side) {
                (None, Side::Lower) => "has no lower bound".to_string(),
                (None, Side::Upper) => "has no upper bound".to_string(),
                (Some((v, x)), Side::Lower) => {
                    format!(
                        "allows {} {v}",
                        if x { "values above" } else { "values from" }
                    )
                }
                (Some((v, x)), Side::Upper) => {
                    format!("allows values {} {v}", if x { "below" } else { "up to" })
                }
            };
            self.report(
                rule,
                &child(rp, keyword),
                &child(wp, keyword),
                format!(
                    "the reader requires {keyword} {}, the writer {writer_text}",
                    reader.0
                ),
            );
        }
    }

    fn arrays(&mut self, ws: &Map<String, Value>, wp: &str, rs: &Map<String, Value>, rp: &str) {
        self.limit(
            (ws, wp),
            (rs, rp),
            "minItems",
            Side::Lower,
            Rule::MinItemsTightened,
        );
        self.limit(
            (ws, wp),
            (rs, rp),
            "maxItems",
            Side::Upper,
            Rule::MaxItemsTightened,
        );
        if rs.get("uniqueItems") == Some(&Value::Bool(true))
            && ws.get("uniqueItems") != Some(&Value::Bool(true))
        {
            self.report(
                Rule::UniqueItemsAdded,
                &child(rp, "uniqueItems"),
                &child(wp, "uniqueItems"),
                "the reader requires unique items, the writer may repeat them".into(),
            );
        }
        let any = Value::Bool(true);
        let w_items = ws.get("items").unwrap_or(&any);
        let r_items = rs.get("items").unwrap_or(&any);
        self.check(w_items, &child(wp, "items"), r_items, &child(rp, "items"));
    }

    fn objects(&mut self, ws: &Map<String, Value>, wp: &str, rs: &Map<String, Value>, rp: &str) {
        let empty = Map::new();
        let any = Value::Bool(true);
        let w_props = ws
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let r_props = rs
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let w_extra = ws.get("additionalProperties").unwrap_or(&any);
        let r_extra = rs.get("additionalProperties").unwrap_or(&any);
        let w_required = required(ws);
        let r_required = required(rs);
        let names: BTreeSet<&String> = w_props.keys().chain(r_props.keys()).collect();
        for name in names {
            let token = escape_pointer_token(name);
            let w_at = format!("{}/{token}", child(wp, "properties"));
            let r_at = format!("{}/{token}", child(rp, "properties"));
            match (w_props.get(name), r_props.get(name)) {
                (Some(w), Some(r)) => self.check(w, &w_at, r, &r_at),
                (Some(w), None) => {
                    if r_extra == &Value::Bool(false) {
                        self.report(
                            Rule::PropertyRemoved,
                            &child(rp, "additionalProperties"),
                            &w_at,
                            format!("the writer writes \"{name}\", which the reader's closed content model rejects"),
                        );
                    } else {
                        self.check(w, &w_at, r_extra, &child(rp, "additionalProperties"));
                    }
                }
                (None, Some(r)) => {
                    if w_extra == &Value::Bool(false) {
                        continue;
                    }
                    let trial = self.trial(w_extra, &child(wp, "additionalProperties"), r, &r_at);
                    if !trial.is_empty() {
                        self.report(
                            Rule::PropertyAddedToOpenModel,
                            &r_at,
                            &child(wp, "additionalProperties"),
                            format!(
                                "the writer's open content model may already carry \"{name}\" with values the reader rejects"
                            ),
                        );
                    }
                }
                (None, None) => {}
            }
        }
        for name in r_required.difference(&w_required) {
            let has_default = r_props
                .get(*name)
                .and_then(Value::as_object)
                .is_some_and(|p| p.contains_key("default"));
            if !has_default {
                self.report(
                    Rule::RequiredAdded,
                    &child(rp, "required"),
                    &child(wp, "required"),
                    format!("the reader requires \"{name}\", which the writer may omit; give it a default or keep it optional"),
                );
            }
        }
        match (w_extra, r_extra) {
            (_, Value::Bool(true)) | (Value::Bool(false), _) => {}
            (w, r) => {
                let narrowed = self.trial(
                    w,
                    &child(wp, "additionalProperties"),
                    r,
                    &child(rp, "additionalProperties"),
                );
                if !narrowed.is_empty() {
                    self.report(
                        Rule::AdditionalPropertiesNarrowed,
                        &child(rp, "additionalProperties"),
                        &child(wp, "additionalProperties"),
                        "the writer may write properties the reader's additionalProperties rejects"
                            .into(),
                    );
                }
            }
        }
    }

    /// `oneOf` and `anyOf`. A writer with branches writes its siblings and
    /// one branch: each such combination must pass against the reader. A
    /// reader with branches accepts a writer when one of its branches
    /// (with the reader's siblings) does. Branches are treated as a union:
    /// keep `oneOf` branches disjoint (a `const` discriminator) so a value
    /// never matches two.
    ///
    /// Returns true when the writer's branches were checked, so the caller
    /// does not check the writer as a whole again.
    fn combinators(
        &mut self,
        ws: &Map<String, Value>,
        wp: &str,
        rs: &Map<String, Value>,
        rp: &str,
    ) -> bool {
        const BRANCHING: [(&str, Rule); 2] = [
            ("oneOf", Rule::OneOfBranchNotAccepted),
            ("anyOf", Rule::AnyOfBranchNotAccepted),
        ];
        let reader = Value::Object(rs.clone());
        for (keyword, rule) in BRANCHING {
            let Some(branches) = ws.get(keyword).and_then(Value::as_array) else {
                continue;
            };
            let siblings = without(ws, &[keyword]);
            for (i, branch) in branches.iter().enumerate() {
                let at = format!("{}/{i}", child(wp, keyword));
                let merged = conjunction(&siblings, branch);
                if !self.trial(&merged, &at, &reader, rp).is_empty() {
                    self.report(
                        rule,
                        rp,
                        &at,
                        format!("the reader does not accept everything this {keyword} branch of the writer allows"),
                    );
                }
            }
            return true;
        }
        for (keyword, rule) in BRANCHING {
            let Some(branches) = rs.get(keyword).and_then(Value::as_array) else {
                continue;
            };
            let siblings = without(rs, &[keyword]);
            let writer = Value::Object(ws.clone());
            let accepted = branches.iter().enumerate().any(|(i, branch)| {
                let at = format!("{}/{i}", child(rp, keyword));
                self.trial(&writer, wp, &conjunction(&siblings, branch), &at)
                    .is_empty()
            });
            if !accepted {
                self.report(
                    rule,
                    &child(rp, keyword),
                    wp,
                    format!(
                        "no {keyword} branch of the reader accepts everything the writer allows"
                    ),
                );
            }
        }
        false
    }
}

/// `siblings` and `branch` together, folded by [`resolve`] as an `allOf`.
fn conjunction(siblings: &Map<String, Value>, branch: &Value) -> Value {
    let mut merged = siblings.clone();
    merged.insert("allOf".into(), Value::Array(vec![branch.clone()]));
    Value::Object(merged)
}

/// Follows `$ref` and folds `allOf` members into one object schema.
fn resolve(root: &Value, schema: &Value, pointer: &str) -> Resolved {
    let mut pointer = pointer.to_string();
    let mut current = schema.clone();
    for _ in 0..32 {
        let Some(reference) = current
            .get("$ref")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            break;
        };
        let target = reference.strip_prefix('#').and_then(|p| root.pointer(p));
        let Some(target) = target else { break };
        let mut merged = target.as_object().cloned().unwrap_or_default();
        if let Some(siblings) = current.as_object() {
            for (key, value) in siblings {
                if key != "$ref" {
                    merged.insert(key.clone(), value.clone());
                }
            }
        }
        if let Value::Bool(b) = target {
            return Resolved {
                schema: Map::new(),
                pointer: reference[1..].to_string(),
                boolean: Some(*b),
            };
        }
        pointer = reference[1..].to_string();
        current = Value::Object(merged);
    }
    match current {
        Value::Bool(b) => Resolved {
            schema: Map::new(),
            pointer,
            boolean: Some(b),
        },
        Value::Object(mut map) => {
            // allOf: the schema is the conjunction; folding members in
            // (later keywords win on conflicts) models the common use,
            // composing disjoint pieces.
            if let Some(Value::Array(members)) = map.remove("allOf") {
                for member in members {
                    let member = resolve(root, &member, &pointer);
                    for (key, value) in member.schema {
                        match (map.get_mut(&key), value) {
                            (Some(Value::Object(existing)), Value::Object(more))
                                if key == "properties" =>
                            {
                                existing.extend(more);
                            }
                            (Some(Value::Array(existing)), Value::Array(more))
                                if key == "required" =>
                            {
                                existing.extend(more);
                            }
                            (_, value) => {
                                map.insert(key, value);
                            }
                        }
                    }
                }
            }
            Resolved {
                schema: map,
                pointer,
                boolean: None,
            }
        }
        _ => Resolved {
            schema: Map::new(),
            pointer,
            boolean: Some(true),
        },
    }
}

/// The values a schema allows, when it lists them (`const` or `enum`).
fn finite_values(schema: &Map<String, Value>) -> Option<Vec<Value>> {
    if let Some(value) = schema.get("const") {
        return Some(vec![value.clone()]);
    }
    schema.get("enum").and_then(Value::as_array).cloned()
}

/// The reader subschema as a document of its own (its root's `$defs`
/// carried along), compiled to check single values.
fn standalone(root: &Value, schema: &Map<String, Value>) -> Option<Validator> {
    let mut document = schema.clone();
    if let Some(defs) = root.get("$defs") {
        document.insert("$defs".into(), defs.clone());
    }
    for annotation in ["$schema", "$id", "x-courier"] {
        document.remove(annotation);
    }
    Validator::compile(&Value::Object(document)).ok()
}

const ALL_TYPES: &[&str] = &[
    "array", "boolean", "integer", "null", "number", "object", "string",
];

fn declared_types(schema: &Map<String, Value>) -> Option<BTreeSet<&str>> {
    match schema.get("type")? {
        Value::String(t) => Some([t.as_str()].into_iter().collect()),
        Value::Array(types) => Some(types.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

/// The types a writer may write: declared, or any.
fn writer_types(schema: &Map<String, Value>) -> BTreeSet<&str> {
    declared_types(schema).unwrap_or_else(|| ALL_TYPES.iter().copied().collect())
}

fn required(schema: &Map<String, Value>) -> BTreeSet<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn without(schema: &Map<String, Value>, keys: &[&str]) -> Map<String, Value> {
    schema
        .iter()
        .filter(|(k, _)| !keys.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn child(pointer: &str, keyword: &str) -> String {
    format!("{pointer}/{}", escape_pointer_token(keyword))
}

fn join(types: &BTreeSet<&str>) -> String {
    types.iter().copied().collect::<Vec<_>>().join(" or ")
}

fn list(values: &[Value]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn bound_text(writer: Option<f64>) -> String {
    match writer {
        Some(w) => format!("allows {w}"),
        None => "has none".to_string(),
    }
}

/// Which end of a numeric range.
#[derive(Debug, Clone, Copy)]
enum Side {
    Lower,
    Upper,
}

/// Which direction a pair is checked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The newer version reads messages of the older.
    Backward,
    /// The older version reads messages of the newer.
    Forward,
}

/// The (older, newer, direction) checks a mode asks for among `versions`
/// (ascending).
pub fn pairs(mode: crate::Compatibility, versions: &[u32]) -> Vec<(u32, u32, Direction)> {
    use crate::Compatibility as C;
    let (backward, forward, transitive) = match mode {
        C::Backward => (true, false, false),
        C::BackwardTransitive => (true, false, true),
        C::Forward => (false, true, false),
        C::ForwardTransitive => (false, true, true),
        C::Full => (true, true, false),
        C::FullTransitive => (true, true, true),
        C::None => (false, false, false),
    };
    let mut pairs = Vec::new();
    for (i, &newer) in versions.iter().enumerate().skip(1) {
        let olders: Vec<u32> = if transitive {
            versions[..i].to_vec()
        } else {
            vec![versions[i - 1]]
        };
        for older in olders {
            if backward {
                pairs.push((older, newer, Direction::Backward));
            }
            if forward {
                pairs.push((older, newer, Direction::Forward));
            }
        }
    }
    pairs
}

/// Groups findings by rule, for summaries.
pub fn count_by_rule(findings: &[Finding]) -> BTreeMap<Rule, usize> {
    let mut counts = BTreeMap::new();
    for finding in findings {
        *counts.entry(finding.rule).or_insert(0) += 1;
    }
    counts
}
