//! Analytics tables: activities, health metrics, goals, plan instances, daily rollups, the
//! metrics snapshot, and the debounced recompute job.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::analytics::RUN_TYPES;
use crate::analytics::snapshot::{DayTotals, HealthDay, PlannedSession, Snapshot};

/// Owner of the jobs ingestion enqueues (the debounce index is on this owner).
pub const SYSTEM_OWNER: &str = "system:analytics";

/// A validated activity, load and zones already computed.
#[derive(Debug, Clone)]
pub struct ActivityIn {
    pub athlete_id: String,
    pub external_id: String,
    pub sport_type: String,
    pub start_date: DateTime<Utc>,
    pub timezone: String,
    pub distance: f64,
    pub moving_time: i32,
    pub elapsed_time: i32,
    pub average_heartrate: Option<f64>,
    pub max_heartrate: Option<f64>,
    pub calories: Option<f64>,
    pub training_load: f64,
    pub load_method: String,
    pub pace_zone_seconds: [i32; 5],
    pub hr_zone_seconds: [i32; 5],
}

/// Inserts or replaces (same athlete and `external_id`: the newer upload wins). Returns the id
/// and whether the row is new.
pub async fn upsert_activity(
    db: impl PgExecutor<'_>,
    a: &ActivityIn,
) -> sqlx::Result<(Uuid, bool)> {
    sqlx::query_as(
        "insert into activities (id, athlete_id, external_id, sport_type, start_date, timezone, distance,
                                 moving_time, elapsed_time, average_heartrate, max_heartrate, calories,
                                 training_load, load_method, pace_zone_seconds, hr_zone_seconds)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         on conflict (athlete_id, external_id) do update set
             sport_type = excluded.sport_type, start_date = excluded.start_date, timezone = excluded.timezone,
             distance = excluded.distance, moving_time = excluded.moving_time, elapsed_time = excluded.elapsed_time,
             average_heartrate = excluded.average_heartrate, max_heartrate = excluded.max_heartrate,
             calories = excluded.calories, training_load = excluded.training_load,
             load_method = excluded.load_method, pace_zone_seconds = excluded.pace_zone_seconds,
             hr_zone_seconds = excluded.hr_zone_seconds, updated_at = now()
         returning id, (xmax = 0) as created",
    )
    .bind(Uuid::now_v7())
    .bind(&a.athlete_id)
    .bind(&a.external_id)
    .bind(&a.sport_type)
    .bind(a.start_date)
    .bind(&a.timezone)
    .bind(a.distance)
    .bind(a.moving_time)
    .bind(a.elapsed_time)
    .bind(a.average_heartrate)
    .bind(a.max_heartrate)
    .bind(a.calories)
    .bind(a.training_load)
    .bind(&a.load_method)
    .bind(a.pace_zone_seconds.to_vec())
    .bind(a.hr_zone_seconds.to_vec())
    .fetch_one(db)
    .await
}

/// Many activities in one statement (the generator). Existing ones are left alone.
pub async fn insert_activities_bulk(
    db: impl PgExecutor<'_>,
    rows: &[(Uuid, ActivityIn)],
) -> sqlx::Result<u64> {
    let col = |f: &dyn Fn(&ActivityIn) -> i32| rows.iter().map(|(_, a)| f(a)).collect::<Vec<i32>>();
    let r = sqlx::query(
        "insert into activities (id, athlete_id, external_id, sport_type, start_date, timezone, distance,
                                 moving_time, elapsed_time, average_heartrate, max_heartrate, calories,
                                 training_load, load_method, pace_zone_seconds, hr_zone_seconds)
         select id, athlete_id, external_id, sport_type, start_date, timezone, distance, moving_time,
                elapsed_time, average_heartrate, max_heartrate, calories, training_load, load_method,
                array[p1, p2, p3, p4, p5], array[h1, h2, h3, h4, h5]
           from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[],
                       $7::float8[], $8::int4[], $9::int4[], $10::float8[], $11::float8[], $12::float8[],
                       $13::float8[], $14::text[], $15::int4[], $16::int4[], $17::int4[], $18::int4[],
                       $19::int4[], $20::int4[], $21::int4[], $22::int4[], $23::int4[], $24::int4[])
                as t(id, athlete_id, external_id, sport_type, start_date, timezone, distance, moving_time,
                     elapsed_time, average_heartrate, max_heartrate, calories, training_load, load_method,
                     p1, p2, p3, p4, p5, h1, h2, h3, h4, h5)
         on conflict (athlete_id, external_id) do nothing",
    )
    .bind(rows.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, a)| a.athlete_id.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, a)| a.external_id.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, a)| a.sport_type.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, a)| a.start_date).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, a)| a.timezone.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, a)| a.distance).collect::<Vec<_>>())
    .bind(col(&|a| a.moving_time))
    .bind(col(&|a| a.elapsed_time))
    .bind(rows.iter().map(|(_, a)| a.average_heartrate).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, a)| a.max_heartrate).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, a)| a.calories).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, a)| a.training_load).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, a)| a.load_method.clone()).collect::<Vec<_>>())
    .bind(col(&|a| a.pace_zone_seconds[0]))
    .bind(col(&|a| a.pace_zone_seconds[1]))
    .bind(col(&|a| a.pace_zone_seconds[2]))
    .bind(col(&|a| a.pace_zone_seconds[3]))
    .bind(col(&|a| a.pace_zone_seconds[4]))
    .bind(col(&|a| a.hr_zone_seconds[0]))
    .bind(col(&|a| a.hr_zone_seconds[1]))
    .bind(col(&|a| a.hr_zone_seconds[2]))
    .bind(col(&|a| a.hr_zone_seconds[3]))
    .bind(col(&|a| a.hr_zone_seconds[4]))
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}

