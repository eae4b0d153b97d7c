//! A history of what a fault test did and saw, checked after draining, the
//! way trusted queues are tested: every publish (attempted, acknowledged,
//! failed, unknown), every delivery and every handler effect, by message
//! number; then lost (acknowledged, never took effect), duplicate effects,
//! and unexpected effects (of a message nobody tried to publish).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use contact_center_contracts::Interaction;
use courier::{Delivery, ErrorKind, Outcome, Producer, PublishOptions};

use crate::{first_version, interaction};

/// What became of one publish call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// Called, no answer yet.
    Attempted,
    /// The runtime said it was written (or a duplicate of a written one).
    Acknowledged,
    /// The runtime said it failed.
    Failed,
    /// The outcome is not known (the call was abandoned).
    Unknown,
}

/// The record.
#[derive(Debug, Default)]
pub struct History {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    published: BTreeMap<u64, Publish>,
    deliveries: BTreeMap<u64, u32>,
    effects: BTreeMap<u64, u32>,
}

/// What the check found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Publishes acknowledged.
    pub acknowledged: usize,
    /// Acknowledged, but no effect: lost.
    pub lost: BTreeSet<u64>,
    /// More than one effect.
    pub duplicates: BTreeSet<u64>,
    /// An effect of a message never attempted.
    pub unexpected: BTreeSet<u64>,
    /// Failed or unknown publishes that took effect anyway (allowed:
    /// at-least-once on an uncertain answer).
    pub uncertain_but_effective: usize,
    /// Deliveries in all, redeliveries included.
    pub deliveries: u64,
}

impl History {
    /// A publish of message `n` is about to be made.
    pub fn attempted(&self, n: u64) {
        self.inner
            .lock()
            .unwrap()
            .published
            .insert(n, Publish::Attempted);
    }

    /// The publish of `n` ended as `outcome`.
    pub fn published(&self, n: u64, outcome: Publish) {
        self.inner.lock().unwrap().published.insert(n, outcome);
    }

    /// Message `n` reached a handler.
    pub fn delivered(&self, n: u64) {
        *self.inner.lock().unwrap().deliveries.entry(n).or_default() += 1;
    }

    /// The handler of `n` took effect.
    pub fn effect(&self, n: u64) {
        *self.inner.lock().unwrap().effects.entry(n).or_default() += 1;
    }

    /// Effects recorded elsewhere (a child process's ledger), added in.
    pub fn effects_from(&self, effects: impl IntoIterator<Item = u64>) {
        for n in effects {
            self.effect(n);
        }
    }

    /// Messages acknowledged so far.
    pub fn acknowledged(&self) -> BTreeSet<u64> {
        let inner = self.inner.lock().unwrap();
        inner
            .published
            .iter()
            .filter(|(_, p)| **p == Publish::Acknowledged)
            .map(|(n, _)| *n)
            .collect()
    }

    /// Compares what was acknowledged with what took effect.
    pub fn check(&self) -> Verdict {
        let inner = self.inner.lock().unwrap();
        let mut verdict = Verdict {
            deliveries: inner.deliveries.values().map(|d| u64::from(*d)).sum(),
            ..Verdict::default()
        };
        for (n, publish) in &inner.published {
            let effects = inner.effects.get(n).copied().unwrap_or(0);
            match publish {
                Publish::Acknowledged => {
                    verdict.acknowledged += 1;
                    if effects == 0 {
                        verdict.lost.insert(*n);
                    }
                }
                _ if effects > 0 => verdict.uncertain_but_effective += 1,
                _ => {}
            }
        }
        for (n, effects) in &inner.effects {
            if *effects > 1 {
                verdict.duplicates.insert(*n);
            }
            if !inner.published.contains_key(n) {
                verdict.unexpected.insert(*n);
            }
        }
        verdict
    }
}

impl Verdict {
    /// Fails the test on anything lost, duplicated or unexpected beyond
    /// what the fault allows.
    pub fn assert_within(&self, lost: usize, duplicates: usize) {
        assert!(self.acknowledged > 0, "nothing was acknowledged: {self:?}");
        assert!(
            self.lost.len() <= lost,
            "{} acknowledged messages lost (allowed {lost}): {:?}",
            self.lost.len(),
            self.lost
        );
        assert!(
            self.duplicates.len() <= duplicates,
            "{} messages took effect more than once (allowed {duplicates}): {:?}",
            self.duplicates.len(),
            self.duplicates
        );
        assert!(
            self.unexpected.is_empty(),
            "unexpected effects: {:?}",
            self.unexpected
        );
    }

    /// Fails on any loss, duplicate or surprise.
    pub fn assert_clean(&self) {
        self.assert_within(0, 0);
    }
}

/// The number `n` of `interaction(n)`, from its id's last twelve digits.
pub fn number_of(interaction_id: &str) -> u64 {
    interaction_id[24..].parse().unwrap()
}

/// The message number of a delivered interaction.
pub fn number(delivery: &Delivery<Interaction>) -> u64 {
    number_of(&first_version(&delivery.message).interaction_id.to_string())
}

/// A handler that records each delivery and its effect.
pub fn recording(
    history: &Arc<History>,
) -> impl Fn(Delivery<Interaction>) -> std::future::Ready<Outcome> + Send + Sync + 'static {
    let history = history.clone();
    move |delivery| {
        let n = number(&delivery);
        history.delivered(n);
        history.effect(n);
        std::future::ready(Outcome::Done)
    }
}

/// Publishes message `n`, recording the attempt and its outcome.
pub async fn publish(
    producer: &Producer<contact_center_contracts::InteractionV1>,
    history: &History,
    n: u64,
    options: &PublishOptions,
) -> Result<(), courier::Error> {
    history.attempted(n);
    match producer.publish_with(&interaction(n), options).await {
        Ok(_) => {
            history.published(n, Publish::Acknowledged);
            Ok(())
        }
        Err(e) => {
            history.published(
                n,
                if e.kind() == ErrorKind::Transient {
                    Publish::Unknown
                } else {
                    Publish::Failed
                },
            );
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lost_duplicate_and_unexpected_messages() {
        let history = History::default();
        for n in 1..=4 {
            history.attempted(n);
            history.published(n, Publish::Acknowledged);
        }
        history.published(5, Publish::Unknown);
        history.effect(1);
        history.effect(2);
        history.effect(2);
        history.effect(4);
        history.effect(5);
        history.effect(9);
        let verdict = history.check();
        assert_eq!(verdict.acknowledged, 4);
        assert_eq!(verdict.lost, BTreeSet::from([3]));
        assert_eq!(verdict.duplicates, BTreeSet::from([2]));
        assert_eq!(verdict.unexpected, BTreeSet::from([9]));
        assert_eq!(verdict.uncertain_but_effective, 1);
    }
}
