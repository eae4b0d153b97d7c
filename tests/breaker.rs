//! Circuit breakers shared through Redis, against real `redis-server`
//! processes: every transition, seen by more than one client.

use std::time::Duration;

use chrono::{DateTime, Utc};
use contact_center_contracts::channels;
use courier::keys::NamedKeys;
use courier::{Breaker, BreakerConfig, BreakerState, Client, Error};
use courier_suites::{client, keys_without_ttl, raw, RedisServer};

/// Opens on the third failure within a long window and stays open long
/// enough that no test sees the cool-down end by accident.
fn three_strikes() -> BreakerConfig {
    BreakerConfig {
        failure_threshold: 3,
        min_calls: 1,
        failure_rate: None,
        window: Duration::from_secs(30),
        cool_down: Duration::from_secs(30),
        half_open_probes: 1,
        probe_timeout: Duration::from_secs(30),
    }
}

/// Opens on the first failure and cools down in 300 ms; `probes` probes.
fn quick_cool_down(probes: u32) -> BreakerConfig {
    BreakerConfig {
        failure_threshold: 1,
        cool_down: Duration::from_millis(300),
        half_open_probes: probes,
        ..three_strikes()
    }
}

/// Another client of the same Redis and namespace: another worker.
async fn worker(server: &RedisServer, like: &Client) -> Client {
    Client::connect(&server.url(), like.namespace())
        .await
        .expect("connect a second client")
}

/// Redis's clock, which breakers run on.
async fn redis_now(server: &RedisServer) -> DateTime<Utc> {
    let (secs, micros): (i64, u32) = redis::cmd("TIME")
        .query_async(&mut raw(server).await)
        .await
        .unwrap();
    // Whole milliseconds, as scripts read it.
    DateTime::from_timestamp_millis(secs * 1000 + i64::from(micros / 1000)).unwrap()
}

/// Opens `breaker` (configured by [`quick_cool_down`]) and waits out its
/// cool-down, so it is due to turn half-open.
async fn open_and_cool_down(breaker: &Breaker) {
    assert!(matches!(
        breaker.record(false).await.unwrap(),
        BreakerState::Open { .. }
    ));
    tokio::time::sleep(Duration::from_millis(450)).await;
}

#[tokio::test]
async fn failures_past_the_threshold_open_it_for_every_worker() {
    let server = RedisServer::must_start();
    let a = client(&server).await;
    let b = worker(&server, &a).await;
    let on_a = Breaker::new(&a, "crm", three_strikes()).unwrap();
    let on_b = Breaker::new(&b, "crm", three_strikes()).unwrap();

    // Successes do not count towards the threshold; failures from either
    // worker add up.
    for _ in 0..5 {
        assert_eq!(on_a.record(true).await.unwrap(), BreakerState::Closed);
    }
    assert_eq!(on_a.record(false).await.unwrap(), BreakerState::Closed);
    assert_eq!(on_b.record(false).await.unwrap(), BreakerState::Closed);
    assert_eq!(on_a.state().await.unwrap(), BreakerState::Closed);
    assert!(on_b.allow().await.unwrap());

    let before = redis_now(&server).await;
    let opened = on_b.record(false).await.unwrap();
    let after = redis_now(&server).await;
    let BreakerState::Open { until } = opened else {
        panic!("the third failure left it {opened:?}");
    };
    // The cool-down runs on Redis's clock from the failure that opened it.
    let cool_down = chrono::Duration::seconds(30);
    assert!(until >= before + cool_down && until <= after + cool_down);

    // Both workers see it open, and neither may call.
    assert_eq!(on_a.state().await.unwrap(), opened);
    assert_eq!(on_b.state().await.unwrap(), opened);
    assert!(!on_a.allow().await.unwrap());
    assert!(!on_b.allow().await.unwrap());
    // Outcomes of calls started before it opened change nothing.
    assert_eq!(on_a.record(true).await.unwrap(), opened);
    assert_eq!(on_a.record(false).await.unwrap(), opened);

    // A breaker of another name is independent.
    let other = Breaker::new(&a, "billing", three_strikes()).unwrap();
    assert_eq!(other.state().await.unwrap(), BreakerState::Closed);
    assert!(other.allow().await.unwrap());

    assert_eq!(
        keys_without_ttl(&server, a.namespace()).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn failures_older_than_the_window_stop_counting() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let config = BreakerConfig {
        window: Duration::from_millis(250),
        ..three_strikes()
    };
    let breaker = Breaker::new(&client, "crm", config).unwrap();
    assert_eq!(breaker.record(false).await.unwrap(), BreakerState::Closed);
    assert_eq!(breaker.record(false).await.unwrap(), BreakerState::Closed);
    // Two whole windows later, those two failures are out of the window.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(breaker.record(false).await.unwrap(), BreakerState::Closed);
    assert_eq!(breaker.record(false).await.unwrap(), BreakerState::Closed);
    assert!(matches!(
        breaker.record(false).await.unwrap(),
        BreakerState::Open { .. }
    ));
}

#[tokio::test]
async fn the_window_slides_rather_than_restarting() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let config = BreakerConfig {
        window: Duration::from_secs(1),
        ..three_strikes()
    };
    let breaker = Breaker::new(&client, "crm", config).unwrap();
    assert_eq!(breaker.record(false).await.unwrap(), BreakerState::Closed);
    assert_eq!(breaker.record(false).await.unwrap(), BreakerState::Closed);
    // Just past one window: most of the earlier failures still weigh in, so
    // two more open it where a window restarted from zero would not.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(breaker.record(false).await.unwrap(), BreakerState::Closed);
    assert!(matches!(
        breaker.record(false).await.unwrap(),
        BreakerState::Open { .. }
    ));
}

