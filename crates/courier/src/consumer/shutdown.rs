//! Stop signals for [`Consumer::run`](super::Consumer::run): Ctrl-C, and
//! SIGTERM on unix.
//!
//! A terminal sends SIGINT (Ctrl-C); a process supervisor (systemd,
//! Kubernetes, Docker, a CI runner) sends SIGTERM and waits a grace period
//! before SIGKILL. Both start the same graceful shutdown, so a consumer
//! stopped by its platform finishes or returns its work in flight instead
//! of leaving it to be reclaimed after the visibility timeout.
//!
//! As with every tokio signal handler, once SIGTERM is listened for the
//! process keeps handling it: after `run` returns, SIGTERM no longer ends
//! the process by itself.

use tokio_util::sync::CancellationToken;

/// Listens for the stop signals now, and cancels `shutdown` at the first
/// one. Dropping (aborting) the returned task stops listening.
pub(super) fn on_stop_signal(shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    // Registered here, before the task first runs, so that a SIGTERM sent
    // right after `run` started is not missed (nor kills the process).
    let terminate = terminate::listen();
    tokio::spawn(async move {
        let interrupted = async {
            if tokio::signal::ctrl_c().await.is_err() {
                // No Ctrl-C handler on this platform: SIGTERM only.
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = interrupted => {}
            () = terminate::received(terminate) => {}
        }
        shutdown.cancel();
    })
}

#[cfg(unix)]
mod terminate {
    use tokio::signal::unix::{signal, Signal, SignalKind};

    /// A SIGTERM listener, or none when it cannot be registered.
    pub(super) fn listen() -> Option<Signal> {
        match signal(SignalKind::terminate()) {
            Ok(listener) => Some(listener),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops this consumer");
                None
            }
        }
    }

    /// Resolves when SIGTERM arrives; never without a listener.
    pub(super) async fn received(listener: Option<Signal>) {
        match listener {
            Some(mut listener) => {
                if listener.recv().await.is_none() {
                    // The signal driver is gone: no SIGTERM can arrive.
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }
}

#[cfg(not(unix))]
mod terminate {
    /// No SIGTERM off unix.
    pub(super) fn listen() {}

    /// Never resolves.
    pub(super) async fn received(_: ()) {
        std::future::pending::<()>().await;
    }
}
