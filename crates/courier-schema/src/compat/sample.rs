//! Small values that a conjunction of schemas accepts, for witnesses.
//!
//! The witness of a finding is a value the writer's schema accepts and the
//! reader's rejects. The checker asks for one by sampling the writer's
//! schema together with a hint that steps past the reader's constraint:
//! `{"exclusiveMinimum": 10}` past a reader's `maximum` of 10, `{"not":
//! {"enum": [...]}}` past a reader's `enum`. Every part is a JSON Schema,
//! and a sample tries to satisfy all of them: bounds, `multipleOf`, lengths,
//! formats, simple patterns, required properties, items, one branch of a
//! `oneOf` at a time. Besides courier's keywords it reads the forms of
//! `not` the checker writes (`const`, `enum`, `type`, `multipleOf`,
//! `uniqueItems`).
//!
//! Sampling is best effort and decides nothing: the checker verifies every
//! witness with the validator before reporting it, so a sample that misses
//! a keyword is dropped, not reported.

use std::cell::Cell;
use std::collections::BTreeSet;

use serde_json::{json, Map, Number, Value};

use super::pattern;
use super::resolve::{
    branches, conjunction, declared_types, finite_values, property_schema, resolve, without,
};
use crate::text::type_name;

/// A schema with the document its `$ref`s resolve in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Part<'a> {
    /// The whole schema document.
    pub(crate) root: &'a Value,
    /// The schema inside it.
    pub(crate) schema: &'a Value,
}

/// Samples of one part.
pub(crate) fn of(root: &Value, schema: &Value) -> Vec<Value> {
    samples(&[Part { root, schema }])
}

/// Samples of `schema` stepped past the reader by `hint` (a schema without
/// `$ref`s).
pub(crate) fn hinted(root: &Value, schema: &Value, hint: &Value) -> Vec<Value> {
    samples(&[Part { root, schema }, Part { root, schema: hint }])
}

/// Values every part should accept, the simplest first, at most
/// [`MAX_SAMPLES`].
pub(crate) fn samples(parts: &[Part<'_>]) -> Vec<Value> {
    let owned: Vec<(&Value, Value)> = parts.iter().map(|p| (p.root, p.schema.clone())).collect();
    sample(&owned, 0, &Cell::new(MAX_CALLS))
}

/// How many values one call returns.
const MAX_SAMPLES: usize = 8;

/// How deep values nest; deeper (a recursive schema that requires its own
/// kind again) gives no sample.
const MAX_DEPTH: usize = 16;

/// How many schemas one call may visit, so that a schema whose branches
/// and required properties multiply cannot take long; past it, samples
/// stop.
const MAX_CALLS: usize = 4096;

/// The formats courier asserts, each with a value in it.
const FORMAT_SAMPLES: &[(&str, &str)] = &[
    ("date", "2024-01-31"),
    ("date-time", "2024-01-31T12:00:00Z"),
    ("email", "user@example.com"),
    ("ipv4", "192.0.2.1"),
    ("ipv6", "2001:db8::1"),
    ("uri", "https://example.com/"),
    ("uuid", "00000000-0000-4000-8000-000000000000"),
];

/// The order types are tried in when a schema allows several.
const TYPE_ORDER: &[&str] = &[
    "object", "string", "integer", "number", "boolean", "array", "null",
];

fn sample(parts: &[(&Value, Value)], depth: usize, budget: &Cell<usize>) -> Vec<Value> {
    if depth > MAX_DEPTH || budget.get() == 0 {
        return Vec::new();
    }
    budget.set(budget.get() - 1);
    let mut maps: Vec<(&Value, Map<String, Value>)> = Vec::new();
    for (root, schema) in parts {
        let resolved = resolve(root, schema, "");
        match resolved.boolean {
            Some(false) => return Vec::new(),
            Some(true) => {}
            None => maps.push((*root, resolved.schema)),
        }
    }
    // One branch at a time: the first part with branches is replaced by
    // each of them (with its siblings).
    if let Some(i) = maps.iter().position(|(_, m)| branches(m).is_some()) {
        let (root, map) = &maps[i];
        let (keyword, list) = branches(map).expect("found above");
        let siblings = without(map, &[keyword]);
        let mut out = Vec::new();
        for branch in list {
            let mut sub: Vec<(&Value, Value)> = maps
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (r, m))| (*r, Value::Object(m.clone())))
                .collect();
            sub.push((root, conjunction(&siblings, branch)));
            push_all(&mut out, sample(&sub, depth + 1, budget));
            if out.len() >= MAX_SAMPLES {
                break;
            }
        }
        return out;
    }
    let facts = Facts::of(&maps);
    if let Some(values) = &facts.listed {
        let mut out = Vec::new();
        push_all(
            &mut out,
            values.iter().filter(|v| facts.admits(v)).cloned().collect(),
        );
        return out;
    }
    let mut out = Vec::new();
    for ty in TYPE_ORDER {
        if !facts.types.contains(ty) {
            continue;
        }
        let values = match *ty {
            "null" => vec![Value::Null],
            "boolean" => vec![Value::Bool(false), Value::Bool(true)],
            "integer" => facts.numbers(true),
            "number" => facts.numbers(false),
            "string" => facts.strings(),
            "array" => facts.arrays(&maps, depth, budget),
            "object" => facts.objects(&maps, depth, budget),
            _ => Vec::new(),
        };
        push_all(
            &mut out,
            values.into_iter().filter(|v| facts.admits(v)).collect(),
        );
    }
    out
}

