//! A TCP proxy in front of PostgreSQL that can lose a reply after its statement committed (the
//! case `KeyedConns` repeats statements for, which no server-side kill can time exactly), or
//! play a PostgreSQL that is down for a while (the shared server cannot be stopped in a test).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The command tag (`UPDATE`, `INSERT`) whose next committed reply is to be lost, and whether
/// its connection then stays open (a server that hangs) instead of closing.
type Armed = Arc<Mutex<Option<(&'static str, bool)>>>;

/// Forwards every connection to PostgreSQL (connections without TLS: it reads the server's
/// messages). Once [`armed`](Self::arm), the next completion of the given command and the rest
/// of its reply, up to the server's ready-for-query (sent after the commit), are not forwarded:
/// the connection is closed instead.
pub struct ReplyLosingProxy {
    pub addr: SocketAddr,
    armed: Armed,
    lost: Arc<AtomicUsize>,
    /// Down: connections are cut and new ones closed at once.
    down: tokio::sync::watch::Sender<bool>,
    turned_away: Arc<AtomicUsize>,
}

impl ReplyLosingProxy {
    /// A proxy in front of `database_url`'s server, and a pool (connecting lazily) whose
    /// connections go through it.
    pub async fn in_front_of(database_url: &str) -> Result<(Self, PgPool)> {
        let server: PgConnectOptions = database_url.parse()?;
        let upstream = tokio::net::lookup_host((server.get_host(), server.get_port()))
            .await?
            .next()
            .context("no address for the database server")?;
        let proxy = Self::start(upstream).await?;
        let pool = PgPoolOptions::new().connect_lazy_with(
            server
                .host("127.0.0.1")
                .port(proxy.addr.port())
                .ssl_mode(PgSslMode::Disable),
        );
        Ok((proxy, pool))
    }

    pub async fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let armed: Armed = Arc::new(Mutex::new(None));
        let lost = Arc::new(AtomicUsize::new(0));
        let (down, _) = tokio::sync::watch::channel(false);
        let turned_away = Arc::new(AtomicUsize::new(0));
        let (a, l, d, t) = (
            armed.clone(),
            lost.clone(),
            down.clone(),
            turned_away.clone(),
        );
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut is_down = d.subscribe();
                if *is_down.borrow_and_update() {
                    t.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let relay = relay(client, server, a.clone(), l.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        () = relay => {}
                        _ = is_down.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        Ok(Self {
            addr,
            armed,
            lost,
            down,
            turned_away,
        })
    }

    /// Connections closed on arrival while down, so far.
    pub fn turned_away(&self) -> usize {
        self.turned_away.load(Ordering::SeqCst)
    }

    /// PostgreSQL "down" (every connection through the proxy cut, new ones closed as they
    /// come) or back up.
    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }

    /// A database URL of the server behind the proxy, reached through it.
    pub fn url_for(&self, database_url: &str) -> Result<String> {
        let mut url = reqwest::Url::parse(database_url)?;
        url.set_host(Some("127.0.0.1"))?;
        url.set_port(Some(self.addr.port()))
            .map_err(|()| anyhow::anyhow!("cannot set a port on {database_url}"))?;
        url.query_pairs_mut().append_pair("sslmode", "disable");
        Ok(url.to_string())
    }

    /// Loses the reply of the next committed `command` (a command tag: `UPDATE`, `INSERT`) and
    /// closes its connection.
    pub fn arm(&self, command: &'static str) {
        if let Ok(mut armed) = self.armed.lock() {
            *armed = Some((command, false));
        }
    }

    /// As [`arm`](Self::arm), but the connection stays open and silent, as with a server or a
    /// network that hangs.
    pub fn arm_silent(&self, command: &'static str) {
        if let Ok(mut armed) = self.armed.lock() {
            *armed = Some((command, true));
        }
    }

    /// Replies lost so far.
    pub fn lost(&self) -> usize {
        self.lost.load(Ordering::SeqCst)
    }
}

async fn relay(mut client: TcpStream, mut server: TcpStream, armed: Armed, lost: Arc<AtomicUsize>) {
    let (mut client_rd, mut client_wr) = client.split();
    let (mut server_rd, mut server_wr) = server.split();
    let upstream = tokio::io::copy(&mut client_rd, &mut server_wr);
    let downstream = async {
        // the server's messages: a type byte, then a length that counts itself and the body
        let mut pending = Vec::new();
        // losing a reply: Some(whether to keep the connection open and silent)
        let mut losing: Option<bool> = None;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            // forwarded up to `forward`; held from there while losing a reply
            let (mut forward, mut at) = (0, 0);
            while let Some(len) = message_len(&pending[at..]) {
                let kind = pending[at];
                let target = armed.lock().ok().and_then(|a| *a);
                if let Some((tag, silent)) = target
                    && losing.is_none()
                    && kind == b'C'
                    && pending[at + 5..].starts_with(tag.as_bytes())
                {
                    losing = Some(silent);
                }
                if let Some(silent) = losing
                    && kind == b'Z'
                {
                    // committed: drop this reply (and the connection, unless it stays silent)
                    if let Ok(mut armed) = armed.lock() {
                        *armed = None;
                    }
                    lost.fetch_add(1, Ordering::SeqCst);
                    if !silent {
                        return;
                    }
                    std::future::pending::<()>().await;
                }
                at += len;
                if losing.is_none() {
                    forward = at;
                }
            }
            if client_wr.write_all(&pending[..forward]).await.is_err() {
                return;
            }
            pending.drain(..forward);
        }
    };
    tokio::select! {
        _ = upstream => {}
        () = downstream => {}
    }
}

/// The length of the complete message at the start of `bytes`, if it is all there.
fn message_len(bytes: &[u8]) -> Option<usize> {
    let header: [u8; 4] = bytes.get(1..5)?.try_into().ok()?;
    let len = 1 + usize::try_from(u32::from_be_bytes(header)).ok()?;
    (bytes.len() >= len).then_some(len)
}
