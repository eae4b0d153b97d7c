//! Schema compatibility: does one schema accept every document another
//! accepts?
//!
//! [`accepts`] answers that for a reader schema and a writer schema, and
//! lists every reason it may not, each under a stable rule id and with a
//! [`Witness`]: a small document the writer's schema accepts and the
//! reader's rejects, verified with the [`Validator`](crate::Validator) on
//! both whole schemas before it is reported. When no document can be
//! verified the finding says so and why ([`Witness::Missing`]); the
//! finding stands, since the checker refuses what it cannot prove safe.
//! The compatibility modes of `channels.json` run it in one direction or
//! both:
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
//!
//! `oneOf` is read as the validator reads it: a value must match exactly
//! one branch. A writer's value that matches a second branch of the
//! reader's `oneOf` is rejected, so overlapping branches are refused
//! ([`Rule::OneOfBranchesOverlap`]) unless the checker proves them apart
//! for every value the writer writes (`compat/overlap.rs`). Values that match
//! two branches of the writer's own `oneOf` are never written, so an
//! overlap the writer already had is no break.
//!
//! A property whose schema is `false` can never be present, so adding it
//! to or removing it from a closed model changes nothing and is not
//! reported.
//!
//! # Layout
//!
//! - `compat/checker.rs`: the walk over both schemas that finds the
//!   differences and proposes witnesses.
//! - `compat/resolve.rs`: `$ref`s followed, `allOf` folded, and small
//!   questions about one schema.
//! - `compat/overlap.rs`: whether two schemas share no value.
//! - `compat/sample.rs`: small values a conjunction of schemas accepts.
//! - `compat/pattern.rs`: strings that match a `pattern`.
//! - `compat/witness.rs`: placing samples into whole documents and
//!   verifying them; [`Witness`].

mod checker;
mod overlap;
mod pattern;
mod resolve;
mod sample;
mod witness;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use self::checker::Pending;
use self::witness::Verifier;
pub use self::witness::Witness;
pub use crate::rules::Rule;

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
    /// A document the writer accepts and the reader rejects, or why there
    /// is none.
    #[serde(flatten)]
    pub witness: Witness,
}

/// Every reason `reader` may reject a document `writer` accepts; empty when
/// every writer document is valid for the reader. Both are whole schema
/// documents (their `$ref`s resolve within themselves).
pub fn accepts(reader: &Value, writer: &Value) -> Vec<Finding> {
    let mut pending = checker::run(reader, writer);
    pending.sort_by(|a, b| a.key().cmp(&b.key()));
    let mut merged: Vec<Pending> = Vec::new();
    for finding in pending {
        match merged.last_mut() {
            Some(last) if last.key() == finding.key() => {
                last.candidates.extend(finding.candidates);
            }
            _ => merged.push(finding),
        }
    }
    if merged.is_empty() {
        return Vec::new();
    }
    let verifier = Verifier::new(reader, writer);
    merged
        .into_iter()
        .map(|p| Finding {
            witness: verifier.pick(&p.candidates),
            rule: p.rule,
            reader_pointer: p.reader_pointer,
            writer_pointer: p.writer_pointer,
            message: p.message,
        })
        .collect()
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
