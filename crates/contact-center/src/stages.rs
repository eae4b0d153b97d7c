//! What the demo measures of each stage of the pipeline while the day runs:
//! time in queue and processing time per handled message; the channel's
//! backlog, its memory in Redis and the consumer instances its scaler runs,
//! sampled over time with Redis's `used_memory`; and a progress bar per
//! stage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use courier::{ChannelSpec, Client, Delivery, Handler, Outcome, ScalerHandle, Transport};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One stage: a channel and the agents that consume it.
#[derive(Debug)]
pub struct Stage {
    /// The channel it consumes.
    pub spec: &'static ChannelSpec,
    /// The consumer group of its agents (streams only).
    pub group: &'static str,
    /// Real seconds from a message's publishing to its handler's start,
    /// retries included, one per handling.
    pub queued: Mutex<Vec<f64>>,
    /// Real seconds a handler took, one per handling.
    pub processing: Mutex<Vec<f64>>,
    /// Handlings that ended in `Done`.
    pub done: AtomicU64,
    /// Its progress bar: done out of done + backlog.
    pub bar: ProgressBar,
    /// The pool of its agents, once started (a replaced pool replaces it).
    pub pool: Mutex<Option<Arc<ScalerHandle>>>,
}

impl Stage {
    /// Wraps a handler so that each handling is timed and counted.
    pub fn timed<H>(self: &Arc<Self>, handler: H) -> Timed<H> {
        Timed {
            stage: self.clone(),
            handler,
        }
    }

    /// Messages waiting on the channel or held by a consumer, over
    /// partitions, as the runtime reads them (for a stream, this stage's
    /// group), and the bytes its keys take in Redis; zeros while Redis
    /// cannot be read.
    pub async fn read(&self, client: &Client) -> (u64, u64) {
        let group = (self.spec.transport == Transport::Stream).then_some(self.group);
        client
            .channel_state(self.spec, group)
            .await
            .map_or((0, 0), |state| {
                (state.total.backlog(), state.total.memory_bytes.unwrap_or(0))
            })
    }

    /// Consumer instances its pool runs now.
    pub fn instances(&self) -> usize {
        self.pool
            .lock()
            .unwrap()
            .as_ref()
            .map_or(0, |pool| pool.running())
    }
}

/// One sample of every stage, in `Stages::stages` order.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Real seconds since the start.
    pub at: f64,
    /// Backlog per stage.
    pub depths: Vec<u64>,
    /// Consumer instances per stage.
    pub instances: Vec<usize>,
    /// Bytes of each stage's channel in Redis.
    pub memory: Vec<u64>,
    /// Redis's `used_memory`, the whole server.
    pub used_memory: u64,
}

/// Every stage of the day, with the progress bars drawn together.
#[derive(Debug)]
pub struct Stages {
    /// In pipeline order.
    pub stages: Vec<Arc<Stage>>,
    /// Every stage, sampled over the day.
    pub timeline: Mutex<Vec<Sample>>,
    bars: MultiProgress,
}

