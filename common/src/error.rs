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

/// Whether `e` says Redis cannot be reached now (refused, dropped or timed-out connections),
/// not that the command failed.
pub fn redis_unreachable(e: &redis::RedisError) -> bool {
    e.is_connection_refusal() || e.is_io_error() || e.is_timeout() || e.is_connection_dropped()
}
