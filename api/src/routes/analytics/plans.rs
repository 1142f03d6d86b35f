//! Race goals and plan instances per athlete (what `current_goals` / `current_plans` show):
//! list, create and update under `/api/v1/athletes/{user_id}/goals|plans`. The athlete itself,
//! a coach of its organization, or an admin.

use chrono::{Datelike, NaiveDate, Weekday};
use pacer_common::auth::Claims;
use pacer_common::db::analytics::{self as db, GoalIn, GoalRow, PlanIn, PlanRow, SessionIn};
use pacer_common::db::users::UserRow;
use pacer_common::jobs::{JobKind, JobState};
use pacer_common::validate::FieldReader;
use salvo::http::StatusCode;
use salvo::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

use super::common::{invalidate_athlete, ok, target_user, user_tz};
use crate::auth::{app_state, claims};
use crate::error::ApiError;
use crate::routes::jobs::visible_job;
use crate::routes::read_json;
use crate::schemas as s;
use crate::state::AppState;

pub const PLAN_STATUSES: [&str; 4] = ["scheduled", "active", "completed", "cancelled"];

fn path(req: &Request, name: &str) -> Result<String, ApiError> {
    req.param::<String>(name)
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .ok_or_else(|| ApiError::field(name, "must be 1 to 200 characters"))
}

async fn athlete(req: &Request, depot: &Depot) -> Result<(AppState, UserRow), ApiError> {
    let state = app_state(depot)?.clone();
    let claims = claims(depot)?.clone();
    let user = target_user(&state, &claims, Some(path(req, "user_id")?)).await?;
    Ok((state, user))
}

pub fn goal_view(g: &GoalRow) -> Value {
    json!({
        "goal_id": g.id,
        "race_name": g.race_name,
        "race_date": g.race_date,
        "goal_time": g.goal_time,
        "distance": g.distance,
    })
}

pub fn plan_view(p: &PlanRow, today: chrono::NaiveDate) -> Value {
    json!({
        "plan_instance_id": p.id,
        "name": p.name,
        "status": p.status,
        "start_date": p.start_date,
        "current_week": p.current_week(today),
        "total_weeks": p.total_weeks,
    })
}

fn today(user: &UserRow) -> chrono::NaiveDate {
    chrono::Utc::now()
        .with_timezone(&user_tz(user))
        .date_naive()
}

/// `H:MM:SS` or `M:SS`.
fn valid_time(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()))
        && parts[1..]
            .iter()
            .all(|p| p.len() == 2 && p.parse::<u8>().is_ok_and(|n| n < 60))
}

fn read_goal(r: &mut FieldReader<'_>, create: bool) -> GoalIn {
    let race_name = if create {
        r.required_str("race_name", 1, 200)
    } else {
        r.opt_str("race_name", 200)
    };
    if !create && race_name.as_deref().is_some_and(|s| s.trim().is_empty()) {
        r.error("race_name", "must not be empty");
    }
    if create && r.raw("race_date").is_none() {
        r.error("race_date", "is required (YYYY-MM-DD)");
    }
    let race_date = r.opt_date("race_date");
    let goal_time = r.opt_str("goal_time", 10);
    if goal_time.as_deref().is_some_and(|t| !valid_time(t)) {
        r.error("goal_time", "must be H:MM:SS or M:SS");
    }
    let distance = r.opt_number("distance", 1.0, 1_000_000.0);
    GoalIn {
        race_name,
        race_date,
        goal_time,
        distance,
    }
}

fn read_plan(r: &mut FieldReader<'_>, create: bool) -> PlanIn {
    let name = if create {
        r.required_str("name", 1, 200)
    } else {
        r.opt_str("name", 200)
    };
    let status = r.opt_enum("status", &PLAN_STATUSES);
    if create && r.raw("start_date").is_none() {
        r.error("start_date", "is required (YYYY-MM-DD)");
    }
    let start_date = r.opt_date("start_date");
    let total_weeks = if create {
        r.required_int("total_weeks", 1, 104)
    } else {
        r.opt_int("total_weeks", 1, 104)
    };
    PlanIn {
        name,
        status,
        start_date,
        total_weeks: total_weeks.and_then(|n| i32::try_from(n).ok()),
        sessions: read_sessions(r),
    }
}

/// Up to 2 sessions a day for the longest plan (104 weeks).
const MAX_SESSIONS: usize = 1_456;

