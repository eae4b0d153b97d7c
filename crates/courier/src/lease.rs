//! Lease locks with fencing tokens, shared by every worker through one
//! Redis.
//!
//! A [`Lease`] is a lock that expires by itself: [`Lease::acquire`] takes it
//! for a TTL if nobody holds it (`SET NX PX` in `lua/lease_acquire.lua`),
//! [`Lease::extend`] keeps it longer and [`Lease::release`] gives it back,
//! both only for the current holder (the script compares the stored token
//! and a random nonce). A holder that crashes never blocks the others for
//! longer than its TTL.
//!
//! Every acquisition also gets a **fencing token** ([`Lease::token`]): the
//! next value of a per-lock counter (`INCR` of the lock's `fence` key).
//! Tokens strictly increase from one holder to the next, so whoever guards a
//! resource can tell a newer holder from an older one. [`Fence`] is that
//! guard for resources that can ask Redis before a write (`lua/fenced_write.lua`):
//! it remembers the highest token it has accepted and refuses older ones.
//!
//! # What the lease guarantees, and what it does not
//!
//! - **Mutual exclusion holds only while Redis keeps the lease key.** This is
//!   single-Redis semantics: no Redlock, no quorum. A failover to a replica
//!   that had not yet received the `SET`, or a restart of a Redis without
//!   persistence, forgets the lease, and a second worker can then acquire it
//!   while the first still believes it holds it.
//! - **A holder cannot know that its lease is still valid.** A process pause
//!   (garbage collection, a stopped VM, swapping, a debugger), a slow network
//!   or a clock jump can outlast the TTL between the moment a holder checked
//!   its lease and the moment it acts: the lease expired, another worker
//!   acquired it, and the first one writes anyway. No client-side check
//!   closes that gap, because the pause can fall right after the check.
//! - **Fencing tokens are the real safety net.** The resource itself must
//!   refuse a write carrying a token older than one it has already accepted:
//!   then a stale holder's late write fails, whatever paused it. [`Fence`]
//!   does this check in Redis. For a resource elsewhere (a database, an
//!   object store), the check must be part of the write itself, e.g.
//!   `UPDATE ... SET fence = $token ... WHERE fence <= $token`; calling
//!   [`Fence::check_and_set`] and then writing to another system leaves the
//!   same gap as checking the lease.
//! - The lease does not survive the loss of Redis's data, and neither does
//!   the counter. [`Fence`] refuses any token above the counter, so the
//!   holders of a forgotten counter are refused until the new counter passes
//!   their tokens; a resource guarded outside Redis should keep its own
//!   highest token, which survives such a reset.
//!
//! # Keys and TTLs
//!
//! `<namespace>:{lock.<name>}:lease` holds `<token>:<nonce>:<holder>` for the
//! lease TTL. `<namespace>:{lock.<name>}:fence` is the counter and
//! `<namespace>:{lock.<name>}:guard:<resource>` the highest token a
//! [`Fence`] accepted. The counter must never go backwards while anything
//! could still compare its tokens, yet every key the runtime writes has a
//! TTL; so it lives [`FENCE_TTL`] (30 days, or the lease TTL if longer),
//! refreshed on every acquire, extend and accepted guarded write, while a
//! guard lives exactly [`FENCE_TTL`] from its last write. The counter thus
//! outlives every guard: it can only restart from 1 after a lock has been
//! unused for 30 days, when no guard remembers any of its tokens.

use std::time::{Duration, Instant};

use crate::client::Client;
use crate::error::Error;
use crate::keys::NamedKeys;
use crate::retry::Backoff;
use crate::scripts::{
    self, FENCED_WRITE, LEASE_ACQUIRE, LEASE_EXTEND, LEASE_HOLDER, LEASE_RELEASE,
};
use crate::time::millis;

/// How long a lock's fencing counter and its guards live after their last
/// use. Long enough that no lease or paused holder outlives it; a lease
/// TTL longer than this keeps the counter for the lease TTL instead.
pub const FENCE_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The longest pause of [`Lease::acquire_wait`] while the lock is held.
/// A held lock is busy, not broken: its holder usually releases it after
/// milliseconds of work, and a waiter whose pauses grew to the retry
/// policy's 500 ms would lose nearly every turn to waiters that had just
/// started. One attempt is one short script call, so polling 20 times a
/// second costs Redis little.
pub const HELD_PAUSE_CAP: Duration = Duration::from_millis(50);

