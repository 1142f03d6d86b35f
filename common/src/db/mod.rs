//! PostgreSQL: pool, database creation, migrations, and one module of queries per table.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::error::Result;

pub mod ai_training;
pub mod analytics;
pub mod jobs;
pub mod orgs;
pub mod users;
pub mod workouts;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Connects, creating the database first when it does not exist, and applies migrations
/// (idempotent; concurrent start-ups serialise on sqlx's migration lock).
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool> {
    let options: PgConnectOptions = url.parse()?;
    create_database_if_missing(&options).await?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections.max(2))
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// A second, small pool for the `jobs` statements that run once or twice per job with one to
/// a few ids (the submission insert and row reads in the API, claims, terminal writes and
/// training-principle reads in workers).
/// Their connections keep one generic plan per statement instead of planning every call:
/// measured with `pg_stat_statements` at 500 jobs/s, planning was a third of these
/// statements' time, since the planner tests each of the table's partial and expression
/// indexes. Seq scans are ruled out so that a plan made while the table was small stays a
/// primary-key lookup as it grows (no other path of these statements reads more than a row
/// per id). Connections open on first use, and are not pinged before each use (sqlx's default:
/// one more round trip per statement, which showed as queueing at 500 jobs/s); one that died
/// while idle (PostgreSQL restarted) fails its next statement, which callers repeat with
/// [`retry_dead`].
pub fn keyed_pool(pool: &PgPool, max_connections: u32, commit: Commit) -> PgPool {
    let mut settings = vec![
        ("plan_cache_mode", "force_generic_plan"),
        ("enable_seqscan", "off"),
    ];
    if commit == Commit::Lease {
        settings.push(("synchronous_commit", "off"));
    }
    let options = (*pool.connect_options()).clone().options(settings);
    PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .connect_lazy_with(options)
}

/// Runs a statement on a [`keyed_pool`] again while it fails because its connection was dead
/// (each failed connection is dropped, so the next attempt gets another), up to the pool's
/// size: after a PostgreSQL restart every idle connection fails once.
pub async fn retry_dead<T, F, Fut>(pool: &PgPool, mut statement: F) -> sqlx::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = sqlx::Result<T>>,
{
    let mut left = pool.options().get_max_connections();
    loop {
        match statement().await {
            Err(e) if left > 0 && is_dead_connection(&e) => {
                tracing::info!(error = %e, "statement on a dead connection; repeating it");
                left -= 1;
            }
            done => return done,
        }
    }
}

/// A connection closed under the statement (by the server's shutdown or an administrator:
/// SQLSTATE class 57P, or class 08 / an I/O error), not an error of the statement itself.
fn is_dead_connection(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("57P") || c.starts_with("08")),
        _ => false,
    }
}

/// Whether a [`keyed_pool`]'s commits wait for the WAL to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// They do: for anything a client may be told about (an accepted job, a final state).
    Durable,
    /// They do not (the flush follows within `wal_writer_delay`): for claims, which sit on
    /// every job's path to its first event. A claim lost in a PostgreSQL crash leaves the job
    /// queued, so it runs again, as when its worker dies; its attempt's terminal write still
    /// applies (it accepts a queued job).
    Lease,
}

async fn create_database_if_missing(options: &PgConnectOptions) -> Result<()> {
    let Some(name) = options.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let mut admin = options.clone().database("postgres").connect().await?;
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let sql = format!("create database \"{}\"", name.replace('"', "\"\""));
        match sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // another process created it between the check and now
            Err(sqlx::Error::Database(e))
                if matches!(e.code().as_deref(), Some("42P04" | "23505")) => {}
            Err(e) => return Err(e.into()),
        }
    }
    admin.close().await?;
    Ok(())
}
