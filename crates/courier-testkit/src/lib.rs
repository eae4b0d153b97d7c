//! Ephemeral `redis-server` processes on free loopback ports.
//!
//! Every Redis-backed test, benchmark and the demo start their Redis through
//! [`RedisServer`]: its own port, its own temporary directory, stopped and
//! removed on drop. A missing `redis-server` is an error that says how to
//! install it, never a silently skipped test.
//!
//! # Layout
//!
//! [`RedisServer`] and its [`RedisOptions`]; [`RedisCluster`], six servers
//! joined into a Redis Cluster of three masters with one replica each;
//! `netsplit`, relays that cut a cluster node off from the others, and the
//! [`FaultProxy`] that makes one server unreachable.

mod cluster;
mod netsplit;
mod tls;

pub use cluster::RedisCluster;
pub use netsplit::FaultProxy;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What to tell a user whose machine lacks `redis-server`.
pub const INSTALL_HINT: &str = "redis-server was not found on PATH; install Redis 7.0 or later: \
     `apt-get install redis-server` (Debian/Ubuntu), `brew install redis` (macOS), \
     or set REDIS_SERVER to the binary's path";

/// How to start a server.
#[derive(Debug, Clone, Default)]
pub struct RedisOptions {
    /// Extra `redis-server` arguments, e.g. `["--appendonly", "yes"]`.
    pub args: Vec<String>,
    /// The binary; default `$REDIS_SERVER`, else `redis-server` on PATH.
    pub binary: Option<String>,
    /// Also listen for TLS on a second port, with test certificates
    /// generated for this process ([`tls_ca_file`]).
    pub tls: bool,
}

impl RedisOptions {
    /// Append-only persistence with the given fsync policy (`always`,
    /// `everysec`, `no`), for restart tests.
    pub fn with_aof(mut self, fsync: &str) -> Self {
        self.args.extend(
            ["--appendonly", "yes", "--appendfsync", fsync]
                .into_iter()
                .map(String::from),
        );
        self
    }

    /// A TLS port beside the plain one.
    pub fn with_tls(mut self) -> Self {
        self.tls = true;
        self
    }
}

/// The test CA certificate that signs the TLS server certificate.
/// Generated on first use (rcgen), with the server certificate it signed.
pub fn tls_ca_file() -> PathBuf {
    tls_file("ca.crt")
}

/// A second test CA, which signed nothing: a client trusting only it must
/// refuse the test server.
pub fn other_ca_file() -> PathBuf {
    tls_file("other-ca.crt")
}

fn tls_file(name: &str) -> PathBuf {
    tls::dir().unwrap_or_else(|e| panic!("{e}")).join(name)
}

/// A running `redis-server`, stopped and its directory removed on drop.
#[derive(Debug)]
pub struct RedisServer {
    /// The process; `None` while stopped between `stop` and `start_again`.
    child: Option<Child>,
    /// The loopback port it listens on.
    port: u16,
    /// The TLS port, when started with TLS.
    tls_port: Option<u16>,
    /// Its working directory (data files and log).
    dir: PathBuf,
    /// How it was started, to restart it the same way.
    options: RedisOptions,
}

impl RedisServer {
    /// Starts a server with default options (no persistence).
    pub fn start() -> Result<Self, String> {
        Self::start_with(RedisOptions::default())
    }

