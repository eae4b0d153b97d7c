//! The runtime's error type, with the policy a caller branches on.

use courier_schema::ValidationError;

/// What went wrong in the runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A payload breaks its message schema; every violation is listed.
    #[error("{schema} v{version} payload is invalid: {}", join(errors))]
    InvalidPayload {
        /// `<domain>.<message>` of the schema it broke.
        schema: &'static str,
        /// Version of that schema.
        version: u32,
        /// Each violation with its JSON pointer.
        errors: Vec<ValidationError>,
    },
    /// A payload that passed its schema still failed to decode into the
    /// generated type.
    #[error("{schema} v{version} payload does not decode: {source}")]
    Decode {
        /// `<domain>.<message>` of the schema.
        schema: &'static str,
        /// Version of that schema.
        version: u32,
        /// What serde reported.
        source: serde_json::Error,
    },
    /// The message carries a schema name the reader does not expect.
    #[error("message of schema {found:?} on a channel of schema {expected:?}")]
    SchemaMismatch {
        /// What the reader reads.
        expected: &'static str,
        /// What the message says it is.
        found: String,
    },
    /// The message's version is not one the reader was generated for.
    #[error(
        "{schema} v{version} is not readable here; this consumer reads versions {supported:?}"
    )]
    VersionUnsupported {
        /// `<domain>.<message>`.
        schema: &'static str,
        /// The message's version.
        version: u32,
        /// The versions the reader knows.
        supported: &'static [u32],
    },
    /// An idempotency-key field is missing or not a string or integer.
    #[error("{schema} v{version}: idempotency key field {pointer} is {problem}")]
    IdempotencyKey {
        /// `<domain>.<message>`.
        schema: &'static str,
        /// Version of that schema.
        version: u32,
        /// JSON pointer of the key field.
        pointer: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A schema embedded in generated code does not compile; the generated
    /// crate was edited by hand or is out of date.
    #[error("embedded schema of {schema} v{version} does not compile: {problems}")]
    EmbeddedSchema {
        /// `<domain>.<message>`.
        schema: &'static str,
        /// Version of that schema.
        version: u32,
        /// What the compiler reported.
        problems: String,
    },
    /// JSON encoding or decoding failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// What a caller should do about an [`Error`]: the policy behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The message can never be handled as it is: dead-letter it.
    DeadLetter,
    /// A bug or misconfiguration on this side: fix the code, not the message.
    Local,
}

impl Error {
    /// The policy for this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidPayload { .. }
            | Error::Decode { .. }
            | Error::SchemaMismatch { .. }
            | Error::VersionUnsupported { .. }
            | Error::IdempotencyKey { .. } => ErrorKind::DeadLetter,
            Error::EmbeddedSchema { .. } | Error::Json(_) => ErrorKind::Local,
        }
    }
}

fn join(errors: &[ValidationError]) -> String {
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    parts.join("; ")
}