/// One day of health metrics; `None` fields keep what is stored.
#[derive(Debug, Clone, Default, serde::Serialize, sqlx::FromRow)]
pub struct HealthIn {
    pub athlete_id: String,
    pub day: NaiveDate,
    pub resting_hr: Option<f64>,
    pub hrv_rmssd: Option<f64>,
    pub vo2_max: Option<f64>,
    pub recovery_score: Option<f64>,
}

/// Upserts days of health metrics (fields a later upload omits are kept). Returns how many
/// rows were new.
pub async fn upsert_health(db: impl PgExecutor<'_>, rows: &[HealthIn]) -> sqlx::Result<Vec<bool>> {
    sqlx::query_scalar(
        "insert into health_metrics (athlete_id, day, resting_hr, hrv_rmssd, vo2_max, recovery_score)
         select * from unnest($1::text[], $2::date[], $3::float8[], $4::float8[], $5::float8[], $6::float8[])
         on conflict (athlete_id, day) do update set
             resting_hr = coalesce(excluded.resting_hr, health_metrics.resting_hr),
             hrv_rmssd = coalesce(excluded.hrv_rmssd, health_metrics.hrv_rmssd),
             vo2_max = coalesce(excluded.vo2_max, health_metrics.vo2_max),
             recovery_score = coalesce(excluded.recovery_score, health_metrics.recovery_score),
             updated_at = now()
         returning (xmax = 0)",
    )
    .bind(rows.iter().map(|r| r.athlete_id.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.day).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.resting_hr).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.hrv_rmssd).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.vo2_max).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.recovery_score).collect::<Vec<_>>())
    .fetch_all(db)
    .await
}

/// Inserts a `recompute_stats` job for the athlete unless one of ours is still waiting to
/// start: such a job carries the athlete as its `debounce_key` until it first leaves the queue
/// (claim, cancel, terminal write), and the partial unique index `jobs_recompute_debounce`
/// makes check-and-insert atomic. The dispatcher pushes it to Redis. Returns the new job's
/// id, `None` when debounced.
pub async fn enqueue_recompute(
    db: impl PgExecutor<'_>,
    user_id: &str,
    org_id: Option<&str>,
    max_attempts: i32,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "insert into jobs (id, kind, queue, owner_id, org_id, input, max_attempts, debounce_key)
         values ($1, 'recompute_stats', 'stats', $2, $3, $4, $5, $6)
         on conflict (debounce_key) where debounce_key is not null do nothing
         returning id",
    )
    .bind(Uuid::now_v7())
    .bind(SYSTEM_OWNER)
    .bind(org_id)
    .bind(Json(serde_json::json!({"user_id": user_id})))
    .bind(max_attempts)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// The debounced recompute of many athletes at once (`(user_id, org_id)`); returns how many
/// were enqueued (an athlete with one already waiting is skipped).
pub async fn enqueue_recomputes(
    db: impl PgExecutor<'_>,
    athletes: &[(String, Option<String>)],
    max_attempts: i32,
) -> sqlx::Result<u64> {
    let ids: Vec<Uuid> = athletes.iter().map(|_| Uuid::now_v7()).collect();
    let users: Vec<&str> = athletes.iter().map(|(u, _)| u.as_str()).collect();
    let orgs: Vec<Option<&str>> = athletes.iter().map(|(_, o)| o.as_deref()).collect();
    let r = sqlx::query(
        "insert into jobs (id, kind, queue, owner_id, org_id, input, max_attempts, debounce_key)
         select t.id, 'recompute_stats', 'stats', $1, t.org_id, jsonb_build_object('user_id', t.user_id), $2, t.user_id
           from unnest($3::uuid[], $4::text[], $5::text[]) as t(id, user_id, org_id)
         on conflict (debounce_key) where debounce_key is not null do nothing",
    )
    .bind(SYSTEM_OWNER)
    .bind(max_attempts)
    .bind(ids)
    .bind(users)
    .bind(orgs)
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}

