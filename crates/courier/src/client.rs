//! The connection to Redis, and the handles agents publish through.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncConnectionConfig, Cmd, FromRedisValue, Pipeline, Value};

use crate::conn::{self, Backend, Conn};
use crate::contract::{self, Contract};
use crate::envelope::{self, Envelope, HeaderCheck};
use crate::error::Error;
use crate::keys::ChannelKeys;
use crate::partition;
use crate::replication;
use crate::scripts::{self, PUBLISH};
use crate::spec::{Channel, ChannelSpec};

/// A connection to courier's Redis under one namespace (`prod`, `staging`,
/// a test's random prefix), on one server or a Redis Cluster. Cheap to
/// clone: clones share one multiplexed connection (one per node on a
/// cluster), which reconnects by itself after Redis restarts or fails over.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    /// For dedicated connections (blocking reads, Pub/Sub).
    backend: Backend,
    /// The shared connection for ordinary commands.
    conn: Conn,
    /// Prefix of every key.
    namespace: String,
    /// Written into every envelope as the producer, and the prefix of
    /// consumer names.
    name: String,
    /// Where producers put messages instead of Redis, on a
    /// [`crate::testing`] client.
    recorder: Option<Arc<crate::testing::Recorder>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("namespace", &self.inner.namespace)
            .field("name", &self.inner.name)
            .field("cluster", &self.is_cluster())
            .finish()
    }
}

/// How long ordinary commands may take before they fail as transient.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How to connect, beyond the URL.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// PEM file of the CA that signs the server's certificate, for
    /// `rediss://` servers outside the system trust store.
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// Speak the Redis Cluster protocol. The URL may then list several seed
    /// nodes, comma-separated (`redis://10.0.0.1:6379,redis://10.0.0.2:6379`);
    /// the client discovers the rest.
    pub cluster: bool,
}

impl Client {
    /// Connects to `url` (`redis://[user:password@]host:port/db`, or
    /// `rediss://` for TLS) and uses `namespace` as the prefix of every key.
    pub async fn connect(url: &str, namespace: &str) -> Result<Client, Error> {
        Self::connect_with(url, namespace, &ConnectOptions::default()).await
    }

    /// Connects to a Redis Cluster through comma-separated seed URLs.
    pub async fn connect_cluster(urls: &str, namespace: &str) -> Result<Client, Error> {
        let options = ConnectOptions {
            cluster: true,
            ..ConnectOptions::default()
        };
        Self::connect_with(urls, namespace, &options).await
    }

