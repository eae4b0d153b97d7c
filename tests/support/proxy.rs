//! A TCP proxy between a client and `redis-server`, to make the network
//! fail on cue: drop one reply and cut the connection after Redis acted on
//! the request (a lost acknowledgement), or refuse all traffic for a while
//! (Redis unreachable).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Forwards both ways.
    Pass = 0,
    /// Forwards requests; swallows the next reply and cuts that
    /// connection, then passes again.
    DropNextReply = 1,
    /// Cuts every connection and refuses new ones.
    Refuse = 2,
}

/// A running proxy; it stops with the test's runtime.
#[derive(Debug)]
pub struct Proxy {
    port: u16,
    mode: Arc<AtomicU8>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `target_port`.
    pub async fn start(target_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(Mode::Pass as u8));
        let shared = mode.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if shared.load(Ordering::SeqCst) == Mode::Refuse as u8 {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, shared.clone()));
            }
        });
        Proxy { port, mode }
    }

    /// The URL to give clients.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Changes what the proxy does from now on.
    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Whether a `DropNextReply` already happened.
    pub fn dropped(&self) -> bool {
        self.mode.load(Ordering::SeqCst) != Mode::DropNextReply as u8
    }
}

async fn relay(client: TcpStream, server: TcpStream, mode: Arc<AtomicU8>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let cut = |mode: &AtomicU8| mode.load(Ordering::SeqCst) == Mode::Refuse as u8;
    let requests = {
        let mode = mode.clone();
        async move {
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let Ok(n) = client_read.read(&mut buffer).await else {
                    return;
                };
                if n == 0 || cut(&mode) || server_write.write_all(&buffer[..n]).await.is_err() {
                    return;
                }
            }
        }
    };
    let replies = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let Ok(n) = server_read.read(&mut buffer).await else {
                return;
            };
            if n == 0 || cut(&mode) {
                return;
            }
            // Swallow this reply and cut the connection, once.
            if mode
                .compare_exchange(
                    Mode::DropNextReply as u8,
                    Mode::Pass as u8,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .is_ok()
            {
                return;
            }
            if client_write.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    };
    // Either direction ending ends both: the client sees the cut.
    tokio::select! {
        () = requests => {}
        () = replies => {}
    }
}
