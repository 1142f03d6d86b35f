//! The `jobs` table: the source of truth for every job. Redis only carries ids.
//!
//! Statements that address jobs by id test the state with `case state when … end` rather
//! than `state in ('queued', 'running')` (or `finished_at is null`): the latter implies the
//! partial index `jobs_live`'s predicate, and with statistics that lag a burst the planner
//! then ANDs a bitmap of every live job with the primary key lookup, reading the whole
//! backlog per claim (measured: 3–10 ms per batched claim and 50 ms per dispatch of 1,000
//! during a 20,000-job drain).
//!
//! No update but the terminal write (and a cancel) changes a column an index reads, so
//! PostgreSQL writes dispatch marks, claims, lease refreshes and hand-backs as HOT updates
//! (migration `20261124100000_hot_updates.sql`); keep it so when adding an index.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::jobs::{JobKind, JobState, Queue};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: Uuid,
    pub kind: String,
    pub queue: String,
    pub state: String,
    pub owner_id: String,
    pub org_id: Option<String>,
    pub input: Json<Value>,
    pub result: Option<Json<Value>>,
    pub error: Option<String>,
    pub progress: i16,
    pub message: Option<String>,
    pub attempts: i32,
    pub max_attempts: i32,
    /// Attempts handed back at shutdown (counted in `attempts`, not against `max_attempts`).
    pub handed_back: i32,
    pub event_seq: i64,
    pub cancel_requested: bool,
    pub idempotency_key: Option<String>,
    pub usage: Option<Json<Value>>,
    pub task_id: Option<String>,
    pub dispatched_at: Option<DateTime<Utc>>,
    pub worker: Option<String>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl JobRow {
    pub fn job_state(&self) -> Option<JobState> {
        JobState::parse(&self.state)
    }

    pub fn job_kind(&self) -> Option<JobKind> {
        JobKind::parse(&self.kind)
    }

    pub fn is_terminal(&self) -> bool {
        self.job_state().is_some_and(JobState::is_terminal)
    }

    /// The attempts that count against `max_attempts`: all but those handed back at shutdown.
    pub fn spent_attempts(&self) -> i32 {
        self.attempts - self.handed_back
    }
}

/// A job to record. Owned, so submissions from many requests can share one statement.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: Uuid,
    pub kind: JobKind,
    pub owner_id: String,
    pub org_id: Option<String>,
    pub input: Value,
    pub max_attempts: i32,
    pub idempotency_key: Option<String>,
    /// The apalis task id it will be pushed under right after the insert (`None`: leave it to
    /// the dispatcher). Recorded with the row, so a push that never happens is visible to the
    /// reconciler as a dispatched job Redis does not hold.
    pub task_id: Option<String>,
    /// Record the job only if this organization has this feature: the submission's
    /// authorization check, in the same statement (the caller explains a refusal).
    pub requires: Option<OrgFeature>,
}

#[derive(Debug, Clone)]
pub struct OrgFeature {
    pub org_id: String,
    pub feature: &'static str,
}

/// What became of one [`NewJob`].
#[derive(Debug)]
pub enum Inserted {
    /// Recorded now.
    New(JobRow),
    /// Its idempotency key was already used by this owner: the job recorded then.
    Existing(JobRow),
    /// Not recorded: the organization it `requires` does not exist or lacks the feature.
    Refused,
}

