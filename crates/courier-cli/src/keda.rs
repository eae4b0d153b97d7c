//! `courier keda`: KEDA manifests that scale each consumer role's
//! Deployment on the same signals as the runtime's scaler, written from the
//! contracts, one `ScaledObject` (and, for Redis triggers, one
//! `TriggerAuthentication`) per role.
//!
//! Per channel the role consumes, by transport:
//!
//! - **stream**: the `redis-streams` scaler (`redis-cluster-streams` with
//!   `--cluster`) on the hash-tagged stream key of each partition and the
//!   role's consumer group, in lag mode (`lagCount`: entries not yet
//!   delivered to the group, Redis 7+) or, with `--mode pending`, pending
//!   mode (`pendingEntriesCount`: delivered, not acknowledged);
//! - **list**: the `redis` list-length scaler (`redis-cluster` with
//!   `--cluster`) on the queue key;
//! - **priority**: a sorted set, which KEDA's Redis scalers cannot read: a
//!   `prometheus` trigger on courier's `courier_channel_depth` gauge;
//! - **pubsub**: nothing to scale on (a broadcast holds no backlog).
//!
//! The Redis triggers authenticate as the role's ACL user (`courier acl`):
//! its name and password come from a Kubernetes Secret, `courier-<role>`
//! by default, with the keys `username` and `password` (with `--tls`, also
//! `tls`, holding `enable`, and `ca`, the CA certificate). Kubernetes names
//! take no `_`: a role `human_desk` is written `human-desk` in the
//! ScaledObject's, the Deployment's and the Secret's names. The YAML is written by hand, every string double-quoted: a
//! few fixed shapes need no YAML library.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Result};
use courier::keys::ChannelKeys;
use courier::{ChannelSpec, Transport};

use crate::Context;

/// `courier keda` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Redis address(es) as KEDA reaches them, `host:port`; with
    /// `--cluster`, the nodes, comma-separated.
    #[arg(long, default_value = "redis:6379")]
    pub address: String,
    /// Stream triggers: `lag` (entries not yet delivered to the group;
    /// Redis 7+) or `pending` (delivered, not acknowledged).
    #[arg(long, default_value = "lag")]
    pub mode: String,
    /// Backlog one replica should have to itself (the trigger's average
    /// target).
    #[arg(long, default_value_t = 100)]
    pub target: u64,
    /// Fewest replicas. Keep at least 1: a running consumer also moves due
    /// retries back to the queue and returns what dead consumers held.
    #[arg(long, default_value_t = 1)]
    pub min: u32,
    /// Most replicas; on a role that consumes only partitioned channels,
    /// at most the partition count.
    #[arg(long, default_value_t = 10)]
    pub max: u32,
    /// The Deployment of role `r` is named `<prefix>r` (`_` written `-`).
    #[arg(long, default_value = "")]
    pub deployment_prefix: String,
    /// A role's consumer group when it is not the role's name,
    /// `role=group`; repeat per role.
    #[arg(long = "group", value_name = "ROLE=GROUP")]
    pub groups: Vec<String>,
    /// The Secret holding a role's ACL user is `<secret-prefix><role>`
    /// (`_` written `-`).
    #[arg(long, default_value = "courier-")]
    pub secret_prefix: String,
    /// Prometheus, for priority channels' triggers.
    #[arg(long, default_value = "http://prometheus:9090")]
    pub prometheus: String,
    /// Connect to Redis with TLS (the Secret then also holds `tls`, set to
    /// `enable`, and `ca`).
    #[arg(long)]
    pub tls: bool,
    /// Only this role.
    #[arg(long)]
    pub role: Option<String>,
}