    /// [`connect`](Self::connect) with options.
    pub async fn connect_with(
        url: &str,
        namespace: &str,
        options: &ConnectOptions,
    ) -> Result<Client, Error> {
        let masked = mask_password(url);
        let connect_error = |source| Error::Connect {
            url: masked.clone(),
            source,
        };
        let certificates = match &options.tls_ca_file {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| Error::TlsCa {
                    path: path.clone(),
                    source,
                })?;
                Some(redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                })
            }
        };
        let node = |url: &str| match &certificates {
            None => redis::Client::open(url),
            Some(certificates) => redis::Client::build_with_tls(url, certificates.clone()),
        };
        let (backend, conn) = if options.cluster {
            let urls: Vec<String> = url
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(String::from)
                .collect();
            let seeds = urls
                .iter()
                .map(|u| node(u))
                .collect::<Result<Vec<_>, _>>()
                .map_err(connect_error)?;
            let shared = conn::cluster_client(
                &urls,
                certificates.as_ref(),
                RESPONSE_TIMEOUT,
                CONNECT_TIMEOUT,
            )
            .map_err(connect_error)?;
            let conn = shared.get_async_connection().await.map_err(connect_error)?;
            let backend = Backend::Cluster {
                urls,
                certificates,
                seeds,
            };
            (backend, Conn::Cluster(conn))
        } else {
            let redis = node(url).map_err(connect_error)?;
            let config = ConnectionManagerConfig::new()
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_max_delay(Duration::from_secs(1));
            let conn = ConnectionManager::new_with_config(redis.clone(), config)
                .await
                .map_err(connect_error)?;
            (Backend::Node(redis), Conn::Managed(conn))
        };
        Ok(Client {
            inner: Arc::new(Inner {
                backend,
                conn,
                namespace: namespace.to_string(),
                name: format!("{}-{}", std::process::id(), &envelope::new_id()[..8]),
                recorder: None,
            }),
        })
    }

    /// A client without Redis whose producers record what they publish
    /// into `recorder`, for [`crate::testing`].
    pub(crate) fn recording(recorder: Arc<crate::testing::Recorder>) -> Client {
        Client {
            inner: Arc::new(Inner {
                backend: Backend::Offline,
                conn: Conn::Offline,
                namespace: "test".to_string(),
                name: "test".to_string(),
                recorder: Some(recorder),
            }),
        }
    }

    /// Names this client in envelopes (`producer`) and consumer names.
    pub fn with_name(self, name: &str) -> Client {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.name = name.to_string();
        Client {
            inner: Arc::new(inner),
        }
    }

    /// The key prefix.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The client's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether this client speaks the Redis Cluster protocol.
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner.backend, Backend::Cluster { .. })
    }

    /// The keys of a channel partition in this client's namespace.
    pub fn keys(&self, spec: &ChannelSpec, partition: Option<&str>) -> ChannelKeys {
        ChannelKeys::new(&self.inner.namespace, spec, partition)
    }

    /// The shared multiplexed connection.
    pub(crate) fn conn(&self) -> Conn {
        self.inner.conn.clone()
    }

    /// A dedicated connection for blocking reads of up to `block`: a
    /// `BLOCK` longer than the shared connection's timeout would fail
    /// there, and would stall every writer behind it. On one server it has
    /// no response timeout (a dead server's connection fails at once); on a
    /// cluster, `block` and a margin, so that a read sent to a master that
    /// died fails instead of waiting for it, and the reader reconnects.
    pub(crate) async fn dedicated(&self, block: Duration) -> Result<Conn, Error> {
        match &self.inner.backend {
            Backend::Node(redis) => {
                let config = AsyncConnectionConfig::new()
                    .set_response_timeout(None)
                    .set_connection_timeout(Some(CONNECT_TIMEOUT));
                Ok(Conn::Node(
                    redis
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?,
                ))
            }
            Backend::Cluster {
                urls, certificates, ..
            } => {
                let timeout = block + RESPONSE_TIMEOUT;
                let client =
                    conn::cluster_client(urls, certificates.as_ref(), timeout, CONNECT_TIMEOUT)?;
                Ok(Conn::Cluster(client.get_async_connection().await?))
            }
            Backend::Offline => Ok(Conn::Offline),
        }
    }

    /// A dedicated Pub/Sub connection. On a cluster, to the first seed node
    /// that answers: every node hears every `PUBLISH` of the cluster.
    pub(crate) async fn pubsub(&self) -> Result<redis::aio::PubSub, Error> {
        match &self.inner.backend {
            Backend::Offline => Err(Error::Redis(conn::offline())),
            Backend::Node(redis) => Ok(redis.get_async_pubsub().await?),
            Backend::Cluster { seeds, .. } => {
                let mut last = None;
                for seed in seeds {
                    match seed.get_async_pubsub().await {
                        Ok(pubsub) => return Ok(pubsub),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last
                    .unwrap_or_else(|| {
                        (
                            redis::ErrorKind::InvalidClientConfig,
                            "no cluster seed nodes",
                        )
                            .into()
                    })
                    .into())
            }
        }
    }

    /// `INFO <section>` of every server: one on a single server, every
    /// master on a cluster. Each entry is the node's address and its text.
    pub async fn info(&self, section: &str) -> Result<Vec<(String, String)>, Error> {
        let value: Value = self.query(redis::cmd("INFO").arg(section)).await?;
        let text = |v: &Value| String::from_redis_value(v.clone()).unwrap_or_default();
        Ok(match &value {
            Value::Map(entries) => entries
                .iter()
                .map(|(node, info)| (text(node), text(info)))
                .collect(),
            other => vec![(String::new(), text(other))],
        })
    }

    /// Runs one command on the shared connection, reloading scripts after
    /// `NOSCRIPT`. For tools; agents never need raw commands.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        let mut conn = self.conn();
        match cmd.query_async(&mut conn).await {
            Err(e) if scripts::is_noscript(&e) => {
                scripts::load_all(&mut conn).await?;
                Ok(cmd.query_async(&mut conn).await?)
            }
            other => Ok(other?),
        }
    }

    /// Runs a pipeline on the shared connection, reloading scripts after
    /// `NOSCRIPT` (which every script call of the pipeline then got, with no
    /// effect, so sending it again is safe).
    ///
    /// On a cluster, a pipeline whose commands touch several slots is sent
    /// as one pipeline per slot, concurrently, and the replies put back in
    /// order; such a pipeline must not `ignore()` replies.
    pub async fn pipeline<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, Error> {
        if !self.is_cluster() {
            return send_pipeline(self.conn(), pipe).await;
        }
        let sent = self.cluster_pipeline(pipe).await;
        if let Err(Error::Redis(e)) = &sent {
            if e.redirect_node().is_some() {
                conn::follow_redirect(&mut self.conn(), pipe).await;
            }
        }
        sent
    }

    /// A pipeline on a cluster: as is when its commands share a slot, else
    /// one pipeline per slot, concurrently, with the replies put back in
    /// order.
    async fn cluster_pipeline<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, Error> {
        if let Some(groups) = conn::split_by_slot(pipe) {
            let mut replies = vec![Value::Nil; pipe.len()];
            let sent = groups.into_iter().map(|(group, positions)| {
                let conn = self.conn();
                async move {
                    let values: Vec<Value> = send_pipeline(conn, &group).await?;
                    Ok::<_, Error>((positions, values))
                }
            });
            for (positions, values) in futures_util::future::try_join_all(sent).await? {
                for (i, value) in positions.into_iter().zip(values) {
                    replies[i] = value;
                }
            }
            return Ok(T::from_redis_value(Value::Array(replies)).map_err(redis::RedisError::from)?);
        }
        send_pipeline(self.conn(), pipe).await
    }

    /// Pauses every consumer of a channel, on every worker, within a
    /// fraction of a second: they stop taking work, and messages wait.
    pub async fn pause(&self, spec: &ChannelSpec) -> Result<(), Error> {
        crate::breaker::Breaker::channel(self, spec, crate::breaker::BreakerConfig::default())?
            .pause()
            .await
    }

    /// Lets the consumers of a paused channel take work again.
    pub async fn resume(&self, spec: &ChannelSpec) -> Result<(), Error> {
        crate::breaker::Breaker::channel(self, spec, crate::breaker::BreakerConfig::default())?
            .resume()
            .await
    }

    /// The dead-letter queue of a channel.
    pub fn dlq(&self, spec: &'static ChannelSpec) -> crate::dlq::Dlq {
        crate::dlq::Dlq::new(self, spec)
    }
}

