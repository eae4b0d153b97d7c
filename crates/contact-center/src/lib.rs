//! The contact-center copilot on courier: one day of a contact center run
//! through typed agents over Redis, ending in a report that checks the
//! seed's SLAs, recomputes its economics and accounts for every
//! interaction.
//!
//! Agents, each a consumer and producer from the generated
//! `contact-center-contracts` crate (no key or envelope written by hand):
//! telephony publishes interactions on the region-partitioned intake
//! stream; the classifier routes them to the billing, technical-support and
//! retention queues and learns from the feedback broadcast; specialists
//! resolve them with the model (and sometimes fail, to exercise retries);
//! the evaluator accepts a resolution whose confidence reaches its
//! threshold and escalates the rest to the human desk's priority queue,
//! whose SLA is watched; outcomes go out on the feedback broadcast. Each
//! contact carries a hidden truth (can it be resolved without a human?,
//! see [`model`]); the classifier's confidence is noisy evidence of it, a
//! contact automated wrongly comes back as a human correction on the
//! broadcast, and the report counts what happened.
//!
//! # Layout
//!
//! - `lib.rs`: [`Args`] and [`run`], which wires the agents, drives the day
//!   with its faults and builds the [`Report`].
//! - [`agents`]: the agents' handlers, the customers, and the
//!   [`agents::Classify`] trait.
//! - [`model`]: the simulated world (each contact's hidden truth) and
//!   language model (confidence, resolutions, token counts).
//! - [`stages`]: per-channel timing, backlog sampling and progress bars.
//! - [`report`]: the report, the SLA checks and the seed's economics beside
//!   the run's.
//! - [`capacity`]: the model's shared rate limit against the day's demand.
//! - [`scenarios`]: `--scenarios`, the seed's three cases side by side.
//! - [`html`]: `--html`, the report with SVG charts.
//! - [`soak`]: `cargo xtask soak`, day after day with random faults, and
//!   the checks for losses, duplicates and leaks.

pub mod agents;
pub mod capacity;
pub mod html;
pub mod model;
pub mod report;
pub mod scenarios;
pub mod soak;
pub mod stages;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use chrono::{SubsecRound as _, Utc};
use clap::Parser;
use contact_center_contracts::channels;
use contact_center_contracts::interaction::v1::{InteractionV1Medium, InteractionV1Text};
use contact_center_contracts::{CustomerId, InteractionV1, Region};
use courier::{
    CancellationToken, ChannelSpec, Client, Consumer, ConsumerOptions, Handler, PublishOptions,
    Readable, Scaler, ScalerConfig, ScalerReport,
};
use serde_json::json;

pub use report::{ChannelFigures, Costs, Economics, Latency, Lines, Report, Volumes};

use agents::{Classifier, Customers, Evaluator, Human, Learner, Specialist, Tally};
use capacity::Capacity;
use model::{Model, World};
use stages::Stages;

/// Run a day of the contact center through courier and report on it.
#[derive(Debug, Clone, Parser)]
#[command(name = "contact-center", version, about)]
pub struct Args {
    /// Interactions in the day (the seed's day is 4,800).
    #[arg(long, default_value_t = 4800)]
    pub interactions: u64,
    /// Simulated seconds per real second: the day and every handling time
    /// shrink by it (3,600: a simulated hour per real second).
    #[arg(long, default_value_t = 3600.0)]
    pub time_factor: f64,
    /// Share of specialist attempts that fail and are retried.
    #[arg(long, default_value_t = 0.01)]
    pub fail_rate: f64,
    /// Share of contacts that can be resolved without a human: each
    /// contact's hidden truth is drawn with it (the seed's 65 %; its
    /// sensitivity analysis models 50 %).
    #[arg(long, default_value_t = 0.65)]
    pub resolvable: f64,
    /// The confidence at or above which the evaluator accepts a
    /// resolution without a human.
    #[arg(long, default_value_t = 0.7)]
    pub threshold: f64,
    /// Varies each contact's hidden truth and evidence between runs (0:
    /// the same day every time).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The economics' inputs, each defaulting to the seed's value.
    #[command(flatten)]
    pub costs: Costs,
    /// Print only the report: no progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write the report with charts (queue depth over time, latency
    /// distributions) as one self-contained HTML file.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Share of contacts followed by a corrupt message on intake (malformed
    /// JSON, an unknown version, a foreign schema), all to be dead-lettered.
    #[arg(long, default_value_t = 0.0)]
    pub corrupt: f64,
    /// Calls a second the shared `llm` rate limit allows (intake and
    /// evaluations); default: the contract's, or what the day's peak needs
    /// if that is more (the report says which).
    #[arg(long)]
    pub llm_capacity: Option<f64>,
    /// Run the seed's three cases (its day of 4,800, 7,200 contacts,
    /// automation at 50 %) one after another and print them side by side.
    #[arg(long)]
    pub scenarios: bool,
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
    /// Run on a Redis Cluster: the seed nodes in `REDIS_URL`
    /// (comma-separated), or else a local one the demo starts (three
    /// masters, three replicas).
    #[arg(long)]
    pub cluster: bool,
}