#[tokio::test]
async fn after_the_cool_down_it_is_half_open_and_admits_only_n_probes() {
    let server = RedisServer::must_start();
    let a = client(&server).await;
    let b = worker(&server, &a).await;
    let on_a = Breaker::new(&a, "crm", quick_cool_down(2)).unwrap();
    let on_b = Breaker::new(&b, "crm", quick_cool_down(2)).unwrap();

    assert!(matches!(
        on_a.record(false).await.unwrap(),
        BreakerState::Open { .. }
    ));
    assert!(!on_b.allow().await.unwrap());
    tokio::time::sleep(Duration::from_millis(450)).await;

    // `state` makes the transition: the other worker sees it done.
    assert_eq!(on_b.state().await.unwrap(), BreakerState::HalfOpen);
    assert_eq!(on_a.state().await.unwrap(), BreakerState::HalfOpen);
    // Two probes across both workers, no more.
    assert!(on_a.allow().await.unwrap());
    assert!(on_b.allow().await.unwrap());
    assert!(!on_a.allow().await.unwrap());
    assert!(!on_b.allow().await.unwrap());
    assert_eq!(on_a.state().await.unwrap(), BreakerState::HalfOpen);

    // The permits and the state both expire on their own.
    assert_eq!(
        keys_without_ttl(&server, a.namespace()).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn allow_alone_turns_an_open_breaker_half_open() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let breaker = Breaker::new(&client, "crm", quick_cool_down(1)).unwrap();
    open_and_cool_down(&breaker).await;
    assert!(breaker.allow().await.unwrap());
    assert!(!breaker.allow().await.unwrap());
    assert_eq!(breaker.state().await.unwrap(), BreakerState::HalfOpen);
}

#[tokio::test]
async fn successful_probes_close_it_with_counts_reset() {
    let server = RedisServer::must_start();
    let a = client(&server).await;
    let b = worker(&server, &a).await;
    let config = BreakerConfig {
        failure_threshold: 2,
        ..quick_cool_down(2)
    };
    let on_a = Breaker::new(&a, "crm", config.clone()).unwrap();
    let on_b = Breaker::new(&b, "crm", config).unwrap();

    assert_eq!(on_a.record(false).await.unwrap(), BreakerState::Closed);
    assert!(matches!(
        on_a.record(false).await.unwrap(),
        BreakerState::Open { .. }
    ));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(on_a.state().await.unwrap(), BreakerState::HalfOpen);

    // A success nobody was admitted for (a call started before it opened)
    // proves nothing.
    assert_eq!(on_b.record(true).await.unwrap(), BreakerState::HalfOpen);

    assert!(on_a.allow().await.unwrap());
    assert!(on_b.allow().await.unwrap());
    assert_eq!(on_a.record(true).await.unwrap(), BreakerState::HalfOpen);
    assert_eq!(on_b.record(true).await.unwrap(), BreakerState::Closed);
    assert_eq!(on_a.state().await.unwrap(), BreakerState::Closed);
    assert!(on_a.allow().await.unwrap());
    assert!(on_b.allow().await.unwrap());

    // The failures that opened it were forgotten: one more does not reopen it.
    assert_eq!(on_a.record(false).await.unwrap(), BreakerState::Closed);
    assert!(matches!(
        on_b.record(false).await.unwrap(),
        BreakerState::Open { .. }
    ));
}

#[tokio::test]
async fn a_failed_probe_reopens_it_for_a_new_cool_down() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let breaker = Breaker::new(&client, "crm", quick_cool_down(2)).unwrap();
    let BreakerState::Open { until: first } = breaker.record(false).await.unwrap() else {
        panic!("one failure did not open it");
    };
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(breaker.allow().await.unwrap());
    assert!(breaker.allow().await.unwrap());
    assert_eq!(breaker.record(true).await.unwrap(), BreakerState::HalfOpen);

    let before = redis_now(&server).await;
    let reopened = breaker.record(false).await.unwrap();
    let BreakerState::Open { until } = reopened else {
        panic!("a failed probe left it {reopened:?}");
    };
    assert!(until > first);
    assert!(until >= before + chrono::Duration::milliseconds(300));
    assert!(!breaker.allow().await.unwrap());
    // The other probe's late success does not close it.
    assert_eq!(breaker.record(true).await.unwrap(), reopened);
    assert_eq!(breaker.state().await.unwrap(), reopened);

    // After the new cool-down, probing starts again from nothing.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(breaker.allow().await.unwrap());
    assert_eq!(breaker.record(true).await.unwrap(), BreakerState::HalfOpen);
    assert!(breaker.allow().await.unwrap());
    assert_eq!(breaker.record(true).await.unwrap(), BreakerState::Closed);
}