/// Records queued jobs in one statement (and one more to find the jobs behind reused
/// idempotency keys, when there are any). Answers each job, in order; a repeat of a batch whose
/// first run committed (its reply lost with its connection) answers as that run would have.
pub async fn insert_jobs(
    db: &mut sqlx::PgConnection,
    jobs: &[NewJob],
) -> sqlx::Result<Vec<Inserted>> {
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.id).collect();
    let kinds: Vec<&str> = jobs.iter().map(|j| j.kind.as_str()).collect();
    let queues: Vec<&str> = jobs.iter().map(|j| j.kind.queue().as_str()).collect();
    let owners: Vec<&str> = jobs.iter().map(|j| j.owner_id.as_str()).collect();
    let orgs: Vec<Option<&str>> = jobs.iter().map(|j| j.org_id.as_deref()).collect();
    let inputs: Vec<Json<&Value>> = jobs.iter().map(|j| Json(&j.input)).collect();
    let attempts: Vec<i32> = jobs.iter().map(|j| j.max_attempts).collect();
    let keys: Vec<Option<&str>> = jobs.iter().map(|j| j.idempotency_key.as_deref()).collect();
    let tasks: Vec<Option<&str>> = jobs.iter().map(|j| j.task_id.as_deref()).collect();
    let feature_orgs: Vec<Option<&str>> = jobs
        .iter()
        .map(|j| j.requires.as_ref().map(|r| r.org_id.as_str()))
        .collect();
    let features: Vec<Option<&str>> = jobs
        .iter()
        .map(|j| j.requires.as_ref().map(|r| r.feature))
        .collect();
    let inserted: sqlx::Result<Vec<JobRow>> = sqlx::query_as(
        "insert into jobs (id, kind, queue, owner_id, org_id, input, max_attempts, idempotency_key, task_id, dispatched_at)
         select t.id, t.kind, t.queue, t.owner_id, t.org_id, t.input, t.max_attempts, t.idempotency_key, t.task_id,
                case when t.task_id is null then null else now() end
           from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::int4[],
                       $8::text[], $9::text[], $10::text[], $11::text[])
                with ordinality as t(id, kind, queue, owner_id, org_id, input, max_attempts, idempotency_key, task_id,
                                     feature_org, feature, ord)
          where t.feature is null
             or exists (select 1 from orgs o where o.id = t.feature_org and t.feature = any(o.features))
          order by t.ord
         on conflict (owner_id, idempotency_key) where idempotency_key is not null do nothing
         returning *",
    )
    .bind(&ids)
    .bind(&kinds)
    .bind(&queues)
    .bind(&owners)
    .bind(&orgs)
    .bind(&inputs)
    .bind(&attempts)
    .bind(&keys)
    .bind(&tasks)
    .bind(&feature_orgs)
    .bind(&features)
    .fetch_all(&mut *db)
    .await;
    let inserted = match inserted {
        // A repeat of this statement whose first run committed but lost its reply (see
        // `KeyedConns::run`): the statement is atomic, so that run recorded this batch's rows.
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("jobs_pkey") => {
            let rows: Vec<JobRow> = sqlx::query_as("select * from jobs where id = any($1)")
                .bind(&ids)
                .fetch_all(&mut *db)
                .await?;
            let ours = |r: &JobRow| {
                jobs.iter()
                    .any(|j| j.id == r.id && j.owner_id == r.owner_id)
            };
            if !rows.iter().all(ours) {
                return Err(sqlx::Error::Database(e));
            }
            rows
        }
        other => other?,
    };
    let mut new: std::collections::HashMap<Uuid, JobRow> =
        inserted.into_iter().map(|r| (r.id, r)).collect();
    // a job not recorded and carrying a key may be a reuse of that key (maybe by another job
    // of this very batch)
    let (key_owners, key_values): (Vec<&str>, Vec<&str>) = jobs
        .iter()
        .filter(|j| !new.contains_key(&j.id))
        .filter_map(|j| Some((j.owner_id.as_str(), j.idempotency_key.as_deref()?)))
        .unzip();
    let existing: Vec<JobRow> = if key_owners.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(
            "select j.* from jobs j join unnest($1::text[], $2::text[]) as t(owner_id, idempotency_key)
                 on j.owner_id = t.owner_id and j.idempotency_key = t.idempotency_key",
        )
        .bind(&key_owners)
        .bind(&key_values)
        .fetch_all(&mut *db)
        .await?
    };
    Ok(jobs
        .iter()
        .map(|j| {
            if let Some(row) = new.remove(&j.id) {
                return Inserted::New(row);
            }
            existing
                .iter()
                .find(|r| {
                    j.idempotency_key.is_some()
                        && r.owner_id == j.owner_id
                        && r.idempotency_key == j.idempotency_key
                })
                .cloned()
                .map_or(Inserted::Refused, Inserted::Existing)
        })
        .collect())
}

