//! Circuit breakers whose state lives in Redis, shared by every worker.
//!
//! A [`Breaker`] guards a channel or a named dependency (a CRM, a model
//! endpoint). Every worker that holds a breaker of the same name in the same
//! namespace sees the same state, so when one dependency fails the whole
//! fleet backs off together instead of each worker finding out on its own.
//!
//! - **Closed**: calls go through. Each outcome is recorded with
//!   [`Breaker::record`]; failures within [`BreakerConfig::window`] that reach
//!   [`BreakerConfig::failure_threshold`], or (with
//!   [`BreakerConfig::failure_rate`]) a failure ratio that reaches the rate
//!   once [`BreakerConfig::min_calls`] calls were seen, open it.
//! - **Open** until the cool-down ([`BreakerConfig::cool_down`]) has passed:
//!   [`Breaker::allow`] says no, and results recorded meanwhile are ignored.
//! - **Half-open** after the cool-down: [`Breaker::allow`] admits at most
//!   [`BreakerConfig::half_open_probes`] probes at a time across all workers.
//!   One failed probe reopens it for a new cool-down; that many successful
//!   probes close it with every count reset.
//! - **Paused** by hand with [`Breaker::pause`], until [`Breaker::resume`]
//!   closes it again. This is how `courier pause <channel>` and
//!   `courier resume <channel>` stop and restart a channel's consumers: they
//!   act on the breaker named [`Breaker::channel_name`], which consumers
//!   check through the same mechanism.
//!
//! ```no_run
//! # async fn demo(client: &courier::Client) -> Result<(), courier::Error> {
//! use courier::{Breaker, BreakerConfig};
//!
//! let crm = Breaker::new(client, "crm", BreakerConfig::default())?;
//! if crm.allow().await? {
//!     let ok = call_the_crm().await;
//!     crm.record(ok).await?;
//! }
//! # Ok(()) }
//! # async fn call_the_crm() -> bool { true }
//! ```
//!
//! Every transition happens inside one Lua script (`lua/breaker_record.lua`,
//! `lua/breaker_check.lua`, `lua/breaker_pause.lua`) on Redis's clock, so
//! concurrent workers never lose a count, open a breaker twice or admit
//! more probes than allowed, and their clocks do not matter. Each call costs
//! one round trip. The configuration is not stored in Redis: every worker
//! should use the same [`BreakerConfig`] for a given name.
//!
//! The window is sliding, estimated from two fixed buckets (the current one
//! and the previous one, weighted by how much of it still overlaps the
//! window), so a breaker takes constant memory however busy it is.
//!
//! Keys: `<namespace>:{breaker.<name>}:state` (a hash) and
//! `<namespace>:{breaker.<name>}:probes` (half-open probe permits). A closed
//! breaker with nothing counted has no key at all. The state keeps a TTL of
//! [`STATE_TTL`] (longer if the cool-down or window need it), refreshed on
//! every write, so an idle breaker's counts eventually vanish; a pause keeps
//! [`PAUSE_TTL`], refreshed by pausing again. A permit lasts
//! [`BreakerConfig::probe_timeout`], so a prober that crashed without
//! recording its result frees its slot by itself.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::client::Client;
use crate::error::Error;
use crate::keys::NamedKeys;
use crate::scripts::{self, BREAKER_CHECK, BREAKER_PAUSE, BREAKER_RECORD};
use crate::spec::ChannelSpec;
use crate::time::millis;

/// TTL of a breaker's state while it is not paused: long enough that an open
/// breaker always outlives its cool-down, short enough that a breaker nobody
/// uses any more is cleaned up. Raised to cool-down plus two windows when
/// those are longer.
pub const STATE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// TTL of a manual pause, refreshed each time it is paused again: a paused
/// channel must stay paused until an operator resumes it, so this is far
/// longer than any incident (a year), while a pause forgotten on a channel
/// that no longer exists still disappears eventually.
pub const PAUSE_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// When a breaker opens and how it recovers. All workers sharing a breaker
/// should use the same configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// Failures within [`window`](Self::window) that open the breaker; 0
    /// turns this rule off (to rely on [`failure_rate`](Self::failure_rate)
    /// alone, which suits busy channels better, or for a breaker only ever
    /// paused by hand).
    pub failure_threshold: u32,
    /// Calls within the window before [`failure_rate`](Self::failure_rate)
    /// applies, so that two failures out of three calls do not open it.
    pub min_calls: u32,
    /// Opens the breaker when failures / calls within the window reaches
    /// this ratio (in `(0, 1]`) once [`min_calls`](Self::min_calls) calls
    /// were seen; `None` turns this rule off.
    pub failure_rate: Option<f64>,
    /// How far back failures and calls count (a sliding window).
    pub window: Duration,
    /// How long the breaker stays open before it lets probes through.
    pub cool_down: Duration,
    /// Probes admitted at once in half-open, and successful probes needed
    /// to close it (at least 1).
    pub half_open_probes: u32,
    /// How long a half-open probe permit lasts: a probe that has not
    /// recorded its result by then is taken for crashed, and another probe
    /// may take its place. Set it above the longest call.
    pub probe_timeout: Duration,
}