/// `sessions`: a list of `{date, target_duration_in_seconds, target_distance_in_meters?,
/// workout_name?}`; other fields are ignored, so a generated plan's `content` is accepted as it
/// is. `null` or absent: the plan's sessions stay as they are.
fn read_sessions(r: &mut FieldReader<'_>) -> Option<Vec<SessionIn>> {
    let raw = r.raw("sessions")?;
    let Some(items) = raw.as_array() else {
        r.error("sessions", "must be a list of sessions");
        return None;
    };
    if items.len() > MAX_SESSIONS {
        r.error("sessions", format!("at most {MAX_SESSIONS} sessions"));
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let mut s = match FieldReader::nested(item, &format!("sessions[{i}].")) {
            Ok(s) => s,
            Err(e) => {
                r.extend(e);
                continue;
            }
        };
        if s.raw("date").is_none() {
            s.error("date", "is required (YYYY-MM-DD)");
        }
        let day = s.opt_date("date");
        let duration = s.required_int("target_duration_in_seconds", 1, 86_400);
        let distance = s.opt_number("target_distance_in_meters", 0.0, 1_000_000.0);
        let name = s.opt_str("workout_name", 200);
        match (
            s.finish(),
            day,
            duration.and_then(|d| i32::try_from(d).ok()),
        ) {
            (Ok(()), Some(day), Some(duration_s)) => out.push(SessionIn {
                day,
                duration_s,
                distance_m: distance,
                name,
            }),
            (Err(e), _, _) => r.extend(e),
            _ => {}
        }
    }
    Some(out)
}

/// A plan as its own routes show it: with its sessions.
fn plan_with_sessions(p: &PlanRow, today: chrono::NaiveDate, sessions: &[SessionIn]) -> Value {
    let mut v = plan_view(p, today);
    v["sessions"] = json!(sessions);
    v
}

/// `from_job`: a job id whose generated plan gives the sessions (instead of `sessions`).
fn read_from_job(r: &mut FieldReader<'_>) -> Option<Uuid> {
    let raw = r.raw("from_job")?;
    let id = raw.as_str().and_then(|s| Uuid::parse_str(s).ok());
    if id.is_none() {
        r.error("from_job", "must be a job id");
    }
    if r.raw("sessions").is_some() {
        r.error("from_job", "give either sessions or from_job, not both");
    }
    id
}

/// The workouts of a `generate_plan` job the caller may see (404 otherwise) that succeeded.
async fn generated_workouts(
    state: &AppState,
    claims: &Claims,
    id: Uuid,
) -> Result<Vec<Value>, ApiError> {
    let job = visible_job(state, claims, id).await?;
    if job.kind != JobKind::GeneratePlan.as_str() {
        return Err(ApiError::field("from_job", "must be a generate_plan job"));
    }
    if job.state != JobState::Succeeded.as_str() {
        return Err(ApiError::Conflict(
            "job_not_succeeded",
            format!(
                "job {id} is {}: only a finished plan has sessions",
                job.state
            ),
        ));
    }
    Ok(job
        .result
        .and_then(|r| r.0.get("content").and_then(Value::as_array).cloned())
        .unwrap_or_default())
}

/// A generated plan's workouts as sessions. A workout without a `date` (the plan was generated
/// without `start_date`) falls on its `day` of its `week`, weeks counted from the plan
/// instance's start (as the planner counts them from its `start_date`).
fn sessions_from_workouts(workouts: &[Value], start: NaiveDate) -> Vec<SessionIn> {
    workouts
        .iter()
        .filter_map(|w| {
            let day = w["date"]
                .as_str()
                .and_then(pacer_common::validate::iso_date)
                .or_else(|| {
                    let week = w["week"].as_u64().filter(|n| *n >= 1)?;
                    let weekday: Weekday = w["day"].as_str()?.parse().ok()?;
                    let into_week = (7 + weekday.num_days_from_monday()
                        - start.weekday().num_days_from_monday())
                        % 7;
                    let offset = (week - 1)
                        .checked_mul(7)?
                        .checked_add(u64::from(into_week))?;
                    start.checked_add_days(chrono::Days::new(offset))
                })?;
            let duration_s = w["target_duration_in_seconds"]
                .as_i64()
                .filter(|d| (1..=86_400).contains(d))
                .and_then(|d| i32::try_from(d).ok())?;
            Some(SessionIn {
                day,
                duration_s,
                distance_m: w["target_distance_in_meters"].as_f64(),
                name: w["workout_name"]
                    .as_str()
                    .map(|n| n.chars().take(200).collect()),
            })
        })
        .collect()
}

