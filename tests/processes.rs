//! Consumers as processes of their own (`courier-fault-worker`), killed
//! with SIGKILL or frozen with SIGSTOP at a chosen point of a chosen
//! message; judged by the history of publishes and effects (each effect is
//! a derived message on `EFFECTS`, counted with raw commands).

use std::process::Stdio;
use std::time::Duration;

use courier::{Client, DlqFilter, Producer};
use courier_suites::history::{History, Publish};
use courier_suites::wait_for_effects as support_wait;
use courier_suites::{client, effect_numbers, interaction, raw, RedisServer, EFFECTS, WORK};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// A worker process and its output.
struct Worker {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    fn start(server: &RedisServer, client: &Client, mode: &str) -> Worker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_courier-fault-worker"))
            .args([&server.url(), client.namespace(), mode])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start courier-fault-worker");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Worker { child, lines }
    }

    /// Waits for a line of output, up to 10 s.
    async fn wait_for(&mut self, line: &str) {
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(Some(next)) = self.lines.next_line().await {
                if next == line {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(found, Ok(true), "the worker never printed {line:?}");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Waits up to 15 s for it to exit by itself; returns its remaining
    /// output and whether it exited with status 0.
    async fn exit(mut self) -> (Vec<String>, bool) {
        let finished = tokio::time::timeout(Duration::from_secs(15), async {
            let mut output = Vec::new();
            while let Ok(Some(line)) = self.lines.next_line().await {
                output.push(line);
            }
            let status = self.child.wait().await.expect("wait for the worker");
            (output, status.success())
        })
        .await;
        finished.expect("the worker did not exit within 15 s")
    }

    /// Closes its stdin (it stops and reports) and returns its report.
    async fn stop(mut self) -> String {
        drop(self.child.stdin.take());
        let report = tokio::time::timeout(Duration::from_secs(15), async {
            while let Ok(Some(line)) = self.lines.next_line().await {
                if line.starts_with("REPORT") {
                    return line;
                }
            }
            String::new()
        })
        .await
        .unwrap_or_default();
        let _ = self.child.wait().await;
        report
    }
}

/// Publishes messages 1..=n on `WORK`, recording each.
async fn publish(client: &Client, history: &History, n: u64) {
    let producer = Producer::untyped(client, &WORK);
    for i in 1..=n {
        history.attempted(i);
        producer.publish(&interaction(i)).await.unwrap();
        history.published(i, Publish::Acknowledged);
    }
}

/// The effects written so far, as message numbers (one per entry).
async fn effects(server: &RedisServer, client: &Client) -> Vec<u64> {
    let stream = client.keys(&EFFECTS, None).stream();
    effect_numbers(&mut raw(server).await, &stream).await
}

/// Waits until `n` effects exist, up to 15 s.
async fn wait_for_effects(server: &RedisServer, client: &Client, n: usize) -> Vec<u64> {
    let stream = client.keys(&EFFECTS, None).stream();
    let limit = Duration::from_secs(15);
    support_wait(&mut raw(server).await, &stream, limit, |found| {
        found.len() >= n
    })
    .await
}

/// Fault 1: the consumer process is SIGKILLed after reading message 5,
/// before its handler made the effect. Another consumer gets it after the
/// visibility timeout; lost 0, each effect once.
#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_killed_before_its_handler_acts_loses_nothing() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let history = History::default();
    publish(&client, &history, 20).await;
    let mut doomed = Worker::start(&server, &client, "stall-before:5");
    doomed.wait_for("READ 5").await;
    doomed.signal("-KILL");
    let _ = doomed.child.wait().await;
    let survivor = Worker::start(&server, &client, "normal");
    let found = wait_for_effects(&server, &client, 20).await;
    survivor.stop().await;
    history.effects_from(found);
    history.check().assert_clean();
}

/// Fault 2: SIGKILL after the effect of message 5, before its
/// acknowledgement. It is redelivered, and the repeated effect (the same
/// derived message) is a duplicate: one effect.
#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_killed_after_its_effect_causes_it_once() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let history = History::default();
    publish(&client, &history, 20).await;
    let mut doomed = Worker::start(&server, &client, "stall-after:5");
    doomed.wait_for("EFFECT 5").await;
    doomed.signal("-KILL");
    let _ = doomed.child.wait().await;
    let mut survivor = Worker::start(&server, &client, "normal");
    // Message 5 is handled again by the survivor (its effect deduped).
    survivor.wait_for("READ 5").await;
    let found = wait_for_effects(&server, &client, 20).await;
    survivor.stop().await;
    history.effects_from(found);
    history.check().assert_clean();
}