pub async fn get_job(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as("select * from jobs where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Many jobs by id in one statement; answers each id in order (`None`: no such job).
pub async fn get_jobs(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<Vec<Option<JobRow>>> {
    let rows: Vec<JobRow> = sqlx::query_as("select * from jobs where id = any($1)")
        .bind(ids)
        .fetch_all(db)
        .await?;
    let by_id: std::collections::HashMap<Uuid, JobRow> =
        rows.into_iter().map(|r| (r.id, r)).collect();
    Ok(ids.iter().map(|id| by_id.get(id).cloned()).collect())
}

pub struct JobFilter<'a> {
    /// `None` = every owner (admins).
    pub owner_id: Option<&'a str>,
    pub state: Option<JobState>,
    pub kind: Option<JobKind>,
    pub limit: i64,
    pub offset: i64,
}

/// Newest first, with the total count for pagination.
pub async fn list_jobs(db: &PgPool, f: &JobFilter<'_>) -> sqlx::Result<(Vec<JobRow>, i64)> {
    let rows: Vec<JobRow> = sqlx::query_as(
        "select * from jobs
          where ($1::text is null or owner_id = $1) and ($2::text is null or state = $2) and ($3::text is null or kind = $3)
          order by created_at desc, id desc limit $4 offset $5",
    )
    .bind(f.owner_id)
    .bind(f.state.map(JobState::as_str))
    .bind(f.kind.map(JobKind::as_str))
    .bind(f.limit)
    .bind(f.offset)
    .fetch_all(db)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "select count(*) from jobs
          where ($1::text is null or owner_id = $1) and ($2::text is null or state = $2) and ($3::text is null or kind = $3)",
    )
    .bind(f.owner_id)
    .bind(f.state.map(JobState::as_str))
    .bind(f.kind.map(JobKind::as_str))
    .fetch_one(db)
    .await?;
    Ok((rows, total))
}

/// Records that these jobs were pushed to Redis with these apalis task ids.
pub async fn mark_dispatched(
    db: impl PgExecutor<'_>,
    job_ids: &[Uuid],
    task_ids: &[String],
) -> sqlx::Result<()> {
    sqlx::query(
        "update jobs j set task_id = t.task_id, dispatched_at = now()
           from unnest($1::uuid[], $2::text[]) as t(id, task_id)
          where j.id = t.id and case j.state when 'queued' then true when 'running' then true else false end",
    )
    .bind(job_ids)
    .bind(task_ids)
    .execute(db)
    .await?;
    Ok(())
}

/// Locks up to `limit` accepted jobs of a queue that are not in Redis yet, oldest first.
/// Call inside a transaction; other dispatchers skip the locked rows.
pub async fn lock_undispatched(
    db: impl PgExecutor<'_>,
    queue: Queue,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "select id from jobs
          where queue = $1 and finished_at is null and dispatched_at is null and state = 'queued'
          order by created_at limit $2 for update skip locked",
    )
    .bind(queue.as_str())
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn has_undispatched(db: impl PgExecutor<'_>, queue: Queue) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from jobs
                         where queue = $1 and finished_at is null and dispatched_at is null and state = 'queued')",
    )
        .bind(queue.as_str())
        .fetch_one(db)
        .await
}

