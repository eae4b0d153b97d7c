//! Prometheus metrics, through the `metrics` facade: every counter,
//! histogram and gauge the runtime records is named here, once.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `courier_messages_published_total` | counter | channel, outcome (`written`, `duplicate`, `full`) |
//! | `courier_messages_consumed_total` | counter | channel |
//! | `courier_messages_acknowledged_total` | counter | channel |
//! | `courier_messages_retried_total` | counter | channel |
//! | `courier_messages_dead_lettered_total` | counter | channel, reason |
//! | `courier_duplicates_skipped_total` | counter | channel |
//! | `courier_messages_expired_total` | counter | channel |
//! | `courier_sla_breaches_total` | counter | channel |
//! | `courier_handler_duration_seconds` | histogram | channel |
//! | `courier_end_to_end_seconds` | histogram | channel (publish to handled) |
//! | `courier_messages_in_flight` | gauge | channel |
//! | `courier_channel_depth` | gauge | channel, partition (messages not yet delivered to the consumer's group: [`crate::state`]'s `waiting`) |
//! | `courier_channel_pending` | gauge | channel, partition (delivered, not settled: the group's pending entries, every list consumer's holdings) |
//! | `courier_channel_lag` | gauge | channel, partition (stream entries not yet delivered to the group) |
//! | `courier_channel_paused` | gauge | channel (1 while paused) |
//! | `courier_breaker_open` | gauge | dependency (1 while open, half-open or paused) |
//! | `courier_scaler_instances` | gauge | channel, group (consumer instances a [`crate::scaler::Scaler`] runs) |
//! | `courier_scaler_desired_instances` | gauge | channel, group (instances its policy wants: the signal for an external autoscaler) |
//!
//! Without a recorder installed these calls cost next to nothing.
//! [`install`] installs the Prometheus recorder; [`serve`] exposes it over
//! HTTP for scraping.

use std::net::SocketAddr;
use std::time::Duration;

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::spec::ChannelSpec;

/// Histogram buckets, in seconds: from a millisecond to a minute.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Installs the process-wide Prometheus recorder (once; later calls return
/// an error from the facade) and returns a handle that renders it.
pub fn install() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())
}

/// Serves `handle`'s metrics as Prometheus text on `addr` (any path), in
/// the background; returns the bound address (pass port 0 for any free).
pub async fn serve(handle: PrometheusHandle, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                // One request per connection; the request itself is not
                // needed to answer it.
                let mut request = [0u8; 1024];
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), socket.read(&mut request)).await;
                let body = handle.render();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    Ok(bound)
}

fn channel(spec: &ChannelSpec) -> String {
    spec.qualified_name()
}

/// A consumer's per-message metrics of one channel, registered once when
/// it starts rather than looked up by name and labels for every message
/// (install the recorder before starting consumers).
pub(crate) struct ChannelMetrics {
    consumed: Counter,
    acknowledged: Counter,
    retried: Counter,
    duplicate_skipped: Counter,
    expired: Counter,
    handler_duration: Histogram,
    end_to_end: Histogram,
    in_flight: Gauge,
}

impl ChannelMetrics {
    /// The handles of `spec`'s channel.
    pub(crate) fn new(spec: &ChannelSpec) -> Self {
        let name = channel(spec);
        ChannelMetrics {
            consumed: counter!("courier_messages_consumed_total", "channel" => name.clone()),
            acknowledged: counter!("courier_messages_acknowledged_total", "channel" => name.clone()),
            retried: counter!("courier_messages_retried_total", "channel" => name.clone()),
            duplicate_skipped: counter!("courier_duplicates_skipped_total", "channel" => name.clone()),
            expired: counter!("courier_messages_expired_total", "channel" => name.clone()),
            handler_duration: histogram!("courier_handler_duration_seconds", "channel" => name.clone()),
            end_to_end: histogram!("courier_end_to_end_seconds", "channel" => name.clone()),
            in_flight: gauge!("courier_messages_in_flight", "channel" => name),
        }
    }

    pub(crate) fn consumed(&self, count: u64) {
        self.consumed.increment(count);
    }

    pub(crate) fn acknowledged(&self) {
        self.acknowledged.increment(1);
    }

    pub(crate) fn retried(&self) {
        self.retried.increment(1);
    }

    pub(crate) fn duplicate_skipped(&self) {
        self.duplicate_skipped.increment(1);
    }

    pub(crate) fn expired(&self) {
        self.expired.increment(1);
    }

    pub(crate) fn handler_duration(&self, seconds: f64) {
        self.handler_duration.record(seconds);
    }

    pub(crate) fn end_to_end(&self, seconds: f64) {
        self.end_to_end.record(seconds);
    }

    pub(crate) fn in_flight(&self, delta: f64) {
        self.in_flight.increment(delta);
    }
}

pub(crate) fn published(spec: &ChannelSpec, outcome: &'static str, count: u64) {
    counter!("courier_messages_published_total", "channel" => channel(spec), "outcome" => outcome)
        .increment(count);
}

pub(crate) fn dead_lettered(spec: &ChannelSpec, reason: &'static str) {
    counter!("courier_messages_dead_lettered_total", "channel" => channel(spec), "reason" => reason)
        .increment(1);
}

pub(crate) fn lost_by_trim(spec: &ChannelSpec, count: u64) {
    counter!("courier_messages_lost_by_trim_total", "channel" => channel(spec)).increment(count);
}

pub(crate) fn sla_breached(spec: &ChannelSpec) {
    counter!("courier_sla_breaches_total", "channel" => channel(spec)).increment(1);
}

pub(crate) fn depth(
    spec: &ChannelSpec,
    partition: Option<&str>,
    depth: u64,
    pending: u64,
    lag: Option<u64>,
) {
    let partition = partition.unwrap_or("").to_string();
    if let Some(lag) = lag {
        gauge!("courier_channel_lag", "channel" => channel(spec), "partition" => partition.clone())
            .set(lag as f64);
    }
    gauge!("courier_channel_depth", "channel" => channel(spec), "partition" => partition.clone())
        .set(depth as f64);
    gauge!("courier_channel_pending", "channel" => channel(spec), "partition" => partition)
        .set(pending as f64);
}

pub(crate) fn gate(spec: &ChannelSpec, paused: bool, dependency: Option<(&str, bool)>) {
    gauge!("courier_channel_paused", "channel" => channel(spec)).set(if paused {
        1.0
    } else {
        0.0
    });
    if let Some((name, open)) = dependency {
        gauge!("courier_breaker_open", "dependency" => name.to_string()).set(if open {
            1.0
        } else {
            0.0
        });
    }
}

/// The gauges of one scaler's pool.
pub(crate) struct ScalerGauges {
    running: Gauge,
    desired: Gauge,
}

impl ScalerGauges {
    pub(crate) fn new(spec: &ChannelSpec, group: &str) -> ScalerGauges {
        let labels = [("channel", channel(spec)), ("group", group.to_string())];
        ScalerGauges {
            running: gauge!("courier_scaler_instances", &labels),
            desired: gauge!("courier_scaler_desired_instances", &labels),
        }
    }

    pub(crate) fn set(&self, running: usize, desired: usize) {
        self.running.set(running as f64);
        self.desired.set(desired as f64);
    }
}
