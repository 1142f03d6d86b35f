use serde::Serialize;

/// One invalid field of a request, as listed in the error body's `details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Failures of the shared plumbing (database, Redis, encoding).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("queue: {0}")]
    Queue(String),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether `e` says Redis cannot serve us now, not that the command is wrong: refused,
/// dropped or timed-out connections, and a server that refuses writes for a while (`OOM` at
/// its `maxmemory`, `READONLY` after a failover demoted it, `LOADING` its data at start,
/// `MASTERDOWN`, `TRYAGAIN`, `CLUSTERDOWN`, `BUSY` with a long script). Callers wait these
/// out as an outage: counted as a failed attempt, a few seconds of them failed jobs for good.
pub fn redis_unavailable(e: &redis::RedisError) -> bool {
    const BUSY_STATES: [&str; 7] = [
        "OOM",
        "READONLY",
        "LOADING",
        "MASTERDOWN",
        "TRYAGAIN",
        "CLUSTERDOWN",
        "BUSY",
    ];
    e.is_connection_refusal()
        || e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.code().is_some_and(|c| BUSY_STATES.contains(&c))
}
