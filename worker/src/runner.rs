//! One attempt of one job: claim it in PostgreSQL, keep its lease alive, run it with the
//! kind's timeout and cancellation, then finish it (first terminal write wins) or hand it
//! back for a retry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use pacer_common::db::jobs::{self, Claim, Ended, Finish, JobRow, Reported};
use pacer_common::events;
use pacer_common::jobs::{JobKind, JobState};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::context::WorkerCtx;

/// How a job attempt can fail.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt (timeouts, 429/5xx, connection errors).
    #[error("{0}")]
    Retryable(anyhow::Error),
    /// Will fail again (invalid input, unrepairable model output).
    #[error("{0}")]
    Permanent(anyhow::Error),
    #[error("cancelled")]
    Cancelled,
    /// Another worker holds the job's lease (a duplicate delivery, or an owner that just died).
    #[error("the job is running on another worker")]
    Busy,
    /// The lease was lost (another worker took the job over): drop this attempt silently.
    #[error("lease lost")]
    LeaseLost,
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        Self::Retryable(e.into())
    }
}

impl From<pacer_common::batch::BatchError> for JobError {
    fn from(e: pacer_common::batch::BatchError) -> Self {
        Self::Retryable(e.into())
    }
}

impl From<pacer_common::Error> for JobError {
    fn from(e: pacer_common::Error) -> Self {
        Self::Retryable(e.into())
    }
}

/// What a running job sees: its row and a way to report progress.
pub struct JobCtx {
    pub worker: Arc<WorkerCtx>,
    pub job: JobRow,
    cancel: CancellationToken,
    /// LLM token usage to record on the job.
    pub usage: std::sync::Mutex<Option<Value>>,
    /// Saved to the row by the lease refresh and the terminal write, not per event.
    reported: std::sync::Mutex<Reported>,
    /// When this attempt's appends last renewed the event log's TTL.
    log_ttl: events::TtlRenewal,
}

impl JobCtx {
    /// Appends an event; stops the job here when a cancellation was requested.
    pub async fn emit(&self, event: &Value, progress: Option<(u8, &str)>) -> Result<(), JobError> {
        self.emit_all(std::slice::from_ref(event), progress).await
    }

    /// Appends several events at once: the log holds all of them or none (a model plan's week,
    /// so that a retry after a kill never finds half a week streamed). `progress`: the last
    /// one's, saved for polls.
    pub async fn emit_all(
        &self,
        events: &[Value],
        progress: Option<(u8, &str)>,
    ) -> Result<(), JobError> {
        self.check_cancelled()?;
        let floor = self.reported().last_seq;
        let renew_ttl = self.log_ttl.due(self.worker.events.ttl_secs);
        let appended = self
            .append_waiting_for_redis(floor, renew_ttl, events)
            .await?;
        if renew_ttl {
            self.log_ttl.renewed();
        }
        if let Ok(mut r) = self.reported.lock() {
            // concurrent emits (an LLM plan's weeks) may return out of order
            r.last_seq = r.last_seq.max(appended.seq);
            if let Some((pct, message)) = progress {
                r.progress = Some((i16::from(pct.min(100)), message.to_owned()));
            }
        }
        if appended.superseded {
            return Err(JobError::LeaseLost);
        }
        if appended.cancel_requested {
            self.cancel.cancel();
            return Err(JobError::Cancelled);
        }
        Ok(())
    }

    /// This run's attempt, as its appends are fenced by (see [`events::EventSink::fence`]).
    fn attempt(&self) -> u32 {
        u32::try_from(self.job.attempts).unwrap_or(0)
    }

