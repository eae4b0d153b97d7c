//! A channel's contract, as generated code declares it from `channels.json`.
//!
//! [`ChannelSpec`] is `courier_schema::ChannelSpec`, the one model of a
//! channel: the registry parses it, generated crates declare it as a
//! constant, and the runtime runs a channel by it. The runtime takes it as
//! `&'static ChannelSpec` (producers, consumers and DLQ handles keep it as
//! long as they live, and generated code gives constants); a tool that knows
//! channels only from `schemas/` loads the registry once and leaks it (the
//! `courier` CLI does).

pub use courier_schema::{
    ChannelRef, ChannelSpec, DependencySpec, PartitionSpec, RateSpec, SlaNoticeSpec,
};

use crate::contract::{Contract, Readable};
use crate::error::Error;

/// A channel as a type: what its consumers read and its producers write.
///
/// Generated code declares one per channel (`channels::billing::Billing`),
/// and [`Producer::of`](crate::Producer::of) and
/// [`Consumer::of`](crate::Consumer::of) take it, so a producer writes only
/// the channel's latest message version and a consumer reads only its
/// message enum: anything else does not compile.
pub trait Channel: 'static {
    /// Every version consumers of the channel read.
    type Message: Readable;
    /// The version producers of the channel write: the newest.
    type Latest: Contract;
    /// The channel's contract.
    const SPEC: &'static ChannelSpec;
}

/// Refuses a message type of another schema than the channel's: what the
/// untyped producer, consumer and subscriber check before they publish or
/// consume.
pub(crate) fn expect_schema(spec: &'static ChannelSpec, schema: &'static str) -> Result<(), Error> {
    if schema == spec.schema {
        return Ok(());
    }
    Err(Error::SchemaMismatch {
        expected: &spec.schema,
        found: schema.to_string(),
    })
}
