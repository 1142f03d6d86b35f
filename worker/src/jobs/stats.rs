//! Analytics jobs. `recompute_stats` rebuilds one athlete's daily rollups (in the athlete's
//! zone) and metrics snapshot, then invalidates the caches that show them. `recompute_batch`
//! fans out one child `recompute_stats` per athlete (run by any worker) and reports the share
//! finished as its progress.

use std::time::Duration;

use anyhow::anyhow;
use pacer_common::analytics::snapshot;
use pacer_common::db::{analytics as db, users};
use pacer_common::events;
use pacer_common::jobs::{RecomputeBatchInput, RecomputeStatsInput};
use pacer_common::keys::Keys;
use serde_json::{Value, json};

use crate::runner::{JobCtx, JobError};

/// `recompute_stats`: one athlete.
pub async fn recompute(ctx: &JobCtx) -> Result<Value, JobError> {
    let input: RecomputeStatsInput = ctx.input()?;
    let db_pool = &ctx.worker.db;
    // a child of a cancelled batch does not run
    if db::parent_cancelled(db_pool, ctx.job.id).await? {
        return Err(JobError::Cancelled);
    }
    ctx.progress("running", "Aggregating activities", 10)
        .await?;
    // rollups, reads and snapshot in one transaction under the athlete's lock (no Redis call
    // inside it: a Redis outage must not hold the lock)
    let mut tx = db_pool.begin().await?;
    db::lock_athlete(&mut tx, &input.user_id).await?;
    // read under the lock: a time zone changed meanwhile must not be overwritten by a job
    // that read the old one before it waited for the lock
    let user = users::get_user(&mut *tx, &input.user_id)
        .await?
        .ok_or_else(|| JobError::Permanent(anyhow!("user {} not found", input.user_id)))?;
    let tz: chrono_tz::Tz = user.timezone.parse().unwrap_or(chrono_tz::UTC);
    let days = db::rebuild_rollups(&mut tx, &user.id, tz.name()).await?;
    let activities: i64 =
        sqlx::query_scalar("select count(*) from activities where athlete_id = $1")
            .bind(&user.id)
            .fetch_one(&mut *tx)
            .await?;
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    let totals = db::rollup_totals(&mut *tx, &user.id).await?;
    let health = db::health_since(&mut *tx, &user.id, today - chrono::Duration::days(80)).await?;
    let planned = db::planned_since(&mut *tx, &user.id, today - chrono::Duration::days(7)).await?;
    let snap = snapshot::compute(today, &totals, &health, &planned);
    db::write_snapshot(&mut *tx, &user.id, today, &snap).await?;
    tx.commit().await?;
    // before anything that may stop the job (a cancel at its next event): the snapshot is
    // written, so the caches must not keep the old one
    invalidate(ctx, &user.id, user.org_id.as_deref()).await;
    ctx.progress("running", "Daily rollups rebuilt", 50).await?;
    ctx.progress("running", "Metrics snapshot written", 90)
        .await?;
    Ok(json!({
        "user_id": user.id,
        "days": days,
        "activities": activities,
        "weekly_distance_km": snap.weekly_distance_km,
        "current_week_load": snap.current_week_load,
        "flags": snap.flags.iter().map(|f| f.code).collect::<Vec<_>>(),
    }))
}

/// Bumps the athlete's version (the athlete_profile, activity_stats and health_metrics keys
/// include it) and the org's roster version (every coach's roster key of
/// the org includes it). A Redis failure only delays freshness until the TTL: logged.
async fn invalidate(ctx: &JobCtx, athlete_id: &str, org_id: Option<&str>) {
    let keys: &Keys = &ctx.worker.keys;
    let mut conn = ctx.worker.redis.clone();
    let mut pipe = redis::pipe();
    pipe.incr(keys.cache(&format!("athlete_version:{athlete_id}")), 1);
    if let Some(org) = org_id {
        pipe.incr(keys.cache(&format!("roster_version:{org}")), 1);
    }
    if let Err(e) = pipe.query_async::<()>(&mut conn).await {
        tracing::warn!(athlete = athlete_id, error = %e, "cache invalidation failed");
    }
}