/// Snapshots that may describe a past day in their athlete's zone, in `athlete_id` order after
/// `after`: `(athlete_id, org_id, timezone, as_of)`. No zone's date is past UTC's by more than
/// a day, so `as_of` on or before UTC's date is the superset; the caller checks the zone.
pub async fn snapshots_maybe_behind(
    db: impl PgExecutor<'_>,
    after: &str,
    limit: i64,
) -> sqlx::Result<Vec<(String, Option<String>, String, NaiveDate)>> {
    sqlx::query_as(
        "select m.athlete_id, u.org_id, u.timezone, m.as_of
           from athlete_metrics m join users u on u.id = m.athlete_id
          where m.as_of <= (now() at time zone 'UTC')::date and m.athlete_id > $1
          order by m.athlete_id
          limit $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// A batch's children: one `recompute_stats` per athlete, owned like the batch. Does nothing
/// when the batch already has children (a retried batch resumes waiting on them).
pub async fn insert_batch_children(
    db: impl PgExecutor<'_>,
    parent: Uuid,
    owner_id: &str,
    athletes: &[(String, Option<String>)],
    max_attempts: i32,
) -> sqlx::Result<u64> {
    let ids: Vec<Uuid> = athletes.iter().map(|_| Uuid::now_v7()).collect();
    let r = sqlx::query(
        "insert into jobs (id, kind, queue, owner_id, org_id, input, max_attempts, parent_id)
         select t.id, 'recompute_stats', 'stats', $2, t.org_id, jsonb_build_object('user_id', t.user_id), $5, $1
           from unnest($3::uuid[], $4::text[], $6::text[]) as t(id, user_id, org_id)
          where not exists (select 1 from jobs where parent_id = $1)",
    )
    .bind(parent)
    .bind(owner_id)
    .bind(ids)
    .bind(athletes.iter().map(|a| a.0.clone()).collect::<Vec<_>>())
    .bind(max_attempts)
    .bind(athletes.iter().map(|a| a.1.clone()).collect::<Vec<_>>())
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}

/// (total, finished, failed) children of a batch.
pub async fn batch_counts(db: impl PgExecutor<'_>, parent: Uuid) -> sqlx::Result<(i64, i64, i64)> {
    sqlx::query_as(
        "select count(*), count(*) filter (where state in ('succeeded', 'failed', 'cancelled')),
                count(*) filter (where state in ('failed', 'cancelled'))
           from jobs where parent_id = $1",
    )
    .bind(parent)
    .fetch_one(db)
    .await
}

/// A batch's children still queued: the caller reads their logs' last numbers before
/// `cancel_children` (a child taken over from a dead worker may have events the row has not seen).
pub async fn queued_children(db: impl PgExecutor<'_>, parent: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar("select id from jobs where parent_id = $1 and state = 'queued'")
        .bind(parent)
        .fetch_all(db)
        .await
}

/// A queued child of the batch, oldest first (see `recompute_batch`'s fallback).
pub async fn next_queued_child(
    db: impl PgExecutor<'_>,
    parent: Uuid,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "select id from jobs where parent_id = $1 and state = 'queued' order by created_at limit 1",
    )
    .bind(parent)
    .fetch_optional(db)
    .await
}

/// Cancels a batch's children. Queued ones end at once, their final numbers reserved above
/// their log's last event (`logged`; 0 for a child missing from it) as `jobs::cancel` does, and
/// come back with the number of their `done` so the caller appends the final events. Running
/// ones stop at their next step; they come back so the caller can tell their workers through
/// Redis too.
pub async fn cancel_children(
    db: &PgPool,
    parent: Uuid,
    logged: &[(Uuid, u64)],
) -> sqlx::Result<(Vec<(Uuid, u64)>, Vec<Uuid>)> {
    let (ids, tops): (Vec<Uuid>, Vec<i64>) = logged
        .iter()
        .map(|(id, top)| (*id, i64::try_from(*top).unwrap_or(i64::MAX)))
        .unzip();
    let cancelled: Vec<(Uuid, i64)> = sqlx::query_as(
        "update jobs j set state = 'cancelled', cancel_requested = true, error = 'cancelled',
                message = 'cancelled', finished_at = now(), updated_at = now(), debounce_key = null,
                event_seq = greatest(j.event_seq, coalesce(c.top, 0)) + 2
           from (select q.id, t.top
                   from jobs q left join unnest($2::uuid[], $3::bigint[]) t(id, top) on t.id = q.id
                  where q.parent_id = $1 and q.state = 'queued') c
          where j.id = c.id and j.state = 'queued'
          returning j.id, j.event_seq",
    )
    .bind(parent)
    .bind(&ids)
    .bind(&tops)
    .fetch_all(db)
    .await?;
    let running = sqlx::query_scalar("update jobs set cancel_requested = true, updated_at = now() where parent_id = $1 and state = 'running' returning id")
        .bind(parent)
        .fetch_all(db)
        .await?;
    let cancelled = cancelled
        .into_iter()
        .map(|(id, seq)| (id, u64::try_from(seq).unwrap_or(0)))
        .collect();
    Ok((cancelled, running))
}

/// Whether the job's batch (if any) was cancelled: its child should not run.
pub async fn parent_cancelled(db: impl PgExecutor<'_>, job_id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select coalesce(bool_or(p.cancel_requested or p.state = 'cancelled'), false)
           from jobs c join jobs p on p.id = c.parent_id where c.id = $1",
    )
    .bind(job_id)
    .fetch_one(db)
    .await
}

