//! The contact-center copilot on courier: one day of a contact center run
//! through typed agents over Redis, ending in a report that checks the
//! seed's SLAs and accounts for every interaction.
//!
//! Agents, each a consumer and producer from the generated
//! `contact-center-contracts` crate (no key or envelope written by hand):
//! telephony publishes interactions on the region-partitioned intake
//! stream; the classifier routes them to the billing, technical-support and
//! retention queues and learns from the feedback broadcast; specialists
//! resolve them (and sometimes fail, to exercise retries); the evaluator
//! accepts about 65 % automatically and escalates the rest to the human
//! desk's priority queue, whose SLA is watched; outcomes go out on the
//! feedback broadcast.
//!
//! # Layout
//!
//! One module: [`Args`], [`run`] and the [`Report`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use chrono::Utc;
use clap::Parser;
use contact_center_contracts::channels;
use contact_center_contracts::{
    ClassifiedTask, EvaluationResult, FeedbackEvent, HumanEscalation, Interaction,
};
use courier::{
    CancellationToken, ChannelSpec, Client, Consumer, ConsumerOptions, ConsumerReport, Delivery,
    Outcome, PublishOptions, Readable,
};
use serde::Serialize;
use serde_json::json;

/// Run a day of the contact center through courier and report on it.
#[derive(Debug, Clone, Parser)]
#[command(name = "contact-center", version, about)]
pub struct Args {
    /// Interactions in the day (the seed's day is 4,800).
    #[arg(long, default_value_t = 4800)]
    pub interactions: u64,
    /// Simulated seconds per real second: handling times shrink by it.
    #[arg(long, default_value_t = 3600.0)]
    pub time_factor: f64,
    /// Share of specialist attempts that fail and are retried.
    #[arg(long, default_value_t = 0.01)]
    pub fail_rate: f64,
    /// Share of resolutions the evaluator accepts without a human.
    #[arg(long, default_value_t = 0.65)]
    pub automation: f64,
    /// Print only the report.
    #[arg(long)]
    pub quiet: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Share of contacts followed by a corrupt message on intake (malformed
    /// JSON, an unknown version, a foreign schema), all to be dead-lettered.
    #[arg(long, default_value_t = 0.0)]
    pub corrupt: f64,
    /// Abort the classifier halfway through the day and start a
    /// replacement; its unsettled messages are reclaimed after the
    /// visibility timeout (30 s on intake).
    #[arg(long)]
    pub kill_agent: bool,
    /// When the demo runs its own Redis, kill it (SIGKILL) two thirds into
    /// the day and start it again from its append-only file.
    #[arg(long)]
    pub redis_restart: bool,
    /// Give up after this many real seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

/// How the day went.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Interactions published by telephony.
    pub interactions: u64,
    /// Resolved by the evaluator without a human.
    pub resolved_automated: u64,
    /// Escalated and handled by the human desk.
    pub resolved_by_humans: u64,
    /// Dead-lettered anywhere along the way.
    pub dead_lettered: u64,
    /// Interactions not accounted for: must be 0.
    pub lost: u64,
    /// Corrupt messages injected on intake.
    pub corrupt_injected: u64,
    /// Dead letters by reason, across channels.
    pub dead_by_reason: BTreeMap<String, u64>,
    /// Interactions resolved more than once: must be 0.
    pub resolved_twice: u64,
    /// Whether Redis was killed and restarted during the day.
    pub redis_restarted: bool,
    /// Share resolved without a human.
    pub automation_rate: f64,
    /// Per channel: handled, retried, dead-lettered, duplicates skipped.
    pub channels: BTreeMap<String, ChannelFigures>,
    /// Wait on the human-escalation queue, p50 and p99, simulated seconds.
    pub escalation_wait_seconds: (f64, f64),
    /// SLA breaches on the human-escalation queue.
    pub sla_breaches: u64,
    /// Contact to resolution, p50 and p99, simulated seconds.
    pub resolution_seconds: (f64, f64),
    /// Highest depth seen on any specialist queue.
    pub max_queue_depth: u64,
    /// The seed's SLAs, each passed or not.
    pub checks: Vec<(String, bool)>,
    /// Real time the day took.
    pub real_seconds: f64,
}

/// One channel's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChannelFigures {
    /// Messages handled.
    pub handled: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Dead letters.
    pub dead: u64,
    /// Duplicates skipped.
    pub duplicates: u64,
}

