//! The scaler's decisions, apart from Redis and from time: given what the
//! channel and the handlers look like now ([`Signals`]) and when that is,
//! [`Policy::decide`] says whether to change the number of consumer
//! instances, to what, and why. Tests drive it with made-up instants.
//!
//! # The rules
//!
//! - **Grow** when one instance has more than `backlog_per_instance`
//!   messages waiting to itself, or the oldest waiting message is older
//!   than `max_age`, or the handlers are busy more than `busy_high` of the
//!   time. It grows to what the backlog asks for (`backlog /
//!   backlog_per_instance`, rounded up), at least one more, at most the
//!   ceiling; not within `grow_cooldown` of the last change.
//! - **Shrink** by one when one instance fewer would still have at most
//!   half its share of the backlog, the handlers are busy less than
//!   `busy_low` of the time, and the oldest message is younger than half of
//!   `max_age`; not within `shrink_cooldown` of the last change. The gap
//!   between the grow and shrink conditions is the hysteresis: a load that
//!   sits at one threshold does not make the count flap.
//! - **Bounds**: never below `min` nor above the ceiling: `max` or, on a
//!   partitioned channel, the number of partitions (the group's members
//!   share them out, so a member beyond the count would have none).

use std::time::{Duration, Instant};

/// How a [`crate::scaler::Scaler`] sizes its pool.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalerConfig {
    /// Fewest consumer instances.
    pub min: usize,
    /// Most consumer instances.
    pub max: usize,
    /// Messages waiting (not yet delivered) that one instance may have to
    /// itself before the pool grows.
    pub backlog_per_instance: u64,
    /// Age of the oldest waiting message above which the pool grows;
    /// `None`: age does not count.
    pub max_age: Option<Duration>,
    /// Share of the time handlers are busy above which the pool grows.
    pub busy_high: f64,
    /// Share of the time handlers are busy below which the pool may
    /// shrink.
    pub busy_low: f64,
    /// How long after a change the pool may grow again.
    pub grow_cooldown: Duration,
    /// How long after a change the pool may shrink.
    pub shrink_cooldown: Duration,
    /// How often the signals are read.
    pub interval: Duration,
}

impl Default for ScalerConfig {
    fn default() -> Self {
        ScalerConfig {
            min: 1,
            max: 4,
            backlog_per_instance: 100,
            max_age: Some(Duration::from_secs(30)),
            busy_high: 0.85,
            busy_low: 0.3,
            grow_cooldown: Duration::from_secs(10),
            shrink_cooldown: Duration::from_secs(60),
            interval: Duration::from_secs(1),
        }
    }
}

/// What the scaler reads before each decision.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Signals {
    /// Messages waiting for the group: not yet delivered to it (a stream's
    /// lag, a list's length), delayed retries left out.
    pub backlog: u64,
    /// How long the oldest waiting message has waited.
    pub oldest: Option<Duration>,
    /// Share of the time the pool's handlers were busy since the last
    /// reading, from 0 to 1.
    pub busy: f64,
}

/// A change of the pool's size.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Instances before.
    pub from: usize,
    /// Instances after.
    pub to: usize,
    /// Why, in words: the signal and its threshold.
    pub reason: String,
}

/// The pool's size and its last change: what [`Policy::decide`] needs to
/// remember between readings.
#[derive(Debug, Clone)]
pub struct Policy {
    config: ScalerConfig,
    ceiling: usize,
    current: usize,
    last_change: Option<Instant>,
}

impl Policy {
    /// A pool at `config.min`, at most `ceiling` instances (the config's
    /// `max`, or less on a partitioned channel).
    pub fn new(config: ScalerConfig, ceiling: usize) -> Policy {
        let ceiling = ceiling.max(1);
        let current = config.min.clamp(1, ceiling);
        Policy {
            config,
            ceiling,
            current,
            last_change: None,
        }
    }

    /// Instances the pool should have now.
    pub fn current(&self) -> usize {
        self.current
    }

    /// The most instances it may have.
    pub fn ceiling(&self) -> usize {
        self.ceiling
    }

    fn since_change(&self, now: Instant) -> Duration {
        self.last_change
            .map_or(Duration::MAX, |at| now.saturating_duration_since(at))
    }