    /// Starts a server with `options`.
    pub fn start_with(options: RedisOptions) -> Result<Self, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "courier-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // A free port can be taken by someone else between our probe and the
        // server's bind; try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            let tls_port = if options.tls {
                Some(free_port()?)
            } else {
                None
            };
            let mut server = RedisServer {
                child: None,
                port,
                tls_port,
                dir: dir.clone(),
                options: options.clone(),
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// Starts a server, panicking with the install hint when it cannot: for
    /// tests, where a missing Redis must fail loudly.
    pub fn must_start() -> Self {
        Self::start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS port, when started with TLS.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// `rediss://127.0.0.1:<tls port>/`, when started with TLS.
    pub fn tls_url(&self) -> Option<String> {
        self.tls_port
            .map(|port| format!("rediss://127.0.0.1:{port}/"))
    }

    /// The server's working directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory, so data
    /// persisted there (AOF) is loaded.
    pub fn start_again(&mut self) -> Result<(), String> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.spawn() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Sends one inline command and returns the first reply line, for test
    /// assertions that must not go through the code under test.
    pub fn command(&self, command: &str) -> Result<String, String> {
        let (line, _) = self.exchange(command)?;
        Ok(line)
    }

    /// Sends one inline command and returns the text of a bulk-string reply
    /// (`INFO`, `CLUSTER NODES`), or the reply line for any other reply.
    pub fn command_text(&self, command: &str) -> Result<String, String> {
        let (line, mut reader) = self.exchange(command)?;
        let Some(length) = line.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) else {
            return Ok(line);
        };
        let mut text = vec![0; length + 2];
        std::io::Read::read_exact(&mut reader, &mut text).map_err(|e| e.to_string())?;
        text.truncate(length);
        String::from_utf8(text).map_err(|e| e.to_string())
    }

    fn exchange(&self, command: &str) -> Result<(String, BufReader<TcpStream>), String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .map_err(|e| format!("connect to port {}: {e}", self.port))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        stream
            .write_all(format!("{command}\r\n").as_bytes())
            .map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        Ok((line.trim_end().to_string(), reader))
    }

    fn spawn(&mut self) -> Result<(), String> {
        let binary = self
            .options
            .binary
            .clone()
            .or_else(|| std::env::var("REDIS_SERVER").ok())
            .unwrap_or_else(|| "redis-server".into());
        // The directory again, in case it went away since the first try;
        // and stderr kept, for what redis-server says before it can log.
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let log = self.dir.join("redis.log");
        let stderr = std::fs::File::create(self.dir.join("stderr.log"))
            .map_err(|e| format!("cannot write in {}: {e}", self.dir.display()))?;
        let mut command = Command::new(&binary);
        command
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--daemonize", "no"])
            .args(["--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .args(&self.options.args)
            .args(self.tls_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let mut child = command.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                INSTALL_HINT.to_string()
            } else {
                format!("cannot start {binary}: {e}")
            }
        })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log).unwrap_or_default()
                    + &std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default();
                return Err(format!(
                    "redis-server on port {} exited with {status}: {}",
                    self.port,
                    log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
                ));
            }
            self.child = Some(child);
            if self.command("PING").is_ok_and(|reply| reply == "+PONG") {
                return Ok(());
            }
            child = self.child.take().expect("just set");
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "redis-server on port {} did not answer PING within 10s",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl RedisServer {
    fn tls_args(&self) -> Vec<String> {
        let Some(port) = self.tls_port else {
            return Vec::new();
        };
        let file = |name: &str| tls_file(name).display().to_string();
        vec![
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            file("server.crt"),
            "--tls-key-file".into(),
            file("server.key"),
            "--tls-ca-cert-file".into(),
            file("ca.crt"),
            "--tls-auth-clients".into(),
            "no".into(),
        ]
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn free_port() -> Result<u16, String> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_and_stops() {
        let server = RedisServer::must_start();
        assert_eq!(server.command("PING").unwrap(), "+PONG");
        let port = server.port();
        drop(server);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    #[test]
    fn restart_keeps_aof_data() {
        let mut server =
            RedisServer::start_with(RedisOptions::default().with_aof("always")).unwrap();
        assert_eq!(server.command("SET k v").unwrap(), "+OK");
        server.kill();
        server.start_again().unwrap();
        assert_eq!(server.command("EXISTS k").unwrap(), ":1");
    }

    #[test]
    fn missing_binary_says_how_to_install() {
        let options = RedisOptions {
            binary: Some("courier-no-such-redis-server".into()),
            ..RedisOptions::default()
        };
        assert_eq!(RedisServer::start_with(options).unwrap_err(), INSTALL_HINT);
    }
}
