//! Step 3: admission, the checks a message passes before any handler sees
//! it.
//!
//! One function, [`admit`], for every transport (the broadcast
//! [`Subscriber`](crate::Subscriber) calls it too), so a message refused on
//! one transport is refused on all, with the same dead-letter reason.

use chrono::Utc;

use crate::contract::{unsupported, Readable};
use crate::dlq::DeadReason;
use crate::envelope::Envelope;
use crate::error::Error;
use crate::spec::ChannelSpec;

/// Why a message cannot reach a handler.
pub(crate) struct Rejected {
    /// The dead-letter reason.
    pub(crate) reason: DeadReason,
    /// The error text.
    pub(crate) error: String,
    /// Its idempotency key, when the envelope was readable.
    pub(crate) key: String,
}

/// The checks every message passes before a handler sees it, on every
/// transport, in this order: a readable envelope, not expired, the
/// channel's schema, a readable version, a payload valid against that
/// version's schema. Returns the decoded message and its envelope (payload
/// taken out).
pub(crate) fn admit<M: Readable>(spec: &ChannelSpec, raw: &str) -> Result<(M, Envelope), Rejected> {
    let rejected = |reason, error: String, key: &str| Rejected {
        reason,
        error,
        key: key.to_string(),
    };
    let mut envelope = Envelope::from_json(raw)
        .map_err(|e| rejected(DeadReason::InvalidPayload, e.to_string(), "-"))?;
    let key = envelope.key.clone();
    if envelope.is_expired(Utc::now()) {
        let error = format!("expired at {}", envelope.expires_at);
        return Err(rejected(DeadReason::Expired, error, &key));
    }
    if envelope.schema != M::SCHEMA {
        let error = Error::SchemaMismatch {
            expected: M::SCHEMA,
            found: envelope.schema.clone(),
        };
        return Err(rejected(
            DeadReason::SchemaMismatch,
            error.to_string(),
            &key,
        ));
    }
    let Some(version) = readable_as::<M>(envelope.version, spec) else {
        let error = unsupported::<M>(envelope.version).to_string();
        return Err(rejected(DeadReason::VersionUnsupported, error, &key));
    };
    let payload = std::mem::take(&mut envelope.payload);
    let message = M::decode(version, &payload)
        .map_err(|e| rejected(DeadReason::InvalidPayload, e.to_string(), &key))?;
    Ok((message, envelope))
}

/// The version to decode a message of `version` as: its own when the
/// consumer knows it; the consumer's newest when the message is newer and
/// the channel's mode guarantees newer messages are valid under older
/// schemas (the payload is still validated against that schema); none
/// otherwise.
fn readable_as<M: Readable>(version: u32, spec: &ChannelSpec) -> Option<u32> {
    let newest = M::VERSIONS.iter().copied().max()?;
    if M::VERSIONS.contains(&version) {
        Some(version)
    } else if version > newest && spec.compatibility.reads_newer() {
        Some(newest)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use courier_schema::Compatibility;

    /// A reader generated for versions 1 and 2.
    struct Twice;

    impl Readable for Twice {
        const SCHEMA: &'static str = "shop.order";
        const VERSIONS: &'static [u32] = &[1, 2];

        fn decode(_version: u32, _payload: &serde_json::Value) -> Result<Self, Error> {
            Ok(Twice)
        }
    }

    fn check(mode: Compatibility, version: u32, expected: Option<u32>) {
        let spec = ChannelSpec {
            compatibility: mode,
            ..crate::keys::tests::SPEC
        };
        assert_eq!(
            readable_as::<Twice>(version, &spec),
            expected,
            "{mode:?} v{version}"
        );
    }

    #[test]
    fn newer_versions_are_read_as_the_newest_only_under_forward_modes() {
        check(Compatibility::Backward, 2, Some(2));
        check(Compatibility::Backward, 3, None);
        check(Compatibility::None, 3, None);
        check(Compatibility::BackwardTransitive, 3, None);
        check(Compatibility::Forward, 3, Some(2));
        check(Compatibility::ForwardTransitive, 7, Some(2));
        check(Compatibility::Full, 3, Some(2));
        check(Compatibility::FullTransitive, 1, Some(1));
        check(Compatibility::Full, 0, None);
    }
}