pub async fn job_cancel_requested(db: impl PgExecutor<'_>, job_id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar("select cancel_requested from jobs where id = $1")
        .bind(job_id)
        .fetch_optional(db)
        .await
        .map(|v| v.unwrap_or(true))
}

/// Takes the athlete's recompute lock until `tx` ends. Two recomputes of one athlete may run
/// at once (one started, the next queued and claimed by another slot): holding the lock from
/// the rollup rebuild to the snapshot write serialises them whole, so the one that starts
/// later reads everything the earlier one did and writes last (with the lock around the
/// rebuild only, an older snapshot could overwrite a newer one).
pub async fn lock_athlete(tx: &mut PgConnection, athlete_id: &str) -> sqlx::Result<()> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('pacer:rollups:' || $1, 0))")
        .bind(athlete_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Rebuilds the athlete's daily rollups in zone `tz` (IANA), inside the caller's transaction,
/// which holds [`lock_athlete`]. Returns the number of days. Daily sums of seconds saturate at
/// the column's `int4` bound: thousands of activities on one day must not fail the recompute
/// (and every rollover after it) with an integer overflow.
pub async fn rebuild_rollups(
    tx: &mut PgConnection,
    athlete_id: &str,
    tz: &str,
) -> sqlx::Result<u64> {
    sqlx::query("delete from daily_rollups where athlete_id = $1")
        .bind(athlete_id)
        .execute(&mut *tx)
        .await?;
    let days = sqlx::query(
        "insert into daily_rollups (athlete_id, day, runs, distance, moving_time, calories, elapsed_time,
                                    training_load, run_distance, run_moving_time, run_paced_time,
                                    longest_run, longest_run_time, pace_zone_seconds, hr_zone_seconds)
         select athlete_id, (start_date at time zone $2)::date, count(*), sum(distance),
                least(sum(moving_time), 2147483647),
                coalesce(sum(calories), 0), least(sum(elapsed_time), 2147483647), sum(training_load),
                coalesce(sum(distance) filter (where sport_type = any($3)), 0),
                least(coalesce(sum(moving_time) filter (where sport_type = any($3)), 0), 2147483647),
                least(coalesce(sum(moving_time) filter (where sport_type = any($3) and distance > 0), 0),
                      2147483647),
                coalesce(max(distance) filter (where sport_type = any($3)), 0),
                coalesce(max(moving_time) filter (where sport_type = any($3)), 0),
                array[least(sum(pace_zone_seconds[1]), 2147483647), least(sum(pace_zone_seconds[2]), 2147483647),
                      least(sum(pace_zone_seconds[3]), 2147483647), least(sum(pace_zone_seconds[4]), 2147483647),
                      least(sum(pace_zone_seconds[5]), 2147483647)]::int4[],
                array[least(sum(hr_zone_seconds[1]), 2147483647), least(sum(hr_zone_seconds[2]), 2147483647),
                      least(sum(hr_zone_seconds[3]), 2147483647), least(sum(hr_zone_seconds[4]), 2147483647),
                      least(sum(hr_zone_seconds[5]), 2147483647)]::int4[]
           from activities where athlete_id = $1
          group by athlete_id, (start_date at time zone $2)::date",
    )
    .bind(athlete_id)
    .bind(tz)
    .bind(RUN_TYPES.map(str::to_owned).to_vec())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(days)
}

/// One `daily_rollups` row as the snapshot reads it (integer seconds as stored).
#[derive(sqlx::FromRow)]
struct RollupRow {
    day: NaiveDate,
    /// every activity of the day (the column predates its other sports)
    runs: i32,
    run_distance: f64,
    run_moving_time: i32,
    run_paced_time: i32,
    longest_run: f64,
    longest_run_time: i32,
    training_load: f64,
    pace_zone_seconds: Vec<i32>,
}

