//! A [`ChannelSpec`] as the Rust expression generated code declares it
//! (`pub const SPEC: ::courier::ChannelSpec = ...`).
//!
//! The registry's struct is the runtime's struct, so rendering it is
//! mechanical: [`spec_literal`] names every field once, and each field's
//! type knows how to write itself ([`Literal`]). A new setting is one line
//! in [`spec_literal`]; the destructuring there has no `..`, so a field left
//! out does not compile.
//!
//! Every value is written as a constructor expression (`Cow::Borrowed`,
//! struct and enum literals), never as a call to a `const fn`: a constant
//! built only of such expressions can be the base of struct update syntax
//! in another constant (`ChannelSpec { name: .., ..SPEC }`), which a
//! function's result cannot, because a constant cannot drop the replaced
//! fields of a value it only knows by type.

use std::time::Duration;

use courier_schema::{
    Backoff, ChannelRef, ChannelSpec, Compatibility, DependencySpec, Durability, List,
    PartitionSpec, RateSpec, Retention, SlaNoticeSpec, Text, Transport,
};

use crate::names::ident;

/// The Rust expression of a spec, for a channel module of a generated
/// crate: a notice channel is referred to as `super::<channel>::SPEC`.
pub fn spec_literal(spec: &ChannelSpec) -> String {
    let ChannelSpec {
        domain,
        name,
        schema,
        description,
        transport,
        ttl,
        visibility_timeout,
        dedup_window,
        max_attempts,
        backoff,
        retention,
        max_depth,
        sla,
        partitions,
        compatibility,
        producers,
        consumers,
        dependency,
        rate_limit,
        sla_notice,
        durability,
    } = spec;
    fields(
        "::courier::ChannelSpec",
        &[
            ("domain", domain.literal()),
            ("name", name.literal()),
            ("schema", schema.literal()),
            ("description", description.literal()),
            ("transport", transport.literal()),
            ("ttl", ttl.literal()),
            ("visibility_timeout", visibility_timeout.literal()),
            ("dedup_window", dedup_window.literal()),
            ("max_attempts", max_attempts.literal()),
            ("backoff", backoff.literal()),
            ("retention", retention.literal()),
            ("max_depth", max_depth.literal()),
            ("sla", sla.literal()),
            ("partitions", partitions.literal()),
            ("compatibility", compatibility.literal()),
            ("producers", producers.literal()),
            ("consumers", consumers.literal()),
            ("dependency", dependency.literal()),
            ("rate_limit", rate_limit.literal()),
            ("sla_notice", sla_notice.literal()),
            ("durability", durability.literal()),
        ],
    )
}

/// `path { name: value, .. }`.
fn fields(path: &str, fields: &[(&str, String)]) -> String {
    let fields: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    format!("{path} {{ {} }}", fields.join(", "))
}

/// A value written as a Rust constant expression.
trait Literal {
    /// The expression.
    fn literal(&self) -> String;
}

impl Literal for Text {
    fn literal(&self) -> String {
        format!("::std::borrow::Cow::Borrowed({:?})", &**self)
    }
}

impl Literal for List {
    fn literal(&self) -> String {
        let items: Vec<String> = self.iter().map(Literal::literal).collect();
        format!("::std::borrow::Cow::Borrowed(&[{}])", items.join(", "))
    }
}

impl Literal for u32 {
    fn literal(&self) -> String {
        self.to_string()
    }
}

impl Literal for u64 {
    fn literal(&self) -> String {
        self.to_string()
    }
}

impl Literal for f64 {
    fn literal(&self) -> String {
        // `{:?}` keeps the decimal point (`2.0`), so the literal is an f64.
        format!("{self:?}")
    }
}

impl Literal for Duration {
    fn literal(&self) -> String {
        format!("::std::time::Duration::from_millis({})", self.as_millis())
    }
}

impl<T: Literal> Literal for Option<T> {
    fn literal(&self) -> String {
        match self {
            None => "None".to_string(),
            Some(value) => format!("Some({})", value.literal()),
        }
    }
}

impl Literal for Transport {
    fn literal(&self) -> String {
        let variant = match self {
            Transport::Stream => "Stream",
            Transport::List => "List",
            Transport::Priority => "Priority",
            Transport::Pubsub => "Pubsub",
        };
        format!("::courier::Transport::{variant}")
    }
}

