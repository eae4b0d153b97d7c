//! A consumer's counters: [`ConsumerStats`], readable while it runs, and
//! their snapshot [`ConsumerReport`].
//!
//! Every step of the pipeline bumps its own counter here; the Prometheus
//! metrics (`crate::metrics`) are the cross-process view of the same
//! events.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one consumer, readable while it runs.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    pub(super) delivered: AtomicU64,
    pub(super) done: AtomicU64,
    pub(super) retried: AtomicU64,
    pub(super) dead: AtomicU64,
    pub(super) duplicates: AtomicU64,
    pub(super) expired: AtomicU64,
    pub(super) stale: AtomicU64,
    pub(super) claimed: AtomicU64,
    pub(super) lost_by_trim: AtomicU64,
    pub(super) reaped: AtomicU64,
    pub(super) sla_breaches: AtomicU64,
    pub(super) held_back: AtomicU64,
}

/// A snapshot of [`ConsumerStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerReport {
    /// Entries received, first deliveries and reclaims.
    pub delivered: u64,
    /// Handled and acknowledged.
    pub done: u64,
    /// Scheduled for another attempt.
    pub retried: u64,
    /// Dead-lettered, for any reason.
    pub dead: u64,
    /// Skipped because their idempotency key was already done.
    pub duplicates: u64,
    /// Dead-lettered because they expired.
    pub expired: u64,
    /// Settlements refused because another consumer had taken the message.
    pub stale: u64,
    /// Reclaimed after the visibility timeout.
    pub claimed: u64,
    /// Pending entries found trimmed away before they were handled.
    pub lost_by_trim: u64,
    /// Messages returned to the queue from consumers presumed dead (list
    /// and priority channels).
    pub reaped: u64,
    /// Priority messages found waiting past their SLA deadline.
    pub sla_breaches: u64,
    /// Messages put back without using an attempt because the dependency's
    /// breaker was open.
    pub held_back: u64,
}

impl ConsumerStats {
    /// The counters now.
    pub fn snapshot(&self) -> ConsumerReport {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ConsumerReport {
            delivered: get(&self.delivered),
            done: get(&self.done),
            retried: get(&self.retried),
            dead: get(&self.dead),
            duplicates: get(&self.duplicates),
            expired: get(&self.expired),
            stale: get(&self.stale),
            claimed: get(&self.claimed),
            lost_by_trim: get(&self.lost_by_trim),
            reaped: get(&self.reaped),
            sla_breaches: get(&self.sla_breaches),
            held_back: get(&self.held_back),
        }
    }
}

pub(super) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}