/// A held lease lock. Dropping it does not release it (that needs Redis):
/// call [`release`](Self::release), or it expires after its TTL.
#[derive(Debug)]
#[must_use = "a lease is held until released or expired"]
pub struct Lease {
    /// Runs the scripts.
    client: Client,
    /// The lock's name.
    name: String,
    /// This acquisition's fencing token.
    token: u64,
    /// The value stored in the lease key: `<token>:<nonce>:<holder>`, which
    /// the extend and release scripts compare.
    value: String,
    /// `<namespace>:{lock.<name>}:lease`.
    lease_key: String,
    /// `<namespace>:{lock.<name>}:fence`, the token counter.
    fence_key: String,
}

/// Who holds a lease lock, as [`Lease::holder`] reports it for tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The holder's fencing token.
    pub token: u64,
    /// The name of the holder's [`Client`].
    pub owner: String,
    /// How long the lease has left; `None` if the key has no TTL (it was
    /// written by hand, not by courier).
    pub remaining: Option<Duration>,
}

/// The outcome of one acquire attempt.
enum Attempt {
    /// Taken.
    Taken(Lease),
    /// Held by someone else for this long (`None`: no TTL).
    Held(Option<Duration>),
}

impl Lease {
    /// Takes the lock `name` for `ttl` if nobody holds it; `None` when
    /// someone else does. A TTL under a millisecond counts as one.
    pub async fn acquire(
        client: &Client,
        name: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, Error> {
        Ok(match Self::attempt(client, name, ttl).await? {
            Attempt::Taken(lease) => Some(lease),
            Attempt::Held(_) => None,
        })
    }

    /// Takes the lock `name` for `ttl`, trying again until `timeout` has
    /// passed; `None` if it stayed held. While the lock is held, pauses
    /// between attempts grow from 10 ms to [`HELD_PAUSE_CAP`] (jittered so
    /// that waiters do not retry in step), and never last past the current
    /// lease's expiry. Transient Redis errors are retried under the
    /// runtime's retry policy (up to 500 ms apart) until `timeout`, then
    /// returned. There is no queue: when the lock is released, whichever
    /// waiter tries first takes it.
    pub async fn acquire_wait(
        client: &Client,
        name: &str,
        ttl: Duration,
        timeout: Duration,
    ) -> Result<Option<Lease>, Error> {
        let deadline = Instant::now() + timeout;
        let mut held = Backoff::capped(HELD_PAUSE_CAP);
        let mut faults = Backoff::new();
        loop {
            let attempt = Self::attempt(client, name, ttl).await;
            let now = Instant::now();
            let sleep = match attempt {
                Ok(Attempt::Taken(lease)) => return Ok(Some(lease)),
                Ok(Attempt::Held(_)) if now >= deadline => return Ok(None),
                // The lease cannot be free before it expires, but it is
                // free right after: no point sleeping past that.
                Ok(Attempt::Held(Some(remaining))) => {
                    held.next_pause().min(remaining + Duration::from_millis(1))
                }
                Ok(Attempt::Held(None)) => held.next_pause(),
                // Redis restarting or failing over is worth waiting out
                // like a held lease; still away at the deadline, say so
                // rather than report the lock held.
                Err(e) if e.is_transient() && now < deadline => {
                    tracing::debug!(lock = name, error = %e, "lease attempt failed, retrying");
                    faults.next_pause()
                }
                Err(e) => return Err(e),
            };
            tokio::time::sleep(sleep.min(deadline - now)).await;
        }
    }

    async fn attempt(client: &Client, name: &str, ttl: Duration) -> Result<Attempt, Error> {
        let keys = NamedKeys::lock(client.namespace(), name);
        let lease_key = keys.part("lease");
        let fence_key = keys.part("fence");
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let (token, held_ms): (i64, i64) = client
            .query(
                scripts::evalsha(&LEASE_ACQUIRE, &[&lease_key, &fence_key])
                    .arg(millis(ttl))
                    .arg(millis(ttl.max(FENCE_TTL)))
                    .arg(&nonce)
                    .arg(client.name()),
            )
            .await?;
        if token <= 0 {
            return Ok(Attempt::Held(
                u64::try_from(held_ms).ok().map(Duration::from_millis),
            ));
        }
        let token = token as u64;
        Ok(Attempt::Taken(Lease {
            client: client.clone(),
            name: name.to_string(),
            token,
            value: format!("{token}:{nonce}:{}", client.name()),
            lease_key,
            fence_key,
        }))
    }

    /// This acquisition's fencing token: greater than the token of every
    /// earlier acquisition of the same lock. Pass it to whatever the lease
    /// protects, which checks it (see [`Fence`]).
    pub fn token(&self) -> u64 {
        self.token
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Keeps the lease for `ttl` from now; `false` (and nothing changes) if
    /// this holder no longer holds it because it expired, whether or not
    /// someone else took it since.
    pub async fn extend(&self, ttl: Duration) -> Result<bool, Error> {
        let extended: i64 = self
            .client
            .query(
                scripts::evalsha(&LEASE_EXTEND, &[&self.lease_key, &self.fence_key])
                    .arg(&self.value)
                    .arg(millis(ttl))
                    .arg(millis(ttl.max(FENCE_TTL))),
            )
            .await?;
        Ok(extended == 1)
    }

    /// Gives the lease back so that another worker can take it at once;
    /// `false` (and nothing changes) if this holder no longer held it.
    /// Takes `&self` so that a call failing on a transient error can be
    /// made again.
    pub async fn release(&self) -> Result<bool, Error> {
        let released: i64 = self
            .client
            .query(scripts::evalsha(&LEASE_RELEASE, &[&self.lease_key]).arg(&self.value))
            .await?;
        Ok(released == 1)
    }

    /// The guard of `resource` under this lease's lock.
    pub fn fence(&self, resource: &str) -> Fence {
        Fence::new(&self.client, &self.name, resource)
    }

    /// Who holds the lock `name` now, if anyone: for tools and diagnostics.
    /// The answer may be stale by the time it arrives; never decide from it
    /// whether to act as the holder.
    pub async fn holder(client: &Client, name: &str) -> Result<Option<LeaseHolder>, Error> {
        let key = NamedKeys::lock(client.namespace(), name).part("lease");
        let reply: Option<(String, i64)> = client
            .query(&scripts::evalsha(&LEASE_HOLDER, &[&key]))
            .await?;
        let Some((value, pttl)) = reply else {
            return Ok(None);
        };
        let unexpected = || Error::UnexpectedReply {
            script: "lease_holder",
            reply: value.clone(),
        };
        let mut parts = value.splitn(3, ':');
        let token = parts
            .next()
            .and_then(|token| token.parse().ok())
            .ok_or_else(unexpected)?;
        let owner = parts.nth(1).ok_or_else(unexpected)?.to_string();
        Ok(Some(LeaseHolder {
            token,
            owner,
            remaining: u64::try_from(pttl).ok().map(Duration::from_millis),
        }))
    }
}

/// The fencing-token check of one resource protected by a lease lock: it
/// remembers the highest token it has accepted and refuses older ones, so a
/// holder whose lease expired while it was paused cannot overwrite the work
/// of the holder that came after it.
///
/// The check is only as good as where it runs: for state kept in Redis,
/// make [`check_and_set`](Self::check_and_set) the step that decides the
/// write; for a resource elsewhere, that resource must make the same
/// comparison in the same step as its write (see the [module](self) docs).
#[derive(Debug, Clone)]
pub struct Fence {
    /// Runs the script.
    client: Client,
    /// `<namespace>:{lock.<name>}:guard:<resource>`.
    guard_key: String,
    /// `<namespace>:{lock.<name>}:fence`, the lock's token counter.
    fence_key: String,
}

impl Fence {
    /// The guard of `resource`, protected by the lease lock `lock`.
    pub fn new(client: &Client, lock: &str, resource: &str) -> Fence {
        let keys = NamedKeys::lock(client.namespace(), lock);
        Fence {
            client: client.clone(),
            guard_key: keys.part(&format!("guard:{resource}")),
            fence_key: keys.part("fence"),
        }
    }

    /// Whether a write carrying `token` may go ahead: `true` if no newer
    /// token was accepted before (the same token again is accepted: one
    /// holder writes many times), and then `token` becomes the highest;
    /// `false` for an older token, and for a token the lock's counter never
    /// handed out (from before a counter reset). Atomic: of two callers
    /// racing, the one with the older token is refused.
    pub async fn check_and_set(&self, token: u64) -> Result<bool, Error> {
        let accepted: i64 = self
            .client
            .query(
                scripts::evalsha(&FENCED_WRITE, &[&self.guard_key, &self.fence_key])
                    .arg(token)
                    .arg(millis(FENCE_TTL)),
            )
            .await?;
        Ok(accepted == 1)
    }

    /// The highest token accepted so far, if any: for tools and tests.
    pub async fn highest(&self) -> Result<Option<u64>, Error> {
        self.client
            .query(redis::cmd("GET").arg(&self.guard_key))
            .await
    }
}
