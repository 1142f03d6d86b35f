//! Analytics (seed 004): ingestion (activities, health metrics, goals, plan instances), the
//! six read endpoints, the admin recompute that starts a `recompute_batch`, and the push
//! token behind the roster's `has_push_token`.

use pacer_common::auth::Role;
use pacer_common::jobs::{JobKind, RecomputeBatchInput};
use salvo::http::StatusCode;
use salvo::prelude::*;
use serde_json::{Value, json};

use crate::auth::{app_state, claims, require_role};
use crate::error::ApiError;
use crate::jobs::{job_view, submit};
use crate::routes::read_optional_json;
use crate::schemas as s;

pub(crate) mod common;
mod ingest;
mod plans;
mod push_token;
mod reads;

pub fn router() -> Router {
    Router::new()
        .push(Router::with_path("activities").post(ingest::activities))
        .push(Router::with_path("health_metrics").post(ingest::health_metrics))
        .push(
            Router::with_path("athletes/{user_id}/goals")
                .get(plans::list_goals)
                .post(plans::create_goal)
                .push(
                    Router::with_path("{goal_id}")
                        .patch(plans::update_goal)
                        .put(plans::replace_goal),
                ),
        )
        .push(
            Router::with_path("athletes/{user_id}/plans")
                .get(plans::list_plans)
                .post(plans::create_plan)
                .push(
                    Router::with_path("{plan_id}")
                        .patch(plans::update_plan)
                        .put(plans::replace_plan),
                ),
        )
        .push(
            Router::with_path("analytics")
                .push(Router::with_path("athlete_profile").get(reads::athlete_profile))
                .push(Router::with_path("fitness_stats").get(reads::fitness_stats))
                .push(Router::with_path("running_stats").get(reads::running_stats))
                .push(Router::with_path("activity_stats").get(reads::activity_stats))
                .push(Router::with_path("health_metrics").get(reads::health_metrics))
                .push(
                    Router::with_path("coach_athletes_metrics").get(reads::coach_athletes_metrics),
                ),
        )
        .push(Router::with_path("admin/analytics/recompute").post(recompute))
        .push(
            Router::with_path("me/push_token")
                .put(push_token::put_push_token)
                .delete(push_token::delete_push_token),
        )
}

/// `POST /api/v1/admin/analytics/recompute` `{"org_id"}` (admin: omit for every org; a coach:
/// its own org, the default) → 202 with the `recompute_batch` job to poll or stream.
#[endpoint(
    tags("analytics"),
    summary = "Recompute the analytics of an organization (admin: omit `org_id` for every org)",
    description = "Starts a `recompute_batch` job that fans out one `recompute_stats` per athlete; poll `status_url` or stream `events_url`. The body is optional (a coach's default is its own organization).",
    security(("bearer" = [])),
    parameters(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, description = "Same key from the same user returns the first job; a different body with a used key is a 409"),
    ),
    request_body = Option<s::RecomputeRequest>,
    responses(
        (status_code = 202, description = "Queued", body = s::RecomputeEnvelope),
    ),
    status_codes(202, 400, 401, 403, 404, 409, 413, 500, 503)
)]
async fn recompute(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = app_state(depot)?.clone();
    let claims = claims(depot)?.clone();
    require_role(&claims, &[Role::Admin, Role::Coach])?;
    // an absent or empty body and a literal `null` all mean "no options" (the body is optional)
    let mut body = read_optional_json(req, &state)
        .await?
        .unwrap_or(Value::Null);
    if body.is_null() {
        body = json!({});
    }
    if !body.is_object() {
        return Err(ApiError::field("body", "must be a JSON object"));
    }
    // the body is the job's input: its fields are named as sent (the Jobs API says `input.…`)
    RecomputeBatchInput::parse(&body, "").map_err(ApiError::validation)?;
    if claims.role == Role::Coach && body.get("org_id").is_none_or(Value::is_null) {
        body["org_id"] = json!(claims.org_id);
    }
    let key = crate::routes::jobs::idempotency_key(req)?;
    let (row, _) = submit(
        &state,
        &claims,
        JobKind::RecomputeBatch,
        &body,
        key.as_deref(),
    )
    .await?;
    res.status_code(StatusCode::ACCEPTED);
    common::ok(res, job_view(&row));
    Ok(())
}
