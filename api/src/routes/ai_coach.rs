//! The AI Coach API (seed 000): draft and plan generation (synchronous and SSE), training
//! principles, the organization's workout library, and personal paces.
//!
//! Generation runs as jobs. The synchronous endpoints wait up to `PACER_SYNC_TIMEOUT_SECS` and
//! then answer 202 with the job's links instead of failing; the streaming ones set `X-Job-Id` and
//! stream the job's events in the seed's shape (resumable at `/api/v1/jobs/{id}/events`).

use pacer_common::FieldError;
use pacer_common::auth::{Claims, Role};
use pacer_common::db::jobs::JobRow;
use pacer_common::db::{orgs, users, workouts};
use pacer_common::jobs::{GenerateDraftInput, GeneratePlanInput, JobKind, JobState};
use pacer_common::validate::FieldReader;
use salvo::prelude::*;

use crate::schemas as s;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::{app_state, claims, require_role};
use crate::error::ApiError;
use crate::jobs::{check_plan_weeks, require_coach_org, submit, wait_for_job};
use crate::routes::jobs::idempotency_key;
use crate::routes::read_json;
use crate::sse::{StreamMode, stream_job};
use crate::state::AppState;

pub fn router() -> Router {
    Router::with_path("ai-coach")
        .push(
            Router::with_path("generate-draft")
                .post(generate_draft)
                .push(Router::with_path("stream").post(generate_draft_stream)),
        )
        .push(
            Router::with_path("generate-plan")
                .post(generate_plan)
                .push(Router::with_path("stream").post(generate_plan_stream))
                .push(Router::with_path("stream-content").post(generate_plan_stream_content)),
        )
        .push(
            Router::with_path("training-principle/{org_id}")
                .get(get_principle)
                .put(put_principle),
        )
        .push(
            Router::with_path("workouts")
                .get(list_workouts)
                .post(create_workout)
                .push(
                    Router::with_path("{workout_id}")
                        .get(show_workout)
                        .put(update_workout)
                        .delete(delete_workout),
                ),
        )
        .push(Router::with_path("paces").get(paces))
}

const COACH_ROLES: [Role; 2] = [Role::Coach, Role::Admin];

/// Validates the body for `kind` (field names as in the seed, without a prefix), checks the
/// organization, then submits the job.
async fn start(
    req: &mut Request,
    depot: &Depot,
    kind: JobKind,
) -> Result<(AppState, JobRow), ApiError> {
    let state = app_state(depot)?.clone();
    let claims = claims(depot)?.clone();
    require_role(&claims, &COACH_ROLES)?;
    let body = read_json(req, &state).await?;
    let input = match kind {
        JobKind::GeneratePlan => {
            let plan = GeneratePlanInput::parse(&body, "").map_err(ApiError::validation)?;
            check_plan_weeks(&plan, "")?;
            serde_json::to_value(plan).map_err(|e| ApiError::Internal(e.into()))?
        }
        _ => {
            let draft = GenerateDraftInput::parse(&body, "").map_err(ApiError::validation)?;
            serde_json::to_value(draft).map_err(|e| ApiError::Internal(e.into()))?
        }
    };
    let key = idempotency_key(req)?;
    let (row, _) = submit(&state, &claims, kind, &input, key.as_deref()).await?;
    Ok((state, row))
}

