//! `pacer-bench`: the benchmark suite (issue 5). Starts from a clean database and Redis prefix,
//! spawns the real `pacer-api` and `pacer-worker` binaries (next to this executable), drives them
//! over HTTP and SSE, and writes `bench-results/<timestamp>.json` plus a markdown table (stdout
//! and `bench-results/<timestamp>.md`). See BENCHMARKS.md for what each figure means.

mod deploy;
mod peers;
mod scen;
mod sse;
mod util;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::{Value, json};

use crate::deploy::Deploy;
use crate::scen::{Plan, Row};
use crate::util::{fmt, loadavg};

#[derive(Debug, Parser)]
#[command(
    name = "pacer-bench",
    about = "Pacer benchmark suite (see BENCHMARKS.md)"
)]
struct Cli {
    /// Tiny counts of every scenario (seconds); asserts only that the suite completes.
    #[arg(long)]
    smoke: bool,
    /// Also run the peer harness (BullMQ; ../shared/peer-bench/run-all.sh, REPS=1, reduced set).
    #[arg(long)]
    peers: bool,
    /// Only these items (comma-separated numbers 1-8), e.g. `--only 1,2`.
    #[arg(long, value_delimiter = ',')]
    only: Vec<u8>,
    /// PostgreSQL server (no database name); the suite creates and drops its own database.
    #[arg(
        long,
        env = "PACER_BENCH_DATABASE_SERVER",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    database_server: String,
    /// Connection parameters added to the database URL of the bench and the product processes.
    /// The compose deployment's PostgreSQL has no TLS; a Debian one negotiates TLS by default,
    /// which costs CPU on both sides of every query. Empty: leave sqlx's defaults.
    #[arg(
        long,
        env = "PACER_BENCH_DATABASE_PARAMS",
        default_value = "sslmode=disable"
    )]
    database_params: String,
    /// Redis; the suite uses its own key prefix and deletes only its own keys.
    #[arg(
        long,
        env = "PACER_BENCH_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,
    /// Folder of pacer-api / pacer-worker (default: next to this executable).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Where the JSON, markdown and process logs go.
    #[arg(long, default_value = "bench-results")]
    out_dir: PathBuf,
    /// The peer harness (read only; copied to --peer-work-dir to run).
    #[arg(long, default_value = "../shared/peer-bench")]
    peer_src: PathBuf,
    /// Writable copy of the peer harness (keeps node_modules/.venv between runs).
    #[arg(long)]
    peer_work_dir: Option<PathBuf>,
    /// Jobs per BullMQ run of the peer harness (its N_BULL).
    #[arg(long, default_value_t = 20_000)]
    peer_n: u32,
    /// Override the backlog size (item 5).
    #[arg(long)]
    backlog_jobs: Option<i64>,
    /// `PACER_CONCURRENCY` of each worker process the suite starts.
    #[arg(long, env = "PACER_BENCH_WORKER_CONCURRENCY", default_value_t = deploy::WORKER_CONCURRENCY)]
    worker_concurrency: u32,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pacer-bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pacer-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The product configuration the suite runs with (everything else is the default).
fn config(worker_concurrency: u32) -> String {
    format!(
        "pacer-api: defaults (PACER_DB_MAX_CONNECTIONS 20, PACER_QUEUE_HIGH_WATER 2000); \
pacer-worker: defaults (heartbeat 2 s × 3, poll 100 ms) except PACER_CONCURRENCY {worker_concurrency} per queue \
(default 8) and PACER_DB_MAX_CONNECTIONS 12; rules provider, PACER_RULES_STEP_DELAY_MS 0 unless a row says otherwise; \
generate_draft input {{weeks: 1, level: beginner}}; PostgreSQL with synchronous_commit on"
    )
}

fn wanted(cli: &Cli, item: u8) -> bool {
    cli.only.is_empty() || cli.only.contains(&item)
}

