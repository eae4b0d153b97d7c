//! Whether two schemas share no value: the test behind
//! [`Rule::OneOfBranchesOverlap`](crate::rules::Rule::OneOfBranchesOverlap).
//!
//! A reader's `oneOf` accepts a value only when exactly one branch matches
//! it, so a writer's value that matches a second branch is rejected. The
//! checker asks [`disjoint`] of the writer's schema and each other branch.
//! The answer is `true` only when proven, from what the two schemas say
//! plainly:
//!
//! - no type in common (`integer` counts as a `number`);
//! - listed values (`const`, `enum`) that the other schema rejects, checked
//!   with the validator;
//! - numeric ranges, string lengths or array lengths that do not meet;
//! - a property one of them requires whose schemas on the two sides are
//!   disjoint: a `const` discriminator (`"kind": {"const": "a"}` against
//!   `{"const": "b"}`), or a property the other side's closed model
//!   forbids;
//! - for a schema with branches, every branch disjoint from the other.
//!
//! Anything else is "not proven", and the checker refuses the overlap.

use serde_json::{Map, Value};

use super::resolve::{
    branches, conjunction, finite_values, property_schema, required, resolve, standalone, without,
    writer_types, ALL_TYPES,
};
use super::sample::Part;

/// Nesting beyond this (through properties, items, branches and `$ref`s)
/// is not explored: the answer is "not proven".
const MAX_DEPTH: usize = 16;

/// Whether no value is accepted by both `a` and `b`; `false` when that
/// cannot be proven.
pub(crate) fn disjoint(a: Part<'_>, b: Part<'_>) -> bool {
    disjoint_at(a, b, 0)
}

fn disjoint_at(a: Part<'_>, b: Part<'_>, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let (ra, rb) = (resolve(a.root, a.schema, ""), resolve(b.root, b.schema, ""));
    if ra.boolean == Some(false) || rb.boolean == Some(false) {
        return true;
    }
    if ra.boolean.is_some() || rb.boolean.is_some() {
        return false;
    }
    let (ma, mb) = (&ra.schema, &rb.schema);
    // Branches: each must be disjoint from the other side.
    for (map, root, other) in [(ma, a.root, b), (mb, b.root, a)] {
        if let Some((keyword, list)) = branches(map) {
            let siblings = without(map, &[keyword]);
            return list.iter().all(|branch| {
                let merged = conjunction(&siblings, branch);
                disjoint_at(
                    Part {
                        root,
                        schema: &merged,
                    },
                    other,
                    depth + 1,
                )
            });
        }
    }
    // Listed values: exact, with both sides compiled.
    for (map, root, other, other_root) in [(ma, a.root, mb, b.root), (mb, b.root, ma, a.root)] {
        if let Some(values) = finite_values(map) {
            let (Some(own), Some(theirs)) = (standalone(root, map), standalone(other_root, other))
            else {
                return false;
            };
            return values
                .iter()
                .all(|v| !(own.is_valid(v) && theirs.is_valid(v)));
        }
    }
    common_types(ma, mb).into_iter().all(|ty| match ty {
        "integer" | "number" => ranges_apart(ma, mb) || ranges_apart(mb, ma),
        "string" => lengths_apart(ma, mb, "minLength", "maxLength"),
        "array" => {
            lengths_apart(ma, mb, "minItems", "maxItems") || items_apart(a, ma, b, mb, depth)
        }
        "object" => required(ma).union(&required(mb)).any(|name| {
            disjoint_at(
                Part {
                    root: a.root,
                    schema: property_schema(ma, name),
                },
                Part {
                    root: b.root,
                    schema: property_schema(mb, name),
                },
                depth + 1,
            )
        }),
        // `null` and `boolean` values are told apart only by listed
        // values, handled above.
        _ => false,
    })
}

/// The types both allow; an `integer` is allowed by a `number`.
fn common_types(a: &Map<String, Value>, b: &Map<String, Value>) -> Vec<&'static str> {
    let (ta, tb) = (writer_types(a), writer_types(b));
    let allows = |types: &std::collections::BTreeSet<&str>, ty: &str| {
        types.contains(ty) || (ty == "integer" && types.contains("number"))
    };
    ALL_TYPES
        .iter()
        .copied()
        .filter(|ty| allows(&ta, ty) && allows(&tb, ty))
        .collect()
}