/// Writes the manifests of every consumer role (or `--role`'s).
pub fn run(ctx: &Context, args: &Args, out: &mut dyn Write) -> Result<ExitCode> {
    if !matches!(args.mode.as_str(), "lag" | "pending") {
        bail!("--mode {:?}: expected lag or pending", args.mode);
    }
    if args.min > args.max {
        bail!("--min {} is above --max {}", args.min, args.max);
    }
    let mut groups = BTreeMap::new();
    for pair in &args.groups {
        let Some((role, group)) = pair.split_once('=') else {
            bail!("--group {pair:?}: expected ROLE=GROUP");
        };
        groups.insert(role.to_string(), group.to_string());
    }
    let mut roles: BTreeMap<String, Vec<&'static ChannelSpec>> = BTreeMap::new();
    for spec in ctx.channels()? {
        for role in spec.consumers.iter() {
            roles.entry(role.to_string()).or_default().push(spec);
        }
    }
    if let Some(only) = &args.role {
        if !roles.contains_key(only) {
            bail!(
                "no consumer role {only:?} in {}; roles: {}",
                ctx.cli.schemas.display(),
                roles.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        roles.retain(|role, _| role == only);
    }
    let mut yaml = format!(
        "# KEDA manifests for courier namespace {:?}, written from the contracts by `courier keda`\n",
        ctx.cli.namespace,
    );
    for (role, specs) in &roles {
        let group = groups.get(role).map_or(role.as_str(), String::as_str);
        yaml.push_str(&manifests(ctx, args, role, group, specs));
    }
    out.write_all(yaml.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// A role's `TriggerAuthentication` (when it has Redis triggers) and
/// `ScaledObject`.
fn manifests(
    ctx: &Context,
    args: &Args,
    role: &str,
    group: &str,
    specs: &[&'static ChannelSpec],
) -> String {
    // Kubernetes names take no `_`: roles are written with `-`.
    let kube = role.replace('_', "-");
    let name = format!("courier-{kube}");
    let auth = format!("{name}-redis");
    let mut triggers = String::new();
    let mut redis_triggers = 0;
    let mut notes = Vec::new();
    for spec in specs {
        let partitions = courier::partition::all(spec);
        for partition in &partitions {
            let keys = ChannelKeys::new(&ctx.cli.namespace, spec, partition.as_deref());
            let trigger = match spec.transport {
                Transport::Stream => Some(stream_trigger(ctx, args, &keys, group)),
                Transport::List => Some(list_trigger(ctx, args, &keys)),
                Transport::Priority => None,
                Transport::Pubsub => None,
            };
            if let Some(trigger) = trigger {
                redis_triggers += 1;
                triggers.push_str(&trigger);
                let _ = writeln!(
                    triggers,
                    "      authenticationRef:\n        name: {}",
                    q(&auth)
                );
            }
        }
        match spec.transport {
            Transport::Priority => {
                let _ = write!(
                    triggers,
                    "    - type: \"prometheus\"\n      metadata:\n        serverAddress: {}\n        query: {}\n        threshold: {}\n        activationThreshold: \"0\"\n",
                    q(&args.prometheus),
                    // Every replica exports the same gauge: one series
                    // per partition (their max), then the partitions'
                    // sum, so that more replicas do not read as more work.
                    q(&format!(
                        "sum(max by (partition) (courier_channel_depth{{channel=\"{}\"}}))",
                        spec.qualified_name()
                    )),
                    q(&args.target.to_string())
                );
            }
            Transport::Pubsub => notes.push(format!(
                "# {}: a broadcast (pubsub) holds no backlog to scale on",
                spec.qualified_name()
            )),
            _ => {}
        }
    }
    // Members share a partitioned channel's partitions out, so replicas
    // beyond the count would be given none.
    let ceiling = specs
        .iter()
        .filter(|spec| spec.transport != Transport::Pubsub)
        .map(|spec| match spec.partitions {
            Some(_) => courier::partition::all(spec).len() as u32,
            None => u32::MAX,
        })
        .max()
        .unwrap_or(u32::MAX);
    let max = args.max.min(ceiling).max(args.min);
    let mut yaml = String::from("---\n");
    for note in notes {
        let _ = writeln!(yaml, "{note}");
    }
    if triggers.is_empty() {
        // KEDA refuses a ScaledObject without triggers.
        let _ = writeln!(
            yaml,
            "# role {role}: nothing to scale on (it consumes broadcasts only); no ScaledObject"
        );
        return yaml;
    }
    if redis_triggers > 0 {
        let secret = format!("{}{kube}", args.secret_prefix);
        let _ = write!(
            yaml,
            "apiVersion: \"keda.sh/v1alpha1\"\nkind: \"TriggerAuthentication\"\nmetadata:\n  name: {}\nspec:\n  secretTargetRef:\n",
            q(&auth)
        );
        let mut parameters = vec!["username", "password"];
        if args.tls {
            parameters.extend(["tls", "ca"]);
        }
        for parameter in parameters {
            let _ = write!(
                yaml,
                "    - parameter: {}\n      name: {}\n      key: {}\n",
                q(parameter),
                q(&secret),
                q(parameter)
            );
        }
        yaml.push_str("---\n");
    }
    let channels: Vec<String> = specs.iter().map(|s| s.qualified_name()).collect();
    let _ = write!(
        yaml,
        "# role {role}, consumer group {group}: {}\napiVersion: \"keda.sh/v1alpha1\"\nkind: \"ScaledObject\"\nmetadata:\n  name: {}\n  labels:\n    app.kubernetes.io/managed-by: \"courier\"\n    courier.dev/role: {}\nspec:\n  scaleTargetRef:\n    name: {}\n  pollingInterval: 15\n  cooldownPeriod: 300\n  minReplicaCount: {}\n  maxReplicaCount: {}\n  triggers:\n",
        channels.join(", "),
        q(&name),
        q(role),
        q(&format!("{}{kube}", args.deployment_prefix)),
        args.min,
        max
    );
    yaml.push_str(&triggers);
    yaml
}

/// A `redis-streams` trigger on one stream key.
fn stream_trigger(ctx: &Context, args: &Args, keys: &ChannelKeys, group: &str) -> String {
    let target = q(&args.target.to_string());
    let threshold = if args.mode == "lag" {
        format!("        lagCount: {target}\n        activationLagCount: \"0\"\n")
    } else {
        format!("        pendingEntriesCount: {target}\n")
    };
    format!(
        "    - type: {}\n      metadata:\n{}        stream: {}\n        consumerGroup: {}\n{threshold}",
        q(if ctx.cli.cluster {
            "redis-cluster-streams"
        } else {
            "redis-streams"
        }),
        address(ctx, args),
        q(&keys.stream()),
        q(group),
    )
}

/// A list-length trigger on one queue key.
fn list_trigger(ctx: &Context, args: &Args, keys: &ChannelKeys) -> String {
    format!(
        "    - type: {}\n      metadata:\n{}        listName: {}\n        listLength: {}\n        activationListLength: \"0\"\n",
        q(if ctx.cli.cluster { "redis-cluster" } else { "redis" }),
        address(ctx, args),
        q(&keys.queue()),
        q(&args.target.to_string()),
    )
}

/// The `address` (one server) or `addresses` (cluster nodes) line.
fn address(ctx: &Context, args: &Args) -> String {
    if ctx.cli.cluster {
        format!("        addresses: {}\n", q(&args.address))
    } else {
        format!("        address: {}\n", q(&args.address))
    }
}

/// A YAML double-quoted scalar: JSON's string escaping is valid YAML.
fn q(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}
