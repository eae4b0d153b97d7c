//! Partition coordination: sharing a partitioned channel's partitions
//! among the live members of a consumer group.
//!
//! Ordering per partition needs exactly one reader per partition at a time;
//! a lease per partition makes that hold across rebalances, and a
//! membership script (`members.lua`) tells every member who else is alive.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Ctx;
use crate::contract::Readable;
use crate::error::Error;
use crate::handler::Handler;
use crate::keys::ChannelKeys;
use crate::lease::Lease;
use crate::scripts::{self, MEMBERS};
use crate::time::millis;

/// How often partitions are rebalanced among a group's members.
pub(super) const REBALANCE: Duration = Duration::from_millis(250);

/// How long a partition lease (and a silent member) lasts without renewal.
pub(super) const LEASE_TTL: Duration = Duration::from_secs(2);

impl<M, F> Ctx<M, F>
where
    M: Readable,
    F: Handler<M>,
{
    /// Shares the channel's partitions among the group's live members and
    /// reads this member's share: partition `i` of the declared order goes
    /// to member `i mod n` of the members sorted by name, rebalanced every
    /// [`REBALANCE`] as members join and leave. A member reads a partition
    /// only while it holds the partition's lease, so a newly assigned member
    /// starts only after the previous one released it (finishing the message
    /// in hand) or its lease expired: ordering holds across rebalances.
    pub(super) async fn coordinate(self: Arc<Self>, partitions: Vec<ChannelKeys>) {
        let members_key = self.client.keys(self.spec, None).members(&self.group);
        let mut owned: HashMap<String, (CancellationToken, Lease, tokio::task::JoinHandle<()>)> =
            HashMap::new();
        let membership = |join: bool| {
            let mut cmd = scripts::evalsha(&MEMBERS, &[&members_key]);
            cmd.arg(&self.name)
                .arg(millis(LEASE_TTL))
                .arg(if join { "1" } else { "0" });
            cmd
        };
        loop {
            let mut members: Vec<String> = match self.client.query(&membership(true)).await {
                Ok(members) => members,
                Err(e) => {
                    tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot renew group membership");
                    Vec::new()
                }
            };
            members.sort();
            let wanted: HashSet<String> = match members.iter().position(|m| *m == self.name) {
                Some(me) => partitions
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % members.len() == me)
                    .filter_map(|(_, keys)| keys.partition().map(str::to_string))
                    .collect(),
                // Unsure of the membership: keep what is held, take nothing.
                None => owned.keys().cloned().collect(),
            };
            let held: Vec<String> = owned.keys().cloned().collect();
            for partition in held {
                let keep = wanted.contains(&partition)
                    && match owned.get(&partition) {
                        Some((_, lease, _)) => lease.extend(LEASE_TTL).await.unwrap_or(false),
                        None => false,
                    };
                if !keep {
                    if let Some((stop, lease, reader)) = owned.remove(&partition) {
                        stop.cancel();
                        let _ = reader.await;
                        let _ = lease.release().await;
                    }
                }
            }
            for keys in &partitions {
                let Some(partition) = keys.partition() else {
                    continue;
                };
                if !wanted.contains(partition) || owned.contains_key(partition) {
                    continue;
                }
                match Lease::acquire(&self.client, &self.lease_name(partition), LEASE_TTL).await {
                    Ok(Some(lease)) => {
                        let stop = self.shutdown.child_token();
                        let reader =
                            tokio::spawn(self.clone().read_loop(keys.clone(), stop.clone()));
                        owned.insert(partition.to_string(), (stop, lease, reader));
                    }
                    // Still held by the previous owner: try again next round.
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(channel = %self.spec.qualified_name(), error = %e, "cannot take a partition lease")
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(REBALANCE) => {}
                () = self.shutdown.cancelled() => break,
            }
        }
        for (_, (stop, lease, reader)) in owned {
            stop.cancel();
            let _ = reader.await;
            let _ = lease.release().await;
        }
        let _: Result<Vec<String>, Error> = self.client.query(&membership(false)).await;
    }

    /// The lease that makes one member the reader of a partition.
    pub(super) fn lease_name(&self, partition: &str) -> String {
        format!(
            "partition.{}.{}#{partition}.{}",
            self.spec.domain, self.spec.name, self.group
        )
    }
}