/// Live jobs that were pushed to Redis but have shown no sign of life for `stale_secs`:
/// candidates for the reconciler (it re-dispatches those Redis no longer holds). With
/// `running_only`, every running job that silent, pushed or not (a handed-back job claimed
/// through its old delivery has no task of its own); its task id is then `""` if it has none.
pub async fn stale_dispatched(
    db: impl PgExecutor<'_>,
    queue: Queue,
    stale_secs: f64,
    running_only: bool,
    limit: i64,
) -> sqlx::Result<Vec<(Uuid, String)>> {
    sqlx::query_as(
        "select id, coalesce(task_id, '') from jobs
          where queue = $1 and finished_at is null
            and coalesce(heartbeat_at, dispatched_at) < now() - make_interval(secs => $2)
            and case when $4 then state = 'running'
                     else task_id is not null and dispatched_at < now() - make_interval(secs => $2)
                end
          order by created_at limit $3",
    )
    .bind(queue.as_str())
    .bind(stale_secs)
    .bind(limit)
    .bind(running_only)
    .fetch_all(db)
    .await
}

/// Hands jobs back to the dispatcher (their Redis copy is gone). A running one goes back to
/// `queued`; its attempt stays counted.
pub async fn undispatch(db: impl PgExecutor<'_>, job_ids: &[Uuid]) -> sqlx::Result<u64> {
    let r = sqlx::query(
        "update jobs set task_id = null, dispatched_at = null, state = 'queued', worker = null, updated_at = now()
          where id = any($1) and case state when 'queued' then true when 'running' then true else false end",
    )
    .bind(job_ids)
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}

/// Gives `worker`'s running jobs back to the queue when it stops past its grace period. The
/// attempt stays counted but not spent (see [`JobRow::spent_attempts`]). A job whose lease
/// another worker has taken over meanwhile is left to it.
pub async fn hand_back(
    db: impl PgExecutor<'_>,
    job_ids: &[Uuid],
    worker: &str,
) -> sqlx::Result<u64> {
    let r = sqlx::query(
        "update jobs set task_id = null, dispatched_at = null, state = 'queued', worker = null,
                handed_back = handed_back + 1, updated_at = now()
          where id = any($1) and state = 'running' and worker = $2",
    )
    .bind(job_ids)
    .bind(worker)
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}

/// What a worker may do with a job it fetched.
#[derive(Debug)]
pub enum Claim {
    /// Run it (the row, with `attempts` already incremented).
    Run(Box<JobRow>),
    /// It was cancelled before it could run (or while its previous worker was dead).
    Cancel(Box<JobRow>),
    /// Finished, unknown, or running on a live worker: drop this copy.
    Skip(&'static str),
}

/// Takes jobs for `worker`: queued ones, or running ones whose heartbeat is older than
/// `lease_secs` (their worker died). Counts the attempt. Returns the rows it took; for an id it
/// did not take, [`unclaimed`] says why. One statement for a whole batch of deliveries.
///
/// `token` names this claim (a fresh value per batch, the same for its repeats): a repeat whose
/// first run committed but lost its reply (see `KeyedConns::run`) takes back the rows that run
/// took, without counting their attempt again, and no other claim can, so a job another batch
/// of the same worker also carried still runs once.
pub async fn claim_many(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
    worker: &str,
    lease_secs: f64,
    token: Uuid,
) -> sqlx::Result<Vec<JobRow>> {
    sqlx::query_as(
        "update jobs set state = 'running', worker = $2, heartbeat_at = now(),
                attempts = case when claim_token = $4 then attempts else attempts + 1 end,
                claim_token = $4, started_at = coalesce(started_at, now()), updated_at = now(),
                debounce_key = null
          where id = any($1) and not cancel_requested
            and case state when 'queued' then true
                           when 'running' then claim_token = $4
                                               or heartbeat_at < now() - make_interval(secs => $3)
                           else false end
          returning *",
    )
    .bind(ids)
    .bind(worker)
    .bind(lease_secs)
    .bind(token)
    .fetch_all(db)
    .await
}

/// Why a delivered job could not be claimed.
pub async fn unclaimed(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Claim> {
    let Some(row) = get_job(db, id).await? else {
        return Ok(Claim::Skip("unknown job"));
    };
    if row.is_terminal() {
        return Ok(Claim::Skip("already finished"));
    }
    if row.cancel_requested {
        return Ok(Claim::Cancel(Box::new(row)));
    }
    Ok(Claim::Skip("running on another worker"))
}

/// What a running attempt has told its clients so far, saved on the row with its lease so
/// polls see progress and event numbers stay above what was already sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reported {
    /// The number of the last event appended.
    pub last_seq: u64,
    /// The last `progress` event's percentage and message.
    pub progress: Option<(i16, String)>,
}

impl Reported {
    fn seq(&self) -> i64 {
        i64::try_from(self.last_seq).unwrap_or(i64::MAX)
    }

