//! `courier-fault-worker`: a consumer in a process of its own, for the
//! fault suite to SIGKILL or SIGSTOP. It consumes `WORK` with one handler
//! at a time; each message's effect is publishing `task_for(n)` on
//! `EFFECTS`. It prints `READ n` when a handler starts and `EFFECT n` once
//! the effect is made, and misbehaves on one message as `--mode` says:
//!
//! - `normal`: no misbehaviour;
//! - `stall-before:N`: on message N, hang before the effect;
//! - `stall-after:N`: on message N, make the effect, then hang;
//! - `slow:N`: on message N, wait 1.5 s (past the visibility timeout)
//!   before the effect;
//! - `fail`: every handling fails (a poison message), to be retried and
//!   finally dead-lettered;
//! - `signal:N`: runs the consumer with `Consumer::run`, which stops on
//!   SIGTERM or Ctrl-C instead of on stdin; on message N, waits 500 ms
//!   (within the visibility timeout) before the effect, so that a signal
//!   can arrive while its handler is in flight.
//!
//! It stops when its stdin closes (or, in `signal` mode, at SIGTERM) and
//! prints `REPORT done=… stale=…`.
//!
//! Usage: `courier-fault-worker URL NAMESPACE MODE`

use std::io::Write;
use std::time::Duration;

use contact_center_contracts::Interaction;
use courier::{CancellationToken, Client, Consumer, ConsumerOptions, Outcome, Producer};
use courier_suites::{first_version, quick, task_for, EFFECTS, WORK};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, namespace, mode] = args.as_slice() else {
        eprintln!("usage: courier-fault-worker URL NAMESPACE MODE");
        std::process::exit(2);
    };
    let (kind, target) = match mode.split_once(':') {
        Some((kind, n)) => (kind.to_string(), n.parse::<u64>().ok()),
        None => (mode.clone(), None),
    };
    let client = Client::connect(url, namespace).await.expect("connect");
    let effects = Producer::untyped(&client, &EFFECTS);
    let consumer =
        Consumer::<Interaction>::untyped(&client, &WORK, "workers").with_options(ConsumerOptions {
            concurrency: 1,
            batch: 1,
            ..quick()
        });
    let token = CancellationToken::new();
    std::thread::spawn({
        let token = token.clone();
        move || {
            let mut buffer = [0u8; 64];
            while std::io::Read::read(&mut std::io::stdin(), &mut buffer).is_ok_and(|n| n > 0) {}
            token.cancel();
        }
    });
    let on_signal = kind == "signal";
    let handler = move |delivery: courier::Delivery<Interaction>| {
        let (effects, kind) = (effects.clone(), kind.clone());
        async move {
            let contact = first_version(&delivery.message);
            let n: u64 = contact.interaction_id.to_string()[24..].parse().unwrap();
            say(&format!("READ {n}"));
            if kind == "fail" {
                return Outcome::retry("this worker fails everything");
            }
            let this = target == Some(n);
            if this && kind == "stall-before" {
                std::future::pending::<()>().await;
            }
            if this && kind == "slow" {
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
            if this && kind == "signal" {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            if let Err(e) = effects.publish(&task_for(n)).await {
                return Outcome::retry(e);
            }
            say(&format!("EFFECT {n}"));
            if this && kind == "stall-after" {
                std::future::pending::<()>().await;
            }
            Outcome::Done
        }
    };
    let report = if on_signal {
        consumer.run(handler).await
    } else {
        consumer.run_until(handler, token).await
    }
    .expect("consumer");
    say(&format!(
        "REPORT done={} stale={}",
        report.done, report.stale
    ));
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