#[tokio::test]
async fn a_crashed_probe_frees_its_permit_after_the_probe_timeout() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let config = BreakerConfig {
        probe_timeout: Duration::from_millis(300),
        ..quick_cool_down(1)
    };
    let breaker = Breaker::new(&client, "crm", config).unwrap();
    open_and_cool_down(&breaker).await;
    assert!(breaker.allow().await.unwrap());
    assert!(!breaker.allow().await.unwrap());
    // The prober never reports back.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(breaker.allow().await.unwrap());
    assert!(!breaker.allow().await.unwrap());
    assert_eq!(breaker.record(true).await.unwrap(), BreakerState::Closed);
}

#[tokio::test]
async fn the_failure_rate_opens_it_once_min_calls_are_reached() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let config = BreakerConfig {
        failure_threshold: 0,
        min_calls: 4,
        failure_rate: Some(0.5),
        ..three_strikes()
    };

    // All failures, but too few calls to judge.
    let early = Breaker::new(&client, "early", config.clone()).unwrap();
    assert_eq!(early.record(false).await.unwrap(), BreakerState::Closed);
    assert_eq!(early.record(false).await.unwrap(), BreakerState::Closed);
    assert_eq!(early.record(true).await.unwrap(), BreakerState::Closed);
    // Fourth call: 3 failures of 4.
    assert!(matches!(
        early.record(false).await.unwrap(),
        BreakerState::Open { .. }
    ));

    // Enough calls, but below the rate until half of them fail.
    let steady = Breaker::new(&client, "steady", config).unwrap();
    for _ in 0..3 {
        assert_eq!(steady.record(true).await.unwrap(), BreakerState::Closed);
    }
    assert_eq!(steady.record(false).await.unwrap(), BreakerState::Closed); // 1 of 4
    assert_eq!(steady.record(false).await.unwrap(), BreakerState::Closed); // 2 of 5
    assert!(matches!(
        steady.record(false).await.unwrap(), // 3 of 6
        BreakerState::Open { .. }
    ));
}

