//! End-user routes: they act on the caller only (another user's run or instance is a 404).

use chrono::{NaiveDate, Utc};
use chrono_tz::Tz;
use pacer_common::ai_training::progress::{MAX_WINDOW_DAYS, report, window_bounds};
use pacer_common::ai_training::run::{RunStep, summarize, transition_allowed};
use pacer_common::ai_training::{
    CUSTOM_TOKEN_TTL_SECS, SESSION_TTL_SECS, new_custom_token, new_id, new_session_token,
};
use pacer_common::db::ai_training as db;
use pacer_common::validate::FieldReader;
use salvo::prelude::*;

use crate::schemas as s;
use serde_json::{Value, json};

use super::service::{self, parse_plan_body};
use super::{end_user, limit, path_id, read_optional_json};
use crate::error::ApiError;
use crate::routes::{query_param, read_json};

/// `POST /api/auth/exchange-token` (bearer only) → `{"customToken", "expiresIn"}`.
#[endpoint(
    tags("auth"),
    summary = "Exchange a bearer token for a single-use custom token",
    security(("bearer" = [])),
    responses(
        (status_code = 200, description = "A single-use token for `?customToken=`", body = s::CustomToken),
    ),
    status_codes(200, 400, 401, 403, 500, 503)
)]
pub async fn exchange_token(depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    // a custom token serves only the module's routes: refused here rather than at its use
    let (state, claims, _) = end_user(depot).await?;
    let token = new_custom_token();
    let stored = serde_json::to_value(&claims).map_err(|e| ApiError::Internal(e.into()))?;
    let (expires_at, expires_in) = token_expiry(&claims, CUSTOM_TOKEN_TTL_SECS);
    db::insert_custom_token(&state.db, &token, &claims.sub, &stored, expires_at).await?;
    res.render(Json(json!({"customToken": token, "expiresIn": expires_in})));
    Ok(())
}

/// `POST /api/auth/custom-token-session?customToken=` → `{"sessionToken", "expiresIn"}`: the
/// "full session" a play page opened from a custom token continues with (seed 003). The custom
/// token is used up; the session token serves the AI Training and AI Move routes as a bearer
/// token until it expires (1 h, never beyond the bearer token the custom token came from).
#[endpoint(
    tags("auth"),
    summary = "Open a session with a custom token",
    security(("customToken" = [])),
    responses(
        (status_code = 200, description = "A session token for `Authorization: Bearer`", body = s::SessionToken),
    ),
    status_codes(200, 400, 401, 403, 500, 503)
)]
pub async fn custom_token_session(depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    // a session serves only the module's routes: none for a client whose module is off now
    let (state, claims, _) = end_user(depot).await?;
    let token = new_session_token();
    let stored = serde_json::to_value(&claims).map_err(|e| ApiError::Internal(e.into()))?;
    let (expires_at, expires_in) = token_expiry(&claims, SESSION_TTL_SECS);
    db::insert_login_session(&state.db, &token, &claims.sub, &stored, expires_at).await?;
    res.render(Json(
        json!({"sessionToken": token, "expiresIn": expires_in}),
    ));
    Ok(())
}

/// Ahead of authentication on `custom-token-session`: without a custom token the request is
/// malformed (400), whatever else it carries, rather than unauthenticated.
#[handler]
pub async fn require_custom_token_param(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    if req
        .query::<String>("customToken")
        .is_none_or(|t| t.is_empty())
    {
        ApiError::field(
            "customToken",
            "is required: a session is opened with a custom token",
        )
        .write(req, depot, res)
        .await;
        ctrl.skip_rest();
    }
}

/// When a token issued now for `claims` expires, and in how many seconds: after `ttl_secs`, but
/// never beyond the bearer token it stands for.
fn token_expiry(
    claims: &pacer_common::auth::Claims,
    ttl_secs: i64,
) -> (chrono::DateTime<Utc>, i64) {
    let now = Utc::now();
    let ttl_end = now + chrono::Duration::seconds(ttl_secs);
    let expires_at = i64::try_from(claims.exp)
        .ok()
        .and_then(|exp| chrono::DateTime::from_timestamp(exp, 0))
        .map_or(ttl_end, |exp| exp.min(ttl_end));
    (expires_at, (expires_at - now).num_seconds().max(0))
}

