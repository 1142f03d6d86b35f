//! Per-queue background loops that keep Redis and PostgreSQL in step:
//! - the dispatcher moves accepted jobs from PostgreSQL into Redis while the Redis queue is
//!   below the high-water mark (so apalis never sees a backlog it cannot promote);
//! - the reconciler hands back jobs whose Redis copy is gone (FLUSHALL, a lost push, a
//!   restart without persistence) so the dispatcher pushes them again;
//! - the trimmer deletes finished tasks from Redis (apalis-redis never does), and the
//!   metadata of workers no longer registered;
//! - the pruner deletes finished jobs from PostgreSQL after `PACER_JOB_RETENTION_SECS`;
//! - the rollover queues the recompute of metrics snapshots left behind by the calendar;
//! - the token sweep deletes expired AI Training custom tokens and login sessions.

use std::sync::Arc;
use std::time::Duration;

use pacer_common::db::{ai_training, analytics, jobs};
use pacer_common::jobs::Queue;
use pacer_common::queue;
use tokio_util::sync::CancellationToken;

use crate::context::WorkerCtx;

pub fn spawn_all(ctx: &Arc<WorkerCtx>, stop: &CancellationToken) {
    for &q in &ctx.config.queues {
        tokio::spawn(every(
            Duration::from_millis(200),
            stop.clone(),
            ctx.clone(),
            q,
            dispatch,
        ));
        let reconcile = Duration::from_secs(ctx.config.reconcile_interval_secs);
        tokio::spawn(every(
            reconcile,
            stop.clone(),
            ctx.clone(),
            q,
            reconcile_once,
        ));
        tokio::spawn(every(
            Duration::from_secs(15),
            stop.clone(),
            ctx.clone(),
            q,
            trim,
        ));
        if ctx.config.job_retention_secs > 0 {
            tokio::spawn(every(reconcile, stop.clone(), ctx.clone(), q, prune));
        }
        // not a queue's, but a worker's: once per process
        if Some(&q) == ctx.config.queues.first() {
            tokio::spawn(every(reconcile, stop.clone(), ctx.clone(), q, sweep_tokens));
        }
        if q == Queue::Stats && ctx.config.rollover_interval_secs > 0 {
            let period = Duration::from_secs(ctx.config.rollover_interval_secs);
            tokio::spawn(every(period, stop.clone(), ctx.clone(), q, rollover));
        }
    }
}

async fn every<F, Fut>(
    period: Duration,
    stop: CancellationToken,
    ctx: Arc<WorkerCtx>,
    q: Queue,
    f: F,
) where
    F: Fn(Arc<WorkerCtx>, Queue) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        if let Err(e) = f(ctx.clone(), q).await {
            tracing::warn!(queue = q.as_str(), error = %e, "maintenance pass failed");
        }
    }
}

/// Moves waiting jobs into Redis, oldest first, up to the high-water mark.
pub async fn dispatch(ctx: Arc<WorkerCtx>, q: Queue) -> anyhow::Result<()> {
    loop {
        if !jobs::has_undispatched(&ctx.db, q).await? {
            return Ok(());
        }
        let apalis = ctx.apalis(q);
        let mut conn = ctx.redis.clone();
        let high = ctx.config.common.queue_high_water;
        let depth = queue::depth(&mut conn, apalis).await?;
        // refill only when half drained, in batches, to keep Lua calls few and large
        if depth >= high / 2 {
            return Ok(());
        }
        let room = i64::try_from((high - depth).min(1000)).unwrap_or(1000);
        let mut tx = ctx.db.begin().await?;
        let ids = jobs::lock_undispatched(&mut *tx, q, room).await?;
        if ids.is_empty() {
            return Ok(());
        }
        let pairs: Vec<_> = ids.iter().map(|&id| (id, queue::new_task_id())).collect();
        let task_ids: Vec<String> = pairs.iter().map(|(_, t)| t.clone()).collect();
        jobs::mark_dispatched(&mut *tx, &ids, &task_ids).await?;
        // pushed before commit: if the commit fails they are pushed again later, and the
        // claim in PostgreSQL makes the extra copy a no-op
        queue::push(&mut conn, &ctx.keys, apalis, q, &pairs).await?;
        tx.commit().await?;
        tracing::debug!(queue = q.as_str(), count = ids.len(), "dispatched");
    }
}

