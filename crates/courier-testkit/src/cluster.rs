//! A local Redis Cluster: six `redis-server` processes on loopback ports,
//! joined by `redis-cli --cluster create` into three masters with one
//! replica each; with TLS, clients, the cluster bus and replication all
//! speak TLS (the test certificates of [`crate::tls_ca_file`]), and each
//! node keeps a plain port for the test's own checks.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::netsplit::{self, Netsplit};
use crate::{free_port, RedisOptions, RedisServer, INSTALL_HINT};

/// How long a node may be unreachable before the cluster fails it over.
/// Short, so that failover tests take seconds.
const NODE_TIMEOUT_MS: u64 = 1000;

/// A running cluster of three masters and three replicas, stopped on drop.
#[derive(Debug)]
pub struct RedisCluster {
    /// The nodes, in the order given to `redis-cli --cluster create`: the
    /// first three start as masters, the last three as their replicas.
    nodes: Vec<RedisServer>,
    /// Whether clients, the bus and replication speak TLS.
    tls: bool,
    /// With relays between the nodes ([`Self::start_partitionable`]): the
    /// relays (stopped with the cluster), and each node's announcements.
    split: Option<(Arc<Netsplit>, Vec<Announced>)>,
}

/// What a node behind relays announces: its relays' client and bus ports.
#[derive(Debug, Clone, Copy)]
struct Announced {
    client: u16,
    bus: u16,
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        if let Some((split, _)) = &self.split {
            split.stop();
        }
    }
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// The node's id.
    pub id: String,
    /// Its client port.
    pub port: u16,
    /// Whether it is a master now.
    pub master: bool,
    /// Whether the cluster considers it failed.
    pub failed: bool,
    /// For a replica, the id of its master.
    pub master_id: Option<String>,
    /// The slot ranges it serves (masters), inclusive.
    pub slots: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// Starts six servers and creates the cluster; returns once every slot
    /// is served and every replica is in sync with its master.
    pub fn start() -> Result<Self, String> {
        Self::start_with(false)
    }

    /// The same cluster over TLS: clients connect to [`Self::tls_url`],
    /// nodes talk to each other (bus and replication) over TLS.
    pub fn start_tls() -> Result<Self, String> {
        Self::start_with(true)
    }

    /// The same cluster with every node reached through a relay of
    /// `netsplit.rs`, on its client and bus ports, so that
    /// [`Self::isolate`] can cut a node off from the others.
    pub fn start_partitionable() -> Result<Self, String> {
        Self::start_with_split(false, true)
    }

    fn start_with(tls: bool) -> Result<Self, String> {
        Self::start_with_split(tls, false)
    }

    fn start_with_split(tls: bool, partitionable: bool) -> Result<Self, String> {
        let (mut nodes, mut buses) = (Vec::new(), Vec::new());
        for _ in 0..6 {
            let bus = free_port()?;
            buses.push(bus);
            let mut args: Vec<String> = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                &NODE_TIMEOUT_MS.to_string(),
                "--cluster-port",
                &bus.to_string(),
                // Replicas of a killed master may take over however long
                // they were apart from it.
                "--cluster-replica-validity-factor",
                "0",
            ]
            .into_iter()
            .map(String::from)
            .collect();
            if tls {
                args.extend(
                    ["--tls-cluster", "yes", "--tls-replication", "yes"]
                        .into_iter()
                        .map(String::from),
                );
            }
            nodes.push(RedisServer::start_with(RedisOptions {
                args,
                tls,
                ..RedisOptions::default()
            })?);
        }
        let mut cluster = RedisCluster {
            nodes,
            tls,
            split: None,
        };
        if partitionable {
            cluster.split = Some(cluster.relay_all(&buses)?);
        }
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| cluster.cli_address(n))
            .collect();
        let cli = std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".into());
        let output = Command::new(&cli)
            .args(cluster.cli_tls_args())
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    format!("redis-cli was not found on PATH (set REDIS_CLI); {INSTALL_HINT}")
                } else {
                    format!("cannot run {cli}: {e}")
                }
            })?;
        if !output.status.success() {
            return Err(format!(
                "redis-cli --cluster create {} failed: {}{}",
                addresses.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        cluster.wait_until_healthy(Duration::from_secs(30))?;
        Ok(cluster)
    }

    /// Starts a cluster, panicking with the reason when it cannot.
    pub fn must_start() -> Self {
        Self::start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The seed URLs of every node, comma-separated, as
    /// `courier::ConnectOptions::cluster` reads them.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}/", self.client_port_plain(n)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The plain port clients use on `node`: its relay's on a
    /// partitionable cluster.
    fn client_port_plain(&self, node: &RedisServer) -> u16 {
        match &self.split {
            Some(_) => self.client_port(node),
            None => node.port(),
        }
    }

    /// The TLS seed URLs of every node (`rediss://`), comma-separated;
    /// `None` for a cluster without TLS.
    pub fn tls_url(&self) -> Option<String> {
        self.tls.then(|| {
            self.nodes
                .iter()
                .filter_map(RedisServer::tls_url)
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    /// The port clients of the cluster use on `node`: its TLS port on a
    /// TLS cluster, its relay's on a partitionable one.
    fn client_port(&self, node: &RedisServer) -> u16 {
        if let Some((_, announced)) = &self.split {
            if let Some(i) = self.nodes.iter().position(|n| n.port() == node.port()) {
                return announced[i].client;
            }
        }
        match (self.tls, node.tls_port()) {
            (true, Some(port)) => port,
            _ => node.port(),
        }
    }

    /// Puts a relay before every node's client and bus port and makes each
    /// node announce the relays' ports and dial out from its own address.
    fn relay_all(&self, buses: &[u16]) -> Result<(Arc<Netsplit>, Vec<Announced>), String> {
        let split = Arc::new(Netsplit::default());
        let mut announced = Vec::new();
        for (i, (node, &bus)) in self.nodes.iter().zip(buses).enumerate() {
            let ports = Announced {
                client: split.relay(i, node.port())?,
                bus: split.relay(i, bus)?,
            };
            announce(node, i, ports)?;
            announced.push(ports);
        }
        Ok((split, announced))
    }

    /// Cuts the node on `port` off from every other node (cluster bus and
    /// replication, both ways), on a cluster started with
    /// [`Self::start_partitionable`]. Clients still reach every node.
    pub fn isolate(&self, port: u16) -> Result<(), String> {
        let (split, _) = self.split.as_ref().ok_or("the cluster has no relays")?;
        let i = self
            .nodes
            .iter()
            .position(|n| n.port() == port)
            .ok_or("no such node")?;
        split.isolate(i);
        Ok(())
    }

    /// Ends the partition [`Self::isolate`] made.
    pub fn heal(&self) {
        if let Some((split, _)) = &self.split {
            split.heal();
        }
    }

    /// `CLUSTER NODES` with each node's port the one it listens on, not
    /// the relay's it announces.
    fn parse(&self, text: &str) -> Vec<ClusterNode> {
        let mut nodes = parse_nodes(text);
        if let Some((_, announced)) = &self.split {
            for node in &mut nodes {
                if let Some(i) = announced.iter().position(|a| a.client == node.port) {
                    node.port = self.nodes[i].port();
                }
            }
        }
        nodes
    }

    /// What `redis-cli` needs to speak to this cluster's nodes.
    pub fn cli_tls_args(&self) -> Vec<String> {
        if !self.tls {
            return Vec::new();
        }
        vec![
            "--tls".into(),
            "--cacert".into(),
            crate::tls_ca_file().display().to_string(),
        ]
    }

    /// The address `redis-cli --cluster` commands take for `node`.
    pub fn cli_address(&self, node: &RedisServer) -> String {
        format!("127.0.0.1:{}", self.client_port(node))
    }

    /// The nodes, in creation order.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The node listening on `port`.
    pub fn node(&self, port: u16) -> Option<&RedisServer> {
        self.nodes.iter().find(|n| n.port() == port)
    }

    /// The cluster's view of itself, asked of the first live node.
    pub fn topology(&self) -> Result<Vec<ClusterNode>, String> {
        let mut last = String::from("no node answered");
        for node in &self.nodes {
            match node.command_text("CLUSTER NODES") {
                Ok(text) if !text.starts_with('-') => return Ok(self.parse(&text)),
                Ok(text) => last = text,
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The port of the master serving `slot` as the node on `port` sees it
    /// (during a partition, the two sides disagree).
    pub fn master_seen_by(&self, port: u16, slot: u16) -> Result<u16, String> {
        let node = self
            .node(port)
            .ok_or_else(|| format!("no node on port {port}"))?;
        let text = node.command_text("CLUSTER NODES")?;
        self.parse(&text)
            .into_iter()
            .find(|n| {
                n.master && !n.failed && n.slots.iter().any(|&(a, b)| (a..=b).contains(&slot))
            })
            .map(|n| n.port)
            .ok_or_else(|| format!("port {port} sees no live master serving slot {slot}"))
    }

    /// The port of the live master serving `slot`.
    pub fn master_of(&self, slot: u16) -> Result<u16, String> {
        self.topology()?
            .into_iter()
            .find(|n| {
                n.master && !n.failed && n.slots.iter().any(|&(a, b)| (a..=b).contains(&slot))
            })
            .map(|n| n.port)
            .ok_or_else(|| format!("no live master serves slot {slot}"))
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`).
    pub fn slot(&self, key: &str) -> Result<u16, String> {
        let reply = self
            .nodes
            .iter()
            .find_map(|n| n.command(&format!("CLUSTER KEYSLOT {key}")).ok())
            .ok_or("no node answered CLUSTER KEYSLOT")?;
        reply
            .trim_start_matches(':')
            .parse()
            .map_err(|_| format!("unexpected CLUSTER KEYSLOT reply {reply:?}"))
    }

    /// Moves the `count` lowest slots of the master on `from` to the master
    /// on `to` with `redis-cli --cluster reshard`, keys and all (`MIGRATE`),
    /// while the cluster keeps serving; returns once the command is done.
    pub fn reshard(&self, from: u16, to: u16, count: u16) -> Result<(), String> {
        let topology = self.topology()?;
        let id = |port: u16| {
            topology
                .iter()
                .find(|n| n.port == port && n.master)
                .map(|n| n.id.clone())
                .ok_or_else(|| format!("no master on port {port}"))
        };
        let (source, target) = (id(from)?, id(to)?);
        let seed = self.node(from).ok_or("no such node")?;
        let cli = std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".into());
        let output = Command::new(&cli)
            .args(self.cli_tls_args())
            .args(["--cluster", "reshard", &self.cli_address(seed)])
            .args(["--cluster-from", &source, "--cluster-to", &target])
            .args(["--cluster-slots", &count.to_string(), "--cluster-yes"])
            .args(["--cluster-pipeline", "10"])
            .output()
            .map_err(|e| format!("cannot run {cli}: {e}"))?;
        let text = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        if !output.status.success() || text.contains("[ERR]") {
            return Err(format!(
                "redis-cli --cluster reshard {count} slots {from} -> {to} failed: {text}"
            ));
        }
        Ok(())
    }

    /// Kills the node on `port` at once (SIGKILL).
    pub fn kill(&mut self, port: u16) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port() == port) {
            node.kill();
        }
    }

    /// Starts the node on `port` again, with its data and cluster config:
    /// a master that was failed over rejoins as a replica of its successor.
    /// Behind relays, it announces them again before anyone can reach it
    /// around them.
    pub fn restart(&mut self, port: u16) -> Result<(), String> {
        let i = self
            .nodes
            .iter()
            .position(|n| n.port() == port)
            .ok_or_else(|| format!("no node on port {port}"))?;
        self.nodes[i].start_again()?;
        if let Some((_, announced)) = &self.split {
            announce(&self.nodes[i], i, announced[i])?;
        }
        Ok(())
    }

    /// Waits until every slot has a live master that every live node
    /// agrees on, and every live replica's link to its master is up.
    pub fn wait_until_healthy(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let problem = self.problem();
            match problem {
                None => return Ok(()),
                Some(p) if Instant::now() > deadline => {
                    return Err(format!("cluster not healthy after {timeout:?}: {p}"))
                }
                Some(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// What keeps the cluster from being healthy, if anything.
    fn problem(&self) -> Option<String> {
        let mut views = Vec::new();
        for node in &self.nodes {
            let Ok(info) = node.command_text("CLUSTER INFO") else {
                continue; // a killed node
            };
            if !info.contains("cluster_state:ok") {
                return Some(format!("port {}: {}", node.port(), first_line(&info)));
            }
            let Ok(text) = node.command_text("CLUSTER NODES") else {
                return Some(format!("port {}: no CLUSTER NODES", node.port()));
            };
            let topology = self.parse(&text);
            let Some(me) = topology.iter().find(|n| n.port == node.port()) else {
                return Some(format!(
                    "port {} is not in its own CLUSTER NODES",
                    node.port()
                ));
            };
            if !me.master {
                let replication = node.command_text("INFO replication").unwrap_or_default();
                if !replication.contains("master_link_status:up") {
                    return Some(format!("replica {} not in sync", node.port()));
                }
            }
            let mut served: Vec<(u16, u16, u16)> = topology
                .iter()
                .filter(|n| n.master && !n.failed)
                .flat_map(|n| n.slots.iter().map(move |&(a, b)| (a, b, n.port)))
                .collect();
            served.sort_unstable();
            let covered: u32 = served.iter().map(|&(a, b, _)| u32::from(b - a) + 1).sum();
            if covered != 16384 {
                return Some(format!(
                    "port {} sees {covered} of 16384 slots served",
                    node.port()
                ));
            }
            views.push(served);
        }
        if views.windows(2).any(|w| w[0] != w[1]) {
            return Some("nodes disagree on who serves which slots".into());
        }
        None
    }
}

/// Makes node `i` announce its relays' `ports` and dial out from its own
/// loopback address.
fn announce(node: &RedisServer, i: usize, ports: Announced) -> Result<(), String> {
    for (name, value) in [
        ("cluster-announce-ip", "127.0.0.1".to_string()),
        ("cluster-announce-port", ports.client.to_string()),
        ("cluster-announce-bus-port", ports.bus.to_string()),
        ("bind-source-addr", netsplit::source_addr(i).to_string()),
    ] {
        let reply = node.command(&format!("CONFIG SET {name} {value}"))?;
        if reply != "+OK" {
            return Err(format!(
                "CONFIG SET {name} {value} on port {}: {reply}",
                node.port()
            ));
        }
    }
    Ok(())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Parses `CLUSTER NODES` output.
pub(crate) fn parse_nodes(text: &str) -> Vec<ClusterNode> {
    let mut nodes = Vec::new();
    let mut ids = HashMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            continue;
        }
        let port = fields[1]
            .split(['@', ','])
            .next()
            .and_then(|address| address.rsplit(':').next())
            .and_then(|port| port.parse().ok())
            .unwrap_or(0);
        let flags: Vec<&str> = fields[2].split(',').collect();
        let slots = fields[8..]
            .iter()
            .filter(|s| !s.starts_with('['))
            .filter_map(|s| match s.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => {
                    let slot = s.parse().ok()?;
                    Some((slot, slot))
                }
            })
            .collect();
        ids.insert(fields[0].to_string(), port);
        nodes.push(ClusterNode {
            id: fields[0].to_string(),
            port,
            master: flags.contains(&"master"),
            failed: flags.contains(&"fail") || flags.contains(&"noaddr"),
            master_id: (fields[3] != "-").then(|| fields[3].to_string()),
            slots,
        });
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_nodes() {
        let text = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7001@17001 master,fail - 0 0 2 connected 5461-10922 12000
c3 127.0.0.1:7003@17003 slave a1 0 0 1 connected
";
        let nodes = parse_nodes(text);
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[0].port, 7000);
        assert!(nodes[0].master && !nodes[0].failed);
        assert_eq!(nodes[0].slots, vec![(0, 5460)]);
        assert!(nodes[1].failed);
        assert_eq!(nodes[1].slots, vec![(5461, 10922), (12000, 12000)]);
        assert!(!nodes[2].master);
        assert_eq!(nodes[2].master_id.as_deref(), Some("a1"));
    }

    #[test]
    fn creates_a_cluster_that_fails_over() {
        let mut cluster = RedisCluster::must_start();
        let topology = cluster.topology().unwrap();
        assert_eq!(topology.iter().filter(|n| n.master).count(), 3);
        assert_eq!(topology.iter().filter(|n| !n.master).count(), 3);
        let slot = cluster.slot("{x}").unwrap();
        let master = cluster.master_of(slot).unwrap();
        cluster.kill(master);
        cluster.wait_until_healthy(Duration::from_secs(30)).unwrap();
        let promoted = cluster.master_of(slot).unwrap();
        assert_ne!(promoted, master);
        cluster.restart(master).unwrap();
        cluster.wait_until_healthy(Duration::from_secs(30)).unwrap();
        let rejoined = cluster.topology().unwrap();
        let old = rejoined.iter().find(|n| n.port == master).unwrap();
        assert!(!old.master, "{old:?}");
    }
}