fn failed_row(item: u8, scenario: &str, config: String, e: &anyhow::Error) -> Row {
    eprintln!("pacer-bench: item {item} ({scenario}, {config}) failed: {e:#}");
    Row::new(
        item,
        scenario,
        config,
        format!(
            "FAILED: {}",
            format!("{e:#}").chars().take(200).collect::<String>()
        ),
        json!({"error": format!("{e:#}")}),
    )
}

async fn run(cli: Cli) -> Result<()> {
    let started = chrono::Utc::now();
    let t_start = Instant::now();
    let stamp = started.format("%Y%m%d-%H%M%S").to_string();
    let db_stamp = started.format("%Y%m%d%H%M%S").to_string();
    let mut plan = if cli.smoke {
        Plan::smoke()
    } else {
        Plan::full()
    };
    if let Some(n) = cli.backlog_jobs {
        plan.backlog_jobs = n.max(1);
    }
    let bin_dir = match &cli.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(PathBuf::from)
            .context("no folder for the executable")?,
    };
    std::fs::create_dir_all(&cli.out_dir)?;
    let log_dir = cli.out_dir.join("logs").join(&stamp);
    let load_start = loadavg();
    let nofile = nofile_limit();
    let max_fanout = plan.fanout.iter().copied().max().unwrap_or(0);
    if nofile.is_some_and(|n| n < max_fanout as u64 + 1000) {
        eprintln!(
            "pacer-bench: open-file limit {nofile:?} is low for {max_fanout} SSE clients; raise it (ulimit -n 65536, as scripts/bench.sh does)"
        );
    }
    eprintln!(
        "pacer-bench: {} run, binaries from {}, load {load_start:?}",
        if cli.smoke { "smoke" } else { "full" },
        bin_dir.display()
    );

    let mut d = Deploy::create(
        &cli.database_server,
        &cli.database_params,
        &cli.redis_url,
        &bin_dir,
        &log_dir,
        &db_stamp,
        cli.worker_concurrency,
    )
    .await?;
    let rows = tokio::select! {
        rows = suite(&cli, &plan, &mut d) => rows,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("pacer-bench: interrupted; cleaning up");
            Vec::new()
        }
    };
    let cleanup = d.destroy().await;
    if let Err(e) = &cleanup {
        eprintln!("pacer-bench: cleanup: {e:#}");
    }

    let pacer_secs = t_start.elapsed().as_secs_f64();
    let peer = if cli.peers {
        eprintln!("pacer-bench: peer harness (BullMQ)…");
        let work = cli.peer_work_dir.clone().unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()))
                .join(".cache/pacer/peer-bench")
        });
        match peers::run(
            &cli.peer_src,
            &work,
            cli.peer_n,
            &cli.redis_url,
            &cli.out_dir,
            &stamp,
        )
        .await
        {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("pacer-bench: peer harness failed: {e:#}");
                Some(peers::Peers::failed(&e))
            }
        }
    } else {
        None
    };
    let total_secs = t_start.elapsed().as_secs_f64();
    let load_end = loadavg();

    let meta = json!({
        "started": started.to_rfc3339(),
        "finished": chrono::Utc::now().to_rfc3339(),
        "mode": if cli.smoke { "smoke" } else { "full" },
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "pacer_seconds": pacer_secs,
        "total_seconds": total_secs,
        "binaries": bin_dir.display().to_string(),
        // a --bin-dir named otherwise says nothing of its profile: "binaries" has the folder
        "profile": if bin_dir.ends_with("release") { "release" } else if bin_dir.ends_with("debug") { "debug" } else { "other" },
        "nofile_limit": nofile,
        "redis": redis_version(&cli.redis_url).await,
        "plan": format!("{plan:?}"),
        "config": format!("{}; database URL parameters: {}", config(cli.worker_concurrency), if cli.database_params.is_empty() { "none" } else { &cli.database_params }),
    });
    let targets = targets(&rows, peer.as_ref());
    let md = markdown(&meta, &rows, &targets, peer.as_ref());
    let json_out = json!({
        "meta": meta,
        "rows": rows.iter().map(|r| json!({"item": r.item, "scenario": r.scenario, "config": r.config,
            "result": r.result, "data": r.data})).collect::<Vec<_>>(),
        "targets": targets,
        "peers": peer.as_ref().map(|p| p.json.clone()),
    });
    let json_path = cli.out_dir.join(format!("{stamp}.json"));
    let md_path = cli.out_dir.join(format!("{stamp}.md"));
    std::fs::write(&json_path, serde_json::to_string_pretty(&json_out)?)?;
    std::fs::write(&md_path, &md)?;
    println!("{md}");
    eprintln!(
        "pacer-bench: wrote {} and {} in {} s",
        json_path.display(),
        md_path.display(),
        fmt(total_secs)
    );
    if rows.is_empty() {
        anyhow::bail!("no scenario ran");
    }
    // the smoke run (CI) fails when a scenario could not run at all; figures are never asserted
    let broken: Vec<String> = rows
        .iter()
        .filter(|r| r.data.get("error").is_some())
        .map(|r| format!("item {} ({})", r.item, r.scenario))
        .collect();
    if cli.smoke && !broken.is_empty() {
        anyhow::bail!("smoke run: {} failed", broken.join(", "));
    }
    Ok(())
}