/// Appends values not there yet, up to [`MAX_SAMPLES`].
fn push_all(out: &mut Vec<Value>, values: Vec<Value>) {
    for value in values {
        if out.len() >= MAX_SAMPLES {
            return;
        }
        if !out.contains(&value) {
            out.push(value);
        }
    }
}

/// What the parts say together, keyword by keyword.
struct Facts {
    /// Types every part allows (an `integer` is also a `number`).
    types: BTreeSet<&'static str>,
    /// Whether a `number` must not be an integer (`not: {type: integer}`).
    fraction: bool,
    /// The values allowed, when some part lists them.
    listed: Option<Vec<Value>>,
    /// Values ruled out by `not`.
    avoid: Vec<Value>,
    /// The tightest lower bound, and whether it is exclusive.
    lower: Option<(f64, bool)>,
    /// The tightest upper bound, and whether it is exclusive.
    upper: Option<(f64, bool)>,
    /// Every `multipleOf`.
    steps: Vec<f64>,
    /// `multipleOf`s ruled out by `not`.
    avoid_steps: Vec<f64>,
    /// The largest `minLength`.
    min_length: u64,
    /// The smallest `maxLength`.
    max_length: Option<u64>,
    /// Every `format`.
    formats: Vec<String>,
    /// Every `pattern`.
    patterns: Vec<String>,
    /// The largest `minItems`.
    min_items: u64,
    /// The smallest `maxItems`.
    max_items: Option<u64>,
    /// Whether some part asks for `uniqueItems`.
    unique: bool,
    /// Whether an array must repeat an item (`not: {uniqueItems: true}`).
    repeat: bool,
}

impl Facts {
    fn of(maps: &[(&Value, Map<String, Value>)]) -> Facts {
        let mut facts = Facts {
            types: TYPE_ORDER.iter().copied().collect(),
            fraction: false,
            listed: None,
            avoid: Vec::new(),
            lower: None,
            upper: None,
            steps: Vec::new(),
            avoid_steps: Vec::new(),
            min_length: 0,
            max_length: None,
            formats: Vec::new(),
            patterns: Vec::new(),
            min_items: 0,
            max_items: None,
            unique: false,
            repeat: false,
        };
        for (_, map) in maps {
            if let Some(declared) = declared_types(map) {
                facts.types.retain(|t| {
                    declared.contains(t) || (*t == "integer" && declared.contains("number"))
                });
            }
            if let Some(values) = finite_values(map) {
                facts.listed = Some(match facts.listed.take() {
                    None => values,
                    Some(before) => before.into_iter().filter(|v| values.contains(v)).collect(),
                });
            }
            facts.read_numbers(map);
            facts.read_lengths(map);
            if let Some(not) = map.get("not").and_then(Value::as_object) {
                facts.read_not(not);
            }
        }
        facts
    }

