//! Percentiles and a Redis pub/sub listener that stamps each event's publication (the reference
//! for delivery latency).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

/// Nearest-rank summary of a sample in milliseconds (the peer harness uses the same rule).
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(values: &[f64]) -> Self {
        let mut a: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        a.sort_by(f64::total_cmp);
        let q = |p: f64| -> f64 {
            if a.is_empty() {
                return f64::NAN;
            }
            let rank = ((p / 100.0) * a.len() as f64).ceil() as usize;
            a[rank.clamp(1, a.len()) - 1]
        };
        Self {
            n: a.len(),
            p50: q(50.0),
            p90: q(90.0),
            p99: q(99.0),
            max: a.last().copied().unwrap_or(f64::NAN),
        }
    }

    pub fn json(&self) -> Value {
        json!({"n": self.n, "p50": r2(self.p50), "p90": r2(self.p90), "p99": r2(self.p99), "max": r2(self.max)})
    }

    /// "p50 1.2 / p99 3.4 ms"
    pub fn text(&self) -> String {
        if self.n == 0 {
            return "–".into();
        }
        format!("p50 {} / p99 {} ms", fmt(self.p50), fmt(self.p99))
    }
}

pub fn r2(v: f64) -> Value {
    if v.is_finite() {
        json!((v * 100.0).round() / 100.0)
    } else {
        Value::Null
    }
}

/// Short human number: 3 significant-ish digits.
pub fn fmt(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 100.0 {
        format!("{}", v.round() as i64)
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn ms_between(from: Instant, to: Instant) -> f64 {
    if to >= from {
        ms(to - from)
    } else {
        -ms(from - to)
    }
}

/// Publication times of job events, as seen by a subscriber of the events channel in this
/// process (the API subscribes to the same channel, so this is when the API could first know).
#[derive(Clone, Default)]
pub struct Published {
    inner: Arc<Mutex<HashMap<(Uuid, u64), Instant>>>,
}

impl Published {
    /// Subscribes to `channel` and records every `"<job id> <seq> <payload>"` line of its messages.
    pub async fn listen(
        redis_url: &str,
        channel: &str,
    ) -> Result<(Self, tokio::task::JoinHandle<()>)> {
        let client = redis::Client::open(redis_url)?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        let me = Self::default();
        let map = me.inner.clone();
        let handle = tokio::spawn(async move {
            let mut stream = pubsub.into_on_message();
            while let Some(msg) = stream.next().await {
                let at = Instant::now();
                let payload: Vec<u8> = msg.get_payload_bytes().to_vec();
                let text = String::from_utf8_lossy(&payload);
                // one event per line: a script call publishes all it appended in one message
                for line in text.split('\n') {
                    let mut parts = line.splitn(3, ' ');
                    let (Some(id), Some(seq)) = (parts.next(), parts.next()) else {
                        continue;
                    };
                    if let (Ok(id), Ok(seq)) = (Uuid::parse_str(id), seq.parse::<u64>())
                        && let Ok(mut m) = map.lock()
                    {
                        m.entry((id, seq)).or_insert(at);
                    }
                }
            }
        });
        Ok((me, handle))
    }

    pub fn get(&self, job: Uuid, seq: u64) -> Option<Instant> {
        self.inner
            .lock()
            .ok()
            .and_then(|m| m.get(&(job, seq)).copied())
    }
}

/// Parses the text of `/proc/<pid>/status` for a `Vm…:  123 kB` line, in MiB.
pub fn proc_mem_mib(pid: u32, field: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
}

/// CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat` (USER_HZ 100).
pub fn proc_cpu_secs(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the fields after the parenthesised command name; utime and stime are fields 14 and 15
    let rest = text.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

pub fn loadavg() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .filter_map(|v| v.parse().ok())
        .collect()
}

/// Ensures a response has the given status, with the body in the error.
pub async fn expect_status(res: reqwest::Response, status: u16) -> Result<Value> {
    let got = res.status().as_u16();
    let text = res.text().await?;
    if got != status {
        bail!(
            "HTTP {got} (wanted {status}): {}",
            text.chars().take(300).collect::<String>()
        );
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}