impl Literal for Compatibility {
    fn literal(&self) -> String {
        let variant = match self {
            Compatibility::Backward => "Backward",
            Compatibility::BackwardTransitive => "BackwardTransitive",
            Compatibility::Forward => "Forward",
            Compatibility::ForwardTransitive => "ForwardTransitive",
            Compatibility::Full => "Full",
            Compatibility::FullTransitive => "FullTransitive",
            Compatibility::None => "None",
        };
        format!("::courier::Compatibility::{variant}")
    }
}

impl Literal for Backoff {
    fn literal(&self) -> String {
        let Backoff {
            initial,
            max,
            multiplier,
        } = self;
        fields(
            "::courier::Backoff",
            &[
                ("initial", initial.literal()),
                ("max", max.literal()),
                ("multiplier", multiplier.literal()),
            ],
        )
    }
}

impl Literal for Retention {
    fn literal(&self) -> String {
        let Retention { max_len, max_age } = self;
        fields(
            "::courier::Retention",
            &[
                ("max_len", max_len.literal()),
                ("max_age", max_age.literal()),
            ],
        )
    }
}

impl Literal for PartitionSpec {
    fn literal(&self) -> String {
        match self {
            PartitionSpec::Values { field, values } => fields(
                "::courier::PartitionSpec::Values",
                &[("field", field.literal()), ("values", values.literal())],
            ),
            PartitionSpec::Buckets { field, buckets } => fields(
                "::courier::PartitionSpec::Buckets",
                &[("field", field.literal()), ("buckets", buckets.literal())],
            ),
        }
    }
}

impl Literal for DependencySpec {
    fn literal(&self) -> String {
        let DependencySpec {
            name,
            failure_threshold,
            window,
            cool_down,
        } = self;
        fields(
            "::courier::DependencySpec",
            &[
                ("name", name.literal()),
                ("failure_threshold", failure_threshold.literal()),
                ("window", window.literal()),
                ("cool_down", cool_down.literal()),
            ],
        )
    }
}

impl Literal for RateSpec {
    fn literal(&self) -> String {
        let RateSpec {
            name,
            per_second,
            burst,
        } = self;
        fields(
            "::courier::RateSpec",
            &[
                ("name", name.literal()),
                ("per_second", per_second.literal()),
                ("burst", burst.literal()),
            ],
        )
    }
}

impl Literal for SlaNoticeSpec {
    fn literal(&self) -> String {
        let SlaNoticeSpec { channel, version } = self;
        fields(
            "::courier::SlaNoticeSpec",
            &[
                ("channel", channel.literal()),
                ("version", version.literal()),
            ],
        )
    }
}

impl Literal for ChannelRef {
    fn literal(&self) -> String {
        // The registry allows only a channel of the same domain, which is a
        // sibling module of the generated crate's `channels` module.
        format!(
            "::courier::ChannelRef::Static(&super::{}::SPEC)",
            ident(&self.name)
        )
    }
}

impl Literal for Durability {
    fn literal(&self) -> String {
        match self {
            Durability::Primary => "::courier::Durability::Primary".to_string(),
            Durability::Replicated { replicas, timeout } => fields(
                "::courier::Durability::Replicated",
                &[
                    ("replicas", replicas.literal()),
                    ("timeout", timeout.literal()),
                ],
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(value: &impl Literal, expected: &str) {
        assert_eq!(value.literal(), expected);
    }

    #[test]
    fn values_are_written_as_constant_expressions() {
        check(
            &Text::from("a \"b\""),
            r#"::std::borrow::Cow::Borrowed("a \"b\"")"#,
        );
        check(
            &List::from(vec![Text::from("eu"), Text::from("us")]),
            r#"::std::borrow::Cow::Borrowed(&[::std::borrow::Cow::Borrowed("eu"), ::std::borrow::Cow::Borrowed("us")])"#,
        );
        check(&2.0_f64, "2.0");
        check(
            &Some(Duration::from_secs(2)),
            "Some(::std::time::Duration::from_millis(2000))",
        );
        check(&None::<u64>, "None");
        check(
            &Durability::Replicated {
                replicas: 2,
                timeout: Duration::from_millis(1500),
            },
            "::courier::Durability::Replicated { replicas: 2, timeout: ::std::time::Duration::from_millis(1500) }",
        );
        let notice = SlaNoticeSpec {
            channel: ChannelRef::Owned(Box::new(ChannelSpec::new(
                "shop",
                "breaches",
                "shop.breach",
                Transport::Pubsub,
            ))),
            version: 3,
        };
        check(
            &notice,
            "::courier::SlaNoticeSpec { channel: ::courier::ChannelRef::Static(&super::breaches::SPEC), version: 3 }",
        );
    }
}
