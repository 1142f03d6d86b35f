//! Admin API: organization and user upserts (idempotent). A coach may upsert athletes of its
//! own organization through the user route.

use pacer_common::auth::Role;
use pacer_common::db::analytics::enqueue_recompute;
use pacer_common::db::orgs::{get_org, upsert_org};
use pacer_common::db::users::{UserUpsert, get_user, upsert_user};
use pacer_common::validate::FieldReader;
use salvo::prelude::*;

use crate::schemas as s;
use serde_json::json;

use crate::auth::{app_state, claims, require_role};
use crate::error::ApiError;
use crate::routes::{path_id, read_json};

pub const FEATURES: [&str; 2] = ["coach_agent", "ai_training"];

pub fn router() -> Router {
    Router::with_path("admin")
        .push(
            Router::with_path("orgs/{org_id}")
                .get(show_org)
                .put(put_org),
        )
        .push(
            Router::with_path("users/{user_id}")
                .get(show_user)
                .put(put_user),
        )
}

#[endpoint(
    tags("admin"),
    summary = "Show an organization (admin)",
    security(("bearer" = [])),
    parameters(
        ("org_id" = String, Path, min_length = 1, max_length = 200, description = "Organization id"),
    ),
    responses(
        (status_code = 200, description = "The organization", body = s::OrgEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 500, 503)
)]
async fn show_org(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    require_role(claims(depot)?, &[Role::Admin])?;
    let state = app_state(depot)?;
    let id = path_id(req, "org_id")?;
    let org = get_org(&state.db, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("organization {id} not found")))?;
    res.render(Json(json!({"status": "success", "data": org})));
    Ok(())
}

/// `PUT /api/v1/admin/orgs/{org_id}` `{"name", "features": [..], "training_principle"}`; fields
/// left out keep their value.
#[endpoint(
    tags("admin"),
    summary = "Create or update an organization (admin, idempotent)",
    description = "Fields left out keep their value (a new organization: empty name, no features, no principle); `training_principle: null` clears the principle.",
    security(("bearer" = [])),
    parameters(
        ("org_id" = String, Path, min_length = 1, max_length = 200, description = "Organization id"),
    ),
    request_body = s::OrgUpsert,
    responses(
        (status_code = 200, description = "The organization", body = s::OrgEnvelope),
    ),
    status_codes(200, 400, 401, 403, 413, 500, 503)
)]
async fn put_org(req: &mut Request, depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    require_role(claims(depot)?, &[Role::Admin])?;
    let state = app_state(depot)?.clone();
    let id = path_id(req, "org_id")?;
    let body = read_json(req, &state).await?;
    let mut r = FieldReader::new(&body).map_err(ApiError::validation)?;
    // fields left out keep their value; `"training_principle": null` (or blank) clears it
    let name = r.opt_str("name", 200);
    let features = string_list(&mut r, "features", Some(&FEATURES));
    let principle_given = body.get("training_principle").is_some();
    let principle = r
        .opt_str("training_principle", 4000)
        .filter(|s| !s.trim().is_empty());
    r.finish().map_err(ApiError::validation)?;
    let org = upsert_org(
        &state.db,
        &id,
        name.as_deref(),
        features.as_deref(),
        principle_given.then_some(principle.as_deref()),
    )
    .await?;
    res.render(Json(json!({"status": "success", "data": org})));
    Ok(())
}

#[endpoint(
    tags("admin"),
    summary = "Show a user (admin; a coach: its organization's users)",
    security(("bearer" = [])),
    parameters(
        ("user_id" = String, Path, min_length = 1, max_length = 200, description = "User id"),
    ),
    responses(
        (status_code = 200, description = "The user", body = s::UserEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 500, 503)
)]
async fn show_user(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let claims = claims(depot)?.clone();
    require_role(&claims, &[Role::Admin, Role::Coach])?;
    let state = app_state(depot)?;
    let id = path_id(req, "user_id")?;
    let user = get_user(&state.db, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))?;
    if claims.role == Role::Coach && user.org_id.as_deref() != Some(claims.org_id.as_str()) {
        return Err(ApiError::NotFound(format!("user {id} not found")));
    }
    res.render(Json(json!({"status": "success", "data": user})));
    Ok(())
}

