//! The checker's walk over a writer schema and a reader schema, side by
//! side: keyword by keyword, into properties, items and branches, with a
//! finding (and witness candidates) wherever the reader may reject what the
//! writer writes. [`super::accepts`] runs it and verifies the witnesses.

use std::collections::{BTreeSet, HashSet};
use std::rc::Rc;

use serde_json::{json, Map, Value};

use super::overlap;
use super::resolve::{
    branches, child, conjunction, declared_types, finite_values, property_schema,
    rejects_everything, required, resolve, standalone, without, writer_types,
};
use super::sample::{self, Part};
use super::witness::{self, place, Candidate, Frame, Step};
use crate::rules::Rule;
use crate::text::escape_pointer_token;

/// The findings of `reader` reading `writer`, each with the documents
/// proposed as its witness, unverified and unsorted.
pub(super) fn run(reader: &Value, writer: &Value) -> Vec<Pending> {
    let mut checker = Checker::new(reader, writer, true, 0);
    checker.check(writer, "", reader, "");
    checker.findings
}

/// A finding before its witness is verified: the documents proposed.
pub(super) struct Pending {
    /// The rule, as in the finding.
    pub(super) rule: Rule,
    /// Where in the reader schema.
    pub(super) reader_pointer: String,
    /// Where in the writer schema.
    pub(super) writer_pointer: String,
    /// What differs.
    pub(super) message: String,
    /// Whole documents proposed as the witness, best first.
    pub(super) candidates: Vec<Candidate>,
}

impl Pending {
    /// What makes two findings the same.
    pub(super) fn key(&self) -> (Rule, &str, &str, &str) {
        (
            self.rule,
            &self.reader_pointer,
            &self.writer_pointer,
            &self.message,
        )
    }
}

/// How many inclusion tests may run inside one another (each on smaller
/// schemas, but recursive `$ref`s have no end); deeper is "not proven".
const MAX_NESTING: usize = 4;

struct Checker<'a> {
    /// The whole reader schema, where its `$ref`s resolve.
    reader_root: &'a Value,
    /// The whole writer schema, likewise.
    writer_root: &'a Value,
    /// What this checker found so far.
    findings: Vec<Pending>,
    /// Pairs of pointers under check, so recursive `$ref`s terminate.
    visiting: HashSet<(String, String)>,
    /// From the document's root to the value under check: where witness
    /// candidates are placed.
    path: Vec<Frame>,
    /// The other branches of the writer's `oneOf` at the value under
    /// check. The writer never writes a value that matches one of them too,
    /// so the reader's overlap there breaks nothing.
    excluded: Vec<Value>,
    /// Whether findings get witness candidates; inclusion tests only count
    /// findings.
    witnesses: bool,
    /// How many inclusion tests this checker runs inside.
    nesting: usize,
}

impl<'a> Checker<'a> {
    fn new(
        reader_root: &'a Value,
        writer_root: &'a Value,
        witnesses: bool,
        nesting: usize,
    ) -> Self {
        Checker {
            reader_root,
            writer_root,
            findings: Vec::new(),
            visiting: HashSet::new(),
            path: Vec::new(),
            excluded: Vec::new(),
            witnesses,
            nesting,
        }
    }

    /// Records a finding; `leaves` proposes values for the spot under
    /// check (given the writer's root), placed into whole documents.
    fn report(
        &mut self,
        rule: Rule,
        rp: &str,
        wp: &str,
        message: String,
        leaves: impl FnOnce(&Value) -> Vec<Value>,
    ) {
        let mut candidates = Vec::new();
        if self.witnesses {
            let at = witness::pointer(&self.path);
            for document in place(self.writer_root, &self.path, leaves(self.writer_root)) {
                candidates.push(Candidate {
                    document,
                    at: at.clone(),
                });
            }
        }
        self.report_with(rule, rp, wp, message, candidates);
    }