/// The synchronous answer: the job's result (200), its failure (500), or, still running after
/// the sync timeout, its links (202).
async fn answer(state: &AppState, row: &JobRow, res: &mut Response) -> Result<(), ApiError> {
    match wait_for_job(state, row.id, state.config.sync_timeout()).await? {
        Some(done) if done.is_terminal() => match done.job_state() {
            Some(JobState::Succeeded) => {
                let result = done.result.map(|r| r.0).unwrap_or(Value::Null);
                res.render(Json(json!({"status": "success", "data": result})));
                Ok(())
            }
            Some(JobState::Cancelled) => Err(ApiError::Conflict(
                "job_cancelled",
                "the generation job was cancelled".into(),
            )),
            _ => Err(ApiError::GenerationFailed(format!(
                "generation failed: {}",
                done.error.as_deref().unwrap_or("unknown error")
            ))),
        },
        // still queued or running (or deleted by retention meanwhile: as submitted)
        not_done => {
            let now = not_done.as_ref().unwrap_or(row);
            let message = if now.state == JobState::Queued.as_str() {
                "waiting for a worker; poll status_url or follow events_url"
            } else {
                "still generating; poll status_url or follow events_url"
            };
            res.status_code(StatusCode::ACCEPTED);
            res.render(Json(json!({"status": "accepted", "data": {
                "job_id": row.id, "kind": row.kind, "state": now.state,
                "message": message,
                "status_url": format!("/api/v1/jobs/{}", row.id),
                "events_url": format!("/api/v1/jobs/{}/events", row.id),
            }})));
            Ok(())
        }
    }
}

fn stream(state: AppState, row: JobRow, mode: StreamMode, res: &mut Response) {
    if let Ok(v) = salvo::http::HeaderValue::from_str(&row.id.to_string()) {
        res.headers_mut().insert("x-job-id", v);
    }
    stream_job(state, row, 0, mode, res);
}

/// `POST /api/v1/ai-coach/generate-draft`
#[endpoint(
    tags("ai-coach"),
    summary = "Generate a readable plan draft",
    security(("bearer" = [])),
    parameters(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, description = "Same key from the same user returns the first job; a different body with a used key is a 409"),
    ),
    request_body = s::GenerateDraftRequest,
    responses(
        (status_code = 200, description = "The draft", body = s::DraftEnvelope),
        (status_code = 202, description = "Still running after `PACER_SYNC_TIMEOUT_SECS`: follow `status_url` or `events_url`", body = s::JobAcceptedEnvelope),
        (status_code = 500, description = "The generation failed (`generation_failed`) or an internal error", body = s::ErrorBody),
    ),
    status_codes(200, 202, 400, 401, 403, 404, 409, 413, 500, 503)
)]
async fn generate_draft(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, row) = start(req, depot, JobKind::GenerateDraft).await?;
    answer(&state, &row, res).await
}

/// `POST /api/v1/ai-coach/generate-draft/stream`: progress, result, error, done.
#[endpoint(
    tags("ai-coach"),
    summary = "Generate a draft, streamed (SSE)",
    security(("bearer" = [])),
    parameters(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, description = "Same key from the same user returns the first job; a different body with a used key is a 409"),
    ),
    request_body = s::GenerateDraftRequest,
    responses(
        (status_code = 200, description = "`text/event-stream`; the `X-Job-Id` header names the job, so a dropped client resumes at `/api/v1/jobs/{id}/events`. Each event's `data:` is a JobEvent: progress, result (data = DraftResult), error, done", body = s::SseEvent, content_type = "text/event-stream"),
    ),
    status_codes(200, 400, 401, 403, 404, 409, 413, 500, 503)
)]
async fn generate_draft_stream(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, row) = start(req, depot, JobKind::GenerateDraft).await?;
    stream(state, row, StreamMode::Job, res);
    Ok(())
}

/// `POST /api/v1/ai-coach/generate-plan`
#[endpoint(
    tags("ai-coach"),
    summary = "Turn a draft into structured workouts",
    security(("bearer" = [])),
    parameters(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, description = "Same key from the same user returns the first job; a different body with a used key is a 409"),
    ),
    request_body = s::GeneratePlanRequest,
    responses(
        (status_code = 200, description = "The plan", body = s::PlanEnvelope),
        (status_code = 202, description = "Still running after `PACER_SYNC_TIMEOUT_SECS`: follow `status_url` or `events_url`", body = s::JobAcceptedEnvelope),
        (status_code = 500, description = "The generation failed (`generation_failed`) or an internal error", body = s::ErrorBody),
    ),
    status_codes(200, 202, 400, 401, 403, 404, 409, 413, 500, 503)
)]
async fn generate_plan(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, row) = start(req, depot, JobKind::GeneratePlan).await?;
    answer(&state, &row, res).await
}