    fn pct(&self) -> Option<i16> {
        self.progress.as_ref().map(|p| p.0)
    }

    fn message(&self) -> Option<&str> {
        self.progress.as_ref().map(|p| p.1.as_str())
    }
}

/// Refreshes a running job's lease and saves what it reported, and the LLM tokens spent so
/// far (`usage`, this attempt's included: a worker killed mid-attempt does not lose them).
/// `None` when the job is no longer this worker's; otherwise whether its cancellation was
/// requested.
pub async fn heartbeat(
    db: impl PgExecutor<'_>,
    id: Uuid,
    worker: &str,
    reported: &Reported,
    usage: Option<&Value>,
) -> sqlx::Result<Option<bool>> {
    sqlx::query_scalar(
        "update jobs set heartbeat_at = now(), event_seq = greatest(event_seq, $3),
                progress = coalesce($4, progress), message = coalesce($5, message),
                usage = coalesce($6, usage)
          where id = $1 and worker = $2 and state = 'running'
          returning cancel_requested",
    )
    .bind(id)
    .bind(worker)
    .bind(reported.seq())
    .bind(reported.pct())
    .bind(reported.message())
    .bind(usage.map(Json))
    .fetch_optional(db)
    .await
}

/// After a transient failure: back to `queued` until the retry runs (in this worker, after
/// the backoff, or elsewhere if this worker dies meanwhile). `usage`: the LLM tokens spent so
/// far, this attempt's included (the next attempt goes on from them). Returns the number
/// reserved for the `retrying` event, or `None` when the job is no longer this worker's: a
/// cancel of the now queued job reserves its final events above it, so the two cannot take
/// the same number (the `retrying` event, appended after this commit, took the cancel's
/// `error` slot and the stream ended without it).
pub async fn requeue_for_retry(
    db: impl PgExecutor<'_>,
    id: Uuid,
    worker: &str,
    message: &str,
    reported: &Reported,
    usage: Option<&Value>,
) -> sqlx::Result<Option<u64>> {
    let seq: Option<i64> = sqlx::query_scalar(
        "update jobs set state = 'queued', worker = null, message = $3, updated_at = now(),
                event_seq = greatest(event_seq, $4) + 1, progress = coalesce($5, progress),
                usage = coalesce($6, usage)
          where id = $1 and worker = $2 and state = 'running'
          returning event_seq",
    )
    .bind(id)
    .bind(worker)
    .bind(message)
    .bind(reported.seq())
    .bind(reported.pct())
    .bind(usage.map(Json))
    .fetch_optional(db)
    .await?;
    Ok(seq.and_then(|n| u64::try_from(n).ok()))
}

/// One job's terminal write (see [`finish_many`]).
#[derive(Debug, Clone)]
pub struct Finish {
    pub id: Uuid,
    pub state: JobState,
    /// Shared, so that the batch and a repeat of the write do not copy it.
    pub result: Option<std::sync::Arc<Value>>,
    pub error: Option<String>,
    pub usage: Option<Value>,
    pub reported: Reported,
    /// The attempt the writing worker claimed, if it claimed the job (not when it ends a job it
    /// found cancelled): how a repeated write recognises its own first run.
    pub claimed: Option<i32>,
}

/// A job a terminal write ended: the number reserved for its `done` event (the final
/// `result`/`error` gets the number before it) and the state it was given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ended {
    pub id: Uuid,
    pub done_seq: u64,
    /// As written, except that a job whose cancel was requested before it ended is
    /// `cancelled`: the cancel was accepted (202, "it stops at its next step") and wins over an
    /// outcome that arrived after it.
    pub state: JobState,
}

