//! B2B template authoring (`client_admin` of the client, or `admin` with `?clientId=`): client
//! routine templates, the library catalog and the per-client settings.

use pacer_common::ai_training::run::TemplateStep;
use pacer_common::ai_training::{GOALS, INTENSITIES, new_id};
use pacer_common::db::ai_training as db;
use pacer_common::validate::FieldReader;
use salvo::prelude::*;

use crate::schemas as s;
use serde_json::{Value, json};

use super::{admin_client, client_override, label_list, path_id};
use crate::error::ApiError;
use crate::routes::read_json;

/// `GET /api/b2b/ai-training/routine-templates` → `{"clientId", "routineTemplates"}`: the
/// library (with `visible` per the catalog) and the client's own templates (drafts included).
#[endpoint(
    tags("b2b"),
    summary = "The GOFA library and the client's own templates",
    security(("bearer" = [])),
    parameters(
        ("clientId" = Option<String>, Query, max_length = 200, description = "admin only: the client acted on (default: the caller's)"),
    ),
    responses(
        (status_code = 200, description = "Templates", body = s::RoutineTemplateList),
    ),
    status_codes(200, 400, 401, 403, 500, 503)
)]
pub async fn list_templates(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, _, client_id) = admin_client(depot, client_override(req)?).await?;
    let rows = db::list_templates(&state.db, &client_id).await?;
    let list: Vec<Value> = rows.iter().map(db::TemplateRow::to_json).collect();
    res.render(Json(
        json!({"clientId": client_id, "routineTemplates": list}),
    ));
    Ok(())
}

/// Reads template fields; `create` makes name, goal, intensity, durationMinutes and
/// exerciseSteps required.
fn read_template(body: &Value, create: bool) -> Result<db::TemplateFields, ApiError> {
    let mut r = FieldReader::new(body).map_err(ApiError::validation)?;
    let name = if create {
        r.required_str("name", 1, 200)
    } else {
        r.opt_str("name", 200)
    };
    if !create && name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        r.error("name", "must not be empty");
    }
    let description = r.opt_str("description", 2000);
    let (goal, intensity, duration) = if create {
        (
            r.required_enum("goal", &GOALS),
            r.required_enum("intensity", &INTENSITIES),
            r.required_int("durationMinutes", 5, 120),
        )
    } else {
        (
            r.opt_enum("goal", &GOALS),
            r.opt_enum("intensity", &INTENSITIES),
            r.opt_int("durationMinutes", 5, 120),
        )
    };
    let equipment = label_list(&mut r, "equipment", 10);
    if equipment.as_ref().is_some_and(Vec::is_empty) {
        r.error(
            "equipment",
            "must list at least one label (\"none\" for no equipment)",
        );
    }
    let steps = match r.raw("exerciseSteps") {
        None if create => {
            r.error("exerciseSteps", "is required");
            None
        }
        None => None,
        Some(v) => read_steps(&mut r, v),
    };
    r.finish().map_err(ApiError::validation)?;
    Ok(db::TemplateFields {
        name: name.map(|n| n.trim().to_owned()),
        description,
        goal,
        intensity,
        duration_minutes: duration,
        equipment,
        steps,
    })
}