/// One pipeline on `conn`, reloading scripts after `NOSCRIPT`.
async fn send_pipeline<T: FromRedisValue>(mut conn: Conn, pipe: &Pipeline) -> Result<T, Error> {
    match pipe.query_async(&mut conn).await {
        Err(e) if scripts::is_noscript(&e) => {
            scripts::load_all(&mut conn).await?;
            Ok(pipe.query_async(&mut conn).await?)
        }
        other => Ok(other?),
    }
}

/// `redis://user:secret@host` → `redis://user:***@host`, for error messages;
/// each of a comma-separated list of cluster seeds.
fn mask_password(urls: &str) -> String {
    urls.split(',').map(mask_one).collect::<Vec<_>>().join(",")
}

fn mask_one(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => format!("{scheme}://***@{host}"),
        },
        None => url.to_string(),
    }
}

/// What a publish should do when the channel is at its maximum depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backpressure {
    /// Fail at once with [`Error::ChannelFull`].
    #[default]
    Fail,
    /// Wait until there is room, up to the given time, then fail.
    Wait(Duration),
}

/// Options of one publish; `Default` suits most calls.
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    /// The idempotency key; default: derived from the payload's
    /// `x-courier` key fields.
    pub key: Option<String>,
    /// Correlation id carried to every message this one causes.
    pub correlation_id: Option<String>,
    /// W3C trace context of the publishing span.
    pub traceparent: Option<String>,
    /// Priority, on priority channels.
    pub priority: Option<u8>,
    /// Lifetime instead of the channel's TTL.
    pub ttl: Option<Duration>,
    /// What to do when the channel is full.
    pub backpressure: Backpressure,
    /// How long to keep retrying while Redis is unreachable (the idempotency
    /// key makes retries safe); zero fails at once.
    pub retry_for: Option<Duration>,
    /// Deliver only after this delay (set by [`Producer::publish_in`] and
    /// [`Producer::publish_at`]); through the same delayed set as retries.
    pub delay: Option<Duration>,
    /// SLA deadline on priority channels; default: now + the channel's SLA.
    pub sla_deadline: Option<chrono::DateTime<Utc>>,
}