/// Hands back live jobs whose Redis task no longer exists (or that have been silent for far
/// too long), so the dispatcher pushes them again.
pub async fn reconcile_once(ctx: Arc<WorkerCtx>, q: Queue) -> anyhow::Result<()> {
    let stale = ctx.config.reconcile_stale_secs as f64;
    let candidates = jobs::stale_dispatched(&ctx.db, q, stale, false, 2000).await?;
    let exists = if candidates.is_empty() {
        Vec::new()
    } else {
        let task_ids: Vec<String> = candidates.iter().map(|(_, t)| t.clone()).collect();
        let mut conn = ctx.redis.clone();
        queue::tasks_exist(&mut conn, ctx.apalis(q), &task_ids).await?
    };
    // also those with no task at all (claimed through an older delivery), whatever Redis holds
    let very_stale = jobs::stale_dispatched(&ctx.db, q, stale * 10.0, true, 2000).await?;
    let mut lost: Vec<_> = candidates
        .iter()
        .zip(&exists)
        .filter(|(_, e)| !**e)
        .map(|((id, _), _)| *id)
        .collect();
    lost.extend(very_stale.iter().map(|(id, _)| *id));
    lost.sort();
    lost.dedup();
    if lost.is_empty() {
        return Ok(());
    }
    let n = jobs::undispatch(&ctx.db, &lost).await?;
    metrics::counter!("pacer_jobs_reconciled_total", "queue" => q.as_str()).increment(n);
    tracing::warn!(
        queue = q.as_str(),
        count = n,
        "re-dispatching jobs that Redis no longer holds"
    );
    dispatch(ctx, q).await
}

async fn trim(ctx: Arc<WorkerCtx>, q: Queue) -> anyhow::Result<()> {
    let mut conn = ctx.redis.clone();
    let n = queue::trim_finished(&mut conn, ctx.apalis(q), 5000).await?;
    if n > 0 {
        tracing::debug!(queue = q.as_str(), count = n, "trimmed finished tasks");
    }
    let gone = queue::forget_gone_workers(&mut conn, ctx.apalis(q)).await?;
    if gone > 0 {
        tracing::debug!(
            queue = q.as_str(),
            count = gone,
            "forgot the metadata of gone workers"
        );
    }
    Ok(())
}

/// Deletes the queue's finished jobs past retention, a bounded batch per statement so no pass
/// holds many row locks or one long transaction.
async fn prune(ctx: Arc<WorkerCtx>, q: Queue) -> anyhow::Result<()> {
    const BATCH: i64 = 2000;
    loop {
        let n = jobs::delete_finished(&ctx.db, q, ctx.config.job_retention_secs, BATCH).await?;
        if n > 0 {
            metrics::counter!("pacer_jobs_pruned_total", "queue" => q.as_str()).increment(n);
            tracing::debug!(
                queue = q.as_str(),
                count = n,
                "deleted finished jobs past retention"
            );
        }
        if n < u64::try_from(BATCH).unwrap_or(0) {
            return Ok(());
        }
    }
}

/// Deletes expired custom tokens and login sessions, a batch at a time.
async fn sweep_tokens(ctx: Arc<WorkerCtx>, _q: Queue) -> anyhow::Result<()> {
    const BATCH: i64 = 1000;
    loop {
        let n = ai_training::delete_expired_tokens(&ctx.db, BATCH).await?;
        if n > 0 {
            tracing::debug!(
                count = n,
                "deleted expired custom tokens and login sessions"
            );
        }
        if n < u64::try_from(BATCH).unwrap_or(0) {
            return Ok(());
        }
    }
}

/// Queues `recompute_stats` for the athletes whose snapshot's date is past in their own zone:
/// a snapshot is computed for a day, and without an upload nothing else would move "this
/// week" to zero on Monday or age the HRV and load windows. The debounce makes concurrent
/// passes of several workers (and an upload's own recompute) enqueue an athlete once.
async fn rollover(ctx: Arc<WorkerCtx>, _q: Queue) -> anyhow::Result<()> {
    const PAGE: i64 = 1000;
    let now = chrono::Utc::now();
    let mut after = String::new();
    let mut queued = 0;
    loop {
        let page = analytics::snapshots_maybe_behind(&ctx.db, &after, PAGE).await?;
        let Some((last, ..)) = page.last() else {
            break;
        };
        after = last.clone();
        let behind: Vec<(String, Option<String>)> = page
            .iter()
            .filter(|(_, _, tz, as_of)| {
                // the zone recompute_stats computes in (an unknown zone: UTC)
                let tz: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::UTC);
                *as_of < now.with_timezone(&tz).date_naive()
            })
            .map(|(id, org, ..)| (id.clone(), org.clone()))
            .collect();
        if !behind.is_empty() {
            queued +=
                analytics::enqueue_recomputes(&ctx.db, &behind, ctx.config.common.max_attempts)
                    .await?;
        }
        if page.len() < usize::try_from(PAGE).unwrap_or(0) {
            break;
        }
    }
    if queued > 0 {
        metrics::counter!("pacer_snapshot_rollovers_total").increment(queued);
        tracing::info!(
            count = queued,
            "queued recomputes of snapshots left behind by the date"
        );
    }
    Ok(())
}

/// After the grace period: give the jobs still running back to the queue at once rather than
/// waiting for the orphan timeout.
pub async fn hand_back(ctx: &Arc<WorkerCtx>) -> anyhow::Result<()> {
    let ids = ctx.running_jobs();
    if ids.is_empty() {
        return Ok(());
    }
    let n = jobs::hand_back(&ctx.db, &ids, &ctx.name).await?;
    tracing::warn!(count = n, "handed running jobs back to the queue");
    Ok(())
}
