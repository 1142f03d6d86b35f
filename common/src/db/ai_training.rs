//! AI Training tables (migration `20261123200000_ai_training.sql`). Every query is scoped by the
//! client (tenant) and, for user data, by the user, so a caller can never reach another tenant's
//! or another user's rows through these functions.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};

use crate::ai_training::run::{RunStep, Summary, TemplateStep};

/// Default per-instance defer limit of a client without a settings row.
pub const DEFAULT_DEFER_LIMIT: i32 = 2;

// ---------------------------------------------------------------------------------------------
// Templates and catalog

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TemplateRow {
    pub id: String,
    pub owner_client_id: Option<String>,
    pub name: String,
    pub description: String,
    pub goal: String,
    pub intensity: String,
    pub duration_minutes: i32,
    pub equipment: Vec<String>,
    pub steps: Json<Vec<TemplateStep>>,
    pub status: String,
    pub published_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Visible to the requesting client (library: per the catalog; own templates: always).
    pub visible: bool,
}

impl TemplateRow {
    pub fn is_library(&self) -> bool {
        self.owner_client_id.is_none()
    }

    /// Usable by the plan generator and assignments.
    pub fn is_usable(&self) -> bool {
        self.visible && self.status == "published"
    }

    pub fn to_json(&self) -> Value {
        let steps: Vec<Value> = self
            .steps
            .0
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut v = json!({"sequenceIndex": i, "stepId": s.step_id, "exerciseId": s.exercise_id, "guided": s.guided});
                if let Some(d) = s.duration_seconds {
                    v["durationSeconds"] = json!(d);
                }
                if let Some(r) = s.reps {
                    v["reps"] = json!(r);
                }
                v
            })
            .collect();
        json!({
            "routineTemplateId": self.id,
            "source": if self.is_library() { "library" } else { "client" },
            "clientId": self.owner_client_id,
            "name": self.name,
            "description": self.description,
            "goal": self.goal,
            "intensity": self.intensity,
            "durationMinutes": self.duration_minutes,
            "equipment": self.equipment,
            "status": self.status,
            "visible": self.visible,
            "exerciseSteps": steps,
            "publishedAt": self.published_at,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        })
    }
}

/// `visible` for the client `$1`: own templates always; library templates per the catalog, all
/// of them while the client has no catalog rows.
const TEMPLATE_SELECT: &str = "
    select t.*, case when t.owner_client_id is null
        then coalesce(c.visible, not exists (select 1 from ai_training_catalog x where x.client_id = $1))
        else true end as visible
    from ai_routine_templates t
    left join ai_training_catalog c on c.client_id = $1 and c.routine_template_id = t.id
    where (t.owner_client_id is null or t.owner_client_id = $1)";

/// Library templates and the client's own, library first, then by name.
pub async fn list_templates(
    db: impl PgExecutor<'_>,
    client_id: &str,
) -> sqlx::Result<Vec<TemplateRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{TEMPLATE_SELECT} order by t.owner_client_id nulls first, t.name, t.id"
    )))
    .bind(client_id)
    .fetch_all(db)
    .await
}

/// A library template or one of the client's own; `None` for unknown or another client's.
pub async fn get_template(
    db: impl PgExecutor<'_>,
    client_id: &str,
    id: &str,
) -> sqlx::Result<Option<TemplateRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{TEMPLATE_SELECT} and t.id = $2"
    )))
    .bind(client_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Fields of a client template; `None` keeps the stored value on update.
#[derive(Debug, Clone, Default)]
pub struct TemplateFields {
    pub name: Option<String>,
    pub description: Option<String>,
    pub goal: Option<String>,
    pub intensity: Option<String>,
    pub duration_minutes: Option<i64>,
    pub equipment: Option<Vec<String>>,
    pub steps: Option<Vec<TemplateStep>>,
}

pub async fn insert_template(
    db: impl PgExecutor<'_>,
    client_id: &str,
    id: &str,
    f: &TemplateFields,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into ai_routine_templates
            (id, owner_client_id, name, description, goal, intensity, duration_minutes, equipment, steps, status)
         values ($1, $2, $3, coalesce($4, ''), $5, $6, $7, coalesce($8, '{none}'), $9, 'draft')",
    )
    .bind(id)
    .bind(client_id)
    .bind(&f.name)
    .bind(&f.description)
    .bind(&f.goal)
    .bind(&f.intensity)
    .bind(f.duration_minutes.map(|m| m as i32))
    .bind(&f.equipment)
    .bind(f.steps.as_ref().map(Json))
    .execute(db)
    .await?;
    Ok(())
}