/// Fault 3: the consumer is SIGSTOPped in the middle of message 5, past
/// the visibility timeout; another finishes it. Woken with SIGCONT, the
/// first one's settlement is refused as stale; one effect.
#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_consumer_woken_late_cannot_settle_twice() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let history = History::default();
    publish(&client, &history, 20).await;
    let mut frozen = Worker::start(&server, &client, "slow:5");
    frozen.wait_for("READ 5").await;
    frozen.signal("-STOP");
    let survivor = Worker::start(&server, &client, "normal");
    let found = wait_for_effects(&server, &client, 20).await;
    frozen.signal("-CONT");
    // Let the woken handler finish its (duplicate) effect and settle.
    frozen.wait_for("EFFECT 5").await;
    let late = frozen.stop().await;
    survivor.stop().await;
    assert!(
        late.contains("stale=1"),
        "the late settle was not refused: {late:?}"
    );
    history.effects_from(found);
    let again = effects(&server, &client).await;
    assert_eq!(again.len(), 20, "the woken consumer wrote a second effect");
    history.check().assert_clean();
}

/// Fault 4: a poison message is retried with backoff and dead-lettered
/// once, even when the consumer moving it along is SIGKILLed midway
/// through its attempts and another takes over.
#[tokio::test(flavor = "multi_thread")]
async fn a_poison_message_is_dead_lettered_once_though_its_consumer_is_killed_midway() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let history = History::default();
    publish(&client, &history, 1).await;
    let mut doomed = Worker::start(&server, &client, "fail");
    doomed.wait_for("READ 1").await;
    doomed.wait_for("READ 1").await;
    doomed.signal("-KILL");
    let _ = doomed.child.wait().await;
    let successor = Worker::start(&server, &client, "fail");
    let dlq = client.dlq(&WORK);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while dlq.len().await.unwrap() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give a second copy every chance to appear.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    successor.stop().await;
    let letters = dlq.list(&DlqFilter::default()).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:#?}");
    let letter = &letters[0];
    assert_eq!(letter.reason.as_str(), "max_attempts", "{letter:#?}");
    // Its history has every failed attempt, the killed consumer's included.
    assert!(letter.history.len() >= 3, "{letter:#?}");
    assert!(effects(&server, &client).await.is_empty());
}

/// SIGTERM, as a process supervisor stops a worker, while a handler is in
/// flight: the consumer (on `Consumer::run`) stops reading, lets the
/// handler finish and settle, prints its report and exits with status 0.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_a_consumer_gracefully_with_its_work_in_flight_settled() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let history = History::default();
    publish(&client, &history, 20).await;
    let mut worker = Worker::start(&server, &client, "signal:5");
    worker.wait_for("READ 5").await;
    worker.signal("-TERM");
    let (output, success) = worker.exit().await;
    assert!(success, "the worker did not exit cleanly: {output:?}");
    // Message 5 was finished, and nothing was read after the signal.
    assert!(output.contains(&"EFFECT 5".to_string()), "{output:?}");
    assert!(!output.iter().any(|l| l == "READ 6"), "{output:?}");
    assert_eq!(
        output.last().map(String::as_str),
        Some("REPORT done=5 stale=0"),
        "{output:?}"
    );
    // Settled: the group holds nothing pending, and the rest waits unread.
    let mut conn = raw(&server).await;
    let stream = client.keys(&WORK, None).stream();
    let pending: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
        .arg(&stream)
        .arg("workers")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(pending.count(), 0, "{pending:?}");
    let mut found = effects(&server, &client).await;
    found.sort_unstable();
    assert_eq!(found, (1..=5).collect::<Vec<u64>>());
}