impl Default for BreakerConfig {
    /// Opens after 5 failures within a minute, or when at least half of 20
    /// or more calls in that minute fail; stays open 30 seconds; one probe
    /// (given 30 seconds) decides whether it closes.
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            min_calls: 20,
            failure_rate: Some(0.5),
            window: Duration::from_secs(60),
            cool_down: Duration::from_secs(30),
            half_open_probes: 1,
            probe_timeout: Duration::from_secs(30),
        }
    }
}

impl BreakerConfig {
    /// Why this configuration cannot work, if it cannot.
    fn problem(&self) -> Option<String> {
        if self.window.is_zero() {
            return Some("the window must be longer than zero".into());
        }
        if self.cool_down.is_zero() {
            return Some("the cool-down must be longer than zero".into());
        }
        if self.probe_timeout.is_zero() {
            return Some("the probe timeout must be longer than zero".into());
        }
        if self.half_open_probes == 0 {
            return Some("half_open_probes must be at least 1, or it could never close".into());
        }
        match self.failure_rate {
            Some(rate) if !(rate > 0.0 && rate <= 1.0) => {
                Some(format!("the failure rate must be in (0, 1], not {rate}"))
            }
            _ => None,
        }
    }
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls go through and their outcomes are counted.
    Closed,
    /// Calls are refused until `until` (by Redis's clock), when it turns
    /// half-open.
    Open {
        /// End of the cool-down.
        until: DateTime<Utc>,
    },
    /// A limited number of probes may go through to test the dependency.
    HalfOpen,
    /// Paused by hand: calls are refused until it is resumed.
    Paused,
}

impl BreakerState {
    /// `closed`, `open`, `half_open` or `paused`, for logs, metrics labels
    /// and tools.
    pub fn as_str(&self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::Paused => "paused",
        }
    }

    /// The state a script reported as `name` (and `until`, in ms since the
    /// epoch, when open).
    fn from_reply(script: &'static str, name: &str, until_ms: i64) -> Result<Self, Error> {
        let unexpected = || Error::UnexpectedReply {
            script,
            reply: format!("{name} {until_ms}"),
        };
        Ok(match name {
            "closed" => BreakerState::Closed,
            "half_open" => BreakerState::HalfOpen,
            "paused" => BreakerState::Paused,
            "open" => BreakerState::Open {
                until: DateTime::from_timestamp_millis(until_ms).ok_or_else(unexpected)?,
            },
            _ => return Err(unexpected()),
        })
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerState::Open { until } => write!(f, "open until {}", until.to_rfc3339()),
            other => f.write_str(other.as_str()),
        }
    }
}

/// A circuit breaker shared through Redis by every worker of the namespace.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Breaker {
    client: Client,
    name: String,
    keys: NamedKeys,
    config: BreakerConfig,
}

impl Breaker {
    /// The breaker `name` in `client`'s namespace. Fails with
    /// [`Error::InvalidBreaker`] when the name is empty or holds a brace
    /// (which would break its hash tag), or the configuration cannot work.
    pub fn new(client: &Client, name: &str, config: BreakerConfig) -> Result<Self, Error> {
        let invalid = |problem: String| Error::InvalidBreaker {
            name: name.to_string(),
            problem,
        };
        if name.is_empty() || name.contains(['{', '}']) {
            return Err(invalid(
                "a breaker name must be non-empty and hold no braces".into(),
            ));
        }
        if let Some(problem) = config.problem() {
            return Err(invalid(problem));
        }
        Ok(Self {
            client: client.clone(),
            name: name.to_string(),
            keys: NamedKeys::breaker(client.namespace(), name),
            config,
        })
    }

