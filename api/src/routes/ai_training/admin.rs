//! Admin reporting and assignment: role `admin` (any client) or `client_admin` (its own client
//! only, 403 for another). The module must be enabled on the client acted on.

use pacer_common::db::ai_training as db;
use pacer_common::validate::FieldReader;
use salvo::prelude::*;

use crate::schemas as s;
use serde_json::{Value, json};

use super::service::{self, parse_plan_body};
use super::{admin_client, client_override, limit, path_id, read_optional_json};
use crate::error::ApiError;
use crate::routes::read_json;

/// `GET /api/ai-training/records?clientId=&userId=&limit=` → `{"clientId", "records"}`
/// (routine runs, newest first; `limit` 1..=500, default 100).
#[endpoint(
    tags("ai-training-admin"),
    summary = "Routine runs of a client, newest first",
    security(("bearer" = [])),
    parameters(
        ("clientId" = Option<String>, Query, max_length = 200, description = "admin only: the client acted on (default: the caller's)"),
        ("userId" = Option<String>, Query, max_length = 200, description = "Only this user's runs"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "At most this many (default 100)"),
    ),
    responses(
        (status_code = 200, description = "Runs without steps", body = s::Records),
    ),
    status_codes(200, 400, 401, 403, 500, 503)
)]
pub async fn records(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, _, client_id) = admin_client(depot, client_override(req)?).await?;
    let limit = limit(req, 100)?;
    let user = req.query::<String>("userId").filter(|s| !s.is_empty());
    if user.as_ref().is_some_and(|u| u.chars().count() > 200) {
        return Err(ApiError::field("userId", "must be at most 200 characters"));
    }
    let runs = db::list_runs(&state.db, &client_id, user.as_deref(), limit).await?;
    let list: Vec<Value> = runs.iter().map(db::RunRow::to_brief_json).collect();
    res.render(Json(json!({"clientId": client_id, "records": list})));
    Ok(())
}

/// The `{clientId}` and `{userId}` of a per-user admin route, authorized.
async fn target(
    req: &Request,
    depot: &Depot,
) -> Result<
    (
        crate::state::AppState,
        pacer_common::auth::Claims,
        String,
        String,
    ),
    ApiError,
> {
    let client = path_id(req, "clientId")?;
    let user = path_id(req, "userId")?;
    let (state, claims, client) = admin_client(depot, Some(client)).await?;
    Ok((state, claims, client, user))
}

/// `GET /api/client/{clientId}/users/{userId}/ai-training/plan` → `{"plan" | null,
/// "routineInstances"}` (the latest plan and the user's current queue).
#[endpoint(
    tags("ai-training-admin"),
    summary = "A user's plan and queue",
    security(("bearer" = [])),
    parameters(
        ("clientId" = String, Path, min_length = 1, max_length = 200, description = "Client (organization) id"),
        ("userId" = String, Path, min_length = 1, max_length = 200, description = "User id"),
    ),
    responses(
        (status_code = 200, description = "The plan (or null) and the queue", body = s::MyPlan),
    ),
    status_codes(200, 400, 401, 403, 500, 503)
)]
pub async fn user_plan(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, _, client_id, user_id) = target(req, depot).await?;
    let plan = db::latest_plan(&state.db, &client_id, &user_id).await?;
    let queue = db::queue(&state.db, &client_id, &user_id).await?;
    let list: Vec<Value> = queue.iter().map(db::InstanceRow::to_json).collect();
    res.render(Json(json!({
        "plan": plan.as_ref().map(db::PlanRow::to_json),
        "routineInstances": list,
    })));
    Ok(())
}

/// `POST .../assign-starter-plan` (body as `my-plan/generate`) → 201 `{"plan", "routineInstances"}`.
#[endpoint(
    tags("ai-training-admin"),
    summary = "Generate a plan for a user",
    security(("bearer" = [])),
    parameters(
        ("clientId" = String, Path, min_length = 1, max_length = 200, description = "Client (organization) id"),
        ("userId" = String, Path, min_length = 1, max_length = 200, description = "User id"),
    ),
    request_body = Option<s::GeneratePlanInput>,
    responses(
        (status_code = 201, description = "The plan and its routine instances", body = s::PlanWithInstances),
    ),
    status_codes(201, 400, 401, 403, 409, 413, 500, 503)
)]
pub async fn assign_starter_plan(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, claims, client_id, user_id) = target(req, depot).await?;
    let body = read_optional_json(req, &state).await?;
    let fields = parse_plan_body(&body)?;
    let (plan, instances) =
        service::generate_plan(&state, &client_id, &user_id, &fields, Some(&claims.sub)).await?;
    let list: Vec<Value> = instances.iter().map(db::InstanceRow::to_json).collect();
    res.status_code(StatusCode::CREATED);
    res.render(Json(
        json!({"plan": plan.to_json(), "routineInstances": list}),
    ));
    Ok(())
}