    /// Records a finding with whole documents already proposed.
    fn report_with(
        &mut self,
        rule: Rule,
        rp: &str,
        wp: &str,
        message: String,
        candidates: Vec<Candidate>,
    ) {
        self.findings.push(Pending {
            rule,
            reader_pointer: rp.to_string(),
            writer_pointer: wp.to_string(),
            message,
            candidates,
        });
    }

    /// Findings of a check, without recording them: for branch matching.
    fn trial(&self, w: &Value, wp: &str, r: &Value, rp: &str) -> Vec<Pending> {
        self.trial_excluding(w, wp, r, rp, self.excluded.clone())
    }

    fn trial_excluding(
        &self,
        w: &Value,
        wp: &str,
        r: &Value,
        rp: &str,
        excluded: Vec<Value>,
    ) -> Vec<Pending> {
        let mut sub = Checker {
            reader_root: self.reader_root,
            writer_root: self.writer_root,
            findings: Vec::new(),
            visiting: self.visiting.clone(),
            path: self.path.clone(),
            excluded,
            witnesses: self.witnesses,
            nesting: self.nesting,
        };
        sub.check(w, wp, r, rp);
        sub.findings
    }

    /// Whether `outer` accepts every value of `inner`, as far as the
    /// checker can tell.
    fn includes(&self, outer: Part<'_>, inner: Part<'_>) -> bool {
        if self.nesting >= MAX_NESTING {
            return false;
        }
        let mut sub = Checker::new(outer.root, inner.root, false, self.nesting + 1);
        sub.check(inner.schema, "", outer.schema, "");
        sub.findings.is_empty()
    }

    fn enter(&mut self, writer: &Rc<Value>, reader_required: &Rc<Vec<String>>, step: Step) {
        self.path.push(Frame {
            writer: Rc::clone(writer),
            reader_required: Rc::clone(reader_required),
            step,
        });
    }