/// `exerciseSteps`: 1..=50 objects `{"exerciseId", "durationSeconds" | "reps", "guided"?}`;
/// step ids are assigned (`s1`, `s2`, …).
fn read_steps(r: &mut FieldReader<'_>, value: &Value) -> Option<Vec<TemplateStep>> {
    let Some(items) = value.as_array() else {
        r.error("exerciseSteps", "must be an array of steps");
        return None;
    };
    if items.is_empty() || items.len() > 50 {
        r.error("exerciseSteps", "must have 1 to 50 steps");
        return None;
    }
    let mut steps = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let mut s = match FieldReader::nested(item, &format!("exerciseSteps[{i}].")) {
            Ok(s) => s,
            Err(e) => {
                r.extend(e);
                continue;
            }
        };
        let exercise_id = s.required_str("exerciseId", 1, 100);
        let duration = s.opt_int("durationSeconds", 1, 3600);
        let reps = s.opt_int("reps", 1, 500);
        let guided = s.opt_bool("guided").unwrap_or(false);
        let has_duration = s.raw("durationSeconds").is_some();
        if has_duration == s.raw("reps").is_some() {
            s.error(
                "durationSeconds",
                "give exactly one of durationSeconds and reps",
            );
        }
        match s.finish() {
            Ok(()) => steps.push(TemplateStep {
                step_id: format!("s{}", i + 1),
                exercise_id: exercise_id.unwrap_or_default(),
                duration_seconds: duration,
                reps,
                guided,
            }),
            Err(e) => r.extend(e),
        }
    }
    Some(steps)
}

/// `POST /api/b2b/ai-training/routine-templates` → 201 `{"routineTemplate"}` (a draft).
#[endpoint(
    tags("b2b"),
    summary = "Create a draft routine template",
    security(("bearer" = [])),
    parameters(
        ("clientId" = Option<String>, Query, max_length = 200, description = "admin only: the client acted on (default: the caller's)"),
    ),
    request_body = s::TemplateInput,
    responses(
        (status_code = 201, description = "The draft template", body = s::RoutineTemplateBody),
    ),
    status_codes(201, 400, 401, 403, 413, 500, 503)
)]
pub async fn create_template(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, _, client_id) = admin_client(depot, client_override(req)?).await?;
    let body = read_json(req, &state).await?;
    let fields = read_template(&body, true)?;
    let id = new_id("tpl");
    db::insert_template(&state.db, &client_id, &id, &fields).await?;
    let row = db::get_template(&state.db, &client_id, &id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("template {id} vanished")))?;
    res.status_code(StatusCode::CREATED);
    res.render(Json(json!({"routineTemplate": row.to_json()})));
    Ok(())
}

/// A template of the client or the library, else 404.
async fn find(
    state: &crate::state::AppState,
    client_id: &str,
    id: &str,
) -> Result<db::TemplateRow, ApiError> {
    db::get_template(&state.db, client_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("routine template {id} not found")))
}

fn read_only(id: &str) -> ApiError {
    ApiError::Forbidden(format!(
        "routine template {id} is a GOFA library template and cannot be changed; use the catalog to show or hide it"
    ))
}

/// `GET /api/b2b/ai-training/routine-templates/{routineTemplateId}` → `{"routineTemplate"}`.
#[endpoint(
    tags("b2b"),
    summary = "Show a routine template",
    security(("bearer" = [])),
    parameters(
        ("routineTemplateId" = String, Path, min_length = 1, max_length = 200, description = "Routine template id"),
        ("clientId" = Option<String>, Query, max_length = 200, description = "admin only: the client acted on (default: the caller's)"),
    ),
    responses(
        (status_code = 200, description = "The template", body = s::RoutineTemplateBody),
    ),
    status_codes(200, 400, 401, 403, 404, 500, 503)
)]
pub async fn show_template(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, _, client_id) = admin_client(depot, client_override(req)?).await?;
    let id = path_id(req, "routineTemplateId")?;
    let row = find(&state, &client_id, &id).await?;
    res.render(Json(json!({"routineTemplate": row.to_json()})));
    Ok(())
}