#[tokio::test]
async fn pause_holds_every_worker_until_resume() {
    let server = RedisServer::must_start();
    let a = client(&server).await;
    let b = worker(&server, &a).await;
    let config = BreakerConfig {
        failure_threshold: 2,
        ..quick_cool_down(1)
    };
    let on_a = Breaker::channel(&a, &channels::intake::SPEC, config.clone()).unwrap();
    let on_b = Breaker::channel(&b, &channels::intake::SPEC, config).unwrap();
    assert_eq!(on_a.name(), "channel.contact_center.intake");

    assert_eq!(on_a.record(false).await.unwrap(), BreakerState::Closed);
    on_a.pause().await.unwrap();
    assert_eq!(on_b.state().await.unwrap(), BreakerState::Paused);
    assert!(!on_b.allow().await.unwrap());
    // Nothing is counted while paused, and no cool-down ends a pause.
    assert_eq!(on_b.record(true).await.unwrap(), BreakerState::Paused);
    assert_eq!(on_b.record(false).await.unwrap(), BreakerState::Paused);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(on_a.state().await.unwrap(), BreakerState::Paused);
    assert!(!on_a.allow().await.unwrap());

    // The pause sits on the channel's breaker key, for at least 30 days.
    let key = NamedKeys::breaker(a.namespace(), "channel.contact_center.intake").part("state");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut raw(&server).await)
        .await
        .unwrap();
    assert!(ttl >= 30 * 24 * 3600 * 1000, "{key} has TTL {ttl} ms");

    on_b.resume().await.unwrap();
    assert_eq!(on_a.state().await.unwrap(), BreakerState::Closed);
    assert!(on_a.allow().await.unwrap());
    // Counts were reset: the failure before the pause is forgotten.
    assert_eq!(on_a.record(false).await.unwrap(), BreakerState::Closed);
    assert!(matches!(
        on_a.record(false).await.unwrap(),
        BreakerState::Open { .. }
    ));

    // A pause overrides an open breaker, and resume closes it.
    on_a.pause().await.unwrap();
    assert_eq!(on_b.state().await.unwrap(), BreakerState::Paused);
    on_a.resume().await.unwrap();
    assert_eq!(on_b.state().await.unwrap(), BreakerState::Closed);
}

#[tokio::test]
async fn state_survives_across_client_instances() {
    let server = RedisServer::must_start();
    let first = client(&server).await;
    let namespace = first.namespace().to_string();
    let opened = {
        let breaker = Breaker::new(&first, "crm", three_strikes()).unwrap();
        breaker.record(false).await.unwrap();
        breaker.record(false).await.unwrap();
        breaker.record(false).await.unwrap()
    };
    assert!(matches!(opened, BreakerState::Open { .. }));
    let paused = Breaker::new(&first, "billing", three_strikes()).unwrap();
    paused.pause().await.unwrap();
    drop(paused);
    drop(first);

    let later = Client::connect(&server.url(), &namespace).await.unwrap();
    let crm = Breaker::new(&later, "crm", three_strikes()).unwrap();
    assert_eq!(crm.state().await.unwrap(), opened);
    assert!(!crm.allow().await.unwrap());
    let billing = Breaker::new(&later, "billing", three_strikes()).unwrap();
    assert_eq!(billing.state().await.unwrap(), BreakerState::Paused);

    // Another namespace (another environment) shares nothing.
    let elsewhere = client(&server).await;
    let crm = Breaker::new(&elsewhere, "crm", three_strikes()).unwrap();
    assert_eq!(crm.state().await.unwrap(), BreakerState::Closed);
}

#[tokio::test]
async fn scripts_come_back_after_the_script_cache_is_flushed() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let breaker = Breaker::new(&client, "crm", quick_cool_down(1)).unwrap();
    let flush = || async {
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut raw(&server).await)
            .await
            .unwrap();
    };
    flush().await;
    assert_eq!(breaker.state().await.unwrap(), BreakerState::Closed);
    flush().await;
    assert!(matches!(
        breaker.record(false).await.unwrap(),
        BreakerState::Open { .. }
    ));
    flush().await;
    breaker.pause().await.unwrap();
    flush().await;
    assert!(!breaker.allow().await.unwrap());
}

#[tokio::test]
async fn unusable_names_and_configurations_are_refused() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    for name in ["", "a{b", "a}b"] {
        assert!(matches!(
            Breaker::new(&client, name, BreakerConfig::default()),
            Err(Error::InvalidBreaker { .. })
        ));
    }
    let error = Breaker::new(
        &client,
        "crm",
        BreakerConfig {
            failure_rate: Some(2.0),
            ..BreakerConfig::default()
        },
    )
    .unwrap_err();
    assert!(error.to_string().contains("circuit breaker crm"), "{error}");
    assert_eq!(error.kind(), courier::ErrorKind::Local);
}
