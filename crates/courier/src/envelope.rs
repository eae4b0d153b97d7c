//! The wire envelope, exactly as `schemas/courier/envelope.v1.json` defines
//! it, and the attempt history that travels beside it.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use courier_schema::Validator;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Error;

/// The envelope schema, embedded from `schemas/courier/`.
pub const ENVELOPE_SCHEMA: &str = include_str!("../../../schemas/courier/envelope.v1.json");

/// One message on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// `<domain>.<message>` of the payload.
    pub schema: String,
    /// Version of the payload's schema.
    pub version: u32,
    /// Message id (a UUID); a retry keeps it, a replay gets a new one.
    pub id: String,
    /// Idempotency key.
    pub key: String,
    /// When it was published (RFC 3339, UTC).
    pub created_at: String,
    /// After this instant it is dead-lettered as expired.
    pub expires_at: String,
    /// Delivery attempt, from 1.
    pub attempt: u32,
    /// The publishing process.
    pub producer: String,
    /// Ties together the messages caused by one event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// W3C trace context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// Priority on priority transports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// The message itself.
    pub payload: Value,
}

/// One failed attempt, kept with the message through retries and into the
/// dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// The attempt number that failed.
    pub attempt: u32,
    /// When it failed (RFC 3339).
    pub at: String,
    /// The consumer that ran it.
    pub consumer: String,
    /// What the handler reported.
    pub error: String,
    /// The delay scheduled before the next attempt, if one was scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
}

/// The SLA notice schema, embedded from `schemas/courier/`.
pub const SLA_NOTICE_SCHEMA: &str = include_str!("../../../schemas/courier/sla_notice.v1.json");

fn envelope_validator() -> Result<&'static Validator, Error> {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    embedded(&VALIDATOR, "courier.envelope", ENVELOPE_SCHEMA, "")
}

/// The envelope schema's rule for `key`, alone.
fn key_validator() -> Result<&'static Validator, Error> {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    embedded(
        &VALIDATOR,
        "courier.envelope",
        ENVELOPE_SCHEMA,
        "/properties/key",
    )
}

/// How much of a new envelope's header [`Envelope::into_json_checked`]
/// checks against the envelope schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderCheck {
    /// Every field.
    Full,
    /// The idempotency key only: for the messages of a batch after the
    /// first, whose headers the runtime built the same way from the same
    /// options (schema, version, producer, times, correlation id and
    /// priority are the first one's; ids and trace context come from the
    /// same generators), so only the key, derived from each payload, can
    /// differ in a way the schema cares about.
    KeyOnly,
}

/// Checks an SLA notice courier is about to publish.
pub(crate) fn check_sla_notice(notice: &Value) -> Result<(), Error> {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    embedded(&VALIDATOR, "courier.sla_notice", SLA_NOTICE_SCHEMA, "")?
        .validate(notice)
        .map_err(|errors| Error::InvalidPayload {
            schema: "courier.sla_notice",
            version: 1,
            errors,
        })
}

/// Compiles one of courier's own embedded schemas (or the part of it at
/// `pointer`) once.
fn embedded(
    cell: &'static OnceLock<Validator>,
    name: &'static str,
    text: &str,
    pointer: &str,
) -> Result<&'static Validator, Error> {
    if let Some(validator) = cell.get() {
        return Ok(validator);
    }
    let whole: Value = serde_json::from_str(text)?;
    let schema = whole
        .pointer(pointer)
        .cloned()
        .ok_or_else(|| Error::EmbeddedSchema {
            schema: name,
            version: 1,
            problems: format!("no {pointer} in the schema"),
        })?;
    let validator = Validator::compile(&schema).map_err(|problems| Error::EmbeddedSchema {
        schema: name,
        version: 1,
        problems: problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    })?;
    Ok(cell.get_or_init(|| validator))
}

impl Envelope {
    /// Serializes the envelope after checking it against the envelope
    /// schema: the runtime never writes what its own schema rejects.
    pub fn to_json(&self) -> Result<String, Error> {
        self.clone().into_json()
    }

