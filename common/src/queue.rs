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
        .missed_heartbeats(common.missed_heartbeats.max(1))
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