/// The consumed channels, in pipeline order, with their agents' groups.
const STAGES: &[(&ChannelSpec, &str)] = &[
    (&channels::intake::SPEC, "classifiers"),
    (&channels::billing::SPEC, "specialists"),
    (&channels::technical_support::SPEC, "specialists"),
    (&channels::retention::SPEC, "specialists"),
    (&channels::evaluations::SPEC, "evaluators"),
    (&channels::escalations::SPEC, "desk"),
];

/// Runs the day, prints the report (and, unless `quiet`, progress bars
/// while it runs), writes it as JSON and HTML where asked, and returns it.
pub async fn run(args: Args) -> Result<Report> {
    let (report, stages) = day(&args).await?;
    report::print_report(&report, &mut std::io::stdout())?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, html::page(&report, &stages))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(report)
}

/// Runs one day on its own Redis (or `REDIS_URL`) and returns its report
/// with the stages' samples.
pub async fn day(args: &Args) -> Result<(Report, Arc<Stages>)> {
    // The demo's own cluster, kept running until the day ends.
    let mut own_cluster = None;
    let (mut server, url) = match std::env::var("REDIS_URL") {
        Ok(url) => (None, url),
        Err(_) if args.cluster => {
            let cluster = courier_testkit::RedisCluster::start().map_err(anyhow::Error::msg)?;
            let url = cluster.url();
            own_cluster = Some(cluster);
            (None, url)
        }
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
    let env = Env {
        url: &url,
        namespace: &namespace,
        server: server.as_mut(),
        first_contact: 0,
        network_cut: None,
    };
    let day = day_in(args, env).await;
    drop(server);
    drop(own_cluster);
    day
}

/// Where a day runs, and the faults only a caller can cause.
#[derive(Debug)]
pub struct Env<'a> {
    /// The Redis URL (seed URLs on a cluster).
    pub url: &'a str,
    /// The namespace of every key.
    pub namespace: &'a str,
    /// The Redis the day may kill and restart (`--redis-restart`).
    pub server: Option<&'a mut courier_testkit::RedisServer>,
    /// The number of the day's first contact: days that share a namespace
    /// must not share contacts, which the dedup window would refuse.
    pub first_contact: u64,
    /// Cut the network through this proxy for this long at this share of
    /// the day.
    pub network_cut: Option<(&'a courier_testkit::FaultProxy, f64, Duration)>,
}

/// Runs one day in `env` and returns its report with the stages' samples.
pub async fn day_in(args: &Args, env: Env<'_>) -> Result<(Report, Arc<Stages>)> {
    let Env {
        url,
        namespace,
        mut server,
        first_contact,
        network_cut,
    } = env;
    let options = courier::ConnectOptions {
        cluster: args.cluster,
        ..courier::ConnectOptions::default()
    };
    let client = Client::connect_with(url, namespace, &options)
        .await
        .context("connecting to Redis")?;
    // So that an operator can watch the day: `courier ui` or `status`.
    if !args.quiet {
        eprintln!(
            "redis {url}, namespace {namespace}: watch with `courier --redis {url} --namespace {namespace}{} ui`",
            if args.cluster { " --cluster" } else { "" }
        );
    }
    // Dead letters of earlier days in the namespace are not this day's.
    let dead_before = dead_letters(&client).await?;
    let factor = args.time_factor.max(1.0);
    let sim = move |minutes: f64| Duration::from_secs_f64(minutes * 60.0 / factor);
    let tally = Arc::new(Tally::default());
    let world = Arc::new(World::new(args.resolvable, args.seed));
    let model = Arc::new(Model::new(world.clone()));
    let stages = Arc::new(Stages::new(STAGES, args.quiet));
    let token = CancellationToken::new();
    let started = Instant::now();
    // The day's arrivals, in batches every 50 ms, planned before it starts
    // so that the model's capacity can be sized to its peak.
    let day = Duration::from_secs_f64(86_400.0 / factor);
    let ticks = (day.as_secs_f64() / 0.05).ceil().max(1.0) as usize;
    let batches = arrivals(args.interactions as usize, ticks);
    let capacity = Capacity::plan(&channels::intake::SPEC, &batches, 0.05, args.llm_capacity);
    if let Some(c) = capacity.as_ref().filter(|c| c.raised()) {
        stages.say(
            args.quiet,
            &format!(
                "  the day's peak needs {:.0} {} calls/s, over the declared {:.0}: running with {:.0}",
                c.needed, c.name, c.declared, c.used
            ),
        );
    }
    let options = ConsumerOptions {
        concurrency: 8,
        poll_interval: Duration::from_millis(20),
        block: Duration::from_millis(200),
        ..ConsumerOptions::default()
    };
    // Intake and evaluations call the model, through its shared limit.
    let model_options = ConsumerOptions {
        rate_limit: capacity.as_ref().map(|c| courier::Rate {
            name: c.name.clone(),
            per_second: c.used,
            burst: c.burst,
        }),
        ..options.clone()
    };
    let pools = Pools::new(factor);

    // One pool of agents per stage, in STAGES order, each sized by its
    // scaler.
    let start_classifier = || {
        let (client, model, tally) = (client.clone(), model.clone(), tally.clone());
        let stage = stages.of(&channels::intake::SPEC);
        scale(
            channels::intake::consumer(&client, "classifiers").with_options(model_options.clone()),
            pools.config(3, 40),
            &stage.clone(),
            token.clone(),
            move || stage.timed(Classifier::new(&client, model.clone(), tally.clone())),
        )
    };
    let mut agents = vec![start_classifier()];
    let specialists = [
        channels::billing::consumer(&client, "specialists"),
        channels::technical_support::consumer(&client, "specialists"),
        channels::retention::consumer(&client, "specialists"),
    ];
    for consumer in specialists {
        let stage = stages.of(consumer.spec());
        let (client, model) = (client.clone(), model.clone());
        let (handling, fail_rate) = (sim(3.0), args.fail_rate);
        agents.push(scale(
            consumer.with_options(options.clone()),
            pools.config(6, 40),
            &stage.clone(),
            token.clone(),
            move || stage.timed(Specialist::new(&client, model.clone(), handling, fail_rate)),
        ));
    }
    agents.push({
        let stage = stages.of(&channels::evaluations::SPEC);
        let (client, tally, threshold) = (client.clone(), tally.clone(), args.threshold);
        scale(
            channels::evaluations::consumer(&client, "evaluators")
                .with_options(model_options.clone()),
            pools.config(6, 40),
            &stage.clone(),
            token.clone(),
            move || stage.timed(Evaluator::new(&client, tally.clone(), threshold)),
        )
    });
    agents.push({
        let stage = stages.of(&channels::escalations::SPEC);
        let (client, tally, handling) = (client.clone(), tally.clone(), sim(2.0));
        scale(
            channels::escalations::consumer(&client, "desk").with_options(ConsumerOptions {
                // A priority queue is polled; poll often, time is compressed.
                block: Duration::from_millis(10),
                ..options.clone()
            }),
            pools.config(6, 20),
            &stage.clone(),
            token.clone(),
            move || stage.timed(Human::new(&client, tally.clone(), handling)),
        )
    });
    let learning = {
        let subscriber = channels::feedback::subscriber(&client);
        let (learner, token) = (Learner::new(tally.clone()), token.clone());
        tokio::spawn(async move { subscriber.run_until(learner, token).await })
    };
    // The customers hear the same broadcast: a wrong automation comes back.
    let customers = {
        let subscriber = channels::feedback::subscriber(&client);
        let customers = Customers::new(&client, world.clone(), tally.clone());
        let token = token.clone();
        tokio::spawn(async move { subscriber.run_until(customers, token).await })
    };
    // Backlogs are sampled every 100 ms, for the bars, the report and the
    // charts.
    let sampler = {
        let (stages, client, token) = (stages.clone(), client.clone(), token.clone());
        tokio::spawn(async move {
            while !token.is_cancelled() {
                stages.sample(&client, started).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // Telephony: the day's contacts, across regions.
    let intake = channels::intake::producer(&client);
    let contacts: Vec<InteractionV1> = (first_contact..first_contact + args.interactions)
        .map(|n| {
            Ok(InteractionV1 {
                interaction_id: uuid::Uuid::from_u128(
                    0x00c0_0000_0000_4000_8000_0000_0000_0000 | u128::from(n),
                ),
                customer_id: CustomerId::new(format!("C{:07}", n % 10_000_000))?,
                region: [Region::Amer, Region::Emea, Region::Apac][(n % 3) as usize],
                medium: [
                    InteractionV1Medium::Voice,
                    InteractionV1Medium::Chat,
                    InteractionV1Medium::Email,
                ][(n % 3) as usize],
                language: None,
                text: InteractionV1Text::new(
                    agents::TEXTS[(n % agents::TEXTS.len() as u64) as usize],
                )?,
                received_at: Utc::now().trunc_subsecs(3),
            })
        })
        .collect::<Result<_, courier::FieldError>>()?;
    // The day is spread over its compressed length (24 h / time factor),
    // in batches every 50 ms, as calls would arrive: fewer at night, most
    // in the late morning and the afternoon; the peak is 1.5 × the day's
    // mean.
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let (mut injected, mut restarted, mut killed, mut sent) = (0, false, false, 0);
    let mut cut = false;
    let crossed = |sent: usize, batch: usize, share: f64| {
        let mark = (contacts.len() as f64 * share) as usize;
        sent < mark.max(1) && sent + batch >= mark.max(1)
    };
    for chunk in batches.iter().map(|r| &contacts[r.clone()]) {
        tick.tick().await;
        if args.kill_agent && crossed(sent, chunk.len(), 0.5) {
            // The classifier dies mid-run, as a crash would; a replacement
            // joins the same group.
            agents[0].abort();
            agents[0] = start_classifier();
            killed = true;
            stages.say(
                args.quiet,
                "  killed the classifier and started a replacement",
            );
        }
        if let Some((proxy, share, length)) = network_cut {
            if crossed(sent, chunk.len(), share) {
                proxy.cut_for(length);
                cut = true;
                stages.say(args.quiet, &format!("  cut the network for {length:?}"));
            }
        }
        if args.redis_restart && crossed(sent, chunk.len(), 2.0 / 3.0) {
            match server.as_mut() {
                Some(redis) => {
                    redis.kill();
                    redis.start_again().map_err(anyhow::Error::msg)?;
                    restarted = true;
                    stages.say(
                        args.quiet,
                        "  killed Redis and started it again from its append-only file",
                    );
                }
                None => stages.say(
                    false,
                    "  --redis-restart needs the demo's own single Redis (not REDIS_URL, not --cluster); skipped",
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
    loop {
        let resolved =
            tally.automated.load(Ordering::Relaxed) + tally.human.load(Ordering::Relaxed);
        let mut dead = 0;
        for (spec, _) in STAGES {
            dead += client.dlq(spec).len().await.unwrap_or(0);
        }
        let dead = dead.saturating_sub(dead_before.values().sum());
        if resolved + dead >= produced + injected
            || started.elapsed() > Duration::from_secs(args.timeout)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    token.cancel();
    let _ = sampler.await;
    stages.finish();

    let mut dead = dead_letters(&client).await?;
    for (channel_reason, before) in &dead_before {
        if let Some(n) = dead.get_mut(channel_reason) {
            *n = n.saturating_sub(*before);
        }
    }
    let mut figures = BTreeMap::new();
    let mut breaches = 0;
    let max_depths = stages.peaks(|s| &s.depths);
    let peak_instances = stages.peaks(|s| &s.instances);
    let peak_memory = stages.peaks(|s| &s.memory);
    for (i, (agent, stage)) in agents.into_iter().zip(&stages.stages).enumerate() {
        let pool: ScalerReport = agent.await??;
        let report = pool.consumers;
        if stage.spec.name == channels::escalations::SPEC.name {
            breaches = report.sla_breaches;
        }
        let name = stage.spec.qualified_name();
        // Handled and dead from the stage and the DLQ rather than the
        // consumer's report, which a killed agent takes with it.
        let dead_by_reason: BTreeMap<String, u64> = dead
            .iter()
            .filter(|((channel, _), _)| *channel == name)
            .map(|((_, reason), n)| (reason.clone(), *n))
            .collect();
        figures.insert(
            name.clone(),
            ChannelFigures {
                handled: stage.done.load(Ordering::Relaxed),
                retried: report.retried,
                retry_rate: report.retried as f64
                    / stage.done.load(Ordering::Relaxed).max(1) as f64,
                dead: dead_by_reason.values().sum(),
                dead_by_reason,
                duplicates: report.duplicates,
                max_depth: max_depths[i],
                peak_instances: peak_instances[i],
                scaling_decisions: pool.decisions.len(),
                peak_memory_bytes: peak_memory[i],
                queued: Latency::of(&stage.queued.lock().unwrap(), factor),
                processing: Latency::of(&stage.processing.lock().unwrap(), factor),
            },
        );
    }
    let _ = learning.await;
    let _ = customers.await;
    let mut dead_by_reason = BTreeMap::new();
    for ((_, reason), n) in &dead {
        *dead_by_reason.entry(reason.clone()).or_insert(0) += n;
    }
    // Injected corrupt messages are dead letters too, but no contact.
    let dead_lettered = dead.values().sum::<u64>().saturating_sub(injected);
    let automated = tally.automated.load(Ordering::Relaxed);
    let human = tally.human.load(Ordering::Relaxed);
    let (resolved_unique, resolved_twice) = {
        let resolved = tally.resolved.lock().unwrap();
        (
            resolved.len() as u64,
            resolved.values().filter(|n| **n > 1).count() as u64,
        )
    };
    let lost = produced.saturating_sub(resolved_unique + dead_lettered);
    let escalation_wait = figures[&channels::escalations::SPEC.qualified_name()].queued;
    let checks = report::checks(&figures, &escalation_wait, lost, resolved_twice);
    let automated_resolution = Latency::of(&tally.automated_resolutions.lock().unwrap(), factor);
    let automation_rate = automated as f64 / (automated + human).max(1) as f64;
    let automated_wrongly = tally.automated_wrongly.load(Ordering::Relaxed);
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
        agent_killed: killed,
        automation_rate,
        time_factor: factor,
        channels: figures,
        escalation_wait,
        sla_breaches: breaches,
        resolution: Latency::of(&tally.resolutions.lock().unwrap(), factor),
        automated_resolution,
        feedback: tally
            .feedback
            .lock()
            .unwrap()
            .iter()
            .map(|(intent, heard)| (intent.clone(), *heard))
            .collect(),
        automated_wrongly,
        tokens: model.tokens(),
        economics: Economics::new(
            Volumes {
                contacts: produced,
                automated,
                automated_wrongly,
                by_humans: human,
                tokens: model.tokens(),
            },
            args.costs,
        ),
        checks,
        real_seconds: started.elapsed().as_secs_f64(),
        capacity,
        peak_used_memory: stages.peak_used_memory(),
        network_cut: cut,
    };
    Ok((report, stages))
}

/// Splits `contacts` over `ticks` by a day's arrival curve: a floor of
/// night-time calls under a late-morning and an afternoon peak. Returns
/// each tick's range of contacts (some empty), covering all of them.
fn arrivals(contacts: usize, ticks: usize) -> Vec<std::ops::Range<usize>> {
    let weight = |tick: usize| {
        let hour = 24.0 * (tick as f64 + 0.5) / ticks as f64;
        1.0 + (-((hour - 11.0) / 3.5).powi(2)).exp() + 0.7 * (-((hour - 15.5) / 3.5).powi(2)).exp()
    };
    let total: f64 = (0..ticks).map(weight).sum();
    let mut cumulative = 0.0;
    let mut start = 0;
    (0..ticks)
        .map(|tick| {
            cumulative += weight(tick);
            let end = if tick + 1 == ticks {
                contacts
            } else {
                ((cumulative / total) * contacts as f64).round() as usize
            };
            let range = start..end.max(start);
            start = range.end;
            range
        })
        .collect()
}

/// Dead letters by channel (qualified name) and reason, over every
/// consumed channel.
async fn dead_letters(client: &Client) -> Result<BTreeMap<(String, String), u64>> {
    let mut dead = BTreeMap::new();
    for (spec, _) in STAGES {
        let dlq = client.dlq(spec);
        if dlq.len().await? == 0 {
            continue;
        }
        for letter in dlq.list(&courier::DlqFilter::default()).await? {
            *dead
                .entry((spec.qualified_name(), letter.reason.to_string()))
                .or_insert(0) += 1;
        }
    }
    Ok(dead)
}

/// Writes a corrupt message straight onto the contact's intake partition,
/// as a broken or foreign producer would: malformed JSON, an envelope of
/// an unknown version, or one of a foreign schema, in turn.
async fn inject_corrupt(client: &Client, contact: &InteractionV1, n: u64) -> Result<()> {
    let region = contact.region.to_string();
    let stream = client.keys(&channels::intake::SPEC, Some(&region)).stream();
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

/// How the stages' pools are sized, in the demo's compressed time: read
/// every 6 simulated minutes, grow at most every 12, shrink at most every
/// simulated hour.
struct Pools {
    factor: f64,
}

impl Pools {
    fn new(factor: f64) -> Pools {
        Pools { factor }
    }

    fn simulated(&self, minutes: f64) -> Duration {
        Duration::from_secs_f64(minutes * 60.0 / self.factor).max(Duration::from_millis(10))
    }

    /// Up to `max` instances, growing past `per_instance` messages waiting
    /// each or handlers busy 80 % of the time.
    fn config(&self, max: usize, per_instance: u64) -> ScalerConfig {
        ScalerConfig {
            min: 1,
            max,
            backlog_per_instance: per_instance,
            max_age: None,
            busy_high: 0.8,
            busy_low: 0.3,
            grow_cooldown: self.simulated(12.0),
            shrink_cooldown: self.simulated(60.0),
            interval: self.simulated(6.0),
        }
    }
}

/// Runs `consumer`'s pool for a stage, sized by `config`, each instance
/// with a handler from `handler`; the stage watches the pool.
fn scale<M, F, H>(
    consumer: Consumer<M>,
    config: ScalerConfig,
    stage: &Arc<stages::Stage>,
    token: CancellationToken,
    handler: F,
) -> tokio::task::JoinHandle<Result<ScalerReport, courier::Error>>
where
    M: Readable,
    F: Fn() -> H + Send + 'static,
    H: Handler<M>,
{
    let scaler = Scaler::new(consumer, config);
    *stage.pool.lock().unwrap() = Some(scaler.handle());
    tokio::spawn(async move { scaler.run_until(handler, token).await })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_cover_every_contact_once_and_peak_by_day() {
        let batches = arrivals(4800, 480);
        assert_eq!(batches.len(), 480);
        assert_eq!(batches.first().unwrap().start, 0);
        assert_eq!(batches.last().unwrap().end, 4800);
        assert!(batches.windows(2).all(|w| w[0].end == w[1].start));
        let night = batches[0].len() + batches[1].len();
        let noon = batches[220].len() + batches[221].len();
        assert!(2 * noon > 3 * night, "noon {noon}, night {night}");
    }
}
