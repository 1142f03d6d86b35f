//! The Jobs API: submit, poll, list, cancel, and the SSE event stream.

use pacer_common::auth::Role;
use pacer_common::db::jobs::{CancelOutcome, JobFilter, cancel, list_jobs};
use pacer_common::events;
use pacer_common::jobs::{JobKind, JobState};
use pacer_common::validate::FieldReader;
use salvo::prelude::*;

use crate::schemas as s;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::{app_state, claims};
use crate::error::ApiError;
use crate::jobs::{cancellable_by, job_view, submit, visible};
use crate::routes::{query_param, read_json};

pub fn router() -> Router {
    Router::with_path("jobs").get(list).post(create).push(
        Router::with_path("{job_id}")
            .get(show)
            .delete(destroy)
            .push(Router::with_path("events").get(stream_events)),
    )
}

/// `POST /api/v1/jobs` `{"kind", "input"}` with an optional `Idempotency-Key` header → 202.
#[endpoint(
    tags("jobs"),
    summary = "Submit a job",
    security(("bearer" = [])),
    parameters(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, description = "Same key from the same user returns the first job; a different body with a used key is a 409"),
    ),
    request_body = s::SubmitJob,
    responses(
        (status_code = 202, description = "Queued", body = s::JobAcceptedEnvelope),
    ),
    status_codes(202, 400, 401, 403, 404, 409, 413, 500, 503)
)]
async fn create(req: &mut Request, depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    let state = app_state(depot)?.clone();
    let claims = claims(depot)?.clone();
    let body = read_json(req, &state).await?;
    let mut r = FieldReader::new(&body).map_err(ApiError::validation)?;
    let kind_names: Vec<&str> = JobKind::ALL.iter().map(|k| k.as_str()).collect();
    let kind = r
        .required_enum("kind", &kind_names)
        .and_then(|k| JobKind::parse(&k));
    let input = r.raw("input").cloned();
    if input.is_none() {
        r.error("input", "is required");
    }
    r.finish().map_err(ApiError::validation)?;
    let (Some(kind), Some(input)) = (kind, input) else {
        return Err(ApiError::field("kind", "is required"));
    };
    let key = idempotency_key(req)?;
    let (row, _created) = submit(&state, &claims, kind, &input, key.as_deref()).await?;
    res.status_code(StatusCode::ACCEPTED);
    res.render(Json(json!({"status": "accepted", "data": {
        "job_id": row.id,
        "kind": row.kind,
        "state": row.state,
        "status_url": format!("/api/v1/jobs/{}", row.id),
        "events_url": format!("/api/v1/jobs/{}/events", row.id),
    }})));
    Ok(())
}

pub fn idempotency_key(req: &Request) -> Result<Option<String>, ApiError> {
    let Some(raw) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let printable = |k: &str| k.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
    let key = raw
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| printable(k))
        .ok_or_else(|| {
            ApiError::field(
                "Idempotency-Key",
                "must be printable ASCII (letters, digits, punctuation, spaces)",
            )
        })?;
    if key.is_empty() || key.len() > 200 {
        return Err(ApiError::field(
            "Idempotency-Key",
            "must be 1 to 200 characters",
        ));
    }
    Ok(Some(key.to_owned()))
}

fn job_id(req: &Request) -> Result<Uuid, ApiError> {
    req.param::<String>("job_id")
        .and_then(|s| Uuid::parse_str(&s).ok())
        .ok_or_else(|| ApiError::NotFound("job not found".into()))
}

/// Loads a job the caller may see; 404 otherwise (another user's job does not exist for them).
pub async fn visible_job(
    state: &crate::state::AppState,
    claims: &pacer_common::auth::Claims,
    id: Uuid,
) -> Result<pacer_common::db::jobs::JobRow, ApiError> {
    match state.rows.call(id).await? {
        Some(row) if visible(&row, claims) => Ok(row),
        _ => Err(ApiError::NotFound("job not found".into())),
    }
}

#[endpoint(
    tags("jobs"),
    summary = "Poll a job",
    security(("bearer" = [])),
    parameters(
        ("job_id" = uuid::Uuid, Path, description = "The job id (another user's job is a 404)"),
    ),
    responses(
        (status_code = 200, description = "The job", body = s::JobEnvelope),
    ),
    status_codes(200, 400, 401, 404, 500, 503)
)]
async fn show(req: &mut Request, depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    let state = app_state(depot)?;
    let row = visible_job(state, claims(depot)?, job_id(req)?).await?;
    res.render(Json(json!({"status": "success", "data": job_view(&row)})));
    Ok(())
}

