//! [`Handler`]: what a consumer runs on each message.
//!
//! A closure `|delivery| async move { .. }` is a handler, and so is any
//! type that implements the trait: an agent with state (producers, a model
//! client, counters) is a struct whose `handle` borrows `&self`, with no
//! `Arc` clones per call and no boxed-future alias in user code.
//!
//! ```
//! use courier::{Delivery, Handler, Outcome};
//!
//! /// Counts what it sees.
//! struct Counter {
//!     seen: std::sync::atomic::AtomicU64,
//! }
//!
//! impl Handler<String> for Counter {
//!     async fn handle(&self, delivery: Delivery<String>) -> Outcome {
//!         self.seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
//!         if delivery.message.is_empty() {
//!             return Outcome::fatal("empty message");
//!         }
//!         Outcome::Done
//!     }
//! }
//! ```

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

use crate::delivery::{Delivery, Outcome};

/// Handles one delivery of a message `M` and says what became of it.
///
/// Implemented for every `Fn(Delivery<M>) -> impl Future<Output = Outcome>`
/// closure, and by agents as structs.
pub trait Handler<M>: Send + Sync + 'static {
    /// Handles one delivery. A panic is retried like a failure.
    fn handle(&self, delivery: Delivery<M>) -> impl Future<Output = Outcome> + Send;
}

impl<M, F, Fut> Handler<M> for F
where
    F: Fn(Delivery<M>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    fn handle(&self, delivery: Delivery<M>) -> impl Future<Output = Outcome> + Send {
        self(delivery)
    }
}

/// Runs a handler's future, turning a panic into a retry: a handler that
/// panics is retried like one that failed, by the consumer and by the
/// [`crate::testing`] harness alike.
pub(crate) async fn guarded(handling: impl Future<Output = Outcome>) -> Outcome {
    match AssertUnwindSafe(handling).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            Outcome::retry(format!("handler panicked: {text}"))
        }
    }
}