/// `GET /api/ai-training/my-plan` → `{"plan": {...} | null}` (the newest plan).
#[endpoint(
    tags("ai-training"),
    summary = "The caller's latest plan",
    security(("bearer" = []), ("customToken" = [])),
    responses(
        (status_code = 200, description = "The plan, or null", body = s::MyPlan),
    ),
    status_codes(200, 400, 401, 403, 500, 503)
)]
pub async fn my_plan(depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    let (state, claims, client_id) = end_user(depot).await?;
    let plan = db::latest_plan(&state.db, &client_id, &claims.sub).await?;
    res.render(Json(
        json!({"plan": plan.as_ref().map(db::PlanRow::to_json)}),
    ));
    Ok(())
}

/// `POST /api/ai-training/my-plan/generate` → 201 `{"plan", "routineInstances"}`.
#[endpoint(
    tags("ai-training"),
    summary = "Generate a plan (replaces the active one)",
    security(("bearer" = []), ("customToken" = [])),
    request_body = Option<s::GeneratePlanInput>,
    responses(
        (status_code = 201, description = "The plan and its queued routine instances", body = s::PlanWithInstances),
    ),
    status_codes(201, 400, 401, 403, 409, 413, 500, 503)
)]
pub async fn generate(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, claims, client_id) = end_user(depot).await?;
    let body = read_optional_json(req, &state).await?;
    let fields = parse_plan_body(&body)?;
    let (plan, instances) =
        service::generate_plan(&state, &client_id, &claims.sub, &fields, None).await?;
    let list: Vec<Value> = instances.iter().map(db::InstanceRow::to_json).collect();
    res.status_code(StatusCode::CREATED);
    res.render(Json(
        json!({"plan": plan.to_json(), "routineInstances": list}),
    ));
    Ok(())
}

/// One instance per template (the queue's default view): the one in progress if the user has
/// started one (a run may start any queued instance, not only the first of its template),
/// else the first queued.
fn dedup_by_template(instances: Vec<db::InstanceRow>) -> Vec<db::InstanceRow> {
    let started: std::collections::HashSet<String> = instances
        .iter()
        .filter(|i| i.status == "in-progress")
        .map(|i| i.routine_template_id.clone())
        .collect();
    let mut seen = std::collections::HashSet::new();
    instances
        .into_iter()
        .filter(|i| {
            (i.status == "in-progress" || !started.contains(&i.routine_template_id))
                && seen.insert(i.routine_template_id.clone())
        })
        .collect()
}

/// `GET /api/ai-training/my-routine-queue?allowDuplicateRoutineTemplates=` →
/// `{"planId", "routineInstances"}` (queued and in-progress, head first).
#[endpoint(
    tags("ai-training"),
    summary = "The routine queue of the active plan",
    security(("bearer" = []), ("customToken" = [])),
    parameters(
        ("allowDuplicateRoutineTemplates" = Option<bool>, Query, description = "Show every instance (default: later instances of a listed template are hidden)"),
    ),
    responses(
        (status_code = 200, description = "Queued and in-progress instances, head first", body = s::RoutineQueue),
    ),
    status_codes(200, 400, 401, 403, 500, 503)
)]
pub async fn routine_queue(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, claims, client_id) = end_user(depot).await?;
    let allow_duplicates =
        query_param::<bool>(req, "allowDuplicateRoutineTemplates")?.unwrap_or(false);
    // the plan id comes from the plan itself: a plan whose instances are all done is still active
    let plan = db::active_plan(&state.db, &client_id, &claims.sub).await?;
    let mut queue = match &plan {
        Some(p) => db::plan_queue(&state.db, &p.id).await?,
        None => Vec::new(),
    };
    if !allow_duplicates {
        queue = dedup_by_template(queue);
    }
    let plan_id = plan.map(|p| p.id);
    let list: Vec<Value> = queue.iter().map(db::InstanceRow::to_json).collect();
    res.render(Json(json!({"planId": plan_id, "routineInstances": list})));
    Ok(())
}