    fn read_numbers(&mut self, map: &Map<String, Value>) {
        let get = |k: &str| map.get(k).and_then(Value::as_f64);
        for (bound, exclusive) in [(get("minimum"), false), (get("exclusiveMinimum"), true)] {
            if let Some(v) = bound {
                if self
                    .lower
                    .is_none_or(|(l, lx)| v > l || (v == l && exclusive && !lx))
                {
                    self.lower = Some((v, exclusive));
                }
            }
        }
        for (bound, exclusive) in [(get("maximum"), false), (get("exclusiveMaximum"), true)] {
            if let Some(v) = bound {
                if self
                    .upper
                    .is_none_or(|(u, ux)| v < u || (v == u && exclusive && !ux))
                {
                    self.upper = Some((v, exclusive));
                }
            }
        }
        self.steps.extend(get("multipleOf").filter(|s| *s > 0.0));
    }

    fn read_lengths(&mut self, map: &Map<String, Value>) {
        let get = |k: &str| map.get(k).and_then(Value::as_u64);
        self.min_length = self.min_length.max(get("minLength").unwrap_or(0));
        self.max_length = min_of(self.max_length, get("maxLength"));
        self.min_items = self.min_items.max(get("minItems").unwrap_or(0));
        self.max_items = min_of(self.max_items, get("maxItems"));
        self.unique |= map.get("uniqueItems") == Some(&Value::Bool(true));
        if let Some(format) = map.get("format").and_then(Value::as_str) {
            self.formats.push(format.to_string());
        }
        if let Some(pattern) = map.get("pattern").and_then(Value::as_str) {
            self.patterns.push(pattern.to_string());
        }
    }

    fn read_not(&mut self, not: &Map<String, Value>) {
        if let Some(value) = not.get("const") {
            self.avoid.push(value.clone());
        }
        if let Some(values) = not.get("enum").and_then(Value::as_array) {
            self.avoid.extend(values.iter().cloned());
        }
        if let Some(declared) = declared_types(not) {
            if declared.contains("number") {
                self.types.remove("number");
                self.types.remove("integer");
            } else if declared.contains("integer") {
                self.types.remove("integer");
                self.fraction = true;
            }
            self.types.retain(|t| !declared.contains(t));
        }
        self.avoid_steps
            .extend(not.get("multipleOf").and_then(Value::as_f64));
        self.repeat |= not.get("uniqueItems") == Some(&Value::Bool(true));
    }

    /// The checks a sample can make without a validator.
    fn admits(&self, value: &Value) -> bool {
        if self.avoid.contains(value) {
            return false;
        }
        let typed = match type_name(value) {
            "integer" => self.types.contains("integer"),
            other => self.types.contains(other),
        };
        if !typed {
            return false;
        }
        match value {
            Value::Number(n) => n.as_f64().is_some_and(|v| self.in_range(v)),
            Value::String(s) => {
                let n = s.chars().count() as u64;
                n >= self.min_length && self.max_length.is_none_or(|max| n <= max)
            }
            Value::Array(items) => {
                let n = items.len() as u64;
                n >= self.min_items && self.max_items.is_none_or(|max| n <= max)
            }
            _ => true,
        }
    }

    fn in_range(&self, v: f64) -> bool {
        let above = self
            .lower
            .is_none_or(|(l, x)| if x { v > l } else { v >= l });
        let below = self
            .upper
            .is_none_or(|(u, x)| if x { v < u } else { v <= u });
        let fits = |step: &f64| {
            let ratio = v / step;
            (ratio - ratio.round()).abs() < 1e-9
        };
        above && below && self.steps.iter().all(fits) && !self.avoid_steps.iter().any(fits)
    }

