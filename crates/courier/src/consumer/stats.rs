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
    /// Handlers running now.
    pub(super) handling: AtomicU64,
    /// Time handlers took, in microseconds, added as each returns.
    pub(super) handler_micros: AtomicU64,
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

impl ConsumerStats {
    /// Handlers running now.
    pub fn handling(&self) -> u64 {
        self.handling.load(Ordering::Relaxed)
    }

    /// Time handlers have taken so far, counted as each returns: over an
    /// interval, its growth divided by the interval and the concurrency is
    /// how busy the handlers were (what [`crate::scaler`] reads).
    pub fn handler_time(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.handler_micros.load(Ordering::Relaxed))
    }
}

impl std::ops::AddAssign for ConsumerReport {
    /// Adds another consumer's counters: the figures of a pool of
    /// consumers.
    fn add_assign(&mut self, other: ConsumerReport) {
        self.delivered += other.delivered;
        self.done += other.done;
        self.retried += other.retried;
        self.dead += other.dead;
        self.duplicates += other.duplicates;
        self.expired += other.expired;
        self.stale += other.stale;
        self.claimed += other.claimed;
        self.lost_by_trim += other.lost_by_trim;
        self.reaped += other.reaped;
        self.sla_breaches += other.sla_breaches;
        self.held_back += other.held_back;
    }
}

pub(super) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}
