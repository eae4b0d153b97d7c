//! `courier ui` over HTTP against a real Redis: every page, every action,
//! and every refusal (read-only, no login, no CSRF token, bad input);
//! replay and purge change exactly what they said they would.

mod console;

use contact_center_contracts::channels;
use courier::{DeadReason, DlqFilter};
use courier_testkit::RedisServer;

use console::{dead_letter, interaction, login, namespace, request, serve, serve_at, TOKEN};
use courier_testkit::RedisCluster;

#[tokio::test]
async fn every_page_answers_and_bad_input_gets_an_error_page() {
    let server = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace();
    let console = serve(&server, &ns, false).await;
    let intake = channels::intake::producer(&console.client);
    for n in 0..6 {
        intake.publish(&interaction(n)).await.unwrap();
    }
    dead_letter(&console.client, 0..2).await;
    let addr = console.addr;

    let overview = request(addr, "/", None, None).await;
    assert_eq!(overview.status, 200);
    for name in [
        "contact_center.intake",
        "contact_center.billing",
        "contact_center.escalations",
    ] {
        assert!(
            overview.body.contains(&format!("data-channel=\"{name}\"")),
            "{name}"
        );
    }
    assert!(
        overview.body.contains("http-equiv=\"refresh\""),
        "the overview refreshes itself"
    );

    let channel = request(addr, "/channels/contact_center.intake", None, None).await;
    assert_eq!(channel.status, 200);
    assert!(channel.body.contains("Waiting"));
    let message = first_message(addr, &channel.body).await;
    assert_eq!(message.status, 200, "{}", message.body);
    assert!(message.body.contains("contact_center.interaction v1"));
    assert!(
        message.body.contains("&quot;interaction_id&quot;")
            || message.body.contains("\"interaction_id\"")
    );
    assert!(message.body.contains("trace id"));

    let dead = request(addr, "/channels/contact_center.billing/dead", None, None).await;
    assert_eq!(dead.status, 200);
    assert!(
        dead.body.contains("2 dead letter(s) match"),
        "{}",
        dead.body
    );
    let letter = first_message_id(&dead.body, "contact_center.billing");
    let shown = request(
        addr,
        &format!("/channels/contact_center.billing/messages/{letter}"),
        None,
        None,
    )
    .await;
    assert_eq!(shown.status, 200);
    assert!(shown.body.contains("Attempt history") && shown.body.contains("refused for the test"));
    let filtered = request(
        addr,
        "/channels/contact_center.billing/dead?reason=expired",
        None,
        None,
    )
    .await;
    assert!(
        filtered.body.contains("0 dead letter(s) match"),
        "{}",
        filtered.body
    );

    let contracts = request(addr, "/contracts", None, None).await;
    assert_eq!(contracts.status, 200);
    assert!(contracts.body.contains("<svg class=\"flow\""));
    assert!(contracts.body.contains("backward_transitive"));
    let schema = request(addr, "/contracts/contact_center.interaction/1", None, None).await;
    assert_eq!(schema.status, 200);
    assert!(schema.body.contains("interaction_id"));

    // Bad input: a clear page with the right status, never a panic.
    for (path, status, says) in [
        ("/channels/nope.nothing", 404, "no channel"),
        (
            "/channels/contact_center.intake/messages/%3Cscript%3E",
            400,
            "not a message or dead-letter id",
        ),
        (
            "/channels/contact_center.intake/messages/00000000-0000-4000-8000-999999999999",
            404,
            "no message",
        ),
        (
            "/channels/contact_center.billing/dead?reason=bored",
            400,
            "no dead-letter reason",
        ),
        (
            "/channels/contact_center.billing/dead?since=yesterday",
            400,
            "not an RFC 3339 time",
        ),
        (
            "/contracts/contact_center.interaction/x",
            400,
            "not a version number",
        ),
        ("/no/such/page", 404, "no such page"),
    ] {
        let answer = request(addr, path, None, None).await;
        assert_eq!(answer.status, status, "{path}: {}", answer.body);
        assert!(answer.body.contains(says), "{path}: {}", answer.body);
    }
    let long = format!(
        "/channels/contact_center.billing/dead?text={}",
        "x".repeat(500)
    );
    assert_eq!(request(addr, &long, None, None).await.status, 400);
    let metrics = request(addr, "/metrics", None, None).await;
    assert_eq!(metrics.status, 200);
}

