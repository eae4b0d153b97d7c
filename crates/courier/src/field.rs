//! [`FieldError`]: a value refused by a generated type's checked
//! constructor.
//!
//! Generated string types with a `pattern` or a length bound are built by
//! `Type::new(value)`, which checks the value against the schema's rule at
//! once, so an agent learns of a bad field where it builds the message,
//! with the field's name, rather than as a refused publish.

use std::fmt;

/// A field value its schema refuses: which field, and which rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field, as the schema names it (`customer_id`).
    pub field: &'static str,
    /// What is wrong, as the generated type says it
    /// (`doesn't match pattern "^C[0-9]{6,10}$"`).
    pub rule: String,
}

impl FieldError {
    /// The error for `field`, which broke `rule`.
    pub fn new(field: &'static str, rule: impl Into<String>) -> Self {
        Self {
            field,
            rule: rule.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.rule)
    }
}

impl std::error::Error for FieldError {}