/// `POST /api/ai-training/routine-runs` `{"routineInstanceId", "startedFrom"}` → 201
/// `{"routineRun"}`. The instance must be queued (409 otherwise) and becomes in-progress.
#[endpoint(
    tags("ai-training"),
    summary = "Start a run of a queued routine instance",
    security(("bearer" = []), ("customToken" = [])),
    request_body = s::CreateRun,
    responses(
        (status_code = 201, description = "The run", body = s::RoutineRunBody),
    ),
    status_codes(201, 400, 401, 403, 404, 409, 413, 500, 503)
)]
pub async fn create_run(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, claims, client_id) = end_user(depot).await?;
    let body = read_json(req, &state).await?;
    let mut r = FieldReader::new(&body).map_err(ApiError::validation)?;
    let instance_id = r.required_str("routineInstanceId", 1, 200);
    let started_from = r.required_str("startedFrom", 1, 100);
    r.finish().map_err(ApiError::validation)?;
    let (Some(instance_id), Some(started_from)) = (instance_id, started_from) else {
        return Err(ApiError::field("routineInstanceId", "is required"));
    };
    let mut tx = state.db.begin().await?;
    // the user lock first, as plan replacement takes it: the plan cannot be replaced (and the
    // instance cancelled) between this check and the commit
    db::lock_user(&mut tx, &client_id, &claims.sub).await?;
    let instance = db::lock_instance(&mut tx, &client_id, &claims.sub, &instance_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("routine instance {instance_id} not found")))?;
    if instance.status != "queued" {
        return Err(ApiError::Conflict(
            "instance_not_queued",
            format!(
                "routine instance {instance_id} is {}, only a queued instance can be started",
                instance.status
            ),
        ));
    }
    let active = db::active_plan(&mut *tx, &client_id, &claims.sub).await?;
    if active.as_ref().map(|p| p.id.as_str()) != Some(instance.plan_id.as_str()) {
        return Err(ApiError::Conflict(
            "instance_not_queued",
            format!(
                "routine instance {instance_id} belongs to plan {}, which is no longer active",
                instance.plan_id
            ),
        ));
    }
    let steps: Vec<RunStep> = instance
        .steps
        .0
        .iter()
        .enumerate()
        .map(|(i, s)| RunStep::pending(i as i64, s))
        .collect();
    let run_id = new_id("run");
    let run = db::insert_run(
        &mut tx,
        &db::NewRun {
            id: &run_id,
            instance: &instance,
            started_from: &started_from,
            steps: &steps,
            summary: summarize(&steps),
        },
    )
    .await?;
    db::set_instance_status(&mut tx, &instance.id, "in-progress").await?;
    tx.commit().await?;
    res.status_code(StatusCode::CREATED);
    res.render(Json(json!({"routineRun": run.to_json()})));
    Ok(())
}

/// `GET /api/ai-training/routine-runs?limit=` → `{"routineRuns"}` (newest first, no steps).
#[endpoint(
    tags("ai-training"),
    summary = "The caller's runs, newest first (without steps)",
    security(("bearer" = []), ("customToken" = [])),
    parameters(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "At most this many (default 50)"),
    ),
    responses(
        (status_code = 200, description = "Runs", body = s::RoutineRunList),
    ),
    status_codes(200, 400, 401, 403, 500, 503)
)]
pub async fn list_runs(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, claims, client_id) = end_user(depot).await?;
    let limit = limit(req, 50)?;
    let runs = db::list_runs(&state.db, &client_id, Some(&claims.sub), limit).await?;
    let list: Vec<Value> = runs.iter().map(db::RunRow::to_brief_json).collect();
    res.render(Json(json!({"routineRuns": list})));
    Ok(())
}

