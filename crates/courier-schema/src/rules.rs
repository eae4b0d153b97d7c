//! Every rule id the schema checks report, in one leaf module.
//!
//! The ids are stable: they appear in reports, in CI annotations and in
//! `compat-exceptions.json`, so a rename breaks every exception file that
//! names the rule. [`Rule`] holds the compatibility rules that `compat`
//! reports; the generated-code and immutability rules that `review` adds
//! are the constants [`CODEGEN_RULES`] and [`IMMUTABILITY_RULES`] list;
//! [`rule_known`] answers for all of them, for the registry's check of
//! exception files. This module imports
//! nothing of its own crate, so every module that needs a rule id can use
//! it without a cycle (the registry and the review used to import each
//! other for `rule_known`).

use std::fmt;

use serde::Serialize;

/// Why a reader may reject what a writer writes. The ids are stable: they
/// appear in reports and in `compat-exceptions.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// The reader accepts no type the writer writes.
    TypeChanged,
    /// The reader accepts fewer types than the writer writes.
    TypeNarrowed,
    /// A value the writer may write is not among the reader's `enum`.
    EnumValueRemoved,
    /// The reader restricts to an `enum` the writer does not.
    EnumAdded,
    /// The reader requires a `const` the writer's values do not keep.
    ConstChanged,
    /// The reader requires a `format` the writer does not guarantee.
    FormatChanged,
    /// The reader's lower bound (`minimum`, `exclusiveMinimum`) is tighter.
    MinimumTightened,
    /// The reader's upper bound (`maximum`, `exclusiveMaximum`) is tighter.
    MaximumTightened,
    /// The reader's `multipleOf` is not a divisor of the writer's.
    MultipleOfChanged,
    /// The reader's `minLength` is higher.
    MinLengthTightened,
    /// The reader's `maxLength` is lower.
    MaxLengthTightened,
    /// The reader requires a `pattern` the writer does not guarantee.
    PatternChanged,
    /// The reader's `minItems` is higher.
    MinItemsTightened,
    /// The reader's `maxItems` is lower.
    MaxItemsTightened,
    /// The reader requires `uniqueItems`, the writer does not.
    UniqueItemsAdded,
    /// The writer writes a property the reader's closed content model
    /// rejects.
    PropertyRemoved,
    /// The reader declares a property the writer's open content model may
    /// already carry with values the reader rejects.
    PropertyAddedToOpenModel,
    /// The reader requires a property the writer may omit, with no default.
    RequiredAdded,
    /// The reader closes (or narrows) `additionalProperties` the writer
    /// leaves open.
    AdditionalPropertiesNarrowed,
    /// A `oneOf` branch of the writer is accepted by no branch of the reader.
    OneOfBranchNotAccepted,
    /// An `anyOf` branch of the writer is accepted by no branch of the reader.
    AnyOfBranchNotAccepted,
    /// A value the writer writes matches two branches of the reader's
    /// `oneOf`, or may: the reader accepts a value only when exactly one
    /// branch matches. Branches count as apart only when the checker proves
    /// it (no type in common, a `const` or `enum` the other branch rejects,
    /// ranges that do not meet, a required property whose schemas are
    /// disjoint, such as a `const` discriminator); values the writer never
    /// writes (they match two branches of its own `oneOf`) do not count.
    OneOfBranchesOverlap,
    /// The reader accepts nothing (`false`) where the writer writes.
    SchemaRejectsAll,
    /// A keyword the checker does not model changed: fail closed.
    UnsupportedKeywordChanged,
}

