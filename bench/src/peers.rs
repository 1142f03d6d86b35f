//! The peer harness (`../shared/peer-bench/run-all.sh`: BullMQ against the same Redis), run once
//! with a reduced scenario set from a writable copy, and its JSON lines parsed for the targets.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

pub struct Peers {
    pub json: Value,
    pub markdown: String,
    figures: HashMap<String, f64>,
}

impl Peers {
    pub fn get(&self, key: &str) -> Option<f64> {
        self.figures.get(key).copied()
    }

    pub fn failed(e: &anyhow::Error) -> Self {
        Self {
            json: json!({"error": format!("{e:#}")}),
            markdown: format!("peer harness failed: {e:#}\n"),
            figures: HashMap::new(),
        }
    }
}

/// Scenario sets of run-all.sh used here: BullMQ no-op (live add/addBulk and drain), 5 progress
/// events per job, and the paced open-loop runs. Celery and cmdstats are left out for time.
pub const ONLY: &str = "bullmq progress paced";

pub async fn run(
    src: &Path,
    work: &Path,
    n: u32,
    redis_url: &str,
    out_dir: &Path,
    stamp: &str,
) -> Result<Peers> {
    std::fs::create_dir_all(work)?;
    let mut copied = 0;
    for entry in std::fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let to = work.join(entry.file_name());
        if to.exists() {
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))?;
        }
        std::fs::copy(entry.path(), &to)?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))?;
        copied += 1;
    }
    if copied == 0 {
        bail!("no files in {}", src.display());
    }
    let hostport = redis_url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:6379")
        .to_owned();
    let (host, port) = hostport
        .split_once(':')
        .unwrap_or((hostport.as_str(), "6379"));
    let log = out_dir.join(format!("{stamp}-peers.log"));
    let out = tokio::process::Command::new("bash")
        .arg("run-all.sh")
        .current_dir(work)
        .env("REPS", "1")
        .env("ONLY", ONLY)
        .env("N_BULL", n.to_string())
        .env("REDIS_HOST", host)
        .env("REDIS_PORT", port)
        .output()
        .await
        .context("running run-all.sh")?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    std::fs::write(&log, format!("{stdout}\n--- stderr ---\n{stderr}"))?;
    if !out.status.success() {
        bail!("run-all.sh failed ({}); see {}", out.status, log.display());
    }
    let raw = stdout
        .lines()
        .find_map(|l| l.strip_prefix("raw: "))
        .context("run-all.sh printed no `raw:` line")?;
    let text = std::fs::read_to_string(work.join(raw.trim()))?;
    let recs: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let meta =
        std::fs::read_to_string(work.join(format!("{}.meta", raw.trim()))).unwrap_or_default();
    let mut figures = HashMap::new();
    for r in &recs {
        if r["bench"] != "bullmq" {
            continue;
        }
        let scenario = r["scenario"].as_str().unwrap_or("");
        let enqueue = r["enqueue"].as_str().unwrap_or("");
        let w = r["workers"].as_u64().unwrap_or(0);
        let e2e = r["e2e_jobs_s"].as_f64();
        let key = if enqueue.starts_with("paced") {
            format!("paced_{scenario}")
        } else if enqueue == "drain" {
            format!("drain_{w}")
        } else {
            format!("{scenario}_{enqueue}_{w}")
        };
        if let Some(v) = e2e {
            figures.insert(key.clone(), v);
        }
        for (k, path) in [
            ("start_p50", ["start_lat_ms", "p50"]),
            ("start_p99", ["start_lat_ms", "p99"]),
            ("first_event_p50", ["enqueue_to_first_event_ms", "p50"]),
            ("first_event_p99", ["enqueue_to_first_event_ms", "p99"]),
            ("event_p50", ["event_lat_ms", "p50"]),
            ("event_p99", ["event_lat_ms", "p99"]),
        ] {
            if let Some(v) = r[path[0]][path[1]].as_f64() {
                figures.insert(format!("{key}_{k}"), v);
            }
        }
    }
    // the harness's own tables (report.js) follow the `raw:` line
    let tables: String = stdout
        .split_once(&format!("raw: {raw}"))
        .map(|(_, t)| t.trim().to_owned())
        .unwrap_or_default();
    let markdown = format!("```\n{}\n```\n\n{tables}\n", meta.trim());
    let mut sorted: Vec<(&String, &f64)> = figures.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    Ok(Peers {
        json: json!({"only": ONLY, "n": n, "raw": work.join(raw.trim()).display().to_string(),
                     "meta": meta, "records": recs,
                     "figures": sorted.into_iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>()}),
        markdown,
        figures,
    })
}