/// The athlete's rollups as snapshot input.
pub async fn rollup_totals(
    db: impl PgExecutor<'_>,
    athlete_id: &str,
) -> sqlx::Result<Vec<DayTotals>> {
    let rows: Vec<RollupRow> = sqlx::query_as(
        "select day, runs, run_distance, run_moving_time, run_paced_time, longest_run, longest_run_time,
                training_load, pace_zone_seconds
           from daily_rollups where athlete_id = $1 order by day",
    )
    .bind(athlete_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let mut zones = [0.0; 5];
            for (o, v) in zones.iter_mut().zip(r.pace_zone_seconds) {
                *o = f64::from(v);
            }
            DayTotals {
                day: r.day,
                activities: u32::try_from(r.runs).unwrap_or(0),
                run_distance: r.run_distance,
                run_moving_time: f64::from(r.run_moving_time),
                run_paced_time: f64::from(r.run_paced_time),
                longest_run: r.longest_run,
                longest_run_time: f64::from(r.longest_run_time),
                load: r.training_load,
                pace_zone_seconds: zones,
            }
        })
        .collect())
}

/// Health metrics on or after `since`.
pub async fn health_since(
    db: impl PgExecutor<'_>,
    athlete_id: &str,
    since: NaiveDate,
) -> sqlx::Result<Vec<HealthDay>> {
    let rows: Vec<HealthIn> = sqlx::query_as(
        "select athlete_id, day, resting_hr, hrv_rmssd, vo2_max, recovery_score
           from health_metrics where athlete_id = $1 and day >= $2 order by day",
    )
    .bind(athlete_id)
    .bind(since)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| HealthDay {
            day: r.day,
            resting_hr: r.resting_hr,
            hrv_rmssd: r.hrv_rmssd,
            vo2_max: r.vo2_max,
            recovery_score: r.recovery_score,
        })
        .collect())
}

pub async fn write_snapshot(
    db: impl PgExecutor<'_>,
    athlete_id: &str,
    as_of: NaiveDate,
    s: &Snapshot,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into athlete_metrics (athlete_id, weekly_distance_km, avg_pace_s_per_km, current_week_load,
                                      four_week_avg_load, ctl, atl, acwr, vo2_max, vo2_max_prev, hrv_avg,
                                      hrv_avg_prev, recovery_score, recovery_score_prev, flags, as_of, last_updated)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, now())
         on conflict (athlete_id) do update set
             weekly_distance_km = excluded.weekly_distance_km, avg_pace_s_per_km = excluded.avg_pace_s_per_km,
             current_week_load = excluded.current_week_load, four_week_avg_load = excluded.four_week_avg_load,
             ctl = excluded.ctl, atl = excluded.atl, acwr = excluded.acwr, vo2_max = excluded.vo2_max,
             vo2_max_prev = excluded.vo2_max_prev, hrv_avg = excluded.hrv_avg, hrv_avg_prev = excluded.hrv_avg_prev,
             recovery_score = excluded.recovery_score, recovery_score_prev = excluded.recovery_score_prev,
             flags = excluded.flags, as_of = excluded.as_of, last_updated = now()",
    )
    .bind(athlete_id)
    .bind(s.weekly_distance_km)
    .bind(s.avg_pace_s_per_km)
    .bind(s.current_week_load)
    .bind(s.four_week_avg_load)
    .bind(s.ctl)
    .bind(s.atl)
    .bind(s.acwr)
    .bind(s.vo2_max)
    .bind(s.vo2_max_prev)
    .bind(s.hrv_avg)
    .bind(s.hrv_avg_prev)
    .bind(s.recovery_score)
    .bind(s.recovery_score_prev)
    .bind(Json(serde_json::to_value(&s.flags).unwrap_or(Value::Array(Vec::new()))))
    .bind(as_of)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MetricsRow {
    pub athlete_id: String,
    pub weekly_distance_km: f64,
    pub avg_pace_s_per_km: Option<f64>,
    pub current_week_load: f64,
    pub four_week_avg_load: f64,
    pub ctl: f64,
    pub atl: f64,
    pub acwr: Option<f64>,
    pub vo2_max: Option<f64>,
    pub vo2_max_prev: Option<f64>,
    pub hrv_avg: Option<f64>,
    pub hrv_avg_prev: Option<f64>,
    pub recovery_score: Option<f64>,
    pub recovery_score_prev: Option<f64>,
    pub flags: Json<Value>,
    pub as_of: NaiveDate,
    pub last_updated: DateTime<Utc>,
}

pub async fn metrics_for(db: impl PgExecutor<'_>, ids: &[String]) -> sqlx::Result<Vec<MetricsRow>> {
    sqlx::query_as("select * from athlete_metrics where athlete_id = any($1)")
        .bind(ids)
        .fetch_all(db)
        .await
}