/// `POST /api/v1/ai-coach/generate-plan/stream`: progress, one result with the content, done.
#[endpoint(
    tags("ai-coach"),
    summary = "Generate a plan, streamed (SSE): progress, one result, done",
    security(("bearer" = [])),
    parameters(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, description = "Same key from the same user returns the first job; a different body with a used key is a 409"),
    ),
    request_body = s::GeneratePlanRequest,
    responses(
        (status_code = 200, description = "`text/event-stream`; the `X-Job-Id` header names the job, so a dropped client resumes at `/api/v1/jobs/{id}/events`. Each event's `data:` is a JobEvent: progress, result (data = PlanResult), error, done", body = s::SseEvent, content_type = "text/event-stream"),
    ),
    status_codes(200, 400, 401, 403, 404, 409, 413, 500, 503)
)]
async fn generate_plan_stream(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, row) = start(req, depot, JobKind::GeneratePlan).await?;
    stream(state, row, StreamMode::PlanBatch, res);
    Ok(())
}

/// `POST /api/v1/ai-coach/generate-plan/stream-content`: progress, workout, weekly_info, result, done.
#[endpoint(
    tags("ai-coach"),
    summary = "Generate a plan, workout by workout (SSE)",
    security(("bearer" = [])),
    parameters(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, description = "Same key from the same user returns the first job; a different body with a used key is a 409"),
    ),
    request_body = s::GeneratePlanRequest,
    responses(
        (status_code = 200, description = "`text/event-stream`; the `X-Job-Id` header names the job, so a dropped client resumes at `/api/v1/jobs/{id}/events`. Each event's `data:` is a JobEvent: progress (count/total), workout (data = PlanWorkout), weekly_info (data = {week: WeeklyInfo}) after each week, result (total_workouts, weekly_info), error, done", body = s::SseEvent, content_type = "text/event-stream"),
    ),
    status_codes(200, 400, 401, 403, 404, 409, 413, 500, 503)
)]
async fn generate_plan_stream_content(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, row) = start(req, depot, JobKind::GeneratePlan).await?;
    stream(state, row, StreamMode::PlanContent, res);
    Ok(())
}

fn org_param(req: &Request) -> Result<String, ApiError> {
    req.param::<String>("org_id")
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .ok_or_else(|| ApiError::NotFound("organization not found".into()))
}

/// `GET /api/v1/ai-coach/training-principle/{org_id}`: personal > organization > default.
#[endpoint(
    tags("ai-coach"),
    summary = "The resolved training principle (personal > organization > default)",
    security(("bearer" = [])),
    parameters(
        ("org_id" = String, Path, min_length = 1, max_length = 200, description = "Organization id (the coach's own)"),
    ),
    responses(
        (status_code = 200, description = "The principle and its source", body = s::TrainingPrincipleEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 500, 503)
)]
async fn get_principle(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = app_state(depot)?;
    let claims = claims(depot)?;
    require_role(claims, &COACH_ROLES)?;
    let org_id = org_param(req)?;
    require_coach_org(state, claims, &org_id).await?;
    let (text, source) =
        pacer_common::principle::resolve(&state.db, None, &claims.sub, &org_id).await?;
    res.render(Json(json!({"status": "success", "data": {"training_principle": text, "org_id": org_id, "source": source.as_str()}})));
    Ok(())
}

/// `PUT /api/v1/ai-coach/training-principle/{org_id}` `{"training_principle", "scope": "org" | "personal"}`.
#[endpoint(
    tags("ai-coach"),
    summary = "Set the organization's or the coach's personal training principle",
    security(("bearer" = [])),
    parameters(
        ("org_id" = String, Path, min_length = 1, max_length = 200, description = "Organization id (the coach's own)"),
    ),
    request_body = s::TrainingPrincipleUpdate,
    responses(
        (status_code = 200, description = "The principle written and its scope", body = s::TrainingPrincipleEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 413, 500, 503)
)]
async fn put_principle(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = app_state(depot)?.clone();
    let claims = claims(depot)?.clone();
    require_role(&claims, &COACH_ROLES)?;
    let org_id = org_param(req)?;
    let body = read_json(req, &state).await?;
    let mut r = FieldReader::new(&body).map_err(ApiError::validation)?;
    let text = r.required_str("training_principle", 1, 4000);
    let scope = r
        .opt_enum("scope", &["org", "personal"])
        .unwrap_or_else(|| "org".to_owned());
    r.finish().map_err(ApiError::validation)?;
    require_coach_org(&state, &claims, &org_id).await?;
    let text = text.unwrap_or_default().trim().to_owned();
    if scope == "org" {
        orgs::set_training_principle(&state.db, &org_id, &text).await?;
    } else {
        users::set_training_principle(&state.db, &claims.sub, &text).await?;
    }
    res.render(Json(json!({"status": "success", "data": {"training_principle": text, "org_id": org_id, "scope": scope}})));
    Ok(())
}

