//! courier: schema-first coordination of agents and workers over Redis.
//!
//! Message types come from JSON Schemas through `cargo xtask codegen`, which
//! writes one crate per schema domain (`crates/contracts/<domain>`). Those
//! crates implement [`Contract`] for every message version and [`Readable`]
//! for the set of versions a consumer reads, and declare each channel as a
//! [`ChannelSpec`] constant. This crate holds every rule the generated code
//! relies on: schema names and versions, payload validation, idempotency
//! keys; the generated code only states facts about the schemas.
//!
//! # Layout
//!
//! - [`contract`]: the [`Contract`] and [`Readable`] traits, payload encoding,
//!   decoding and validation, idempotency-key derivation.
//! - [`spec`]: [`ChannelSpec`], a channel's contract from `channels.json`.
//! - [`client`]: [`Client`], [`Producer`] and [`Consumer`] handles.
//! - [`error`]: [`Error`] and its [`ErrorKind`] policy.

pub mod client;
pub mod contract;
pub mod error;
pub mod spec;

pub use client::{Client, Consumer, Producer};
pub use contract::{Contract, Readable};
pub use courier_schema::{
    Backoff, Compatibility, Retention, Transport, ValidationError, Validator,
};
pub use error::{Error, ErrorKind};
pub use spec::{ChannelSpec, PartitionSpec};