/// `PUT /api/v1/admin/users/{user_id}` `{"org_id", "role", "display_name", "username", "email",
/// "profile_image_url", "assigned_coach_id", "groups": [..], "labels": [..], "timezone"}`.
#[endpoint(
    tags("admin"),
    summary = "Create or update a user (admin; a coach: athletes of its organization)",
    security(("bearer" = [])),
    parameters(
        ("user_id" = String, Path, min_length = 1, max_length = 200, description = "User id"),
    ),
    request_body = s::UserUpsert,
    responses(
        (status_code = 200, description = "The user", body = s::UserEnvelope),
    ),
    status_codes(200, 400, 401, 403, 413, 500, 503)
)]
async fn put_user(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let claims = claims(depot)?.clone();
    require_role(&claims, &[Role::Admin, Role::Coach])?;
    let state = app_state(depot)?.clone();
    let id = path_id(req, "user_id")?;
    let body = read_json(req, &state).await?;
    let mut r = FieldReader::new(&body).map_err(ApiError::validation)?;
    let org_id = r.required_str("org_id", 1, 200);
    let role = r.required_enum("role", &["athlete", "coach", "client_admin", "admin"]);
    let display_name = r.opt_str("display_name", 200);
    let username = r.opt_str("username", 200);
    let email = r.opt_str("email", 320);
    let profile_image_url = r.opt_str("profile_image_url", 2000);
    let assigned_coach_id = r.opt_str("assigned_coach_id", 200);
    let groups = string_list(&mut r, "groups", None);
    let labels = string_list(&mut r, "labels", None);
    let timezone = r.opt_str("timezone", 64);
    if let Some(tz) = &timezone
        && tz.parse::<chrono_tz::Tz>().is_err()
    {
        r.error(
            "timezone",
            "must be an IANA time zone such as Europe/London",
        );
    }
    r.finish().map_err(ApiError::validation)?;
    let (Some(org_id), Some(role)) = (org_id, role) else {
        return Err(ApiError::field("org_id", "is required"));
    };
    let existing = get_user(&state.db, &id).await?;
    if claims.role == Role::Coach {
        // a coach manages athletes of its own organization, nothing else
        let foreign = existing.as_ref().is_some_and(|u| {
            u.org_id.as_deref() != Some(claims.org_id.as_str()) || u.role != "athlete"
        });
        if role != "athlete" || org_id != claims.org_id || foreign {
            return Err(ApiError::Forbidden(
                "a coach may only manage athletes of its own organization".into(),
            ));
        }
    }
    let upsert = UserUpsert {
        org_id,
        role,
        display_name,
        username,
        email,
        profile_image_url,
        assigned_coach_id,
        groups,
        labels,
        timezone,
    };
    let user = upsert_user(&state.db, &id, &upsert).await?;
    // an athlete's days are cut in the athlete's zone: a new zone re-buckets the rollups
    let moved = existing
        .as_ref()
        .is_some_and(|old| old.timezone != user.timezone && user.role == "athlete");
    if moved {
        enqueue_recompute(
            &state.db,
            &user.id,
            user.org_id.as_deref(),
            state.config.common.max_attempts,
        )
        .await?;
    }
    // the profile and the rosters show the user's name, image, groups and organization
    crate::routes::analytics::common::invalidate_athlete(&state, &user).await;
    if let Some(old) = existing.filter(|old| old.org_id != user.org_id) {
        crate::routes::analytics::common::invalidate_athlete(&state, &old).await;
    }
    res.render(Json(json!({"status": "success", "data": user})));
    Ok(())
}

/// An optional array of strings, each (when `allowed` is given) one of `allowed`.
fn string_list(
    r: &mut FieldReader<'_>,
    field: &str,
    allowed: Option<&[&str]>,
) -> Option<Vec<String>> {
    let raw = r.raw(field)?;
    let Some(items) = raw.as_array() else {
        r.error(field, "must be an array of strings");
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item.as_str() {
            Some(s) if allowed.is_none_or(|a| a.contains(&s)) => out.push(s.to_owned()),
            Some(s) => {
                let allowed = allowed.unwrap_or_default().join(", ");
                r.error(field, format!("unknown value \"{s}\" (allowed: {allowed})"));
                return None;
            }
            None => {
                r.error(field, "must be an array of strings");
                return None;
            }
        }
    }
    out.sort();
    out.dedup();
    Some(out)
}
