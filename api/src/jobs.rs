//! Job submission: who may submit what, validation, idempotency, and the push to Redis.

use pacer_common::auth::{Claims, Role};
use pacer_common::db::jobs::{JobRow, NewJob, insert_job, undispatch};
use pacer_common::db::{orgs, users};
use pacer_common::jobs::{JobKind, RecomputeBatchInput, RecomputeStatsInput};
use pacer_common::queue;
use serde_json::{Value, json};
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
    authorize_resources(state, claims, kind, &input).await?;

    let queue_name = kind.queue();
    let apalis = state.apalis(queue_name);
    let mut conn = state.redis.clone();
    // below the high-water mark the API pushes at once; above it the job waits in PostgreSQL
    // for a worker's dispatcher (Redis must never hold ~8,000 due jobs, see queue.rs)
    let push_now = match queue::depth(&mut conn, apalis).await {
        Ok(depth) => depth < state.config.common.queue_high_water,
        Err(e) => {
            tracing::warn!(error = %e, "queue depth unavailable; leaving the job to the dispatcher");
            false
        }
    };
    let task_id = push_now.then(queue::new_task_id);
    let job = NewJob {
        id: Uuid::now_v7(),
        kind,
        owner_id: &claims.sub,
        org_id: Some(&claims.org_id),
        input: &input,
        max_attempts: state.config.max_attempts,
        idempotency_key,
        task_id: task_id.as_deref(),
    };
    let (row, created) = insert_job(&state.db, &job).await?;
    if !created {
        if row.kind != kind.as_str() || row.input.0 != input {
            return Err(ApiError::Conflict(
                "idempotency_conflict",
                "this Idempotency-Key was already used for a different request".into(),
            ));
        }
        return Ok((row, false));
    }
    metrics::counter!("pacer_jobs_submitted_total", "kind" => kind.as_str()).increment(1);
    if let Some(task_id) = task_id {
        let pushed = queue::push(
            &mut conn,
            &state.keys,
            apalis,
            queue_name,
            &[(row.id, task_id)],
        )
        .await;
        if let Err(e) = pushed {
            tracing::warn!(job.id = %row.id, error = %e, "push failed; the dispatcher will retry");
            undispatch(&state.db, &[row.id]).await?;
        }
    }
    Ok((row, true))
}

fn authorize_role(claims: &Claims, kind: JobKind) -> Result<(), ApiError> {
    let allowed: &[Role] = match kind {
        JobKind::GenerateDraft | JobKind::GeneratePlan => &[Role::Coach, Role::Admin],
        JobKind::RecomputeStats => &[Role::Athlete, Role::Coach, Role::Admin],
        JobKind::RecomputeBatch => &[Role::Coach, Role::Admin],
    };
    crate::auth::require_role(claims, allowed)
}

async fn authorize_resources(
    state: &AppState,
    claims: &Claims,
    kind: JobKind,
    input: &Value,
) -> Result<(), ApiError> {
    match kind {
        JobKind::GenerateDraft | JobKind::GeneratePlan => {
            let org_id = input
                .get("org_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            require_coach_org(state, claims, org_id).await
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
        }
        JobKind::RecomputeBatch => {
            let parsed =
                RecomputeBatchInput::parse(input, "input.").map_err(ApiError::validation)?;
            match (claims.role, parsed.org_id.as_deref()) {
                (Role::Admin, _) => Ok(()),
                (Role::Coach, Some(org)) if org == claims.org_id => Ok(()),
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
            "you may only generate plans for your own organization".into(),
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
pub fn visible(row: &JobRow, claims: &Claims) -> bool {
    claims.role == Role::Admin || row.owner_id == claims.sub
}

/// Waits until the job is finished, or `timeout` passes (`None`). Follows the job's events
/// through the hub and re-reads the row on `done` (and every second, in case a notice is lost).
pub async fn wait_for_job(
    state: &AppState,
    id: Uuid,
    timeout: std::time::Duration,
) -> Result<Option<JobRow>, ApiError> {
    let mut sub = state.hub.subscribe(id);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(row) = pacer_common::db::jobs::get_job(&state.db, id).await?
            && row.is_terminal()
        {
            return Ok(Some(row));
        }
        let tick = (tokio::time::Instant::now() + std::time::Duration::from_secs(1)).min(deadline);
        loop {
            tokio::select! {
                msg = sub.rx.recv() => match msg {
                    Ok(crate::hub::HubMsg::Event(ev)) if !ev.is_done() => continue,
                    _ => break,
                },
                _ = tokio::time::sleep_until(tick) => break,
            }
        }
        if tokio::time::Instant::now() >= deadline {
            let row = pacer_common::db::jobs::get_job(&state.db, id).await?;
            return Ok(row.filter(JobRow::is_terminal));
        }
    }
}
