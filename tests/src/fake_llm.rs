//! A local stand-in for an OpenAI-compatible server: it speaks the real chat-completions wire
//! protocol (JSON answers, and `data:` chunks ending with `[DONE]` for `"stream": true`), and
//! answers each request with what the test's handler says.

use std::sync::{Arc, Mutex};

use anyhow::Result;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What to answer one request with.
pub enum Reply {
    /// A completed chat completion whose message content is this text.
    Content(String),
    /// As `Content`, reporting that the answer used all of the request's `max_tokens` (what
    /// a request may cost at most).
    Spending(String),
    /// A streamed chat completion: these content deltas, a chunk with `finish_reason: stop`,
    /// then usage, then `[DONE]`.
    Chunks(Vec<String>),
    /// As `Chunks`, but stopped at the token limit (`finish_reason: length`).
    CutOff(Vec<String>),
    /// An HTTP error with this status and body.
    Error(u16, String),
    /// A 200 with this JSON body as it is (a refusal, no choices).
    Json(Value),
    /// A 429 with this `Retry-After` (seconds) and body.
    RetryAfter(u64, String),
    /// No answer at all: the connection stays open (a request its worker is killed in).
    Hang,
    /// A stream that breaks off: these content deltas, then (if given) an in-stream error
    /// object (`data: {"error": …}`), then `[DONE]`, with no `finish_reason` and no usage.
    Broken(Vec<String>, Option<Value>),
    /// As `Chunks`, each delta sent after this pause (a slow model that never stalls long).
    Trickle(Vec<String>, std::time::Duration),
}

type Handler = dyn Fn(&Value, usize) -> Reply + Send + Sync;

pub struct FakeLlm {
    /// Base URL including `/v1`.
    pub url: String,
    /// Every request body received, in order.
    pub requests: Arc<Mutex<Vec<Value>>>,
    /// When each request arrived, in order.
    pub arrivals: Arc<Mutex<Vec<std::time::Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeLlm {
    pub async fn start(
        handler: impl Fn(&Value, usize) -> Reply + Send + Sync + 'static,
    ) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/v1", listener.local_addr()?);
        let requests: Arc<Mutex<Vec<Value>>> = Arc::default();
        let arrivals: Arc<Mutex<Vec<std::time::Instant>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let (seen, at) = (requests.clone(), arrivals.clone());
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (seen, at, handler) = (seen.clone(), at.clone(), handler.clone());
                tokio::spawn(async move {
                    let _ = serve(socket, &seen, &at, handler.as_ref()).await;
                });
            }
        });
        Ok(Self {
            url,
            requests,
            arrivals,
            task,
        })
    }

    pub fn count(&self) -> usize {
        self.requests.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// The text of every user message sent so far.
    pub fn user_messages(&self) -> Vec<String> {
        let requests = self.requests.lock().map(|r| r.clone()).unwrap_or_default();
        requests
            .iter()
            .flat_map(|r| r["messages"].as_array().cloned().unwrap_or_default())
            .filter(|m| m["role"] == "user")
            .filter_map(|m| m["content"].as_str().map(str::to_owned))
            .collect()
    }
}

/// The week a plan request asks for ("Return week N as JSON."), if any.
pub fn requested_week(body: &Value) -> Option<u32> {
    let text = body["messages"]
        .as_array()?
        .iter()
        .find(|m| m["role"] == "user")?["content"]
        .as_str()?;
    let at = text.find("Return week ")? + "Return week ".len();
    text[at..].split_whitespace().next()?.parse().ok()
}

async fn serve(
    mut socket: TcpStream,
    seen: &Mutex<Vec<Value>>,
    arrivals: &Mutex<Vec<std::time::Instant>>,
    handler: &Handler,
) -> Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body: Value = serde_json::from_slice(&buf[header_end..]).unwrap_or(Value::Null);
    let n = {
        let mut s = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        s.push(body.clone());
        if let Ok(mut a) = arrivals.lock() {
            a.push(std::time::Instant::now());
        }
        s.len() - 1
    };
    let usage = json!({"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150});
    let reply = handler(&body, n);
    let response = match reply {
        Reply::Trickle(ref deltas, pause) => {
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
                .await?;
            for d in deltas {
                tokio::time::sleep(pause).await;
                socket.write_all(content_chunk(d).as_bytes()).await?;
            }
            socket
                .write_all(stream_end("stop", &usage).as_bytes())
                .await?;
            socket.shutdown().await?;
            return Ok(());
        }
        Reply::Broken(ref deltas, ref error) => {
            let mut out = String::from(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
            );
            for d in deltas {
                out.push_str(&content_chunk(d));
            }
            if let Some(e) = error {
                out.push_str(&format!("data: {}\n\n", json!({"error": e})));
            }
            out.push_str("data: [DONE]\n\n");
            out
        }
        Reply::Hang => {
            std::future::pending::<()>().await;
            return Ok(());
        }
        Reply::Content(ref text) | Reply::Spending(ref text) => {
            let usage = if matches!(reply, Reply::Spending(_)) {
                let spent = body["max_tokens"].as_u64().unwrap_or(0);
                json!({"prompt_tokens": 100, "completion_tokens": spent, "total_tokens": 100 + spent})
            } else {
                usage
            };
            let payload = json!({"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "fake",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": usage})
            .to_string();
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
                payload.len()
            )
        }
        Reply::Chunks(ref deltas) | Reply::CutOff(ref deltas) => {
            let finish = if matches!(reply, Reply::CutOff(_)) {
                "length"
            } else {
                "stop"
            };
            let mut out = String::from(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
            );
            for d in deltas {
                out.push_str(&content_chunk(d));
            }
            out.push_str(&stream_end(finish, &usage));
            out
        }
        Reply::Json(ref body) => {
            let text = body.to_string();
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            )
        }
        Reply::Error(status, ref text) => {
            format!(
                "HTTP/1.1 {status} Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            )
        }
        Reply::RetryAfter(secs, ref text) => {
            format!(
                "HTTP/1.1 429 Too Many Requests\r\nretry-after: {secs}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            )
        }
    };
    socket.write_all(response.as_bytes()).await?;
    socket.shutdown().await?;
    Ok(())
}

/// One streamed content delta.
fn content_chunk(delta: &str) -> String {
    let c = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake",
        "choices": [{"index": 0, "delta": {"content": delta}, "finish_reason": null}]});
    format!("data: {c}\n\n")
}

/// The end of a stream: its `finish_reason`, the usage chunk, `[DONE]`.
fn stream_end(finish: &str, usage: &Value) -> String {
    let end = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake",
        "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]});
    let last = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake", "choices": [], "usage": usage});
    format!("data: {end}\n\ndata: {last}\n\ndata: [DONE]\n\n")
}