/// `DELETE`: a queued job never runs (200, `cancelled`); a running one stops at its next step
/// (202); a finished one cannot be cancelled (409).
#[endpoint(
    tags("jobs"),
    summary = "Cancel a job",
    security(("bearer" = [])),
    parameters(
        ("job_id" = uuid::Uuid, Path, description = "The job id (another user's job is a 404)"),
    ),
    responses(
        (status_code = 200, description = "Cancelled before it ran", body = s::JobEnvelope),
        (status_code = 202, description = "Running: it stops at its next step", body = s::JobEnvelope),
        (status_code = 409, description = "Already finished (`job_finished`)", body = s::ErrorBody),
    ),
    status_codes(200, 202, 400, 401, 403, 404, 409, 500, 503)
)]
async fn destroy(req: &mut Request, depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    let state = app_state(depot)?.clone();
    let row = visible_job(&state, claims(depot)?, job_id(req)?).await?;
    if !cancellable_by(&row, claims(depot)?) {
        return Err(ApiError::Forbidden(
            "only the job's creator or an admin may cancel it".into(),
        ));
    }
    // the log's last number keeps a queued job's final events above whatever an earlier
    // attempt logged; without Redis the row's count stands in (PostgreSQL holds the cancel, and
    // a stream rebuilds the final events from the row)
    let last_logged = match state.events.last_logged(row.id).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(job.id = %row.id, error = %e, "event log not read; cancelling on the row's count");
            0
        }
    };
    match cancel(&state.db, row.id, last_logged).await? {
        CancelOutcome::Cancelled(done_seq) => {
            // nobody else writes events for a job that never ran: close its stream here. The
            // cancel is recorded either way; without these events SSE rebuilds them from the row
            if let Err(e) = state
                .events
                .append_final(row.id, done_seq, &events::error("cancelled"))
                .await
            {
                tracing::warn!(job.id = %row.id, error = %e, "final events of a cancelled job not appended");
            }
            metrics::counter!("pacer_jobs_finished_total", "kind" => row.kind.clone(), "state" => "cancelled").increment(1);
        }
        CancelOutcome::Requested => {
            // its worker reads this flag with each event; without it, the PostgreSQL flag stops
            // the job at its next lease refresh (the cancel is recorded either way)
            if let Err(e) = state.events.request_cancel(&[row.id]).await {
                tracing::warn!(job.id = %row.id, error = %e, "cancel flag not set in Redis; the lease refresh will see the request");
            }
            res.status_code(StatusCode::ACCEPTED);
        }
        CancelOutcome::AlreadyFinal => {
            // the row as the cancel found it (it may have finished since it was read above)
            let now = visible_job(&state, claims(depot)?, row.id).await?;
            return Err(ApiError::Conflict(
                "job_finished",
                format!("the job has already ended ({})", now.state),
            ));
        }
    }
    if row.kind == JobKind::RecomputeBatch.as_str() {
        // the batch cancels its children when it sees the request, but it may not be running
        // (queued for a retry, its worker dead) or may be stopped before it gets to them
        if let Err(e) = events::cancel_batch_children(&state.db, &state.events, row.id).await {
            tracing::warn!(job.id = %row.id, error = %e, "children of a cancelled batch not cancelled here; each checks its batch before running");
        }
    }
    let row = visible_job(&state, claims(depot)?, row.id).await?;
    res.render(Json(json!({"status": "success", "data": job_view(&row)})));
    Ok(())
}

/// `GET /api/v1/jobs?state=&kind=&page=&per_page=`: the caller's jobs (admin: all), newest first.
#[endpoint(
    tags("jobs"),
    summary = "List the caller's jobs (admins: everyone's), newest first",
    security(("bearer" = [])),
    parameters(
        ("state" = Option<s::JobStateName>, Query, description = "Only jobs in this state"),
        ("kind" = Option<s::JobKindName>, Query, description = "Only jobs of this kind"),
        ("page" = Option<i64>, Query, minimum = 1, maximum = 2147483647, description = "Page number (default 1)"),
        ("per_page" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Page size (default 20)"),
    ),
    responses(
        (status_code = 200, description = "A page of jobs", body = s::JobListEnvelope),
    ),
    status_codes(200, 400, 401, 500, 503)
)]
async fn list(req: &mut Request, depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    let state = app_state(depot)?;
    let claims = claims(depot)?;
    let mut details = Vec::new();
    let job_state = match req.query::<String>("state").filter(|s| !s.is_empty()) {
        Some(s) => JobState::parse(&s).map(Some).unwrap_or_else(|| {
            details.push(pacer_common::FieldError::new(
                "state",
                "must be one of queued, running, succeeded, failed, cancelled",
            ));
            None
        }),
        None => None,
    };
    let kind = match req.query::<String>("kind").filter(|s| !s.is_empty()) {
        Some(s) => JobKind::parse(&s).map(Some).unwrap_or_else(|| {
            details.push(pacer_common::FieldError::new(
                "kind",
                "must be one of generate_draft, generate_plan, recompute_stats, recompute_batch",
            ));
            None
        }),
        None => None,
    };
    let page = int_param(req, "page", (1, i64::from(i32::MAX)), 1, &mut details);
    let per_page = int_param(req, "per_page", (1, 100), 20, &mut details);
    if !details.is_empty() {
        return Err(ApiError::validation(details));
    }
    let filter = JobFilter {
        owner_id: if claims.role == Role::Admin {
            None
        } else {
            Some(&claims.sub)
        },
        state: job_state,
        kind,
        limit: per_page,
        offset: (page - 1).saturating_mul(per_page),
    };
    let (rows, total) = list_jobs(&state.db, &filter).await?;
    let total_pages = (total + per_page - 1) / per_page;
    let jobs: Vec<Value> = rows.iter().map(job_view).collect();
    res.render(Json(json!({"status": "success", "data": {
        "jobs": jobs,
        "pagination": {"total": total, "page": page, "per_page": per_page, "total_pages": total_pages,
                       "has_next": page < total_pages, "has_prev": page > 1},
    }})));
    Ok(())
}

