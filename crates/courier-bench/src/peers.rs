//! Other queues on the same workload, for `--peers`: BullMQ, the Node.js
//! queue on Redis most often compared with.
//!
//! With `--peers`, and `node` and `npm` on PATH, [`Peers::install`] puts
//! the pinned [`BULLMQ`] and [`IOREDIS`] in a temporary directory with
//! `npm install --no-audit --no-fund --ignore-scripts` (npm's own lockfile
//! resolution; install scripts are not needed, msgpackr's native part comes
//! prebuilt), beside `peers/bullmq.mjs` (committed, copied there so that it
//! finds its `node_modules`). Each round of end_to_end then runs the script
//! once against the bench's Redis, in a namespace of its own, with
//! end_to_end's counts; it prints one JSON line of enqueue and drain rates
//! and of its process's CPU per message, which [`Peers::end_to_end`]
//! parses. Without Node the bench says so and goes on without BullMQ.
//!
//! Not run in CI: it downloads from npm, and its figures mean something
//! only on a quiet machine.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context as _, Result};
use serde::Deserialize;

/// The BullMQ release measured, pinned exactly so that runs compare.
pub const BULLMQ: &str = "bullmq@6.7.0";
/// Its Redis client, a peer dependency since BullMQ 6: the release
/// BullMQ 6.7.0 is tested with.
pub const IOREDIS: &str = "ioredis@5.11.1";
/// The script, committed in `crates/courier-bench/peers/`.
const SCRIPT: &str = include_str!("../peers/bullmq.mjs");

/// BullMQ installed and ready to run; the directory goes when it drops.
#[derive(Debug)]
pub struct Peers {
    /// The temporary directory holding `node_modules` and the script.
    dir: PathBuf,
}

/// What `bullmq.mjs` prints.
#[derive(Debug, Clone, Deserialize)]
pub struct BullmqRun {
    /// The BullMQ version that ran.
    pub bullmq: String,
    /// Messages enqueued and drained.
    pub count: u64,
    /// Enqueued messages per second (`addBulk` in batches).
    pub enqueue_per_s: f64,
    /// Drained messages per second (a Worker, 50 jobs in flight).
    pub drain_per_s: f64,
    /// Node's user+sys CPU µs per message while enqueueing.
    pub enqueue_cpu_us_per_msg: f64,
    /// Node's user+sys CPU µs per message while draining.
    pub drain_cpu_us_per_msg: f64,
}

impl Peers {
    /// Installs BullMQ; `None`, after saying so on stderr, when `node` or
    /// `npm` is not on PATH.
    pub fn install() -> Result<Option<Peers>> {
        for tool in ["node", "npm"] {
            if Command::new(tool).arg("--version").output().is_err() {
                eprintln!("{tool} not found: skipping BullMQ");
                return Ok(None);
            }
        }
        let dir = std::env::temp_dir().join(format!("courier-bench-peers-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let peers = Peers { dir };
        std::fs::write(
            peers.dir.join("package.json"),
            r#"{"private":true,"type":"module"}"#,
        )
        .context("cannot write the peers' package.json")?;
        std::fs::write(peers.dir.join("bullmq.mjs"), SCRIPT).context("cannot write bullmq.mjs")?;
        eprintln!(
            "installing {BULLMQ} and {IOREDIS} in {}",
            peers.dir.display()
        );
        let out = Command::new("npm")
            .current_dir(&peers.dir)
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                BULLMQ,
                IOREDIS,
            ])
            .output()
            .context("cannot run npm")?;
        if !out.status.success() {
            bail!(
                "npm install {BULLMQ} {IOREDIS} failed in {}: {}",
                peers.dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Some(peers))
    }

    /// Runs end_to_end's workload on BullMQ: `count` messages enqueued
    /// `batch` per `addBulk`, drained with `concurrency` jobs in flight,
    /// under `prefix` in the Redis at `url`.
    pub async fn end_to_end(
        &self,
        url: &str,
        prefix: &str,
        count: usize,
        batch: usize,
        concurrency: usize,
    ) -> Result<BullmqRun> {
        let mut command = Command::new("node");
        command.current_dir(&self.dir).args([
            "bullmq.mjs",
            url,
            prefix,
            &count.to_string(),
            &batch.to_string(),
            &concurrency.to_string(),
        ]);
        // The bench's runtime keeps its threads for Redis while Node runs.
        let out = tokio::task::spawn_blocking(move || command.output())
            .await?
            .context("cannot run node bullmq.mjs")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "node bullmq.mjs failed: {}{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                stdout.trim()
            );
        }
        let line = stdout.lines().last().unwrap_or_default();
        let run: BullmqRun = serde_json::from_str(line)
            .with_context(|| format!("bullmq.mjs printed {line:?}, not its JSON line"))?;
        if run.count != count as u64 {
            bail!("bullmq.mjs ran {} messages, not {count}", run.count);
        }
        Ok(run)
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_prints_what_the_bench_parses() {
        let line = r#"{"bullmq":"6.7.0","count":20000,"enqueue_per_s":27881.8,"drain_per_s":18169.0,"enqueue_cpu_us_per_msg":27.9,"drain_cpu_us_per_msg":58.6}"#;
        let run: BullmqRun = serde_json::from_str(line).unwrap();
        assert_eq!(run.count, 20_000);
        assert_eq!(run.drain_per_s, 18169.0);
        // The script names every field the bench reads.
        for field in [
            "enqueue_per_s",
            "drain_per_s",
            "enqueue_cpu_us_per_msg",
            "drain_cpu_us_per_msg",
        ] {
            assert!(SCRIPT.contains(field), "bullmq.mjs does not print {field}");
        }
        assert!(BULLMQ.contains('@') && IOREDIS.contains('@'));
    }
}
