//! Job submission: who may submit what, validation, idempotency, and the push to Redis.

use std::sync::Arc;

use apalis_redis::{Config as ApalisConfig, ConnectionManager};
use pacer_common::auth::{Claims, Role};
use pacer_common::batch::Batcher;
use pacer_common::db::jobs::{Inserted, JobRow, NewJob, OrgFeature, insert_jobs, undispatch};
use pacer_common::db::{KeyedConns, orgs, users};
use pacer_common::jobs::{
    GeneratePlanInput, JobKind, Queue, RecomputeBatchInput, RecomputeStatsInput,
};
use pacer_common::keys::Keys;
use pacer_common::queue;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

pub const COACH_AGENT: &str = "coach_agent";

/// Checks, records and enqueues a job. Returns the row and whether it is new (an
/// `Idempotency-Key` seen before returns the first job).
pub async fn submit(
    state: &AppState,
    claims: &Claims,
    kind: JobKind,
    input: &Value,
    idempotency_key: Option<&str>,
) -> Result<(JobRow, bool), ApiError> {
    authorize_role(claims, kind)?;
    let input = kind.validate_input(input).map_err(ApiError::validation)?;
    if kind == JobKind::GeneratePlan {
        let plan =
            GeneratePlanInput::deserialize(&input).map_err(|e| ApiError::Internal(e.into()))?;
        check_plan_weeks(&plan, "input.")?;
    }
    let feature_org = authorize_resources(state, claims, kind, &input).await?;
    let requires = feature_org.map(|org_id| OrgFeature {
        org_id: org_id.to_owned(),
        feature: COACH_AGENT,
    });
    let job = NewJob {
        id: Uuid::now_v7(),
        kind,
        owner_id: claims.sub.clone(),
        org_id: Some(claims.org_id.clone()),
        input,
        max_attempts: state.config.common.max_attempts,
        idempotency_key: idempotency_key.map(str::to_owned),
        task_id: None,
        requires,
    };
    let mut tries = 0;
    let (row, created) = loop {
        tries += 1;
        let recorded = state.recorder.call(job.clone()).await.map_err(|e| {
            match ApiError::from(e) {
                // the insert may have reached a server that stopped answering, and commit
                // when it resumes: only the same key makes the client's retry safe
                ApiError::Unavailable(_) if job.idempotency_key.is_none() => ApiError::Unavailable(
                    "the database did not answer; retry shortly with an Idempotency-Key \
                     (a retry without one may record the job twice if the first attempt \
                     reached the database)"
                        .into(),
                ),
                other => other,
            }
        })?;
        match recorded {
            Inserted::New(row) => break (row, true),
            Inserted::Existing(row) => break (row, false),
            Inserted::Refused => match &job.requires {
                // explain the refusal (404/403); if the organization qualifies by now, its
                // feature was turned on during the request: record the job again, once
                Some(r) => {
                    require_coach_org(state, claims, &r.org_id).await?;
                    if tries >= 2 {
                        return Err(ApiError::Conflict(
                            "organization_changed",
                            "the organization changed during the request; retry".into(),
                        ));
                    }
                }
                // nothing to refuse on: the job holding this key was pruned (retention) between
                // the insert's conflict and the lookup, which frees the key: record it again
                None if tries < 3 => {}
                None => {
                    return Err(ApiError::Internal(anyhow::anyhow!(
                        "the job of Idempotency-Key {:?} vanished three times in a row",
                        job.idempotency_key
                    )));
                }
            },
        }
    };
    if !created {
        if row.kind != kind.as_str() || row.input.0 != job.input {
            return Err(ApiError::Conflict(
                "idempotency_conflict",
                "this Idempotency-Key was already used for a different request".into(),
            ));
        }
        return Ok((row, false));
    }
    metrics::counter!("pacer_jobs_submitted_total", "kind" => kind.as_str()).increment(1);
    Ok((row, true))
}

