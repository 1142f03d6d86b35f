//! The caller's push notification token (`PUT`/`DELETE /api/v1/me/push_token`): what the coach
//! roster's `has_push_token` reports. Pacer keeps the token for a notification service to use;
//! it sends nothing itself and never returns the token.

use pacer_common::db::users;
use pacer_common::validate::FieldReader;
use salvo::prelude::*;
use serde_json::json;

use super::common::{invalidate_athlete, ok};
use crate::auth::{app_state, claims};
use crate::error::ApiError;
use crate::routes::read_json;
use crate::schemas as s;
use crate::state::AppState;

pub const PLATFORMS: [&str; 3] = ["ios", "android", "web"];

#[endpoint(
    tags("analytics"),
    summary = "Register the caller's push token (one per user: a new device's replaces it)",
    security(("bearer" = [])),
    request_body = s::PushTokenRequest,
    responses(
        (status_code = 200, description = "Registered", body = s::PushTokenEnvelope),
    ),
    status_codes(200, 400, 401, 413, 500, 503)
)]
pub async fn put_push_token(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = app_state(depot)?.clone();
    let body = read_json(req, &state).await?;
    let mut r = FieldReader::new(&body).map_err(ApiError::validation)?;
    let token = r.required_str("token", 1, 4096);
    if token.as_deref().is_some_and(|t| t.trim().is_empty()) {
        r.error("token", "must not be blank");
    }
    let platform = r.opt_enum("platform", &PLATFORMS);
    r.finish().map_err(ApiError::validation)?;
    let token = token.ok_or_else(|| ApiError::field("token", "is required"))?;
    save(
        &state,
        &claims(depot)?.sub,
        Some((&token, platform.as_deref())),
        res,
    )
    .await
}

#[endpoint(
    tags("analytics"),
    summary = "Forget the caller's push token",
    security(("bearer" = [])),
    responses(
        (status_code = 200, description = "Forgotten", body = s::PushTokenEnvelope),
    ),
    status_codes(200, 401, 500, 503)
)]
pub async fn delete_push_token(depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    let state = app_state(depot)?.clone();
    save(&state, &claims(depot)?.sub, None, res).await
}

/// Stores the token (or its absence), then marks the rosters showing the user stale.
async fn save(
    state: &AppState,
    user_id: &str,
    token: Option<(&str, Option<&str>)>,
    res: &mut Response,
) -> Result<(), ApiError> {
    // the auth hoop provisioned the caller's row
    if !users::set_push_token(&state.db, user_id, token).await? {
        return Err(ApiError::NotFound(format!("user {user_id} not found")));
    }
    if let Some(user) = users::get_user(&state.db, user_id).await? {
        invalidate_athlete(state, &user).await;
    }
    ok(
        res,
        json!({"has_push_token": token.is_some(), "platform": token.and_then(|(_, p)| p)}),
    );
    Ok(())
}
