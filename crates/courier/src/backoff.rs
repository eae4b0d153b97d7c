//! Retry delays: exponential bounds with full jitter.
//!
//! The delay before retry `n` is drawn uniformly from zero to
//! `min(max, initial × multiplier^(n-1))`. Full jitter spreads the retries of
//! many failing messages over the whole window, so a downstream outage does
//! not turn into synchronized waves of retries when it ends.

use std::time::Duration;

use courier_schema::Backoff;

/// The upper bound of the delay after attempt `failed_attempt` (from 1).
pub fn bound(backoff: &Backoff, failed_attempt: u32) -> Duration {
    let exponent = i32::try_from(failed_attempt.saturating_sub(1).min(64)).unwrap_or(64);
    let secs = backoff.initial.as_secs_f64() * backoff.multiplier.max(1.0).powi(exponent);
    let max = backoff.max.as_secs_f64();
    Duration::from_secs_f64(if secs.is_finite() { secs.min(max) } else { max })
}

/// A random delay in `[0, bound]` for the retry after `failed_attempt`.
pub fn delay(backoff: &Backoff, failed_attempt: u32) -> Duration {
    bound(backoff, failed_attempt).mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
        multiplier: 2.0,
    };

    #[test]
    fn bounds_grow_then_cap() {
        let bounds: Vec<u128> = (1..=6).map(|n| bound(&BACKOFF, n).as_millis()).collect();
        assert_eq!(bounds, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(bound(&BACKOFF, u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn delays_are_jittered_within_the_bound() {
        let samples: Vec<Duration> = (0..2000).map(|_| delay(&BACKOFF, 3)).collect();
        assert!(samples.iter().all(|d| *d <= Duration::from_millis(400)));
        let mean = samples.iter().sum::<Duration>() / 2000;
        // Uniform on [0, 400ms]: the mean is 200ms, and 2000 samples keep it
        // well within 20ms of that.
        assert!((180..=220).contains(&mean.as_millis()), "mean {mean:?}");
        let distinct: std::collections::BTreeSet<_> = samples.iter().collect();
        assert!(distinct.len() > 1900);
    }
}
