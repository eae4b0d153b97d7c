//! The conformance suite in another language: a Python producer and
//! consumer written from `docs/protocol.md` alone (`tests/interop/python/`,
//! redis-py and `jsonschema`) against courier, on every queue transport of
//! the contact-center contracts: a partitioned stream (`intake`), a stream
//! (`evaluations`), a list (`billing`) and a priority queue
//! (`escalations`).
//!
//! Python runs in a virtualenv made once per target folder
//! (`target/interop-venv`, or `$COURIER_PYTHON` to use another
//! interpreter); a machine without Python 3 and its `venv` module fails
//! here with a message that says how to install them.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use contact_center_contracts::channels;
use contact_center_contracts::{
    ClassifiedTask, ClassifiedTaskV2, EvaluationResult, EvaluationResultV2, HumanEscalation,
    HumanEscalationV1, Interaction, InteractionV1,
};
use courier::{
    ChannelSpec, Client, Consumer, Contract, DeadReason, Delivery, DlqFilter, Error, Outcome,
    Producer, PublishOptions, Readable,
};
use courier_suites::{client, quick, uuid, workspace_root, RedisServer, Running};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

// ---- Python -----------------------------------------------------------------

/// The interpreter of the suite's virtualenv, made on first use.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Some(python) = std::env::var_os("COURIER_PYTHON") {
            return PathBuf::from(python);
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"));
        let venv = target.join("interop-venv");
        let python = venv.join("bin").join("python");
        let requirements = python_dir().join("requirements.txt");
        let wanted = std::fs::read_to_string(&requirements).expect("read requirements.txt");
        let marker = venv.join("courier-requirements.txt");
        if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
            return python;
        }
        let run = |program: &Path, args: &[&str]| {
            let status = std::process::Command::new(program)
                .args(args)
                .status()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot run {}: {e}. The interop suite needs Python 3 with venv and \
                         pip (Debian: apt-get install python3 python3-venv)",
                        program.display()
                    )
                });
            assert!(
                status.success(),
                "{} {args:?} failed ({status}). The interop suite needs Python 3 with venv and \
                 pip (Debian: apt-get install python3 python3-venv), and PyPI or a mirror for \
                 tests/interop/python/requirements.txt",
                program.display()
            );
        };
        run(
            Path::new("python3"),
            &[
                "-m",
                "venv",
                "--clear",
                venv.to_str().expect("a UTF-8 path"),
            ],
        );
        run(
            &python,
            &[
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                requirements.to_str().expect("a UTF-8 path"),
            ],
        );
        std::fs::write(&marker, wanted).expect("write the virtualenv's marker");
        python
    })
}

fn python_dir() -> PathBuf {
    workspace_root().join("tests/interop/python")
}

/// Runs `script` with `args` and `input` on stdin; its stdout as JSON
/// lines, and whether it exited 0.
async fn script(script: &str, args: &[&str], input: &str) -> (Vec<Value>, bool, String) {
    let mut child = tokio::process::Command::new(python())
        .arg(python_dir().join(script))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {script}: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} ran for more than a minute"))
        .unwrap();
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let lines = stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{script} printed {line:?}, not JSON ({e}); {stderr}"))
        })
        .collect();
    (lines, output.status.success(), stderr)
}

/// Where the Python side connects: the server and the client's namespace.
fn connection(server: &RedisServer, client: &Client) -> [String; 4] {
    [
        "--redis".to_owned(),
        server.url(),
        "--namespace".to_owned(),
        client.namespace().to_owned(),
    ]
}

