//! Handles through which agents publish and consume.
//!
//! Generated crates construct these from their channel constants; agent code
//! never names a Redis key or builds an envelope.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::contract::{Contract, Readable};
use crate::spec::ChannelSpec;

/// A connection to courier's Redis under one namespace (`prod`, `staging`,
/// a test's random prefix). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    /// Prefix of every key, separating environments that share a Redis.
    namespace: Arc<str>,
}

impl Client {
    /// A client for `namespace`.
    pub fn new(namespace: impl Into<Arc<str>>) -> Self {
        Self {
            namespace: namespace.into(),
        }
    }

    /// The key prefix.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

/// Publishes messages of type `T` on one channel.
pub struct Producer<T: Contract> {
    client: Client,
    spec: &'static ChannelSpec,
    _message: PhantomData<fn(T)>,
}

impl<T: Contract> Producer<T> {
    /// A producer on `spec`'s channel. Generated `producer()` functions call
    /// this with the channel's latest message version.
    pub fn new(client: &Client, spec: &'static ChannelSpec) -> Self {
        debug_assert_eq!(T::SCHEMA, spec.schema, "producer type and channel disagree");
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

    /// The client it publishes through.
    pub fn client(&self) -> &Client {
        &self.client
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

/// Consumes messages of the versions `M` reads from one channel, as a member
/// of a consumer group.
pub struct Consumer<M: Readable> {
    client: Client,
    spec: &'static ChannelSpec,
    group: String,
    _message: PhantomData<fn() -> M>,
}

impl<M: Readable> Consumer<M> {
    /// A consumer of `spec`'s channel in consumer group `group`.
    pub fn new(client: &Client, spec: &'static ChannelSpec, group: &str) -> Self {
        debug_assert_eq!(M::SCHEMA, spec.schema, "consumer type and channel disagree");
        Self {
            client: client.clone(),
            spec,
            group: group.to_string(),
            _message: PhantomData,
        }
    }

    /// The channel's contract.
    pub fn spec(&self) -> &'static ChannelSpec {
        self.spec
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The client it reads through.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl<M: Readable> fmt::Debug for Consumer<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("channel", &self.spec.qualified_name())
            .field("group", &self.group)
            .field("versions", &M::VERSIONS)
            .finish()
    }
}