/// Default time a publish retries while Redis is unreachable.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(5);

/// Most messages one publish script call takes: a bigger batch is split,
/// so that no single call holds Redis for long.
const PUBLISH_BATCH: usize = 500;

/// The result of one publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The message id; for a duplicate, the id of the first message
    /// published with the same key.
    pub id: String,
    /// Whether the key was already published within the dedup window, so
    /// nothing was written.
    pub duplicate: bool,
    /// The partition it went to.
    pub partition: Option<String>,
}

/// Publishes messages of type `T` on one channel.
pub struct Producer<T: Contract> {
    client: Client,
    spec: &'static ChannelSpec,
    _message: PhantomData<fn(T)>,
}

impl<T: Contract> Clone for Producer<T> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            spec: self.spec,
            _message: PhantomData,
        }
    }
}

/// One message ready to be sent.
#[derive(Debug)]
pub(crate) struct Prepared {
    keys: ChannelKeys,
    idem: String,
    id: String,
    json: String,
    priority: u8,
    /// SLA deadline in ms since the epoch; 0 for none.
    deadline_ms: i64,
}

impl Prepared {
    /// Its partition, message id and envelope JSON, for a recording client.
    pub(crate) fn into_parts(self) -> (Option<String>, String, String) {
        (
            self.keys.partition().map(str::to_string),
            self.id,
            self.json,
        )
    }
}

impl<T: Contract> Producer<T> {
    /// A producer of `C`'s latest message version on channel `C`; generated
    /// `producer()` functions call this. Another message type does not
    /// compile.
    pub fn of<C: Channel<Latest = T>>(client: &Client) -> Self {
        Self::untyped(client, C::SPEC)
    }

    /// A producer on `spec`'s channel, for tools and tests that build a
    /// channel's contract at run time. Nothing checks at compile time that
    /// `T` is the channel's message: a publish of another schema fails with
    /// [`Error::SchemaMismatch`]. Agents use [`of`](Self::of).
    pub fn untyped(client: &Client, spec: &'static ChannelSpec) -> Self {
        Self {
            client: client.clone(),
            spec,
            _message: PhantomData,
        }
    }

