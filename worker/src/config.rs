use std::time::Duration;

use clap::Parser;
use pacer_common::config::CommonConfig;
use pacer_common::jobs::{JobKind, Queue};

/// Pacer worker: runs queued jobs (plan generation, analytics) and publishes their progress.
/// Run as many as you like, on any machines; scale each queue independently with --queues.
#[derive(Debug, Clone, Parser)]
#[command(name = "pacer-worker", version, about, long_about = None)]
pub struct WorkerConfig {
    #[command(flatten)]
    pub common: CommonConfig,

    /// Queues this process serves (comma-separated): generation, stats.
    #[arg(long, env = "PACER_QUEUES", value_delimiter = ',', default_value = "generation,stats", value_parser = parse_queue)]
    pub queues: Vec<Queue>,

    /// Jobs run at once per queue in this process.
    #[arg(long, env = "PACER_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,

    /// First retry delay in milliseconds (then doubling, with jitter).
    #[arg(long, env = "PACER_RETRY_BASE_MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub retry_base_ms: u64,

    /// Longest retry delay in seconds.
    #[arg(long, env = "PACER_RETRY_MAX_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub retry_max_secs: u64,

    /// Per-kind timeouts in seconds, e.g. "generate_plan=900,recompute_batch=3600"
    /// (defaults: generate_draft 300, generate_plan 900, recompute_stats 120, recompute_batch 3600).
    #[arg(long, env = "PACER_JOB_TIMEOUTS", default_value = "", value_parser = parse_timeouts)]
    pub job_timeouts: Timeouts,

    /// On SIGTERM, how long running jobs may take to finish before they are handed back.
    #[arg(long, env = "PACER_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// Seconds between reconciler passes (re-dispatching jobs Redis lost).
    #[arg(long, env = "PACER_RECONCILE_INTERVAL_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub reconcile_interval_secs: u64,

    /// Finished jobs (succeeded, failed, cancelled) older than this many seconds are deleted
    /// from PostgreSQL, checked every reconciler pass; 0 keeps them forever. Their results,
    /// polls and idempotency keys go with them (a reused key then starts a new job).
    #[arg(long, env = "PACER_JOB_RETENTION_SECS", default_value_t = 0)]
    pub job_retention_secs: u64,

    /// A dispatched job with no sign of life for this long is checked against Redis.
    #[arg(long, env = "PACER_RECONCILE_STALE_SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub reconcile_stale_secs: u64,

    /// Seconds between passes that queue a recompute for every athlete whose metrics snapshot
    /// describes a past day in the athlete's zone (so "this week" and the attention flags
    /// move on at midnight without an upload); 0 turns it off. Runs where `stats` is served.
    #[arg(long, env = "PACER_ROLLOVER_INTERVAL_SECS", default_value_t = 300)]
    pub rollover_interval_secs: u64,

    /// Fallback poll interval of an idle worker, in milliseconds (a wake-up published after
    /// each push makes pickup immediate; this covers retries and missed wake-ups, which the
    /// benchmark sees now and then under load: at 500 ms they cost up to ~0.5 s per job).
    #[arg(long, env = "PACER_POLL_INTERVAL_MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub poll_interval_ms: u64,

    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9091); off when empty.
    #[arg(long, env = "PACER_WORKER_METRICS_BIND", default_value = "")]
    pub metrics_bind: String,

    /// Plan provider: rules (built in, offline) or openai (any OpenAI-compatible server).
    #[arg(long, env = "PACER_LLM_PROVIDER", default_value = "rules", value_parser = ["rules", "openai"])]
    pub llm_provider: String,

    /// OpenAI-compatible base URL including /v1.
    #[arg(
        long,
        env = "OPENAI_BASE_URL",
        default_value = "https://api.openai.com/v1"
    )]
    pub openai_base_url: String,

    /// API key for the OpenAI-compatible server.
    #[arg(
        long,
        env = "OPENAI_API_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub openai_api_key: String,

    /// Model name.
    #[arg(long, env = "PACER_LLM_MODEL", default_value = "gpt-4o-mini")]
    pub llm_model: String,

    /// Weeks of one plan generated at once by the openai provider.
    #[arg(long, env = "PACER_LLM_CONCURRENCY", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub llm_concurrency: u32,

    /// Token budget of one job (prompt + completion, all requests); over it the job fails.
    #[arg(long, env = "PACER_LLM_MAX_TOKENS_PER_JOB", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub llm_max_tokens_per_job: u64,

    /// Timeout of one model request, in seconds: a plan week's whole answer, a streamed draft's
    /// longest silence.
    #[arg(long, env = "PACER_LLM_TIMEOUT_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub llm_timeout_secs: u64,

    /// Retries of one model request on 429, 5xx or a connection error (then the job attempt fails
    /// and is retried as a whole, up to its max attempts).
    #[arg(long, env = "PACER_LLM_REQUEST_RETRIES", default_value_t = 2)]
    pub llm_request_retries: u32,

    /// Pause between the rules planner's steps, in milliseconds, to mimic model latency in
    /// demos and benchmarks (0 = none).
    #[arg(long, env = "PACER_RULES_STEP_DELAY_MS", default_value_t = 0)]
    pub rules_step_delay_ms: u64,
}

impl WorkerConfig {
    pub fn timeout(&self, kind: JobKind) -> Duration {
        Duration::from_secs(self.job_timeouts.get(kind))
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn rules_step_delay(&self) -> Duration {
        Duration::from_millis(self.rules_step_delay_ms)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    secs: [u64; 4],
}

impl Timeouts {
    fn index(kind: JobKind) -> usize {
        match kind {
            JobKind::GenerateDraft => 0,
            JobKind::GeneratePlan => 1,
            JobKind::RecomputeStats => 2,
            JobKind::RecomputeBatch => 3,
        }
    }

    pub fn get(&self, kind: JobKind) -> u64 {
        self.secs[Self::index(kind)]
    }
}

fn parse_timeouts(s: &str) -> Result<Timeouts, String> {
    let mut t = Timeouts {
        secs: [300, 900, 120, 3600],
    };
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kind, secs) = part
            .split_once('=')
            .ok_or_else(|| format!("'{part}' is not kind=seconds"))?;
        let kind =
            JobKind::parse(kind.trim()).ok_or_else(|| format!("unknown job kind '{kind}'"))?;
        let secs = secs
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| format!("'{secs}' is not a number of seconds (1 or more)"))?;
        t.secs[Timeouts::index(kind)] = secs;
    }
    Ok(t)
}

fn parse_queue(s: &str) -> Result<Queue, String> {
    Queue::parse(s.trim()).ok_or_else(|| format!("unknown queue '{s}' (generation, stats)"))
}