/// Whether every number `a` allows lies below every number `b` allows.
fn ranges_apart(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    let bound = |map: &Map<String, Value>, inclusive: &str, exclusive: &str| {
        let inc = map
            .get(inclusive)
            .and_then(Value::as_f64)
            .map(|v| (v, false));
        let exc = map
            .get(exclusive)
            .and_then(Value::as_f64)
            .map(|v| (v, true));
        [inc, exc].into_iter().flatten().collect::<Vec<_>>()
    };
    let uppers = bound(a, "maximum", "exclusiveMaximum");
    let lowers = bound(b, "minimum", "exclusiveMinimum");
    uppers.iter().any(|(hi, hx)| {
        lowers
            .iter()
            .any(|(lo, lx)| hi < lo || (hi == lo && (*hx || *lx)))
    })
}

/// Whether the counts `min`..`max` of the two sides do not meet.
fn lengths_apart(a: &Map<String, Value>, b: &Map<String, Value>, min: &str, max: &str) -> bool {
    let get = |map: &Map<String, Value>, key: &str| map.get(key).and_then(Value::as_u64);
    let below = |x: &Map<String, Value>, y: &Map<String, Value>| matches!((get(x, max), get(y, min)), (Some(hi), Some(lo)) if hi < lo);
    below(a, b) || below(b, a)
}

/// Whether arrays of the two sides cannot share an item while one of them
/// needs at least one.
fn items_apart(
    a: Part<'_>,
    ma: &Map<String, Value>,
    b: Part<'_>,
    mb: &Map<String, Value>,
    depth: usize,
) -> bool {
    let needs_one = |map: &Map<String, Value>| {
        map.get("minItems")
            .and_then(Value::as_u64)
            .is_some_and(|n| n > 0)
    };
    let any = Value::Bool(true);
    (needs_one(ma) || needs_one(mb))
        && disjoint_at(
            Part {
                root: a.root,
                schema: ma.get("items").unwrap_or(&any),
            },
            Part {
                root: b.root,
                schema: mb.get("items").unwrap_or(&any),
            },
            depth + 1,
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(a: Value, b: Value, expected: bool) {
        let (pa, pb) = (
            Part {
                root: &a,
                schema: &a,
            },
            Part {
                root: &b,
                schema: &b,
            },
        );
        assert_eq!(disjoint(pa, pb), expected, "{a} and {b}");
        assert_eq!(disjoint(pb, pa), expected, "{b} and {a}");
    }

    #[test]
    fn disjoint_only_when_proven() {
        let kind = |k: &str| json!({"type": "object", "required": ["kind"], "properties": {"kind": {"const": k}}});
        check(json!({"type": "integer"}), json!({"type": "number"}), false);
        check(json!({"type": "integer"}), json!({"type": "string"}), true);
        check(
            json!({"type": "number"}),
            json!({"type": ["string", "null"]}),
            true,
        );
        check(json!({"const": "a"}), json!({"enum": ["b", "c"]}), true);
        check(
            json!({"enum": ["a", "b"]}),
            json!({"type": "string", "maxLength": 1}),
            false,
        );
        check(
            json!({"enum": ["aa", 3]}),
            json!({"type": "string", "maxLength": 1}),
            true,
        );
        check(
            json!({"type": "integer", "maximum": 0}),
            json!({"type": "integer", "exclusiveMinimum": 0}),
            true,
        );
        check(
            json!({"type": "integer", "maximum": 0}),
            json!({"type": "integer", "minimum": 0}),
            false,
        );
        check(
            json!({"type": "string", "maxLength": 2}),
            json!({"type": "string", "minLength": 3}),
            true,
        );
        check(kind("a"), kind("b"), true);
        check(kind("a"), kind("a"), false);
        check(
            kind("a"),
            json!({"type": "object", "properties": {"kind": {"const": "b"}}}),
            true,
        );
        check(
            kind("a"),
            json!({"type": "object", "additionalProperties": false}),
            true,
        );
        check(kind("a"), json!({"type": "object"}), false);
        check(json!({"oneOf": [kind("a"), kind("b")]}), kind("c"), true);
        check(json!({"oneOf": [kind("a"), kind("b")]}), kind("b"), false);
        check(
            json!({"type": "array", "minItems": 1, "items": {"type": "string"}}),
            json!({"type": "array", "items": {"type": "integer"}}),
            true,
        );
        check(
            json!({"type": "boolean"}),
            json!({"type": "boolean"}),
            false,
        );
        check(json!(false), json!(true), true);
        check(json!(true), json!({"type": "string"}), false);
    }
}