impl Rule {
    /// Every rule, for documentation and tests.
    pub const ALL: &'static [Rule] = &[
        Rule::TypeChanged,
        Rule::TypeNarrowed,
        Rule::EnumValueRemoved,
        Rule::EnumAdded,
        Rule::ConstChanged,
        Rule::FormatChanged,
        Rule::MinimumTightened,
        Rule::MaximumTightened,
        Rule::MultipleOfChanged,
        Rule::MinLengthTightened,
        Rule::MaxLengthTightened,
        Rule::PatternChanged,
        Rule::MinItemsTightened,
        Rule::MaxItemsTightened,
        Rule::UniqueItemsAdded,
        Rule::PropertyRemoved,
        Rule::PropertyAddedToOpenModel,
        Rule::RequiredAdded,
        Rule::AdditionalPropertiesNarrowed,
        Rule::OneOfBranchNotAccepted,
        Rule::AnyOfBranchNotAccepted,
        Rule::OneOfBranchesOverlap,
        Rule::SchemaRejectsAll,
        Rule::UnsupportedKeywordChanged,
    ];

    /// The stable SCREAMING_SNAKE id.
    pub fn id(self) -> &'static str {
        match self {
            Rule::TypeChanged => "TYPE_CHANGED",
            Rule::TypeNarrowed => "TYPE_NARROWED",
            Rule::EnumValueRemoved => "ENUM_VALUE_REMOVED",
            Rule::EnumAdded => "ENUM_ADDED",
            Rule::ConstChanged => "CONST_CHANGED",
            Rule::FormatChanged => "FORMAT_CHANGED",
            Rule::MinimumTightened => "MINIMUM_TIGHTENED",
            Rule::MaximumTightened => "MAXIMUM_TIGHTENED",
            Rule::MultipleOfChanged => "MULTIPLE_OF_CHANGED",
            Rule::MinLengthTightened => "MIN_LENGTH_TIGHTENED",
            Rule::MaxLengthTightened => "MAX_LENGTH_TIGHTENED",
            Rule::PatternChanged => "PATTERN_CHANGED",
            Rule::MinItemsTightened => "MIN_ITEMS_TIGHTENED",
            Rule::MaxItemsTightened => "MAX_ITEMS_TIGHTENED",
            Rule::UniqueItemsAdded => "UNIQUE_ITEMS_ADDED",
            Rule::PropertyRemoved => "PROPERTY_REMOVED",
            Rule::PropertyAddedToOpenModel => "PROPERTY_ADDED_TO_OPEN_MODEL",
            Rule::RequiredAdded => "REQUIRED_ADDED",
            Rule::AdditionalPropertiesNarrowed => "ADDITIONAL_PROPERTIES_NARROWED",
            Rule::OneOfBranchNotAccepted => "ONE_OF_BRANCH_NOT_ACCEPTED",
            Rule::AnyOfBranchNotAccepted => "ANY_OF_BRANCH_NOT_ACCEPTED",
            Rule::OneOfBranchesOverlap => "ONE_OF_BRANCHES_OVERLAP",
            Rule::SchemaRejectsAll => "SCHEMA_REJECTS_ALL",
            Rule::UnsupportedKeywordChanged => "UNSUPPORTED_KEYWORD_CHANGED",
        }
    }

    /// The rule with this id.
    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.iter().copied().find(|rule| rule.id() == id)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id())
    }
}

/// A field of a generated type disappears.
pub const CODEGEN_FIELD_REMOVED: &str = "CODEGEN_FIELD_REMOVED";
/// A field of a generated type changes between `T` and `Option<T>`.
pub const CODEGEN_FIELD_OPTIONALITY_CHANGED: &str = "CODEGEN_FIELD_OPTIONALITY_CHANGED";
/// A field of a generated type changes its Rust type.
pub const CODEGEN_FIELD_TYPE_CHANGED: &str = "CODEGEN_FIELD_TYPE_CHANGED";
/// A generated type (a `$defs` entry) disappears or is renamed.
pub const CODEGEN_TYPE_REMOVED: &str = "CODEGEN_TYPE_REMOVED";
/// A released version file changed.
pub const RELEASED_VERSION_CHANGED: &str = "RELEASED_VERSION_CHANGED";
/// A released version file was deleted.
pub const RELEASED_VERSION_DELETED: &str = "RELEASED_VERSION_DELETED";

/// Rules of the generated-code check, beside the compatibility rules of
/// [`Rule`].
pub const CODEGEN_RULES: &[&str] = &[
    CODEGEN_FIELD_REMOVED,
    CODEGEN_FIELD_OPTIONALITY_CHANGED,
    CODEGEN_FIELD_TYPE_CHANGED,
    CODEGEN_TYPE_REMOVED,
];
/// Immutability rules.
pub const IMMUTABILITY_RULES: &[&str] = &[RELEASED_VERSION_CHANGED, RELEASED_VERSION_DELETED];

/// Whether `id` names a rule of any category.
pub fn rule_known(id: &str) -> Option<&str> {
    Rule::from_id(id).map(Rule::id).or_else(|| {
        CODEGEN_RULES
            .iter()
            .chain(IMMUTABILITY_RULES)
            .copied()
            .find(|r| *r == id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_known_knows_every_rule_once_and_nothing_else() {
        let all: Vec<&str> = Rule::ALL
            .iter()
            .map(|rule| rule.id())
            .chain(CODEGEN_RULES.iter().copied())
            .chain(IMMUTABILITY_RULES.iter().copied())
            .collect();
        for id in &all {
            assert_eq!(rule_known(id), Some(*id));
            assert_eq!(all.iter().filter(|other| *other == id).count(), 1, "{id}");
        }
        for unknown in ["", "required_added", "REQUIRED_ADDED ", "CODEGEN"] {
            assert_eq!(rule_known(unknown), None, "{unknown:?}");
        }
    }
}