/// `recompute_batch`: every athlete of an organization (or all). Inserts one child job per
/// athlete (the dispatcher pushes them; any worker runs them), then waits for them, emitting
/// the share finished as progress. Cancelling the batch cancels its unfinished children.
pub async fn recompute_batch(ctx: &JobCtx) -> Result<Value, JobError> {
    let input: RecomputeBatchInput = ctx.input()?;
    let db_pool = &ctx.worker.db;
    let athletes = athletes_with_org(db_pool, input.org_id.as_deref()).await?;
    db::insert_batch_children(
        db_pool,
        ctx.job.id,
        &ctx.job.owner_id,
        &athletes,
        ctx.job.max_attempts,
    )
    .await?;
    let (total, _, _) = db::batch_counts(db_pool, ctx.job.id).await?;
    // a later attempt (a retry, a restart) goes on from the progress already reported: the
    // batch's progress never goes back
    let mut last_pct = u8::try_from(ctx.job.progress.clamp(0, 100)).unwrap_or(0);
    if last_pct == 0 {
        ctx.progress("running", &format!("Recomputing {total} athletes"), 0)
            .await?;
    }
    let (mut last_done, mut moved_at) = (0, tokio::time::Instant::now());
    let mut running_children = false;
    loop {
        if db::job_cancel_requested(db_pool, ctx.job.id).await? {
            cancel_children(ctx).await?;
            return Err(JobError::Cancelled);
        }
        let (total, done, failed) = db::batch_counts(db_pool, ctx.job.id).await?;
        let pct = if total == 0 {
            100
        } else {
            u8::try_from(done * 100 / total).unwrap_or(100)
        };
        if pct > last_pct {
            last_pct = pct;
            if let Err(e) = ctx
                .progress("running", &format!("{done} of {total} athletes done"), pct)
                .await
            {
                if matches!(e, JobError::Cancelled) {
                    cancel_children(ctx).await?;
                }
                return Err(e);
            }
        }
        if done >= total {
            return Ok(json!({
                "org_id": input.org_id,
                "athletes": total,
                "succeeded": total - failed,
                "failed": failed,
            }));
        }
        if done > last_done {
            (last_done, moved_at) = (done, tokio::time::Instant::now());
        }
        // once starved, for good: the slots that kept the children waiting are still taken
        running_children |= moved_at.elapsed() >= STARVED;
        let ran = running_children && run_children(ctx, POLL).await?;
        if !ran {
            tokio::time::sleep(POLL).await;
        }
    }
}

/// How often a batch looks at its children (progress, a cancel request).
const POLL: Duration = Duration::from_millis(500);

/// How long a batch waits without a child finishing before it runs queued children itself.
const STARVED: Duration = Duration::from_secs(2);

/// Runs the batch's queued children here, one after the other, in the batch's own slot, for
/// about `budget` (then the batch reports progress and checks for a cancel). A parent waits in
/// a slot of the `stats` queue: with as many batches running as the worker has slots (or one
/// slot), no slot is left for the children, nor for any other recompute queued behind them.
/// Each child is claimed as any delivery is; a copy delivered elsewhere then finds it running
/// or finished. Returns whether any child was queued.
async fn run_children(ctx: &JobCtx, budget: Duration) -> Result<bool, JobError> {
    let until = tokio::time::Instant::now() + budget;
    let mut ran = false;
    while let Some(child) = db::next_queued_child(&ctx.worker.db, ctx.job.id).await? {
        ran = true;
        if let Err(e) = crate::runner::run_boxed(ctx.worker.clone(), child).await {
            tracing::debug!(job.id = %child, error = %e, "a batch child run by its batch did not finish");
        }
        if tokio::time::Instant::now() >= until {
            break;
        }
    }
    Ok(ran)
}

async fn cancel_children(ctx: &JobCtx) -> Result<(), JobError> {
    events::cancel_batch_children(&ctx.worker.db, &ctx.worker.events, ctx.job.id).await?;
    Ok(())
}

async fn athletes_with_org(
    db_pool: &sqlx::PgPool,
    org_id: Option<&str>,
) -> Result<Vec<(String, Option<String>)>, JobError> {
    Ok(sqlx::query_as(
        "select id, org_id from users where role = 'athlete' and ($1::text is null or org_id = $1) order by id",
    )
    .bind(org_id)
    .fetch_all(db_pool)
    .await?)
}