/// Publishes `payloads` (with their priorities) from Python; its answers.
async fn python_publishes(
    server: &RedisServer,
    client: &Client,
    spec: &ChannelSpec,
    payloads: &[(Value, Option<u8>)],
) -> Vec<Value> {
    let input: String = payloads
        .iter()
        .map(|(payload, priority)| {
            let mut line = json!({ "payload": payload });
            if let Some(priority) = priority {
                line["priority"] = json!(priority);
            }
            format!("{line}\n")
        })
        .collect();
    let mut args: Vec<String> = connection(server, client).to_vec();
    args.extend(["--channel".to_owned(), spec.qualified_name()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (answers, ok, stderr) = script("produce.py", &args, &input).await;
    assert!(
        ok,
        "produce.py failed on {}: {stderr}",
        spec.qualified_name()
    );
    assert_eq!(answers.len(), payloads.len(), "{stderr}");
    answers
}

/// Reads `count` messages in Python, validating each envelope and payload;
/// what it printed for each.
async fn python_consumes(
    server: &RedisServer,
    client: &Client,
    spec: &ChannelSpec,
    count: usize,
) -> Vec<Value> {
    let mut args: Vec<String> = connection(server, client).to_vec();
    args.extend(
        [
            "--channel",
            &spec.qualified_name(),
            "--group",
            "python",
            "--consumer",
            "python-1",
            "--count",
            &count.to_string(),
            "--timeout-ms",
            "10000",
        ]
        .map(str::to_owned),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (read, ok, stderr) = script("consume.py", &args, "").await;
    assert!(
        ok,
        "consume.py failed on {}: {stderr}",
        spec.qualified_name()
    );
    read
}

// ---- Rust -------------------------------------------------------------------

/// A message of the family `R`, kept as its version and JSON payload after
/// `R` decoded (and so validated) it: what the suite compares.
struct Json<R>(u32, Value, PhantomData<R>);

impl<R: Readable> Readable for Json<R> {
    const SCHEMA: &'static str = R::SCHEMA;
    const VERSIONS: &'static [u32] = R::VERSIONS;

    fn decode(version: u32, payload: &Value) -> Result<Self, Error> {
        R::decode(version, payload)?;
        Ok(Json(version, payload.clone(), PhantomData))
    }
}

/// What a consumer saw of one message.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    id: String,
    key: String,
    version: u32,
    payload: Value,
}

/// Runs a Rust consumer of `spec` until it has handled `count` messages
/// (and dead-lettered `dead`); what it handled, in order.
async fn rust_consumes<R: Readable>(
    client: &Client,
    spec: &'static ChannelSpec,
    count: usize,
    dead: u64,
) -> Vec<Seen> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let consumer: Consumer<Json<R>> = Consumer::untyped(client, spec, "rust").with_options(quick());
    let running = Running::start(consumer, {
        let seen = seen.clone();
        move |delivery: Delivery<Json<R>>| {
            seen.lock().unwrap().push(Seen {
                id: delivery.id().to_owned(),
                key: delivery.key().to_owned(),
                version: delivery.message.0,
                payload: delivery.message.1.clone(),
            });
            std::future::ready(Outcome::Done)
        }
    });
    let finished = running
        .wait(Duration::from_secs(20), |r| {
            r.done as usize >= count && r.dead >= dead
        })
        .await;
    let report = running.stop().await;
    assert!(
        finished,
        "{}: handled {} of {count}, dead {} of {dead}: {report:?}",
        spec.qualified_name(),
        report.done,
        report.dead
    );
    assert_eq!(report.done as usize, count, "{report:?}");
    assert_eq!(report.dead, dead, "{report:?}");
    Arc::try_unwrap(seen).unwrap().into_inner().unwrap()
}

/// Publishes `payloads` from Rust, as their channel's latest version `T`.
async fn rust_publishes<T: Contract>(
    client: &Client,
    spec: &'static ChannelSpec,
    payloads: &[(Value, Option<u8>)],
) -> Vec<(String, bool)> {
    let producer = Producer::<T>::untyped(client, spec);
    let mut published = Vec::new();
    for (payload, priority) in payloads {
        let message: T = serde_json::from_value(payload.clone()).unwrap();
        let options = PublishOptions {
            priority: *priority,
            ..PublishOptions::default()
        };
        let answer = producer.publish_with(&message, &options).await.unwrap();
        published.push((answer.id, answer.duplicate));
    }
    published
}

// ---- Messages -----------------------------------------------------------------

fn interaction(n: u64) -> (Value, Option<u8>) {
    let region = ["amer", "emea", "apac"][(n % 3) as usize];
    let payload = json!({
        "interaction_id": uuid(n), "customer_id": format!("C{n:07}"), "region": region,
        "medium": "chat", "language": "en", "text": format!("Contact number {n}"),
        "received_at": "2026-11-28T09:00:00Z"
    });
    (payload, None)
}

fn evaluation(n: u64) -> (Value, Option<u8>) {
    let payload = json!({
        "task_id": uuid(n), "specialist": "billing-agent", "intent": "billing",
        "resolution": format!("Refunded charge {n}"), "handling_ms": 1000 + n,
        "confidence": 0.5, "tags": ["refund"]
    });
    (payload, None)
}

fn task(n: u64) -> (Value, Option<u8>) {
    let payload = json!({
        "task_id": uuid(1_000 + n), "interaction_id": uuid(n), "customer_id": format!("C{n:07}"),
        "region": "emea", "intent": "billing", "confidence": 0.9,
        "summary": format!("Task for contact {n}")
    });
    (payload, None)
}

fn escalation(n: u64) -> (Value, Option<u8>) {
    let priority = (n % 10) as u8;
    let payload = json!({
        "escalation_id": uuid(2_000 + n), "task_id": uuid(n), "reason": "low_score",
        "priority": priority, "evaluation": {"score": 0.3, "notes": format!("Escalation {n}")}
    });
    (payload, Some(priority))
}

/// Messages `from..to` of `make`.
fn messages(make: fn(u64) -> (Value, Option<u8>), from: u64, to: u64) -> Vec<(Value, Option<u8>)> {
    (from..to).map(make).collect()
}

/// The payloads by idempotency key, for comparing what two sides saw.
fn by_key(seen: &[Seen]) -> BTreeMap<&str, &Value> {
    seen.iter().map(|s| (s.key.as_str(), &s.payload)).collect()
}

// ---- The suite ------------------------------------------------------------------

/// Python publishes on one channel; Rust handles each message once, with
/// the ids, keys and payloads Python reported.
async fn python_to_rust<R: Readable>(
    server: &RedisServer,
    client: &Client,
    spec: &'static ChannelSpec,
    payloads: Vec<(Value, Option<u8>)>,
) {
    let answers = python_publishes(server, client, spec, &payloads).await;
    assert!(
        answers.iter().all(|a| a["outcome"] == "published"),
        "{answers:?}"
    );
    // A resend from Python is a duplicate, with the first id.
    let again = python_publishes(server, client, spec, &payloads).await;
    for (first, second) in answers.iter().zip(&again) {
        assert_eq!(second["outcome"], "duplicate", "{second}");
        assert_eq!(second["id"], first["id"]);
    }
    let seen = rust_consumes::<R>(client, spec, payloads.len(), 0).await;
    let mut expected: Vec<(String, String)> = answers
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_owned(),
                a["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut got: Vec<(String, String)> =
        seen.iter().map(|s| (s.id.clone(), s.key.clone())).collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "{}", spec.qualified_name());
    for (seen, (payload, _)) in by_key(&seen)
        .values()
        .zip(sorted_by_key(&answers, &payloads))
    {
        assert_eq!(*seen, &payload, "{}", spec.qualified_name());
    }
}

/// `payloads` in the order of their keys (as Python reported them).
fn sorted_by_key(answers: &[Value], payloads: &[(Value, Option<u8>)]) -> Vec<(Value, Option<u8>)> {
    let mut keyed: Vec<(&str, &(Value, Option<u8>))> = answers
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .zip(payloads)
        .collect();
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, p)| p.clone()).collect()
}