/// Writes the plan (`write`), its sessions when sent (or generated: `workouts`), and the
/// athlete's debounced recompute (its adherence flags read the plans) in one transaction.
async fn save_plan(
    state: &AppState,
    user: &UserRow,
    p: &PlanIn,
    workouts: Option<&[Value]>,
    id: Option<&str>,
) -> Result<(PlanRow, Vec<SessionIn>), ApiError> {
    let mut tx = state.db.begin().await?;
    let row = match id {
        None => db::create_plan(&mut *tx, &user.id, p).await?,
        Some(id) => db::update_plan(&mut *tx, &user.id, id, p)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("plan instance {id} not found")))?,
    };
    let generated = workouts.map(|w| sessions_from_workouts(w, row.start_date));
    if let Some(sessions) = p.sessions.as_ref().or(generated.as_ref()) {
        db::replace_sessions(&mut tx, &row.id, &user.id, sessions).await?;
    }
    db::enqueue_recompute(
        &mut *tx,
        &user.id,
        user.org_id.as_deref(),
        state.config.common.max_attempts,
    )
    .await?;
    let sessions = db::sessions_of(&mut *tx, std::slice::from_ref(&row.id))
        .await?
        .remove(&row.id)
        .unwrap_or_default();
    tx.commit().await?;
    Ok((row, sessions))
}

#[endpoint(
    tags("analytics"),
    summary = "List an athlete's race goals",
    security(("bearer" = [])),
    parameters(
        ("user_id" = String, Path, min_length = 1, max_length = 200, description = "The athlete (the caller, a coach of its organization, or an admin)"),
    ),
    responses(
        (status_code = 200, description = "The goals", body = s::RaceGoalListEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 500, 503)
)]
pub async fn list_goals(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, user) = athlete(req, depot).await?;
    let goals = db::list_goals(&state.db, std::slice::from_ref(&user.id)).await?;
    ok(
        res,
        json!({"goals": goals.iter().map(goal_view).collect::<Vec<_>>()}),
    );
    Ok(())
}

#[endpoint(
    tags("analytics"),
    summary = "Add a race goal",
    security(("bearer" = [])),
    parameters(
        ("user_id" = String, Path, min_length = 1, max_length = 200, description = "The athlete (the caller, a coach of its organization, or an admin)"),
    ),
    request_body = s::RaceGoalCreate,
    responses(
        (status_code = 201, description = "Created", body = s::RaceGoalEnvelope),
    ),
    status_codes(201, 400, 401, 403, 404, 413, 500, 503)
)]
pub async fn create_goal(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, user) = athlete(req, depot).await?;
    let body = read_json(req, &state).await?;
    let mut r = FieldReader::new(&body).map_err(ApiError::validation)?;
    let g = read_goal(&mut r, true);
    r.finish().map_err(ApiError::validation)?;
    let row = db::create_goal(&state.db, &user.id, &g).await?;
    invalidate_athlete(&state, &user).await;
    res.status_code(StatusCode::CREATED);
    ok(res, goal_view(&row));
    Ok(())
}

#[endpoint(
    tags("analytics"),
    summary = "Change a race goal (fields left out keep their value)",
    security(("bearer" = [])),
    parameters(
        ("user_id" = String, Path, min_length = 1, max_length = 200, description = "The athlete (the caller, a coach of its organization, or an admin)"),
        ("goal_id" = String, Path, min_length = 1, max_length = 200, description = "The goal"),
    ),
    request_body = s::RaceGoalUpdate,
    responses(
        (status_code = 200, description = "Updated", body = s::RaceGoalEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 413, 500, 503)
)]
pub async fn update_goal(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    change_goal(req, depot, res).await
}

#[endpoint(
    tags("analytics"),
    summary = "Change a race goal (PUT: the same as PATCH)",
    security(("bearer" = [])),
    parameters(
        ("user_id" = String, Path, min_length = 1, max_length = 200, description = "The athlete (the caller, a coach of its organization, or an admin)"),
        ("goal_id" = String, Path, min_length = 1, max_length = 200, description = "The goal"),
    ),
    request_body = s::RaceGoalUpdate,
    responses(
        (status_code = 200, description = "Updated", body = s::RaceGoalEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 413, 500, 503)
)]
pub async fn replace_goal(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    change_goal(req, depot, res).await
}

async fn change_goal(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, user) = athlete(req, depot).await?;
    let id = path(req, "goal_id")?;
    let body = read_json(req, &state).await?;
    let mut r = FieldReader::new(&body).map_err(ApiError::validation)?;
    let g = read_goal(&mut r, false);
    r.finish().map_err(ApiError::validation)?;
    let row = db::update_goal(&state.db, &user.id, &id, &g)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("goal {id} not found")))?;
    invalidate_athlete(&state, &user).await;
    ok(res, goal_view(&row));
    Ok(())
}

