//! Step 3: admission, the one place that admits a message to a handler or
//! refuses it.
//!
//! [`admit`] holds every check that refuses a message before its handler,
//! for every transport (the broadcast [`Subscriber`](crate::Subscriber)
//! calls it too), so a message refused on one transport is refused on all,
//! with the same dead-letter reason. A consumer group adds one question a
//! broadcast has no answer to, whether the message was already handled
//! ([`Ctx::admission`]): a duplicate is acknowledged and skipped, not
//! refused. What decides *when* an admitted message's handler starts
//! (pause, breaker, rate) is the gate's, in `gate.rs`.

use std::collections::HashSet;

use chrono::Utc;

use super::dispatch::Entry;
use super::Ctx;
use crate::contract::{unsupported, Readable};
use crate::dlq::DeadReason;
use crate::envelope::Envelope;
use crate::error::Error;
use crate::handler::Handler;
use crate::spec::ChannelSpec;

/// Why a message cannot reach a handler.
pub(crate) struct Rejected {
    /// The dead-letter reason.
    pub(crate) reason: DeadReason,
    /// The error text.
    pub(crate) error: String,
    /// Its idempotency key, when the envelope was readable (`-` if not).
    pub(crate) key: String,
}

/// The checks every message passes before a handler sees it, on every
/// transport, in this order: delivered no more than the channel's max
/// attempts (else it is poison: it killed or outlasted every consumer that
/// took it), an envelope at all (text, not foreign bytes), a readable
/// envelope, not expired, the channel's schema, a readable version, a
/// payload valid against that version's schema. `deliveries` counts this
/// delivery. Returns the decoded message and its envelope (payload taken
/// out).
pub(crate) fn admit<M: Readable>(
    spec: &ChannelSpec,
    raw: Option<&str>,
    deliveries: usize,
) -> Result<(M, Envelope), Rejected> {
    let rejected = |reason, error: String, key: &str| Rejected {
        reason,
        error,
        key: key.to_string(),
    };
    if deliveries > spec.max_attempts as usize {
        let error = format!(
            "delivered {deliveries} times without being settled (max attempts {})",
            spec.max_attempts
        );
        return Err(rejected(DeadReason::Poison, error, "-"));
    }
    let Some(raw) = raw else {
        let error = "the message has no envelope (none, or not UTF-8 text)".to_string();
        return Err(rejected(DeadReason::InvalidPayload, error, "-"));
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

/// What admission decided about a message taken from a consumer group's
/// queue.
pub(super) enum Admission<'a, M> {
    /// Hand it to the handler.
    Admitted {
        /// The decoded message.
        message: M,
        /// Its envelope, payload taken out.
        envelope: Envelope,
        /// The envelope text, as stored (retries are built from it).
        raw: &'a str,
    },
    /// Refused: dead-letter it with this reason.
    Refused(Rejected),
    /// Its idempotency key is already done: acknowledge and skip it.
    Duplicate {
        /// The idempotency key.
        key: String,
    },
    /// Whether it was handled is unknown (Redis away for longer than the
    /// visibility timeout): leave it held, for a reclaim to retry.
    Unsure,
}

/// What admission found out about a message of a read batch, before its
/// turn: [`admit`]'s answer and, when the batch's check could tell,
/// whether its idempotency key is already done.
pub(super) struct Precheck<M> {
    checked: Result<(M, Envelope), Rejected>,
    done: Option<bool>,
}

impl<M, F> Ctx<M, F>
where
    M: Readable,
    F: Handler<M>,
{
    /// [`admit`] for every message of a read batch, and one round trip
    /// for the done marks of those admitted. A key seen twice in the batch
    /// gets no answer (its second message must see the first one's mark),
    /// nor does any when the check fails: those are checked when handled.
    pub(super) async fn precheck(&self, entries: &[Entry<'_>]) -> Vec<Precheck<M>> {
        let checked: Vec<Result<(M, Envelope), Rejected>> = entries
            .iter()
            .map(|entry| {
                admit::<M>(self.spec, entry.raw, entry.deliveries).map_err(|mut rejected| {
                    if let (DeadReason::InvalidPayload, None, Some(found)) =
                        (rejected.reason, entry.raw, entry.unreadable)
                    {
                        rejected.error.clone_from(&found.why);
                    }
                    rejected
                })
            })
            .collect();
        let mut seen = HashSet::new();
        let wanted: Vec<Option<String>> = checked
            .iter()
            .zip(entries)
            .map(|(checked, entry)| {
                let key = &checked.as_ref().ok()?.1.key;
                seen.insert(key.as_str())
                    .then(|| entry.keys.done(&self.group, key))
            })
            .collect();
        let done_keys: Vec<&String> = wanted.iter().flatten().collect();
        // One MGET: a read batch is one partition's, so its done keys share
        // a hash slot (one command for Redis to run, not one per key).
        let answers: Vec<bool> = if done_keys.is_empty() {
            Vec::new()
        } else {
            self.client
                .query::<Vec<Option<Vec<u8>>>>(redis::cmd("MGET").arg(&done_keys))
                .await
                .map(|marks| marks.iter().map(Option::is_some).collect())
                .unwrap_or_default()
        };
        let mut answers = answers.into_iter();
        checked
            .into_iter()
            .zip(wanted)
            .map(|(checked, wanted)| Precheck {
                checked,
                done: wanted.and_then(|_| answers.next()),
            })
            .collect()
    }

    /// The admission of one message: its [`Precheck`], then whether its
    /// idempotency key is done, from the batch's check when there is one,
    /// else with the done checks of other handlers in flight.
    pub(super) async fn admission<'a>(
        &self,
        entry: &Entry<'a>,
        precheck: Precheck<M>,
    ) -> Admission<'a, M> {
        let (message, envelope) = match precheck.checked {
            Ok(admitted) => admitted,
            Err(rejected) => return Admission::Refused(rejected),
        };
        // `admit` refuses a message without an envelope.
        let raw = entry.raw.unwrap_or_default();
        let key = envelope.key.clone();
        let done = match precheck.done {
            Some(done) => Ok(done),
            None => {
                let done_key = entry.keys.done(&self.group, &key);
                self.persist(|| self.checker.call(done_key.clone())).await
            }
        };
        match done {
            Ok(true) => Admission::Duplicate { key },
            Ok(false) => Admission::Admitted {
                message,
                envelope,
                raw,
            },
            Err(e) => {
                tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot check the idempotency key; leaving the message pending");
                Admission::Unsure
            }
        }
    }
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
