use std::time::Duration;

use clap::{Parser, Subcommand};
use pacer_common::config::CommonConfig;

/// Pacer HTTP API: authenticates, validates and enqueues jobs; streams their progress (SSE).
#[derive(Debug, Parser)]
#[command(name = "pacer-api", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub api: ApiConfig,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Print a signed development token (HS256 with PACER_JWT_SECRET) and exit.
    Token(TokenArgs),
    /// Write synthetic athletes, activities and health metrics to PostgreSQL (deterministic
    /// for a seed), e.g. `pacer-api generate --org org_demo --athletes 1000 --days 365 --seed 1`.
    Generate(GenerateArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// Organization the athletes and coaches belong to (created if missing).
    #[arg(long, default_value = "org_demo", value_parser = parse_org_id)]
    pub org: String,
    /// Number of athletes.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub athletes: u32,
    /// Number of coaches (athletes are assigned at random).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub coaches: u32,
    /// Days of history, ending at --until.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub days: u32,
    /// Last day of the history (YYYY-MM-DD, UTC); default today. Fix it for byte-identical runs.
    #[arg(long)]
    pub until: Option<chrono::NaiveDate>,
    /// Random seed: the same seed (and --until) gives the same data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// User id (`sub`).
    #[arg(long, default_value = "usr_demo_coach")]
    pub sub: String,
    /// athlete | coach | client_admin | admin
    #[arg(long, default_value = "coach")]
    pub role: String,
    /// Organization id.
    #[arg(long, default_value = "org_demo")]
    pub org: String,
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub ttl_secs: u64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ApiConfig {
    #[command(flatten)]
    pub common: CommonConfig,

    /// Address to listen on.
    #[arg(long, env = "PACER_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// HS256 secret for bearer tokens (required unless PACER_JWT_PUBLIC_KEY_FILE is set).
    #[arg(long, env = "PACER_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// PEM public key (RSA or EC) for RS256/ES256 bearer tokens.
    #[arg(long, env = "PACER_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<String>,

    /// Required `iss` claim, when set.
    #[arg(long, env = "PACER_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Required `aud` claim, when set.
    #[arg(long, env = "PACER_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// How long the synchronous AI Coach endpoints wait for their job before answering 202.
    #[arg(long, env = "PACER_SYNC_TIMEOUT_SECS", default_value_t = 60)]
    pub sync_timeout_secs: u64,

    /// Largest accepted request body, in bytes (larger: 413).
    #[arg(long, env = "PACER_MAX_BODY_BYTES", default_value_t = 1_048_576, value_parser = parse_body_limit)]
    pub max_body_bytes: usize,

    /// Seconds between SSE keep-alive comments on idle streams.
    #[arg(long, env = "PACER_SSE_KEEPALIVE_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub sse_keepalive_secs: u64,

    /// Seconds the API keeps serving after SIGTERM with `/readyz` answering 503 `draining`,
    /// before it closes its listener: a load balancer that polls readiness stops sending
    /// requests here first. 0: close at once. A second signal cuts the wait short.
    #[arg(long, env = "PACER_SHUTDOWN_DELAY_SECS", default_value_t = 0)]
    pub shutdown_delay_secs: u64,
}

impl ApiConfig {
    pub fn sync_timeout(&self) -> Duration {
        Duration::from_secs(self.sync_timeout_secs)
    }

    pub fn sse_keepalive(&self) -> Duration {
        Duration::from_secs(self.sse_keepalive_secs)
    }
}

/// A body limit below 1 KiB would refuse every request with a body.
/// An organization id as the admin API takes it: 1 to 200 characters.
fn parse_org_id(raw: &str) -> Result<String, String> {
    if raw.is_empty() || raw.len() > 200 {
        return Err("must be 1 to 200 characters".into());
    }
    Ok(raw.to_owned())
}

fn parse_body_limit(raw: &str) -> Result<usize, String> {
    let n: usize = raw.trim().parse().map_err(|e| format!("{e}"))?;
    if n < 1024 {
        return Err("must be at least 1024 bytes".into());
    }
    Ok(n)
}