/// Updates one of the client's own templates; false when it is not theirs.
pub async fn update_template(
    db: impl PgExecutor<'_>,
    client_id: &str,
    id: &str,
    f: &TemplateFields,
) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "update ai_routine_templates set
            name = coalesce($3, name), description = coalesce($4, description),
            goal = coalesce($5, goal), intensity = coalesce($6, intensity),
            duration_minutes = coalesce($7, duration_minutes), equipment = coalesce($8, equipment),
            steps = coalesce($9, steps), updated_at = now()
         where id = $2 and owner_client_id = $1",
    )
    .bind(client_id)
    .bind(id)
    .bind(&f.name)
    .bind(&f.description)
    .bind(&f.goal)
    .bind(&f.intensity)
    .bind(f.duration_minutes.map(|m| m as i32))
    .bind(&f.equipment)
    .bind(f.steps.as_ref().map(Json))
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Publishes one of the client's own templates (idempotent); false when it is not theirs.
pub async fn publish_template(
    db: impl PgExecutor<'_>,
    client_id: &str,
    id: &str,
) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "update ai_routine_templates set status = 'published',
            published_at = coalesce(published_at, now()), updated_at = now()
         where id = $2 and owner_client_id = $1",
    )
    .bind(client_id)
    .bind(id)
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Ids of library templates that exist among `ids`.
pub async fn library_ids(db: impl PgExecutor<'_>, ids: &[String]) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "select id from ai_routine_templates where owner_client_id is null and id = any($1)",
    )
    .bind(ids)
    .fetch_all(db)
    .await
}

/// Makes exactly `visible_ids` of the library visible to the client (one row per library template).
pub async fn set_catalog(
    db: impl PgExecutor<'_>,
    client_id: &str,
    visible_ids: &[String],
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into ai_training_catalog (client_id, routine_template_id, visible)
         select $1, id, id = any($2) from ai_routine_templates where owner_client_id is null
         on conflict (client_id, routine_template_id)
         do update set visible = excluded.visible, updated_at = now()",
    )
    .bind(client_id)
    .bind(visible_ids)
    .execute(db)
    .await?;
    Ok(())
}

/// Whether the client has chosen its catalog (else every library template is visible).
pub async fn catalog_customized(db: impl PgExecutor<'_>, client_id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("select exists (select 1 from ai_training_catalog where client_id = $1)")
        .bind(client_id)
        .fetch_one(db)
        .await
}

pub async fn defer_limit(db: impl PgExecutor<'_>, client_id: &str) -> sqlx::Result<i32> {
    let limit: Option<i32> =
        sqlx::query_scalar("select defer_limit from ai_training_settings where client_id = $1")
            .bind(client_id)
            .fetch_optional(db)
            .await?;
    Ok(limit.unwrap_or(DEFAULT_DEFER_LIMIT))
}

pub async fn set_defer_limit(
    db: impl PgExecutor<'_>,
    client_id: &str,
    limit: i32,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into ai_training_settings (client_id, defer_limit) values ($1, $2)
         on conflict (client_id) do update set defer_limit = excluded.defer_limit, updated_at = now()",
    )
    .bind(client_id)
    .bind(limit)
    .execute(db)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Assessments

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AssessmentRow {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub r#type: String,
    pub risk_tier: Option<String>,
    pub data: Json<Value>,
    pub recorded_by: String,
    pub created_at: DateTime<Utc>,
}