    /// Whether to change the pool's size, given `signals` read at `now`;
    /// the decision is also taken (later calls start from its size).
    pub fn decide(&mut self, signals: &Signals, now: Instant) -> Option<Decision> {
        let c = &self.config;
        let current = self.current;
        let per = c.backlog_per_instance.max(1);
        let floor = c.min.clamp(1, self.ceiling);
        let age = signals.oldest.unwrap_or_default();
        let grow = if signals.backlog > per.saturating_mul(current as u64) {
            Some(format!(
                "backlog {} is over {per} per instance for {current}",
                signals.backlog
            ))
        } else if c.max_age.is_some_and(|max| age > max) {
            Some(format!(
                "the oldest message waited {age:?}, over {:?}",
                c.max_age.unwrap_or_default()
            ))
        } else if signals.busy > c.busy_high {
            Some(format!(
                "handlers busy {:.0} % of the time, over {:.0} %",
                signals.busy * 100.0,
                c.busy_high * 100.0
            ))
        } else {
            None
        };
        let to = if current < floor {
            Some((floor, "below the minimum".to_string()))
        } else if current > self.ceiling {
            Some((self.ceiling, "above the ceiling".to_string()))
        } else if let Some(reason) = grow {
            let asked = signals.backlog.div_ceil(per) as usize;
            let to = asked.max(current + 1).min(self.ceiling);
            (to > current && self.since_change(now) >= c.grow_cooldown).then_some((to, reason))
        } else {
            let fewer = current.saturating_sub(1);
            let quiet = signals.backlog.saturating_mul(2) <= per.saturating_mul(fewer as u64)
                && signals.busy < c.busy_low
                && c.max_age.is_none_or(|max| age <= max / 2);
            (current > floor && quiet && self.since_change(now) >= c.shrink_cooldown).then(|| {
                let reason = format!(
                    "backlog {} and handlers busy {:.0} % of the time: {fewer} instance(s) suffice",
                    signals.backlog,
                    signals.busy * 100.0
                );
                (fewer, reason)
            })
        };
        let (to, reason) = to?;
        self.current = to;
        self.last_change = Some(now);
        Some(Decision {
            from: current,
            to,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults (grow after 10 s, shrink after 60 s, 100 waiting per
    /// instance, 30 s of age, busy 85 % / 30 %), up to 5 instances.
    fn config() -> ScalerConfig {
        ScalerConfig {
            max: 5,
            ..ScalerConfig::default()
        }
    }

    fn signals(backlog: u64, oldest_s: u64, busy: f64) -> Signals {
        Signals {
            backlog,
            oldest: Some(Duration::from_secs(oldest_s)),
            busy,
        }
    }

    /// Feeds `steps` of (seconds after the start, signals) and returns the
    /// pool's size after each.
    fn run(policy: &mut Policy, steps: &[(u64, Signals)]) -> Vec<usize> {
        let start = Instant::now();
        steps
            .iter()
            .map(|(at, s)| {
                policy.decide(s, start + Duration::from_secs(*at));
                policy.current()
            })
            .collect()
    }

    #[test]
    fn a_backlog_grows_the_pool_to_what_it_asks_for_within_the_ceiling() {
        let mut policy = Policy::new(config(), 5);
        let start = Instant::now();
        let decision = policy.decide(&signals(350, 1, 0.5), start).unwrap();
        assert_eq!((decision.from, decision.to), (1, 4));
        assert_eq!(
            decision.reason,
            "backlog 350 is over 100 per instance for 1"
        );
        // Within the grow cool-down nothing changes; after it, the ceiling.
        assert_eq!(
            policy.decide(&signals(900, 1, 0.5), start + Duration::from_secs(5)),
            None
        );
        let decision = policy
            .decide(&signals(900, 1, 0.5), start + Duration::from_secs(10))
            .unwrap();
        assert_eq!((decision.from, decision.to), (4, 5));
    }

    #[test]
    fn age_and_busy_handlers_each_grow_it_by_one_at_least() {
        let mut policy = Policy::new(config(), 5);
        let now = Instant::now();
        let decision = policy.decide(&signals(10, 45, 0.2), now).unwrap();
        assert_eq!((decision.from, decision.to), (1, 2));
        assert_eq!(decision.reason, "the oldest message waited 45s, over 30s");
        let later = now + Duration::from_secs(11);
        let decision = policy.decide(&signals(10, 1, 0.95), later).unwrap();
        assert_eq!((decision.from, decision.to), (2, 3));
        assert_eq!(decision.reason, "handlers busy 95 % of the time, over 85 %");
    }

    #[test]
    fn it_shrinks_one_at_a_time_after_the_shrink_cool_down_and_not_at_the_threshold() {
        let mut policy = Policy::new(config(), 5);
        let sizes = run(
            &mut policy,
            &[
                (0, signals(420, 1, 0.9)), // grows to 5
                (30, signals(0, 0, 0.1)),  // quiet, but within 60 s
                (61, signals(0, 0, 0.1)),  // 4
                (90, signals(0, 0, 0.1)),  // within 60 s of the last change
                (122, signals(0, 0, 0.1)), // 3
                // Load at the grow threshold for 3 (300) is not low enough
                // to shrink to 2, nor high enough to grow: it holds.
                (200, signals(300, 2, 0.5)),
                (300, signals(300, 2, 0.5)),
                (400, signals(300, 2, 0.5)),
            ],
        );
        assert_eq!(sizes, [5, 5, 4, 4, 3, 3, 3, 3]);
    }

    #[test]
    fn busy_handlers_or_old_messages_keep_it_from_shrinking() {
        let mut policy = Policy::new(config(), 5);
        let sizes = run(
            &mut policy,
            &[
                (0, signals(250, 1, 0.5)),  // 3
                (100, signals(0, 0, 0.5)),  // busy 50 %: stays
                (200, signals(0, 20, 0.1)), // oldest 20 s, over half of 30: stays
                (300, signals(0, 5, 0.1)),  // 2
            ],
        );
        assert_eq!(sizes, [3, 3, 3, 2]);
    }

    #[test]
    fn the_bounds_hold_whatever_the_signals() {
        let partitions = 3;
        let mut policy = Policy::new(ScalerConfig { min: 2, ..config() }, partitions);
        assert_eq!(policy.current(), 2, "starts at the minimum");
        let sizes = run(
            &mut policy,
            &[
                (0, signals(10_000, 100, 1.0)),
                (100, signals(10_000, 100, 1.0)),
                (200, signals(0, 0, 0.0)),
                (300, signals(0, 0, 0.0)),
            ],
        );
        assert_eq!(
            sizes,
            [3, 3, 2, 2],
            "the partitions cap it, the minimum floors it"
        );
        // A minimum above the ceiling is the ceiling.
        let policy = Policy::new(ScalerConfig { min: 8, ..config() }, 3);
        assert_eq!(policy.current(), 3);
    }
}
