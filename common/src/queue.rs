//! The apalis-redis queues: configuration shared by producers and workers, batched pushes with a
//! wake-up, queue depth, and trimming of finished tasks.
//!
//! apalis-redis 1.0 lands every push in `{queue}:scheduled` and promotes all due tasks in one
//! `RPUSH … unpack(ids)`, which fails at about 8,000 ids. Pacer therefore keeps at most
//! `PACER_QUEUE_HIGH_WATER` jobs in Redis; the rest wait in PostgreSQL for the dispatcher.

use apalis::prelude::{TaskBuilder, TaskId};
use apalis_redis::{Config as ApalisConfig, ConnectionManager};
use redis::AsyncCommands;
use uuid::Uuid;

use crate::config::CommonConfig;
use crate::error::{Error, Result};
use crate::jobs::{JobMessage, Queue};
use crate::keys::Keys;

/// apalis settings for one queue. Producer and workers must agree on the queue name.
///
/// apalis's own task locks are off: a job's lease is its PostgreSQL claim, and a fetched task
/// is already in its worker's in-flight set, which is what orphan recovery re-queues. The lock
/// script only repeated that (and scanned the whole ready list with `LREM` per task, a third of
/// Redis's time per job). Its pub/sub notices are off too: workers wake on Pacer's own channel
/// and nothing subscribes to apalis's.
pub fn apalis_config(keys: &Keys, queue: Queue, common: &CommonConfig) -> ApalisConfig {
    ApalisConfig::default()
        .queue(keys.queue(queue))
        .heartbeat_interval(common.heartbeat())
        .missed_heartbeats(common.missed_heartbeats as usize)
        .batch_size(16)
        .lock_tasks(false)
        .emit_events(false)
}

/// A fresh apalis task id for one push of a job: apalis ignores a push whose id it already
/// holds, so a job that must run again is pushed under a new id.
pub fn new_task_id() -> String {
    Uuid::now_v7().simple().to_string()
}

/// Pushes `(job id, task id)` pairs to a queue in one Lua call, then wakes idle workers.
pub async fn push(
    conn: &mut ConnectionManager,
    keys: &Keys,
    config: &ApalisConfig,
    queue: Queue,
    jobs: &[(Uuid, String)],
) -> Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    let mut tasks = Vec::with_capacity(jobs.len());
    for (job_id, task_id) in jobs {
        let body = serde_json::to_vec(&JobMessage { job_id: *job_id })?;
        tasks.push(
            TaskBuilder::new(body)
                .task_id(TaskId::from_string(task_id.clone()))
                .build(),
        );
    }
    apalis_redis::queries::push_tasks(conn, config, &tasks)
        .await
        .map_err(|e| Error::Queue(e.to_string()))?;
    let _: i64 = conn.publish(keys.wake_channel(queue), 1).await?;
    Ok(())
}

/// Jobs waiting in Redis (scheduled + ready).
pub async fn depth(conn: &mut ConnectionManager, config: &ApalisConfig) -> Result<u64> {
    let (scheduled, active): (u64, u64) = redis::pipe()
        .zcard(config.scheduled_jobs_set())
        .llen(config.active_jobs_list())
        .query_async(conn)
        .await?;
    Ok(scheduled + active)
}

/// Which of these apalis task ids Redis still holds.
pub async fn tasks_exist(
    conn: &mut ConnectionManager,
    config: &ApalisConfig,
    task_ids: &[String],
) -> Result<Vec<bool>> {
    if task_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in task_ids {
        pipe.hexists(config.job_data_hash(), id);
    }
    Ok(pipe.query_async(conn).await?)
}

static TRIM: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        local ids = redis.call('SPOP', KEYS[1], ARGV[1])
        for _, id in ipairs(ids) do
            redis.call('HDEL', KEYS[2], id)
            redis.call('DEL', KEYS[3] .. ':' .. id)
        end
        return #ids
        "#,
    )
});

/// Deletes the metadata hash of each of `names` that is not in the workers set (`KEYS[1]`);
/// `KEYS[2..]` are the hashes. apalis-redis registers a worker (set entry and hash) in one
/// script, so a hash whose name is missing belongs to a worker that is gone.
static FORGET_WORKERS: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        local n = 0
        for i = 2, #KEYS do
            if not redis.call('ZSCORE', KEYS[1], ARGV[i - 1]) then
                n = n + redis.call('UNLINK', KEYS[i])
            end
        end
        return n
        "#,
    )
});

/// Deletes the metadata apalis-redis keeps for workers no longer registered: one hash per
/// worker name and queue, never expired, so every worker start and every restart of a worker
/// loop (a new name each time) would leave one behind for good.
pub async fn forget_gone_workers(
    conn: &mut ConnectionManager,
    config: &ApalisConfig,
) -> Result<usize> {
    let set = config.workers_set();
    let prefix = format!("{set}:metadata:");
    let pattern = format!("{}*", glob_escape(&prefix));
    let mut cursor = 0u64;
    let mut forgotten = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(500)
            .query_async(conn)
            .await?;
        if !keys.is_empty() {
            let mut call = FORGET_WORKERS.key(&set);
            for key in &keys {
                call.key(key).arg(key.strip_prefix(&prefix).unwrap_or(key));
            }
            let n: usize = call.invoke_async(conn).await?;
            forgotten += n;
        }
        if next == 0 {
            return Ok(forgotten);
        }
        cursor = next;
    }
}

/// `s` as a `SCAN MATCH` pattern that matches only itself.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Deletes up to `limit` finished tasks (data + meta) from Redis; PostgreSQL keeps the record.
/// apalis-redis never trims them itself.
pub async fn trim_finished(
    conn: &mut ConnectionManager,
    config: &ApalisConfig,
    limit: usize,
) -> Result<usize> {
    let mut total = 0;
    for set in [config.done_jobs_set(), config.dead_jobs_set()] {
        let n: usize = TRIM
            .key(set)
            .key(config.job_data_hash())
            .key(config.job_meta_hash())
            .arg(limit)
            .invoke_async(conn)
            .await?;
        total += n;
    }
    Ok(total)
}