/// The organization whose library the caller manages: its own (admins may name one with `?org_id=`).
async fn library_org(req: &Request, state: &AppState, claims: &Claims) -> Result<String, ApiError> {
    require_role(claims, &COACH_ROLES)?;
    // a coach naming another organization is refused, not served its own library (a POST
    // would otherwise add the workout where the caller did not ask)
    let org_id = match req.query::<String>("org_id").filter(|s| !s.is_empty()) {
        Some(o) if claims.role == Role::Admin || o == claims.org_id => o,
        Some(_) => {
            return Err(ApiError::Forbidden(
                "org_id is for admins: you may only use the library of your own organization"
                    .into(),
            ));
        }
        None => claims.org_id.clone(),
    };
    require_coach_org(state, claims, &org_id).await?;
    Ok(org_id)
}

fn workout_id(req: &Request) -> Result<Uuid, ApiError> {
    req.param::<String>("workout_id")
        .and_then(|s| Uuid::parse_str(&s).ok())
        .ok_or_else(|| ApiError::NotFound("workout not found".into()))
}

const BLOCK_TYPES: [&str; 3] = ["warmup", "main", "cooldown"];

/// Reads a library workout; content block durations must add up to the workout's duration.
fn read_workout(body: &Value) -> Result<workouts::WorkoutFields, ApiError> {
    let mut r = FieldReader::new(body).map_err(ApiError::validation)?;
    let name = r.required_str("workout_name", 1, 200);
    let description = r.opt_str("workout_description", 4000).unwrap_or_default();
    let workout_type = r
        .opt_str("workout_type", 50)
        .unwrap_or_else(|| "run".to_owned());
    let sub_type = r.required_str("workout_sub_type", 1, 50);
    let duration = r.required_int("target_duration_in_seconds", 1, 86_400);
    let distance = r
        .opt_int("target_distance_in_meters", 0, 500_000)
        .unwrap_or(0);
    let blocks = r
        .raw("content_blocks")
        .cloned()
        .unwrap_or_else(|| json!([]));
    let mut details: Vec<FieldError> = Vec::new();
    match blocks.as_array() {
        None => details.push(FieldError::new("content_blocks", "must be an array")),
        Some(items) => {
            let mut sum = 0i64;
            for (i, b) in items.iter().enumerate() {
                let t = b.get("type").and_then(Value::as_str);
                let d = b.get("duration_seconds").and_then(Value::as_i64);
                if !t.is_some_and(|t| BLOCK_TYPES.contains(&t)) {
                    details.push(FieldError::new(
                        format!("content_blocks[{i}].type"),
                        "must be warmup, main or cooldown",
                    ));
                }
                match d {
                    Some(d) if (0..=86_400).contains(&d) => sum += d,
                    _ => details.push(FieldError::new(
                        format!("content_blocks[{i}].duration_seconds"),
                        "must be an integer between 0 and 86400",
                    )),
                }
            }
            if details.is_empty() && !items.is_empty() && duration.is_some_and(|d| d != sum) {
                details.push(FieldError::new(
                    "content_blocks",
                    "durations must add up to target_duration_in_seconds",
                ));
            }
        }
    }
    r.extend(details);
    r.finish().map_err(ApiError::validation)?;
    Ok(workouts::WorkoutFields {
        workout_name: name.unwrap_or_default(),
        workout_description: description,
        workout_type,
        workout_sub_type: sub_type.unwrap_or_default(),
        target_duration_in_seconds: i32::try_from(duration.unwrap_or(0)).unwrap_or(0),
        target_distance_in_meters: i32::try_from(distance).unwrap_or(0),
        content_blocks: blocks,
    })
}

