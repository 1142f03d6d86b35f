//! Settings shared by `pacer-api` and `pacer-worker`. Every flag can also be given as the
//! environment variable shown in `--help`; the binaries parse them once at start-up.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CommonConfig {
    /// PostgreSQL URL. The database is created if it does not exist; migrations run at start-up.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/pacer"
    )]
    pub database_url: String,

    /// Maximum PostgreSQL connections of this process.
    #[arg(long, env = "PACER_DB_MAX_CONNECTIONS", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_max_connections: u32,

    /// Redis URL (queues, job event logs, pub/sub, caches).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,

    /// Prefix of every Redis key and channel, so several deployments can share one Redis.
    #[arg(long, env = "PACER_REDIS_PREFIX", default_value = "pacer", value_parser = parse_prefix)]
    pub redis_prefix: String,

    /// Log format.
    #[arg(long, env = "PACER_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// How long a finished job's event log stays in Redis (seconds, at least 60); afterwards
    /// SSE replays the final events from PostgreSQL.
    #[arg(long, env = "PACER_EVENT_LOG_TTL_SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(60..=31_536_000))]
    pub event_log_ttl_secs: u64,

    /// Redis queue depth above which jobs stay in PostgreSQL until the dispatcher moves them
    /// (apalis-redis 1.0 cannot promote 8,000 due jobs at once).
    #[arg(long, env = "PACER_QUEUE_HIGH_WATER", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=5000))]
    pub queue_high_water: u64,

    /// Attempts a job gets before it fails (transient errors are retried with backoff).
    #[arg(long, env = "PACER_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=50))]
    pub max_attempts: i32,

    /// Seconds between worker heartbeats in Redis (also the PostgreSQL job lease refresh).
    #[arg(long, env = "PACER_HEARTBEAT_SECS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub heartbeat_secs: u64,

    /// Missed heartbeats (2 or more) after which a worker counts as dead and its jobs run
    /// elsewhere.
    #[arg(long, env = "PACER_MISSED_HEARTBEATS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub missed_heartbeats: u32,
}

impl CommonConfig {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs)
    }

    /// A running job whose PostgreSQL heartbeat is older than this may be taken over.
    pub fn job_lease(&self) -> Duration {
        self.heartbeat() * self.missed_heartbeats
    }
}

/// Parses the command line and the environment into `T`, once. A malformed setting stops the
/// process with one line naming its environment variable and flag (clap's own message is
/// three lines and names only the flag, while deployments set the variables).
pub fn parse_or_exit<T: clap::Parser>() -> T {
    T::try_parse().unwrap_or_else(|e| {
        use clap::error::ErrorKind;
        if matches!(
            e.kind(),
            ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        ) {
            e.exit()
        }
        let cmd = T::command();
        eprintln!("{}: {}", cmd.get_name(), one_line(&e, &cmd));
        std::process::exit(2)
    })
}

/// clap's error as one line, the argument named as `VARIABLE (--flag)` where it has one.
fn one_line(e: &clap::Error, cmd: &clap::Command) -> String {
    use clap::error::{ContextKind, ContextValue};
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    let mut line = first.strip_prefix("error: ").unwrap_or(first).to_owned();
    if let Some(ContextValue::String(shown)) = e.get(ContextKind::InvalidArg) {
        let long = shown
            .strip_prefix("--")
            .and_then(|s| s.split([' ', '=']).next())
            .unwrap_or_default();
        if let Some(arg) = find_long(cmd, long) {
            let named = match arg.get_env() {
                Some(env) => format!("{} (--{long})", env.to_string_lossy()),
                None => format!("--{long}"),
            };
            line = line.replace(&format!("'{shown}'"), &named);
        }
    }
    line
}

fn find_long<'a>(cmd: &'a clap::Command, long: &str) -> Option<&'a clap::Arg> {
    cmd.get_arguments()
        .find(|a| a.get_long() == Some(long))
        .or_else(|| cmd.get_subcommands().find_map(|sub| find_long(sub, long)))
}

fn parse_prefix(s: &str) -> Result<String, String> {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.'))
    {
        Ok(s.to_owned())
    } else {
        Err("use letters, digits, '_', '-', ':' or '.'".into())
    }
}
