//! A rate limit shared by every worker through Redis.
//!
//! [`RateLimit`] admits at most `per_second` operations per second on
//! average across every process that uses the same name and namespace, with
//! up to `burst` admitted back to back after a quiet spell. It is the GCRA
//! form of a token bucket (`lua/rate_limit.lua`): one key holds the
//! theoretical arrival time of the next operation at the steady rate, and
//! one script, timed by the Redis server's clock, decides each request, so
//! workers' clocks do not matter and two workers can never both take the
//! last token.
//!
//! # Semantics
//!
//! - **Steady rate**: one token every `1 / per_second` seconds.
//! - **Burst**: a bucket of `burst` tokens, full when the limit has been
//!   idle. Over any span of `t` seconds at most `burst + t × per_second`
//!   operations are admitted; `burst = 1` means strictly evenly spaced.
//! - **Idle time is not banked** beyond the bucket: a limit unused for a
//!   minute admits `burst` at once, not a minute's worth.
//! - **Late takers lose time**: a token nobody takes when it becomes
//!   available is only kept while the bucket has room. With `burst = 1`
//!   every waiter wakes a little after its token is due (timer granularity,
//!   the round trip to Redis), and that delay is lost, so throughput sits a
//!   few percent under `per_second`; a burst of a few tokens absorbs the
//!   jitter and holds the average at the rate. The limit is a ceiling,
//!   never exceeded.
//! - **No fairness**: there is no queue. [`RateLimit::acquire`] sleeps the
//!   time the script says the next token is due and asks again; whichever
//!   worker asks first after that takes it, and the others wait again. Under
//!   heavy contention one worker can be unlucky several times in a row.
//! - **Server time**: the limit follows the clock of the Redis server. After
//!   a failover to a server whose clock is behind, the limit is stricter for
//!   the difference; the state key's TTL bounds how long that lasts.
//!
//! # Keys and TTLs
//!
//! `<namespace>:{rate.<name>}:bucket`, written on each admission with a TTL
//! of the time until the bucket is full again plus two refill periods
//! (`burst / per_second`): an absent key means a full bucket, so nothing is
//! lost when it expires.

use std::time::Duration;

use crate::client::Client;
use crate::error::Error;
use crate::keys::NamedKeys;
use crate::scripts::{self, RATE_LIMIT};

/// A rate limit shared by every worker that uses the same name in the same
/// namespace. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RateLimit {
    /// Runs the script.
    client: Client,
    /// The limit's name.
    name: String,
    /// `<namespace>:{rate.<name>}:bucket`.
    key: String,
    /// Microseconds between two tokens at the steady rate.
    interval_us: f64,
    /// How many tokens a full bucket holds.
    burst: u32,
}

impl RateLimit {
    /// The limit `name`: `per_second` operations per second on average,
    /// up to `burst` at once. Every worker must use the same figures for
    /// one name: each request is judged by the figures its caller passes.
    /// Fails when `per_second` is not a positive finite number or `burst`
    /// is zero.
    pub fn new(
        client: &Client,
        name: &str,
        per_second: f64,
        burst: u32,
    ) -> Result<RateLimit, Error> {
        let interval_us =
            interval_us(per_second, burst).map_err(|problem| Error::InvalidRateLimit {
                name: name.to_string(),
                problem,
            })?;
        Ok(RateLimit {
            client: client.clone(),
            name: name.to_string(),
            key: NamedKeys::rate(client.namespace(), name).part("bucket"),
            interval_us,
            burst,
        })
    }

    /// The limit's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Takes a token, waiting as long as it takes: sleeps the time until
    /// the next token is due, then asks again (another worker may have
    /// taken it meanwhile). Cancel-safe: dropping the future while it
    /// sleeps takes nothing.
    pub async fn acquire(&self) -> Result<(), Error> {
        while let Some(wait) = self.try_acquire().await? {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// Takes a token if one is available now: `None` when taken, otherwise
    /// `Some` of how long until one is due (if nobody else takes it first).
    pub async fn try_acquire(&self) -> Result<Option<Duration>, Error> {
        let wait_us: i64 = self
            .client
            .query(
                scripts::evalsha(&RATE_LIMIT, &[&self.key])
                    // Fractions kept: a whole-microsecond interval would
                    // drift the rate (3/s is 333333.33 µs).
                    .arg(format!("{:.3}", self.interval_us))
                    .arg(self.burst),
            )
            .await?;
        Ok(match u64::try_from(wait_us) {
            Ok(0) => None,
            Ok(us) => Some(Duration::from_micros(us)),
            Err(_) => {
                return Err(Error::UnexpectedReply {
                    script: "rate_limit",
                    reply: wait_us.to_string(),
                })
            }
        })
    }
}

/// Microseconds between two tokens at `per_second`, or why the figures
/// cannot be enforced.
fn interval_us(per_second: f64, burst: u32) -> Result<f64, String> {
    if !(per_second.is_finite() && per_second > 0.0) {
        return Err(format!(
            "the rate must be a positive number of operations per second, not {per_second}"
        ));
    }
    if burst == 0 {
        return Err("the burst must be at least 1, or nothing is ever admitted".to_string());
    }
    Ok(1e6 / per_second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_figures_it_cannot_enforce() {
        assert_eq!(interval_us(50.0, 1), Ok(20_000.0));
        assert_eq!(interval_us(0.5, 3), Ok(2_000_000.0));
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(
                interval_us(rate, 1).unwrap_err().contains("positive"),
                "{rate}"
            );
        }
        assert!(interval_us(10.0, 0).unwrap_err().contains("burst"));
    }
}