/// Counters the agents share.
#[derive(Debug, Default)]
struct Tally {
    automated: AtomicU64,
    human: AtomicU64,
    corrections: AtomicU64,
    escalation_waits: Mutex<Vec<f64>>,
    resolutions: Mutex<Vec<f64>>,
    automated_real: Mutex<Vec<f64>>,
    /// When telephony published each contact, by interaction id.
    published: Mutex<std::collections::HashMap<u128, Instant>>,
    /// How often each interaction was resolved.
    resolved: Mutex<std::collections::HashMap<u128, u32>>,
}

/// Where a real LLM client would go: decides an interaction's intent.
pub trait Classify: Send + Sync + 'static {
    /// The intent (`billing`, `technical_support`, `retention`) and a
    /// confidence.
    fn classify(&self, text: &str) -> (&'static str, f64);
}

/// Deterministic keyword rules.
#[derive(Debug, Default)]
pub struct Keywords;

impl Classify for Keywords {
    fn classify(&self, text: &str) -> (&'static str, f64) {
        let text = text.to_lowercase();
        if ["cancel", "leave", "switch", "competitor"]
            .iter()
            .any(|w| text.contains(w))
        {
            ("retention", 0.9)
        } else if ["invoice", "charge", "bill", "refund"]
            .iter()
            .any(|w| text.contains(w))
        {
            ("billing", 0.92)
        } else {
            ("technical_support", 0.75)
        }
    }
}

const TEXTS: &[&str] = &[
    "I was charged twice on my invoice",
    "The app crashes when I log in",
    "I want to cancel my subscription",
    "Please refund last month's bill",
    "My router keeps dropping the connection",
    "A competitor offers a better price, I will switch",
];

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    values[((values.len() - 1) as f64 * p).round() as usize]
}