/// `GET /api/ai-training/routine-runs/{routineRunId}` → `{"routineRun"}`.
#[endpoint(
    tags("ai-training"),
    summary = "One of the caller's runs, with its steps",
    security(("bearer" = []), ("customToken" = [])),
    parameters(
        ("routineRunId" = String, Path, min_length = 1, max_length = 200, description = "Routine run id"),
    ),
    responses(
        (status_code = 200, description = "The run", body = s::RoutineRunBody),
    ),
    status_codes(200, 400, 401, 403, 404, 500, 503)
)]
pub async fn show_run(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, claims, client_id) = end_user(depot).await?;
    let id = path_id(req, "routineRunId")?;
    let run = db::get_run(&state.db, &client_id, &claims.sub, &id)
        .await?
        .ok_or_else(|| run_not_found(&id))?;
    res.render(Json(json!({"routineRun": run.to_json()})));
    Ok(())
}

fn run_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("routine run {id} not found"))
}

/// `PATCH /api/ai-training/routine-runs/{routineRunId}` `{"status"}` → `{"routineRun",
/// "nextRoutineInstance"}`. Completing completes the instance (the queue advances); abandoning
/// puts the instance back in the queue. Other transitions are 409 `invalid_transition`.
#[endpoint(
    tags("ai-training"),
    summary = "Change a run's status",
    security(("bearer" = []), ("customToken" = [])),
    parameters(
        ("routineRunId" = String, Path, min_length = 1, max_length = 200, description = "Routine run id"),
    ),
    request_body = s::PatchRun,
    responses(
        (status_code = 200, description = "The run and the new head of the queue", body = s::PatchRunResult),
    ),
    status_codes(200, 400, 401, 403, 404, 409, 413, 500, 503)
)]
pub async fn patch_run(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, claims, client_id) = end_user(depot).await?;
    let id = path_id(req, "routineRunId")?;
    let body = read_json(req, &state).await?;
    let mut r = FieldReader::new(&body).map_err(ApiError::validation)?;
    let status = r.required_enum("status", &["in-progress", "completed", "abandoned"]);
    r.finish().map_err(ApiError::validation)?;
    let Some(status) = status else {
        return Err(ApiError::field("status", "is required"));
    };
    let mut tx = state.db.begin().await?;
    // the user lock first, as create_run and plan replacement take it (one lock order)
    db::lock_user(&mut tx, &client_id, &claims.sub).await?;
    let run = db::lock_run(&mut tx, &client_id, &claims.sub, &id)
        .await?
        .ok_or_else(|| run_not_found(&id))?;
    if !transition_allowed(&run.status, &status) {
        return Err(ApiError::Conflict(
            "invalid_transition",
            format!("a routine run cannot go from {} to {status}", run.status),
        ));
    }
    let run = db::save_run(
        &mut tx,
        &run.id,
        &status,
        &run.steps.0,
        &summarize(&run.steps.0),
    )
    .await?;
    // an instance cancelled by a plan replacement stays cancelled (release_instance skips it)
    match status.as_str() {
        "completed" => db::release_instance(&mut tx, &run.routine_instance_id, "completed").await?,
        "abandoned" => db::release_instance(&mut tx, &run.routine_instance_id, "queued").await?,
        _ => {}
    }
    tx.commit().await?;
    let next = db::queue(&state.db, &client_id, &claims.sub).await?;
    res.render(Json(json!({
        "routineRun": run.to_json(),
        "nextRoutineInstance": next.first().map(db::InstanceRow::to_json),
    })));
    Ok(())
}