    /// The channel's contract.
    pub fn spec(&self) -> &'static ChannelSpec {
        self.spec
    }

    /// Publishes one message with default options.
    pub async fn publish(&self, message: &T) -> Result<Published, Error> {
        self.publish_with(message, &PublishOptions::default()).await
    }

    /// Publishes one message.
    pub async fn publish_with(
        &self,
        message: &T,
        options: &PublishOptions,
    ) -> Result<Published, Error> {
        let prepared = self.prepare(message, options, HeaderCheck::Full)?;
        let mut published = self.send(vec![prepared], options).await?;
        Ok(published.remove(0))
    }

    /// Publishes a message to be delivered after `delay`: it waits on the
    /// channel's delayed set, moved by the same atomic script as retries.
    /// The idempotency key is taken now, so a second publish is refused.
    pub async fn publish_in(&self, message: &T, delay: Duration) -> Result<Published, Error> {
        let options = PublishOptions {
            delay: Some(delay),
            ..PublishOptions::default()
        };
        self.publish_with(message, &options).await
    }

    /// Publishes a message to be delivered at `at` (at once if it passed).
    pub async fn publish_at(
        &self,
        message: &T,
        at: chrono::DateTime<Utc>,
    ) -> Result<Published, Error> {
        let delay = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        self.publish_in(message, delay).await
    }

    /// Publishes a batch in one pipelined round trip (more when the channel
    /// is full and the options say to wait). Each message keeps every
    /// guarantee of [`publish`](Self::publish). On an error some messages
    /// may be published: calling again with the same batch is safe, the
    /// idempotency keys make the repeats duplicates.
    pub async fn publish_many(
        &self,
        messages: &[T],
        options: &PublishOptions,
    ) -> Result<Vec<Published>, Error> {
        let prepared = messages
            .iter()
            .enumerate()
            .map(|(i, message)| {
                // The first header is checked whole; the others, built the
                // same way from the same options, for their keys.
                let check = if i == 0 {
                    HeaderCheck::Full
                } else {
                    HeaderCheck::KeyOnly
                };
                self.prepare(message, options, check)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.send(prepared, options).await
    }

    fn prepare(
        &self,
        message: &T,
        options: &PublishOptions,
        check: HeaderCheck,
    ) -> Result<Prepared, Error> {
        if T::SCHEMA != self.spec.schema {
            return Err(Error::SchemaMismatch {
                expected: self.spec.schema,
                found: T::SCHEMA.to_string(),
            });
        }
        let payload = contract::encode(message)?;
        let key = match &options.key {
            Some(key) => key.clone(),
            None => contract::idempotency_key::<T>(&payload)?,
        };
        self.outbox()
            .prepare(T::SCHEMA, T::VERSION, payload, key, options, check)
    }

    /// Sends prepared messages until each is written or found a duplicate.
    async fn send(
        &self,
        prepared: Vec<Prepared>,
        options: &PublishOptions,
    ) -> Result<Vec<Published>, Error> {
        if let Some(recorder) = &self.client.inner.recorder {
            return recorder.record(self.spec, prepared);
        }
        self.outbox().send(prepared, options).await
    }

    fn outbox(&self) -> Outbox<'_> {
        Outbox {
            client: &self.client,
            spec: self.spec,
        }
    }
}

/// Publishes a payload as an existing envelope describes it (schema,
/// version, idempotency key, correlation id), for tools that move messages
/// between Redis servers (`courier import`): the caller validates the
/// payload against its schema first, since this is not typed. A message
/// whose key is still in the dedup window is a duplicate, so importing a
/// file twice writes it once.
pub async fn republish(
    client: &Client,
    spec: &'static ChannelSpec,
    envelope: &Envelope,
    options: &PublishOptions,
) -> Result<Published, Error> {
    let outbox = Outbox { client, spec };
    let options = PublishOptions {
        correlation_id: options
            .correlation_id
            .clone()
            .or_else(|| envelope.correlation_id.clone()),
        priority: options.priority.or(envelope.priority),
        ..options.clone()
    };
    let prepared = outbox.prepare(
        &envelope.schema,
        envelope.version,
        envelope.payload.clone(),
        envelope.key.clone(),
        &options,
        HeaderCheck::Full,
    )?;
    let mut published = outbox.send(vec![prepared], &options).await?;
    Ok(published.remove(0))
}

/// The publishing core every producer shares, not tied to a message type:
/// the runtime also publishes through it (SLA notices).
pub(crate) struct Outbox<'a> {
    pub(crate) client: &'a Client,
    pub(crate) spec: &'static ChannelSpec,
}

