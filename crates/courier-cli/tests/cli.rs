//! The `courier` CLI against a real `redis-server` seeded by each test:
//! snapshots of `status`, `dlq list` and `--help`; replay moving dead
//! letters back to be processed; ACL users that let each role do its job
//! and nothing else; `doctor` flagging an evicting Redis; `validate`;
//! `peek` and `export` showing entries that are not messages, flagged.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser};
use contact_center_contracts::{channels, ClassifiedTask, ClassifiedTaskV2, InteractionV1};
use courier::{
    CancellationToken, ChannelSpec, Client, ConsumerOptions, Delivery, Outcome, PublishOptions,
    Transport,
};
use courier_cli::Cli;
use courier_testkit::{RedisCluster, RedisOptions, RedisServer};
use serde_json::json;

fn schemas() -> String {
    format!("{}/../../schemas", env!("CARGO_MANIFEST_DIR"))
}

fn namespace() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "cli{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `courier <args>` against `url`; returns (exit code, output).
async fn courier(url: &str, namespace: &str, args: &[&str]) -> (ExitCode, String) {
    let schemas = schemas();
    let mut argv = vec![
        "courier",
        "--redis",
        url,
        "--namespace",
        namespace,
        "--schemas",
        &schemas,
    ];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).unwrap();
    let mut out = Vec::new();
    let code = courier_cli::run(cli, &mut out).await.unwrap();
    (code, String::from_utf8(out).unwrap())
}

fn interaction(n: u64, region: &str) -> InteractionV1 {
    serde_json::from_value(json!({
        "interaction_id": format!("00000000-0000-4000-8000-{n:012}"),
        "customer_id": "C0012345", "region": region, "medium": "chat",
        "text": format!("contact {n}"), "received_at": "2026-11-28T09:00:00Z"
    }))
    .unwrap()
}

fn task(n: u64) -> ClassifiedTaskV2 {
    serde_json::from_value(json!({
        "task_id": format!("00000000-0000-4000-8000-{:012}", 500 + n),
        "interaction_id": format!("00000000-0000-4000-8000-{n:012}"),
        "customer_id": "C0012345", "region": "emea", "intent": "billing",
        "confidence": 0.9, "summary": format!("task {n}")
    }))
    .unwrap()
}