/// `POST /api/ai-training/routine-runs/{routineRunId}/sync` `{"aiMoveSessionId"?,
/// "sequenceIndex"?, "guidedComplete"?, "skipped"?}` → `{"success": true, "routineRun"}`.
///
/// With a session id or a step index, that step is synced: `skipped` skips it; otherwise its
/// latest (or the named) AI Move session is folded in, and `guidedComplete` completes a guided
/// step. With neither, every step takes its latest session. A `created` run becomes
/// `in-progress`; a finished run is 409.
#[endpoint(
    tags("ai-training"),
    summary = "Fold AI Move session results into a run",
    security(("bearer" = []), ("customToken" = [])),
    parameters(
        ("routineRunId" = String, Path, min_length = 1, max_length = 200, description = "Routine run id"),
    ),
    request_body = Option<s::SyncRun>,
    responses(
        (status_code = 200, description = "The run with its recomputed summary", body = s::SyncRunResult),
    ),
    status_codes(200, 400, 401, 403, 404, 409, 413, 500, 503)
)]
pub async fn sync_run(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, claims, client_id) = end_user(depot).await?;
    let id = path_id(req, "routineRunId")?;
    let body = read_optional_json(req, &state).await?;
    let mut r = FieldReader::new(&body).map_err(ApiError::validation)?;
    let session_id = r.opt_str("aiMoveSessionId", 200);
    let index = r.opt_int("sequenceIndex", 0, 999);
    let guided = r.opt_bool("guidedComplete").unwrap_or(false);
    let skipped = r.opt_bool("skipped").unwrap_or(false);
    if guided && skipped {
        r.error("skipped", "cannot be combined with guidedComplete");
    }
    let targeted = session_id.is_some() || index.is_some();
    if guided && !targeted {
        r.error("guidedComplete", "needs sequenceIndex or aiMoveSessionId");
    }
    if skipped && !targeted {
        r.error("skipped", "needs sequenceIndex or aiMoveSessionId");
    }
    r.finish().map_err(ApiError::validation)?;

    let mut tx = state.db.begin().await?;
    let run = db::lock_run(&mut tx, &client_id, &claims.sub, &id)
        .await?
        .ok_or_else(|| run_not_found(&id))?;
    if !matches!(run.status.as_str(), "created" | "in-progress") {
        return Err(ApiError::Conflict(
            "run_finished",
            format!("routine run {id} is {}", run.status),
        ));
    }
    let mut steps = run.steps.0.clone();
    let named = match &session_id {
        Some(sid) => {
            let s = db::get_session(&mut *tx, &client_id, &claims.sub, sid)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("AI Move session {sid} not found")))?;
            if s.routine_run_id.as_deref() != Some(run.id.as_str()) {
                return Err(ApiError::field(
                    "aiMoveSessionId",
                    "belongs to another routine run",
                ));
            }
            if index.is_some_and(|i| Some(i) != s.sequence_index.map(i64::from)) {
                return Err(ApiError::field(
                    "sequenceIndex",
                    "does not match the AI Move session's sequenceIndex",
                ));
            }
            Some(s)
        }
        None => None,
    };
    let target = index.or_else(|| named.as_ref().and_then(|s| s.sequence_index.map(i64::from)));
    let latest = db::latest_sessions(&mut *tx, &run.id).await?;
    match target {
        Some(i) => {
            let count = steps.len();
            let step = usize::try_from(i)
                .ok()
                .and_then(|i| steps.get_mut(i))
                .ok_or_else(|| {
                    ApiError::field(
                        "sequenceIndex",
                        &format!("must be less than the run's {count} steps"),
                    )
                })?;
            let session = named.or_else(|| {
                latest
                    .into_iter()
                    .find(|s| s.sequence_index.map(i64::from) == Some(i))
            });
            if skipped {
                step.skip();
            } else {
                if let Some(s) = &session {
                    step.fold_session(&s.result());
                }
                if guided {
                    if !step.guided {
                        return Err(ApiError::field(
                            "guidedComplete",
                            &format!("step {i} is not a guided step"),
                        ));
                    }
                    step.complete_guided();
                } else if session.is_none() {
                    return Err(ApiError::Conflict(
                        "no_session_result",
                        format!("no AI Move session result for step {i} of routine run {id} yet"),
                    ));
                }
            }
        }
        None => {
            for s in &latest {
                let slot = s
                    .sequence_index
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| steps.get_mut(i));
                if let Some(step) = slot {
                    step.fold_session(&s.result());
                }
            }
        }
    }
    let status = if run.status == "created" {
        "in-progress"
    } else {
        run.status.as_str()
    };
    let saved = db::save_run(&mut tx, &run.id, status, &steps, &summarize(&steps)).await?;
    tx.commit().await?;
    res.render(Json(
        json!({"success": true, "routineRun": saved.to_json()}),
    ));
    Ok(())
}