async fn suite(cli: &Cli, plan: &Plan, d: &mut Deploy) -> Vec<Row> {
    let mut rows = Vec::new();
    let step = |name: &str| {
        eprintln!("pacer-bench: {name} (load {:?})", loadavg());
    };
    if wanted(cli, 8) {
        step("8 redis-benchmark");
        match scen::redis_ceiling(d, plan).await {
            Ok(r) => rows.push(r),
            Err(e) => rows.push(failed_row(8, "redis-benchmark", String::new(), &e)),
        }
    }
    if wanted(cli, 1) {
        step("1 enqueue");
        match scen::enqueue(d, plan).await {
            Ok(r) => rows.extend(r),
            Err(e) => rows.push(failed_row(1, "enqueue", String::new(), &e)),
        }
    }
    if wanted(cli, 2) {
        for &w in &plan.e2e_workers {
            step(&format!("2 end to end, {w} worker(s)"));
            match scen::end_to_end(d, plan, w).await {
                Ok(r) => rows.push(r),
                Err(e) => rows.push(failed_row(2, "end to end", format!("{w} worker(s)"), &e)),
            }
        }
    }
    if wanted(cli, 3) {
        step("3 latency");
        match scen::latency(d, plan).await {
            Ok(r) => rows.extend(r),
            Err(e) => rows.push(failed_row(3, "latency", String::new(), &e)),
        }
    }
    if wanted(cli, 4) {
        for &n in &plan.fanout {
            step(&format!("4 SSE fan-out, {n} clients"));
            match scen::fanout(d, plan, n).await {
                Ok(r) => rows.push(r),
                Err(e) => rows.push(failed_row(4, "SSE fan-out", format!("{n} clients"), &e)),
            }
        }
    }
    if wanted(cli, 5) {
        step("5 backlog");
        match scen::backlog(d, plan).await {
            Ok(r) => rows.push(r),
            Err(e) => rows.push(failed_row(5, "backlog drain", String::new(), &e)),
        }
    }
    if wanted(cli, 6) {
        step("6 recompute_batch");
        if scen::generator_available(d) {
            match scen::recompute(d, plan).await {
                Ok(r) => rows.extend(r),
                Err(e) => rows.push(failed_row(6, "recompute_batch", String::new(), &e)),
            }
        } else {
            rows.push(Row::new(
                6,
                "recompute_batch",
                String::new(),
                "not measured: `pacer-api generate` is not available".into(),
                json!({"skipped": true}),
            ));
        }
    }
    if wanted(cli, 7) {
        step("7 recovery");
        match scen::recovery(d, plan).await {
            Ok(r) => rows.push(r),
            Err(e) => rows.push(failed_row(7, "recovery", String::new(), &e)),
        }
    }
    d.stop_all();
    rows
}

