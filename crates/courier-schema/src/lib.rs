//! The schema registry of courier: loads `schemas/`, checks every rule
//! before any code is generated, and validates JSON values against schemas.
//!
//! JSON Schemas in Git are the source of truth for every message. This crate
//! turns the `schemas/` folder into a [`Registry`] of domains, messages,
//! versions and channels, or into a list of [`Problem`]s, each naming the
//! file and the JSON pointer inside it. Code generation (`courier-codegen`),
//! the runtime (`courier`) and the operator CLI all read schemas through it,
//! so each rule about a schema lives here once.
//!
//! # Layout
//!
//! - [`registry`]: loading `schemas/` and the rules every file must keep.
//! - [`channel`]: the model of `channels.json` and its defaults.
//! - [`duration`]: the `"30s"` / `"15m"` duration syntax.
//! - [`validate`]: a compiled validator (the `jsonschema` crate, draft
//!   2020-12) with courier's error messages, used on payloads at runtime and
//!   on `channels.json`.
//! - [`subset`]: courier's own pass over a schema, refusing what the code
//!   generator cannot express.
//! - [`text`]: JSON pointer tokens and values shown in messages.
//! - [`keywords`]: the one table of keywords, read by the subset pass and
//!   the compatibility checker.
//! - [`problem`]: the `file:pointer: message` error report.
//! - [`compat`]: whether one schema accepts every document another accepts,
//!   under stable rule ids, each finding with a witness document verified
//!   by the validator.
//! - [`position`]: line and column of a JSON pointer in a file.
//! - [`rules`]: every stable rule id of the checks; imports nothing of
//!   this crate.
//! - [`review`]: the CI review of a schema change: compatibility per channel
//!   mode, generated-code breaks, released-version immutability, reports.

pub mod channel;
pub mod compat;
pub mod duration;
pub mod keywords;
pub mod position;
pub mod problem;
pub mod registry;
pub mod review;
pub mod rules;
pub mod subset;
pub mod text;
pub mod validate;

pub use channel::{
    Backoff, ChannelRef, ChannelSpec, Compatibility, DependencySpec, Durability, List,
    PartitionSpec, RateSpec, Retention, SlaNoticeSpec, Text, Transport,
};
pub use duration::parse_duration;
pub use problem::{Problem, Problems};
pub use registry::{Domain, Message, MessageVersion, Registry, DRAFT_2020_12};
pub use validate::{SchemaProblem, ValidationError, Validator};