/// Blanks what changes from run to run (ages, sizes, ids, times).
fn stable(text: &str) -> String {
    text.lines()
        .map(|line| {
            line.split("  ")
                .map(|cell| {
                    let cell = cell.trim();
                    let volatile = (cell.ends_with('s')
                        && cell[..cell.len() - 1].parse::<u64>().is_ok())
                        || (cell.ends_with(['B', 'K', 'M'])
                            && cell[..cell.len() - 1].parse::<f64>().is_ok())
                        || cell.starts_with("2026-")
                        || cell.starts_with("17")
                        || cell.starts_with("18");
                    if volatile {
                        "*"
                    } else {
                        cell
                    }
                })
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .map(|line| match line.find("redis memory used") {
            Some(at) => format!("{}redis memory used *", &line[..at]),
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `consumer` with `handler` until `enough` holds for its counters
/// (failing after 10 s), then shuts it down.
async fn run_consumer<M, F, Fut>(
    consumer: courier::Consumer<M>,
    handler: F,
    enough: impl Fn(&courier::ConsumerReport) -> bool,
) where
    M: courier::Readable,
    F: Fn(Delivery<M>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Outcome> + Send + 'static,
{
    let consumer = consumer.with_options(ConsumerOptions {
        poll_interval: Duration::from_millis(20),
        block: Duration::from_millis(100),
        ..ConsumerOptions::default()
    });
    let stats = consumer.stats();
    let token = CancellationToken::new();
    let run = tokio::spawn({
        let token = token.clone();
        async move { consumer.run_until(handler, token).await }
    });
    let started = Instant::now();
    while !enough(&stats.snapshot()) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            stats.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    token.cancel();
    run.await.unwrap().unwrap();
}

/// A billing specialist consumer.
fn specialists(client: &Client) -> courier::Consumer<ClassifiedTask> {
    channels::billing::consumer(client, "specialists")
}

/// Runs the `ACL SETUSER` lines of `courier acl --format commands` on the
/// server at `url`.
async fn load_acl(url: &str, acl: &str) {
    let mut admin = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for line in acl.lines().filter(|l| l.starts_with("ACL SETUSER")) {
        let mut cmd = redis::cmd("ACL");
        for word in line.split_whitespace().skip(1) {
            cmd.arg(word);
        }
        let _: () = cmd
            .query_async(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("{line}: {e}"));
    }
}

/// A raw connection to `server`, for what must not go through courier.
async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Writes one raw entry on the queue of `spec`'s `partition`, as a foreign
/// or broken producer would: a stream entry of `fields`, or on a list or
/// priority queue the value of the one field as an element.
async fn inject(
    server: &RedisServer,
    client: &Client,
    spec: &ChannelSpec,
    partition: Option<&str>,
    fields: &[(&str, &[u8])],
) {
    let inbox = client.keys(spec, partition).inbox(spec.transport);
    let mut cmd = match spec.transport {
        Transport::Stream => {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(&inbox).arg("*");
            for (name, value) in fields {
                cmd.arg(*name).arg(*value);
            }
            cmd
        }
        Transport::List => redis::cmd("LPUSH"),
        Transport::Priority => {
            let mut cmd = redis::cmd("ZADD");
            cmd.arg(&inbox).arg(9e13);
            cmd
        }
        Transport::Pubsub => panic!("Redis keeps no broadcast"),
    };
    if spec.transport == Transport::List {
        cmd.arg(&inbox);
    }
    if spec.transport != Transport::Stream {
        let [(_, value)] = fields else {
            panic!("a list or priority element is one value")
        };
        cmd.arg(*value);
    }
    let _: redis::Value = cmd.query_async(&mut raw(server).await).await.unwrap();
}

/// Publishes three billing tasks, which a broken specialist dead-letters.
async fn dead_letter_three_tasks(client: &Client) {
    channels::billing::producer(client)
        .publish_many(&[task(1), task(2), task(3)], &PublishOptions::default())
        .await
        .unwrap();
    run_consumer(
        specialists(client),
        |_d| async { Outcome::fatal("CRM rejected the account number") },
        |r| r.dead >= 3,
    )
    .await;
}

/// A fixed specialist handles three tasks.
async fn process_three_tasks(client: &Client) {
    run_consumer(
        specialists(client),
        |_d| async { Outcome::Done },
        |r| r.done >= 3,
    )
    .await;
}

#[test]
fn help_is_documented() {
    let help = Cli::command().render_long_help().to_string();
    insta::assert_snapshot!("help", help);
    let mut command = Cli::command();
    let dlq = command.find_subcommand_mut("dlq").unwrap();
    insta::assert_snapshot!("dlq_help", dlq.render_long_help().to_string());
    for name in ["peek", "export"] {
        let command = command.find_subcommand_mut(name).unwrap();
        insta::assert_snapshot!(
            format!("{name}_help"),
            command.render_long_help().to_string()
        );
    }
}

#[tokio::test]
async fn status_shows_every_channel() {
    let server = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace();
    let client = Client::connect(&server.url(), &ns).await.unwrap();
    let intake = channels::intake::producer(&client);
    for n in 0..3 {
        intake.publish(&interaction(n, "emea")).await.unwrap();
    }
    intake.publish(&interaction(3, "apac")).await.unwrap();
    let billing = channels::billing::producer(&client);
    billing.publish(&task(1)).await.unwrap();
    billing
        .publish_in(&task(2), Duration::from_secs(3600))
        .await
        .unwrap();
    client.pause(&channels::retention::SPEC).await.unwrap();

    let (code, out) = courier(&server.url(), &ns, &["status"]).await;
    assert_eq!(code, ExitCode::SUCCESS);
    insta::assert_snapshot!("status", stable(&out.replace(&ns, "<namespace>")));

    let (_, json) = courier(&server.url(), &ns, &["status", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rows = json["channels"].as_array().unwrap();
    let emea = rows
        .iter()
        .find(|r| r["channel"] == "contact_center.intake" && r["partition"] == "emea")
        .unwrap();
    assert_eq!(emea["depth"], 3);
}

#[tokio::test]
async fn dead_letters_are_listed_replayed_and_processed() {
    let server = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace();
    let client = Client::connect(&server.url(), &ns).await.unwrap();
    dead_letter_three_tasks(&client).await;

    let (_, list) = courier(&server.url(), &ns, &["dlq", "list", "--channel", "billing"]).await;
    insta::assert_snapshot!("dlq_list", stable(&list));
    let (_, none) = courier(&server.url(), &ns, &["dlq", "list", "--reason", "expired"]).await;
    assert!(none.ends_with("0 dead letter(s)\n"), "{none}");

    let (_, dry) = courier(
        &server.url(),
        &ns,
        &["dlq", "replay", "--channel", "billing", "--dry-run"],
    )
    .await;
    assert!(dry.ends_with("would replay 3 dead letter(s)\n"), "{dry}");
    let (_, replayed) = courier(
        &server.url(),
        &ns,
        &["dlq", "replay", "--channel", "billing", "--grep", "CRM"],
    )
    .await;
    assert!(
        replayed.ends_with("replayed 3 of 3 dead letter(s)\n"),
        "{replayed}"
    );

    // After the fix they are processed.
    process_three_tasks(&client).await;
    let (_, after) = courier(&server.url(), &ns, &["dlq", "list"]).await;
    assert!(after.ends_with("0 dead letter(s)\n"), "{after}");
}

#[tokio::test]
async fn acl_users_do_their_job_and_nothing_else() {
    let server = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace();
    let (_, acl) = courier(
        &server.url(),
        &ns,
        &[
            "acl",
            "--format",
            "commands",
            "--password",
            "telephony=t",
            "--password",
            "classifier=c",
            "--password",
            "specialist=s",
        ],
    )
    .await;
    load_acl(&server.url(), &acl).await;
    let as_role = |user: &str, password: &str| {
        format!("redis://{user}:{password}@127.0.0.1:{}/", server.port())
    };

    // Telephony publishes intake, and nothing else.
    let telephony = Client::connect(&as_role("telephony", "t"), &ns)
        .await
        .unwrap();
    channels::intake::producer(&telephony)
        .publish(&interaction(1, "emea"))
        .await
        .unwrap();
    let refused = channels::billing::producer(&telephony)
        .publish(&task(1))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().to_lowercase().contains("noperm"),
        "{refused}"
    );

    // The classifier consumes intake and publishes to the specialist queues.
    let classifier = Client::connect(&as_role("classifier", "c"), &ns)
        .await
        .unwrap();
    channels::billing::producer(&classifier)
        .publish(&task(1))
        .await
        .unwrap();
    run_consumer(
        channels::intake::consumer(&classifier, "classifiers"),
        |_d| async { Outcome::Done },
        |r| r.done >= 1,
    )
    .await;

    // Neither may run admin commands.
    let mut raw = redis::Client::open(as_role("classifier", "c"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let flush: Result<(), redis::RedisError> = redis::cmd("FLUSHALL").query_async(&mut raw).await;
    assert!(flush
        .unwrap_err()
        .to_string()
        .to_lowercase()
        .contains("noperm"));
    let other: Result<Option<String>, redis::RedisError> = redis::cmd("GET")
        .arg("elsewhere")
        .query_async(&mut raw)
        .await;
    assert!(other
        .unwrap_err()
        .to_string()
        .to_lowercase()
        .contains("noperm"));
    // NOPERM, or inside a script Redis's "can't run this command".
    let refused = |result: Result<redis::Value, redis::RedisError>, what: &str| {
        let e = result.expect_err(what).to_string().to_lowercase();
        assert!(
            e.contains("noperm") || e.contains("can't run this command"),
            "{what}: {e}"
        );
    };
    refused(
        redis::cmd("CONFIG")
            .arg("GET")
            .arg("*")
            .query_async(&mut raw)
            .await,
        "CONFIG",
    );
    refused(
        redis::cmd("KEYS").arg("*").query_async(&mut raw).await,
        "KEYS",
    );
    // Nor inside a script.
    refused(
        redis::cmd("EVAL")
            .arg("return redis.call('FLUSHALL')")
            .arg(0)
            .query_async(&mut raw)
            .await,
        "FLUSHALL in a script",
    );

    // A producer can neither read nor delete its channel.
    let mut telephony_raw = redis::Client::open(as_role("telephony", "t"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let stream = telephony
        .keys(&channels::intake::SPEC, Some("emea"))
        .stream();
    refused(
        redis::cmd("XRANGE")
            .arg(&stream)
            .arg("-")
            .arg("+")
            .query_async(&mut telephony_raw)
            .await,
        "a producer reading",
    );
    refused(
        redis::cmd("DEL")
            .arg(&stream)
            .query_async(&mut telephony_raw)
            .await,
        "a producer deleting",
    );
}

#[tokio::test]
async fn doctor_flags_an_evicting_redis() {
    let server = RedisServer::start_with(RedisOptions {
        args: vec!["--maxmemory-policy".into(), "allkeys-lru".into()],
        ..RedisOptions::default()
    })
    .unwrap();
    let (code, out) = courier(&server.url(), "x", &["doctor"]).await;
    assert_eq!(code, ExitCode::from(1), "{out}");
    assert!(
        out.contains("warn maxmemory-policy allkeys-lru can evict queued messages"),
        "{out}"
    );
    assert!(out.contains("warn no persistence"), "{out}");

    let durable = RedisServer::start_with(RedisOptions::default().with_aof("always")).unwrap();
    let (code, out) = courier(&durable.url(), "x", &["doctor"]).await;
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
}

#[tokio::test]
async fn validate_prints_every_error_with_its_pointer() {
    let dir = std::env::temp_dir().join(format!("courier-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.json");
    std::fs::write(&good, serde_json::to_string(&task(1)).unwrap()).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"task_id": "nope", "confidence": 3, "intent": "sales"}"#,
    )
    .unwrap();
    let url = "redis://127.0.0.1:1/";
    let (code, out) = courier(
        url,
        "x",
        &[
            "validate",
            "contact_center.classified_task",
            good.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(
        (code, out.as_str()),
        (
            ExitCode::SUCCESS,
            "valid contact_center.classified_task v2\n"
        )
    );
    let (code, out) = courier(
        url,
        "x",
        &[
            "validate",
            "contact_center.classified_task@1",
            bad.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, ExitCode::FAILURE);
    insta::assert_snapshot!("validate_errors", out);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn export_then_import_moves_messages_to_another_redis() {
    let source = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let target = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace();
    let client = Client::connect(&source.url(), &ns).await.unwrap();
    let intake = channels::intake::producer(&client);
    for n in 0..5 {
        intake
            .publish(&interaction(n, ["amer", "emea", "apac"][n as usize % 3]))
            .await
            .unwrap();
    }
    let (_, exported) = courier(&source.url(), &ns, &["export", "intake"]).await;
    assert_eq!(exported.lines().count(), 5, "{exported}");
    let file = std::env::temp_dir().join(format!("courier-export-{}.jsonl", std::process::id()));
    std::fs::write(&file, &exported).unwrap();
    let path = file.to_str().unwrap();

    let (code, out) = courier(
        &target.url(),
        &ns,
        &["import", "intake", path, "--rate", "200"],
    )
    .await;
    assert_eq!(
        (code, out.as_str()),
        (
            ExitCode::SUCCESS,
            "imported 5, 0 duplicate(s), 0 rejected into contact_center.intake\n"
        )
    );
    let (_, again) = courier(&target.url(), &ns, &["export", "intake"]).await;
    let ids = |text: &str| {
        let mut kept: Vec<(String, String)> = text
            .lines()
            .map(|l| {
                let line = serde_json::from_str::<serde_json::Value>(l).unwrap();
                let field = |name: &str| line["envelope"][name].as_str().unwrap().to_string();
                (field("id"), field("key"))
            })
            .collect();
        kept.sort();
        kept
    };
    assert_eq!(
        ids(&again),
        ids(&exported),
        "the message ids and idempotency keys are kept"
    );
    // Importing the same file again writes nothing: every key is a duplicate.
    let (_, twice) = courier(&target.url(), &ns, &["import", "intake", path]).await;
    assert_eq!(
        twice,
        "imported 0, 5 duplicate(s), 0 rejected into contact_center.intake\n"
    );

    // A tampered line is refused with its line number, the rest goes in.
    let tampered = exported.replacen("\"medium\":\"chat\"", "\"medium\":\"fax\"", 1);
    std::fs::write(&file, tampered).unwrap();
    let fresh = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let (code, out) = courier(&fresh.url(), &ns, &["import", "intake", path]).await;
    assert_eq!(code, ExitCode::FAILURE);
    assert!(
        out.contains(&format!(
            "{path}:1: invalid payload: /medium: \"fax\" is not one of"
        )),
        "{out}"
    );
    assert!(
        out.ends_with("imported 4, 0 duplicate(s), 1 rejected into contact_center.intake\n"),
        "{out}"
    );
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn peek_and_export_show_stream_entries_that_are_not_messages() {
    let server = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace();
    let client = Client::connect(&server.url(), &ns).await.unwrap();
    let (intake, spec) = (channels::intake::producer(&client), &channels::intake::SPEC);
    intake.publish(&interaction(1, "emea")).await.unwrap();
    // Latin-1 where UTF-8 belongs, then an entry with other field names.
    let latin1: &[u8] = b"{\"schema\":\"contact_center.interaction\",\"text\":\"caf\xe9\"}";
    inject(&server, &client, spec, Some("emea"), &[("m", latin1)]).await;
    let fields: &[(&str, &[u8])] = &[("body", b"hello"), ("from", b"legacy\\\xff")];
    inject(&server, &client, spec, Some("emea"), fields).await;
    intake.publish(&interaction(2, "emea")).await.unwrap();

    let (code, peeked) = courier(&server.url(), &ns, &["peek", "intake"]).await;
    assert_eq!(code, ExitCode::SUCCESS, "{peeked}");
    assert!(
        peeked.ends_with("4 message(s) shown from contact_center.intake, 2 flagged\n"),
        "{peeked}"
    );
    for shown in [
        "contact 1",
        "contact 2",
        "of partition emea: not UTF-8 text",
        r#""raw": "{\"schema\":\"contact_center.interaction\",\"text\":\"caf\\xe9\"}""#,
        "of partition emea: a stream entry without the envelope field `m`",
        r#""legacy\\\\\\xff""#,
    ] {
        assert!(peeked.contains(shown), "{shown} in {peeked}");
    }
    assert_eq!(peeked.matches("\n! not_utf8: stream entry ").count(), 1);
    assert_eq!(peeked.matches("\n! no_envelope: stream entry ").count(), 1);

    let (code, exported) = courier(&server.url(), &ns, &["export", "intake"]).await;
    assert_eq!(code, ExitCode::SUCCESS);
    let lines: Vec<serde_json::Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{exported}");
    assert_eq!(lines[0]["envelope"]["payload"]["text"], "contact 1");
    assert_eq!(
        (&lines[1]["flag"], &lines[1]["partition"], &lines[1]["raw"]),
        (
            &json!("not_utf8"),
            &json!("emea"),
            &json!("{\"schema\":\"contact_center.interaction\",\"text\":\"caf\\xe9\"}")
        )
    );
    assert_eq!(
        (&lines[2]["flag"], &lines[2]["fields"]),
        (
            &json!("no_envelope"),
            &json!([["body", "hello"], ["from", "legacy\\\\\\xff"]])
        )
    );
    assert!(lines[1]["id"].is_string() && lines[2]["id"].is_string());
    assert_eq!(lines[3]["envelope"]["payload"]["text"], "contact 2");

    // Import takes the messages and refuses the flagged lines by number.
    let file = std::env::temp_dir().join(format!("courier-flagged-{}.jsonl", std::process::id()));
    std::fs::write(&file, &exported).unwrap();
    let path = file.to_str().unwrap();
    let (code, out) = courier(&server.url(), &namespace(), &["import", "intake", path]).await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, ExitCode::FAILURE);
    assert_eq!(
        out,
        format!(
            "{path}:2: exported as not_utf8, not a message\n\
             {path}:3: exported as no_envelope, not a message\n\
             imported 2, 0 duplicate(s), 2 rejected into contact_center.intake\n"
        )
    );
}

#[tokio::test]
async fn peek_and_export_show_list_and_priority_elements_that_are_not_messages() {
    let server = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace();
    let client = Client::connect(&server.url(), &ns).await.unwrap();
    for spec in [&channels::billing::SPEC, &channels::escalations::SPEC] {
        let envelope = format!(r#"{{"schema":"{}","version":1}}"#, spec.schema);
        for element in [envelope.as_bytes(), b"\xff\xfeok", b"not json"] {
            inject(&server, &client, spec, None, &[("m", element)]).await;
        }
        let (code, peeked) = courier(&server.url(), &ns, &["peek", &spec.name]).await;
        assert_eq!(code, ExitCode::SUCCESS);
        insta::assert_snapshot!(format!("peek_flagged_{}", spec.name), peeked);

        let (code, exported) = courier(&server.url(), &ns, &["export", &spec.name]).await;
        assert_eq!(code, ExitCode::SUCCESS);
        let flags: Vec<serde_json::Value> = exported
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["flag"].clone())
            .collect();
        let mut flags: Vec<&str> = flags.iter().map(|f| f.as_str().unwrap_or("-")).collect();
        flags.sort_unstable();
        assert_eq!(flags, ["-", "not_json", "not_utf8"], "{exported}");
    }
}

#[tokio::test]
async fn capacity_projects_memory_from_contracts_and_live_figures() {
    let offline = courier(
        "redis://127.0.0.1:1/",
        "x",
        &["capacity", "--offline", "--rate", "intake=4800"],
    )
    .await
    .1;
    insta::assert_snapshot!("capacity_offline", offline);

    let server = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace();
    let client = Client::connect(&server.url(), &ns).await.unwrap();
    let intake = channels::intake::producer(&client);
    for n in 0..12 {
        intake.publish(&interaction(n, "emea")).await.unwrap();
    }
    let (_, live) = courier(&server.url(), &ns, &["capacity"]).await;
    let line = live
        .lines()
        .find(|l| l.starts_with("contact_center.intake"))
        .unwrap();
    // 12 in the last hour: 288 a day, measured from the stream.
    assert!(line.contains("288  live"), "{line}");
}

#[tokio::test]
async fn status_warns_of_messages_lost_by_trim() {
    let server = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace();
    let client = Client::connect(&server.url(), &ns).await.unwrap();
    // What a consumer records when it finds pending entries trimmed away.
    let _: () = redis::cmd("SET")
        .arg(
            client
                .keys(&channels::intake::SPEC, Some("emea"))
                .lost_by_trim(),
        )
        .arg(2)
        .query_async(&mut raw(&server).await)
        .await
        .unwrap();
    let (_, out) = courier(&server.url(), &ns, &["status"]).await;
    assert!(
        out.contains(
            "warning: contact_center.intake#emea: 2 pending message(s) trimmed away before any consumer handled them"
        ),
        "{out}"
    );
    let (_, json) = courier(&server.url(), &ns, &["status", "--json"]).await;
    assert!(json.contains("\"lost_by_trim\": 2"), "{json}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_works_on_a_redis_cluster() {
    let cluster = RedisCluster::must_start();
    let (url, ns) = (cluster.url(), namespace());
    let client = Client::connect_cluster(&url, &ns).await.unwrap();
    let intake = channels::intake::producer(&client);
    for (n, region) in ["amer", "emea", "apac"].into_iter().enumerate() {
        intake
            .publish(&interaction(n as u64, region))
            .await
            .unwrap();
    }
    dead_letter_three_tasks(&client).await;

    let (code, out) = courier(&url, &ns, &["--cluster", "status", "--json"]).await;
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = json["channels"].as_array().unwrap();
    for region in ["amer", "emea", "apac"] {
        let row = rows
            .iter()
            .find(|r| r["channel"] == "contact_center.intake" && r["partition"] == region)
            .unwrap();
        assert_eq!(row["depth"], 1, "{row}");
    }
    let (_, table) = courier(&url, &ns, &["--cluster", "status"]).await;
    assert!(table.contains("on 3 masters"), "{table}");

    let (_, list) = courier(
        &url,
        &ns,
        &["--cluster", "dlq", "list", "--channel", "billing"],
    )
    .await;
    assert!(list.ends_with("3 dead letter(s)\n"), "{list}");
    let (_, replayed) = courier(
        &url,
        &ns,
        &["--cluster", "dlq", "replay", "--channel", "billing"],
    )
    .await;
    assert!(
        replayed.ends_with("replayed 3 of 3 dead letter(s)\n"),
        "{replayed}"
    );
    process_three_tasks(&client).await;
    let (_, doctor) = courier(&url, &ns, &["--cluster", "doctor"]).await;
    assert!(doctor.contains("cluster mode on"), "{doctor}");
    let (_, peeked) = courier(&url, &ns, &["--cluster", "peek", "intake", "--count", "5"]).await;
    assert!(peeked.contains("contact 1"), "{peeked}");
    let (_, capacity) = courier(&url, &ns, &["--cluster", "capacity"]).await;
    assert!(capacity.contains("live"), "{capacity}");
    let (_, exported) = courier(&url, &ns, &["--cluster", "export", "intake"]).await;
    assert_eq!(exported.lines().count(), 3, "{exported}");
    let file = std::env::temp_dir().join(format!("courier-cluster-{}.jsonl", std::process::id()));
    std::fs::write(&file, &exported).unwrap();
    let other = namespace();
    let (_, imported) = courier(
        &url,
        &other,
        &["--cluster", "import", "intake", file.to_str().unwrap()],
    )
    .await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(
        imported,
        "imported 3, 0 duplicate(s), 0 rejected into contact_center.intake\n"
    );

    // ACL users work on a cluster once loaded on every node: telephony
    // publishes intake on all three shards, and nothing else.
    let (_, acl) = courier(
        &url,
        &ns,
        &["acl", "--format", "commands", "--password", "telephony=t"],
    )
    .await;
    for node in cluster.nodes() {
        load_acl(&node.url(), &acl).await;
    }
    let seeds = url.replace("redis://", "redis://telephony:t@");
    let telephony = Client::connect_cluster(&seeds, &ns).await.unwrap();
    for (n, region) in ["amer", "emea", "apac"].into_iter().enumerate() {
        channels::intake::producer(&telephony)
            .publish(&interaction(10 + n as u64, region))
            .await
            .unwrap();
    }
    let refused = channels::billing::producer(&telephony)
        .publish(&task(9))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().to_lowercase().contains("noperm"),
        "{refused}"
    );
}

/// The quoted value after `field: ` on each line that has it.
fn values_of(yaml: &str, field: &str) -> Vec<String> {
    let prefix = format!("{field}: ");
    yaml.lines()
        .filter_map(|line| line.trim_start().strip_prefix(&prefix))
        .map(|value| {
            serde_json::from_str::<String>(value).unwrap_or_else(|e| panic!("{value}: {e}"))
        })
        .collect()
}

#[tokio::test]
async fn keda_manifests_scale_each_role_on_the_keys_and_groups_its_consumers_use() {
    // Written from the contracts alone: no Redis needed.
    let (code, yaml) = courier(
        "redis://127.0.0.1:1/",
        "prod",
        &[
            "keda",
            "--address",
            "redis.prod:6379",
            "--group",
            "specialist=specialists",
        ],
    )
    .await;
    assert_eq!(code, ExitCode::SUCCESS);
    insta::assert_snapshot!("keda", yaml);
    // Every string is a double-quoted scalar that parses as JSON.
    for field in [
        "stream",
        "listName",
        "consumerGroup",
        "query",
        "name",
        "address",
    ] {
        assert!(!values_of(&yaml, field).is_empty(), "{field}");
    }
    // Intake's three partitions cap the classifier at three replicas.
    let classifier = yaml
        .split("---\n")
        .find(|doc| {
            doc.contains("kind: \"ScaledObject\"") && doc.contains("\"courier-classifier\"")
        })
        .unwrap();
    assert!(classifier.contains("maxReplicaCount: 3"), "{classifier}");
    assert_eq!(values_of(classifier, "stream").len(), 3);
    // Escalations (priority) scale on courier's depth gauge.
    assert!(yaml.contains(
        "query: \"sum(max by (partition) (courier_channel_depth{channel=\\\"contact_center.escalations\\\"}))\""
    ));
    // Kubernetes names take no `_`, and a role with nothing to scale on
    // gets no ScaledObject (KEDA refuses one without triggers).
    assert!(yaml.contains("name: \"human-desk\""), "{yaml}");
    assert!(!yaml.contains("name: \"human_desk\""));
    assert!(
        yaml.contains("# role supervisor: nothing to scale on"),
        "{yaml}"
    );
    for doc in yaml
        .split("---\n")
        .filter(|d| d.contains("kind: \"ScaledObject\""))
    {
        assert!(
            doc.contains("    - type: "),
            "a ScaledObject without triggers:\n{doc}"
        );
    }

    // The keys and groups are the ones the runtime uses: a task waits on
    // the list the specialist's trigger reads, and once a classifier has
    // handled a contact of each region, each stream its trigger reads has
    // the classifier group, with nothing left to deliver.
    let server = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace();
    let client = Client::connect(&server.url(), &ns).await.unwrap();
    let mut conn = raw(&server).await;
    channels::billing::producer(&client)
        .publish(&task(1))
        .await
        .unwrap();
    let (_, specialist) = courier(&server.url(), &ns, &["keda", "--role", "specialist"]).await;
    let lists = values_of(&specialist, "listName");
    assert_eq!(lists.len(), 3, "{specialist}");
    let billing = lists.iter().find(|l| l.contains("billing")).unwrap();
    let waiting: u64 = redis::cmd("LLEN")
        .arg(billing)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(waiting, 1, "{billing}");

    for (n, region) in ["amer", "emea", "apac"].into_iter().enumerate() {
        channels::intake::producer(&client)
            .publish(&interaction(n as u64, region))
            .await
            .unwrap();
    }
    run_consumer(
        channels::intake::consumer(&client, "classifier"),
        |_d: Delivery<contact_center_contracts::Interaction>| async { Outcome::Done },
        |r| r.done >= 3,
    )
    .await;
    let (_, classifier) = courier(&server.url(), &ns, &["keda", "--role", "classifier"]).await;
    let streams = values_of(&classifier, "stream");
    assert_eq!(streams.len(), 3, "{classifier}");
    for stream in &streams {
        let groups: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(stream)
            .query_async(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{stream}: {e}"));
        let group = groups
            .groups
            .iter()
            .find(|g| g.name == "classifier")
            .unwrap_or_else(|| panic!("{stream}: no classifier group"));
        assert_eq!(group.lag, Some(0), "{stream}");
    }
}

/// The runbook's rollback drill ("Switch consumers to the standby"): traffic
/// on a primary, some contacts failing once and waiting for their retry,
/// the channel paused and exported with what its group handled, the
/// primary killed, the standby restored with `courier import`, consumers
/// and producers switched to it (the producer sending again what it was
/// not sure of); every contact handled, none twice.
#[tokio::test(flavor = "multi_thread")]
async fn rollback_to_a_standby_handles_every_message_once() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    let mut primary = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let standby = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace();
    // Effects by idempotency key, and attempts, as a downstream system
    // would see them.
    let effects: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let attempts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let regions = ["amer", "emea", "apac"];
    let contacts: Vec<InteractionV1> = (0..240)
        .map(|n| interaction(n, regions[n as usize % 3]))
        .collect();
    // A classifier, two at a time: every tenth contact fails its first
    // attempt (it waits for a retry); after 40 contacts each takes 40 ms,
    // so that work is left when the pause lands, however loaded the
    // machine.
    let start = |client: &Client| {
        let consumer =
            channels::intake::consumer(client, "classifier").with_options(ConsumerOptions {
                concurrency: 2,
                batch: 2,
                poll_interval: Duration::from_millis(20),
                block: Duration::from_millis(50),
                ..ConsumerOptions::default()
            });
        let stats = consumer.stats();
        let token = CancellationToken::new();
        let (effects, attempts) = (effects.clone(), attempts.clone());
        let running = tokio::spawn({
            let token = token.clone();
            async move {
                consumer
                    .run_until(
                        move |d: Delivery<contact_center_contracts::Interaction>| {
                            let (effects, attempts) = (effects.clone(), attempts.clone());
                            async move {
                                let key = d.key().to_string();
                                let attempt = {
                                    let mut attempts = attempts.lock().unwrap();
                                    let n = attempts.entry(key.clone()).or_default();
                                    *n += 1;
                                    *n
                                };
                                let slow = effects.lock().unwrap().len() >= 40;
                                let pause = if slow { 40 } else { 5 };
                                tokio::time::sleep(Duration::from_millis(pause)).await;
                                if key.ends_with('0') && attempt == 1 {
                                    return Outcome::retry("the first attempt fails");
                                }
                                *effects.lock().unwrap().entry(key).or_default() += 1;
                                Outcome::Done
                            }
                        },
                        token,
                    )
                    .await
            }
        });
        (stats, token, running)
    };

    // Traffic on the primary: 180 contacts published, some handled.
    let on_primary = Client::connect(&primary.url(), &ns).await.unwrap();
    let (stats, stop, running) = start(&on_primary);
    channels::intake::producer(&on_primary)
        .publish_many(&contacts[..180], &PublishOptions::default())
        .await
        .unwrap();
    let started = Instant::now();
    while effects.lock().unwrap().len() < 40 || stats.snapshot().retried == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            stats.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // 1. Pause: consumers take nothing more and finish what they hold.
    let (code, _) = courier(&primary.url(), &ns, &["pause", "intake"]).await;
    assert_eq!(code, ExitCode::SUCCESS);
    let started = Instant::now();
    loop {
        let state = on_primary
            .channel_state(&channels::intake::SPEC, Some("classifier"))
            .await
            .unwrap();
        if state.total.held == Some(0) && stats.handling() == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{state:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let handled_on_primary = effects.lock().unwrap().len();
    assert!(handled_on_primary < 180, "the drill needs work left over");

    // 2. Export the live channel with what the group handled: a contact
    // that failed and waits for its retry was not handled.
    let (code, exported) = courier(
        &primary.url(),
        &ns,
        &["export", "intake", "--group", "classifier"],
    )
    .await;
    assert_eq!(code, ExitCode::SUCCESS);
    let lines: Vec<serde_json::Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let marked: std::collections::HashSet<&str> = lines
        .iter()
        .filter(|l| l["handled_by"][0] == "classifier")
        .map(|l| l["envelope"]["key"].as_str().unwrap())
        .collect();
    assert_eq!(marked.len(), handled_on_primary);
    let effects_now = effects.lock().unwrap().clone();
    assert!(marked.iter().all(|key| effects_now.contains_key(*key)));

    // 3. The primary dies with its consumer.
    stop.cancel();
    let _ = running.await;
    primary.kill();

    // 4. Restore the standby from the export.
    let file = std::env::temp_dir().join(format!("courier-drill-{}.jsonl", std::process::id()));
    std::fs::write(&file, &exported).unwrap();
    let (code, out) = courier(
        &standby.url(),
        &ns,
        &["import", "intake", file.to_str().unwrap()],
    )
    .await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert!(
        out.contains(&format!(
            "{handled_on_primary} recorded as handled (not queued)"
        )),
        "{out}"
    );

    // 5. Consumers and producers switch to the standby. The producer does
    // not know how far its last batch got, so it sends it again with the
    // rest of the day: what the primary already had is refused as a
    // duplicate, handled or not.
    let on_standby = Client::connect(&standby.url(), &ns).await.unwrap();
    let (stats, stop, running) = start(&on_standby);
    let again = channels::intake::producer(&on_standby)
        .publish_many(&contacts[120..], &PublishOptions::default())
        .await
        .unwrap();
    assert_eq!(again.iter().filter(|p| p.duplicate).count(), 60);
    let started = Instant::now();
    while effects.lock().unwrap().len() < 240 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} handled, {:?}",
            effects.lock().unwrap().len(),
            stats.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Long enough for a stray copy to be handled, were there one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    running.await.unwrap().unwrap();
    let effects = effects.lock().unwrap();
    assert_eq!(effects.len(), 240);
    let twice: Vec<_> = effects.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "handled twice: {twice:?}");
}

/// The CloudEvents 1.0 JSON Schema (vendored from the npm `cloudevents`
/// package, with its license), as the draft it declares (draft-07).
fn cloudevents_schema() -> jsonschema::Validator {
    let path = format!(
        "{}/tests/vendor/cloudevents/v1.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

/// Every event of `text`: pretty-printed objects one after another (what
/// `peek` writes before its summary line) or one per line (`export`).
fn events(text: &str) -> Vec<serde_json::Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<serde_json::Value>()
        .map_while(Result::ok)
        .take_while(serde_json::Value::is_object)
        .collect()
}

#[tokio::test]
async fn cloudevents_export_and_import_keep_id_key_and_payload() {
    let source = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let target = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace();
    let client = Client::connect(&source.url(), &ns).await.unwrap();
    let intake = channels::intake::producer(&client);
    let options = PublishOptions {
        correlation_id: Some("case-7".into()),
        ..PublishOptions::default()
    };
    for n in 0..6 {
        intake
            .publish_with(
                &interaction(n, ["amer", "emea", "apac"][n as usize % 3]),
                &options,
            )
            .await
            .unwrap();
    }
    let schema = cloudevents_schema();
    let valid = |event: &serde_json::Value| {
        let errors: Vec<String> = schema.iter_errors(event).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{event}: {errors:?}");
    };

    // peek: pretty events, valid CloudEvents, the attributes of the mapping.
    let (code, peeked) = courier(
        &source.url(),
        &ns,
        &["peek", "intake", "--format", "cloudevents"],
    )
    .await;
    assert_eq!(code, ExitCode::SUCCESS);
    let shown = events(&peeked);
    assert_eq!(shown.len(), 6, "{peeked}");
    for event in &shown {
        valid(event);
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["source"], "courier://contact_center/intake");
        assert_eq!(event["type"], "contact_center.interaction.v1");
        assert_eq!(event["datacontenttype"], "application/json");
        assert_eq!(
            event["dataschema"],
            "https://courier.dev/schemas/contact_center/interaction.v1.json"
        );
        assert_eq!(event["subject"], event["data"]["interaction_id"]);
        assert_eq!(event["partitionkey"], event["data"]["region"]);
        assert_eq!(event["correlationid"], "case-7");
        assert_eq!(event["courierattempt"], 1);
        assert!(event["traceparent"].as_str().unwrap().starts_with("00-"));
    }

    // export: one event per line, each valid; import into another Redis
    // keeps every id, key and payload.
    let (_, exported) = courier(
        &source.url(),
        &ns,
        &["export", "intake", "--format", "cloudevents"],
    )
    .await;
    let lines: Vec<serde_json::Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    lines.iter().for_each(valid);
    let file = std::env::temp_dir().join(format!("courier-events-{}.jsonl", std::process::id()));
    std::fs::write(&file, &exported).unwrap();
    let path = file.to_str().unwrap();
    let (code, out) = courier(&target.url(), &ns, &["import", "intake", path]).await;
    assert_eq!(
        (code, out.as_str()),
        (
            ExitCode::SUCCESS,
            "imported 6, 0 duplicate(s), 0 rejected into contact_center.intake\n"
        )
    );
    let identity = |events: &[serde_json::Value]| {
        let mut kept: Vec<(String, String, String)> = events
            .iter()
            .map(|e| {
                (
                    e["id"].as_str().unwrap().to_owned(),
                    e["subject"].as_str().unwrap().to_owned(),
                    e["data"].to_string(),
                )
            })
            .collect();
        kept.sort();
        kept
    };
    let (_, again) = courier(
        &target.url(),
        &ns,
        &["export", "intake", "--format", "cloudevents"],
    )
    .await;
    assert_eq!(identity(&events(&again)), identity(&lines));
    let (_, twice) = courier(&target.url(), &ns, &["import", "intake", path]).await;
    assert_eq!(
        twice,
        "imported 0, 6 duplicate(s), 0 rejected into contact_center.intake\n"
    );

    // An event from another producer: no subject, no courier attributes;
    // the key is derived from its data. A base64 event is refused.
    let foreign = json!({
        "specversion": "1.0", "id": "5f0c1d2e-3b4a-4c5d-8e6f-7a8b9c0d1e2f",
        "source": "https://telephony.example/intake",
        "type": "contact_center.interaction.v1",
        "data": serde_json::to_value(interaction(99, "emea")).unwrap()
    });
    valid(&foreign);
    let base64 = json!({
        "specversion": "1.0", "id": "ext-2", "source": "x", "type": "contact_center.interaction.v1",
        "data_base64": "e30="
    });
    // courier message ids are UUIDs, and an import keeps the event's.
    let mut not_uuid = foreign.clone();
    not_uuid["id"] = json!("ext-3");
    std::fs::write(&file, format!("{foreign}\n{base64}\n{not_uuid}\n")).unwrap();
    let (code, out) = courier(&target.url(), &ns, &["import", "intake", path]).await;
    assert_eq!(code, ExitCode::FAILURE);
    assert!(
        out.contains(&format!(
            "{path}:2: not an event courier can import: data_base64"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("{path}:3: not an event courier can import: its attributes make no courier envelope: invalid envelope: /id: \"ext-3\" is not a valid uuid")),
        "{out}"
    );
    assert!(
        out.ends_with("imported 1, 0 duplicate(s), 2 rejected into contact_center.intake\n"),
        "{out}"
    );
    let (_, all) = courier(
        &target.url(),
        &ns,
        &["export", "intake", "--format", "cloudevents"],
    )
    .await;
    let imported = events(&all)
        .into_iter()
        .find(|e| e["id"] == "5f0c1d2e-3b4a-4c5d-8e6f-7a8b9c0d1e2f")
        .expect("the foreign event keeps its id");
    assert_eq!(imported["subject"], "00000000-0000-4000-8000-000000000099");
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn export_and_import_keep_a_list_s_order() {
    let source = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let target = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace();
    let client = Client::connect(&source.url(), &ns).await.unwrap();
    let billing = channels::billing::producer(&client);
    for n in 0..4 {
        billing.publish(&task(n)).await.unwrap();
    }
    let keys = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| {
                let line: serde_json::Value = serde_json::from_str(l).unwrap();
                line["envelope"]["payload"]["summary"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let (_, exported) = courier(&source.url(), &ns, &["export", "billing"]).await;
    assert_eq!(keys(&exported), ["task 0", "task 1", "task 2", "task 3"]);
    let file = std::env::temp_dir().join(format!("courier-list-{}.jsonl", std::process::id()));
    std::fs::write(&file, &exported).unwrap();
    let (code, _) = courier(
        &target.url(),
        &ns,
        &["import", "billing", file.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, ExitCode::SUCCESS);
    let (_, again) = courier(&target.url(), &ns, &["export", "billing"]).await;
    assert_eq!(
        keys(&again),
        keys(&exported),
        "consumers take them in the same order"
    );
    let _ = std::fs::remove_file(file);
}