/// `POST .../assign-routine-template` `{"routineTemplateId"}` → 201 `{"plan", "routineInstance"}`.
#[endpoint(
    tags("ai-training-admin"),
    summary = "Append a routine template to a user's queue",
    security(("bearer" = [])),
    parameters(
        ("clientId" = String, Path, min_length = 1, max_length = 200, description = "Client (organization) id"),
        ("userId" = String, Path, min_length = 1, max_length = 200, description = "User id"),
    ),
    request_body = s::AssignTemplate,
    responses(
        (status_code = 201, description = "The plan and the new instance", body = s::PlanWithInstance),
    ),
    status_codes(201, 400, 401, 403, 404, 409, 413, 500, 503)
)]
pub async fn assign_routine_template(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, claims, client_id, user_id) = target(req, depot).await?;
    let body = read_json(req, &state).await?;
    let mut r = FieldReader::new(&body).map_err(ApiError::validation)?;
    let template_id = r.required_str("routineTemplateId", 1, 200);
    r.finish().map_err(ApiError::validation)?;
    let Some(template_id) = template_id else {
        return Err(ApiError::field("routineTemplateId", "is required"));
    };
    let (plan, instance) =
        service::assign_template(&state, &client_id, &user_id, &template_id, &claims.sub).await?;
    res.status_code(StatusCode::CREATED);
    res.render(Json(
        json!({"plan": plan.to_json(), "routineInstance": instance.to_json()}),
    ));
    Ok(())
}

/// `GET .../routine-runs?limit=` → `{"routineRuns"}`.
#[endpoint(
    tags("ai-training-admin"),
    summary = "A user's runs",
    security(("bearer" = [])),
    parameters(
        ("clientId" = String, Path, min_length = 1, max_length = 200, description = "Client (organization) id"),
        ("userId" = String, Path, min_length = 1, max_length = 200, description = "User id"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "At most this many (default 50)"),
    ),
    responses(
        (status_code = 200, description = "Runs", body = s::RoutineRunList),
    ),
    status_codes(200, 400, 401, 403, 500, 503)
)]
pub async fn user_runs(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, _, client_id, user_id) = target(req, depot).await?;
    let limit = limit(req, 50)?;
    let runs = db::list_runs(&state.db, &client_id, Some(&user_id), limit).await?;
    let list: Vec<Value> = runs.iter().map(db::RunRow::to_brief_json).collect();
    res.render(Json(json!({"routineRuns": list})));
    Ok(())
}

/// `GET .../assessments?limit=` → `{"assessments", "assessmentSnapshot"}`.
#[endpoint(
    tags("ai-training-admin"),
    summary = "A user's assessments",
    security(("bearer" = [])),
    parameters(
        ("clientId" = String, Path, min_length = 1, max_length = 200, description = "Client (organization) id"),
        ("userId" = String, Path, min_length = 1, max_length = 200, description = "User id"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "At most this many (default 100)"),
    ),
    responses(
        (status_code = 200, description = "Assessments and the snapshot", body = s::AssessmentList),
    ),
    status_codes(200, 400, 401, 403, 500, 503)
)]
pub async fn user_assessments(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, _, client_id, user_id) = target(req, depot).await?;
    let limit = limit(req, 100)?;
    res.render(Json(
        service::assessments(&state, &client_id, &user_id, limit).await?,
    ));
    Ok(())
}

/// `POST .../assessments` (body as `POST /api/ai-training/assessments`) → 201.
#[endpoint(
    tags("ai-training-admin"),
    summary = "Record an assessment for a user",
    security(("bearer" = [])),
    parameters(
        ("clientId" = String, Path, min_length = 1, max_length = 200, description = "Client (organization) id"),
        ("userId" = String, Path, min_length = 1, max_length = 200, description = "User id"),
    ),
    request_body = s::AssessmentInput,
    responses(
        (status_code = 201, description = "The assessment and the new snapshot", body = s::AssessmentRecorded),
    ),
    status_codes(201, 400, 401, 403, 413, 500, 503)
)]
pub async fn record_user_assessment(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, claims, client_id, user_id) = target(req, depot).await?;
    let body = read_json(req, &state).await?;
    let out = service::record_assessment(&state, &client_id, &user_id, &claims.sub, &body).await?;
    res.status_code(StatusCode::CREATED);
    res.render(Json(out));
    Ok(())
}
