//! Every JSON Schema keyword courier knows, in one table.
//!
//! The table says what each keyword is to courier: an annotation (it says
//! nothing about which documents are valid), an assertion or applicator that
//! the validator enforces and the compatibility checker models, or a keyword
//! that courier refuses, with the message to give. The subset pass
//! ([`crate::subset`]), the validator's docs and the compatibility checker
//! ([`crate::compat`]) all read it, so adding a keyword is one row here.

/// The only `$schema` courier accepts.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// The formats courier asserts, sorted, with how a message names each.
pub const FORMATS: &[(&str, &str)] = &[
    ("date", "date (YYYY-MM-DD)"),
    ("date-time", "date-time (RFC 3339)"),
    ("email", "email address"),
    ("ipv4", "ipv4 address"),
    ("ipv6", "ipv6 address"),
    ("uri", "uri (it needs a scheme such as \"https:\")"),
    ("uuid", "uuid (8-4-4-4-12 hex digits)"),
];

/// The type names of draft 2020-12, in the order messages list them.
pub const TYPE_NAMES: &[&str] = &[
    "object", "array", "string", "integer", "number", "boolean", "null",
];

/// What a keyword is to courier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Says nothing about validity: accepted, ignored by the checker.
    Annotation,
    /// Decides validity: enforced by the validator, modelled by the
    /// compatibility checker.
    Assertion,
    /// Refused by the subset pass, with this message. The code generator
    /// cannot express it, or it belongs to another draft.
    Refused(&'static str),
}

/// One keyword and its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyword {
    /// The keyword as written in a schema.
    pub name: &'static str,
    /// What courier does with it.
    pub role: Role,
}

const fn annotation(name: &'static str) -> Keyword {
    Keyword {
        name,
        role: Role::Annotation,
    }
}

const fn assertion(name: &'static str) -> Keyword {
    Keyword {
        name,
        role: Role::Assertion,
    }
}

const fn refused(name: &'static str, why: &'static str) -> Keyword {
    Keyword {
        name,
        role: Role::Refused(why),
    }
}

const NO_CODEGEN: &str = "the code generator cannot handle it";
const DRAFT_07: &str = "it is a draft-07 keyword; courier schemas are draft 2020-12";

/// Every keyword courier knows. Assertions are listed in the order the subset
/// pass checks them; keys starting with `x-` are annotations too.
pub const KEYWORDS: &[Keyword] = &[
    annotation("$schema"),
    annotation("$id"),
    annotation("$defs"),
    annotation("$comment"),
    annotation("title"),
    annotation("description"),
    annotation("default"),
    annotation("examples"),
    annotation("deprecated"),
    annotation("readOnly"),
    annotation("writeOnly"),
    assertion("$ref"),
    assertion("type"),
    assertion("enum"),
    assertion("const"),
    assertion("minimum"),
    assertion("maximum"),
    assertion("exclusiveMinimum"),
    assertion("exclusiveMaximum"),
    assertion("multipleOf"),
    assertion("minLength"),
    assertion("maxLength"),
    assertion("pattern"),
    assertion("format"),
    assertion("items"),
    assertion("minItems"),
    assertion("maxItems"),
    assertion("uniqueItems"),
    assertion("properties"),
    assertion("required"),
    assertion("additionalProperties"),
    assertion("allOf"),
    assertion("oneOf"),
    refused(
        "if",
        "the code generator cannot handle conditional schemas (if/then/else)",
    ),
    refused(
        "then",
        "the code generator cannot handle conditional schemas (if/then/else)",
    ),
    refused(
        "else",
        "the code generator cannot handle conditional schemas (if/then/else)",
    ),
    refused("not", NO_CODEGEN),
    refused(
        "anyOf",
        "use oneOf (the code generator turns anyOf into a struct of optional fields)",
    ),
    refused(
        "definitions",
        "it is draft-07; use \"$defs\" (draft 2020-12)",
    ),
    refused("dependencies", DRAFT_07),
    refused("additionalItems", DRAFT_07),
    refused("patternProperties", NO_CODEGEN),
    refused("propertyNames", NO_CODEGEN),
    refused("unevaluatedProperties", NO_CODEGEN),
    refused("unevaluatedItems", NO_CODEGEN),
    refused("prefixItems", NO_CODEGEN),
    refused("contains", NO_CODEGEN),
    refused("minContains", NO_CODEGEN),
    refused("maxContains", NO_CODEGEN),
    refused("dependentRequired", NO_CODEGEN),
    refused("dependentSchemas", NO_CODEGEN),
    refused("minProperties", NO_CODEGEN),
    refused("maxProperties", NO_CODEGEN),
    refused("contentEncoding", NO_CODEGEN),
    refused("contentMediaType", NO_CODEGEN),
    refused("contentSchema", NO_CODEGEN),
    refused(
        "$anchor",
        "only \"#\" and \"#/$defs/<name>\" references are supported",
    ),
    refused(
        "$dynamicRef",
        "only \"#\" and \"#/$defs/<name>\" references are supported",
    ),
    refused(
        "$dynamicAnchor",
        "only \"#\" and \"#/$defs/<name>\" references are supported",
    ),
    refused(
        "$recursiveRef",
        "it is draft 2019-09; courier schemas are draft 2020-12",
    ),
    refused(
        "$recursiveAnchor",
        "it is draft 2019-09; courier schemas are draft 2020-12",
    ),
    refused(
        "$vocabulary",
        "courier schemas use the draft 2020-12 vocabularies as they are",
    ),
];

/// The row for `name`, if courier knows it.
pub fn lookup(name: &str) -> Option<&'static Keyword> {
    KEYWORDS.iter().find(|k| k.name == name)
}

/// Whether `name` is an annotation: a known one, or a custom `x-` key.
pub fn is_annotation(name: &str) -> bool {
    name.starts_with("x-") || lookup(name).is_some_and(|k| k.role == Role::Annotation)
}

/// Whether `name` is an assertion courier enforces and models.
pub fn is_assertion(name: &str) -> bool {
    lookup(name).is_some_and(|k| k.role == Role::Assertion)
}

/// Annotations and assertions: what a courier schema may contain, sorted.
pub fn supported() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = KEYWORDS
        .iter()
        .filter(|k| !matches!(k.role, Role::Refused(_)))
        .map(|k| k.name)
        .collect();
    names.sort_unstable();
    names
}

/// Assertions, in the order the subset pass checks them.
pub fn assertions() -> impl Iterator<Item = &'static str> {
    KEYWORDS
        .iter()
        .filter(|k| k.role == Role::Assertion)
        .map(|k| k.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_keyword_is_listed_once() {
        let mut names: Vec<&str> = KEYWORDS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a keyword is listed twice");
    }

    #[test]
    fn roles_answer_for_custom_keys_and_unknown_ones() {
        assert!(is_annotation("x-courier-key"));
        assert!(is_annotation("title"));
        assert!(!is_annotation("type"));
        assert!(is_assertion("oneOf"));
        assert!(!is_assertion("anyOf"));
        assert!(lookup("nonsense").is_none());
        assert!(supported().contains(&"$ref"));
        assert!(!supported().contains(&"not"));
    }
}