fn nofile_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    text.lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
}

async fn redis_version(url: &str) -> Value {
    let Ok(client) = redis::Client::open(url) else {
        return Value::Null;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return Value::Null;
    };
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .map_or(Value::Null, |v| json!(v.trim()))
}

fn num(v: &Value, path: &[&str]) -> Option<f64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_f64()
}

fn find(rows: &[Row], item: u8, pred: impl Fn(&Value) -> bool) -> Option<&Row> {
    rows.iter().find(|r| r.item == item && pred(&r.data))
}

/// The targets, each with Pacer's figure, the peer figure and whether it is met.
fn targets(rows: &[Row], peer: Option<&peers::Peers>) -> Vec<Value> {
    let mut out = Vec::new();
    let peer_fig = |k: &str| peer.and_then(|p| p.get(k));
    let mut push = |target: &str,
                    pacer: Option<f64>,
                    bound: Option<f64>,
                    ok: Option<bool>,
                    unit: &str,
                    bull: Option<f64>| {
        out.push(
            json!({"target": target, "pacer": pacer, "bound": bound, "unit": unit,
                        "met": ok, "bullmq_same_run": bull}),
        );
    };
    let e2e2 = find(rows, 2, |d| d["workers"] == 2).and_then(|r| num(&r.data, &["jobs_s"]));
    let bull_prog2 = peer.and_then(|p| p.get("progress_add_2"));
    push(
        "e2e jobs/s, 2 workers ≥ BullMQ 5-progress (2 workers), same run",
        e2e2,
        bull_prog2,
        e2e2.zip(bull_prog2).map(|(a, b)| a >= b),
        "jobs/s",
        bull_prog2,
    );
    let bull_noop2 = peer.and_then(|p| p.get("noop_add_2"));
    push(
        "(aim) e2e jobs/s, 2 workers ≥ BullMQ no-op add() (2 workers)",
        e2e2,
        bull_noop2,
        e2e2.zip(bull_noop2).map(|(a, b)| a >= b),
        "jobs/s",
        bull_noop2,
    );
    let load = rows
        .iter()
        .filter(|r| r.item == 3 && r.data.get("rate").is_some())
        .max_by(|a, b| {
            let rate = |r: &Row| r.data["rate"].as_f64().unwrap_or(0.0);
            rate(a).total_cmp(&rate(b))
        });
    let load_rate = load.and_then(|r| r.data["rate"].as_f64()).unwrap_or(500.0);
    let start99 = load.and_then(|r| num(&r.data, &["enqueue_to_start_ms", "p99"]));
    push(
        &format!("open loop {load_rate} jobs/s: enqueue→start p99 < 20 ms"),
        start99,
        Some(20.0),
        start99.map(|v| v < 20.0),
        "ms",
        peer_fig("paced_progress_start_p99"),
    );
    let first50 = load.and_then(|r| num(&r.data, &["enqueue_to_first_sse_event_ms", "p50"]));
    push(
        &format!("open loop {load_rate} jobs/s: enqueue→first SSE event p50 < 5 ms"),
        first50,
        Some(5.0),
        first50.map(|v| v < 5.0),
        "ms",
        peer_fig("paced_progress_first_event_p50"),
    );
    let big = rows
        .iter()
        .filter(|r| r.item == 4 && r.data.get("clients").is_some())
        .max_by_key(|r| r.data["clients"].as_u64().unwrap_or(0));
    let clients = big
        .and_then(|r| r.data["clients"].as_u64())
        .unwrap_or(10_000);
    let peak = big.and_then(|r| num(&r.data, &["api_peak_rss_mib"]));
    push(
        &format!("{clients} SSE clients: API peak memory < 300 MB"),
        peak.map(|m| m * 1.048_576),
        Some(300.0),
        peak.map(|m| m * 1.048_576 < 300.0),
        "MB",
        None,
    );
    let d99 = big.and_then(|r| num(&r.data, &["delivery_ms", "p99"]));
    push(
        &format!("{clients} SSE clients: delivery p99 < 100 ms"),
        d99,
        Some(100.0),
        d99.map(|v| v < 100.0),
        "ms",
        peer_fig("progress_add_2_event_p99"),
    );
    let bl = find(rows, 5, |d| d.get("jobs_s").is_some());
    let bl_rate = bl.and_then(|r| num(&r.data, &["jobs_s"]));
    let bl_clean = bl.is_some_and(|r| r.data["complete"] == true && r.data["failed"] == 0);
    let bull_drain = peer.and_then(|p| p.get("drain_2"));
    push(
        "backlog drains with no failure at ≥ ½ BullMQ drain rate (2 workers)",
        bl_rate,
        bull_drain.map(|b| b / 2.0),
        bl_rate
            .zip(bull_drain)
            .map(|(a, b)| bl_clean && a >= b / 2.0),
        "jobs/s",
        bull_drain,
    );
    let rc = find(rows, 6, |d| d["workers"] == 2);
    let rc_secs = rc.and_then(|r| num(&r.data, &["seconds"]));
    let rc_full = rc.is_some_and(|r| r.data["athletes"].as_i64().unwrap_or(0) >= 1000);
    push(
        "recompute 1,000 athletes × 1 year < 30 s (2 workers)",
        rc_secs,
        Some(30.0),
        rc_secs.filter(|_| rc_full).map(|v| v < 30.0),
        "s",
        None,
    );
    let rec = find(rows, 7, |d| d.get("rerun_after_kill_ms").is_some());
    let rec_max = rec.and_then(|r| num(&r.data, &["rerun_after_kill_ms", "max"]));
    let rec_all = rec.is_some_and(|r| r.data["rerun"] == r.data["held"]);
    push(
        "kill -9 recovery max < 15 s",
        rec_max.map(|v| v / 1000.0),
        Some(15.0),
        rec_max.map(|v| rec_all && v < 15_000.0),
        "s",
        None,
    );
    out
}