/// `PATCH .../routine-templates/{routineTemplateId}` (any template field) → `{"routineTemplate"}`.
/// Library templates are read-only (403); another client's template is a 404. Queued routine
/// instances keep the steps they were created with.
#[endpoint(
    tags("b2b"),
    summary = "Update the client's own routine template",
    security(("bearer" = [])),
    parameters(
        ("routineTemplateId" = String, Path, min_length = 1, max_length = 200, description = "Routine template id"),
        ("clientId" = Option<String>, Query, max_length = 200, description = "admin only: the client acted on (default: the caller's)"),
    ),
    request_body = s::TemplatePatch,
    responses(
        (status_code = 200, description = "The template", body = s::RoutineTemplateBody),
    ),
    status_codes(200, 400, 401, 403, 404, 413, 500, 503)
)]
pub async fn update_template(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, _, client_id) = admin_client(depot, client_override(req)?).await?;
    let id = path_id(req, "routineTemplateId")?;
    let body = read_json(req, &state).await?;
    let existing = find(&state, &client_id, &id).await?;
    if existing.is_library() {
        return Err(read_only(&id));
    }
    let fields = read_template(&body, false)?;
    if !db::update_template(&state.db, &client_id, &id, &fields).await? {
        return Err(ApiError::NotFound(format!(
            "routine template {id} not found"
        )));
    }
    let row = find(&state, &client_id, &id).await?;
    res.render(Json(json!({"routineTemplate": row.to_json()})));
    Ok(())
}

/// `POST .../routine-templates/{routineTemplateId}/publish` → `{"routineTemplate"}` (idempotent).
#[endpoint(
    tags("b2b"),
    summary = "Publish the client's own routine template",
    security(("bearer" = [])),
    parameters(
        ("routineTemplateId" = String, Path, min_length = 1, max_length = 200, description = "Routine template id"),
        ("clientId" = Option<String>, Query, max_length = 200, description = "admin only: the client acted on (default: the caller's)"),
    ),
    responses(
        (status_code = 200, description = "The published template", body = s::RoutineTemplateBody),
    ),
    status_codes(200, 400, 401, 403, 404, 500, 503)
)]
pub async fn publish_template(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, _, client_id) = admin_client(depot, client_override(req)?).await?;
    let id = path_id(req, "routineTemplateId")?;
    let existing = find(&state, &client_id, &id).await?;
    if existing.is_library() {
        return Err(read_only(&id));
    }
    if !db::publish_template(&state.db, &client_id, &id).await? {
        return Err(ApiError::NotFound(format!(
            "routine template {id} not found"
        )));
    }
    let row = find(&state, &client_id, &id).await?;
    res.render(Json(json!({"routineTemplate": row.to_json()})));
    Ok(())
}

async fn catalog_json(state: &crate::state::AppState, client_id: &str) -> Result<Value, ApiError> {
    let rows: Vec<db::TemplateRow> = db::list_templates(&state.db, client_id)
        .await?
        .into_iter()
        .filter(db::TemplateRow::is_library)
        .collect();
    let visible: Vec<&str> = rows
        .iter()
        .filter(|t| t.visible)
        .map(|t| t.id.as_str())
        .collect();
    let customized = db::catalog_customized(&state.db, client_id).await?;
    let list: Vec<Value> = rows.iter().map(db::TemplateRow::to_json).collect();
    Ok(json!({"catalog": {
        "clientId": client_id,
        "customized": customized,
        "visibleRoutineTemplateIds": visible,
        "routineTemplates": list,
    }}))
}

/// `GET /api/b2b/ai-training/catalog` → `{"catalog": {"clientId", "customized",
/// "visibleRoutineTemplateIds", "routineTemplates"}}`.
#[endpoint(
    tags("b2b"),
    summary = "The client's library catalog",
    security(("bearer" = [])),
    parameters(
        ("clientId" = Option<String>, Query, max_length = 200, description = "admin only: the client acted on (default: the caller's)"),
    ),
    responses(
        (status_code = 200, description = "The catalog", body = s::CatalogBody),
    ),
    status_codes(200, 400, 401, 403, 500, 503)
)]
pub async fn show_catalog(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, _, client_id) = admin_client(depot, client_override(req)?).await?;
    res.render(Json(catalog_json(&state, &client_id).await?));
    Ok(())
}

