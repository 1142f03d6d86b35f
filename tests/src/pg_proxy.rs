//! A TCP proxy in front of PostgreSQL that can lose a reply after its statement committed: the
//! case `KeyedConns` repeats statements for, which no server-side kill can time exactly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Forwards every connection to `upstream` (connections without TLS: it reads the server's
/// messages). Once [`armed`](Self::arm), the next `UPDATE`'s completion and the rest of its
/// reply, up to the server's ready-for-query (sent after the commit), are not forwarded: the
/// connection is closed instead.
pub struct ReplyLosingProxy {
    pub addr: SocketAddr,
    armed: Arc<AtomicBool>,
    lost: Arc<AtomicUsize>,
}

impl ReplyLosingProxy {
    pub async fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let armed = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicUsize::new(0));
        let (a, l) = (armed.clone(), lost.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, a.clone(), l.clone()));
            }
        });
        Ok(Self { addr, armed, lost })
    }

    /// Loses the next committed `UPDATE`'s reply.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Replies lost so far.
    pub fn lost(&self) -> usize {
        self.lost.load(Ordering::SeqCst)
    }
}

async fn relay(
    mut client: TcpStream,
    mut server: TcpStream,
    armed: Arc<AtomicBool>,
    lost: Arc<AtomicUsize>,
) {
    let (mut client_rd, mut client_wr) = client.split();
    let (mut server_rd, mut server_wr) = server.split();
    let upstream = tokio::io::copy(&mut client_rd, &mut server_wr);
    let downstream = async {
        // the server's messages: a type byte, then a length that counts itself and the body
        let mut pending = Vec::new();
        let mut losing = false;
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
                if armed.load(Ordering::SeqCst)
                    && kind == b'C'
                    && pending[at + 5..].starts_with(b"UPDATE")
                {
                    losing = true;
                }
                if losing && kind == b'Z' {
                    // committed: drop this reply and the connection
                    armed.store(false, Ordering::SeqCst);
                    lost.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                at += len;
                if !losing {
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