impl Stages {
    /// The stages, with bars drawn on stderr unless `quiet` (indicatif
    /// draws nothing when stderr is not a terminal).
    pub fn new(stages: &[(&'static ChannelSpec, &'static str)], quiet: bool) -> Stages {
        let bars = MultiProgress::with_draw_target(if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr_with_hz(4)
        });
        let style =
            ProgressStyle::with_template("  {prefix:<18} [{bar:32}] {pos:>6}/{len:<6} {msg}")
                .expect("a valid progress template")
                .progress_chars("=> ");
        let stages = stages
            .iter()
            .map(|(spec, group)| {
                let bar = bars.add(ProgressBar::new(0));
                bar.set_style(style.clone());
                bar.set_prefix(spec.name.clone());
                Arc::new(Stage {
                    spec,
                    group,
                    queued: Mutex::default(),
                    processing: Mutex::default(),
                    done: AtomicU64::new(0),
                    bar,
                    pool: Mutex::default(),
                })
            })
            .collect();
        Stages {
            stages,
            timeline: Mutex::default(),
            bars,
        }
    }

    /// The stage of a channel.
    pub fn of(&self, spec: &ChannelSpec) -> Arc<Stage> {
        self.stages
            .iter()
            .find(|s| s.spec.name == spec.name)
            .cloned()
            .expect("every consumed channel is a stage")
    }

    /// Samples every stage once into the timeline and the bars.
    pub async fn sample(&self, client: &Client, since: Instant) {
        let mut sample = Sample {
            at: since.elapsed().as_secs_f64(),
            ..Sample::default()
        };
        for stage in &self.stages {
            let (backlog, memory) = stage.read(client).await;
            let instances = stage.instances();
            stage
                .bar
                .set_length(stage.done.load(Ordering::Relaxed) + backlog);
            stage
                .bar
                .set_message(format!("backlog {backlog}, {instances} instance(s)"));
            sample.depths.push(backlog);
            sample.instances.push(instances);
            sample.memory.push(memory);
        }
        sample.used_memory = used_memory(client).await.unwrap_or(0);
        self.timeline.lock().unwrap().push(sample);
    }

    /// A line above the bars (or on stderr when they are hidden and not
    /// quiet).
    pub fn say(&self, quiet: bool, line: &str) {
        if !quiet {
            let _ = self.bars.println(line);
            if self.bars.is_hidden() {
                eprintln!("{line}");
            }
        }
    }

    /// Clears the bars before the report.
    pub fn finish(&self) {
        for stage in &self.stages {
            stage.bar.finish_and_clear();
        }
        let _ = self.bars.clear();
    }

    /// The highest value of `figure` each stage reached.
    pub fn peaks<T: Copy + Ord + Default>(&self, figure: impl Fn(&Sample) -> &[T]) -> Vec<T> {
        let timeline = self.timeline.lock().unwrap();
        (0..self.stages.len())
            .map(|i| {
                timeline
                    .iter()
                    .filter_map(|s| figure(s).get(i).copied())
                    .max()
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Redis's highest `used_memory` over the day.
    pub fn peak_used_memory(&self) -> u64 {
        let timeline = self.timeline.lock().unwrap();
        timeline.iter().map(|s| s.used_memory).max().unwrap_or(0)
    }
}

/// Redis's `used_memory` (on a cluster, the node the command reached).
async fn used_memory(client: &Client) -> Option<u64> {
    let info: String = client.query(redis::cmd("INFO").arg("memory")).await.ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The value at quantile `q` of `values` (nearest rank), 0 when empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// How long ago `created_at` (RFC 3339) was, in real seconds.
pub fn since(created_at: &str) -> Option<Duration> {
    let created = chrono::DateTime::parse_from_rfc3339(created_at).ok()?;
    (Utc::now() - created.with_timezone(&Utc)).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&values, 0.5), 51.0);
        assert_eq!(quantile(&values, 0.99), 99.0);
        assert_eq!(quantile(&values, 1.0), 100.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}

/// A handler whose every handling its stage times and counts.
#[derive(Debug)]
pub struct Timed<H> {
    stage: Arc<Stage>,
    handler: H,
}

impl<M: Send + 'static, H: Handler<M>> Handler<M> for Timed<H> {
    async fn handle(&self, delivery: Delivery<M>) -> Outcome {
        let started = Instant::now();
        let waited = since(&delivery.envelope.created_at).unwrap_or_default();
        self.stage.queued.lock().unwrap().push(waited.as_secs_f64());
        let outcome = self.handler.handle(delivery).await;
        self.stage
            .processing
            .lock()
            .unwrap()
            .push(started.elapsed().as_secs_f64());
        if matches!(outcome, Outcome::Done) {
            self.stage.done.fetch_add(1, Ordering::Relaxed);
            self.stage.bar.inc(1);
        }
        outcome
    }
}