/// `POST /api/ai-training/routine-instances/{routineInstanceId}/defer` → `{"success": true,
/// "routineInstance", "deferLimit", "remainingDefers"}`. Moves a queued instance behind every
/// other one; 409 `defer_limit_reached` after the client's limit, 409 `instance_not_queued`.
#[endpoint(
    tags("ai-training"),
    summary = "Move a queued routine instance to the back of the queue",
    security(("bearer" = []), ("customToken" = [])),
    parameters(
        ("routineInstanceId" = String, Path, min_length = 1, max_length = 200, description = "Routine instance id"),
    ),
    responses(
        (status_code = 200, description = "The deferred instance", body = s::DeferResult),
    ),
    status_codes(200, 400, 401, 403, 404, 409, 500, 503)
)]
pub async fn defer(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, claims, client_id) = end_user(depot).await?;
    let id = path_id(req, "routineInstanceId")?;
    let limit = db::defer_limit(&state.db, &client_id).await?;
    let mut tx = state.db.begin().await?;
    // two defers at once would both take the same "behind every other" index
    db::lock_user(&mut tx, &client_id, &claims.sub).await?;
    let instance = db::lock_instance(&mut tx, &client_id, &claims.sub, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("routine instance {id} not found")))?;
    if instance.status != "queued" {
        return Err(ApiError::Conflict(
            "instance_not_queued",
            format!(
                "routine instance {id} is {}, only a queued instance can be deferred",
                instance.status
            ),
        ));
    }
    if instance.defer_count >= limit {
        return Err(ApiError::Conflict(
            "defer_limit_reached",
            format!("routine instance {id} has already been deferred {limit} times (the limit)"),
        ));
    }
    let deferred = db::defer_instance(&mut tx, &instance).await?;
    tx.commit().await?;
    res.render(Json(json!({
        "success": true,
        "routineInstance": deferred.to_json(),
        "deferLimit": limit,
        "remainingDefers": (limit - deferred.defer_count).max(0),
    })));
    Ok(())
}

/// `GET /api/ai-training/progress-report?days=7` or `?from=YYYY-MM-DD&to=YYYY-MM-DD`
/// (optional `timezone`, default the user's) → `{"adherence", "totalRuns", "completedRuns",
/// "completionRate", "expectedRuns", "from", "to", "timezone", "series"}`.
#[endpoint(
    tags("ai-training"),
    summary = "Adherence and completion over a window of days",
    security(("bearer" = []), ("customToken" = [])),
    parameters(
        ("days" = Option<i64>, Query, minimum = 1, maximum = 366, description = "Window ending today (default 7); not with from/to"),
        ("from" = Option<chrono::NaiveDate>, Query, description = "Window start (with `to`, at most 366 days)"),
        ("to" = Option<chrono::NaiveDate>, Query, description = "Window end, inclusive"),
        ("timezone" = Option<String>, Query, max_length = 64, description = "IANA time zone (default: the user's, else UTC)"),
    ),
    responses(
        (status_code = 200, description = "The report, one series point per day", body = s::ProgressReport),
    ),
    status_codes(200, 400, 401, 403, 500, 503)
)]
pub async fn progress_report(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, claims, client_id) = end_user(depot).await?;
    let tz_param = req.query::<String>("timezone").filter(|s| !s.is_empty());
    let tz: Tz = match tz_param {
        Some(name) => name.parse().map_err(|_| {
            ApiError::field("timezone", "must be an IANA time zone such as Asia/Taipei")
        })?,
        None => pacer_common::db::users::get_user(&state.db, &claims.sub)
            .await?
            .and_then(|u| u.timezone.parse().ok())
            .unwrap_or(Tz::UTC),
    };
    let (from, to) = window(req, tz)?;
    let (start, end) = window_bounds(tz, from, to);
    let runs = db::runs_between(&state.db, &client_id, &claims.sub, start, end).await?;
    let frequency = db::active_plan(&state.db, &client_id, &claims.sub)
        .await?
        .map(|p| i64::from(p.frequency));
    let report = report(&runs, tz, from, to, frequency);
    let mut body = serde_json::to_value(&report).map_err(|e| ApiError::Internal(e.into()))?;
    body["from"] = json!(from);
    body["to"] = json!(to);
    body["timezone"] = json!(tz.name());
    res.render(Json(body));
    Ok(())
}