/// What a `generate_plan` input must meet beyond its fields: the draft has week headers (a
/// plan is read week by week: without any, every provider would answer an empty plan) and
/// `weeks` matches them. Shared by the Jobs API (`prefix` `input.`) and the AI Coach routes
/// (no prefix), so both refuse the same input with the same 400.
pub fn check_plan_weeks(plan: &GeneratePlanInput, prefix: &str) -> Result<(), ApiError> {
    match pacer_planner::draft_weeks(&plan.refined_draft) {
        None => Err(ApiError::field(
            &format!("{prefix}refined_draft"),
            "has no week headers (\"Week 1\", \"Week 2\", …): a plan is read week by week",
        )),
        Some(n) if n != plan.draft.weeks => Err(ApiError::field(
            &format!("{prefix}weeks"),
            &format!("must match the draft, which has {n} weeks"),
        )),
        Some(_) => Ok(()),
    }
}

/// Records submissions and pushes them to Redis, many per round trip under load (see
/// [`Batcher`]): one depth check per queue, one insert, one push per queue for a batch.
pub type Recorder = Batcher<NewJob, Inserted>;

/// What the recorder needs of the application state (it cannot hold the state itself).
pub struct RecorderCtx {
    /// The submission insert's connections; `db` serves the rare hand-back after a failed push.
    pub keyed: Arc<KeyedConns>,
    pub db: PgPool,
    pub redis: ConnectionManager,
    pub keys: Keys,
    pub generation: Arc<ApalisConfig>,
    pub stats: Arc<ApalisConfig>,
    pub high_water: u64,
}

impl RecorderCtx {
    fn apalis(&self, queue: Queue) -> &ApalisConfig {
        match queue {
            Queue::Generation => &self.generation,
            Queue::Stats => &self.stats,
        }
    }

    pub fn spawn(self) -> Recorder {
        let ctx = Arc::new(self);
        Batcher::spawn(64, 2, move |jobs: Vec<NewJob>| {
            let ctx = ctx.clone();
            async move { ctx.record(jobs).await }
        })
    }

    async fn record(&self, mut jobs: Vec<NewJob>) -> pacer_common::Result<Vec<Inserted>> {
        let mut conn = self.redis.clone();
        // below the high-water mark the API pushes at once; above it the job waits in
        // PostgreSQL for a worker's dispatcher (Redis must never hold ~8,000 due jobs, see
        // queue.rs)
        for queue in Queue::ALL {
            if !jobs.iter().any(|j| j.kind.queue() == queue) {
                continue;
            }
            let mut depth = queue::depth(&mut conn, self.apalis(queue)).await;
            if depth.as_ref().is_err_and(out_of_reach) {
                // the first command on a connection Redis dropped (a restart) fails and
                // reconnects: once more, or this batch would wait for a dispatcher's pass
                depth = queue::depth(&mut conn, self.apalis(queue)).await;
            }
            let room = match depth {
                Ok(depth) => self.high_water.saturating_sub(depth),
                Err(e) => {
                    tracing::warn!(error = %e, "queue depth unavailable; leaving jobs to the dispatcher");
                    0
                }
            };
            let room = usize::try_from(room).unwrap_or(usize::MAX);
            for job in jobs
                .iter_mut()
                .filter(|j| j.kind.queue() == queue)
                .take(room)
            {
                job.task_id = Some(queue::new_task_id());
            }
        }
        let jobs = Arc::new(jobs);
        let answers = self
            .keyed
            .run(|c| {
                let jobs = jobs.clone();
                Box::pin(async move { insert_jobs(c, &jobs).await })
            })
            .await?;
        for queue in Queue::ALL {
            let pushes: Vec<(Uuid, String)> = jobs
                .iter()
                .zip(&answers)
                .filter(|(j, a)| j.kind.queue() == queue && matches!(a, Inserted::New(_)))
                .filter_map(|(j, _)| Some((j.id, j.task_id.clone()?)))
                .collect();
            if pushes.is_empty() {
                continue;
            }
            let pushed =
                queue::push(&mut conn, &self.keys, self.apalis(queue), queue, &pushes).await;
            if let Err(e) = pushed {
                tracing::warn!(jobs = pushes.len(), error = %e, "push failed; the dispatcher will retry");
                let ids: Vec<Uuid> = pushes.iter().map(|(id, _)| *id).collect();
                undispatch(&self.db, &ids).await?;
                left_to_dispatchers(ids.len());
            }
        }
        left_to_dispatchers(
            jobs.iter()
                .zip(&answers)
                .filter(|(j, a)| j.task_id.is_none() && matches!(a, Inserted::New(_)))
                .count(),
        );
        Ok(answers)
    }
}

