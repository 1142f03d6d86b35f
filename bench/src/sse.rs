//! The bench's SSE clients: they stamp each event's arrival. Lean on purpose: they share the
//! machine's 2 cores with the API (10,000 of them in item 4, one per job in item 2), so what
//! they spend per event shows in what they measure. Each frame is parsed where it lies in the
//! buffer and only its `type` is read from the JSON.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

/// One received SSE event: its id, type and arrival time.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub id: u64,
    pub kind: String,
    pub at: Instant,
}

/// Splits an event stream into frames as its bytes arrive.
#[derive(Default)]
struct Frames {
    buf: Vec<u8>,
    out: Vec<Arrival>,
}

impl Frames {
    /// Takes the next bytes of the stream; true once a `done` event has arrived.
    fn push(&mut self, bytes: &[u8], at: Instant) -> bool {
        // a frame's end may straddle reads: look again from the byte before the new ones
        let mut from = self.buf.len().saturating_sub(1);
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        let mut done = false;
        while let Some(pos) = self.buf[from..].windows(2).position(|w| w == b"\n\n") {
            let end = from + pos;
            if let Some(arrival) = parse_frame(&self.buf[start..end], at) {
                done = arrival.kind == "done";
                self.out.push(arrival);
            }
            start = end + 2;
            from = start;
            if done {
                break;
            }
        }
        self.buf.drain(..start);
        done
    }
}

/// One frame's `id` and the `type` of its `data` (`None` for a frame without an id).
fn parse_frame(frame: &[u8], at: Instant) -> Option<Arrival> {
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    let mut id = None;
    let mut data: Vec<&[u8]> = Vec::new();
    for line in frame.split(|b| *b == b'\n') {
        if let Some(v) = line.strip_prefix(b"id:") {
            id = std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok();
        } else if let Some(v) = line.strip_prefix(b"data:") {
            data.push(v.strip_prefix(b" ").unwrap_or(v));
        }
    }
    let id = id?;
    let joined;
    let json: &[u8] = match data.as_slice() {
        [one] => one,
        many => {
            joined = many.join(&b'\n');
            &joined
        }
    };
    let kind = serde_json::from_slice::<Kind>(json)
        .map(|k| k.kind.into_owned())
        .unwrap_or_default();
    Some(Arrival { id, kind, at })
}

/// Reads an SSE response until a `done` event, the end of the stream, or `timeout`.
pub async fn read_sse(res: reqwest::Response, timeout: Duration) -> Result<Vec<Arrival>> {
    let mut body = res.bytes_stream();
    let mut frames = Frames::default();
    let read = async {
        while let Some(chunk) = body.next().await {
            if frames.push(&chunk?, Instant::now()) {
                break;
            }
        }
        anyhow::Ok(())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(read) => read.map(|()| frames.out),
        Err(_) => bail!(
            "SSE stream not done after {timeout:?} ({} events)",
            frames.out.len()
        ),
    }
}

/// An event stream read straight off its TCP connection (HTTP/1.1, chunked): one task wake and
/// one `read` per arrival, where an HTTP client library adds a connection task and a body
/// channel. For the 10,000 clients of item 4, whose reading shares the cores with the API.
pub struct RawSse {
    stream: TcpStream,
    body: Chunked,
}

/// A chunked body's decoding state.
#[derive(Default)]
struct Chunked {
    /// Response bytes read but not yet decoded.
    raw: Vec<u8>,
    /// Bytes left of the current chunk's data, and whether the CRLF after it is still due.
    chunk_left: usize,
    crlf_due: bool,
}

impl RawSse {
    /// `GET /api/v1/jobs/{id}/events`; fails unless the answer is a 200 chunked event stream.
    pub async fn open(addr: SocketAddr, token: &str, id: Uuid) -> Result<Self> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let request = format!(
            "GET /api/v1/jobs/{id}/events HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\naccept: text/event-stream\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::with_capacity(2048);
        let head_len = loop {
            if stream.read_buf(&mut raw).await? == 0 {
                bail!("events of {id}: connection closed before the response head");
            }
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut res = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(len) = res.parse(&raw)? {
                ensure!(res.code == Some(200), "events of {id}: HTTP {:?}", res.code);
                let chunked = res.headers.iter().any(|h| {
                    h.name.eq_ignore_ascii_case("transfer-encoding")
                        && h.value.eq_ignore_ascii_case(b"chunked")
                });
                ensure!(chunked, "events of {id}: not a chunked response");
                break len;
            }
        };
        raw.drain(..head_len);
        Ok(Self {
            stream,
            body: Chunked {
                raw,
                ..Chunked::default()
            },
        })
    }

