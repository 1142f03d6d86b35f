//! AI Training (seed 003): end-user runtime, assessments, AI Move results, admin reporting and
//! assignment, B2B template authoring, and the custom-token exchange. See `docs/ai-training.md`.
//!
//! Mounted outside the `/api` bearer hoop: these routes also accept a single-use `customToken`
//! query parameter. Responses follow the seed's camelCase shapes (no `status` envelope); errors
//! use the common error body.

use pacer_common::auth::{Claims, Role};
use pacer_common::db::orgs::get_org;
use pacer_common::validate::FieldReader;
use salvo::prelude::*;
use serde_json::{Value, json};

use crate::auth::{app_state, claims, require_auth, require_auth_or_custom_token};
use crate::error::ApiError;
use crate::routes::path_id;
use crate::state::AppState;

mod admin;
mod b2b;
mod service;
mod user;

/// The feature flag gating the module on the client's organization.
const FEATURE: &str = "ai_training";

pub fn router() -> Router {
    let end_user = Router::with_path("ai-training")
        .push(Router::with_path("my-plan").get(user::my_plan))
        .push(Router::with_path("my-plan/generate").post(user::generate))
        .push(Router::with_path("my-routine-queue").get(user::routine_queue))
        .push(
            Router::with_path("routine-runs")
                .get(user::list_runs)
                .post(user::create_run),
        )
        .push(
            Router::with_path("routine-runs/{routineRunId}")
                .get(user::show_run)
                .patch(user::patch_run),
        )
        .push(Router::with_path("routine-runs/{routineRunId}/sync").post(user::sync_run))
        .push(Router::with_path("routine-instances/{routineInstanceId}/defer").post(user::defer))
        .push(Router::with_path("progress-report").get(user::progress_report))
        .push(
            Router::with_path("assessments")
                .get(user::list_assessments)
                .post(user::record_assessment),
        );
    let per_user = Router::with_path("client/{clientId}/users/{userId}/ai-training")
        .push(Router::with_path("plan").get(admin::user_plan))
        .push(Router::with_path("assign-starter-plan").post(admin::assign_starter_plan))
        .push(Router::with_path("assign-routine-template").post(admin::assign_routine_template))
        .push(Router::with_path("routine-runs").get(admin::user_runs))
        .push(
            Router::with_path("assessments")
                .get(admin::user_assessments)
                .post(admin::record_user_assessment),
        );
    let authoring = Router::with_path("b2b/ai-training")
        .push(
            Router::with_path("routine-templates")
                .get(b2b::list_templates)
                .post(b2b::create_template),
        )
        .push(
            Router::with_path("routine-templates/{routineTemplateId}")
                .get(b2b::show_template)
                .patch(b2b::update_template),
        )
        .push(
            Router::with_path("routine-templates/{routineTemplateId}/publish")
                .post(b2b::publish_template),
        )
        .push(
            Router::with_path("catalog")
                .get(b2b::show_catalog)
                .patch(b2b::update_catalog),
        )
        .push(
            Router::with_path("settings")
                .get(b2b::show_settings)
                .patch(b2b::update_settings),
        );
    Router::with_path("api")
        // the exchange itself needs a real bearer token (no custom-token chaining)
        .push(
            Router::with_path("auth/exchange-token")
                .hoop(require_auth)
                .post(user::exchange_token),
        )
        .push(
            Router::with_path("auth/custom-token-session")
                .hoop(user::require_custom_token_param)
                .hoop(require_auth_or_custom_token)
                .post(user::custom_token_session),
        )
        .push(
            Router::new()
                .hoop(require_auth_or_custom_token)
                .push(end_user)
                .push(Router::with_path("ai-move/sessions").post(user::record_ai_move_session)),
        )
        // admin reads and writes and B2B authoring need a real bearer token: a custom token is for a play page, and
        // one leaked with its URL must not carry an administrator's rights
        .push(
            Router::new()
                .hoop(require_auth)
                .push(Router::with_path("ai-training/records").get(admin::records))
                .push(per_user)
                .push(authoring),
        )
}

/// The state and the caller's claims.
fn caller(depot: &Depot) -> Result<(AppState, Claims), ApiError> {
    Ok((app_state(depot)?.clone(), claims(depot)?.clone()))
}

/// 403 unless the client's organization exists and has the `ai_training` feature.
async fn require_module(state: &AppState, client_id: &str) -> Result<(), ApiError> {
    let enabled = get_org(&state.db, client_id)
        .await?
        .is_some_and(|o| o.has_feature(FEATURE));
    if enabled {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "the AI Training module is not enabled for client {client_id}"
        )))
    }
}

/// For end-user routes: the caller's client, with the module enabled.
async fn end_user(depot: &Depot) -> Result<(AppState, Claims, String), ApiError> {
    let (state, claims) = caller(depot)?;
    let client_id = claims.client_id().to_owned();
    require_module(&state, &client_id).await?;
    Ok((state, claims, client_id))
}

/// For admin and B2B routes: the client acted on. `admin` may name any client; `client_admin`
/// only its own (403 otherwise); other roles are refused. The module must be enabled there.
async fn admin_client(
    depot: &Depot,
    requested: Option<String>,
) -> Result<(AppState, Claims, String), ApiError> {
    let (state, claims) = caller(depot)?;
    crate::auth::require_role(&claims, &[Role::Admin, Role::ClientAdmin])?;
    let client_id = match requested {
        Some(c) if claims.role == Role::ClientAdmin && c != claims.client_id() => {
            return Err(ApiError::Forbidden(format!(
                "a client_admin may only act on its own client ({})",
                claims.client_id()
            )));
        }
        Some(c) => c,
        None => claims.client_id().to_owned(),
    };
    require_module(&state, &client_id).await?;
    Ok((state, claims, client_id))
}

/// The optional `clientId` query parameter (admin override).
fn client_override(req: &Request) -> Result<Option<String>, ApiError> {
    match req.query::<String>("clientId") {
        Some(c) if c.is_empty() => Ok(None),
        Some(c) if c.len() > 200 => Err(ApiError::field(
            "clientId",
            "must be at most 200 characters",
        )),
        other => Ok(other),
    }
}

/// The `limit` query parameter: default `default`, 1..=500.
fn limit(req: &Request, default: i64) -> Result<i64, ApiError> {
    match crate::routes::query_param::<i64>(req, "limit")? {
        None => Ok(default),
        Some(n) if (1..=500).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::field("limit", "must be between 1 and 500")),
    }
}

/// A JSON object body; an empty body reads as `{}` (for routes whose fields are all optional).
async fn read_optional_json(req: &mut Request, state: &AppState) -> Result<Value, ApiError> {
    Ok(crate::routes::read_optional_json(req, state)
        .await?
        .unwrap_or_else(|| json!({})))
}

/// An optional array of short labels (`equipment`, `equipmentAvailability`, …): trimmed,
/// lowercase letters, digits and `-`, deduplicated in order.
fn label_list(r: &mut FieldReader<'_>, field: &str, max_items: usize) -> Option<Vec<String>> {
    let raw = r.raw(field)?;
    let Some(items) = raw.as_array() else {
        r.error(field, "must be an array of strings");
        return None;
    };
    if items.len() > max_items {
        r.error(field, format!("must have at most {max_items} items"));
        return None;
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let Some(s) = item.as_str().map(str::trim) else {
            r.error(field, "must be an array of strings");
            return None;
        };
        let ok = !s.is_empty()
            && s.len() <= 50
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            r.error(
                field,
                format!("\"{s}\" must be 1 to 50 lowercase letters, digits or '-'"),
            );
            return None;
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Some(out)
}