    /// [`to_json`](Self::to_json) without copying the payload: the header
    /// is checked with an empty object in the payload's place (the
    /// envelope schema asks only that the payload be an object; its own
    /// schema was checked when it was encoded), then written with the
    /// payload.
    pub fn into_json(self) -> Result<String, Error> {
        self.into_json_checked(HeaderCheck::Full)
    }

    /// [`into_json`](Self::into_json), checking as much of the header as
    /// `check` says.
    pub(crate) fn into_json_checked(mut self, check: HeaderCheck) -> Result<String, Error> {
        let invalid = |errors: Vec<courier_schema::ValidationError>| Error::InvalidEnvelope {
            errors: errors.iter().map(ToString::to_string).collect(),
        };
        if !self.payload.is_object() {
            return Err(Error::InvalidEnvelope {
                errors: vec!["/payload: not an object".into()],
            });
        }
        match check {
            HeaderCheck::Full => {
                let payload = std::mem::replace(&mut self.payload, Value::Object(Map::new()));
                envelope_validator()?
                    .validate(&serde_json::to_value(&self)?)
                    .map_err(invalid)?;
                self.payload = payload;
            }
            HeaderCheck::KeyOnly => key_validator()?
                .validate(&Value::String(self.key.clone()))
                .map_err(|errors| Error::InvalidEnvelope {
                    errors: errors.iter().map(|e| format!("/key{e}")).collect(),
                })?,
        }
        Ok(serde_json::to_string(&self)?)
    }

    /// Parses and checks an envelope read from Redis.
    pub fn from_json(text: &str) -> Result<Envelope, Error> {
        let value: Value = serde_json::from_str(text).map_err(|e| Error::InvalidEnvelope {
            errors: vec![format!("not JSON: {e}")],
        })?;
        envelope_validator()?
            .validate(&value)
            .map_err(|errors| Error::InvalidEnvelope {
                errors: errors.iter().map(ToString::to_string).collect(),
            })?;
        serde_json::from_value(value).map_err(|e| Error::InvalidEnvelope {
            errors: vec![e.to_string()],
        })
    }

    /// Whether the message expired at `now`. An unparsable time cannot
    /// reach here: the envelope schema checks the date-time format.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        DateTime::parse_from_rfc3339(&self.expires_at).is_ok_and(|expires| expires <= now)
    }
}

/// A message as a list or priority queue (or the delayed set) stores it:
/// the envelope alone, or `{"m": envelope, "h": history, "r": times
/// reaped}` once it was retried or returned from a dead consumer (written
/// by `courier_record` in `lua/common.lua`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The envelope text.
    pub envelope: String,
    /// Failed attempts so far.
    pub history: Vec<Attempt>,
    /// How often the reaper returned it from a dead consumer.
    pub reaped: usize,
}

/// Reads a stored record; text that is not a wrapper is the envelope itself
/// (malformed text included, for the checks to reject with a reason).
pub fn parse_record(record: &str) -> Record {
    if let Ok(Value::Object(wrapper)) = serde_json::from_str::<Value>(record) {
        if !wrapper.contains_key("schema") {
            if let Some(Value::String(envelope)) = wrapper.get("m") {
                return Record {
                    envelope: envelope.clone(),
                    history: wrapper
                        .get("h")
                        .and_then(Value::as_str)
                        .and_then(|h| serde_json::from_str(h).ok())
                        .unwrap_or_default(),
                    reaped: wrapper.get("r").and_then(Value::as_u64).unwrap_or(0) as usize,
                };
            }
        }
    }
    Record {
        envelope: record.to_string(),
        history: Vec::new(),
        reaped: 0,
    }
}

/// An instant as the envelope writes it: RFC 3339, UTC, milliseconds.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// How long a done mark of a message expiring at `expires_at` (RFC 3339)
/// lives: until the message expires, plus `visibility_timeout` for a copy
/// taken just before; `fallback` (the channel's TTL) when the time cannot
/// be read. The one rule, for the consumer's settlement and for
/// `publish::restore_handled`.
pub(crate) fn done_mark_ttl(
    expires_at: &str,
    fallback: Duration,
    visibility_timeout: Duration,
) -> Duration {
    let remaining = DateTime::parse_from_rfc3339(expires_at)
        .ok()
        .and_then(|at| (at.with_timezone(&Utc) - Utc::now()).to_std().ok())
        .unwrap_or(fallback);
    remaining + visibility_timeout
}