    /// The breaker of `spec`'s channel, named [`channel_name`](Self::channel_name).
    pub fn channel(
        client: &Client,
        spec: &ChannelSpec,
        config: BreakerConfig,
    ) -> Result<Self, Error> {
        Self::new(client, &Self::channel_name(spec), config)
    }

    /// The name of a channel's breaker, `channel.<domain>.<channel>`: the
    /// one consumers of the channel check and `courier pause|resume
    /// <channel>` acts on, so tools and consumers agree. One breaker covers
    /// every partition of the channel.
    pub fn channel_name(spec: &ChannelSpec) -> String {
        format!("channel.{}", spec.qualified_name())
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Records the outcome of one call and returns the state it leaves the
    /// breaker in. While closed, a failure that crosses the threshold or the
    /// rate opens it. While open, outcomes are ignored (they belong to calls
    /// started earlier). While half-open, a failure reopens it; a success
    /// counts only if a probe permit from [`allow`](Self::allow) is
    /// outstanding, and enough of them close it. While paused, nothing is
    /// counted.
    pub async fn record(&self, success: bool) -> Result<BreakerState, Error> {
        let (state, probes) = self.keys();
        let c = &self.config;
        let mut cmd = scripts::evalsha(&BREAKER_RECORD, &[&state, &probes]);
        cmd.arg(if success { "1" } else { "0" })
            .arg(c.failure_threshold)
            .arg(c.min_calls)
            .arg(c.failure_rate.unwrap_or(0.0).to_string())
            .arg(millis(c.window))
            .arg(millis(c.cool_down))
            .arg(c.half_open_probes)
            .arg(millis(state_ttl(c)));
        let (name, until): (String, i64) = self.client.query(&cmd).await?;
        BreakerState::from_reply("breaker_record", &name, until)
    }

    /// The current state, in one round trip. An open breaker whose cool-down
    /// has passed turns half-open here.
    pub async fn state(&self) -> Result<BreakerState, Error> {
        Ok(self.check("state").await?.0)
    }

    /// Whether one call may go ahead now: always when closed, never when open
    /// or paused. In half-open it grants a probe permit while fewer than
    /// [`half_open_probes`](BreakerConfig::half_open_probes) are outstanding
    /// across all workers; the caller must then [`record`](Self::record) the
    /// outcome (a permit not used within
    /// [`probe_timeout`](BreakerConfig::probe_timeout) lapses).
    pub async fn allow(&self) -> Result<bool, Error> {
        Ok(self.check("allow").await?.1)
    }

    /// Pauses the breaker by hand, whatever its state: [`allow`](Self::allow)
    /// refuses every call until [`resume`](Self::resume). Pausing again
    /// refreshes the pause's TTL ([`PAUSE_TTL`]).
    pub async fn pause(&self) -> Result<(), Error> {
        let (state, probes) = self.keys();
        let mut cmd = scripts::evalsha(&BREAKER_PAUSE, &[&state, &probes]);
        cmd.arg(millis(PAUSE_TTL));
        let _: String = self.client.query(&cmd).await?;
        Ok(())
    }

    /// Closes the breaker with every count reset, whatever its state: ends a
    /// pause, and doubles as a manual reset of an open breaker.
    pub async fn resume(&self) -> Result<(), Error> {
        let (state, probes) = self.keys();
        // A closed breaker with nothing counted is one without keys, so one
        // DEL of both is the whole (atomic) transition.
        let _: u64 = self
            .client
            .query(redis::cmd("DEL").arg(&state).arg(&probes))
            .await?;
        Ok(())
    }

    /// Runs `lua/breaker_check.lua` in `mode` (`state` or `allow`).
    async fn check(&self, mode: &str) -> Result<(BreakerState, bool), Error> {
        let (state, probes) = self.keys();
        let mut cmd = scripts::evalsha(&BREAKER_CHECK, &[&state, &probes]);
        cmd.arg(mode)
            .arg(self.config.half_open_probes)
            .arg(millis(self.config.probe_timeout))
            .arg(millis(state_ttl(&self.config)));
        let (name, until, allowed): (String, i64, i64) = self.client.query(&cmd).await?;
        let state = BreakerState::from_reply("breaker_check", &name, until)?;
        Ok((state, allowed == 1))
    }

    /// The state hash and the probe-permit set.
    fn keys(&self) -> (String, String) {
        (self.keys.part("state"), self.keys.part("probes"))
    }
}

/// TTL of a breaker's state outside a pause: [`STATE_TTL`], or longer when
/// an open breaker or a window's counts need it.
fn state_ttl(config: &BreakerConfig) -> Duration {
    let needed = config
        .window
        .saturating_mul(2)
        .saturating_add(config.cool_down);
    STATE_TTL.max(needed)
}

/// The manual pause of a channel is its breaker held open by hand: these
/// live here, beside the breaker, so that the client does not depend on
/// it.
impl Client {
    /// Pauses every consumer of a channel, on every worker, within a
    /// fraction of a second: they stop taking work, and messages wait.
    pub async fn pause(&self, spec: &ChannelSpec) -> Result<(), Error> {
        Breaker::channel(self, spec, BreakerConfig::default())?
            .pause()
            .await
    }