#[endpoint(
    tags("ai-coach"),
    summary = "The organization's workout library",
    security(("bearer" = [])),
    parameters(
        ("org_id" = Option<String>, Query, max_length = 200, description = "The organization's library (default: the caller's); only an admin may name another organization (403 otherwise)"),
    ),
    responses(
        (status_code = 200, description = "Library workouts", body = s::LibraryWorkoutListEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 500, 503)
)]
async fn list_workouts(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = app_state(depot)?;
    let org_id = library_org(req, state, claims(depot)?).await?;
    let rows = workouts::list(&state.db, &org_id).await?;
    res.render(Json(
        json!({"status": "success", "data": {"workouts": rows, "total": rows.len()}}),
    ));
    Ok(())
}

#[endpoint(
    tags("ai-coach"),
    summary = "Add a library workout",
    security(("bearer" = [])),
    parameters(
        ("org_id" = Option<String>, Query, max_length = 200, description = "The organization's library (default: the caller's); only an admin may name another organization (403 otherwise)"),
    ),
    request_body = s::LibraryWorkoutInput,
    responses(
        (status_code = 201, description = "Created", body = s::LibraryWorkoutEnvelope),
    ),
    status_codes(201, 400, 401, 403, 404, 413, 500, 503)
)]
async fn create_workout(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = app_state(depot)?.clone();
    let claims = claims(depot)?.clone();
    let org_id = library_org(req, &state, &claims).await?;
    let body = read_json(req, &state).await?;
    let fields = read_workout(&body)?;
    let row = workouts::insert(&state.db, &org_id, &claims.sub, &fields).await?;
    res.status_code(StatusCode::CREATED);
    res.render(Json(json!({"status": "success", "data": row})));
    Ok(())
}

#[endpoint(
    tags("ai-coach"),
    summary = "Show a library workout",
    security(("bearer" = [])),
    parameters(
        ("workout_id" = uuid::Uuid, Path, description = "Library workout id"),
        ("org_id" = Option<String>, Query, max_length = 200, description = "The organization's library (default: the caller's); only an admin may name another organization (403 otherwise)"),
    ),
    responses(
        (status_code = 200, description = "The workout", body = s::LibraryWorkoutEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 500, 503)
)]
async fn show_workout(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = app_state(depot)?;
    let org_id = library_org(req, state, claims(depot)?).await?;
    let row = workouts::get(&state.db, &org_id, workout_id(req)?)
        .await?
        .ok_or_else(|| ApiError::NotFound("workout not found".into()))?;
    res.render(Json(json!({"status": "success", "data": row})));
    Ok(())
}

#[endpoint(
    tags("ai-coach"),
    summary = "Replace a library workout",
    security(("bearer" = [])),
    parameters(
        ("workout_id" = uuid::Uuid, Path, description = "Library workout id"),
        ("org_id" = Option<String>, Query, max_length = 200, description = "The organization's library (default: the caller's); only an admin may name another organization (403 otherwise)"),
    ),
    request_body = s::LibraryWorkoutInput,
    responses(
        (status_code = 200, description = "The workout", body = s::LibraryWorkoutEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 413, 500, 503)
)]
async fn update_workout(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = app_state(depot)?.clone();
    let claims = claims(depot)?.clone();
    let org_id = library_org(req, &state, &claims).await?;
    let id = workout_id(req)?;
    let body = read_json(req, &state).await?;
    let fields = read_workout(&body)?;
    let row = workouts::update(&state.db, &org_id, id, &fields)
        .await?
        .ok_or_else(|| ApiError::NotFound("workout not found".into()))?;
    res.render(Json(json!({"status": "success", "data": row})));
    Ok(())
}