fn markdown(meta: &Value, rows: &[Row], targets: &[Value], peer: Option<&peers::Peers>) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "## pacer-bench {} run, {}\n\n{} cores, {} binaries, Redis {}; load average at start {} / at end {}; Pacer scenarios {} s, total {} s.\n\n",
        meta["mode"].as_str().unwrap_or(""),
        meta["started"].as_str().unwrap_or(""),
        meta["cores"],
        meta["profile"].as_str().unwrap_or(""),
        meta["redis"].as_str().unwrap_or("?"),
        meta["loadavg_start"],
        meta["loadavg_end"],
        fmt(meta["pacer_seconds"].as_f64().unwrap_or(0.0)),
        fmt(meta["total_seconds"].as_f64().unwrap_or(0.0)),
    ));
    s.push_str(&format!(
        "Configuration: {}.\n\n",
        meta["config"].as_str().unwrap_or("")
    ));
    s.push_str("| # | scenario | configuration | result |\n|---|---|---|---|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.item,
            r.scenario,
            r.config.replace('|', "\\|"),
            r.result.replace('|', "\\|")
        ));
    }
    s.push_str(
        "\n### Targets (issue 5)\n\n| target | Pacer | bound | BullMQ, same run | met |\n|---|---|---|---|---|\n",
    );
    for t in targets {
        let unit = t["unit"].as_str().unwrap_or("");
        let v = |k: &str| {
            t[k].as_f64()
                .map_or("–".to_owned(), |x| format!("{} {unit}", fmt(x)))
        };
        let met = match t["met"].as_bool() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {met} |\n",
            t["target"].as_str().unwrap_or(""),
            v("pacer"),
            v("bound"),
            v("bullmq_same_run")
        ));
    }
    if let Some(p) = peer {
        s.push_str("\n### Peers, same run (BullMQ harness, REPS=1)\n\n");
        s.push_str(&p.markdown);
    }
    s
}
