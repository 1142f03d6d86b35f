//! PostgreSQL: pool, database creation, migrations, and one module of queries per table.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

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

/// [`connect`], waiting for PostgreSQL while it cannot be reached (see
/// [`crate::lifecycle::until_reachable`]). `None`: a shutdown signal came first.
pub async fn connect_when_reachable(url: &str, max_connections: u32) -> Result<Option<PgPool>> {
    let unreachable =
        |e: &crate::error::Error| matches!(e, crate::error::Error::Db(d) if is_unreachable(d));
    crate::lifecycle::until_reachable("PostgreSQL", unreachable, || connect(url, max_connections))
        .await
        .transpose()
}

/// The connections of the `jobs` statements that run once or twice per job with one to a few
/// ids (the submission insert and row reads in the API, claims, terminal writes and
/// training-principle reads in workers), owned by the batcher that runs them instead of a
/// pool.
///
/// Their connections keep one generic plan per statement instead of planning every call:
/// measured with `pg_stat_statements` at 500 jobs/s, planning was a third of these
/// statements' time, since the planner tests each of the table's partial and expression
/// indexes. Seq scans are ruled out so that a plan made while the table was small stays a
/// primary-key lookup as it grows (no other path of these statements reads more than a row
/// per id). A pool would ping each connection before use and again on release (sqlx 0.9
/// cannot turn the second off): two more round trips per statement, and the connection stays
/// busy until the release ping returns. Here a connection is only used; one that died while
/// idle (PostgreSQL restarted) fails its next statement, which is then repeated on another.
/// Connections open on first use; the batcher's own limit on batches in flight bounds how
/// many.
pub struct KeyedConns {
    options: PgConnectOptions,
    idle: std::sync::Mutex<Vec<PgConnection>>,
    max_idle: usize,
    answer_within: Duration,
}

impl KeyedConns {
    /// Connections like `pool`'s, keeping up to `max_idle` between statements.
    pub fn new(pool: &PgPool, max_idle: usize, commit: Commit) -> std::sync::Arc<Self> {
        Self::answering_within(pool, max_idle, commit, ANSWER_WITHIN)
    }

    /// As [`new`](Self::new), with another bound on a statement's answer (see [`run`](Self::run)).
    pub fn answering_within(
        pool: &PgPool,
        max_idle: usize,
        commit: Commit,
        answer_within: Duration,
    ) -> std::sync::Arc<Self> {
        let mut settings = vec![
            ("plan_cache_mode", "force_generic_plan"),
            ("enable_seqscan", "off"),
        ];
        if commit == Commit::Lease {
            settings.push(("synchronous_commit", "off"));
        }
        std::sync::Arc::new(Self {
            options: (*pool.connect_options()).clone().options(settings),
            idle: std::sync::Mutex::new(Vec::new()),
            max_idle: max_idle.max(1),
            answer_within,
        })
    }

    /// Runs `statement` on an idle connection (or a new one). A connection found dead, or
    /// silent for longer than the answer bound (a server or network that hangs: sqlx has no
    /// read timeout, and a worker's batches wait for the statement in flight), is dropped and
    /// the statement repeated on the next; a new connection's failure is returned.
    /// As with any connection lost mid-statement, the server may have committed it: the
    /// statements run here answer a repeat as their first run would have (`insert_jobs`,
    /// `finish_many`, `claim_many`) or change nothing the second time (reads).
    /// (`statement` gets the connection for one attempt; what else its future uses it owns,
    /// e.g. `Arc`s of the batch.)
    pub async fn run<T>(
        &self,
        mut statement: impl for<'c> FnMut(
            &'c mut PgConnection,
        ) -> futures::future::BoxFuture<'c, sqlx::Result<T>>,
    ) -> sqlx::Result<T> {
        loop {
            let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            let reused = idle.is_some();
            let mut conn = match idle {
                Some(conn) => conn,
                None => self.connect().await?,
            };
            let answer = match tokio::time::timeout(self.answer_within, statement(&mut conn)).await
            {
                Ok(answer) => answer,
                Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {:?}", self.answer_within),
                ))),
            };
            match answer {
                Err(e) if reused && is_dead_connection(&e) => {
                    tracing::info!(error = %e, "statement on a dead connection; repeating it");
                }
                // a statement's own error leaves its connection ready for the next one
                done => {
                    let dead = matches!(&done, Err(e) if is_dead_connection(e));
                    if let Ok(mut idle) = self.idle.lock()
                        && idle.len() < self.max_idle
                        && !dead
                    {
                        idle.push(conn);
                    }
                    return done;
                }
            }
        }
    }

    async fn connect(&self) -> sqlx::Result<PgConnection> {
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&self.options)).await
        {
            Ok(conn) => conn,
            Err(_) => Err(sqlx::Error::PoolTimedOut),
        }
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a per-job statement may go unanswered before its connection counts as dead. They
/// take milliseconds; this only catches a connection that will never answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// Whether `e` says PostgreSQL cannot be reached or serve now (refused or lost connections, no
/// connection free within the pool's wait, the server shutting down, starting up or out of
/// connection slots), not that the statement failed.
pub fn is_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("53") || c.starts_with("57P")),
        _ => is_dead_connection(e),
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

/// Whether [`KeyedConns`]' commits wait for the WAL to reach the disk.
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
