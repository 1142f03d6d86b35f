//! Analytics jobs: rebuild an athlete's daily rollups in the athlete's time zone.

use anyhow::anyhow;
use pacer_common::db::users;
use pacer_common::jobs::{RecomputeBatchInput, RecomputeStatsInput};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::runner::{JobCtx, JobError};

/// `recompute_stats`: one athlete.
pub async fn recompute(ctx: &JobCtx) -> Result<Value, JobError> {
    let input: RecomputeStatsInput = ctx.input()?;
    ctx.progress("running", "Aggregating activities", 10)
        .await?;
    let (days, activities) = rebuild_rollups(&ctx.worker.db, &input.user_id).await?;
    ctx.progress("running", "Daily rollups rebuilt", 90).await?;
    Ok(json!({"user_id": input.user_id, "days": days, "activities": activities}))
}

/// `recompute_batch`: every athlete of an organization (or all); progress is the share done.
pub async fn recompute_batch(ctx: &JobCtx) -> Result<Value, JobError> {
    let input: RecomputeBatchInput = ctx.input()?;
    let athletes = users::athlete_ids(&ctx.worker.db, input.org_id.as_deref()).await?;
    let total = athletes.len();
    ctx.progress("running", &format!("Recomputing {total} athletes"), 0)
        .await?;
    let mut activities = 0;
    let mut last_pct = 0;
    for (i, athlete) in athletes.iter().enumerate() {
        ctx.check_cancelled()?;
        activities += rebuild_rollups(&ctx.worker.db, athlete).await?.1;
        let pct = u8::try_from((i + 1) * 100 / total.max(1)).unwrap_or(100);
        if pct > last_pct {
            last_pct = pct;
            ctx.progress(
                "running",
                &format!("{} of {total} athletes done", i + 1),
                pct,
            )
            .await?;
        }
    }
    Ok(json!({"org_id": input.org_id, "athletes": total, "activities": activities}))
}

/// Replaces the athlete's daily rollups, bucketing by the local date in the athlete's zone.
/// Returns (days, activities).
async fn rebuild_rollups(db: &PgPool, athlete_id: &str) -> Result<(i64, i64), JobError> {
    let user = users::get_user(db, athlete_id)
        .await?
        .ok_or_else(|| JobError::Permanent(anyhow!("user {athlete_id} not found")))?;
    let mut tx = db.begin().await?;
    sqlx::query("delete from daily_rollups where athlete_id = $1")
        .bind(athlete_id)
        .execute(&mut *tx)
        .await?;
    let days = sqlx::query(
        "insert into daily_rollups (athlete_id, day, runs, distance, moving_time, calories)
         select athlete_id, (start_date at time zone $2)::date, count(*), sum(distance), sum(moving_time), coalesce(sum(calories), 0)
           from activities where athlete_id = $1
          group by athlete_id, (start_date at time zone $2)::date",
    )
    .bind(athlete_id)
    .bind(&user.timezone)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let activities: i64 =
        sqlx::query_scalar("select count(*) from activities where athlete_id = $1")
            .bind(athlete_id)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok((i64::try_from(days).unwrap_or(i64::MAX), activities))
}