#[endpoint(
    tags("ai-coach"),
    summary = "Delete a library workout",
    security(("bearer" = [])),
    parameters(
        ("workout_id" = uuid::Uuid, Path, description = "Library workout id"),
        ("org_id" = Option<String>, Query, max_length = 200, description = "The organization's library (default: the caller's); only an admin may name another organization (403 otherwise)"),
    ),
    responses(
        (status_code = 204, description = "Deleted"),
    ),
    status_codes(204, 400, 401, 403, 404, 500, 503)
)]
async fn delete_workout(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = app_state(depot)?;
    let org_id = library_org(req, state, claims(depot)?).await?;
    if !workouts::delete(&state.db, &org_id, workout_id(req)?).await? {
        return Err(ApiError::NotFound("workout not found".into()));
    }
    res.status_code(StatusCode::NO_CONTENT);
    Ok(())
}

/// `GET /api/v1/ai-coach/paces?distance_m=&time_s=`: VDOT, training paces and race predictions
/// from a race result (Daniels & Gilbert).
#[endpoint(
    tags("ai-coach"),
    summary = "VDOT, training paces and race predictions from a race result",
    security(("bearer" = [])),
    parameters(
        ("distance_m" = f64, Query, minimum = 800, maximum = 100000, description = "Race distance in meters"),
        ("time_s" = f64, Query, minimum = 60, maximum = 86400, description = "Race time in seconds (the VDOT must fall within 15 to 90)"),
    ),
    responses(
        (status_code = 200, description = "Paces (Daniels & Gilbert)", body = s::PacesEnvelope),
    ),
    status_codes(200, 400, 401, 500, 503)
)]
async fn paces(req: &mut Request, res: &mut Response) -> Result<(), ApiError> {
    let mut details = Vec::new();
    let mut number = |name: &str, min: f64, max: f64| match req
        .query::<String>(name)
        .map(|s| s.parse::<f64>())
    {
        None => {
            details.push(FieldError::new(name, "is required"));
            None
        }
        Some(Ok(v)) if v.is_finite() && v >= min && v <= max => Some(v),
        Some(_) => {
            details.push(FieldError::new(
                name,
                format!("must be a number between {min} and {max}"),
            ));
            None
        }
    };
    let distance = number("distance_m", 800.0, 100_000.0);
    let time = number("time_s", 60.0, 86_400.0);
    let (Some(distance), Some(time)) = (distance, time) else {
        return Err(ApiError::validation(details));
    };
    let vdot = pacer_planner::vdot::vdot(distance, time);
    if !(15.0..=90.0).contains(&vdot) {
        return Err(ApiError::field(
            "time_s",
            &format!("gives a VDOT of {vdot:.1}, outside the tables (15 to 90)"),
        ));
    }
    let p = pacer_planner::vdot::training_paces(vdot);
    let pace = |s: f64| json!({"seconds_per_km": s.round() as i64, "per_km": pacer_planner::vdot::format_pace(s)});
    let easy_mid = (p.easy_min + p.easy_max) / 2.0;
    let mut easy = pace(easy_mid);
    easy["min_seconds_per_km"] = json!(p.easy_min.min(p.easy_max).round() as i64);
    easy["max_seconds_per_km"] = json!(p.easy_min.max(p.easy_max).round() as i64);
    easy["min_per_km"] = json!(pacer_planner::vdot::format_pace(p.easy_min.min(p.easy_max)));
    easy["max_per_km"] = json!(pacer_planner::vdot::format_pace(p.easy_min.max(p.easy_max)));
    let predict = |d: f64| pacer_planner::vdot::predict_time_s(vdot, d).round() as i64;
    res.render(Json(json!({"status": "success", "data": {
        "vdot": (vdot * 10.0).round() / 10.0,
        "paces": {
            "easy": easy,
            "marathon": pace(p.marathon),
            "threshold": pace(p.threshold),
            "interval": pace(p.interval),
            "repetition": pace(p.repetition),
        },
        "predictions": {"5k": predict(5_000.0), "10k": predict(10_000.0), "half_marathon": predict(21_097.5), "marathon": predict(42_195.0)},
    }})));
    Ok(())
}
