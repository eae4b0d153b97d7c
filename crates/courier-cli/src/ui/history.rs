//! Each channel's backlog over the last minutes, sampled in the background
//! by the console itself (Redis keeps no history), for the overview's
//! sparklines and rates.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Ui;

/// Samples kept per channel.
pub const SAMPLES: usize = 120;

/// The recent backlog of every channel, oldest first.
#[derive(Debug, Default)]
pub struct History(Mutex<HashMap<String, VecDeque<u64>>>);

impl History {
    /// Records `backlog` as the newest sample of `channel`.
    pub fn push(&self, channel: &str, backlog: u64) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let series = all.entry(channel.to_owned()).or_default();
        if series.len() == SAMPLES {
            series.pop_front();
        }
        series.push_back(backlog);
    }

    /// The samples of `channel`, oldest first.
    pub fn series(&self, channel: &str) -> Vec<u64> {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.get(channel)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// How fast a series changes, per second, over its span (`every` apart):
/// positive when the backlog grows.
pub fn rate(series: &[u64], every: Duration) -> Option<f64> {
    let (first, last) = (*series.first()?, *series.last()?);
    let span = every.as_secs_f64() * (series.len().checked_sub(1)? as f64);
    (span > 0.0).then(|| (last as f64 - first as f64) / span)
}

/// Samples every channel's backlog every `ui.refresh` seconds, for as long
/// as the console runs.
pub async fn sample(ui: Arc<Ui>) {
    let mut tick = tokio::time::interval(Duration::from_secs(ui.refresh));
    loop {
        tick.tick().await;
        for spec in &ui.channels {
            if let Ok(state) = ui.client.channel_state(spec, None).await {
                ui.history
                    .push(&spec.qualified_name(), state.total.backlog());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_keeps_its_latest_samples_and_says_how_fast_it_moves() {
        let history = History::default();
        for n in 0..(SAMPLES as u64 + 5) {
            history.push("d.c", n);
        }
        let series = history.series("d.c");
        assert_eq!(series.len(), SAMPLES);
        assert_eq!(series[0], 5);
        assert_eq!(rate(&[10, 20, 30], Duration::from_secs(5)), Some(2.0));
        assert_eq!(rate(&[7], Duration::from_secs(5)), None);
        assert!(history.series("other").is_empty());
    }
}