impl AssessmentRow {
    pub fn to_json(&self) -> Value {
        json!({
            "assessmentId": self.id,
            "clientId": self.client_id,
            "userId": self.user_id,
            "type": self.r#type,
            "riskTier": self.risk_tier,
            "data": self.data.0,
            "recordedBy": self.recorded_by,
            "createdAt": self.created_at,
        })
    }
}

pub struct NewAssessment<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub r#type: &'a str,
    pub risk_tier: Option<&'a str>,
    pub data: &'a Value,
    pub recorded_by: &'a str,
}

pub async fn insert_assessment(
    db: impl PgExecutor<'_>,
    a: &NewAssessment<'_>,
) -> sqlx::Result<AssessmentRow> {
    sqlx::query_as(
        "insert into ai_training_assessments (id, client_id, user_id, type, risk_tier, data, recorded_by)
         values ($1, $2, $3, $4, $5, $6, $7) returning *",
    )
    .bind(a.id)
    .bind(a.client_id)
    .bind(a.user_id)
    .bind(a.r#type)
    .bind(a.risk_tier)
    .bind(Json(a.data))
    .bind(a.recorded_by)
    .fetch_one(db)
    .await
}

/// The latest assessment of each type.
pub async fn latest_assessments(
    db: impl PgExecutor<'_>,
    client_id: &str,
    user_id: &str,
) -> sqlx::Result<Vec<AssessmentRow>> {
    sqlx::query_as(
        "select distinct on (type) * from ai_training_assessments
         where client_id = $1 and user_id = $2 order by type, created_at desc, id desc",
    )
    .bind(client_id)
    .bind(user_id)
    .fetch_all(db)
    .await
}

pub async fn list_assessments(
    db: impl PgExecutor<'_>,
    client_id: &str,
    user_id: &str,
    limit: i64,
) -> sqlx::Result<Vec<AssessmentRow>> {
    sqlx::query_as(
        "select * from ai_training_assessments where client_id = $1 and user_id = $2
         order by created_at desc, id desc limit $3",
    )
    .bind(client_id)
    .bind(user_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

// ---------------------------------------------------------------------------------------------
// Plans and routine instances

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PlanRow {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub status: String,
    pub goal: String,
    pub intensity: String,
    pub requested_intensity: String,
    pub frequency: i32,
    pub preferred_session_duration_minutes: i32,
    pub equipment_availability: Vec<String>,
    pub allow_duplicate_routine_templates: bool,
    pub generation_source: String,
    pub assessment_snapshot: Json<Value>,
    pub assigned_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PlanRow {
    pub fn to_json(&self) -> Value {
        json!({
            "planId": self.id,
            "clientId": self.client_id,
            "userId": self.user_id,
            "status": self.status,
            "goal": self.goal,
            "intensity": self.intensity,
            "requestedIntensity": self.requested_intensity,
            "frequency": self.frequency,
            "preferredSessionDurationMinutes": self.preferred_session_duration_minutes,
            "equipmentAvailability": self.equipment_availability,
            "allowDuplicateRoutineTemplates": self.allow_duplicate_routine_templates,
            "generationSource": self.generation_source,
            "assessmentSnapshot": self.assessment_snapshot.0,
            "assignedBy": self.assigned_by,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        })
    }
}

/// The newest plan of the user (active or replaced).
pub async fn latest_plan(
    db: impl PgExecutor<'_>,
    client_id: &str,
    user_id: &str,
) -> sqlx::Result<Option<PlanRow>> {
    sqlx::query_as(
        "select * from ai_training_plans where client_id = $1 and user_id = $2
         order by (status = 'active') desc, created_at desc, id desc limit 1",
    )
    .bind(client_id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

pub async fn active_plan(
    db: impl PgExecutor<'_>,
    client_id: &str,
    user_id: &str,
) -> sqlx::Result<Option<PlanRow>> {
    sqlx::query_as(
        "select * from ai_training_plans where client_id = $1 and user_id = $2 and status = 'active'",
    )
    .bind(client_id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// Serialises plan changes, run starts and run finishes of one user (held until the transaction
/// ends). Take it before any row lock on the user's plans, instances or runs.
pub async fn lock_user(tx: &mut PgConnection, client_id: &str, user_id: &str) -> sqlx::Result<()> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 6))")
        .bind(client_id)
        .bind(user_id)
        .execute(tx)
        .await?;
    Ok(())
}

/// Retires the active plan: it becomes `replaced`, its open instances `cancelled` and their open
/// runs `abandoned`.
///
/// Callers hold [`lock_user`], as do `create_run` and `patch_run`, so no run is created or
/// finished on the plan meanwhile. The instances are still cancelled before the runs are
/// abandoned: the instance update waits for a transaction that locked an instance to start a
/// run, and the next statement then sees (and abandons) that run, so even a writer without the
/// user lock cannot leave an open run on a cancelled instance.
pub async fn retire_active_plan(
    tx: &mut PgConnection,
    client_id: &str,
    user_id: &str,
) -> sqlx::Result<()> {
    let old: Option<String> = sqlx::query_scalar(
        "update ai_training_plans set status = 'replaced', updated_at = now()
         where client_id = $1 and user_id = $2 and status = 'active' returning id",
    )
    .bind(client_id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(old) = old else { return Ok(()) };
    sqlx::query(
        "update ai_routine_instances set status = 'cancelled', updated_at = now()
         where plan_id = $1 and status in ('queued', 'in-progress')",
    )
    .bind(&old)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "update ai_routine_runs set status = 'abandoned', finished_at = now(), updated_at = now()
         where plan_id = $1 and status in ('created', 'in-progress')",
    )
    .bind(&old)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub struct NewPlan<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub goal: &'a str,
    pub intensity: &'a str,
    pub requested_intensity: &'a str,
    pub frequency: i64,
    pub preferred_session_duration_minutes: i64,
    pub equipment_availability: &'a [String],
    pub allow_duplicate_routine_templates: bool,
    pub generation_source: &'a str,
    pub assessment_snapshot: &'a Value,
    pub assigned_by: Option<&'a str>,
}

pub async fn insert_plan(tx: &mut PgConnection, p: &NewPlan<'_>) -> sqlx::Result<PlanRow> {
    sqlx::query_as(
        "insert into ai_training_plans (id, client_id, user_id, status, goal, intensity,
            requested_intensity, frequency, preferred_session_duration_minutes,
            equipment_availability, allow_duplicate_routine_templates, generation_source,
            assessment_snapshot, assigned_by)
         values ($1, $2, $3, 'active', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) returning *",
    )
    .bind(p.id)
    .bind(p.client_id)
    .bind(p.user_id)
    .bind(p.goal)
    .bind(p.intensity)
    .bind(p.requested_intensity)
    .bind(p.frequency as i32)
    .bind(p.preferred_session_duration_minutes as i32)
    .bind(p.equipment_availability)
    .bind(p.allow_duplicate_routine_templates)
    .bind(p.generation_source)
    .bind(Json(p.assessment_snapshot))
    .bind(p.assigned_by)
    .fetch_one(tx)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InstanceRow {
    pub id: String,
    pub plan_id: String,
    pub client_id: String,
    pub user_id: String,
    pub routine_template_id: String,
    pub routine_template_name: String,
    pub duration_minutes: i32,
    pub steps: Json<Vec<TemplateStep>>,
    pub queue_index: i32,
    pub status: String,
    pub defer_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl InstanceRow {
    pub fn to_json(&self) -> Value {
        json!({
            "routineInstanceId": self.id,
            "planId": self.plan_id,
            "routineTemplateId": self.routine_template_id,
            "routineTemplateName": self.routine_template_name,
            "queueIndex": self.queue_index,
            "status": self.status,
            "deferCount": self.defer_count,
            "durationMinutes": self.duration_minutes,
            "totalExercises": self.steps.0.len(),
            "createdAt": self.created_at,
            "completedAt": self.completed_at,
        })
    }
}

/// Appends an instance of `template` to the plan's queue (after the highest `queueIndex`).
pub async fn append_instance(
    tx: &mut PgConnection,
    plan: &PlanRow,
    id: &str,
    template: &TemplateRow,
) -> sqlx::Result<InstanceRow> {
    sqlx::query_as(
        "insert into ai_routine_instances (id, plan_id, client_id, user_id, routine_template_id,
            routine_template_name, duration_minutes, steps, queue_index, status)
         values ($1, $2, $3, $4, $5, $6, $7, $8,
            (select coalesce(max(queue_index) + 1, 0) from ai_routine_instances where plan_id = $2),
            'queued')
         returning *",
    )
    .bind(id)
    .bind(&plan.id)
    .bind(&plan.client_id)
    .bind(&plan.user_id)
    .bind(&template.id)
    .bind(&template.name)
    .bind(template.duration_minutes)
    .bind(&template.steps)
    .fetch_one(tx)
    .await
}

/// Queued and in-progress instances of the user's active plan, head first.
pub async fn queue(
    db: impl PgExecutor<'_>,
    client_id: &str,
    user_id: &str,
) -> sqlx::Result<Vec<InstanceRow>> {
    sqlx::query_as(
        "select i.* from ai_routine_instances i
         join ai_training_plans p on p.id = i.plan_id and p.status = 'active'
         where i.client_id = $1 and i.user_id = $2 and i.status in ('queued', 'in-progress')
         order by i.queue_index, i.id",
    )
    .bind(client_id)
    .bind(user_id)
    .fetch_all(db)
    .await
}

/// Queued and in-progress instances of one plan, head first.
pub async fn plan_queue(db: impl PgExecutor<'_>, plan_id: &str) -> sqlx::Result<Vec<InstanceRow>> {
    sqlx::query_as(
        "select * from ai_routine_instances
         where plan_id = $1 and status in ('queued', 'in-progress')
         order by queue_index, id",
    )
    .bind(plan_id)
    .fetch_all(db)
    .await
}

/// One of the user's instances, locked for update.
pub async fn lock_instance(
    tx: &mut PgConnection,
    client_id: &str,
    user_id: &str,
    id: &str,
) -> sqlx::Result<Option<InstanceRow>> {
    sqlx::query_as(
        "select * from ai_routine_instances where id = $3 and client_id = $1 and user_id = $2 for update",
    )
    .bind(client_id)
    .bind(user_id)
    .bind(id)
    .fetch_optional(tx)
    .await
}

/// Gives back a finished run's instance: `completed` completes it, `queued` puts it back in the
/// queue. Only an open (`queued`/`in-progress`) instance of the active plan changes: a cancelled
/// instance (its plan was replaced) stays cancelled.
pub async fn release_instance(tx: &mut PgConnection, id: &str, status: &str) -> sqlx::Result<()> {
    sqlx::query(
        "update ai_routine_instances i set status = $2, updated_at = now(),
            completed_at = case when $2 = 'completed' then now() else i.completed_at end
         from ai_training_plans p
         where i.id = $1 and p.id = i.plan_id and p.status = 'active'
           and i.status in ('queued', 'in-progress')",
    )
    .bind(id)
    .bind(status)
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn set_instance_status(
    tx: &mut PgConnection,
    id: &str,
    status: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "update ai_routine_instances set status = $2, updated_at = now(),
            completed_at = case when $2 = 'completed' then now() else completed_at end
         where id = $1",
    )
    .bind(id)
    .bind(status)
    .execute(tx)
    .await?;
    Ok(())
}

/// Moves the instance behind every other instance of its plan and counts the deferral.
pub async fn defer_instance(
    tx: &mut PgConnection,
    inst: &InstanceRow,
) -> sqlx::Result<InstanceRow> {
    sqlx::query_as(
        "update ai_routine_instances set defer_count = defer_count + 1, updated_at = now(),
            queue_index = (select max(queue_index) + 1 from ai_routine_instances where plan_id = $2)
         where id = $1 returning *",
    )
    .bind(&inst.id)
    .bind(&inst.plan_id)
    .fetch_one(tx)
    .await
}

// ---------------------------------------------------------------------------------------------
// Routine runs

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub routine_instance_id: String,
    pub plan_id: String,
    pub routine_template_id: String,
    pub routine_template_name: String,
    pub status: String,
    pub started_from: String,
    pub steps: Json<Vec<RunStep>>,
    pub completed_exercises: i32,
    pub total_exercises: i32,
    pub completion_rate: f64,
    pub total_duration_seconds: i32,
    pub total_calories_burned: f64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl RunRow {
    pub fn summary_json(&self) -> Value {
        json!({
            "completedExercises": self.completed_exercises,
            "totalExercises": self.total_exercises,
            "completionRate": self.completion_rate,
            "totalDurationSeconds": self.total_duration_seconds,
            "totalCaloriesBurned": self.total_calories_burned,
        })
    }

    /// The run without its steps (lists and records).
    pub fn to_brief_json(&self) -> Value {
        json!({
            "routineRunId": self.id,
            "routineInstanceId": self.routine_instance_id,
            "planId": self.plan_id,
            "clientId": self.client_id,
            "userId": self.user_id,
            "routineTemplateId": self.routine_template_id,
            "routineTemplateName": self.routine_template_name,
            "status": self.status,
            "startedFrom": self.started_from,
            "summary": self.summary_json(),
            "createdAt": self.created_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "updatedAt": self.updated_at,
        })
    }

    pub fn to_json(&self) -> Value {
        let mut v = self.to_brief_json();
        v["exerciseSteps"] = json!(self.steps.0);
        v
    }
}

pub struct NewRun<'a> {
    pub id: &'a str,
    pub instance: &'a InstanceRow,
    pub started_from: &'a str,
    pub steps: &'a [RunStep],
    pub summary: Summary,
}

pub async fn insert_run(tx: &mut PgConnection, r: &NewRun<'_>) -> sqlx::Result<RunRow> {
    sqlx::query_as(
        "insert into ai_routine_runs (id, client_id, user_id, routine_instance_id, plan_id,
            routine_template_id, routine_template_name, status, started_from, steps, total_exercises)
         values ($1, $2, $3, $4, $5, $6, $7, 'created', $8, $9, $10) returning *",
    )
    .bind(r.id)
    .bind(&r.instance.client_id)
    .bind(&r.instance.user_id)
    .bind(&r.instance.id)
    .bind(&r.instance.plan_id)
    .bind(&r.instance.routine_template_id)
    .bind(&r.instance.routine_template_name)
    .bind(r.started_from)
    .bind(Json(r.steps))
    .bind(r.summary.total_exercises as i32)
    .fetch_one(tx)
    .await
}

pub async fn get_run(
    db: impl PgExecutor<'_>,
    client_id: &str,
    user_id: &str,
    id: &str,
) -> sqlx::Result<Option<RunRow>> {
    sqlx::query_as(
        "select * from ai_routine_runs where id = $3 and client_id = $1 and user_id = $2",
    )
    .bind(client_id)
    .bind(user_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn lock_run(
    tx: &mut PgConnection,
    client_id: &str,
    user_id: &str,
    id: &str,
) -> sqlx::Result<Option<RunRow>> {
    sqlx::query_as(
        "select * from ai_routine_runs where id = $3 and client_id = $1 and user_id = $2 for update",
    )
    .bind(client_id)
    .bind(user_id)
    .bind(id)
    .fetch_optional(tx)
    .await
}

/// Runs of one user (`user_id` = `None`: of the whole client), newest first.
pub async fn list_runs(
    db: impl PgExecutor<'_>,
    client_id: &str,
    user_id: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<RunRow>> {
    sqlx::query_as(
        "select * from ai_routine_runs where client_id = $1 and ($2::text is null or user_id = $2)
         order by created_at desc, id desc limit $3",
    )
    .bind(client_id)
    .bind(user_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Writes the steps, the summary and (when it changes) the status with its timestamps.
pub async fn save_run(
    tx: &mut PgConnection,
    id: &str,
    status: &str,
    steps: &[RunStep],
    s: &Summary,
) -> sqlx::Result<RunRow> {
    sqlx::query_as(
        "update ai_routine_runs set status = $2, steps = $3, completed_exercises = $4,
            total_exercises = $5, completion_rate = $6, total_duration_seconds = $7,
            total_calories_burned = $8, updated_at = now(),
            started_at = case when $2 <> 'created' then coalesce(started_at, now()) else started_at end,
            finished_at = case when $2 in ('completed', 'abandoned') then coalesce(finished_at, now()) else finished_at end
         where id = $1 returning *",
    )
    .bind(id)
    .bind(status)
    .bind(Json(steps))
    .bind(s.completed_exercises as i32)
    .bind(s.total_exercises as i32)
    .bind(s.completion_rate)
    .bind(s.total_duration_seconds as i32)
    .bind(s.total_calories_burned)
    .fetch_one(tx)
    .await
}

/// `(created_at, completed)` of the user's runs created in `[start, end)`.
pub async fn runs_between(
    db: impl PgExecutor<'_>,
    client_id: &str,
    user_id: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> sqlx::Result<Vec<(DateTime<Utc>, bool)>> {
    sqlx::query_as(
        "select created_at, status = 'completed' from ai_routine_runs
         where client_id = $1 and user_id = $2 and created_at >= $3 and created_at < $4",
    )
    .bind(client_id)
    .bind(user_id)
    .bind(start)
    .bind(end)
    .fetch_all(db)
    .await
}

// ---------------------------------------------------------------------------------------------
// AI Move sessions

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub routine_run_id: Option<String>,
    pub sequence_index: Option<i32>,
    pub exercise_id: Option<String>,
    pub completed: bool,
    pub duration_seconds: i32,
    pub calories_burned: f64,
    pub reps_completed: Option<i32>,
    pub score: Option<f64>,
    pub metadata: Json<Value>,
    pub created_at: DateTime<Utc>,
}

impl SessionRow {
    pub fn to_json(&self) -> Value {
        json!({
            "aiMoveSessionId": self.id,
            "exerciseId": self.exercise_id,
            "metadata": self.metadata.0,
            "result": {
                "completed": self.completed,
                "durationSeconds": self.duration_seconds,
                "caloriesBurned": self.calories_burned,
                "repsCompleted": self.reps_completed,
                "score": self.score,
            },
            "createdAt": self.created_at,
        })
    }

    pub fn result(&self) -> crate::ai_training::run::SessionResult {
        crate::ai_training::run::SessionResult {
            id: self.id.clone(),
            completed: self.completed,
            duration_seconds: i64::from(self.duration_seconds),
            calories_burned: self.calories_burned,
            reps_completed: self.reps_completed.map(i64::from),
            score: self.score,
        }
    }
}

pub struct NewSession<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub routine_run_id: Option<&'a str>,
    pub sequence_index: Option<i64>,
    pub exercise_id: Option<&'a str>,
    pub completed: bool,
    pub duration_seconds: i64,
    pub calories_burned: f64,
    pub reps_completed: Option<i64>,
    pub score: Option<f64>,
    pub metadata: &'a Value,
}

pub async fn insert_session(
    db: impl PgExecutor<'_>,
    s: &NewSession<'_>,
) -> sqlx::Result<SessionRow> {
    sqlx::query_as(
        "insert into ai_move_sessions (id, client_id, user_id, routine_run_id, sequence_index,
            exercise_id, completed, duration_seconds, calories_burned, reps_completed, score, metadata)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) returning *",
    )
    .bind(s.id)
    .bind(s.client_id)
    .bind(s.user_id)
    .bind(s.routine_run_id)
    .bind(s.sequence_index.map(|i| i as i32))
    .bind(s.exercise_id)
    .bind(s.completed)
    .bind(s.duration_seconds as i32)
    .bind(s.calories_burned)
    .bind(s.reps_completed.map(|r| r as i32))
    .bind(s.score)
    .bind(Json(s.metadata))
    .fetch_one(db)
    .await
}

/// One of the user's sessions.
pub async fn get_session(
    db: impl PgExecutor<'_>,
    client_id: &str,
    user_id: &str,
    id: &str,
) -> sqlx::Result<Option<SessionRow>> {
    sqlx::query_as(
        "select * from ai_move_sessions where id = $3 and client_id = $1 and user_id = $2",
    )
    .bind(client_id)
    .bind(user_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The newest session of each step of a run.
pub async fn latest_sessions(
    db: impl PgExecutor<'_>,
    run_id: &str,
) -> sqlx::Result<Vec<SessionRow>> {
    sqlx::query_as(
        "select distinct on (sequence_index) * from ai_move_sessions
         where routine_run_id = $1 and sequence_index is not null
         order by sequence_index, created_at desc, id desc",
    )
    .bind(run_id)
    .fetch_all(db)
    .await
}

// ---------------------------------------------------------------------------------------------
// Custom tokens

/// Stores the SHA-256 of `token` (computed by PostgreSQL) with the claims it stands for.
pub async fn insert_custom_token(
    db: impl PgExecutor<'_>,
    token: &str,
    user_id: &str,
    claims: &Value,
    expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    insert_token(
        db,
        "insert into ai_training_custom_tokens (token_hash, user_id, claims, expires_at)
         values (sha256(convert_to($1, 'UTF8')), $2, $3, $4)",
        (token, user_id, claims, expires_at),
    )
    .await
}

/// Stores a login session's SHA-256 (computed by PostgreSQL) with the claims it stands for.
pub async fn insert_login_session(
    db: impl PgExecutor<'_>,
    token: &str,
    user_id: &str,
    claims: &Value,
    expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    insert_token(
        db,
        "insert into ai_training_login_sessions (token_hash, user_id, claims, expires_at)
         values (sha256(convert_to($1, 'UTF8')), $2, $3, $4)",
        (token, user_id, claims, expires_at),
    )
    .await
}

async fn insert_token(
    db: impl PgExecutor<'_>,
    sql: &'static str,
    (token, user_id, claims, expires_at): (&str, &str, &Value, DateTime<Utc>),
) -> sqlx::Result<()> {
    sqlx::query(sql)
        .bind(token)
        .bind(user_id)
        .bind(Json(claims))
        .bind(expires_at)
        .execute(db)
        .await?;
    Ok(())
}

/// The claims of an unexpired login session, else `None`.
pub async fn login_session_claims(
    db: impl PgExecutor<'_>,
    token: &str,
) -> sqlx::Result<Option<Value>> {
    let claims: Option<Json<Value>> = sqlx::query_scalar(
        "select claims from ai_training_login_sessions
         where token_hash = sha256(convert_to($1, 'UTF8')) and expires_at > now()",
    )
    .bind(token)
    .fetch_optional(db)
    .await?;
    Ok(claims.map(|c| c.0))
}

/// Deletes up to `limit` expired custom tokens and as many expired login sessions (nothing
/// accepts them any more); returns how many went.
pub async fn delete_expired_tokens(db: &sqlx::PgPool, limit: i64) -> sqlx::Result<u64> {
    let mut deleted = 0;
    for table in ["ai_training_custom_tokens", "ai_training_login_sessions"] {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "delete from {table} where token_hash in (
                select token_hash from {table} where expires_at < now() limit $1)"
        )))
        .bind(limit)
        .execute(db)
        .await?;
        deleted += r.rows_affected();
    }
    Ok(deleted)
}

/// Consumes a custom token atomically: its claims the first time while unexpired, else `None`.
pub async fn consume_custom_token(
    db: impl PgExecutor<'_>,
    token: &str,
) -> sqlx::Result<Option<Value>> {
    let claims: Option<Json<Value>> = sqlx::query_scalar(
        "update ai_training_custom_tokens set used_at = now()
         where token_hash = sha256(convert_to($1, 'UTF8')) and used_at is null and expires_at > now()
         returning claims",
    )
    .bind(token)
    .fetch_optional(db)
    .await?;
    Ok(claims.map(|c| c.0))
}