impl Outbox<'_> {
    /// An envelope for `payload` (already valid against `schema` v`version`),
    /// routed to its partition and ready to send.
    pub(crate) fn prepare(
        &self,
        schema: &str,
        version: u32,
        payload: serde_json::Value,
        key: String,
        options: &PublishOptions,
        check: HeaderCheck,
    ) -> Result<Prepared, Error> {
        let partition = partition::route(self.spec, &payload)?;
        let keys = self.client.keys(self.spec, partition.as_deref());
        let now = Utc::now();
        // The publish is a span of the caller's trace (the current span
        // with OpenTelemetry, else the options' traceparent) or the root of
        // a new one; its context travels in the envelope.
        let id = envelope::new_id();
        let parent = options
            .traceparent
            .as_deref()
            .and_then(envelope::TraceContext::parse);
        let span = tracing::info_span!(
            "courier.publish",
            channel = %self.spec.qualified_name(),
            message_id = %id,
            correlation_id = options.correlation_id.as_deref().unwrap_or(""),
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
            parent_span_id = tracing::field::Empty,
        );
        let traced = crate::telemetry::publish(&span, parent);
        let trace = traced.unwrap_or_else(|| {
            parent.map_or_else(envelope::TraceContext::new_root, |parent| parent.child())
        });
        if !span.is_disabled() {
            span.record("trace_id", trace.trace_hex());
            span.record("span_id", trace.span_hex());
            if let Some(parent) = parent {
                span.record("parent_span_id", parent.span_hex());
            }
            span.in_scope(|| tracing::debug!("publishing"));
        }
        let envelope = Envelope {
            schema: schema.to_string(),
            version,
            id,
            key,
            created_at: envelope::timestamp(now),
            expires_at: envelope::timestamp(envelope::expiry(
                now,
                options.ttl.unwrap_or(self.spec.ttl),
            )),
            attempt: 1,
            producer: self.client.name().to_string(),
            correlation_id: options.correlation_id.clone(),
            traceparent: Some(trace.traceparent()),
            priority: options.priority,
            payload,
        };
        let deadline = match (options.sla_deadline, self.spec.sla) {
            (Some(deadline), _) => Some(deadline),
            (None, Some(sla)) => Some(envelope::expiry(now, sla)),
            (None, None) => None,
        };
        let (idem, id) = (keys.idem(&envelope.key), envelope.id.clone());
        Ok(Prepared {
            idem,
            json: envelope.into_json_checked(check)?,
            id,
            priority: options.priority.unwrap_or(0).min(9),
            deadline_ms: deadline.map_or(0, |d| d.timestamp_millis()),
            keys,
        })
    }

    /// Sends prepared messages until each is written or found a duplicate.
    pub(crate) async fn send(
        &self,
        prepared: Vec<Prepared>,
        options: &PublishOptions,
    ) -> Result<Vec<Published>, Error> {
        let started = Instant::now();
        let retry_for = options.retry_for.unwrap_or(DEFAULT_RETRY_FOR);
        let mut results: Vec<Option<Published>> = vec![None; prepared.len()];
        let mut pause = Duration::from_millis(10);
        loop {
            let waiting: Vec<usize> = (0..prepared.len())
                .filter(|&i| results[i].is_none())
                .collect();
            if waiting.is_empty() {
                return Ok(results.into_iter().flatten().collect());
            }
            // One script call per queue (partition), at most PUBLISH_BATCH
            // messages each, all in one pipeline.
            let delay = options
                .delay
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            let mut groups: Vec<Vec<usize>> = Vec::new();
            for &i in &waiting {
                let queue = prepared[i].keys.partition();
                match groups
                    .iter_mut()
                    .find(|g| g.len() < PUBLISH_BATCH && prepared[g[0]].keys.partition() == queue)
                {
                    Some(group) => group.push(i),
                    None => groups.push(vec![i]),
                }
            }
            let mut pipe = redis::pipe();
            for group in &groups {
                let keys = &prepared[group[0]].keys;
                let (inbox, delayed, sla) =
                    (keys.inbox(self.spec.transport), keys.delayed(), keys.sla());
                let mut script_keys = vec![inbox.as_str(), delayed.as_str(), sla.as_str()];
                script_keys.extend(group.iter().map(|&i| prepared[i].idem.as_str()));
                let mut cmd = scripts::evalsha(&PUBLISH, &script_keys);
                cmd.arg(millis(self.spec.dedup_window))
                    .arg(self.spec.max_depth.unwrap_or(0))
                    .arg(self.spec.retention.max_len.unwrap_or(0))
                    .arg(millis(self.spec.retention.max_age))
                    .arg(self.spec.transport.as_str())
                    .arg(delay);
                for &i in group {
                    let p = &prepared[i];
                    cmd.arg(&p.json)
                        .arg(&p.id)
                        .arg(p.priority)
                        .arg(p.deadline_ms);
                }
                pipe.add_command(cmd);
                replication::wait(&mut pipe, self.spec.durability);
            }
            let sent = self
                .client
                .pipeline::<Vec<Value>>(&pipe)
                .await
                .and_then(|values| {
                    replication::confirmed(
                        values,
                        self.spec,
                        groups.iter().map(|g| prepared[g[0]].keys.partition()),
                    )
                });
            let replies: Vec<Vec<(String, String)>> = match sent {
                Ok(replies) => replies,
                // Redis is away, or replicas are late: every message keeps
                // its id and key, so a resend reads as "dup" of our own id.
                Err(e) if e.is_transient() && started.elapsed() < retry_for => {
                    tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "publish failed, retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                    continue;
                }
                Err(e) => return Err(e),
            };
            if replies.len() != groups.len()
                || groups.iter().zip(&replies).any(|(g, r)| g.len() != r.len())
            {
                return Err(Error::UnexpectedReply {
                    script: "publish",
                    reply: format!("{replies:?}"),
                });
            }
            let mut full = None;
            // Written (a resend's "dup" of its own id included), duplicate,
            // full: counted once per call, not per message.
            let mut counts = [0u64; 3];
            let replies = groups.iter().flatten().zip(replies.into_iter().flatten());
            for (&i, (status, value)) in replies {
                let p = &prepared[i];
                let partition = p.keys.partition().map(str::to_string);
                match status.as_str() {
                    "ok" => {
                        counts[0] += 1;
                        results[i] = Some(Published {
                            id: p.id.clone(),
                            duplicate: false,
                            partition,
                        })
                    }
                    "dup" => {
                        counts[usize::from(value != p.id)] += 1;
                        results[i] = Some(Published {
                            duplicate: value != p.id,
                            id: value,
                            partition,
                        })
                    }
                    "full" => {
                        counts[2] += 1;
                        full = Some((p.keys.partition().map(str::to_string), value));
                    }
                    _ => {
                        return Err(Error::UnexpectedReply {
                            script: "publish",
                            reply: format!("{status} {value}"),
                        })
                    }
                }
            }
            for (outcome, n) in ["written", "duplicate", "full"].into_iter().zip(counts) {
                if n > 0 {
                    crate::metrics::published(self.spec, outcome, n);
                }
            }
            if let Some((partition, depth)) = full {
                let error = Error::ChannelFull {
                    channel: match partition {
                        Some(p) => format!("{}#{p}", self.spec.qualified_name()),
                        None => self.spec.qualified_name(),
                    },
                    depth: depth.parse().unwrap_or(0),
                    max_depth: self.spec.max_depth.unwrap_or(0),
                };
                match options.backpressure {
                    Backpressure::Wait(limit) if started.elapsed() < limit => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(500));
                    }
                    _ => return Err(error),
                }
            }
        }
    }
}

impl<T: Contract> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("channel", &self.spec.qualified_name())
            .field("version", &T::VERSION)
            .finish()
    }
}

/// A duration in whole milliseconds, as scripts take it (at least 1: a
/// zero TTL would delete a key the moment it is written).
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(mask_password("redis://u:secret@h:1/"), "redis://u:***@h:1/");
        assert_eq!(mask_password("rediss://secret@h"), "rediss://***@h");
        assert_eq!(mask_password("redis://h:6379"), "redis://h:6379");
    }

    #[test]
    fn millis_is_never_zero() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_secs(2)), 2000);
    }
}