/// Runs the day and prints the report (unless `quiet`, the progress too).
pub async fn run(args: Args) -> Result<Report> {
    let (mut server, url) = match std::env::var("REDIS_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            // `always` so that a restart (--redis-restart) loses no
            // acknowledged write.
            let server = courier_testkit::RedisServer::start_with(
                courier_testkit::RedisOptions::default().with_aof("always"),
            )
            .map_err(anyhow::Error::msg)?;
            let url = server.url();
            (Some(server), url)
        }
    };
    let namespace = format!("demo-{}", &uuid::Uuid::new_v4().to_string()[..8]);
    let client = Client::connect(&url, &namespace)
        .await
        .context("connecting to Redis")?;
    let factor = args.time_factor.max(1.0);
    let sim = move |minutes: f64| Duration::from_secs_f64(minutes * 60.0 / factor);
    let tally = Arc::new(Tally::default());
    let token = CancellationToken::new();
    let started = Instant::now();
    let mut agents = Vec::new();
    let options = ConsumerOptions {
        concurrency: 32,
        poll_interval: Duration::from_millis(20),
        block: Duration::from_millis(200),
        ..ConsumerOptions::default()
    };

    // Classifier: intake → the specialist queues.
    let classifier = classifier_agent(&client, Arc::new(Keywords));
    agents.push(spawn(
        channels::intake::consumer(&client, "classifiers").with_options(options.clone()),
        token.clone(),
        classifier.clone(),
    ));

    // Specialists: one pool per queue, simulated handling, some failures.
    for spec in [
        &channels::billing::SPEC,
        &channels::technical_support::SPEC,
        &channels::retention::SPEC,
    ] {
        let evaluations = channels::evaluations::producer(&client);
        let fail_rate = args.fail_rate;
        agents.push(spawn(
            Consumer::<ClassifiedTask>::new(&client, spec, "specialists").with_options(options.clone()),
            token.clone(),
            move |d: Delivery<ClassifiedTask>| {
                let evaluations = evaluations.clone();
                async move {
                    tokio::time::sleep(sim(3.0)).await;
                    if fastrand::f64() < fail_rate {
                        return Outcome::retry("the billing system timed out");
                    }
                    let (task_id, intent) = match &d.message {
                        ClassifiedTask::V1(t) => (t.task_id, serde_json::to_value(t.intent).unwrap_or_default()),
                        ClassifiedTask::V2(t) => (t.task_id, serde_json::to_value(t.intent).unwrap_or_default()),
                    };
                    let result = json!({
                        "task_id": task_id, "specialist": format!("{}-agent", intent.as_str().unwrap_or("specialist")),
                        "intent": intent, "resolution": "Resolved with the customer", "handling_ms": 180_000
                    });
                    let Ok(result) = serde_json::from_value(result) else {
                        return Outcome::fatal("cannot build the evaluation result");
                    };
                    match evaluations.publish_with(&result, &d.follow_up()).await {
                        Ok(_) => Outcome::Done,
                        Err(e) => Outcome::retry(e),
                    }
                }
            },
        ));
    }

    // Evaluator: accept most automatically, escalate the rest.
    {
        let feedback = channels::feedback::producer(&client);
        let escalations = channels::escalations::producer(&client);
        let (tally, automation) = (tally.clone(), args.automation);
        agents.push(spawn(
            channels::evaluations::consumer(&client, "evaluators").with_options(options.clone()),
            token.clone(),
            move |d: Delivery<EvaluationResult>| {
                let (feedback, escalations, tally) =
                    (feedback.clone(), escalations.clone(), tally.clone());
                async move {
                    let EvaluationResult::V1(result) = &d.message;
                    // A stable score per task, uniform over [0, 1).
                    let score = fastrand::Rng::with_seed(result.task_id.as_u128() as u64).f64();
                    if score < automation {
                        let event = json!({
                            "event_id": derived(result.task_id, 2),
                            "task_id": result.task_id, "predicted_intent": result.intent,
                            "outcome": "accepted", "source": "automated"
                        });
                        let Ok(event) = serde_json::from_value(event) else {
                            return Outcome::fatal("feedback");
                        };
                        // A broadcast: at most once, nobody may be listening.
                        let _ = feedback.publish_with(&event, &d.follow_up()).await;
                        tally.automated.fetch_add(1, Ordering::Relaxed);
                        if let Some(real) =
                            record_resolution(&tally, derived(result.task_id, 1), factor)
                        {
                            tally.automated_real.lock().unwrap().push(real);
                        }
                        return Outcome::Done;
                    }
                    let escalation = json!({
                        "escalation_id": derived(result.task_id, 3),
                        "task_id": result.task_id, "reason": "low_score",
                        "priority": (score * 10.0) as u8 % 10,
                        "evaluation": { "score": score, "notes": "below the automation threshold" }
                    });
                    let Ok(escalation) = serde_json::from_value(escalation) else {
                        return Outcome::fatal("escalation");
                    };
                    let options = PublishOptions {
                        priority: Some((score * 10.0) as u8 % 10),
                        ..d.follow_up()
                    };
                    match escalations.publish_with(&escalation, &options).await {
                        Ok(_) => Outcome::Done,
                        Err(e) => Outcome::retry(e),
                    }
                }
            },
        ));
    }

    // Human desk: takes escalations highest priority first.
    {
        let feedback = channels::feedback::producer(&client);
        let tally = tally.clone();
        agents.push(spawn(
            channels::escalations::consumer(&client, "desk").with_options(ConsumerOptions {
                concurrency: 24,
                // A priority queue is polled; poll often, time is compressed.
                block: Duration::from_millis(10),
                ..options.clone()
            }),
            token.clone(),
            move |d: Delivery<HumanEscalation>| {
                let (feedback, tally) = (feedback.clone(), tally.clone());
                async move {
                    if let Ok(created) =
                        chrono::DateTime::parse_from_rfc3339(&d.envelope.created_at)
                    {
                        let waited = (Utc::now() - created.with_timezone(&Utc)).num_milliseconds()
                            as f64
                            / 1000.0;
                        tally.escalation_waits.lock().unwrap().push(waited * factor);
                    }
                    tokio::time::sleep(sim(2.0)).await;
                    let HumanEscalation::V1(escalation) = &d.message;
                    let event = json!({
                        "event_id": escalation.escalation_id, "task_id": escalation.task_id,
                        "predicted_intent": "billing", "outcome": "corrected", "source": "human"
                    });
                    if let Ok(event) =
                        serde_json::from_value::<contact_center_contracts::FeedbackEventV1>(event)
                    {
                        let _ = feedback.publish_with(&event, &d.follow_up()).await;
                    }
                    tally.human.fetch_add(1, Ordering::Relaxed);
                    record_resolution(&tally, derived(escalation.task_id, 1), factor);
                    Outcome::Done
                }
            },
        ));
    }

    // The classifier learns from the feedback broadcast.
    let learning = {
        let subscriber = channels::feedback::subscriber(&client);
        let (tally, token) = (tally.clone(), token.clone());
        tokio::spawn(async move {
            subscriber
                .run_until(
                    move |d: Delivery<FeedbackEvent>| {
                        let tally = tally.clone();
                        async move {
                            let FeedbackEvent::V1(event) = &d.message;
                            if serde_json::to_value(event.outcome).ok() == Some(json!("corrected"))
                            {
                                tally.corrections.fetch_add(1, Ordering::Relaxed);
                            }
                            Outcome::Done
                        }
                    },
                    token,
                )
                .await
        })
    };

    // Telephony: the day's contacts, across regions.
    let intake = channels::intake::producer(&client);
    let regions = ["amer", "emea", "apac"];
    let contacts: Vec<contact_center_contracts::InteractionV1> = (0..args.interactions)
        .map(|n| {
            let medium = ["voice", "chat", "email"][(n % 3) as usize];
            serde_json::from_value(json!({
                "interaction_id": uuid::Uuid::from_u128(0x00c0_0000_0000_4000_8000_0000_0000_0000 | u128::from(n)),
                "customer_id": format!("C{:07}", n % 10_000_000),
                "region": regions[(n % 3) as usize], "medium": medium,
                "text": TEXTS[(n % TEXTS.len() as u64) as usize],
                "received_at": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            }))
        })
        .collect::<Result<_, _>>()?;
    // The day is spread over its compressed length (24 h / time factor),
    // in batches every 50 ms, as calls would arrive.
    let day = Duration::from_secs_f64(86_400.0 / factor);
    let per_tick = ((contacts.len() as f64) * 0.05 / day.as_secs_f64())
        .ceil()
        .max(1.0) as usize;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut injected = 0;
    let mut restarted = false;
    let half = contacts.len() / 2;
    let mut sent = 0;
    for chunk in contacts.chunks(per_tick) {
        tick.tick().await;
        if args.kill_agent && sent < half && sent + chunk.len() >= half {
            // The classifier dies mid-run, as a crash would; a replacement
            // joins the same group.
            agents[0].abort();
            agents[0] = spawn(
                channels::intake::consumer(&client, "classifiers").with_options(options.clone()),
                token.clone(),
                classifier.clone(),
            );
            if !args.quiet {
                eprintln!("  killed the classifier and started a replacement");
            }
        }
        if args.redis_restart
            && sent < 2 * contacts.len() / 3
            && sent + chunk.len() >= 2 * contacts.len() / 3
        {
            match server.as_mut() {
                Some(redis) => {
                    redis.kill();
                    redis.start_again().map_err(anyhow::Error::msg)?;
                    restarted = true;
                    if !args.quiet {
                        eprintln!("  killed Redis and started it again from its append-only file");
                    }
                }
                None => eprintln!(
                    "  --redis-restart needs the demo's own Redis (REDIS_URL is set); skipped"
                ),
            }
        }
        sent += chunk.len();
        for contact in chunk {
            if fastrand::f64() < args.corrupt {
                inject_corrupt(&client, contact, injected).await?;
                injected += 1;
            }
        }
        {
            let mut published = tally.published.lock().unwrap();
            for contact in chunk {
                published.insert(contact.interaction_id.as_u128(), Instant::now());
            }
        }
        intake
            .publish_many(chunk, &PublishOptions::default())
            .await?;
    }
    let produced = contacts.len() as u64;

    // Wait until every contact is resolved or dead-lettered.
    let specs: Vec<&'static ChannelSpec> = vec![
        &channels::intake::SPEC,
        &channels::billing::SPEC,
        &channels::technical_support::SPEC,
        &channels::retention::SPEC,
        &channels::evaluations::SPEC,
        &channels::escalations::SPEC,
    ];
    let mut max_depth = 0;
    let mut last_print = Instant::now();
    let dead_now = |client: Client| async move {
        let mut dead = 0;
        for spec in [
            &channels::intake::SPEC,
            &channels::billing::SPEC,
            &channels::technical_support::SPEC,
            &channels::retention::SPEC,
            &channels::evaluations::SPEC,
            &channels::escalations::SPEC,
        ] {
            dead += client.dlq(spec).len().await.unwrap_or(0);
        }
        dead
    };
    loop {
        let resolved =
            tally.automated.load(Ordering::Relaxed) + tally.human.load(Ordering::Relaxed);
        let dead = dead_now(client.clone()).await;
        for spec in &specs[1..4] {
            let depth: u64 = client
                .query(redis::cmd("LLEN").arg(client.keys(spec, None).inbox(spec.transport)))
                .await
                .unwrap_or(0);
            max_depth = max_depth.max(depth);
        }
        if !args.quiet && last_print.elapsed() >= Duration::from_secs(1) {
            last_print = Instant::now();
            eprintln!(
                "  {resolved:>6} of {produced} resolved, {dead} dead-lettered, {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
        if resolved + dead >= produced + injected
            || started.elapsed() > Duration::from_secs(args.timeout)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    token.cancel();
    let mut figures = BTreeMap::new();
    let mut breaches = 0;
    for (name, agent) in [
        "intake",
        "billing",
        "technical_support",
        "retention",
        "evaluations",
        "escalations",
    ]
    .iter()
    .zip(agents)
    {
        let report = agent.await??;
        if *name == "escalations" {
            breaches = report.sla_breaches;
        }
        figures.insert(
            format!("contact_center.{name}"),
            ChannelFigures {
                handled: report.done,
                retried: report.retried,
                dead: report.dead,
                duplicates: report.duplicates,
            },
        );
    }
    let _ = learning.await;
    let dead_total = dead_now(client.clone()).await;
    let mut dead_by_reason = BTreeMap::new();
    for spec in &specs {
        for letter in client
            .dlq(spec)
            .list(&courier::DlqFilter::default())
            .await?
        {
            *dead_by_reason.entry(letter.reason.to_string()).or_insert(0) += 1;
        }
    }
    // Injected corrupt messages are dead letters too, but no contact.
    let dead_lettered = dead_total.saturating_sub(injected);
    let automated = tally.automated.load(Ordering::Relaxed);
    let human = tally.human.load(Ordering::Relaxed);
    let resolved_unique = tally.resolved.lock().unwrap().len() as u64;
    let resolved_twice = tally
        .resolved
        .lock()
        .unwrap()
        .values()
        .filter(|n| **n > 1)
        .count() as u64;
    let lost = produced.saturating_sub(resolved_unique + dead_lettered);
    let mut waits = tally.escalation_waits.lock().unwrap().clone();
    let mut resolutions = tally.resolutions.lock().unwrap().clone();
    let handled: u64 = figures.values().map(|f| f.handled).sum();
    let retried: u64 = figures.values().map(|f| f.retried).sum();
    let retry_rate = retried as f64 / handled.max(1) as f64;
    let escalation_p99 = percentile(&mut waits, 0.99);
    let resolution_p99 = percentile(&mut resolutions, 0.99);
    let mut automated_real = tally.automated_real.lock().unwrap().clone();
    let automated_p99_real = percentile(&mut automated_real, 0.99);
    let report = Report {
        interactions: produced,
        resolved_automated: automated,
        resolved_by_humans: human,
        dead_lettered,
        lost,
        corrupt_injected: injected,
        dead_by_reason,
        resolved_twice,
        redis_restarted: restarted,
        automation_rate: automated as f64 / (automated + human).max(1) as f64,
        channels: figures,
        escalation_wait_seconds: (percentile(&mut waits, 0.5), escalation_p99),
        sla_breaches: breaches,
        resolution_seconds: (percentile(&mut resolutions, 0.5), resolution_p99),
        max_queue_depth: max_depth,
        checks: vec![
            ("queue depth below 500".into(), max_depth < 500),
            (
                format!("99 % processed within 30 s (p99 {automated_p99_real:.2} s real)"),
                automated_p99_real < 30.0,
            ),
            ("retry rate below 2 %".into(), retry_rate < 0.02),
            (
                format!("escalation wait p99 below 2 min (p99 {escalation_p99:.0} s simulated)"),
                escalation_p99 < 120.0,
            ),
            ("nothing lost".into(), lost == 0),
            ("nothing resolved twice".into(), resolved_twice == 0),
        ],
        real_seconds: started.elapsed().as_secs_f64(),
    };
    print_report(&report, &mut std::io::stdout())?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    drop(server);
    Ok(report)
}

/// Writes a corrupt message straight onto the contact's intake partition,
/// as a broken or foreign producer would: malformed JSON, an envelope of
/// an unknown version, or one of a foreign schema, in turn.
async fn inject_corrupt(
    client: &Client,
    contact: &contact_center_contracts::InteractionV1,
    n: u64,
) -> Result<()> {
    let region = serde_json::to_value(contact.region)?;
    let stream = client
        .keys(&channels::intake::SPEC, region.as_str())
        .stream();
    let envelope = |schema: &str, version: u32| {
        json!({
            "schema": schema, "version": version, "id": uuid::Uuid::new_v4(),
            "key": format!("corrupt-{n}"), "created_at": Utc::now().to_rfc3339(),
            "expires_at": (Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
            "attempt": 1, "producer": "fault-injector", "payload": contact
        })
        .to_string()
    };
    let text = match n % 3 {
        0 => "{\"schema\": \"contact_center.interaction\", \"vers".to_string(),
        1 => envelope("contact_center.interaction", 9),
        _ => envelope("billing.invoice", 1),
    };
    let _: String = client
        .query(redis::cmd("XADD").arg(stream).arg("*").arg("m").arg(text))
        .await?;
    Ok(())
}

/// The classification agent's handler: intake → a specialist queue.
fn classifier_agent(
    client: &Client,
    classifier: Arc<dyn Classify>,
) -> impl Fn(
    Delivery<Interaction>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send>>
       + Clone
       + Send
       + Sync
       + 'static {
    let billing = channels::billing::producer(client);
    let technical = channels::technical_support::producer(client);
    let retention = channels::retention::producer(client);
    move |d: Delivery<Interaction>| {
        let (billing, technical, retention) =
            (billing.clone(), technical.clone(), retention.clone());
        let classifier = classifier.clone();
        Box::pin(async move {
            let Interaction::V1(contact) = &d.message;
            let (intent, confidence) = classifier.classify(&contact.text);
            let task = json!({
                "task_id": derived(contact.interaction_id, 1),
                "interaction_id": contact.interaction_id, "customer_id": contact.customer_id.to_string(),
                "region": contact.region, "intent": intent, "confidence": confidence,
                "summary": contact.text.to_string(), "sentiment": if intent == "retention" { -0.6 } else { 0.1 }
            });
            let task = match serde_json::from_value(task) {
                Ok(task) => task,
                Err(e) => return Outcome::fatal(e),
            };
            let queue = match intent {
                "billing" => &billing,
                "retention" => &retention,
                _ => &technical,
            };
            match queue.publish_with(&task, &d.follow_up()).await {
                Ok(_) => Outcome::Done,
                Err(e) => Outcome::retry(e),
            }
        })
    }
}

/// A stable id derived from another, so a redelivered message derives the
/// same downstream id (and its idempotency key dedupes the publish).
fn derived(id: uuid::Uuid, salt: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(id.as_u128() ^ (salt << 64))
}

/// Records the time from the contact's publishing to its resolution and
/// returns it in real seconds.
fn record_resolution(tally: &Tally, interaction: uuid::Uuid, factor: f64) -> Option<f64> {
    *tally
        .resolved
        .lock()
        .unwrap()
        .entry(interaction.as_u128())
        .or_default() += 1;
    let published = *tally
        .published
        .lock()
        .unwrap()
        .get(&interaction.as_u128())?;
    let seconds = published.elapsed().as_secs_f64();
    tally.resolutions.lock().unwrap().push(seconds * factor);
    Some(seconds)
}

fn spawn<M, F, Fut>(
    consumer: Consumer<M>,
    token: CancellationToken,
    handler: F,
) -> tokio::task::JoinHandle<Result<ConsumerReport, courier::Error>>
where
    M: Readable,
    F: Fn(Delivery<M>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Outcome> + Send + 'static,
{
    tokio::spawn(async move { consumer.run_until(handler, token).await })
}

/// The report as a table.
pub fn print_report(report: &Report, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "\ncontact center day: {} interactions in {:.1} s",
        report.interactions, report.real_seconds
    )?;
    writeln!(
        out,
        "resolved: {} automated, {} by humans ({:.0} % automated); dead-lettered {}; lost = {}",
        report.resolved_automated,
        report.resolved_by_humans,
        report.automation_rate * 100.0,
        report.dead_lettered,
        report.lost
    )?;
    if report.corrupt_injected > 0 || !report.dead_by_reason.is_empty() {
        let reasons: Vec<String> = report
            .dead_by_reason
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        writeln!(
            out,
            "corrupt messages injected: {}; dead letters by reason: {}",
            report.corrupt_injected,
            if reasons.is_empty() {
                "none".to_string()
            } else {
                reasons.join(", ")
            }
        )?;
    }
    writeln!(out, "resolved twice: {}", report.resolved_twice)?;
    writeln!(
        out,
        "\n{:<36} {:>8} {:>8} {:>6} {:>11}",
        "channel", "handled", "retried", "dead", "duplicates"
    )?;
    for (name, f) in &report.channels {
        writeln!(
            out,
            "{name:<36} {:>8} {:>8} {:>6} {:>11}",
            f.handled, f.retried, f.dead, f.duplicates
        )?;
    }
    writeln!(
        out,
        "\nescalation wait p50/p99: {:.0}/{:.0} s simulated; SLA breaches {}",
        report.escalation_wait_seconds.0, report.escalation_wait_seconds.1, report.sla_breaches
    )?;
    writeln!(
        out,
        "contact to resolution p50/p99: {:.0}/{:.0} s simulated; max specialist queue depth {}",
        report.resolution_seconds.0, report.resolution_seconds.1, report.max_queue_depth
    )?;
    writeln!(out, "\nSLA checks:")?;
    for (check, passed) in &report.checks {
        writeln!(out, "  [{}] {check}", if *passed { "pass" } else { "FAIL" })?;
    }
    Ok(())
}
