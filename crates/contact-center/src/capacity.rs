//! The model's capacity against the day's demand.
//!
//! Intake and evaluations share one declared rate limit, `llm` (500 handler
//! starts a second between them in `channels.json`): the capacity the
//! team buys from its model provider. Adding consumers cannot get past it;
//! only more capacity can. Before the day starts, the demo works out what
//! the day's arrival curve asks of it, with a fluid model: each contact
//! calls through intake once and through evaluations once, the limit
//! serves `capacity` calls a second, and what it cannot serve waits. The
//! capacity **needed** is the smallest, in steps of 50 a second, at which
//! that wait peaks below the queue-depth SLA (500 messages; intake's and
//! evaluations' queues together, so each alone stays below it). Unless
//! `--llm-capacity` says otherwise, the day runs with the declared
//! capacity, or the needed one when the declared is short; the report
//! names the limit and both figures.
//!
//! The demo runs rate limits in real seconds while its clock runs
//! `--time-factor` times faster: at 3,600×, the declared 500 a second act
//! as 500 calls per simulated hour. [`Capacity::per_simulated_hour`]
//! converts.

use std::ops::Range;

use courier::ChannelSpec;
use serde::Serialize;

/// The queue-depth SLA: calls waiting for the model must peak below it.
pub const MAX_BACKLOG: f64 = 500.0;

/// Capacities are sized in steps of this many calls a second.
const STEP: f64 = 50.0;

/// The shared limit's plan for a day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capacity {
    /// The limit's name.
    pub name: String,
    /// What the contract declares, per real second.
    pub declared: f64,
    /// What the day's peak needs, per real second.
    pub needed: f64,
    /// What the day ran with, per real second.
    pub used: f64,
    /// Calls the fluid model says would wait for the model at the peak,
    /// at the declared capacity.
    pub backlog_at_declared: f64,
    /// Its burst, from the contract.
    pub burst: u32,
}

impl Capacity {
    /// The plan for `spec`'s limit (intake's) on a day whose contacts
    /// arrive in `batches` of one tick of `tick_seconds` each: the
    /// declared capacity, or `chosen` when given, else the needed one if
    /// that is more.
    pub fn plan(
        spec: &ChannelSpec,
        batches: &[Range<usize>],
        tick_seconds: f64,
        chosen: Option<f64>,
    ) -> Option<Capacity> {
        let rate = spec.rate_limit.as_ref()?;
        let demand: Vec<f64> = batches.iter().map(|b| 2.0 * b.len() as f64).collect();
        let needed = (1..)
            .map(|steps| f64::from(steps) * STEP)
            .find(|capacity| {
                peak_backlog(&demand, *capacity, tick_seconds) < MAX_BACKLOG
                    || *capacity >= demand.iter().sum::<f64>() / tick_seconds
            })
            .unwrap_or(STEP);
        Some(Capacity {
            name: rate.name.as_deref().unwrap_or("llm").to_string(),
            declared: rate.per_second,
            needed,
            used: chosen.unwrap_or(needed.max(rate.per_second)),
            backlog_at_declared: peak_backlog(&demand, rate.per_second, tick_seconds),
            burst: rate.burst,
        })
    }

    /// Whether the day ran above the declared capacity.
    pub fn raised(&self) -> bool {
        self.used > self.declared
    }

    /// A rate per real second as calls per simulated hour.
    pub fn per_simulated_hour(per_second: f64, time_factor: f64) -> f64 {
        per_second * 3600.0 / time_factor
    }
}

/// The most calls waiting at once when `demand` calls arrive per tick of
/// `tick_seconds` and `capacity` are served a second (a fluid model: what
/// is not served waits for the next tick).
pub fn peak_backlog(demand: &[f64], capacity: f64, tick_seconds: f64) -> f64 {
    let served = capacity * tick_seconds;
    let mut waiting: f64 = 0.0;
    let mut peak: f64 = 0.0;
    for calls in demand {
        waiting = (waiting + calls - served).max(0.0);
        peak = peak.max(waiting);
    }
    peak
}

#[cfg(test)]
mod tests {
    use super::*;
    use contact_center_contracts::channels;

    #[test]
    fn calls_wait_only_while_they_arrive_faster_than_they_are_served() {
        // 10 a tick for 10 ticks, 40 a tick for 5, then quiet; 400 a
        // second served at 50 ms a tick is 20 a tick.
        let demand: Vec<f64> = [10.0; 10]
            .into_iter()
            .chain([40.0; 5])
            .chain([0.0; 10])
            .collect();
        assert_eq!(peak_backlog(&demand, 400.0, 0.05), 100.0);
        assert_eq!(peak_backlog(&demand, 800.0, 0.05), 0.0);
        assert_eq!(peak_backlog(&[], 400.0, 0.05), 0.0);
    }

    /// A day of `ticks` of 50 ms: `base` contacts a tick, `peak` a tick
    /// for `long` ticks in the middle.
    fn day(ticks: usize, base: usize, peak: usize, long: usize) -> Vec<Range<usize>> {
        let mut start = 0;
        (0..ticks)
            .map(|i| {
                let n = if (ticks - long) / 2 <= i && i < (ticks + long) / 2 {
                    peak
                } else {
                    base
                };
                start += n;
                start - n..start
            })
            .collect()
    }

    #[test]
    fn the_declared_capacity_holds_while_the_wait_stays_under_the_sla_and_is_raised_past_it() {
        let spec = &channels::intake::SPEC;
        // 2 × 12 a tick is 480 calls a second: the declared 500 serve it.
        let calm = Capacity::plan(spec, &day(200, 12, 12, 0), 0.05, None).unwrap();
        assert_eq!(calm.name, "llm");
        assert_eq!((calm.declared, calm.used), (500.0, 500.0));
        assert_eq!(calm.backlog_at_declared, 0.0);
        assert!(!calm.raised());
        // A peak of 2 × 20 a tick (800 a second) for 2 s: at 500, 15 calls
        // pile up a tick, 600 in all; 550 keeps it to 520; 600 to 400.
        let busy = Capacity::plan(spec, &day(200, 12, 20, 40), 0.05, None).unwrap();
        assert_eq!(busy.backlog_at_declared, 600.0);
        assert_eq!((busy.needed, busy.used), (600.0, 600.0));
        assert!(busy.raised());
        // A chosen capacity is kept, short or not.
        let chosen = Capacity::plan(spec, &day(200, 12, 20, 40), 0.05, Some(500.0)).unwrap();
        assert_eq!(chosen.used, 500.0);
        assert!(!chosen.raised());
        assert_eq!(Capacity::per_simulated_hour(500.0, 3600.0), 500.0);
        assert_eq!(Capacity::per_simulated_hour(500.0, 1800.0), 1000.0);
    }
}