/// `GET /api/v1/jobs/{id}/events`: replay + live SSE; `Last-Event-ID` or `?after=n` resumes.
#[endpoint(
    tags("jobs"),
    summary = "Stream a job's events (SSE)",
    security(("bearer" = [])),
    parameters(
        ("job_id" = uuid::Uuid, Path, description = "The job id (another user's job is a 404)"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event id (wins over `after`)"),
        ("after" = Option<u64>, Query, description = "Resume after this event id"),
        ("mode" = Option<String>, Query, description = "The events' shape: `job` (default, as written), or for a generate_plan job `plan` (as `generate-plan/stream`) or `plan_content` (as `generate-plan/stream-content`), to resume those streams"),
    ),
    responses(
        (status_code = 200, description = "`text/event-stream`: every event from the start (or after `Last-Event-ID` / `after`), then live ones until `done`; a keep-alive comment every 15 s. Each event's `data:` is a JobEvent", body = s::SseEvent, content_type = "text/event-stream"),
        (status_code = 204, description = "The job is finished and the client has its `done` event: nothing more will come (an `EventSource` stops reconnecting)"),
    ),
    status_codes(200, 204, 400, 401, 404, 500, 503)
)]
async fn stream_events(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = app_state(depot)?.clone();
    let row = visible_job(&state, claims(depot)?, job_id(req)?).await?;
    let after = resume_point(req)?;
    let mode = match req.query::<String>("mode").as_deref() {
        None | Some("job") => crate::sse::StreamMode::Job,
        Some(m @ ("plan" | "plan_content")) if row.kind == JobKind::GeneratePlan.as_str() => {
            if m == "plan" {
                crate::sse::StreamMode::PlanBatch
            } else {
                crate::sse::StreamMode::PlanContent
            }
        }
        Some("plan" | "plan_content") => {
            return Err(ApiError::field(
                "mode",
                "plan and plan_content apply to generate_plan jobs only",
            ));
        }
        Some(_) => {
            return Err(ApiError::field(
                "mode",
                "must be one of job, plan, plan_content",
            ));
        }
    };
    if row.is_terminal() && after >= u64::try_from(row.event_seq).unwrap_or(0) {
        // past `done`: an empty 200 would have an EventSource reconnect forever
        res.status_code(StatusCode::NO_CONTENT);
        return Ok(());
    }
    crate::sse::stream_job(state, row, after, mode, res);
    Ok(())
}

/// An integer query parameter within `range` (inclusive); records a detail when invalid.
fn int_param(
    req: &Request,
    name: &str,
    range: (i64, i64),
    default: i64,
    details: &mut Vec<pacer_common::FieldError>,
) -> i64 {
    match query_param::<i64>(req, name) {
        Ok(None) => default,
        Ok(Some(n)) if n >= range.0 && n <= range.1 => n,
        _ => {
            details.push(pacer_common::FieldError::new(
                name,
                format!("must be an integer between {} and {}", range.0, range.1),
            ));
            default
        }
    }
}

fn resume_point(req: &Request) -> Result<u64, ApiError> {
    if let Some(raw) = req.headers().get("last-event-id") {
        let s = raw.to_str().unwrap_or("").trim();
        if s.is_empty() {
            return Ok(0);
        }
        return s
            .parse::<u64>()
            .map_err(|_| ApiError::field("Last-Event-ID", "must be a non-negative integer"));
    }
    match req.query::<String>("after") {
        Some(s) if !s.is_empty() => s
            .parse::<u64>()
            .map_err(|_| ApiError::field("after", "must be a non-negative integer")),
        _ => Ok(0),
    }
}
