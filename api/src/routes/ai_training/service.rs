//! Operations shared by the end-user and admin routes: plan generation, template assignment,
//! assessments and the assessment snapshot.

use pacer_common::ai_training::plan::{self, Candidate, PlanRequest};
use pacer_common::ai_training::{ASSESSMENT_TYPES, GOALS, INTENSITIES, RISK_TIERS, new_id};
use pacer_common::db::ai_training as db;
use pacer_common::validate::FieldReader;
use serde_json::{Value, json};

use super::label_list;
use crate::error::ApiError;
use crate::state::AppState;

/// The optional plan fields of `generate` / `assign-starter-plan` (and of a `preferences`
/// assessment's `data`). `None` = not given.
#[derive(Debug, Clone, Default)]
pub struct PlanFields {
    pub goal: Option<String>,
    pub intensity: Option<String>,
    pub frequency: Option<i64>,
    pub preferred_session_duration_minutes: Option<i64>,
    pub equipment_availability: Option<Vec<String>>,
    pub allow_duplicate_routine_templates: Option<bool>,
}

/// Reads the plan fields, collecting every invalid one into `r`.
pub fn read_plan_fields(r: &mut FieldReader<'_>) -> PlanFields {
    PlanFields {
        goal: r.opt_enum("goal", &GOALS),
        intensity: r.opt_enum("intensity", &INTENSITIES),
        frequency: r.opt_int("frequency", 1, 14),
        preferred_session_duration_minutes: r.opt_int("preferredSessionDurationMinutes", 5, 120),
        equipment_availability: label_list(r, "equipmentAvailability", 20),
        allow_duplicate_routine_templates: r.opt_bool("allowDuplicateRoutineTemplates"),
    }
}

pub fn parse_plan_body(body: &Value) -> Result<PlanFields, ApiError> {
    let mut r = FieldReader::new(body).map_err(ApiError::validation)?;
    let fields = read_plan_fields(&mut r);
    r.finish().map_err(ApiError::validation)?;
    Ok(fields)
}

/// What the assessments say: the latest fall-risk tier, the stored preferences, the snapshot.
pub struct AssessmentState {
    pub latest_risk_tier: Option<String>,
    pub preferences: PlanFields,
    pub snapshot: Value,
}

pub async fn assessment_state(
    state: &AppState,
    client_id: &str,
    user_id: &str,
) -> Result<AssessmentState, ApiError> {
    let latest = db::latest_assessments(&state.db, client_id, user_id).await?;
    let find = |t: &str| latest.iter().find(|a| a.r#type == t);
    let latest_risk_tier = find("fallRisk").and_then(|a| a.risk_tier.clone());
    // preferences were validated when recorded; unreadable old data counts as none
    let preferences = find("preferences")
        .and_then(|a| FieldReader::new(&a.data.0).ok())
        .map(|mut r| read_plan_fields(&mut r))
        .unwrap_or_default();
    let (available, missing): (Vec<&str>, Vec<&str>) =
        ASSESSMENT_TYPES.iter().partition(|t| find(t).is_some());
    let snapshot = json!({
        "latestRiskTier": latest_risk_tier,
        "availableInputs": available,
        "missingInputs": missing,
    });
    Ok(AssessmentState {
        latest_risk_tier,
        preferences,
        snapshot,
    })
}

/// Runs the generator for the user and makes its plan the active one (replacing the previous
/// active plan, whose open instances are cancelled). 409 when no template is eligible; then
/// nothing changes.
pub async fn generate_plan(
    state: &AppState,
    client_id: &str,
    user_id: &str,
    fields: &PlanFields,
    assigned_by: Option<&str>,
) -> Result<(db::PlanRow, Vec<db::InstanceRow>), ApiError> {
    let assessed = assessment_state(state, client_id, user_id).await?;
    let prefs = &assessed.preferences;
    let defaults = PlanRequest::default();
    let req = PlanRequest {
        goal: fields
            .goal
            .clone()
            .or_else(|| prefs.goal.clone())
            .unwrap_or(defaults.goal),
        intensity: fields
            .intensity
            .clone()
            .or_else(|| prefs.intensity.clone())
            .unwrap_or(defaults.intensity),
        frequency: fields
            .frequency
            .or(prefs.frequency)
            .map_or(defaults.frequency, |f| f.max(1) as usize),
        preferred_session_duration_minutes: fields
            .preferred_session_duration_minutes
            .or(prefs.preferred_session_duration_minutes)
            .unwrap_or(defaults.preferred_session_duration_minutes),
        equipment_availability: fields
            .equipment_availability
            .clone()
            .or_else(|| prefs.equipment_availability.clone())
            .unwrap_or(defaults.equipment_availability),
        allow_duplicate_routine_templates: fields
            .allow_duplicate_routine_templates
            .or(prefs.allow_duplicate_routine_templates)
            .unwrap_or(defaults.allow_duplicate_routine_templates),
    };
    let risk = assessed.latest_risk_tier.as_deref();
    let templates: Vec<db::TemplateRow> = db::list_templates(&state.db, client_id)
        .await?
        .into_iter()
        .filter(db::TemplateRow::is_usable)
        .collect();
    let candidates: Vec<Candidate> = templates
        .iter()
        .map(|t| Candidate {
            id: t.id.clone(),
            name: t.name.clone(),
            goal: t.goal.clone(),
            intensity: t.intensity.clone(),
            duration_minutes: i64::from(t.duration_minutes),
            equipment: t.equipment.clone(),
        })
        .collect();
    let picked = plan::select(&req, risk, &candidates);
    if picked.is_empty() {
        return Err(ApiError::Conflict(
            "no_eligible_routines",
            "no published, visible routine template fits the intensity cap and the available equipment".into(),
        ));
    }
    let effective = plan::effective_intensity(&req.intensity, risk);
    let plan_id = new_id("plan");
    let mut tx = state.db.begin().await?;
    db::lock_user(&mut tx, client_id, user_id).await?;
    db::retire_active_plan(&mut tx, client_id, user_id).await?;
    let plan = db::insert_plan(
        &mut tx,
        &db::NewPlan {
            id: &plan_id,
            client_id,
            user_id,
            goal: &req.goal,
            intensity: effective,
            requested_intensity: &req.intensity,
            frequency: req.frequency as i64,
            preferred_session_duration_minutes: req.preferred_session_duration_minutes,
            equipment_availability: &req.equipment_availability,
            allow_duplicate_routine_templates: req.allow_duplicate_routine_templates,
            generation_source: "rules",
            assessment_snapshot: &assessed.snapshot,
            assigned_by,
        },
    )
    .await?;
    let mut instances = Vec::with_capacity(picked.len());
    for i in picked {
        let Some(template) = templates.get(i) else {
            continue;
        };
        instances.push(db::append_instance(&mut tx, &plan, &new_id("inst"), template).await?);
    }
    tx.commit().await?;
    Ok((plan, instances))
}

/// Appends one instance of a visible, published template to the user's queue, creating an
/// active plan (`generationSource: "assignment"`) when the user has none.
pub async fn assign_template(
    state: &AppState,
    client_id: &str,
    user_id: &str,
    template_id: &str,
    assigned_by: &str,
) -> Result<(db::PlanRow, db::InstanceRow), ApiError> {
    let template = db::get_template(&state.db, client_id, template_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("routine template {template_id} not found")))?;
    if !template.is_usable() {
        return Err(ApiError::field(
            "routineTemplateId",
            "is not published or not visible to this client",
        ));
    }
    let assessed = assessment_state(state, client_id, user_id).await?;
    let risk = assessed.latest_risk_tier.as_deref();
    if plan::effective_intensity(&template.intensity, risk) != template.intensity {
        return Err(ApiError::Conflict(
            "intensity_above_risk_cap",
            format!(
                "the template's {} intensity is above what the user's {} fall-risk tier allows",
                template.intensity,
                risk.unwrap_or("unknown")
            ),
        ));
    }
    let mut tx = state.db.begin().await?;
    db::lock_user(&mut tx, client_id, user_id).await?;
    let plan = match db::active_plan(&mut *tx, client_id, user_id).await? {
        Some(p) => p,
        None => {
            let id = new_id("plan");
            db::insert_plan(
                &mut tx,
                &db::NewPlan {
                    id: &id,
                    client_id,
                    user_id,
                    goal: &template.goal,
                    intensity: &template.intensity,
                    requested_intensity: &template.intensity,
                    frequency: 1,
                    preferred_session_duration_minutes: i64::from(template.duration_minutes),
                    equipment_availability: &[],
                    allow_duplicate_routine_templates: false,
                    generation_source: "assignment",
                    assessment_snapshot: &assessed.snapshot,
                    assigned_by: Some(assigned_by),
                },
            )
            .await?
        }
    };
    let instance = db::append_instance(&mut tx, &plan, &new_id("inst"), &template).await?;
    tx.commit().await?;
    Ok((plan, instance))
}