    /// Lets the consumers of a paused channel take work again.
    pub async fn resume(&self, spec: &ChannelSpec) -> Result<(), Error> {
        Breaker::channel(self, spec, BreakerConfig::default())?
            .resume()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::tests::SPEC;

    #[test]
    fn the_default_configuration_is_valid() {
        assert_eq!(BreakerConfig::default().problem(), None);
    }

    #[test]
    fn unworkable_configurations_are_named() {
        let cases = [
            BreakerConfig {
                window: Duration::ZERO,
                ..BreakerConfig::default()
            },
            BreakerConfig {
                cool_down: Duration::ZERO,
                ..BreakerConfig::default()
            },
            BreakerConfig {
                probe_timeout: Duration::ZERO,
                ..BreakerConfig::default()
            },
            BreakerConfig {
                half_open_probes: 0,
                ..BreakerConfig::default()
            },
            BreakerConfig {
                failure_rate: Some(0.0),
                ..BreakerConfig::default()
            },
            BreakerConfig {
                failure_rate: Some(1.5),
                ..BreakerConfig::default()
            },
            BreakerConfig {
                failure_rate: Some(f64::NAN),
                ..BreakerConfig::default()
            },
        ];
        for config in cases {
            assert!(config.problem().is_some(), "{config:?} was accepted");
        }
        let all_failures = BreakerConfig {
            failure_rate: Some(1.0),
            ..BreakerConfig::default()
        };
        assert_eq!(all_failures.problem(), None);
    }

    #[test]
    fn a_channel_breaker_is_named_after_the_channel() {
        assert_eq!(Breaker::channel_name(&SPEC), "channel.shop.orders");
        assert_eq!(
            NamedKeys::breaker("prod", &Breaker::channel_name(&SPEC)).part("state"),
            "prod:{breaker.channel.shop.orders}:state"
        );
    }

    #[test]
    fn script_replies_become_states() {
        let parse = |name, until| BreakerState::from_reply("test", name, until);
        assert_eq!(parse("closed", 0).unwrap(), BreakerState::Closed);
        assert_eq!(parse("half_open", 0).unwrap(), BreakerState::HalfOpen);
        assert_eq!(parse("paused", 0).unwrap(), BreakerState::Paused);
        let open = parse("open", 1_800_000_000_123).unwrap();
        assert_eq!(
            open,
            BreakerState::Open {
                until: DateTime::from_timestamp_millis(1_800_000_000_123).unwrap()
            }
        );
        assert_eq!(open.as_str(), "open");
        assert!(open
            .to_string()
            .starts_with("open until 2027-01-15T08:00:00.123"));
        assert!(matches!(
            parse("ajar", 0),
            Err(Error::UnexpectedReply { script: "test", .. })
        ));
    }

    #[test]
    fn state_ttl_covers_long_cool_downs() {
        assert_eq!(state_ttl(&BreakerConfig::default()), STATE_TTL);
        let slow = BreakerConfig {
            cool_down: Duration::from_secs(40 * 24 * 3600),
            window: Duration::from_secs(3600),
            ..BreakerConfig::default()
        };
        assert_eq!(state_ttl(&slow), Duration::from_secs(40 * 24 * 3600 + 7200));
        assert!(PAUSE_TTL >= Duration::from_secs(30 * 24 * 3600));
    }
}