// ---- goals and plan instances ----

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct GoalRow {
    pub id: String,
    pub athlete_id: String,
    pub race_name: String,
    pub race_date: NaiveDate,
    pub goal_time: Option<String>,
    pub distance: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct GoalIn {
    pub race_name: Option<String>,
    pub race_date: Option<NaiveDate>,
    pub goal_time: Option<String>,
    pub distance: Option<f64>,
}

pub async fn create_goal(
    db: impl PgExecutor<'_>,
    athlete_id: &str,
    g: &GoalIn,
) -> sqlx::Result<GoalRow> {
    sqlx::query_as(
        "insert into athlete_goals (id, athlete_id, race_name, race_date, goal_time, distance)
         values ($1, $2, $3, $4, $5, $6) returning *",
    )
    .bind(format!("goal_{}", Uuid::now_v7().simple()))
    .bind(athlete_id)
    .bind(&g.race_name)
    .bind(g.race_date)
    .bind(&g.goal_time)
    .bind(g.distance)
    .fetch_one(db)
    .await
}

/// Partial update; `None` keeps the stored value. `None` result: no such goal of this athlete.
pub async fn update_goal(
    db: impl PgExecutor<'_>,
    athlete_id: &str,
    id: &str,
    g: &GoalIn,
) -> sqlx::Result<Option<GoalRow>> {
    sqlx::query_as(
        "update athlete_goals set race_name = coalesce($3, race_name), race_date = coalesce($4, race_date),
                goal_time = coalesce($5, goal_time), distance = coalesce($6, distance), updated_at = now()
          where athlete_id = $1 and id = $2 returning *",
    )
    .bind(athlete_id)
    .bind(id)
    .bind(&g.race_name)
    .bind(g.race_date)
    .bind(&g.goal_time)
    .bind(g.distance)
    .fetch_optional(db)
    .await
}

pub async fn list_goals(
    db: impl PgExecutor<'_>,
    athlete_ids: &[String],
) -> sqlx::Result<Vec<GoalRow>> {
    sqlx::query_as("select * from athlete_goals where athlete_id = any($1) order by race_date, id")
        .bind(athlete_ids)
        .fetch_all(db)
        .await
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct PlanRow {
    pub id: String,
    pub athlete_id: String,
    pub name: String,
    pub status: String,
    pub start_date: NaiveDate,
    pub total_weeks: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PlanRow {
    /// Week of the plan `today` falls in: 0 before the start, capped at `total_weeks`.
    pub fn current_week(&self, today: NaiveDate) -> i32 {
        let days = (today - self.start_date).num_days();
        if days < 0 {
            return 0;
        }
        i32::try_from(days / 7 + 1)
            .unwrap_or(i32::MAX)
            .min(self.total_weeks)
    }
}

#[derive(Debug, Clone, Default)]
pub struct PlanIn {
    pub name: Option<String>,
    pub status: Option<String>,
    pub start_date: Option<NaiveDate>,
    pub total_weeks: Option<i32>,
    /// `Some`: the plan's sessions are replaced by these (an empty list removes them).
    pub sessions: Option<Vec<SessionIn>>,
}

/// One planned session, on the athlete's local calendar day (the fields of an AI Coach
/// workout, so that a generated plan's `content` can be sent as it is).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct SessionIn {
    #[serde(rename = "date")]
    pub day: NaiveDate,
    #[serde(rename = "target_duration_in_seconds")]
    pub duration_s: i32,
    #[serde(rename = "target_distance_in_meters")]
    pub distance_m: Option<f64>,
    #[serde(rename = "workout_name")]
    pub name: Option<String>,
}

/// Replaces the plan's sessions (in the caller's transaction, with the plan's write).
pub async fn replace_sessions(
    tx: &mut PgConnection,
    plan_id: &str,
    athlete_id: &str,
    sessions: &[SessionIn],
) -> sqlx::Result<()> {
    sqlx::query("delete from planned_sessions where plan_instance_id = $1")
        .bind(plan_id)
        .execute(&mut *tx)
        .await?;
    if sessions.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "insert into planned_sessions (plan_instance_id, seq, athlete_id, day, duration_s, distance_m, name)
         select $1, s.seq, $2, s.day, s.duration_s, s.distance_m, s.name
           from unnest($3::date[], $4::int4[], $5::float8[], $6::text[])
                with ordinality as s(day, duration_s, distance_m, name, seq)",
    )
    .bind(plan_id)
    .bind(athlete_id)
    .bind(sessions.iter().map(|s| s.day).collect::<Vec<_>>())
    .bind(sessions.iter().map(|s| s.duration_s).collect::<Vec<_>>())
    .bind(sessions.iter().map(|s| s.distance_m).collect::<Vec<_>>())
    .bind(sessions.iter().map(|s| s.name.clone()).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The sessions of these plans, by plan, in the order they were sent.
pub async fn sessions_of(
    db: impl PgExecutor<'_>,
    plan_ids: &[String],
) -> sqlx::Result<std::collections::HashMap<String, Vec<SessionIn>>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        plan_instance_id: String,
        #[sqlx(flatten)]
        session: SessionIn,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "select plan_instance_id, day, duration_s, distance_m, name from planned_sessions
          where plan_instance_id = any($1) order by plan_instance_id, seq",
    )
    .bind(plan_ids)
    .fetch_all(db)
    .await?;
    let mut out = std::collections::HashMap::<String, Vec<SessionIn>>::new();
    for r in rows {
        out.entry(r.plan_instance_id).or_default().push(r.session);
    }
    Ok(out)
}

/// The athlete's planned sessions from `since` on, of plans not cancelled, as snapshot input.
pub async fn planned_since(
    db: impl PgExecutor<'_>,
    athlete_id: &str,
    since: NaiveDate,
) -> sqlx::Result<Vec<PlannedSession>> {
    let rows: Vec<(NaiveDate, i32)> = sqlx::query_as(
        "select s.day, s.duration_s from planned_sessions s
           join plan_instances p on p.id = s.plan_instance_id
          where s.athlete_id = $1 and s.day >= $2 and p.status <> 'cancelled'
          order by s.day",
    )
    .bind(athlete_id)
    .bind(since)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(day, secs)| PlannedSession {
            day,
            duration_s: f64::from(secs),
        })
        .collect())
}

