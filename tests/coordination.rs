//! Coordination primitives shared by workers through Redis: the lease lock
//! with fencing tokens, the fenced-write guard and the shared rate limit,
//! against real `redis-server` processes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use courier::keys::NamedKeys;
use courier::{Client, Error, ErrorKind, Fence, Lease, RateLimit};
use courier_suites::{keys_without_ttl, namespace, raw, RedisServer};

/// A worker's own client (its own connection) in the shared `namespace`.
async fn worker(server: &RedisServer, namespace: &str, name: &str) -> Client {
    Client::connect(&server.url(), namespace)
        .await
        .expect("connect to the test redis-server")
        .with_name(name)
}

/// The remaining TTL of `key` in ms, read with a raw connection.
async fn pttl(server: &RedisServer, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut raw(server).await)
        .await
        .unwrap()
}

/// Waits until `client` answers again after a Redis restart: its shared
/// connection reports the broken pipe once, then reconnects.
async fn reconnected(client: &Client) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = Lease::holder(client, "probe").await {
        assert!(e.is_transient() && Instant::now() < deadline, "{e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One line of the log the lease contenders keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// `worker` acquired the lease with `token` and started its work.
    Enter { worker: usize, token: u64 },
    /// `worker` finished its work and is about to release.
    Exit { worker: usize },
}

#[tokio::test]
async fn contenders_never_hold_the_lease_at_once_and_all_get_turns() {
    const WORKERS: usize = 3;
    let server = RedisServer::must_start();
    let ns = namespace();
    let log = Arc::new(Mutex::new(Vec::new()));
    // A second, independent witness of overlap besides the ordered log.
    let inside = Arc::new(AtomicU32::new(0));
    let overlaps = Arc::new(AtomicU32::new(0));
    let stop_at = Instant::now() + Duration::from_secs(2);
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let client = worker(&server, &ns, &format!("w{w}")).await;
        let (log, inside, overlaps) = (log.clone(), inside.clone(), overlaps.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < stop_at {
                let lease = Lease::acquire_wait(
                    &client,
                    "job",
                    Duration::from_secs(5),
                    Duration::from_secs(5),
                )
                .await
                .unwrap()
                .expect("the lease frees within 5 s");
                if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                log.lock().unwrap().push(Turn::Enter {
                    worker: w,
                    token: lease.token(),
                });
                tokio::time::sleep(Duration::from_millis(2 + fastrand::u64(0..6))).await;
                log.lock().unwrap().push(Turn::Exit { worker: w });
                inside.fetch_sub(1, Ordering::SeqCst);
                assert!(lease.release().await.unwrap(), "the holder's release");
                // Give the others a chance: nothing queues waiters.
                tokio::time::sleep(Duration::from_millis(fastrand::u64(1..4))).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    let log = std::mem::take(&mut *log.lock().unwrap());
    let mut turns = [0u32; WORKERS];
    let mut last_token = 0;
    for pair in log.chunks(2) {
        // Each enter is followed by the same worker's exit, before anyone
        // else enters.
        let [Turn::Enter { worker, token }, Turn::Exit { worker: exited }] = *pair else {
            panic!("overlapping turns: {pair:?} in {log:?}");
        };
        assert_eq!(worker, exited, "overlapping turns in {log:?}");
        assert!(token > last_token, "token {token} after {last_token}");
        last_token = token;
        turns[worker] += 1;
    }
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
    println!("lease turns per worker in 2 s: {turns:?}, last token {last_token}");
    for (w, n) in turns.iter().enumerate() {
        assert!(*n >= 3, "worker {w} got {n} turns: {turns:?}");
    }
    assert_eq!(
        Lease::holder(&worker(&server, &ns, "tool").await, "job")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn tokens_strictly_increase_even_after_the_lease_expires() {
    let server = RedisServer::must_start();
    let ns = namespace();
    let a = worker(&server, &ns, "a").await;
    let b = worker(&server, &ns, "b").await;
    let keys = NamedKeys::lock(&ns, "nightly");

    let first = Lease::acquire(&a, "nightly", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(Lease::acquire(&b, "nightly", Duration::from_secs(5))
        .await
        .unwrap()
        .is_none());
    let holder = Lease::holder(&b, "nightly").await.unwrap().unwrap();
    assert_eq!((holder.token, holder.owner.as_str()), (first.token(), "a"));
    let remaining = holder.remaining.unwrap();
    assert!(remaining > Duration::from_secs(4) && remaining <= Duration::from_secs(5));
    assert!(first.release().await.unwrap());

    // Released: the next holder's token is greater.
    let second = Lease::acquire(&b, "nightly", Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    assert!(second.token() > first.token());
    // Expired, never released: the lease key goes, the counter stays.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(Lease::holder(&a, "nightly").await.unwrap(), None);
    assert_eq!(pttl(&server, &keys.part("lease")).await, -2);
    let third = Lease::acquire(&a, "nightly", Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    assert!(third.token() > second.token());
    assert_eq!(
        (first.token(), second.token(), third.token()),
        (1, 2, 3),
        "one INCR per acquisition, none for a refused attempt"
    );

    // The lease lives for its TTL, the counter for about 30 days.
    let lease_ttl = pttl(&server, &keys.part("lease")).await;
    assert!(lease_ttl > 0 && lease_ttl <= 1000, "{lease_ttl}");
    let fence_ttl = pttl(&server, &keys.part("fence")).await;
    let thirty_days = courier::lease::FENCE_TTL.as_millis() as i64;
    assert!(
        fence_ttl > thirty_days - 60_000 && fence_ttl <= thirty_days,
        "{fence_ttl}"
    );
    assert_eq!(keys_without_ttl(&server, &ns).await, Vec::<String>::new());
}

#[tokio::test]
async fn extend_and_release_work_only_for_the_current_holder() {
    let server = RedisServer::must_start();
    let ns = namespace();
    let a = worker(&server, &ns, "a").await;
    let b = worker(&server, &ns, "b").await;
    let lease_key = NamedKeys::lock(&ns, "job").part("lease");

    // The holder extends its lease.
    let held = Lease::acquire(&a, "job", Duration::from_millis(300))
        .await
        .unwrap()
        .unwrap();
    assert!(held.extend(Duration::from_secs(3)).await.unwrap());
    assert!(pttl(&server, &lease_key).await > 2000);
    assert!(held.release().await.unwrap());
    assert!(!held.release().await.unwrap(), "released twice");
    assert!(
        !held.extend(Duration::from_secs(3)).await.unwrap(),
        "extended after release"
    );

    // Expired with nobody else: extend must not bring it back.
    let expired = Lease::acquire(&a, "job", Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(!expired.extend(Duration::from_secs(3)).await.unwrap());
    assert!(!expired.release().await.unwrap());
    assert_eq!(
        pttl(&server, &lease_key).await,
        -2,
        "extend recreated the lease"
    );

    // Expired and taken by another: the old holder touches nothing.
    let stale = Lease::acquire(&a, "job", Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let current = Lease::acquire(&b, "job", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(!stale.extend(Duration::from_secs(60)).await.unwrap());
    assert!(!stale.release().await.unwrap());
    let holder = Lease::holder(&a, "job").await.unwrap().unwrap();
    assert_eq!(
        (holder.token, holder.owner.as_str()),
        (current.token(), "b")
    );
    assert!(holder.remaining.unwrap() <= Duration::from_secs(5));
    assert!(current.extend(Duration::from_secs(10)).await.unwrap());
    assert!(current.release().await.unwrap());
    assert_eq!(Lease::holder(&a, "job").await.unwrap(), None);
}

#[tokio::test]
async fn acquire_wait_takes_the_lease_once_free_and_gives_up_at_its_timeout() {
    let server = RedisServer::must_start();
    let ns = namespace();
    let a = worker(&server, &ns, "a").await;
    let b = worker(&server, &ns, "b").await;

    let held = Lease::acquire(&a, "job", Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    let started = Instant::now();
    let none = Lease::acquire_wait(
        &b,
        "job",
        Duration::from_secs(1),
        Duration::from_millis(150),
    )
    .await
    .unwrap();
    let waited = started.elapsed();
    assert!(none.is_none());
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(1),
        "{waited:?}"
    );

    // Released by its holder after 200 ms.
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(held.release().await.unwrap());
        held.token()
    });
    let started = Instant::now();
    let next = Lease::acquire_wait(
        &b,
        "job",
        Duration::from_millis(300),
        Duration::from_secs(3),
    )
    .await
    .unwrap()
    .expect("taken after the release");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(190) && waited < Duration::from_secs(1),
        "{waited:?}"
    );
    assert!(next.token() > releaser.await.unwrap());

    // Never released: taken once it expires (300 ms).
    let started = Instant::now();
    let after = Lease::acquire_wait(&a, "job", Duration::from_secs(1), Duration::from_secs(3))
        .await
        .unwrap()
        .expect("taken after the expiry");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(1),
        "{waited:?}"
    );
    assert!(after.token() > next.token());
}

#[tokio::test]
async fn a_stale_holders_write_is_refused_by_the_fence_and_the_new_holders_accepted() {
    let server = RedisServer::must_start();
    let ns = namespace();
    let a = worker(&server, &ns, "a").await;
    let b = worker(&server, &ns, "b").await;
    // The protected resource: a report that only accepts fenced writes.
    let report = Mutex::new(Vec::new());
    let write = |fence: Fence, token: u64, text: &'static str| {
        let report = &report;
        async move {
            let accepted = fence.check_and_set(token).await.unwrap();
            if accepted {
                report.lock().unwrap().push(text);
            }
            accepted
        }
    };

    let old = Lease::acquire(&a, "report", Duration::from_millis(200))
        .await
        .unwrap()
        .unwrap();
    assert!(write(old.fence("daily"), old.token(), "a: part 1").await);
    // The holder "pauses" past its TTL; another worker takes the lease and
    // writes.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let new = Lease::acquire(&b, "report", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("free after the expiry");
    assert!(new.token() > old.token());
    assert!(write(new.fence("daily"), new.token(), "b: part 1").await);
    // The old holder wakes up and writes, unaware: refused.
    assert!(!write(old.fence("daily"), old.token(), "a: part 2").await);
    // The new holder writes again with the same token: accepted.
    assert!(write(new.fence("daily"), new.token(), "b: part 2").await);
    assert_eq!(
        *report.lock().unwrap(),
        ["a: part 1", "b: part 1", "b: part 2"]
    );

    let fence = Fence::new(&a, "report", "daily");
    assert_eq!(fence.highest().await.unwrap(), Some(new.token()));
    // A token the counter never handed out is refused, and changes nothing.
    assert!(!fence.check_and_set(new.token() + 1000).await.unwrap());
    assert_eq!(fence.highest().await.unwrap(), Some(new.token()));
    // Each resource has its own guard.
    let other = Fence::new(&a, "report", "weekly");
    assert_eq!(other.highest().await.unwrap(), None);
    assert!(other.check_and_set(old.token()).await.unwrap());

    let guard_ttl = pttl(&server, &NamedKeys::lock(&ns, "report").part("guard:daily")).await;
    assert!(guard_ttl > 0, "{guard_ttl}");
    assert_eq!(keys_without_ttl(&server, &ns).await, Vec::<String>::new());
}

#[tokio::test]
async fn after_redis_loses_its_data_the_old_holder_is_fenced_off() {
    // The documented limit of a single Redis: a restart without persistence
    // forgets the lease, so two workers believe they hold it. The fence
    // still tells them apart, because the old token is above the new
    // counter.
    let mut server = RedisServer::must_start();
    let ns = namespace();
    let a = worker(&server, &ns, "a").await;
    let b = worker(&server, &ns, "b").await;
    for _ in 0..2 {
        let lease = Lease::acquire(&a, "job", Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        assert!(lease.release().await.unwrap());
    }
    let old = Lease::acquire(&a, "job", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.token(), 3);
    assert!(old
        .fence("ledger")
        .check_and_set(old.token())
        .await
        .unwrap());

    server.kill();
    server.start_again().unwrap();
    let new = Lease::acquire_wait(&b, "job", Duration::from_secs(30), Duration::from_secs(10))
        .await
        .unwrap()
        .expect("the restarted Redis forgot the lease");
    reconnected(&a).await;
    assert_eq!(new.token(), 1, "the counter restarted");
    assert!(!old
        .fence("ledger")
        .check_and_set(old.token())
        .await
        .unwrap());
    assert!(new
        .fence("ledger")
        .check_and_set(new.token())
        .await
        .unwrap());
    assert!(!old.extend(Duration::from_secs(30)).await.unwrap());
    assert!(!old.release().await.unwrap());
    assert!(new.release().await.unwrap());
}

#[tokio::test]
async fn workers_share_one_rate_limit() {
    const WORKERS: usize = 3;
    const RATE: f64 = 50.0;
    const BURST: u32 = 5;
    const WINDOW: Duration = Duration::from_secs(10);
    let server = RedisServer::must_start();
    let ns = namespace();
    let mut limits = Vec::new();
    for w in 0..WORKERS {
        let client = worker(&server, &ns, &format!("w{w}")).await;
        limits.push(RateLimit::new(&client, "crm", RATE, BURST).unwrap());
    }
    let started = Instant::now();
    // Run a little past the window so that its end is not a quiet spell.
    let stop_at = started + WINDOW + Duration::from_millis(300);
    let tasks: Vec<_> = limits
        .into_iter()
        .map(|limit| {
            tokio::spawn(async move {
                let mut times = Vec::new();
                while Instant::now() < stop_at {
                    limit.acquire().await.unwrap();
                    times.push(started.elapsed());
                }
                times
            })
        })
        .collect();
    let mut per_worker = Vec::new();
    let mut times = Vec::new();
    for task in tasks {
        let mine: Vec<Duration> = task.await.unwrap();
        per_worker.push(mine.iter().filter(|t| **t < WINDOW).count());
        times.extend(mine);
    }
    times.sort();
    let in_window = times.iter().filter(|t| **t < WINDOW).count();
    // A full bucket at the start, then one token every 1/RATE s.
    let expected = (RATE * WINDOW.as_secs_f64()) as usize + BURST as usize;
    // The busiest 1 s window, starting at each admission.
    let busiest = (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t - times[i] < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap();
    let per_second: BTreeMap<u64, usize> =
        times
            .iter()
            .filter(|t| **t < WINDOW)
            .fold(BTreeMap::new(), |mut counts, t| {
                *counts.entry(t.as_secs()).or_default() += 1;
                counts
            });
    println!(
        "rate limit {RATE}/s burst {BURST}, {WORKERS} workers: {in_window} admitted in {WINDOW:?} \
         (expected {expected}, {:.2}/s), per worker {per_worker:?}, busiest 1 s window {busiest}, \
         per second {:?}",
        in_window as f64 / WINDOW.as_secs_f64(),
        per_second.values().collect::<Vec<_>>()
    );
    let tolerance = (RATE * WINDOW.as_secs_f64() * 0.05) as usize;
    assert!(
        in_window.abs_diff(expected) <= tolerance,
        "{in_window} admitted, expected {expected} ± {tolerance}"
    );
    // The bucket bounds any 1 s span to RATE + BURST admissions; 2 more
    // allow for the delay between an admission and its timestamp here.
    assert!(
        busiest <= RATE as usize + BURST as usize + 2,
        "{busiest} admissions within 1 s"
    );
    for (w, n) in per_worker.iter().enumerate() {
        assert!(*n >= in_window / 10, "worker {w} starved: {per_worker:?}");
    }
    assert_eq!(keys_without_ttl(&server, &ns).await, Vec::<String>::new());
}

#[tokio::test]
async fn try_acquire_takes_the_burst_then_says_how_long_to_wait() {
    let server = RedisServer::must_start();
    let ns = namespace();
    let client = worker(&server, &ns, "a").await;
    // 2/s, burst 3: three at once, then one every 500 ms.
    let limit = RateLimit::new(&client, "api", 2.0, 3).unwrap();
    for _ in 0..3 {
        assert_eq!(limit.try_acquire().await.unwrap(), None);
    }
    let wait = limit
        .try_acquire()
        .await
        .unwrap()
        .expect("the bucket is empty");
    assert!(
        wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
        "{wait:?}"
    );
    // A refusal takes nothing: asking again says about the same.
    let again = limit.try_acquire().await.unwrap().unwrap();
    assert!(
        again <= wait && again > Duration::from_millis(350),
        "{again:?}"
    );
    tokio::time::sleep(again).await;
    assert_eq!(limit.try_acquire().await.unwrap(), None);
    assert!(limit.try_acquire().await.unwrap().is_some());

    // Another limit name is another bucket.
    let other = RateLimit::new(&client, "other", 2.0, 1).unwrap();
    assert_eq!(other.try_acquire().await.unwrap(), None);

    let bucket = NamedKeys::rate(&ns, "api").part("bucket");
    let ttl = pttl(&server, &bucket).await;
    // Until full again (at most 1.5 s) plus two refill periods (1.5 s each).
    assert!(ttl > 1000 && ttl <= 4600, "{ttl}");
    assert_eq!(keys_without_ttl(&server, &ns).await, Vec::<String>::new());

    for (rate, burst) in [(0.0, 1), (-5.0, 1), (f64::NAN, 1), (10.0, 0)] {
        let error = RateLimit::new(&client, "bad", rate, burst).unwrap_err();
        assert!(matches!(error, Error::InvalidRateLimit { .. }), "{error}");
        assert_eq!(error.kind(), ErrorKind::Local);
    }
}

#[tokio::test]
async fn coordination_scripts_are_reloaded_after_the_script_cache_is_flushed() {
    let server = RedisServer::must_start();
    let ns = namespace();
    let client = worker(&server, &ns, "a").await;
    let limit = RateLimit::new(&client, "api", 100.0, 1).unwrap();
    // Load every script once, then empty the cache as a restart would.
    let lease = Lease::acquire(&client, "job", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    let flush = |server: &RedisServer| assert_eq!(server.command("SCRIPT FLUSH").unwrap(), "+OK");
    flush(&server);
    assert!(Lease::holder(&client, "job").await.unwrap().is_some());
    flush(&server);
    assert!(lease.extend(Duration::from_secs(5)).await.unwrap());
    flush(&server);
    assert!(lease.fence("r").check_and_set(lease.token()).await.unwrap());
    flush(&server);
    assert!(lease.release().await.unwrap());
    flush(&server);
    assert!(Lease::acquire(&client, "job", Duration::from_secs(5))
        .await
        .unwrap()
        .is_some());
    flush(&server);
    assert_eq!(limit.try_acquire().await.unwrap(), None);
}

/// The README's lease and rate-limit example, run for real.
mod readme {
    use std::time::Duration;

    use courier::{Client, Lease, RateLimit};

    /// Exports a report, on one worker at a time.
    pub async fn nightly_export(client: &Client) -> Result<bool, courier::Error> {
        // Only one worker runs the export; the others skip it tonight.
        let Some(lease) = Lease::acquire(client, "nightly-export", Duration::from_secs(60)).await?
        else {
            return Ok(false);
        };
        let fence = lease.fence("export-table");
        for _batch in 0..3 {
            // Refused once a newer holder has written: this worker's lease
            // expired while it was paused, and it must stop.
            if !fence.check_and_set(lease.token()).await? {
                return Ok(false);
            }
            // ... write the batch, within the guarded step ...
            lease.extend(Duration::from_secs(60)).await?;
        }
        lease.release().await?;
        Ok(true)
    }

    /// Calls a partner API at no more than 50 calls a second, across every
    /// worker.
    pub async fn call_crm(client: &Client) -> Result<(), courier::Error> {
        let limit = RateLimit::new(client, "crm-api", 50.0, 5)?;
        limit.acquire().await?;
        // ... call the CRM ...
        Ok(())
    }
}

#[tokio::test]
async fn the_readme_example_runs() {
    let server = RedisServer::must_start();
    let ns = namespace();
    let client = worker(&server, &ns, "a").await;
    assert!(readme::nightly_export(&client).await.unwrap());
    let held = Lease::acquire(&client, "nightly-export", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !readme::nightly_export(&client).await.unwrap(),
        "ran while held"
    );
    assert!(held.release().await.unwrap());
    readme::call_crm(&client).await.unwrap();
}