/// The report window: `from`+`to` (inclusive, at most 366 days) or the last `days` days
/// (1..=366, default 7) ending today in `tz`. Every invalid parameter is listed.
fn window(req: &Request, tz: Tz) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let mut errors = Vec::new();
    let date = |name: &str, errors: &mut Vec<pacer_common::FieldError>| {
        let raw = req.query::<String>(name).filter(|s| !s.is_empty())?;
        match pacer_common::validate::iso_date(&raw) {
            Some(d) => Some(d),
            None => {
                errors.push(pacer_common::FieldError::new(
                    name,
                    pacer_common::validate::ISO_DATE,
                ));
                None
            }
        }
    };
    let from = date("from", &mut errors);
    let to = date("to", &mut errors);
    let days = match query_param::<i64>(req, "days") {
        Ok(Some(d)) if (1..=MAX_WINDOW_DAYS).contains(&d) => Some(d),
        Ok(Some(_)) | Err(_) => {
            errors.push(pacer_common::FieldError::new(
                "days",
                format!("must be an integer between 1 and {MAX_WINDOW_DAYS}"),
            ));
            None
        }
        Ok(None) => None,
    };
    let has_range = req.query::<String>("from").is_some() || req.query::<String>("to").is_some();
    if has_range && req.query::<String>("days").is_some() {
        errors.push(pacer_common::FieldError::new(
            "days",
            "cannot be combined with from/to",
        ));
    }
    if errors.is_empty() {
        match (from, to) {
            (Some(f), Some(t)) if t < f => {
                errors.push(pacer_common::FieldError::new(
                    "to",
                    "must not be before from",
                ));
            }
            (Some(f), Some(t)) if (t - f).num_days() + 1 > MAX_WINDOW_DAYS => {
                errors.push(pacer_common::FieldError::new(
                    "to",
                    format!("the window must be at most {MAX_WINDOW_DAYS} days"),
                ));
            }
            (Some(f), Some(t)) => return Ok((f, t)),
            (Some(_), None) => {
                errors.push(pacer_common::FieldError::new("to", "is required with from"))
            }
            (None, Some(_)) => {
                errors.push(pacer_common::FieldError::new("from", "is required with to"))
            }
            (None, None) => {
                let today = Utc::now().with_timezone(&tz).date_naive();
                let days = days.unwrap_or(7);
                return Ok((today - chrono::Duration::days(days - 1), today));
            }
        }
    }
    Err(ApiError::validation(errors))
}

/// `POST /api/ai-training/assessments` `{"type", "riskTier"?, "data"?}` → 201
/// `{"assessment", "assessmentSnapshot"}`.
#[endpoint(
    tags("ai-training"),
    summary = "Record an assessment",
    security(("bearer" = []), ("customToken" = [])),
    request_body = s::AssessmentInput,
    responses(
        (status_code = 201, description = "The assessment and the new snapshot", body = s::AssessmentRecorded),
    ),
    status_codes(201, 400, 401, 403, 413, 500, 503)
)]
pub async fn record_assessment(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, claims, client_id) = end_user(depot).await?;
    let body = read_json(req, &state).await?;
    let out =
        service::record_assessment(&state, &client_id, &claims.sub, &claims.sub, &body).await?;
    res.status_code(StatusCode::CREATED);
    res.render(Json(out));
    Ok(())
}

/// `GET /api/ai-training/assessments?limit=` → `{"assessments", "assessmentSnapshot"}`.
#[endpoint(
    tags("ai-training"),
    summary = "The caller's assessments, newest first",
    security(("bearer" = []), ("customToken" = [])),
    parameters(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "At most this many (default 100)"),
    ),
    responses(
        (status_code = 200, description = "Assessments and the snapshot", body = s::AssessmentList),
    ),
    status_codes(200, 400, 401, 403, 500, 503)
)]
pub async fn list_assessments(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, claims, client_id) = end_user(depot).await?;
    let limit = limit(req, 100)?;
    let out = service::assessments(&state, &client_id, &claims.sub, limit).await?;
    res.render(Json(out));
    Ok(())
}