/// `now + ttl`, saturating at the end of year 9999 (the last instant RFC
/// 3339 can write) instead of overflowing.
pub fn expiry(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    let last = DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(now);
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .map_or(last, |at| at.min(last))
}

/// W3C trace context (`traceparent`): the trace a message belongs to and
/// the span that published it, so a consumer's span continues the
/// producer's trace across Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// 16 bytes, the whole trace.
    pub trace_id: u128,
    /// 8 bytes, the span that sent the message.
    pub span_id: u64,
}

impl TraceContext {
    /// A new trace, with a new root span.
    pub fn new_root() -> Self {
        Self {
            trace_id: fastrand::u128(1..),
            span_id: fastrand::u64(1..),
        }
    }

    /// A new span in the same trace.
    pub fn child(&self) -> Self {
        Self {
            trace_id: self.trace_id,
            span_id: fastrand::u64(1..),
        }
    }

    /// Parses `00-<trace id>-<span id>-<flags>`.
    pub fn parse(traceparent: &str) -> Option<Self> {
        let mut parts = traceparent.split('-');
        let (_version, trace, span) = (parts.next()?, parts.next()?, parts.next()?);
        Some(Self {
            trace_id: u128::from_str_radix(trace, 16).ok().filter(|t| *t != 0)?,
            span_id: u64::from_str_radix(span, 16).ok().filter(|s| *s != 0)?,
        })
    }

    /// The `traceparent` header value (sampled).
    pub fn traceparent(&self) -> String {
        format!("00-{:032x}-{:016x}-01", self.trace_id, self.span_id)
    }

    /// The trace id as 32 hex digits, as tracing fields show it.
    pub fn trace_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The span id as 16 hex digits.
    pub fn span_hex(&self) -> String {
        format!("{:016x}", self.span_id)
    }
}

/// A new message id: a random (version 4) UUID. Its bits come from a
/// per-thread generator seeded from the operating system's randomness,
/// not from a system call per id: an id must be unique, not secret.
pub fn new_id() -> String {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes())
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope() -> Envelope {
        let now = Utc::now();
        Envelope {
            schema: "shop.order".into(),
            version: 2,
            id: new_id(),
            key: "o-1".into(),
            created_at: timestamp(now),
            expires_at: timestamp(expiry(now, Duration::from_secs(60))),
            attempt: 1,
            producer: "test".into(),
            correlation_id: None,
            traceparent: None,
            priority: None,
            payload: json!({"order_id": "o-1"}),
        }
    }

    #[test]
    fn ids_are_version_4_uuids_and_distinct() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
        }
    }

    #[test]
    fn round_trips_and_checks_the_schema() {
        let e = envelope();
        let text = e.to_json().unwrap();
        assert_eq!(Envelope::from_json(&text).unwrap(), e);
        assert!(!e.is_expired(Utc::now()));

        let mut bad = e.clone();
        bad.traceparent = Some("not-a-traceparent".into());
        assert!(matches!(bad.to_json(), Err(Error::InvalidEnvelope { .. })));
        let mut not_an_object = e.clone();
        not_an_object.payload = json!([1, 2]);
        let err = not_an_object.into_json().unwrap_err();
        assert!(err.to_string().contains("/payload"), "{err}");

        let err = Envelope::from_json(r#"{"schema": "x"}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("missing required property \"version\""),
            "{err}"
        );
        assert!(Envelope::from_json("{not json").is_err());
    }

    #[test]
    fn expiry_saturates() {
        let far = expiry(Utc::now(), Duration::from_secs(u64::MAX));
        assert_eq!(timestamp(far), "9999-12-31T23:59:59.000Z");
    }
}