    /// Reads until a `done` event, the end of the stream, or `timeout`. The connection stays
    /// open (in `self`) until the caller drops it, as a browser keeps it for its next request.
    pub async fn read(&mut self, timeout: Duration) -> Result<Vec<Arrival>> {
        let mut frames = Frames::default();
        let read = async {
            // what arrived with the response head counts from now
            let mut at = Instant::now();
            loop {
                if self.body.decode(&mut frames, at)? {
                    return Ok(());
                }
                if self.stream.read_buf(&mut self.body.raw).await? == 0 {
                    bail!("event stream closed before done");
                }
                at = Instant::now();
            }
        };
        match tokio::time::timeout(timeout, read).await {
            Ok(read) => read.map(|()| frames.out),
            Err(_) => bail!(
                "SSE stream not done after {timeout:?} ({} events)",
                frames.out.len()
            ),
        }
    }
}

impl Chunked {
    /// Passes the chunk data in `raw` to `frames`; true once `done` arrived or the body ended.
    fn decode(&mut self, frames: &mut Frames, at: Instant) -> Result<bool> {
        let mut pos = 0;
        let finished = loop {
            let rest = &self.raw[pos..];
            if self.chunk_left > 0 {
                let n = self.chunk_left.min(rest.len());
                if n == 0 {
                    break false;
                }
                self.chunk_left -= n;
                pos += n;
                if frames.push(&rest[..n], at) {
                    break true;
                }
                continue;
            }
            if self.crlf_due {
                if rest.len() < 2 {
                    break false;
                }
                ensure!(rest.starts_with(b"\r\n"), "malformed chunk end");
                self.crlf_due = false;
                pos += 2;
                continue;
            }
            // a chunk-size line: hex digits, maybe extensions, CRLF
            let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
                break false;
            };
            let line = std::str::from_utf8(&rest[..eol])?;
            let hex = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(hex, 16)
                .with_context(|| format!("malformed chunk size {line:?}"))?;
            pos += eol + 2;
            if size == 0 {
                break true;
            }
            self.chunk_left = size;
            self.crlf_due = true;
        };
        self.raw.drain(..pos);
        Ok(finished)
    }
}

/// The API's socket address from its base URL (`http://127.0.0.1:port`).
pub fn socket_addr(base: &str) -> Result<SocketAddr> {
    base.strip_prefix("http://")
        .ok_or_else(|| anyhow!("not an http:// URL: {base}"))?
        .trim_end_matches('/')
        .parse()
        .with_context(|| format!("no socket address in {base}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads_are_parsed_once_each() {
        let mut f = Frames::default();
        let now = Instant::now();
        assert!(!f.push(b"data: {\"type\":\"progress\"}\nid: 1\n", now));
        assert!(!f.push(b"\n:\n\ndata: {\"type\":\"res", now));
        assert!(f.push(
            b"ult\"}\nid: 2\n\ndata: {\"type\":\"done\"}\nid: 3\n\n",
            now
        ));
        let got: Vec<_> = f.out.iter().map(|a| (a.id, a.kind.as_str())).collect();
        assert_eq!(got, [(1, "progress"), (2, "result"), (3, "done")]);
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_boundaries() {
        let body = b"20\r\ndata: {\"type\":\"progress\"}\nid: 1\n\r\n5;x=y\r\n\n\ndat\r\n13\r\na: {\"type\":\"done\"}\n\r\n7\r\nid: 2\n\n\r\n0\r\n\r\n";
        for step in [1, 2, 5, body.len()] {
            let (mut c, mut f, now) = (Chunked::default(), Frames::default(), Instant::now());
            let mut finished = false;
            for piece in body.chunks(step) {
                c.raw.extend_from_slice(piece);
                finished = c.decode(&mut f, now).unwrap();
                if finished {
                    break;
                }
            }
            assert!(finished, "step {step}");
            let got: Vec<_> = f.out.iter().map(|a| (a.id, a.kind.as_str())).collect();
            assert_eq!(got, [(1, "progress"), (2, "done")], "step {step}");
        }
    }

    #[test]
    fn frames_give_their_id_and_event_type() {
        let at = Instant::now();
        let kind = |frame: &str| parse_frame(frame.as_bytes(), at).map(|a| (a.id, a.kind));
        assert_eq!(
            kind("id: 3\nevent: progress\ndata: {\"type\":\"progress\",\"pct\":20}"),
            Some((3, "progress".to_owned()))
        );
        // data over several lines is joined with newlines, as SSE says
        assert_eq!(
            kind("id:7\ndata: {\"type\":\ndata: \"done\"}"),
            Some((7, "done".to_owned()))
        );
        assert_eq!(kind(": keep-alive"), None);
        assert_eq!(kind("id: 1\ndata: not json"), Some((1, String::new())));
    }
}