#[tokio::test]
async fn python_publishes_on_every_transport_and_rust_handles_each_once() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    python_to_rust::<Interaction>(
        &server,
        &client,
        &channels::intake::SPEC,
        messages(interaction, 1, 13),
    )
    .await;
    python_to_rust::<EvaluationResult>(
        &server,
        &client,
        &channels::evaluations::SPEC,
        messages(evaluation, 1, 6),
    )
    .await;
    python_to_rust::<ClassifiedTask>(
        &server,
        &client,
        &channels::billing::SPEC,
        messages(task, 1, 6),
    )
    .await;
    python_to_rust::<HumanEscalation>(
        &server,
        &client,
        &channels::escalations::SPEC,
        messages(escalation, 1, 8),
    )
    .await;
}

/// Rust publishes on one channel; Python reads and validates each envelope
/// and payload, then settles it, and the channel is left empty.
async fn rust_to_python<T: Contract>(
    server: &RedisServer,
    client: &Client,
    spec: &'static ChannelSpec,
    payloads: Vec<(Value, Option<u8>)>,
) {
    let published = rust_publishes::<T>(client, spec, &payloads).await;
    assert!(published.iter().all(|(_, duplicate)| !duplicate));
    let read = python_consumes(server, client, spec, payloads.len()).await;
    assert_eq!(
        read.len(),
        payloads.len(),
        "{}: {read:?}",
        spec.qualified_name()
    );
    let mut ids: Vec<&str> = read.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut expected: Vec<&str> = published.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort_unstable();
    expected.sort_unstable();
    assert_eq!(ids, expected, "{}", spec.qualified_name());
    for r in &read {
        assert_eq!(r["schema"], &*spec.schema, "{r}");
        assert!(
            payloads.iter().any(|(payload, _)| *payload == r["payload"]),
            "{}: Python read a payload Rust did not write: {r}",
            spec.qualified_name()
        );
    }
    if spec.transport == courier::Transport::Priority {
        // Highest priority first.
        let order: Vec<u64> = read
            .iter()
            .map(|r| r["payload"]["priority"].as_u64().unwrap())
            .collect();
        let mut sorted = order.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(order, sorted, "{}", spec.qualified_name());
    }
    let state = client.channel_state(spec, Some("python")).await.unwrap();
    assert_eq!(
        state.total.backlog(),
        0,
        "{}: {:?}",
        spec.qualified_name(),
        state.total
    );
}