    /// Numbers in range: near zero, at the bounds, and halves for a
    /// `number` that must not be an integer.
    fn numbers(&self, integer: bool) -> Vec<Value> {
        let step = self.steps.first().copied();
        let mut seeds = vec![0.0, 1.0, -1.0, 2.0, 3.0, 0.5, 1.5, -0.5];
        for (bound, _) in self.lower.iter().chain(&self.upper) {
            for delta in [0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0] {
                seeds.push(bound + delta);
            }
        }
        let mut out = Vec::new();
        for seed in seeds {
            let mut candidates = vec![seed];
            if let Some(step) = step {
                candidates = vec![(seed / step).ceil() * step, (seed / step).floor() * step];
                candidates.extend((1..4).map(|k| (seed / step).ceil() * step + k as f64 * step));
            }
            for v in candidates {
                let whole = v.fract() == 0.0;
                if !v.is_finite() || (integer && !whole) || (!integer && self.fraction && whole) {
                    continue;
                }
                if self.in_range(v) {
                    let value = number(v);
                    if !out.contains(&value) {
                        out.push(value);
                    }
                }
            }
            if out.len() >= 4 {
                break;
            }
        }
        out
    }

    /// A format's value, strings from each pattern, then plain strings of
    /// the length allowed.
    fn strings(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for format in &self.formats {
            if let Some((_, text)) = FORMAT_SAMPLES.iter().find(|(f, _)| f == format) {
                out.push(text.to_string());
            }
        }
        for pattern in &self.patterns {
            out.extend(pattern::strings(pattern));
        }
        let length = self
            .min_length
            .max(1)
            .min(self.max_length.unwrap_or(u64::MAX)) as usize;
        for c in ['x', 'a', 'A', '0', ' ', '-'] {
            out.push(c.to_string().repeat(length));
        }
        out.push("x".repeat(self.min_length as usize));
        out.push("x".repeat(self.max_length.unwrap_or(0).min(4096) as usize));
        out.into_iter().map(Value::String).collect()
    }

    /// Arrays of the allowed length from samples of the items, repeating
    /// one item when asked to.
    fn arrays(
        &self,
        maps: &[(&Value, Map<String, Value>)],
        depth: usize,
        budget: &Cell<usize>,
    ) -> Vec<Value> {
        let parts: Vec<(&Value, Value)> = maps
            .iter()
            .filter_map(|(root, m)| Some((*root, m.get("items")?.clone())))
            .collect();
        let min = if self.repeat {
            self.min_items.max(2)
        } else {
            self.min_items
        } as usize;
        if min == 0 {
            let mut out = vec![json!([])];
            if let Some(first) = sample(&parts, depth + 1, budget).into_iter().next() {
                out.push(Value::Array(vec![first]));
            }
            return out;
        }
        let items = sample(&parts, depth + 1, budget);
        let Some(first) = items.first() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if self.unique && !self.repeat {
            if items.len() >= min {
                out.push(Value::Array(items[..min].to_vec()));
            }
        } else {
            out.push(Value::Array(vec![first.clone(); min]));
        }
        out
    }