    /// Appends `events`, waiting while Redis is out of reach (the job pauses, keeping its lease
    /// in PostgreSQL) instead of failing the attempt: an outage longer than the connection's
    /// own retries (~10 s) would otherwise use up a job's attempts and fail it for good. The
    /// tries after a failure do not log an event twice if the failed call ran after all.
    async fn append_waiting_for_redis(
        &self,
        floor: u64,
        renew_ttl: bool,
        events: &[Value],
    ) -> Result<events::Appended, JobError> {
        let mut pause = Duration::from_millis(100);
        let mut again = false;
        loop {
            let sink = &self.worker.events;
            let appended = if again {
                sink.append_all_again(self.job.id, self.attempt(), floor, renew_ttl, events)
                    .await
            } else {
                sink.append_all(self.job.id, self.attempt(), floor, renew_ttl, events)
                    .await
            };
            match appended {
                Err(pacer_common::Error::Redis(e))
                    if pacer_common::error::redis_unavailable(&e) =>
                {
                    tracing::warn!(job.id = %self.job.id, error = %e, "event not appended: Redis out of reach; the job waits");
                    metrics::counter!("pacer_event_append_waits_total").increment(1);
                    tokio::select! {
                        _ = self.cancel.cancelled() => return Err(JobError::Cancelled),
                        _ = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(self.worker.config.common.heartbeat());
                    again = true;
                }
                appended => return Ok(appended?),
            }
        }
    }

    pub async fn progress(&self, status: &str, message: &str, pct: u8) -> Result<(), JobError> {
        self.emit(
            &events::progress(status, message, pct),
            Some((pct, message)),
        )
        .await
    }

    fn reported(&self) -> Reported {
        self.reported
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn check_cancelled(&self) -> Result<(), JobError> {
        if self.cancel.is_cancelled() {
            Err(JobError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Sleeps unless cancelled first (the rules planner's optional pacing).
    pub async fn pause(&self, d: Duration) -> Result<(), JobError> {
        if d.is_zero() {
            return self.check_cancelled();
        }
        tokio::select! {
            _ = self.cancel.cancelled() => Err(JobError::Cancelled),
            _ = tokio::time::sleep(d) => Ok(()),
        }
    }

    pub fn input<T: serde::de::DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_value(self.job.input.0.clone())
            .map_err(|e| JobError::Permanent(anyhow!("invalid job input: {e}")))
    }
}

/// Runs one delivery of a job. `Err` asks apalis to deliver it again later (after backoff).
/// [`run`] behind a box, for a job body that runs another job (a batch running its children):
/// the future type would otherwise contain itself.
pub fn run_boxed(
    worker: Arc<WorkerCtx>,
    job_id: Uuid,
) -> std::pin::Pin<Box<dyn Future<Output = Result<(), JobError>> + Send>> {
    Box::pin(run(worker, job_id))
}

pub async fn run(worker: Arc<WorkerCtx>, job_id: Uuid) -> Result<(), JobError> {
    let claimed = match worker.claims.call(job_id).await? {
        Some(row) => Claim::Run(Box::new(row)),
        None => jobs::unclaimed(&worker.db, job_id).await?,
    };
    let row = match claimed {
        Claim::Run(row) => *row,
        Claim::Cancel(row) => {
            let reported = logged_so_far(&worker, &row).await;
            finish(
                &worker,
                &row,
                false,
                Err(JobError::Cancelled),
                None,
                &reported,
            )
            .await?;
            return Ok(());
        }
        Claim::Skip("running on another worker") => {
            // maybe its worker just died and the lease has not expired yet: look again later
            return Err(JobError::Busy);
        }
        Claim::Skip(why) => {
            tracing::debug!(job.id = %job_id, why, "skipping delivery");
            return Ok(());
        }
    };
    // a job whose worker died while running it (killed, out of memory) comes back with one
    // attempt more; past its limit it fails rather than taking down worker after worker. An
    // attempt handed back at shutdown is not spent.
    if row.spent_attempts() > row.max_attempts {
        let reported = logged_so_far(&worker, &row).await;
        let spent = JobError::Permanent(anyhow!(
            "gave up after {} attempts: its worker stopped while running it",
            row.max_attempts
        ));
        finish(&worker, &row, true, Err(spent), None, &reported).await?;
        return Ok(());
    }
    let Some(kind) = row.job_kind() else {
        let reported = logged_so_far(&worker, &row).await;
        let unknown = JobError::Permanent(anyhow!("unknown job kind {}", row.kind));
        finish(&worker, &row, true, Err(unknown), None, &reported).await?;
        return Ok(());
    };
    let started = Instant::now();
    // listed until its outcome is recorded: a run dropped at shutdown with its terminal write
    // or retry still to commit is handed back too
    let running = Running::enter(&worker, job_id);
    if row.attempts > 1 {
        // before this attempt reads the log to go on from it: an earlier attempt's worker that
        // stalled past its lease must add nothing more
        let fenced = worker
            .events
            .fence(job_id, u32::try_from(row.attempts).unwrap_or(u32::MAX))
            .await;
        if let Err(e) = fenced {
            tracing::warn!(job.id = %job_id, error = %e, "could not fence the job's earlier attempts out of its log");
        }
    }
    let outcome = attempt(&worker, kind, row.clone()).await;
    metrics::histogram!("pacer_job_duration_seconds", "kind" => kind.as_str())
        .record(started.elapsed().as_secs_f64());
    let recorded = record(&worker, kind, &row, outcome).await;
    running.ended();
    recorded
}

/// Records an attempt's outcome: a retry goes back to the queue, any other end is final.
async fn record(
    worker: &Arc<WorkerCtx>,
    kind: JobKind,
    row: &JobRow,
    (result, usage, reported): (Result<Value, JobError>, Option<Value>, Reported),
) -> Result<(), JobError> {
    let job_id = row.id;
    match result {
        Err(JobError::LeaseLost) => {
            tracing::warn!(job.id = %job_id, "lease lost; another worker owns the job now");
            Ok(())
        }
        Err(JobError::Retryable(e)) if row.spent_attempts() < row.max_attempts => {
            let message = format!(
                "attempt {} of {} failed: {e}; retrying",
                row.spent_attempts(),
                row.max_attempts
            );
            tracing::warn!(job.id = %job_id, job.kind = kind.as_str(), error = %e, "retrying");
            metrics::counter!("pacer_job_retries_total", "kind" => kind.as_str()).increment(1);
            if let Some(n) = jobs::requeue_for_retry(
                &worker.db,
                job_id,
                &worker.name,
                &message,
                &reported,
                usage.as_ref(),
            )
            .await?
            {
                let pct = reported.progress.as_ref().map_or(row.progress, |p| p.0);
                let pct = u8::try_from(pct.clamp(0, 100)).unwrap_or(0);
                let mut retrying = events::progress("retrying", &message, pct);
                if kind == JobKind::GeneratePlan {
                    // a plan's progress events all carry count and total (seed 000)
                    let (count, total) = last_counts(worker, job_id, reported.last_seq).await;
                    retrying["count"] = count.into();
                    retrying["total"] = total.into();
                }
                let _ = worker.events.append_at(job_id, n, &retrying).await;
            }
            Err(JobError::Retryable(e))
        }
        other => {
            finish(worker, row, true, other, usage.as_ref(), &reported).await?;
            Ok(())
        }
    }
}

/// The `count` and `total` of the job's last `progress` event that has them, which its
/// `retrying` event repeats (as it repeats the percentage); `(0, 0)` when there is none yet.
async fn last_counts(worker: &WorkerCtx, job_id: Uuid, last_seq: u64) -> (u64, u64) {
    // a plan's last progress event is at most a workout and a weekly_info from the end
    let sink = &worker.events;
    let mut conn = sink.redis.clone();
    let tail = events::read_log(&mut conn, &sink.keys, job_id, last_seq.saturating_sub(4)).await;
    let tail = tail.unwrap_or_else(|e| {
        tracing::warn!(job.id = %job_id, error = %e, "cannot read the event log");
        Vec::new()
    });
    tail.iter()
        .rev()
        .filter_map(|ev| serde_json::from_str::<Value>(&ev.data).ok())
        .filter(|ev| events::event_type(ev) == events::PROGRESS)
        .find_map(|ev| Some((ev["count"].as_u64()?, ev["total"].as_u64()?)))
        .unwrap_or((0, 0))
}

/// For a job this worker does not run: the numbers its log already used.
async fn logged_so_far(worker: &WorkerCtx, row: &JobRow) -> Reported {
    let logged = match worker.events.last_logged(row.id).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(job.id = %row.id, error = %e, "cannot read the event log");
            0
        }
    };
    Reported {
        last_seq: logged.max(u64::try_from(row.event_seq).unwrap_or(0)),
        progress: None,
    }
}

/// Runs the job body in its own task (a panic fails the job instead of the worker), under the
/// kind's timeout, while a heartbeat keeps the lease and watches for cancellation.
async fn attempt(
    worker: &Arc<WorkerCtx>,
    kind: JobKind,
    row: JobRow,
) -> (Result<Value, JobError>, Option<Value>, Reported) {
    let cancel = CancellationToken::new();
    let lost = CancellationToken::new();
    // a later attempt numbers its events after everything earlier ones logged: the row may
    // lag the log (an append cut off by a timeout, the retry notice), and a final event given
    // a number already used would be dropped (the first attempt's log is the row's)
    let reported = if row.attempts > 1 {
        logged_so_far(worker, &row).await
    } else {
        Reported {
            last_seq: u64::try_from(row.event_seq).unwrap_or(0),
            progress: None,
        }
    };
    let ctx = Arc::new(JobCtx {
        worker: worker.clone(),
        job: row,
        cancel: cancel.clone(),
        usage: Default::default(),
        reported: std::sync::Mutex::new(reported),
        log_ttl: Default::default(),
    });
    let heartbeat = tokio::spawn(keep_lease(ctx.clone(), lost.clone()));
    let body = {
        let ctx = ctx.clone();
        tokio::spawn(async move { crate::jobs::run(kind, &ctx).await })
    };
    // however this attempt ends (cancelled, lease lost, timed out), its body and lease refresh
    // end with it
    let _tasks = AbortOnDrop([body.abort_handle(), heartbeat.abort_handle()]);
    let limit = worker.config.timeout(kind);
    let result = tokio::select! {
        joined = tokio::time::timeout(limit, body) => match joined {
            Ok(Ok(r)) => r,
            Ok(Err(e)) if e.is_panic() => Err(JobError::Permanent(anyhow!("the job panicked"))),
            Ok(Err(e)) => Err(JobError::Retryable(anyhow!("the job task failed: {e}"))),
            Err(_) => Err(JobError::Retryable(anyhow!("timed out after {} s", limit.as_secs()))),
        },
        _ = cancel.cancelled() => Err(JobError::Cancelled),
        _ = lost.cancelled() => Err(JobError::LeaseLost),
    };
    let usage = ctx.usage.lock().ok().and_then(|u| u.clone());
    (result, usage, ctx.reported())
}

/// Lists the job among this process's running jobs until its attempt ends. A run dropped
/// before it ended (its handler dropped when the grace period ran out) stays listed: the
/// hand-back at exit gives it back to the queue.
struct Running<'a> {
    worker: &'a WorkerCtx,
    job_id: Uuid,
    ended: bool,
}

impl<'a> Running<'a> {
    fn enter(worker: &'a WorkerCtx, job_id: Uuid) -> Self {
        if let Ok(mut r) = worker.running.lock() {
            r.insert(job_id);
        }
        Self {
            worker,
            job_id,
            ended: false,
        }
    }

    fn ended(mut self) {
        self.ended = true;
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if !self.ended {
            return;
        }
        if let Ok(mut r) = self.worker.running.lock() {
            r.remove(&self.job_id);
        }
    }
}

/// Aborts its tasks when dropped, however the owning future ends.
struct AbortOnDrop<const N: usize>([tokio::task::AbortHandle; N]);

impl<const N: usize> Drop for AbortOnDrop<N> {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// Refreshes the job's lease and saves its progress; cancels the attempt when a cancellation
/// was requested or the job is no longer ours.
async fn keep_lease(ctx: Arc<JobCtx>, lost: CancellationToken) {
    let (worker, job_id) = (&ctx.worker, ctx.job.id);
    let every = worker.config.common.heartbeat();
    loop {
        tokio::time::sleep(every).await;
        let usage = ctx.usage.lock().ok().and_then(|u| u.clone());
        match jobs::heartbeat(
            &worker.db,
            job_id,
            &worker.name,
            &ctx.reported(),
            usage.as_ref(),
        )
        .await
        {
            Ok(Some(false)) => {}
            Ok(Some(true)) => {
                ctx.cancel.cancel();
                return;
            }
            Ok(None) => {
                lost.cancel();
                return;
            }
            Err(e) => tracing::warn!(job.id = %job_id, error = %e, "lease refresh failed"),
        }
    }
}

/// The terminal write, repeated while PostgreSQL cannot be reached: the job's outcome (maybe
/// minutes of a model's work) is kept in memory until it is recorded instead of the job running
/// again. Nothing else needs the job meanwhile: its lease is only taken over once PostgreSQL
/// answers again, and a write that comes second changes nothing (see `finish_many`).
async fn write_final(worker: &WorkerCtx, write: Finish) -> Result<Option<Ended>, JobError> {
    let mut pause = Duration::from_millis(100);
    loop {
        match worker.finishes.call(write.clone()).await {
            Err(e) if e.is_db_unreachable() => {
                tracing::warn!(job.id = %write.id, error = %e, "terminal write not recorded: PostgreSQL out of reach; repeating it");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(worker.config.common.heartbeat());
            }
            answer => return Ok(answer?),
        }
    }
}

/// The terminal write, then `result`/`error` and `done` events, only if this write won.
/// `claimed`: this attempt claimed the row (it is not ending a job it found cancelled).
async fn finish(
    worker: &WorkerCtx,
    row: &JobRow,
    claimed: bool,
    outcome: Result<Value, JobError>,
    usage: Option<&Value>,
    reported: &Reported,
) -> Result<(), JobError> {
    let (state, result, error) = match outcome {
        Ok(v) => (JobState::Succeeded, Some(Arc::new(v)), None),
        Err(JobError::Cancelled) => (JobState::Cancelled, None, Some("cancelled".to_owned())),
        Err(JobError::Permanent(e) | JobError::Retryable(e)) => {
            (JobState::Failed, None, Some(e.to_string()))
        }
        Err(JobError::LeaseLost | JobError::Busy) => return Ok(()),
    };
    let write = Finish {
        id: row.id,
        state,
        result: result.clone(),
        error: error.clone(),
        usage: usage.cloned(),
        reported: reported.clone(),
        claimed: claimed.then_some(row.attempts),
    };
    let Some(Ended {
        done_seq, state, ..
    }) = write_final(worker, write).await?
    else {
        return Ok(());
    };
    // a cancel requested before the write wins over the outcome (see `Ended::state`)
    let (last, error) = match (state, &result, error) {
        (JobState::Cancelled, ..) => (events::error("cancelled"), Some("cancelled".to_owned())),
        (_, Some(r), error) => (events::result(r), error),
        (_, None, Some(e)) => (events::error(&e), Some(e)),
        (_, None, None) => (events::error("failed"), None),
    };
    metrics::counter!("pacer_jobs_finished_total", "kind" => row.kind.clone(), "state" => state.as_str()).increment(1);
    // the row is final already; a Redis hiccup here only delays SSE until its PostgreSQL re-check
    if let Err(e) = worker.events.append_final(row.id, done_seq, &last).await {
        tracing::warn!(job.id = %row.id, error = %e, "could not append the final events");
    }
    if let Some(e) = &error {
        tracing::info!(job.id = %row.id, job.kind = %row.kind, state = state.as_str(), error = %e, "job finished");
    }
    Ok(())
}
