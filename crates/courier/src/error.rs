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
    /// An envelope read from Redis (or about to be written) breaks the
    /// envelope schema.
    #[error("invalid envelope: {}", errors.join("; "))]
    InvalidEnvelope {
        /// Each violation.
        errors: Vec<String>,
    },
    /// The payload's partition field does not name a partition.
    #[error("cannot route a message of {channel}: field {field} is {problem}")]
    Unroutable {
        /// `<domain>.<channel>`.
        channel: String,
        /// JSON pointer of the partition field.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The channel is at its maximum depth and the publish did not wait (or
    /// waited in vain).
    #[error("channel {channel} is full: depth {depth} reached the maximum {max_depth}")]
    ChannelFull {
        /// `<domain>.<channel>`, with the partition after `#`.
        channel: String,
        /// Depth when the publish was refused.
        depth: u64,
        /// The channel's limit.
        max_depth: u64,
    },
    /// A publish on a replicated channel was written on the primary, but
    /// fewer replicas than required confirmed it in time. It is transient:
    /// the retry with the same idempotency key writes nothing twice.
    #[error(
        "channel {channel}: {confirmed} of {replicas} replicas confirmed the publish within {timeout:?}; \
         it is on the primary only and may be lost by a failover"
    )]
    NotReplicated {
        /// `<domain>.<channel>`, with the partition after `#`.
        channel: String,
        /// Replicas that confirmed.
        confirmed: u64,
        /// Replicas required.
        replicas: u32,
        /// How long the publish waited.
        timeout: std::time::Duration,
    },
    /// The Redis URL is not usable.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL with any password masked.
        url: String,
        /// What the Redis client reported.
        source: redis::RedisError,
    },
    /// The key namespace cannot be used: it would break the hash tags that
    /// keep a channel's keys in one cluster slot, or is empty.
    #[error("namespace {namespace:?} cannot be used: {problem}")]
    InvalidNamespace {
        /// The namespace given.
        namespace: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The TLS CA file cannot be read.
    #[error("cannot read the TLS CA file {path}: {source}")]
    TlsCa {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A Redis command failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis answered a script in a shape the runtime does not expect.
    #[error("unexpected reply from the {script} script: {reply}")]
    UnexpectedReply {
        /// The script.
        script: &'static str,
        /// The reply, as debug text.
        reply: String,
    },
    /// No dead letter with that id.
    #[error("no dead letter {id} in {channel}")]
    DeadLetterNotFound {
        /// `<domain>.<channel>`.
        channel: String,
        /// The dead-letter id.
        id: String,
    },
    /// A dead letter whose envelope could not be read cannot be replayed.
    #[error("dead letter {id} in {channel} has no readable envelope to replay")]
    NotReplayable {
        /// `<domain>.<channel>`.
        channel: String,
        /// The dead-letter id.
        id: String,
    },
    /// A rate limit was configured with a rate or burst it cannot enforce.
    #[error("rate limit {name}: {problem}")]
    InvalidRateLimit {
        /// The rate limit's name.
        name: String,
        /// What is wrong with its configuration.
        problem: String,
    },
    /// A circuit breaker was given a name or configuration it cannot work
    /// with.
    #[error("circuit breaker {name}: {problem}")]
    InvalidBreaker {
        /// The breaker's name.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The channel's transport cannot do this.
    #[error("{channel} cannot {operation}")]
    NotSupported {
        /// `<domain>.<channel>`.
        channel: String,
        /// What was asked.
        operation: &'static str,
    },
    /// A consumer would dead-letter this message before its handler saw
    /// it (what [`crate::testing::Harness::deliver`] reports).
    #[error("a consumer of {channel} would dead-letter this message as {reason}: {error}")]
    Refused {
        /// `<domain>.<channel>`.
        channel: String,
        /// The dead-letter reason (`expired`, `invalid_payload`, ...).
        reason: String,
        /// What the check found.
        error: String,
    },
}

/// What a caller should do about an [`Error`]: the policy behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The message can never be handled as it is: dead-letter it.
    DeadLetter,
    /// A bug or misconfiguration on this side: fix the code, not the message.
    Local,
    /// Redis is unreachable or failed for now: retry later.
    Transient,
    /// The channel is full: slow down, then retry.
    Backpressure,
}

/// A reply of an unexpected type is a Redis error like any other.
impl From<redis::ParsingError> for Error {
    fn from(e: redis::ParsingError) -> Self {
        Error::Redis(e.into())
    }
}

impl Error {
    /// The policy for this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidPayload { .. }
            | Error::Decode { .. }
            | Error::SchemaMismatch { .. }
            | Error::VersionUnsupported { .. }
            | Error::IdempotencyKey { .. }
            | Error::Refused { .. } => ErrorKind::DeadLetter,
            Error::ChannelFull { .. } => ErrorKind::Backpressure,
            Error::Redis(e) if is_transient(e) => ErrorKind::Transient,
            Error::NotReplicated { .. } => ErrorKind::Transient,
            Error::InvalidEnvelope { .. } | Error::Unroutable { .. } => ErrorKind::DeadLetter,
            Error::EmbeddedSchema { .. }
            | Error::Json(_)
            | Error::Connect { .. }
            | Error::InvalidNamespace { .. }
            | Error::TlsCa { .. }
            | Error::Redis(_)
            | Error::UnexpectedReply { .. }
            | Error::DeadLetterNotFound { .. }
            | Error::NotReplayable { .. }
            | Error::NotSupported { .. }
            | Error::InvalidRateLimit { .. }
            | Error::InvalidBreaker { .. } => ErrorKind::Local,
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind() == ErrorKind::Transient
    }
}

/// Whether a Redis error is a passing fault (connection lost, timeout,
/// server loading or failing over, a cluster slot that moved) rather than a
/// bug.
pub(crate) fn is_transient(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.redirect_node().is_some()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || matches!(
            error.code(),
            Some("LOADING" | "BUSY" | "TRYAGAIN" | "MASTERDOWN" | "READONLY" | "CLUSTERDOWN")
        )
}

fn join(errors: &[ValidationError]) -> String {
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    parts.join("; ")
}