    /// Objects with every required property (each from the parts' schemas
    /// for it), then variations of one property at a time.
    fn objects(
        &self,
        maps: &[(&Value, Map<String, Value>)],
        depth: usize,
        budget: &Cell<usize>,
    ) -> Vec<Value> {
        let mut names: Vec<&str> = Vec::new();
        for (_, map) in maps {
            for name in map
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        let mut base = Map::new();
        let mut others: Vec<(&str, Vec<Value>)> = Vec::new();
        for name in names {
            let parts: Vec<(&Value, Value)> = maps
                .iter()
                .map(|(root, m)| (*root, property_schema(m, name).clone()))
                .collect();
            // A name one part requires and another forbids outright is
            // left out: the parts disagree (a hint asked for a property
            // the writer never writes), and the validator decides.
            if parts
                .iter()
                .any(|(root, schema)| resolve(root, schema, "").boolean == Some(false))
            {
                continue;
            }
            let mut values = sample(&parts, depth + 1, budget).into_iter();
            // Otherwise a required property with no sample leaves no
            // object either, which also ends a schema that requires
            // itself without end.
            let Some(first) = values.next() else {
                return Vec::new();
            };
            base.insert(name.to_string(), first);
            others.push((name, values.collect()));
        }
        let mut out = vec![Value::Object(base.clone())];
        for (name, values) in others {
            for value in values.into_iter().take(2) {
                let mut variant = base.clone();
                variant.insert(name.to_string(), value);
                out.push(Value::Object(variant));
            }
        }
        out
    }
}

fn min_of(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A JSON number: an integer when whole, so it prints as `3`, not `3.0`.
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Value::Number(Number::from(v as i64))
    } else {
        Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(schema: Value, hint: Value, expected_first: Value) {
        let found = hinted(&schema, &schema, &hint);
        assert_eq!(
            found.first(),
            Some(&expected_first),
            "{schema} with {hint}: {found:?}"
        );
    }

    #[test]
    fn samples_step_past_the_hint() {
        check(
            json!({"type": "integer"}),
            json!({"exclusiveMinimum": 10}),
            json!(11),
        );
        check(
            json!({"type": "integer", "minimum": 0}),
            json!({"exclusiveMaximum": 5}),
            json!(0),
        );
        check(
            json!({"type": "number"}),
            json!({"type": "number", "not": {"type": "integer"}}),
            json!(0.5),
        );
        check(
            json!({"type": "integer", "multipleOf": 2}),
            json!({"not": {"multipleOf": 4}}),
            json!(2),
        );
        check(
            json!({"type": "string"}),
            json!({"not": {"const": "x"}}),
            json!("a"),
        );
        check(
            json!({"type": "string"}),
            json!({"minLength": 4}),
            json!("xxxx"),
        );
        check(
            json!({"type": "string", "format": "uuid"}),
            json!({}),
            json!("00000000-0000-4000-8000-000000000000"),
        );
        check(
            json!({"type": "string", "pattern": "^[a-z]{2}$"}),
            json!({}),
            json!("aa"),
        );
        check(
            json!({"type": "array", "items": {"type": "integer"}}),
            json!({"not": {"uniqueItems": true}}),
            json!([0, 0]),
        );
        check(
            json!({"enum": ["a", "b", "c"]}),
            json!({"not": {"enum": ["a"]}}),
            json!("b"),
        );
    }

    #[test]
    fn objects_carry_required_properties_through_refs_and_branches() {
        let root = json!({
            "type": "object", "required": ["kind", "region"],
            "properties": {"kind": {"oneOf": [{"const": "a"}, {"const": "b"}]}, "region": {"$ref": "#/$defs/Region"}},
            "$defs": {"Region": {"enum": ["eu", "us"]}}
        });
        let found = of(&root, &root);
        assert_eq!(found[0], json!({"kind": "a", "region": "eu"}));
        assert!(
            found.contains(&json!({"kind": "a", "region": "us"})),
            "{found:?}"
        );
        assert!(of(&root, &json!(false)).is_empty());
    }

    #[test]
    fn a_schema_that_requires_itself_gives_no_sample_and_ends() {
        // Every node requires two more nodes: no finite value fits, and
        // the walk stops at its budget instead of visiting 2^16 schemas.
        let root = json!({
            "$ref": "#/$defs/Node",
            "$defs": {"Node": {"type": "object", "required": ["l", "r"], "properties": {
                "l": {"$ref": "#/$defs/Node"}, "r": {"$ref": "#/$defs/Node"}}}}
        });
        assert_eq!(of(&root, &root), Vec::<Value>::new());
    }
}