fn out_of_reach(e: &pacer_common::Error) -> bool {
    matches!(e, pacer_common::Error::Redis(e) if pacer_common::error::redis_unavailable(e))
}

/// Jobs accepted without a push (Redis at its high-water mark or out of reach): a worker's
/// dispatcher pushes them later.
fn left_to_dispatchers(n: usize) {
    if n > 0 {
        metrics::counter!("pacer_jobs_left_to_dispatchers_total").increment(n as u64);
    }
}

fn authorize_role(claims: &Claims, kind: JobKind) -> Result<(), ApiError> {
    let allowed: &[Role] = match kind {
        JobKind::GenerateDraft | JobKind::GeneratePlan => &[Role::Coach, Role::Admin],
        JobKind::RecomputeStats => &[Role::Athlete, Role::Coach, Role::Admin],
        JobKind::RecomputeBatch => &[Role::Coach, Role::Admin],
    };
    crate::auth::require_role(claims, allowed)
}

/// Checks what the caller may touch. For generation jobs the organization's feature is
/// checked by the insert itself (one round trip less per job): returns that organization.
async fn authorize_resources<'a>(
    state: &AppState,
    claims: &Claims,
    kind: JobKind,
    input: &'a Value,
) -> Result<Option<&'a str>, ApiError> {
    match kind {
        JobKind::GenerateDraft | JobKind::GeneratePlan => {
            let org_id = input
                .get("org_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if claims.role != Role::Admin && org_id != claims.org_id {
                // refused either way; the full check says why (404 before 403)
                require_coach_org(state, claims, org_id).await?;
            }
            Ok(Some(org_id))
        }
        JobKind::RecomputeStats => {
            let parsed =
                RecomputeStatsInput::parse(input, "input.").map_err(ApiError::validation)?;
            let user = users::get_user(&state.db, &parsed.user_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("user {} not found", parsed.user_id)))?;
            let allowed = match claims.role {
                Role::Admin => true,
                Role::Coach => user.org_id.as_deref() == Some(claims.org_id.as_str()),
                _ => user.id == claims.sub,
            };
            if allowed {
                Ok(())
            } else {
                Err(ApiError::Forbidden(
                    "you may not recompute this athlete's stats".into(),
                ))
            }
            .map(|()| None)
        }
        JobKind::RecomputeBatch => {
            let parsed =
                RecomputeBatchInput::parse(input, "input.").map_err(ApiError::validation)?;
            match (claims.role, parsed.org_id.as_deref()) {
                // a mistyped organization would otherwise run an empty batch
                (Role::Admin, Some(org)) if !orgs::org_known(&state.db, org).await? => {
                    Err(ApiError::NotFound(format!("organization {org} not found")))
                }
                (Role::Admin, _) => Ok(None),
                (Role::Coach, Some(org)) if org == claims.org_id => Ok(None),
                (Role::Coach, _) => Err(ApiError::Forbidden(
                    "a coach may only recompute its own organization".into(),
                )),
                _ => Err(ApiError::Forbidden(
                    "this requires the role coach or admin".into(),
                )),
            }
        }
    }
}