#[endpoint(
    tags("analytics"),
    summary = "List an athlete's plan instances",
    security(("bearer" = [])),
    parameters(
        ("user_id" = String, Path, min_length = 1, max_length = 200, description = "The athlete (the caller, a coach of its organization, or an admin)"),
    ),
    responses(
        (status_code = 200, description = "The plan instances", body = s::PlanInstanceListEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 500, 503)
)]
pub async fn list_plans(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, user) = athlete(req, depot).await?;
    let plans = db::list_plans(&state.db, std::slice::from_ref(&user.id)).await?;
    let ids: Vec<String> = plans.iter().map(|p| p.id.clone()).collect();
    let sessions = db::sessions_of(&state.db, &ids).await?;
    let t = today(&user);
    let plans: Vec<Value> = plans
        .iter()
        .map(|p| plan_with_sessions(p, t, sessions.get(&p.id).map_or(&[], Vec::as_slice)))
        .collect();
    ok(res, json!({ "plans": plans }));
    Ok(())
}

#[endpoint(
    tags("analytics"),
    summary = "Add a plan instance",
    security(("bearer" = [])),
    parameters(
        ("user_id" = String, Path, min_length = 1, max_length = 200, description = "The athlete (the caller, a coach of its organization, or an admin)"),
    ),
    request_body = s::PlanInstanceCreate,
    responses(
        (status_code = 201, description = "Created", body = s::PlanInstanceEnvelope),
    ),
    status_codes(201, 400, 401, 403, 404, 409, 413, 500, 503)
)]
pub async fn create_plan(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, user) = athlete(req, depot).await?;
    let body = read_json(req, &state).await?;
    let mut r = FieldReader::new(&body).map_err(ApiError::validation)?;
    let p = read_plan(&mut r, true);
    let from_job = read_from_job(&mut r);
    r.finish().map_err(ApiError::validation)?;
    let workouts = match from_job {
        Some(id) => Some(generated_workouts(&state, claims(depot)?, id).await?),
        None => None,
    };
    let (row, sessions) = save_plan(&state, &user, &p, workouts.as_deref(), None).await?;
    invalidate_athlete(&state, &user).await;
    res.status_code(StatusCode::CREATED);
    ok(res, plan_with_sessions(&row, today(&user), &sessions));
    Ok(())
}

#[endpoint(
    tags("analytics"),
    summary = "Change a plan instance (fields left out keep their value)",
    security(("bearer" = [])),
    parameters(
        ("user_id" = String, Path, min_length = 1, max_length = 200, description = "The athlete (the caller, a coach of its organization, or an admin)"),
        ("plan_id" = String, Path, min_length = 1, max_length = 200, description = "The plan instance"),
    ),
    request_body = s::PlanInstanceUpdate,
    responses(
        (status_code = 200, description = "Updated", body = s::PlanInstanceEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 409, 413, 500, 503)
)]
pub async fn update_plan(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    change_plan(req, depot, res).await
}

#[endpoint(
    tags("analytics"),
    summary = "Change a plan instance (PUT: the same as PATCH)",
    security(("bearer" = [])),
    parameters(
        ("user_id" = String, Path, min_length = 1, max_length = 200, description = "The athlete (the caller, a coach of its organization, or an admin)"),
        ("plan_id" = String, Path, min_length = 1, max_length = 200, description = "The plan instance"),
    ),
    request_body = s::PlanInstanceUpdate,
    responses(
        (status_code = 200, description = "Updated", body = s::PlanInstanceEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 409, 413, 500, 503)
)]
pub async fn replace_plan(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    change_plan(req, depot, res).await
}

async fn change_plan(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, user) = athlete(req, depot).await?;
    let id = path(req, "plan_id")?;
    let body = read_json(req, &state).await?;
    let mut r = FieldReader::new(&body).map_err(ApiError::validation)?;
    let p = read_plan(&mut r, false);
    let from_job = read_from_job(&mut r);
    r.finish().map_err(ApiError::validation)?;
    let workouts = match from_job {
        Some(job) => Some(generated_workouts(&state, claims(depot)?, job).await?),
        None => None,
    };
    let (row, sessions) = save_plan(&state, &user, &p, workouts.as_deref(), Some(&id)).await?;
    invalidate_athlete(&state, &user).await;
    ok(res, plan_with_sessions(&row, today(&user), &sessions));
    Ok(())
}
