//! Retry and reconnect timing: the one policy for every loop that waits out
//! a passing Redis fault or a resource that is busy for now.
//!
//! # The policy
//!
//! - **First pause 10 ms.** Most faults are a dropped connection that the
//!   next attempt already finds re-established, or a lock released a moment
//!   later; a longer first pause would add its full length to every such
//!   blip.
//! - **Doubling, up to 500 ms.** A Redis restart or failover takes from a
//!   fraction of a second to several seconds; doubling reaches the cap in
//!   six attempts, so a long outage costs about two attempts (and log lines)
//!   a second per loop. The cap bounds how late a worker notices that Redis
//!   is back: a settlement must still land within its message's visibility
//!   timeout (often one or a few seconds), which leaves room for several
//!   attempts only if no single pause is long. A loop that waits for a busy
//!   resource rather than a fault (a held lease) sets a lower cap
//!   ([`Backoff::capped`]), since the resource is often free again within
//!   milliseconds and a waiter at 500 ms would lose every turn to fresh
//!   ones.
//! - **Jitter: each pause is drawn between half and all of its step.** Every
//!   worker of a fleet sees a restart at the same moment; without jitter
//!   they would all retry in step and meet the returning server as one
//!   wave. Half the step is kept so the pauses still grow.
//! - **How long: the caller's bound, never the helper's.** What a retry is
//!   worth depends on what it protects: a publish retries for
//!   `PublishOptions::retry_for`, a settlement for the visibility timeout
//!   (while this consumer still owns the message), a lease waiter for its
//!   timeout, a reader until shutdown. [`transient`] takes that bound; a
//!   loop with its own ending uses [`Backoff`] directly.
//!
//! This module imports nothing of the crate but [`Error`], so every other
//! module may use it without an import cycle.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::Error;

/// The first pause after a failed attempt.
pub(crate) const FIRST: Duration = Duration::from_millis(10);

/// The longest pause between two attempts.
pub(crate) const CAP: Duration = Duration::from_millis(500);

/// The pauses of one retry loop: [`FIRST`], doubling up to [`CAP`], each
/// drawn between half and all of its step.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    /// The current step, before jitter.
    step: Duration,
    /// The longest step: [`CAP`] unless [`capped`](Backoff::capped).
    cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            step: FIRST,
            cap: CAP,
        }
    }
}

impl Backoff {
    /// A loop's pauses, from the first.
    pub(crate) fn new() -> Backoff {
        Backoff::default()
    }

    /// Pauses from [`FIRST`] doubling up to `cap` instead of [`CAP`]: for
    /// a loop that waits for a busy resource rather than a fault, and must
    /// notice sooner that it is free (a held lease).
    pub(crate) fn capped(cap: Duration) -> Backoff {
        Backoff {
            step: FIRST.min(cap),
            cap,
        }
    }

    /// The next pause; the step after it doubles, up to the cap.
    pub(crate) fn next_pause(&mut self) -> Duration {
        let pause = self.step.mul_f64(0.5 + fastrand::f64() / 2.0);
        self.step = (self.step * 2).min(self.cap);
        pause
    }

    /// Starts again from [`FIRST`], after an attempt succeeded.
    pub(crate) fn reset(&mut self) {
        self.step = FIRST;
    }

    /// Sleeps the next pause.
    pub(crate) async fn sleep(&mut self) {
        tokio::time::sleep(self.next_pause()).await;
    }

    /// Sleeps the next pause, waking early when `stop` is cancelled;
    /// `false` if it was.
    pub(crate) async fn pause(&mut self, stop: &CancellationToken) -> bool {
        let pause = self.next_pause();
        tokio::select! {
            () = tokio::time::sleep(pause) => true,
            () = stop.cancelled() => false,
        }
    }
}

/// Runs `call` until it succeeds, fails with an error that is not
/// transient ([`Error::is_transient`]), or has failed transiently for
/// `how_long`; returns its last result. The last pause is cut short so that
/// a final attempt is made at the bound.
pub(crate) async fn transient<T, Fut>(
    how_long: Duration,
    mut call: impl FnMut() -> Fut,
) -> Result<T, Error>
where
    Fut: Future<Output = Result<T, Error>>,
{
    let started = Instant::now();
    let mut backoff = Backoff::new();
    loop {
        match call().await {
            Err(e) if e.is_transient() && started.elapsed() < how_long => {
                let left = how_long.saturating_sub(started.elapsed());
                tokio::time::sleep(backoff.next_pause().min(left)).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_with_jitter() {
        let mut backoff = Backoff::new();
        let steps = [10u64, 20, 40, 80, 160, 320, 500, 500];
        for step in steps {
            let pause = backoff.next_pause();
            let step = Duration::from_millis(step);
            assert!(pause >= step / 2 && pause <= step, "{pause:?} for {step:?}");
        }
        backoff.reset();
        assert!(backoff.next_pause() <= FIRST);

        let mut held = Backoff::capped(Duration::from_millis(50));
        for step in [10u64, 20, 40, 50, 50] {
            let pause = held.next_pause();
            let step = Duration::from_millis(step);
            assert!(pause >= step / 2 && pause <= step, "{pause:?} for {step:?}");
        }
    }

    fn transient_error() -> Error {
        Error::Redis(redis::RedisError::from(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )))
    }

    /// Calls made by [`transient`] over `how_long` of paused time when
    /// every call fails with `error`.
    async fn calls_until_given_up(how_long: Duration, error: fn() -> Error) -> (u32, Duration) {
        let calls = Cell::new(0);
        let started = tokio::time::Instant::now();
        let result: Result<(), Error> = transient(how_long, || {
            calls.set(calls.get() + 1);
            std::future::ready(Err(error()))
        })
        .await;
        assert!(result.is_err());
        (calls.get(), started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_until_the_bound_then_returned() {
        let (calls, took) = calls_until_given_up(Duration::from_secs(2), transient_error).await;
        // 10+20+40+80+160+320 ms at most before the cap, then 250..500 ms
        // pauses: between 8 and 14 attempts fit in 2 s, the last at 2 s.
        assert!((8..=14).contains(&calls), "{calls} calls");
        assert!(took >= Duration::from_secs(2), "gave up after {took:?}");
        assert!(
            took < Duration::from_secs(2) + CAP,
            "gave up after {took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn other_errors_are_returned_at_once() {
        let local = || Error::NotSupported {
            channel: "shop.orders".into(),
            operation: "test",
        };
        let (calls, took) = calls_until_given_up(Duration::from_secs(2), local).await;
        assert_eq!((calls, took), (1, Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_after_failures_is_returned() {
        let calls = Cell::new(0);
        let result = transient(Duration::from_secs(2), || {
            calls.set(calls.get() + 1);
            std::future::ready(if calls.get() < 4 {
                Err(transient_error())
            } else {
                Ok(calls.get())
            })
        })
        .await;
        assert_eq!(result.ok(), Some(4));
    }
}