pub async fn create_plan(
    db: impl PgExecutor<'_>,
    athlete_id: &str,
    p: &PlanIn,
) -> sqlx::Result<PlanRow> {
    sqlx::query_as(
        "insert into plan_instances (id, athlete_id, name, status, start_date, total_weeks)
         values ($1, $2, $3, coalesce($4, 'scheduled'), $5, $6) returning *",
    )
    .bind(format!("pi_{}", Uuid::now_v7().simple()))
    .bind(athlete_id)
    .bind(&p.name)
    .bind(&p.status)
    .bind(p.start_date)
    .bind(p.total_weeks)
    .fetch_one(db)
    .await
}

pub async fn update_plan(
    db: impl PgExecutor<'_>,
    athlete_id: &str,
    id: &str,
    p: &PlanIn,
) -> sqlx::Result<Option<PlanRow>> {
    sqlx::query_as(
        "update plan_instances set name = coalesce($3, name), status = coalesce($4, status),
                start_date = coalesce($5, start_date), total_weeks = coalesce($6, total_weeks), updated_at = now()
          where athlete_id = $1 and id = $2 returning *",
    )
    .bind(athlete_id)
    .bind(id)
    .bind(&p.name)
    .bind(&p.status)
    .bind(p.start_date)
    .bind(p.total_weeks)
    .fetch_optional(db)
    .await
}

pub async fn list_plans(
    db: impl PgExecutor<'_>,
    athlete_ids: &[String],
) -> sqlx::Result<Vec<PlanRow>> {
    sqlx::query_as(
        "select * from plan_instances where athlete_id = any($1) order by start_date, id",
    )
    .bind(athlete_ids)
    .fetch_all(db)
    .await
}

// ---- read side ----

/// Where day buckets are cut: an IANA zone, or a fixed offset east of UTC in minutes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Zone {
    Iana(String),
    Offset(i32),
}

impl Zone {
    fn binds(&self) -> (Option<String>, i32) {
        match self {
            Self::Iana(n) => (Some(n.clone()), 0),
            Self::Offset(m) => (None, *m),
        }
    }
}

/// One local day of activity totals.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct DayAgg {
    pub day: NaiveDate,
    pub activities: i64,
    pub distance: f64,
    pub moving_time: i64,
    pub training_load: f64,
    pub calories: f64,
    pub z1: i64,
    pub z2: i64,
    pub z3: i64,
    pub z4: i64,
    pub z5: i64,
}