#[tokio::test]
async fn rust_publishes_on_every_transport_and_python_reads_valid_envelopes() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    rust_to_python::<InteractionV1>(
        &server,
        &client,
        &channels::intake::SPEC,
        messages(interaction, 1, 13),
    )
    .await;
    rust_to_python::<EvaluationResultV2>(
        &server,
        &client,
        &channels::evaluations::SPEC,
        messages(evaluation, 1, 6),
    )
    .await;
    rust_to_python::<ClassifiedTaskV2>(
        &server,
        &client,
        &channels::billing::SPEC,
        messages(task, 1, 6),
    )
    .await;
    rust_to_python::<HumanEscalationV1>(
        &server,
        &client,
        &channels::escalations::SPEC,
        messages(escalation, 1, 8),
    )
    .await;
}

#[tokio::test]
async fn dedup_holds_across_languages_both_ways() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let spec = &channels::intake::SPEC;
    // Rust first, then Python: Python's publish is a duplicate with Rust's id.
    let rust_first = messages(interaction, 1, 7);
    let rust = rust_publishes::<InteractionV1>(&client, spec, &rust_first).await;
    let python = python_publishes(&server, &client, spec, &rust_first).await;
    for ((id, _), answer) in rust.iter().zip(&python) {
        assert_eq!(answer["outcome"], "duplicate", "{answer}");
        assert_eq!(answer["id"], id.as_str());
    }
    // Python first, then Rust: Rust's publish is a duplicate with Python's id.
    let python_first = messages(interaction, 7, 13);
    let python = python_publishes(&server, &client, spec, &python_first).await;
    let rust = rust_publishes::<InteractionV1>(&client, spec, &python_first).await;
    for ((id, duplicate), answer) in rust.iter().zip(&python) {
        assert!(duplicate, "Rust published {id} again");
        assert_eq!(answer["id"], id.as_str());
    }
    // Twelve messages in all, each handled once.
    let seen = rust_consumes::<Interaction>(&client, spec, 12, 0).await;
    assert_eq!(by_key(&seen).len(), 12);
}