/// Terminal writes by `worker`, one statement for a batch (ids must be distinct). The first
/// write of a job wins, and a write for an attempt the worker claimed only while it still holds
/// that attempt (a worker that stalled past its lease does not end the job its successor runs): for each job it ended, returns its [`Ended`] (the final events'
/// numbers are above every number `reported` so far); a job that had already ended is not in
/// the answer. Reserving both
/// numbers here keeps the row and its final events consistent for readers that see the row
/// before the events.
///
/// A repeat of a batch whose first run committed but lost its reply (see `KeyedConns::run`)
/// answers as that run would have for the jobs the worker claimed: no one else ends a job with
/// this worker's name and attempt on it in the state this write gives it.
pub async fn finish_many(
    db: &mut sqlx::PgConnection,
    worker: &str,
    writes: &[Finish],
) -> sqlx::Result<Vec<Ended>> {
    debug_assert!(writes.iter().all(|w| w.state.is_terminal()));
    let ids: Vec<Uuid> = writes.iter().map(|w| w.id).collect();
    let states: Vec<&str> = writes.iter().map(|w| w.state.as_str()).collect();
    let results: Vec<Option<Json<&Value>>> = writes
        .iter()
        .map(|w| w.result.as_deref().map(Json))
        .collect();
    let errors: Vec<Option<&str>> = writes.iter().map(|w| w.error.as_deref()).collect();
    let usages: Vec<Option<Json<&Value>>> =
        writes.iter().map(|w| w.usage.as_ref().map(Json)).collect();
    let seqs: Vec<i64> = writes.iter().map(|w| w.reported.seq()).collect();
    let pcts: Vec<Option<i16>> = writes.iter().map(|w| w.reported.pct()).collect();
    let claimed: Vec<Option<i32>> = writes.iter().map(|w| w.claimed).collect();
    let mut rows: Vec<(Uuid, i64, String)> = sqlx::query_as(
        "update jobs j set state = case when j.cancel_requested then 'cancelled' else t.state end,
                result = case when j.cancel_requested then null else t.result end,
                error = case when j.cancel_requested then 'cancelled' else t.error end,
                usage = coalesce(t.usage, j.usage),
                progress = case when t.state = 'succeeded' and not j.cancel_requested then 100
                                else coalesce(t.pct, j.progress) end,
                message = case when j.cancel_requested then 'cancelled' else t.state end,
                finished_at = now(), updated_at = now(), debounce_key = null,
                event_seq = greatest(j.event_seq, t.seq) + 2
           from unnest($1::uuid[], $2::text[], $3::jsonb[], $4::text[], $5::jsonb[], $6::int8[], $7::int2[],
                       $8::int4[])
                as t(id, state, result, error, usage, seq, pct, claimed)
          where j.id = t.id and case j.state when 'queued' then true when 'running' then true else false end
            and (t.claimed is null or (j.worker = $9 and j.attempts = t.claimed))
          returning j.id, j.event_seq, j.state",
    )
    .bind(&ids)
    .bind(&states)
    .bind(&results)
    .bind(&errors)
    .bind(&usages)
    .bind(&seqs)
    .bind(&pcts)
    .bind(&claimed)
    .bind(worker)
    .fetch_all(&mut *db)
    .await?;
    let ended: std::collections::HashSet<Uuid> = rows.iter().map(|(id, ..)| *id).collect();
    let (mine, (attempts, mine_states)): (Vec<Uuid>, (Vec<i32>, Vec<&str>)) = writes
        .iter()
        .filter(|w| !ended.contains(&w.id))
        .filter_map(|w| Some((w.id, (w.claimed?, w.state.as_str()))))
        .unzip();
    if !mine.is_empty() {
        let already: Vec<(Uuid, i64, String)> = sqlx::query_as(
            "select j.id, j.event_seq, j.state from jobs j
               join unnest($1::uuid[], $2::int4[], $3::text[]) as t(id, attempts, state) on j.id = t.id
              where j.worker = $4 and j.attempts = t.attempts
                and j.state = case when j.cancel_requested then 'cancelled' else t.state end",
        )
        .bind(&mine)
        .bind(&attempts)
        .bind(&mine_states)
        .bind(worker)
        .fetch_all(&mut *db)
        .await?;
        rows.extend(already);
    }
    Ok(rows
        .into_iter()
        .filter_map(|(id, n, state)| {
            Some(Ended {
                id,
                done_seq: u64::try_from(n).ok()?,
                state: JobState::parse(&state)?,
            })
        })
        .collect())
}

