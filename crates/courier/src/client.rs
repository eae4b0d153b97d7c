//! The connection to Redis, and the handles agents publish through.
//!
//! [`Client`] owns the connections; publishing (the [`Producer`] and its
//! options) lives in `publish.rs` and is re-exported here, its public
//! path.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncConnectionConfig, Cmd, FromRedisValue, Pipeline, Value};

use crate::conn::{self, Backend, Conn};
use crate::envelope;
use crate::error::Error;
use crate::keys::ChannelKeys;
use crate::retry;
use crate::scripts;
use crate::spec::ChannelSpec;

/// Where a client without Redis puts what its producers publish: the
/// [`crate::testing`] harness. A trait here, so that the client does not
/// depend on the harness.
pub(crate) trait Recording: Send + Sync + 'static {
    /// Records envelopes published on `spec`, each as (partition, message
    /// id, envelope JSON), to be delivered after `delay`; answers each with
    /// the message id to report and whether it was a duplicate.
    fn record(
        &self,
        spec: &ChannelSpec,
        batch: Vec<(Option<String>, String, String)>,
        delay: Option<Duration>,
    ) -> Result<Vec<(String, bool)>, Error>;
}

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
    recorder: Option<Arc<dyn Recording>>,
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
        // Every key is `<namespace>:{<hash tag>}:...`: a brace in the
        // namespace would become the hash tag and scatter a channel's keys
        // over cluster slots.
        let problem = if namespace.is_empty() {
            Some("it is empty")
        } else if namespace.contains(['{', '}']) {
            Some("it contains { or }, which would become the keys' hash tag")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(Error::InvalidNamespace {
                namespace: namespace.to_string(),
                problem,
            });
        }
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
                // The connection's own reconnects pause no longer than
                // courier's retry loops (`retry.rs`).
                .set_max_delay(retry::CAP);
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

    /// Where producers record instead of publishing, on a
    /// [`crate::testing`] client.
    pub(crate) fn recorder(&self) -> Option<&dyn Recording> {
        self.inner.recorder.as_deref()
    }

    /// A client without Redis whose producers record what they publish
    /// into `recorder`, for [`crate::testing`].
    pub(crate) fn recording(recorder: Arc<dyn Recording>) -> Client {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(mask_password("redis://u:secret@h:1/"), "redis://u:***@h:1/");
        assert_eq!(mask_password("rediss://secret@h"), "rediss://***@h");
        assert_eq!(mask_password("redis://h:6379"), "redis://h:6379");
    }

    /// Refused before any connection is tried (the port is closed).
    #[tokio::test]
    async fn a_namespace_that_would_break_the_hash_tags_is_refused() {
        for (namespace, problem) in [("prod{1}", "{ or }"), ("a}b", "{ or }"), ("", "empty")] {
            let err = Client::connect("redis://127.0.0.1:1/", namespace)
                .await
                .unwrap_err();
            assert!(
                matches!(&err, Error::InvalidNamespace { namespace: n, .. } if n == namespace),
                "{err}"
            );
            assert!(err.to_string().contains(problem), "{err}");
            assert_eq!(err.kind(), crate::ErrorKind::Local);
        }
    }
}