/// The organization must exist (404), be the caller's own unless admin (403), and have the
/// `coach_agent` feature (403).
pub async fn require_coach_org(
    state: &AppState,
    claims: &Claims,
    org_id: &str,
) -> Result<(), ApiError> {
    let org = orgs::get_org(&state.db, org_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("organization {org_id} not found")))?;
    if claims.role != Role::Admin && org.id != claims.org_id {
        return Err(ApiError::Forbidden(
            "you may only use the AI Coach of your own organization".into(),
        ));
    }
    if !org.has_feature(COACH_AGENT) {
        return Err(ApiError::Forbidden(
            "the coach_agent feature is not enabled for this organization".into(),
        ));
    }
    Ok(())
}

/// The Jobs API view of a job.
pub fn job_view(row: &JobRow) -> Value {
    let mut v = json!({
        "job_id": row.id,
        "kind": row.kind,
        "state": row.state,
        "progress": row.progress,
        "message": row.message,
        "attempts": row.attempts,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "status_url": format!("/api/v1/jobs/{}", row.id),
        "events_url": format!("/api/v1/jobs/{}/events", row.id),
    });
    if row.state == "succeeded" {
        v["result"] = row
            .result
            .as_ref()
            .map(|r| r.0.clone())
            .unwrap_or(Value::Null);
    }
    if let Some(err) = row
        .error
        .as_ref()
        .filter(|_| row.state == "failed" || row.state == "cancelled")
    {
        v["error"] = json!(err);
    }
    if let Some(usage) = &row.usage {
        v["usage"] = usage.0.clone();
    }
    if row.cancel_requested && !row.is_terminal() {
        v["cancel_requested"] = json!(true);
    }
    v
}

/// A job is visible to its creator and to admins; to anyone else it does not exist.
/// Who may read a job: its creator and admins; also, for the recompute an upload enqueues (owned
/// by the system; its id is in the upload's answer), whoever may read the athlete's analytics:
/// the athlete and the coaches of the athlete's organization.
pub fn visible(row: &JobRow, claims: &Claims) -> bool {
    claims.role == Role::Admin || row.owner_id == claims.sub || system_recompute_of(row, claims)
}

/// Who may cancel a job: its creator and admins.
pub fn cancellable_by(row: &JobRow, claims: &Claims) -> bool {
    claims.role == Role::Admin || row.owner_id == claims.sub
}

fn system_recompute_of(row: &JobRow, claims: &Claims) -> bool {
    row.owner_id == pacer_common::db::analytics::SYSTEM_OWNER
        && row.kind == JobKind::RecomputeStats.as_str()
        && (row.input.0["user_id"].as_str() == Some(claims.sub.as_str())
            || (claims.role == Role::Coach
                && row.org_id.as_deref() == Some(claims.org_id.as_str())))
}

/// Waits until the job is finished or `timeout` passes, and answers the row as last read
/// (finished or not; `None` if it is gone). Follows the job's events through the hub and
/// re-reads the row on `done` (and every second, in case a notice is lost). When the API is
/// stopping (the hub closes its channels) it answers at once, so the caller gets its 202
/// before the connection is cut.
pub async fn wait_for_job(
    state: &AppState,
    id: Uuid,
    timeout: std::time::Duration,
) -> Result<Option<JobRow>, ApiError> {
    let mut sub = state.hub.subscribe(id);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let row = pacer_common::db::jobs::get_job(&state.db, id).await?;
        if row.as_ref().is_none_or(JobRow::is_terminal) {
            return Ok(row);
        }
        let tick = (tokio::time::Instant::now() + std::time::Duration::from_secs(1)).min(deadline);
        let mut stopping = false;
        loop {
            tokio::select! {
                msg = sub.rx.recv() => match msg {
                    Ok(crate::hub::HubMsg::Event(ev)) if !ev.is_done() => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        stopping = true;
                        break;
                    }
                    _ => break,
                },
                _ = tokio::time::sleep_until(tick) => break,
            }
        }
        if stopping || tokio::time::Instant::now() >= deadline {
            return Ok(pacer_common::db::jobs::get_job(&state.db, id).await?);
        }
    }
}