/// Per local day in `zone`, for local dates `from..=to`; `runs_only` keeps Run/TrailRun/VirtualRun.
pub async fn day_aggregates(
    db: impl PgExecutor<'_>,
    athlete_id: &str,
    zone: &Zone,
    from: NaiveDate,
    to: NaiveDate,
    runs_only: bool,
) -> sqlx::Result<Vec<DayAgg>> {
    let (name, offset) = zone.binds();
    // instant window widened by 2 days either side (any zone is within ±14 h) for the index
    let lo = from
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc() - chrono::Duration::days(2));
    let hi = to
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc() + chrono::Duration::days(3));
    sqlx::query_as(
        "select d as day, count(*)::int8 as activities, coalesce(sum(distance), 0)::float8 as distance,
                coalesce(sum(moving_time), 0)::int8 as moving_time,
                coalesce(sum(training_load), 0)::float8 as training_load,
                coalesce(sum(calories), 0)::float8 as calories,
                coalesce(sum(pace_zone_seconds[1]), 0)::int8 as z1, coalesce(sum(pace_zone_seconds[2]), 0)::int8 as z2,
                coalesce(sum(pace_zone_seconds[3]), 0)::int8 as z3, coalesce(sum(pace_zone_seconds[4]), 0)::int8 as z4,
                coalesce(sum(pace_zone_seconds[5]), 0)::int8 as z5
           from (select a.*, (case when $2::text is not null then a.start_date at time zone $2::text
                                   else (a.start_date at time zone 'UTC') + make_interval(mins => $3) end)::date as d
                   from activities a
                  where a.athlete_id = $1 and a.start_date >= $4 and a.start_date < $5
                    and (not $8 or a.sport_type = any($9))) x
          where d between $6 and $7
          group by d order by d",
    )
    .bind(athlete_id)
    .bind(name)
    .bind(offset)
    .bind(lo)
    .bind(hi)
    .bind(from)
    .bind(to)
    .bind(runs_only)
    .bind(RUN_TYPES.map(str::to_owned).to_vec())
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FitnessTotals {
    pub total_activities: i64,
    pub total_distance: f64,
    pub total_duration: i64,
    pub run_distance: f64,
    /// moving time of the runs that have a distance (average pace's numerator)
    pub run_moving_time: i64,
    /// moving-time-weighted mean of average_heartrate (activities with HR)
    pub avg_heart_rate: Option<f64>,
}

/// Totals of activities that started at or after `since`.
pub async fn fitness_totals(
    db: impl PgExecutor<'_>,
    athlete_id: &str,
    since: DateTime<Utc>,
) -> sqlx::Result<FitnessTotals> {
    sqlx::query_as(
        "select count(*)::int8 as total_activities, coalesce(sum(distance), 0)::float8 as total_distance,
                coalesce(sum(moving_time), 0)::int8 as total_duration,
                coalesce(sum(distance) filter (where sport_type = any($3)), 0)::float8 as run_distance,
                coalesce(sum(moving_time) filter (where sport_type = any($3) and distance > 0), 0)::int8
                  as run_moving_time,
                (sum(average_heartrate * moving_time) filter (where average_heartrate is not null and moving_time > 0)
                  / nullif(sum(moving_time) filter (where average_heartrate is not null and moving_time > 0), 0))::float8
                  as avg_heart_rate
           from activities where athlete_id = $1 and start_date >= $2 and start_date <= now()",
    )
    .bind(athlete_id)
    .bind(since)
    .bind(RUN_TYPES.map(str::to_owned).to_vec())
    .fetch_one(db)
    .await
}

/// Health metrics between two dates (inclusive), oldest first.
pub async fn health_between(
    db: impl PgExecutor<'_>,
    athlete_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> sqlx::Result<Vec<HealthIn>> {
    sqlx::query_as(
        "select athlete_id, day, resting_hr, hrv_rmssd, vo2_max, recovery_score
           from health_metrics where athlete_id = $1 and day between $2 and $3 order by day",
    )
    .bind(athlete_id)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

/// Roster filters (coach_athletes_metrics).
#[derive(Debug, Clone, Default)]
pub struct RosterFilter {
    pub org_id: String,
    pub assigned_coach_id: Option<String>,
    pub group_id: Option<String>,
    pub unassigned_only: bool,
    pub search: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// Athletes of an org matching the filter, one page, and the total count.
pub async fn roster(
    db: &PgPool,
    f: &RosterFilter,
) -> sqlx::Result<(Vec<crate::db::users::UserRow>, i64)> {
    let pattern = f.search.as_ref().map(|s| {
        let escaped = s
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let filter = "from users where role = 'athlete' and org_id = $1
                    and ($2::text is null or assigned_coach_id = $2)
                    and ($3::text is null or $3 = any(groups))
                    and (not $4 or cardinality(groups) = 0)
                    and ($5::text is null or username ilike $5 or email ilike $5 or display_name ilike $5)";
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) {filter}")))
        .bind(&f.org_id)
        .bind(&f.assigned_coach_id)
        .bind(&f.group_id)
        .bind(f.unassigned_only)
        .bind(&pattern)
        .fetch_one(db)
        .await?;
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select * {filter} order by lower(coalesce(display_name, username, id)), coalesce(display_name, username, id), id
          limit $6 offset $7"
    )))
    .bind(&f.org_id)
    .bind(&f.assigned_coach_id)
    .bind(&f.group_id)
    .bind(f.unassigned_only)
    .bind(&pattern)
    .bind(f.limit)
    .bind(f.offset)
    .fetch_all(db)
    .await?;
    Ok((rows, total))
}