/// `PATCH /api/b2b/ai-training/catalog` `{"visibleRoutineTemplateIds": [...]}`: exactly these
/// library templates become visible (the others hidden). Unknown ids are a 400.
#[endpoint(
    tags("b2b"),
    summary = "Set which library templates are visible",
    security(("bearer" = [])),
    parameters(
        ("clientId" = Option<String>, Query, max_length = 200, description = "admin only: the client acted on (default: the caller's)"),
    ),
    request_body = s::CatalogPatch,
    responses(
        (status_code = 200, description = "The catalog", body = s::CatalogBody),
    ),
    status_codes(200, 400, 401, 403, 413, 500, 503)
)]
pub async fn update_catalog(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, _, client_id) = admin_client(depot, client_override(req)?).await?;
    let body = read_json(req, &state).await?;
    let mut r = FieldReader::new(&body).map_err(ApiError::validation)?;
    let ids: Option<Vec<String>> = match r.raw("visibleRoutineTemplateIds") {
        None => {
            r.error("visibleRoutineTemplateIds", "is required");
            None
        }
        Some(v) => match v.as_array() {
            Some(items) if items.len() <= 1000 && items.iter().all(Value::is_string) => Some(
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect(),
            ),
            _ => {
                r.error(
                    "visibleRoutineTemplateIds",
                    "must be an array of at most 1000 routine template ids",
                );
                None
            }
        },
    };
    if let Some(ids) = &ids {
        let known = db::library_ids(&state.db, ids).await?;
        let unknown: Vec<&str> = ids
            .iter()
            .filter(|i| !known.contains(i))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            r.error(
                "visibleRoutineTemplateIds",
                format!("not GOFA library templates: {}", unknown.join(", ")),
            );
        }
    }
    r.finish().map_err(ApiError::validation)?;
    db::set_catalog(&state.db, &client_id, &ids.unwrap_or_default()).await?;
    res.render(Json(catalog_json(&state, &client_id).await?));
    Ok(())
}

/// `GET /api/b2b/ai-training/settings` → `{"settings": {"clientId", "deferLimit"}}`.
#[endpoint(
    tags("b2b"),
    summary = "The client's AI Training settings",
    security(("bearer" = [])),
    parameters(
        ("clientId" = Option<String>, Query, max_length = 200, description = "admin only: the client acted on (default: the caller's)"),
    ),
    responses(
        (status_code = 200, description = "Settings", body = s::SettingsBody),
    ),
    status_codes(200, 400, 401, 403, 500, 503)
)]
pub async fn show_settings(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, _, client_id) = admin_client(depot, client_override(req)?).await?;
    let limit = db::defer_limit(&state.db, &client_id).await?;
    res.render(Json(
        json!({"settings": {"clientId": client_id, "deferLimit": limit}}),
    ));
    Ok(())
}

/// `PATCH /api/b2b/ai-training/settings` `{"deferLimit": 0..=100}` → `{"settings"}`.
#[endpoint(
    tags("b2b"),
    summary = "Change the client's AI Training settings",
    security(("bearer" = [])),
    parameters(
        ("clientId" = Option<String>, Query, max_length = 200, description = "admin only: the client acted on (default: the caller's)"),
    ),
    request_body = s::SettingsPatch,
    responses(
        (status_code = 200, description = "Settings", body = s::SettingsBody),
    ),
    status_codes(200, 400, 401, 403, 413, 500, 503)
)]
pub async fn update_settings(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let (state, _, client_id) = admin_client(depot, client_override(req)?).await?;
    let body = read_json(req, &state).await?;
    let mut r = FieldReader::new(&body).map_err(ApiError::validation)?;
    let limit = r.required_int("deferLimit", 0, 100);
    r.finish().map_err(ApiError::validation)?;
    let limit = limit.unwrap_or(db::DEFAULT_DEFER_LIMIT.into()) as i32;
    db::set_defer_limit(&state.db, &client_id, limit).await?;
    res.render(Json(
        json!({"settings": {"clientId": client_id, "deferLimit": limit}}),
    ));
    Ok(())
}