/// Writes one bad message from Python; its answer.
async fn python_writes_bad(
    server: &RedisServer,
    client: &Client,
    spec: &ChannelSpec,
    kind: &str,
) -> Value {
    let mut args: Vec<String> = connection(server, client).to_vec();
    args.extend([
        "--channel".to_owned(),
        spec.qualified_name(),
        "--kind".to_owned(),
        kind.to_owned(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (answers, ok, stderr) = script("produce_bad.py", &args, "").await;
    assert!(ok, "produce_bad.py --kind {kind} failed: {stderr}");
    answers.into_iter().next().expect("one answer")
}

#[tokio::test]
async fn bad_messages_from_python_reach_the_dlq_with_their_reason_and_content() {
    let server = RedisServer::must_start();
    let client = client(&server).await;
    let spec = &channels::intake::SPEC;
    let kinds = [
        "wrong_version",
        "invalid_payload",
        "non_utf8",
        "wrong_field",
    ];
    let mut written = BTreeMap::new();
    for kind in kinds {
        written.insert(kind, python_writes_bad(&server, &client, spec, kind).await);
    }
    // One good message beside them is handled as usual.
    python_publishes(&server, &client, spec, &[interaction(1)]).await;
    rust_consumes::<Interaction>(&client, spec, 1, kinds.len() as u64).await;

    let letters = client.dlq(spec).list(&DlqFilter::default()).await.unwrap();
    assert_eq!(letters.len(), kinds.len(), "{letters:#?}");
    let find = |pred: &dyn Fn(&courier::DeadLetter) -> bool| {
        letters
            .iter()
            .find(|l| pred(l))
            .unwrap_or_else(|| panic!("no such dead letter in {letters:#?}"))
    };

    let wrong_version = find(&|l| l.reason == DeadReason::VersionUnsupported);
    let envelope = wrong_version
        .envelope
        .as_ref()
        .expect("the envelope is kept");
    assert_eq!(envelope["id"], written["wrong_version"]["id"]);
    assert_eq!(envelope["version"], 2);
    assert!(
        wrong_version.error.contains(" v2 "),
        "{}",
        wrong_version.error
    );

    let invalid = find(&|l| l.reason == DeadReason::InvalidPayload && l.envelope.is_some());
    let envelope = invalid.envelope.as_ref().unwrap();
    assert_eq!(envelope["id"], written["invalid_payload"]["id"]);
    assert!(envelope["payload"]["not_in_any_schema"].is_array());
    assert!(
        invalid.error.contains("/not_in_any_schema") && invalid.error.contains("not allowed"),
        "the reason names the field and the rule: {}",
        invalid.error
    );

    let not_text = find(&|l| l.error.contains("not UTF-8"));
    assert_eq!(not_text.reason, DeadReason::InvalidPayload);
    assert!(not_text.escaped);
    assert_eq!(not_text.raw.as_deref(), Some("\\xff\\xfe not json"));

    let no_field = find(&|l| l.error.contains("no envelope field"));
    assert_eq!(no_field.reason, DeadReason::InvalidPayload);
    assert!(
        no_field.error.contains("(its fields: msg)"),
        "{}",
        no_field.error
    );
    assert!(no_field.escaped);
    let fields: Value = serde_json::from_str(no_field.raw.as_deref().unwrap()).unwrap();
    let kept: Value = serde_json::from_str(fields["msg"].as_str().unwrap()).unwrap();
    assert_eq!(
        kept["id"], written["wrong_field"]["id"],
        "the envelope is kept whole"
    );
}