/// Validates and stores an assessment; returns it with the new snapshot.
pub async fn record_assessment(
    state: &AppState,
    client_id: &str,
    user_id: &str,
    recorded_by: &str,
    body: &Value,
) -> Result<Value, ApiError> {
    let mut r = FieldReader::new(body).map_err(ApiError::validation)?;
    let kind = r.required_enum("type", &ASSESSMENT_TYPES);
    let risk_tier = r.opt_enum("riskTier", &RISK_TIERS);
    if kind.as_deref() == Some("fallRisk") && risk_tier.is_none() && r.raw("riskTier").is_none() {
        r.error("riskTier", "is required for a fallRisk assessment");
    }
    let data = r.raw("data").cloned().unwrap_or_else(|| json!({}));
    match r.child("data") {
        Ok(mut d) if kind.as_deref() == Some("preferences") => {
            read_plan_fields(&mut d);
            if let Err(errors) = d.finish() {
                r.extend(errors);
            }
        }
        Ok(_) => {}
        Err(errors) => {
            if r.raw("data").is_some() {
                r.extend(errors);
            }
        }
    }
    if data.to_string().len() > 16_000 {
        r.error("data", "must be at most 16000 bytes of JSON");
    }
    r.finish().map_err(ApiError::validation)?;
    let Some(kind) = kind else {
        return Err(ApiError::field("type", "is required"));
    };
    let id = new_id("asm");
    let row = db::insert_assessment(
        &state.db,
        &db::NewAssessment {
            id: &id,
            client_id,
            user_id,
            r#type: &kind,
            risk_tier: risk_tier.as_deref(),
            data: &data,
            recorded_by,
        },
    )
    .await?;
    let snapshot = assessment_state(state, client_id, user_id).await?.snapshot;
    Ok(json!({"assessment": row.to_json(), "assessmentSnapshot": snapshot}))
}

/// The user's assessments (newest first) and the snapshot.
pub async fn assessments(
    state: &AppState,
    client_id: &str,
    user_id: &str,
    limit: i64,
) -> Result<Value, ApiError> {
    let rows = db::list_assessments(&state.db, client_id, user_id, limit).await?;
    let snapshot = assessment_state(state, client_id, user_id).await?.snapshot;
    let list: Vec<Value> = rows.iter().map(db::AssessmentRow::to_json).collect();
    Ok(json!({"assessments": list, "assessmentSnapshot": snapshot}))
}
