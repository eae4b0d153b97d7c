//! Network partitions between cluster nodes, in user space: every node is
//! reached through a TCP relay of this module, on its client port and on
//! its cluster-bus port, and every node dials out from its own loopback
//! address (`bind-source-addr 127.0.0.<2 + i>`), so a relay knows which
//! node a connection comes from. Cutting node `k` off refuses, and closes,
//! every connection between `k` and another node, both ways (bus and
//! replication), while clients (from `127.0.0.1`) still reach every node:
//! a client on the isolated master's side keeps writing to it.
//!
//! The same relay stands before a single server as a [`FaultProxy`],
//! which cuts every connection and refuses new ones for a while (Redis
//! unreachable).
//!
//! Packet filtering (`iptables`, `nft`) or network namespaces would need
//! privileges and tools a test machine may lack; relays need neither.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// The loopback address node `i` dials out from.
pub(crate) fn source_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + i as u8)
}

/// Which node, if any, a peer address belongs to.
fn node_of(ip: IpAddr) -> Option<usize> {
    match ip {
        IpAddr::V4(v4) if v4.octets()[..3] == [127, 0, 0] && v4.octets()[3] >= 2 => {
            Some(usize::from(v4.octets()[3] - 2))
        }
        _ => None,
    }
}

/// The relays of a cluster and the cut between its nodes.
#[derive(Debug, Default)]
pub(crate) struct Netsplit {
    /// The node cut off from the others, if any.
    isolated: Mutex<Option<usize>>,
    /// Everything cut: no connection passes.
    all_cut: AtomicBool,
    /// Open relayed connections.
    open: Mutex<Vec<Relayed>>,
    /// Set by [`Netsplit::stop`]: the relays accept nothing more and end.
    stopped: AtomicBool,
    /// The relays' ports, to wake their accept loops when stopping.
    ports: Mutex<Vec<u16>>,
}

/// One relayed connection: from which node (`None`: a client), to which
/// node, and both sockets, to close them when a cut falls between; and
/// whether it has ended, so that its sockets are let go.
type Relayed = (Option<usize>, usize, TcpStream, TcpStream, Arc<AtomicBool>);

impl Netsplit {
    /// Whether a connection from `from` to node `to` crosses the cut.
    fn cut(&self, from: Option<usize>, to: usize) -> bool {
        if self.all_cut.load(Ordering::SeqCst) {
            return true;
        }
        let isolated = *self.isolated.lock().unwrap();
        match (isolated, from) {
            (Some(k), Some(from)) => from != to && (from == k || to == k),
            _ => false,
        }
    }

    /// Cuts node `k` off from the other nodes, closing what crosses the cut.
    pub(crate) fn isolate(&self, k: usize) {
        *self.isolated.lock().unwrap() = Some(k);
        self.close_cut();
    }

    /// Closes every open connection that crosses the cut.
    fn close_cut(&self) {
        let mut open = self.open.lock().unwrap();
        open.retain(|(from, to, a, b, _)| {
            let crosses = self.cut(*from, *to);
            if crosses {
                let _ = a.shutdown(Shutdown::Both);
                let _ = b.shutdown(Shutdown::Both);
            }
            !crosses
        });
    }

    /// Heals the partition.
    pub(crate) fn heal(&self) {
        *self.isolated.lock().unwrap() = None;
        self.all_cut.store(false, Ordering::SeqCst);
    }

    /// Starts a relay to `127.0.0.1:target` for node `to`; returns its port.
    pub(crate) fn relay(self: &Arc<Self>, to: usize, target: u16) -> Result<u16, String> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        self.ports.lock().unwrap().push(port);
        let split = self.clone();
        thread::spawn(move || {
            for inbound in listener.incoming().flatten() {
                if split.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let from = inbound.peer_addr().ok().and_then(|a| node_of(a.ip()));
                if split.cut(from, to) {
                    let _ = inbound.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(outbound) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let (Ok(a), Ok(b)) = (inbound.try_clone(), outbound.try_clone()) else {
                    continue;
                };
                let ended = Arc::new(AtomicBool::new(false));
                {
                    // Checked again under the lock a cut takes to close what
                    // crosses it: a cut made while this one connected must
                    // not miss it.
                    let mut open = split.open.lock().unwrap();
                    if split.cut(from, to) || split.stopped.load(Ordering::SeqCst) {
                        let _ = a.shutdown(Shutdown::Both);
                        let _ = b.shutdown(Shutdown::Both);
                        continue;
                    }
                    open.retain(|relayed| !relayed.4.load(Ordering::SeqCst));
                    open.push((from, to, a, b, ended.clone()));
                }
                pump(&split, &inbound, &outbound, ended.clone());
                pump(&split, &outbound, &inbound, ended);
            }
        });
        Ok(port)
    }

    /// Stops every relay: their listeners close, their connections end.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wake each accept loop, which then sees the flag and ends.
        for port in self.ports.lock().unwrap().iter() {
            let _ = TcpStream::connect(("127.0.0.1", *port));
        }
        for (_, _, a, b, _) in self.open.lock().unwrap().drain(..) {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
    }
}

/// Stops a [`Netsplit`]'s relays when the last owner lets go.
#[derive(Debug)]
pub(crate) struct StopOnDrop(pub(crate) Arc<Netsplit>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Copies `from` to `to` on a thread until either side closes, then marks
/// the connection `ended` and lets go of the sockets of every ended
/// connection (their clones in `split`'s list would otherwise stay open
/// until the next accept).
///
/// Two threads per connection, each with a small stack and its buffer on
/// the heap: a process that makes many connections (the soak) would
/// otherwise keep every ended thread's touched stack in glibc's cache of
/// thread stacks, which a soak's memory check reads as growth.
fn pump(split: &Arc<Netsplit>, from: &TcpStream, to: &TcpStream, ended: Arc<AtomicBool>) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    let split = split.clone();
    let done = ended.clone();
    let spawned = thread::Builder::new()
        .name("relay".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut buffer = vec![0u8; 16 * 1024];
            loop {
                match from.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
            ended.store(true, Ordering::SeqCst);
            if let Ok(mut open) = split.open.lock() {
                open.retain(|relayed| !relayed.4.load(Ordering::SeqCst));
            }
        });
    if spawned.is_err() {
        // No thread: the sockets went with the closure; the connection is over.
        done.store(true, Ordering::SeqCst);
    }
}

/// A relay before one `redis-server` that can make it unreachable; it
/// stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    split: Arc<Netsplit>,
    port: u16,
    _stop: Arc<StopOnDrop>,
}

impl FaultProxy {
    /// Listens on a free loopback port and relays to `127.0.0.1:target`.
    pub fn start(target: u16) -> Result<Self, String> {
        let split = Arc::new(Netsplit::default());
        let port = split.relay(0, target)?;
        let stop = Arc::new(StopOnDrop(split.clone()));
        Ok(FaultProxy {
            split,
            port,
            _stop: stop,
        })
    }

    /// The URL to give clients.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cuts every open connection and refuses new ones until
    /// [`Self::restore`].
    pub fn cut(&self) {
        self.split.all_cut.store(true, Ordering::SeqCst);
        self.split.close_cut();
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.split.heal();
    }

    /// Cuts for `duration`, on a thread of its own; returns at once.
    pub fn cut_for(&self, duration: std::time::Duration) {
        self.cut();
        let proxy = self.clone();
        thread::spawn(move || {
            thread::sleep(duration);
            proxy.restore();
        });
    }
}