/// The page of the first intake message linked from `html`.
async fn first_message(addr: std::net::SocketAddr, html: &str) -> console::Answer {
    let id = first_message_id(html, "contact_center.intake");
    let path = format!("/channels/contact_center.intake/messages/{id}");
    request(addr, &path, None, None).await
}

/// The id in the first message link of a page.
fn first_message_id(html: &str, channel: &str) -> String {
    let prefix = format!("/channels/{channel}/messages/");
    let at = html.find(&prefix).expect("a message link") + prefix.len();
    let rest = &html[at..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn actions_need_a_login_and_the_csrf_token() {
    let server = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace();
    let console = serve(&server, &ns, false).await;
    let addr = console.addr;
    let pause = "/channels/contact_center.billing/pause";

    // No login.
    let answer = request(addr, pause, None, Some(&[("csrf", "x")])).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    // A wrong token.
    let answer = request(
        addr,
        "/login",
        None,
        Some(&[("token", "not-the-token-at-all")]),
    )
    .await;
    assert_eq!(answer.status, 401);
    assert!(answer.cookie.is_none());
    // Logged in, but without or with a wrong CSRF token.
    let (cookie, csrf) = login(addr).await;
    assert_eq!(
        request(addr, pause, Some(&cookie), Some(&[])).await.status,
        403
    );
    assert_eq!(
        request(addr, pause, Some(&cookie), Some(&[("csrf", "forged")]))
            .await
            .status,
        403
    );
    let state = console
        .client
        .channel_state(&channels::billing::SPEC, None)
        .await
        .unwrap();
    assert!(!state.paused, "nothing refused changed anything");
    // Logged in with the token: pause and resume.
    let answer = request(addr, pause, Some(&cookie), Some(&[("csrf", &csrf)])).await;
    assert_eq!(answer.status, 303, "{answer:?}");
    let state = console
        .client
        .channel_state(&channels::billing::SPEC, None)
        .await
        .unwrap();
    assert!(state.paused);
    let resume = "/channels/contact_center.billing/resume";
    assert_eq!(
        request(addr, resume, Some(&cookie), Some(&[("csrf", &csrf)]))
            .await
            .status,
        303
    );
    let state = console
        .client
        .channel_state(&channels::billing::SPEC, None)
        .await
        .unwrap();
    assert!(!state.paused);
    // Logged out, the session acts no more.
    assert_eq!(
        request(addr, "/logout", Some(&cookie), Some(&[("csrf", &csrf)]))
            .await
            .status,
        303
    );
    assert_eq!(
        request(addr, pause, Some(&cookie), Some(&[("csrf", &csrf)]))
            .await
            .status,
        401
    );
    // The actions were counted.
    let metrics = request(addr, "/metrics", None, None).await;
    assert!(
        metrics.body.contains("courier_ui_actions_total"),
        "{}",
        metrics.body
    );
}

#[tokio::test]
async fn a_read_only_console_hides_and_refuses_every_action() {
    let server = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace();
    let console = serve(&server, &ns, true).await;
    dead_letter(&console.client, 0..1).await;
    let addr = console.addr;
    let dead = request(addr, "/channels/contact_center.billing/dead", None, None).await;
    assert!(dead.body.contains("1 dead letter(s) match"));
    assert!(
        !dead.body.contains("Replay")
            && !dead.body.contains("Purge")
            && !dead.body.contains("<form method=\"post\"")
    );
    let login = request(addr, "/login", None, Some(&[("token", TOKEN)])).await;
    assert_eq!(login.status, 401, "no login on a read-only console");
    for path in [
        "/channels/contact_center.billing/pause",
        "/channels/contact_center.billing/dead/replay",
        "/channels/contact_center.billing/dead/purge",
    ] {
        let answer = request(
            addr,
            path,
            None,
            Some(&[("csrf", "x"), ("all", "1"), ("confirm", "1")]),
        )
        .await;
        assert_eq!(answer.status, 403, "{path}");
        assert!(answer.body.contains("read-only"));
    }
    assert_eq!(
        console
            .client
            .dlq(&channels::billing::SPEC)
            .len()
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn replay_and_purge_change_exactly_what_they_said() {
    let server = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace();
    let console = serve(&server, &ns, false).await;
    let addr = console.addr;
    let dlq = console.client.dlq(&channels::billing::SPEC);
    dead_letter(&console.client, 0..4).await;
    let (cookie, csrf) = login(addr).await;
    let replay = "/channels/contact_center.billing/dead/replay";
    let purge = "/channels/contact_center.billing/dead/purge";
    let waiting = || async {
        console
            .client
            .channel_state(&channels::billing::SPEC, None)
            .await
            .unwrap()
            .total
            .waiting
            .unwrap()
    };

    // One selected letter replays at once.
    let letters = dlq.list(&DlqFilter::default()).await.unwrap();
    let answer = request(
        addr,
        replay,
        Some(&cookie),
        Some(&[("csrf", &csrf), ("ids", &letters[0].id)]),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(
        answer.body.contains("Replayed 1 dead letter(s)"),
        "{}",
        answer.body
    );
    assert_eq!(dlq.len().await.unwrap(), 3);
    assert_eq!(waiting().await, 1);

    // All that match: a dry run shows the count and changes nothing.
    let fields = [("csrf", csrf.as_str()), ("all", "1"), ("reason", "fatal")];
    let answer = request(addr, replay, Some(&cookie), Some(&fields)).await;
    assert!(
        answer.body.contains("This would replay <strong>3</strong>"),
        "{}",
        answer.body
    );
    assert_eq!(dlq.len().await.unwrap(), 3);
    // A filter that matches nothing replays nothing.
    let none = [
        ("csrf", csrf.as_str()),
        ("all", "1"),
        ("reason", "expired"),
        ("confirm", "1"),
    ];
    let answer = request(addr, replay, Some(&cookie), Some(&none)).await;
    assert!(answer.body.contains("Replayed 0"), "{}", answer.body);
    assert_eq!(dlq.len().await.unwrap(), 3);

    // Purge: the count first, and nothing without the channel's name typed.
    let ask = [("csrf", csrf.as_str()), ("all", "1"), ("reason", "fatal")];
    let answer = request(addr, purge, Some(&cookie), Some(&ask)).await;
    assert!(
        answer.body.contains("This would purge <strong>3</strong>"),
        "{}",
        answer.body
    );
    let wrong = [
        ("csrf", csrf.as_str()),
        ("all", "1"),
        ("confirm_name", "contact_center.retention"),
    ];
    let answer = request(addr, purge, Some(&cookie), Some(&wrong)).await;
    assert!(answer.body.contains("This would purge"), "{}", answer.body);
    assert_eq!(dlq.len().await.unwrap(), 3);
    // Typed: exactly the matching letters go.
    let confirmed = [
        ("csrf", csrf.as_str()),
        ("all", "1"),
        ("reason", DeadReason::Fatal.as_str()),
        ("confirm_name", "contact_center.billing"),
    ];
    let answer = request(addr, purge, Some(&cookie), Some(&confirmed)).await;
    assert!(
        answer.body.contains("Purged 3 dead letter(s)"),
        "{}",
        answer.body
    );
    assert_eq!(dlq.len().await.unwrap(), 0);
    assert_eq!(waiting().await, 1, "the replayed message is untouched");
    // Nothing selected is a clear error.
    let answer = request(addr, replay, Some(&cookie), Some(&[("csrf", &csrf)])).await;
    assert_eq!(answer.status, 400);
    assert!(answer.body.contains("nothing selected"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_works_on_a_redis_cluster() {
    let cluster = RedisCluster::must_start();
    let ns = namespace();
    let console = serve_at(&cluster.url(), true, &ns, false).await;
    let intake = channels::intake::producer(&console.client);
    for n in 0..6 {
        intake.publish(&interaction(n)).await.unwrap();
    }
    dead_letter(&console.client, 0..2).await;
    let addr = console.addr;
    let overview = request(addr, "/", None, None).await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    let channel = request(addr, "/channels/contact_center.intake", None, None).await;
    assert_eq!(channel.status, 200, "{}", channel.body);
    let message = first_message(addr, &channel.body).await;
    assert_eq!(message.status, 200, "{}", message.body);
    let (cookie, csrf) = login(addr).await;
    let replay = [("csrf", csrf.as_str()), ("all", "1"), ("confirm", "1")];
    let answer = request(
        addr,
        "/channels/contact_center.billing/dead/replay",
        Some(&cookie),
        Some(&replay),
    )
    .await;
    assert!(answer.body.contains("Replayed 2"), "{}", answer.body);
    assert_eq!(console.billing_dead().await, 0);
}