#[derive(Debug)]
pub enum CancelOutcome {
    /// It was queued: now cancelled, it will never run. Carries the number reserved for its
    /// `done` event (see [`finish`]).
    Cancelled(u64),
    /// It is running: its worker stops it at its next step.
    Requested,
    /// Already finished.
    AlreadyFinal,
}

/// Cancels a job; a queued one's final numbers are reserved above `last_logged` (its log's
/// last event: an earlier attempt may have numbered events the row has not seen).
pub async fn cancel(db: &PgPool, id: Uuid, last_logged: u64) -> sqlx::Result<CancelOutcome> {
    // one statement: a job moving between queued and running meanwhile (a retry, a hand-back)
    // is still caught in one state or the other
    let outcome: Option<(String, i64)> = sqlx::query_as(
        "update jobs set cancel_requested = true, updated_at = now(),
                state = case state when 'queued' then 'cancelled' else state end,
                error = case state when 'queued' then 'cancelled' else error end,
                message = case state when 'queued' then 'cancelled' else message end,
                finished_at = case state when 'queued' then now() else finished_at end,
                event_seq = case state when 'queued' then greatest(event_seq, $2) + 2 else event_seq end,
                debounce_key = case state when 'queued' then null else debounce_key end
          where id = $1 and state in ('queued', 'running')
          returning state, event_seq",
    )
    .bind(id)
    .bind(i64::try_from(last_logged).unwrap_or(i64::MAX))
    .fetch_optional(db)
    .await?;
    Ok(match outcome {
        Some((state, seq)) if state == "cancelled" => {
            CancelOutcome::Cancelled(u64::try_from(seq).unwrap_or(0))
        }
        Some(_) => CancelOutcome::Requested,
        None => CancelOutcome::AlreadyFinal,
    })
}

/// Deletes up to `limit` of the queue's finished jobs that were created and finished more than
/// `older_than_secs` ago, oldest first (the `jobs_created` index finds them); returns how many.
/// A live batch keeps its children (it counts them). Workers run this side by side: rows
/// another pass holds are skipped.
pub async fn delete_finished(
    db: impl PgExecutor<'_>,
    queue: Queue,
    older_than_secs: u64,
    limit: i64,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "delete from jobs where id in (
            select id from jobs
             where created_at < now() - make_interval(secs => $2)
               and queue = $1 and state in ('succeeded', 'failed', 'cancelled')
               and finished_at < now() - make_interval(secs => $2)
               and not exists (select 1 from jobs p
                                where p.id = jobs.parent_id and p.state in ('queued', 'running'))
             order by created_at
             limit $3
             for update skip locked)",
    )
    .bind(queue.as_str())
    .bind(older_than_secs as f64)
    .bind(limit)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Jobs by kind and state, for `/metrics`.
pub async fn counts(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<(String, String, i64)>> {
    sqlx::query_as("select kind, state, count(*) from jobs group by kind, state")
        .fetch_all(db)
        .await
}