    fn leave(&mut self) {
        self.path.pop();
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
                let writer = w.to_value();
                return self.report(
                    Rule::SchemaRejectsAll,
                    rp,
                    wp,
                    "the reader accepts nothing here (false) where the writer writes".into(),
                    |root| sample::of(root, &writer),
                );
            }
            _ => {}
        }
        let (ws, rs) = (&w.schema, &r.schema);

        self.unsupported(ws, wp, rs, rp);
        // A writer with a finite set of values is checked value by value
        // against the whole reader schema, branches included: exact,
        // whatever the keywords.
        if branches(ws).is_none() {
            if let Some(values) = finite_values(ws) {
                return self.finite(&values, ws, wp, rs, rp);
            }
        }
        if self.combinators(ws, wp, rs, rp) {
            return;
        }
        // The reader's branches were matched above; its other keywords
        // still apply to the writer as a whole.
        let rs = &without(rs, &["oneOf", "anyOf"]);
        self.types(ws, wp, rs, rp);
        if let Some(expected) = rs.get("const") {
            let writer = Value::Object(ws.clone());
            let hint = json!({"not": {"const": expected}});
            self.report(
                Rule::ConstChanged,
                &child(rp, "const"),
                wp,
                format!(
                    "the reader requires the constant {expected}, the writer writes other values"
                ),
                |root| sample::hinted(root, &writer, &hint),
            );
        }
        if let Some(Value::Array(values)) = rs.get("enum") {
            let writer = Value::Object(ws.clone());
            let hint = json!({"not": {"enum": values}});
            self.report(
                Rule::EnumAdded,
                &child(rp, "enum"),
                wp,
                format!(
                    "the reader restricts values to {}, the writer does not",
                    list(values)
                ),
                |root| sample::hinted(root, &writer, &hint),
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
            let known = crate::keywords::is_assertion(key)
                || crate::keywords::is_annotation(key)
                || key == "anyOf";
            if !known && ws.get(key) != rs.get(key) {
                let writer = Value::Object(ws.clone());
                self.report(
                    Rule::UnsupportedKeywordChanged,
                    &child(rp, key),
                    &child(wp, key),
                    format!("\"{key}\" changed and the compatibility checker does not model it"),
                    |root| sample::of(root, &writer),
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
            let values = values.to_vec();
            return self.report(
                Rule::UnsupportedKeywordChanged,
                rp,
                wp,
                "the reader schema does not compile on its own".into(),
                |_| values,
            );
        };
        // A listed value the writer's other keywords reject, or that also
        // matches another branch of the writer's `oneOf`, is never written.
        let own = standalone(self.writer_root, ws);
        let excluded: Vec<_> = self
            .excluded
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|alt| standalone(self.writer_root, alt))
            .collect();
        let keyword = if ws.contains_key("const") {
            "const"
        } else {
            "enum"
        };
        for (i, value) in values.iter().enumerate() {
            let written = own.as_ref().is_none_or(|own| own.is_valid(value))
                && !excluded.iter().any(|alt| alt.is_valid(value));
            if !written || validator.is_valid(value) {
                continue;
            }
            let writer_at = if keyword == "const" {
                child(wp, "const")
            } else {
                format!("{}/{i}", child(wp, "enum"))
            };
            let (rule, reader_at, message) = self.blame(value, keyword, rs, rp);
            let value = value.clone();
            self.report(rule, &reader_at, &writer_at, message, |_| vec![value]);
        }
    }

    /// Which rule of the reader rejects a listed value of the writer.
    fn blame(
        &self,
        value: &Value,
        keyword: &str,
        rs: &Map<String, Value>,
        rp: &str,
    ) -> (Rule, String, String) {
        let rejects = format!("the writer may write {value}, which the reader rejects");
        if let Some((combinator, list)) = branches(rs) {
            let siblings = without(rs, &[combinator]);
            if standalone(self.reader_root, &siblings).is_some_and(|v| v.is_valid(value)) {
                let matching: Vec<usize> = (0..list.len())
                    .filter(|&i| {
                        conjunction(&siblings, &list[i])
                            .as_object()
                            .and_then(|branch| standalone(self.reader_root, branch))
                            .is_some_and(|v| v.is_valid(value))
                    })
                    .collect();
                let at = child(rp, combinator);
                match (combinator, matching.as_slice()) {
                    ("oneOf", [first, second, ..]) => {
                        return (
                            Rule::OneOfBranchesOverlap,
                            format!("{at}/{second}"),
                            format!(
                                "the writer may write {value}, which matches oneOf branches {first} and {second} of the reader; the reader accepts a value only when exactly one branch matches"
                            ),
                        )
                    }
                    (_, []) => {
                        let rule = if combinator == "oneOf" {
                            Rule::OneOfBranchNotAccepted
                        } else {
                            Rule::AnyOfBranchNotAccepted
                        };
                        return (
                            rule,
                            at,
                            format!(
                                "the writer may write {value}, which no {combinator} branch of the reader accepts"
                            ),
                        );
                    }
                    _ => {}
                }
            }
        }
        if rs.contains_key("const") {
            (Rule::ConstChanged, child(rp, "const"), rejects)
        } else if rs.contains_key("enum") {
            (Rule::EnumValueRemoved, child(rp, "enum"), rejects)
        } else if keyword == "const" {
            (Rule::ConstChanged, rp.to_string(), rejects)
        } else {
            (Rule::EnumValueRemoved, rp.to_string(), rejects)
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
        // A number the reader reads as `integer` only is a fraction.
        let mut hint = json!({ "type": missing });
        if missing.contains(&"number") && reads.contains("integer") {
            hint["not"] = json!({"type": "integer"});
        }
        let writer = Value::Object(ws.clone());
        self.report(
            rule,
            &child(rp, "type"),
            &child(wp, "type"),
            format!(
                "the reader accepts {}, the writer {writer_says}",
                join(&reads)
            ),
            |root| sample::hinted(root, &writer, &hint),
        );
    }

    fn strings(&mut self, ws: &Map<String, Value>, wp: &str, rs: &Map<String, Value>, rp: &str) {
        let writer = Value::Object(ws.clone());
        let strings = json!({"type": "string"});
        for (keyword, rule, verb) in [
            ("format", Rule::FormatChanged, "writes"),
            ("pattern", Rule::PatternChanged, "has"),
        ] {
            let Some(required) = rs.get(keyword) else {
                continue;
            };
            if ws.get(keyword) != Some(required) {
                self.report(
                    rule,
                    &child(rp, keyword),
                    &child(wp, keyword),
                    format!(
                        "the reader requires {keyword} {required}, the writer {}",
                        ws.get(keyword)
                            .map_or("has none".to_string(), |w| format!("{verb} {w}"))
                    ),
                    |root| sample::hinted(root, &writer, &strings),
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
        if !outside {
            return;
        }
        // One past the reader's limit, of the limit's own type.
        let ty = if keyword.ends_with("Length") {
            "string"
        } else {
            "array"
        };
        let past = match side {
            Side::Lower => (reader >= 1.0).then(|| (keyword.replace("min", "max"), reader - 1.0)),
            Side::Upper => Some((keyword.replace("max", "min"), reader + 1.0)),
        };
        let writer_schema = Value::Object(ws.clone());
        self.report(
            rule,
            &child(rp, keyword),
            &child(wp, keyword),
            format!(
                "the reader requires {keyword} {reader}, the writer {}",
                bound_text(writer)
            ),
            |root| match past {
                Some((opposite, count)) => {
                    let mut hint = json!({ "type": ty });
                    hint[opposite] = json!(count as u64);
                    sample::hinted(root, &writer_schema, &hint)
                }
                None => Vec::new(),
            },
        );
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
                let writer_schema = Value::Object(ws.clone());
                let hint = json!({"not": {"multipleOf": step}});
                self.report(
                    Rule::MultipleOfChanged,
                    &child(rp, "multipleOf"),
                    &child(wp, "multipleOf"),
                    format!(
                        "the reader requires multiples of {step}, the writer {}",
                        bound_text(writer)
                    ),
                    |root| sample::hinted(root, &writer_schema, &hint),
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
            // Just past the reader's bound: below its minimum, above its
            // maximum.
            let past = match (side, is_exclusive) {
                (Side::Lower, false) => "exclusiveMaximum",
                (Side::Lower, true) => "maximum",
                (Side::Upper, false) => "exclusiveMinimum",
                (Side::Upper, true) => "minimum",
            };
            let mut hint = json!({});
            hint[past] = json!(reader.0);
            let writer_schema = Value::Object(ws.clone());
            self.report(
                rule,
                &child(rp, keyword),
                &child(wp, keyword),
                format!(
                    "the reader requires {keyword} {}, the writer {writer_text}",
                    reader.0
                ),
                |root| sample::hinted(root, &writer_schema, &hint),
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
            let writer = Value::Object(ws.clone());
            let hint = json!({"type": "array", "not": {"uniqueItems": true}});
            self.report(
                Rule::UniqueItemsAdded,
                &child(rp, "uniqueItems"),
                &child(wp, "uniqueItems"),
                "the reader requires unique items, the writer may repeat them".into(),
                |root| sample::hinted(root, &writer, &hint),
            );
        }
        let any = Value::Bool(true);
        let w_items = ws.get("items").unwrap_or(&any);
        let r_items = rs.get("items").unwrap_or(&any);
        // An item is a value of its own: the writer's `oneOf` branches
        // under check say nothing about it.
        let excluded = std::mem::take(&mut self.excluded);
        let writer = Rc::new(Value::Object(ws.clone()));
        self.enter(&writer, &Rc::new(Vec::new()), Step::Item);
        self.check(w_items, &child(wp, "items"), r_items, &child(rp, "items"));
        self.leave();
        self.excluded = excluded;
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
        // A writer that requires a property it never allows writes no
        // object at all.
        if w_required
            .iter()
            .any(|name| rejects_everything(self.writer_root, property_schema(ws, name)))
        {
            return;
        }
        // A property is a value of its own: the writer's `oneOf` branches
        // under check say nothing about it.
        let excluded = std::mem::take(&mut self.excluded);
        let writer = Rc::new(Value::Object(ws.clone()));
        let reader_required: Rc<Vec<String>> =
            Rc::new(r_required.iter().map(|n| n.to_string()).collect());
        let names: BTreeSet<&String> = w_props.keys().chain(r_props.keys()).collect();
        for name in names {
            let token = escape_pointer_token(name);
            let w_at = format!("{}/{token}", child(wp, "properties"));
            let r_at = format!("{}/{token}", child(rp, "properties"));
            let step = Step::Property(name.clone());
            match (w_props.get(name), r_props.get(name)) {
                (Some(w), Some(r)) => {
                    self.enter(&writer, &reader_required, step);
                    self.check(w, &w_at, r, &r_at);
                    self.leave();
                }
                // A property whose schema is `false` is never written:
                // whatever the reader says about it, nothing breaks.
                (Some(w), None) if rejects_everything(self.writer_root, w) => {}
                (Some(w), None) => {
                    self.enter(&writer, &reader_required, step);
                    if r_extra == &Value::Bool(false) {
                        self.report(
                            Rule::PropertyRemoved,
                            &child(rp, "additionalProperties"),
                            &w_at,
                            format!("the writer writes \"{name}\", which the reader's closed content model rejects"),
                            |root| sample::of(root, w),
                        );
                    } else {
                        self.check(w, &w_at, r_extra, &child(rp, "additionalProperties"));
                    }
                    self.leave();
                }
                (None, Some(r)) => {
                    if rejects_everything(self.writer_root, w_extra) {
                        continue;
                    }
                    self.enter(&writer, &reader_required, step);
                    let trial = self.trial(w_extra, &child(wp, "additionalProperties"), r, &r_at);
                    self.leave();
                    if !trial.is_empty() {
                        self.report_with(
                            Rule::PropertyAddedToOpenModel,
                            &r_at,
                            &child(wp, "additionalProperties"),
                            format!(
                                "the writer's open content model may already carry \"{name}\" with values the reader rejects"
                            ),
                            candidates(trial),
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
                let others: Vec<&str> = r_required.iter().copied().filter(|n| n != name).collect();
                let hint = json!({"type": "object", "required": others});
                self.report(
                    Rule::RequiredAdded,
                    &child(rp, "required"),
                    &child(wp, "required"),
                    format!("the reader requires \"{name}\", which the writer may omit; give it a default or keep it optional"),
                    |root| sample::hinted(root, &writer, &hint),
                );
            }
        }
        if !(r_extra == &Value::Bool(true) || rejects_everything(self.writer_root, w_extra)) {
            // A property neither side declares, to show what the writer's
            // additionalProperties allows.
            let fresh = (1..)
                .map(|i| {
                    if i == 1 {
                        "extra".to_string()
                    } else {
                        format!("extra_{i}")
                    }
                })
                .find(|n| !w_props.contains_key(n) && !r_props.contains_key(n))
                .expect("a free name");
            self.enter(&writer, &reader_required, Step::Property(fresh));
            let narrowed = self.trial(
                w_extra,
                &child(wp, "additionalProperties"),
                r_extra,
                &child(rp, "additionalProperties"),
            );
            self.leave();
            if !narrowed.is_empty() {
                self.report_with(
                    Rule::AdditionalPropertiesNarrowed,
                    &child(rp, "additionalProperties"),
                    &child(wp, "additionalProperties"),
                    "the writer may write properties the reader's additionalProperties rejects"
                        .into(),
                    candidates(narrowed),
                );
            }
        }
        self.excluded = excluded;
    }

    /// `oneOf` and `anyOf`. A writer with branches writes its siblings and
    /// one branch: each such combination must pass against the reader. A
    /// reader with branches accepts a writer when one of its branches
    /// (with the reader's siblings) does, and, for `oneOf`, when no other
    /// branch may match the same values ([`Checker::overlaps`]).
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
        if let Some((keyword, list)) = branches(ws) {
            let rule = branch_rule(keyword);
            let reader = Value::Object(rs.clone());
            let siblings = without(ws, &[keyword]);
            let merged: Vec<Value> = list.iter().map(|b| conjunction(&siblings, b)).collect();
            for (i, branch) in merged.iter().enumerate() {
                let at = format!("{}/{i}", child(wp, keyword));
                // A value that matches two of the writer's `oneOf`
                // branches is never written.
                let excluded = if keyword == "oneOf" {
                    let others = merged.iter().enumerate().filter(|(j, _)| *j != i);
                    others.map(|(_, b)| b.clone()).collect()
                } else {
                    Vec::new()
                };
                let trial = self.trial_excluding(branch, &at, &reader, rp, excluded);
                // An overlap is its own reason; anything else means the
                // reader does not take this branch.
                let (overlaps, others): (Vec<Pending>, Vec<Pending>) = trial
                    .into_iter()
                    .partition(|p| p.rule == Rule::OneOfBranchesOverlap);
                self.findings.extend(overlaps);
                if !others.is_empty() {
                    self.report_with(
                        rule,
                        rp,
                        &at,
                        format!("the reader does not accept everything this {keyword} branch of the writer allows"),
                        candidates(others),
                    );
                }
            }
            return true;
        }
        if let Some((keyword, list)) = branches(rs) {
            let rule = branch_rule(keyword);
            let siblings = without(rs, &[keyword]);
            let writer = Value::Object(ws.clone());
            let merged: Vec<Value> = list.iter().map(|b| conjunction(&siblings, b)).collect();
            let mut proposed = Vec::new();
            let mut accepting = None;
            for (i, branch) in merged.iter().enumerate() {
                let at = format!("{}/{i}", child(rp, keyword));
                let trial = self.trial(&writer, wp, branch, &at);
                if trial.is_empty() {
                    accepting = Some(i);
                    break;
                }
                proposed.extend(candidates(trial));
            }
            match accepting {
                None => self.report_with(
                    rule,
                    &child(rp, keyword),
                    wp,
                    format!(
                        "no {keyword} branch of the reader accepts everything the writer allows"
                    ),
                    proposed,
                ),
                Some(i) if keyword == "oneOf" => self.overlaps(&writer, wp, &merged, i, rp),
                Some(_) => {}
            }
        }
        false
    }

    /// The writer fits the reader's `oneOf` branch `accepting`; every other
    /// branch must share no value with it, unless the writer never writes
    /// the shared values (they match another branch of its own `oneOf`).
    fn overlaps(&mut self, writer: &Value, wp: &str, merged: &[Value], accepting: usize, rp: &str) {
        let (writer_root, reader_root) = (self.writer_root, self.reader_root);
        let written = Part {
            root: writer_root,
            schema: writer,
        };
        for (j, other) in merged.iter().enumerate() {
            if j == accepting {
                continue;
            }
            let branch = Part {
                root: reader_root,
                schema: other,
            };
            if overlap::disjoint(written, branch) {
                continue;
            }
            let fits = Part {
                root: reader_root,
                schema: &merged[accepting],
            };
            let unwritten = self.excluded.iter().any(|alt| {
                let alt = Part {
                    root: writer_root,
                    schema: alt,
                };
                [written, fits, branch]
                    .into_iter()
                    .any(|inner| self.includes(alt, inner))
            });
            if unwritten {
                continue;
            }
            self.report(
                Rule::OneOfBranchesOverlap,
                &format!("{}/{j}", child(rp, "oneOf")),
                wp,
                format!(
                    "the writer's values match oneOf branch {accepting} of the reader and may match branch {j} too; the reader accepts a value only when exactly one branch matches"
                ),
                |root| {
                    let mut leaves = sample::samples(&[
                        Part {
                            root,
                            schema: writer,
                        },
                        branch,
                    ]);
                    leaves.extend(sample::of(root, writer));
                    leaves
                },
            );
        }
    }
}

fn branch_rule(keyword: &str) -> Rule {
    if keyword == "oneOf" {
        Rule::OneOfBranchNotAccepted
    } else {
        Rule::AnyOfBranchNotAccepted
    }
}

/// The documents proposed by the findings of a trial.
fn candidates(findings: Vec<Pending>) -> Vec<Candidate> {
    findings.into_iter().flat_map(|p| p.candidates).collect()
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