/// `POST /api/ai-move/sessions` `{"exerciseId"?, "metadata": {"routineRunId", "sequenceIndex",
/// ...}, "result": {"completed", "durationSeconds", "caloriesBurned", "repsCompleted",
/// "score"}}` → 201 `{"aiMoveSession"}`. The minimal surface through which AI Move reports a
/// child session; the run must be the caller's (404) and the index one of its steps (400).
#[endpoint(
    tags("ai-move"),
    summary = "Report an AI Move session result",
    security(("bearer" = []), ("customToken" = [])),
    request_body = s::AiMoveSessionInput,
    responses(
        (status_code = 201, description = "The stored session", body = s::AiMoveSessionBody),
    ),
    status_codes(201, 400, 401, 403, 404, 413, 500, 503)
)]
pub async fn record_ai_move_session(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, claims, client_id) = end_user(depot).await?;
    let body = read_json(req, &state).await?;
    let mut r = FieldReader::new(&body).map_err(ApiError::validation)?;
    let exercise_id = r.opt_str("exerciseId", 100);
    let (mut run_id, mut index) = (None, None);
    if r.raw("metadata").is_some() {
        match r.child("metadata") {
            Ok(mut m) => {
                run_id = m.opt_str("routineRunId", 200);
                index = m.opt_int("sequenceIndex", 0, 999);
                m.opt_str("planId", 200);
                m.opt_str("routineInstanceId", 200);
                if run_id.is_some() && index.is_none() && m.raw("sequenceIndex").is_none() {
                    m.error("sequenceIndex", "is required with routineRunId");
                }
                if let Err(e) = m.finish() {
                    r.extend(e);
                }
            }
            Err(e) => r.extend(e),
        }
    }
    let mut result = (false, 0, 0.0, None, None);
    match r.child("result") {
        Ok(mut x) => {
            if x.raw("completed").is_none() {
                x.error("completed", "is required");
            }
            result = (
                x.opt_bool("completed").unwrap_or(false),
                x.opt_int("durationSeconds", 0, 86_400).unwrap_or(0),
                x.opt_number("caloriesBurned", 0.0, 100_000.0)
                    .unwrap_or(0.0),
                x.opt_int("repsCompleted", 0, 100_000),
                x.opt_number("score", 0.0, 100.0),
            );
            if let Err(e) = x.finish() {
                r.extend(e);
            }
        }
        Err(e) => r.extend(e),
    }
    r.finish().map_err(ApiError::validation)?;
    let mut exercise_id = exercise_id;
    if let Some(rid) = &run_id {
        let run = db::get_run(&state.db, &client_id, &claims.sub, rid)
            .await?
            .ok_or_else(|| run_not_found(rid))?;
        let step = index
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| run.steps.0.get(i))
            .ok_or_else(|| {
                ApiError::field(
                    "metadata.sequenceIndex",
                    &format!("must be less than the run's {} steps", run.steps.0.len()),
                )
            })?;
        exercise_id = exercise_id.or_else(|| Some(step.exercise_id.clone()));
    }
    let metadata = body
        .get("metadata")
        .filter(|m| m.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let id = new_id("ams");
    let (completed, duration, calories, reps, score) = result;
    let session = db::insert_session(
        &state.db,
        &db::NewSession {
            id: &id,
            client_id: &client_id,
            user_id: &claims.sub,
            routine_run_id: run_id.as_deref(),
            sequence_index: index,
            exercise_id: exercise_id.as_deref(),
            completed,
            duration_seconds: duration,
            calories_burned: calories,
            reps_completed: reps,
            score,
            metadata: &metadata,
        },
    )
    .await?;
    res.status_code(StatusCode::CREATED);
    res.render(Json(json!({"aiMoveSession": session.to_json()})));
    Ok(())
}
