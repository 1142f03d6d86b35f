//! Documentation-only types for the OpenAPI document (`GET /api-docs/openapi.json`).
//!
//! The handlers keep validating bodies themselves (every invalid field is collected into one
//! 400); these types only describe the wire format in `#[endpoint(...)]` attributes. Field names
//! follow the seeds exactly: AI Coach, Analytics and the Jobs API are snake_case, AI Training
//! camelCase. `tests/tests/integration/openapi.rs` compares the AI Coach fields with seed 000
//! and the Analytics fields and query parameters with seed 004.

use salvo::oapi::{
    BasicType, Components, EndpointOutRegister, Object, Operation, RefOr, Response, Schema,
    ToSchema,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;

// ---------------------------------------------------------------------------------------------
// The shared error body
// ---------------------------------------------------------------------------------------------

/// `"error"`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ErrorStatus {
    Error,
}

/// One invalid field.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// The field, as sent (`input.weeks`, `content_blocks[0].type`, a query parameter…).
    pub field: String,
    pub message: String,
}

/// Every error: `{"status": "error", "code", "error", "details": [{"field", "message"}]}`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub status: ErrorStatus,
    /// Machine-readable: `validation_error`, `malformed_json`, `unauthorized`, `token_expired`,
    /// `invalid_custom_token`, `forbidden`, `not_found`, `idempotency_conflict`, `job_finished`,
    /// `payload_too_large`, `generation_failed`, `internal_error`, `unavailable` (503 with
    /// `Retry-After`: PostgreSQL or Redis out of reach), …
    pub code: String,
    /// A sentence; for a validation error it names the first invalid field.
    pub error: String,
    /// Every invalid field (empty for other errors).
    pub details: Vec<ErrorDetail>,
}

const ERROR_RESPONSES: [(&str, &str); 8] = [
    (
        "400",
        "Invalid request: every invalid field is listed in `details` (`validation_error`), or the body is not JSON (`malformed_json`)",
    ),
    (
        "401",
        "Missing, invalid or expired credentials (`unauthorized`, `token_expired`, `invalid_custom_token`)",
    ),
    (
        "403",
        "Wrong role, or the feature is not enabled (`forbidden`)",
    ),
    ("404", "Unknown, or not visible to the caller (`not_found`)"),
    ("409", "Conflict with the current state"),
    (
        "413",
        "Body larger than the configured limit (`payload_too_large`)",
    ),
    ("500", "Internal error"),
    ("503", "A dependency is unavailable"),
];

/// Every error status with the shared error body; each endpoint keeps the ones that apply with
/// `status_codes(...)`.
impl EndpointOutRegister for ApiError {
    fn register(components: &mut Components, operation: &mut Operation) {
        let schema: RefOr<Schema> = ErrorBody::to_schema(components);
        for (code, description) in ERROR_RESPONSES {
            operation.responses.insert(
                code,
                Response::new(description).add_content("application/json", schema.clone()),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Common pieces
// ---------------------------------------------------------------------------------------------

/// `"success"`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SuccessStatus {
    Success,
}

/// `"accepted"`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AcceptedStatus {
    Accepted,
}

/// Job kinds (a wire contract).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKindName {
    GenerateDraft,
    GeneratePlan,
    RecomputeStats,
    RecomputeBatch,
}

/// Job states: `queued → running → succeeded | failed | cancelled`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStateName {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

// ---------------------------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------------------------

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Healthz {
    /// `ok`
    pub status: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Readyz {
    /// `ok`, `unavailable` (a dependency does not answer) or `draining` (shutting down)
    pub status: String,
    pub postgres: bool,
    pub redis: bool,
}

// ---------------------------------------------------------------------------------------------
// Jobs API
// ---------------------------------------------------------------------------------------------

/// `POST /api/v1/jobs`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SubmitJob {
    pub kind: JobKindName,
    /// The kind's input: for `generate_draft` / `generate_plan` the AI Coach request body
    /// (`GenerateDraftRequest` / `GeneratePlanRequest`), `{"user_id"}` for `recompute_stats`,
    /// `{"org_id"}` for `recompute_batch`. Validated before anything is queued.
    #[salvo(schema(value_type = Object))]
    pub input: Value,
}

/// The links of a queued or running job.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobAccepted {
    pub job_id: uuid::Uuid,
    pub kind: JobKindName,
    pub state: JobStateName,
    /// Set when a synchronous AI Coach route stopped waiting.
    pub message: Option<String>,
    pub status_url: String,
    pub events_url: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobAcceptedEnvelope {
    pub status: AcceptedStatus,
    pub data: JobAccepted,
}

/// A job as the Jobs API shows it.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub job_id: uuid::Uuid,
    pub kind: JobKindName,
    pub state: JobStateName,
    /// 0–100. While running, saved at each lease refresh (every few seconds); the event
    /// stream is live.
    #[salvo(schema(minimum = 0, maximum = 100))]
    pub progress: i64,
    pub message: Option<String>,
    pub attempts: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub status_url: String,
    pub events_url: String,
    /// The result (succeeded jobs only): the AI Coach `DraftResult` / `PlanResult`, or the
    /// analytics summary.
    pub result: Option<Value>,
    /// Why the job failed or was cancelled.
    pub error: Option<String>,
    /// LLM token usage.
    pub usage: Option<Value>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobEnvelope {
    pub status: SuccessStatus,
    pub data: JobView,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Pagination {
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
    pub total_pages: i64,
    pub has_next: bool,
    pub has_prev: bool,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobView>,
    pub pagination: Pagination,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobListEnvelope {
    pub status: SuccessStatus,
    pub data: JobList,
}

/// The SSE event types.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Progress,
    Workout,
    WeeklyInfo,
    Result,
    Error,
    Done,
}

/// The `data:` line of one Server-Sent Event (`id:` is the job's event number, for
/// `Last-Event-ID`). By `type`:
/// - `progress`: `status`, `message`, `progress` (0–100), and `count`/`total` while workouts
///   are written;
/// - `workout`: `data` = one `PlanWorkout`;
/// - `weekly_info`: `data` = `{"<week>": WeeklyInfo}`, after the week's workouts (a week
///   left without workouts: right after the previous week's);
/// - `result`: `data` = the job's result (`DraftResult` / `PlanResult`); on
///   `generate-plan/stream-content` instead `total_workouts` and `weekly_info`;
/// - `error`: `error` (a sentence; `cancelled` for a cancelled job);
/// - `done`: last event, then the stream closes.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobEvent {
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub status: Option<String>,
    pub message: Option<String>,
    #[salvo(schema(minimum = 0, maximum = 100))]
    pub progress: Option<i64>,
    pub count: Option<i64>,
    pub total: Option<i64>,
    pub data: Option<Value>,
    pub error: Option<String>,
    pub total_workouts: Option<i64>,
    pub weekly_info: Option<Value>,
}

/// One Server-Sent Event as it is on the wire: `id:` (the job's event number, to resume with
/// `Last-Event-ID`) and `data:`, one JSON [`JobEvent`] (its `contentSchema`). Keep-alive
/// comments (`: keep-alive`) carry no event.
pub struct SseEvent;

impl ToSchema for SseEvent {
    fn to_schema(components: &mut Components) -> RefOr<Schema> {
        let payload = serde_json::to_value(JobEvent::to_schema(components)).unwrap_or(Value::Null);
        let text = || Object::with_type(BasicType::String);
        Object::new()
            .description(
                "One Server-Sent Event: `id` is the job's event number (resume with \
                 `Last-Event-ID`), `data` one JSON JobEvent.",
            )
            .property(
                "id",
                text().description("The job's event number (1, 2, 3…)"),
            )
            .property(
                "event",
                text().description("Always the default (`message`)"),
            )
            .property(
                "data",
                text()
                    .description("A JobEvent as JSON")
                    .content_media_type("application/json")
                    .add_extension("contentSchema", payload),
            )
            .property("retry", Object::with_type(BasicType::Integer))
            .required("data")
            .into()
    }
}

// ---------------------------------------------------------------------------------------------
// Admin
// ---------------------------------------------------------------------------------------------

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    CoachAgent,
    AiTraining,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Athlete,
    Coach,
    ClientAdmin,
    Admin,
}

/// `PUT /api/v1/admin/orgs/{org_id}` (every field optional).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct OrgUpsert {
    #[salvo(schema(max_length = 200))]
    pub name: Option<String>,
    pub features: Option<Vec<Feature>>,
    #[salvo(schema(max_length = 4000))]
    pub training_principle: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub features: Vec<String>,
    pub training_principle: Option<String>,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct OrgEnvelope {
    pub status: SuccessStatus,
    pub data: Org,
}

/// `PUT /api/v1/admin/users/{user_id}`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct UserUpsert {
    #[salvo(schema(min_length = 1, max_length = 200))]
    pub org_id: String,
    pub role: RoleName,
    #[salvo(schema(max_length = 200))]
    pub display_name: Option<String>,
    #[salvo(schema(max_length = 200))]
    pub username: Option<String>,
    #[salvo(schema(max_length = 320))]
    pub email: Option<String>,
    #[salvo(schema(max_length = 2000))]
    pub profile_image_url: Option<String>,
    #[salvo(schema(max_length = 200))]
    pub assigned_coach_id: Option<String>,
    pub groups: Option<Vec<String>>,
    pub labels: Option<Vec<String>>,
    /// IANA time zone, e.g. `Europe/London`.
    #[salvo(schema(max_length = 64))]
    pub timezone: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: String,
    pub org_id: Option<String>,
    pub role: String,
    pub display_name: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub profile_image_url: Option<String>,
    pub assigned_coach_id: Option<String>,
    pub groups: Option<Vec<String>>,
    pub labels: Option<Vec<String>>,
    pub timezone: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct UserEnvelope {
    pub status: SuccessStatus,
    pub data: User,
}

// ---------------------------------------------------------------------------------------------
// AI Coach (seed 000)
// ---------------------------------------------------------------------------------------------

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Beginner,
    Intermediate,
    Advanced,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkoutPreference {
    AiGenerate,
    PreferExisting,
    StrictExisting,
}

/// A recent race result (Pacer extension): paces come from its VDOT.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RecentRace {
    #[salvo(schema(minimum = 800, maximum = 100000))]
    pub distance_m: f64,
    #[salvo(schema(minimum = 60, maximum = 86400))]
    pub time_s: f64,
}

/// `POST /api/v1/ai-coach/generate-draft` (and `/stream`).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct GenerateDraftRequest {
    /// Plan length in weeks.
    #[salvo(schema(minimum = 1, maximum = 52))]
    pub weeks: i64,
    pub level: Level,
    /// The organization whose training principle applies.
    #[salvo(schema(min_length = 1, max_length = 200))]
    pub org_id: String,
    #[salvo(schema(max_length = 4000))]
    pub additional_prompt: Option<String>,
    /// Per-request override of the organization's principle.
    #[salvo(schema(max_length = 4000))]
    pub training_principle: Option<String>,
    /// `YYYY-MM-DD`; workouts then carry a `date`.
    pub start_date: Option<chrono::NaiveDate>,
    /// Default `ai_generate`.
    pub workout_preference: Option<WorkoutPreference>,
    pub recent_race: Option<RecentRace>,
}

/// `POST /api/v1/ai-coach/generate-plan` (and `/stream`, `/stream-content`).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct GeneratePlanRequest {
    #[salvo(schema(minimum = 1, maximum = 52))]
    pub weeks: i64,
    pub level: Level,
    #[salvo(schema(min_length = 1, max_length = 200))]
    pub org_id: String,
    #[salvo(schema(max_length = 4000))]
    pub additional_prompt: Option<String>,
    #[salvo(schema(max_length = 4000))]
    pub training_principle: Option<String>,
    pub start_date: Option<chrono::NaiveDate>,
    pub workout_preference: Option<WorkoutPreference>,
    pub recent_race: Option<RecentRace>,
    /// The (edited) draft text, with week headers ("Week 1" …) that match `weeks` (else 400).
    #[salvo(schema(min_length = 10, max_length = 200000))]
    pub refined_draft: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct DraftMetadata {
    pub weeks: i64,
    pub level: String,
    pub org_id: String,
    pub generated_at: chrono::DateTime<chrono::Utc>,
    /// Present (`true`) when the model stopped at its token limit (`openai` provider): the
    /// line it was writing was dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    /// With `truncated`: the weeks the draft has no section for, to add before generate-plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_weeks: Option<Vec<u32>>,
}

/// The draft (seed 000).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DraftResult {
    pub draft: String,
    /// The resolved principle text.
    pub training_principle: String,
    pub metadata: DraftMetadata,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct DraftEnvelope {
    pub status: SuccessStatus,
    pub data: DraftResult,
}

/// A target pace range.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct PaceRange {
    pub min_seconds_per_km: i64,
    pub max_seconds_per_km: i64,
    pub per_km: String,
}

/// One block of a workout; blocks add up to the workout's duration.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ContentBlock {
    /// `warmup`, `main` or `cooldown`.
    #[serde(rename = "type")]
    pub block_type: String,
    #[salvo(schema(minimum = 0, maximum = 86400))]
    pub duration_seconds: i64,
    pub distance_meters: Option<i64>,
    pub repeat: Option<i64>,
    pub target_pace: Option<PaceRange>,
    pub description: Option<String>,
}

/// One planned workout (seed 000 field names).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct PlanWorkout {
    pub week: i64,
    pub phase: String,
    pub day: String,
    /// `YYYY-MM-DD`, when the request had a `start_date`.
    pub date: Option<chrono::NaiveDate>,
    pub workout_name: String,
    pub workout_description: String,
    pub workout_type: String,
    pub workout_sub_type: String,
    pub target_duration_in_seconds: i64,
    pub target_distance_in_meters: i64,
    pub content_blocks: Vec<ContentBlock>,
}

/// One week's summary.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct WeeklyInfo {
    pub phase: String,
    pub focus: String,
    pub total_distance_km: f64,
}

/// The structured plan (seed 000).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct PlanResult {
    pub content: Vec<PlanWorkout>,
    /// Keyed by week number (`"1"`, `"2"`, …).
    pub weekly_info: std::collections::BTreeMap<String, WeeklyInfo>,
    pub total_workouts: i64,
    pub warnings: Vec<String>,
    pub training_principle: Option<String>,
    pub metadata: Option<DraftMetadata>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PlanEnvelope {
    pub status: SuccessStatus,
    pub data: PlanResult,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipleSource {
    Personal,
    Org,
    Default,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipleScope {
    Org,
    Personal,
}

/// The resolved training principle (seed 000: `training_principle`, `org_id`).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TrainingPrinciple {
    pub training_principle: String,
    pub org_id: String,
    /// Where the text came from (GET).
    pub source: Option<PrincipleSource>,
    /// What was written (PUT).
    pub scope: Option<PrincipleScope>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TrainingPrincipleEnvelope {
    pub status: SuccessStatus,
    pub data: TrainingPrinciple,
}

/// `PUT /api/v1/ai-coach/training-principle/{org_id}`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TrainingPrincipleUpdate {
    #[salvo(schema(min_length = 1, max_length = 4000))]
    pub training_principle: String,
    /// Default `org`.
    pub scope: Option<PrincipleScope>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BlockType {
    Warmup,
    Main,
    Cooldown,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LibraryBlock {
    #[serde(rename = "type")]
    pub block_type: BlockType,
    #[salvo(schema(minimum = 0, maximum = 86400))]
    pub duration_seconds: i64,
}

/// A library workout (`POST` / `PUT`). Non-empty `content_blocks` must add up to
/// `target_duration_in_seconds`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct LibraryWorkoutInput {
    #[salvo(schema(min_length = 1, max_length = 200))]
    pub workout_name: String,
    #[salvo(schema(max_length = 4000))]
    pub workout_description: Option<String>,
    /// Default `run`.
    #[salvo(schema(max_length = 50))]
    pub workout_type: Option<String>,
    #[salvo(schema(min_length = 1, max_length = 50))]
    pub workout_sub_type: String,
    #[salvo(schema(minimum = 1, maximum = 86400))]
    pub target_duration_in_seconds: i64,
    #[salvo(schema(minimum = 0, maximum = 500000))]
    pub target_distance_in_meters: Option<i64>,
    pub content_blocks: Option<Vec<LibraryBlock>>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LibraryWorkout {
    pub id: uuid::Uuid,
    pub org_id: String,
    pub workout_name: String,
    pub workout_description: String,
    pub workout_type: String,
    pub workout_sub_type: String,
    pub target_duration_in_seconds: i64,
    pub target_distance_in_meters: i64,
    pub content_blocks: Value,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LibraryWorkoutEnvelope {
    pub status: SuccessStatus,
    pub data: LibraryWorkout,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LibraryWorkoutList {
    pub workouts: Vec<LibraryWorkout>,
    pub total: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LibraryWorkoutListEnvelope {
    pub status: SuccessStatus,
    pub data: LibraryWorkoutList,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Pace {
    pub seconds_per_km: i64,
    /// `M:SS`
    pub per_km: String,
    pub min_seconds_per_km: Option<i64>,
    pub max_seconds_per_km: Option<i64>,
    pub min_per_km: Option<String>,
    pub max_per_km: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TrainingPaces {
    pub easy: Pace,
    pub marathon: Pace,
    pub threshold: Pace,
    pub interval: Pace,
    pub repetition: Pace,
}

/// Predicted race times in seconds.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Predictions {
    #[serde(rename = "5k")]
    pub five_k: i64,
    #[serde(rename = "10k")]
    pub ten_k: i64,
    pub half_marathon: i64,
    pub marathon: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Paces {
    pub vdot: f64,
    pub paces: TrainingPaces,
    pub predictions: Predictions,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PacesEnvelope {
    pub status: SuccessStatus,
    pub data: Paces,
}

// ---------------------------------------------------------------------------------------------
// AI Training (seed 003), camelCase
// ---------------------------------------------------------------------------------------------

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Goal {
    Balance,
    Strength,
    Mobility,
    Endurance,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Intensity {
    Low,
    Moderate,
    High,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum RiskTier {
    Low,
    Moderate,
    High,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AssessmentType {
    FallRisk,
    MskAssessment,
    CognitiveAssessment,
    Preferences,
}

/// `POST /api/ai-training/my-plan/generate` and `…/assign-starter-plan` (every field optional;
/// an empty body is accepted). Missing fields come from the latest `preferences` assessment.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GeneratePlanInput {
    pub goal: Option<Goal>,
    pub intensity: Option<Intensity>,
    /// Routines per cycle (a week).
    #[salvo(schema(minimum = 1, maximum = 14))]
    pub frequency: Option<i64>,
    #[salvo(schema(minimum = 5, maximum = 120))]
    pub preferred_session_duration_minutes: Option<i64>,
    /// Labels: lowercase letters, digits and `-` (at most 20).
    #[salvo(schema(max_items = 20))]
    pub equipment_availability: Option<Vec<String>>,
    pub allow_duplicate_routine_templates: Option<bool>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssessmentSnapshot {
    pub latest_risk_tier: Option<String>,
    pub available_inputs: Vec<String>,
    pub missing_inputs: Vec<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrainingPlan {
    pub plan_id: String,
    pub client_id: String,
    pub user_id: String,
    /// `active` or `replaced`.
    pub status: String,
    pub goal: String,
    /// Effective intensity, after the risk-tier cap.
    pub intensity: String,
    pub requested_intensity: Option<String>,
    pub frequency: i64,
    pub preferred_session_duration_minutes: Option<i64>,
    pub equipment_availability: Vec<String>,
    pub allow_duplicate_routine_templates: bool,
    /// `rules` or `assignment`.
    pub generation_source: String,
    pub assessment_snapshot: Option<Value>,
    pub assigned_by: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoutineInstance {
    pub routine_instance_id: String,
    pub plan_id: String,
    pub routine_template_id: String,
    pub routine_template_name: String,
    pub queue_index: i64,
    /// `queued`, `in-progress`, `completed`, `cancelled`.
    pub status: String,
    pub defer_count: i64,
    pub duration_minutes: i64,
    pub total_exercises: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MyPlan {
    pub plan: Option<TrainingPlan>,
    /// Present on the admin `…/plan` route: the user's current queue.
    pub routine_instances: Option<Vec<RoutineInstance>>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanWithInstances {
    pub plan: TrainingPlan,
    pub routine_instances: Vec<RoutineInstance>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanWithInstance {
    pub plan: TrainingPlan,
    pub routine_instance: RoutineInstance,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoutineQueue {
    pub plan_id: Option<String>,
    pub routine_instances: Vec<RoutineInstance>,
}

/// `POST /api/ai-training/routine-runs`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateRun {
    #[salvo(schema(min_length = 1, max_length = 200))]
    pub routine_instance_id: String,
    /// A free label for analytics/UI.
    #[salvo(schema(min_length = 1, max_length = 100))]
    pub started_from: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatusUpdate {
    InProgress,
    Completed,
    Abandoned,
}

/// `PATCH /api/ai-training/routine-runs/{routineRunId}`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchRun {
    pub status: RunStatusUpdate,
}

/// `POST /api/ai-training/routine-runs/{routineRunId}/sync` (every field optional).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncRun {
    #[salvo(schema(max_length = 200))]
    pub ai_move_session_id: Option<String>,
    #[salvo(schema(minimum = 0, maximum = 999))]
    pub sequence_index: Option<i64>,
    pub guided_complete: Option<bool>,
    pub skipped: Option<bool>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub completed_exercises: i64,
    pub total_exercises: i64,
    pub completion_rate: f64,
    pub total_duration_seconds: i64,
    pub total_calories_burned: f64,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunStep {
    pub sequence_index: i64,
    pub step_id: String,
    pub exercise_id: String,
    pub guided: bool,
    pub target_duration_seconds: Option<i64>,
    pub target_reps: Option<i64>,
    /// `pending`, `completed` or `skipped`.
    pub status: String,
    pub ai_move_session_id: Option<String>,
    pub duration_seconds: i64,
    pub calories_burned: f64,
    pub reps_completed: Option<i64>,
    pub score: Option<f64>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoutineRun {
    pub routine_run_id: String,
    pub routine_instance_id: String,
    pub plan_id: String,
    pub client_id: String,
    pub user_id: String,
    pub routine_template_id: String,
    pub routine_template_name: String,
    /// `created`, `in-progress`, `completed`, `abandoned`.
    pub status: String,
    pub started_from: String,
    pub summary: RunSummary,
    /// Absent in lists.
    pub exercise_steps: Option<Vec<RunStep>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoutineRunBody {
    pub routine_run: RoutineRun,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchRunResult {
    pub routine_run: RoutineRun,
    pub next_routine_instance: Option<RoutineInstance>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncRunResult {
    pub success: bool,
    pub routine_run: RoutineRun,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoutineRunList {
    pub routine_runs: Vec<RoutineRun>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeferResult {
    pub success: bool,
    pub routine_instance: RoutineInstance,
    pub defer_limit: i64,
    pub remaining_defers: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeriesPoint {
    pub label: String,
    pub date: chrono::NaiveDate,
    pub completed_runs: i64,
    pub total_runs: i64,
    pub completion_rate: f64,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgressReport {
    pub adherence: f64,
    pub total_runs: i64,
    pub completed_runs: i64,
    pub completion_rate: f64,
    /// Null without an active plan.
    pub expected_runs: Option<i64>,
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    pub timezone: String,
    pub series: Vec<SeriesPoint>,
}

/// `POST /api/ai-training/assessments` (and the admin per-user route).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssessmentInput {
    #[serde(rename = "type")]
    pub assessment_type: AssessmentType,
    /// Required for `fallRisk`.
    pub risk_tier: Option<RiskTier>,
    /// At most 16 kB; for `preferences` validated as the plan-generation fields (default `{}`).
    #[salvo(schema(value_type = Option<Object>))]
    pub data: Option<Value>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Assessment {
    pub assessment_id: String,
    pub client_id: String,
    pub user_id: String,
    #[serde(rename = "type")]
    pub assessment_type: String,
    pub risk_tier: Option<String>,
    pub data: Value,
    pub recorded_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssessmentRecorded {
    pub assessment: Assessment,
    pub assessment_snapshot: AssessmentSnapshot,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssessmentList {
    pub assessments: Vec<Assessment>,
    pub assessment_snapshot: AssessmentSnapshot,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AiMoveMetadata {
    pub routine_run_id: Option<String>,
    /// Required with `routineRunId`.
    #[salvo(schema(minimum = 0, maximum = 999))]
    pub sequence_index: Option<i64>,
    pub plan_id: Option<String>,
    pub routine_instance_id: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AiMoveResultInput {
    pub completed: bool,
    #[salvo(schema(minimum = 0, maximum = 86400))]
    pub duration_seconds: Option<i64>,
    #[salvo(schema(minimum = 0, maximum = 100000))]
    pub calories_burned: Option<f64>,
    #[salvo(schema(minimum = 0, maximum = 100000))]
    pub reps_completed: Option<i64>,
    #[salvo(schema(minimum = 0, maximum = 100))]
    pub score: Option<f64>,
}

/// `POST /api/ai-move/sessions`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AiMoveSessionInput {
    /// Defaults to the step's exercise.
    #[salvo(schema(max_length = 100))]
    pub exercise_id: Option<String>,
    pub metadata: Option<AiMoveMetadata>,
    pub result: AiMoveResultInput,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AiMoveResult {
    pub completed: bool,
    pub duration_seconds: i64,
    pub calories_burned: f64,
    pub reps_completed: Option<i64>,
    pub score: Option<f64>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AiMoveSession {
    pub ai_move_session_id: String,
    pub exercise_id: Option<String>,
    pub metadata: Value,
    pub result: AiMoveResult,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AiMoveSessionBody {
    pub ai_move_session: AiMoveSession,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Records {
    pub client_id: String,
    pub records: Vec<RoutineRun>,
}

/// `POST …/assign-routine-template`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignTemplate {
    #[salvo(schema(min_length = 1, max_length = 200))]
    pub routine_template_id: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateStepInput {
    #[salvo(schema(min_length = 1, max_length = 100))]
    pub exercise_id: String,
    /// Exactly one of `durationSeconds` and `reps`.
    #[salvo(schema(minimum = 1, maximum = 3600))]
    pub duration_seconds: Option<i64>,
    #[salvo(schema(minimum = 1, maximum = 500))]
    pub reps: Option<i64>,
    pub guided: Option<bool>,
}

/// `POST /api/b2b/ai-training/routine-templates` (all required but `description`, `equipment`).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateInput {
    #[salvo(schema(min_length = 1, max_length = 200))]
    pub name: String,
    #[salvo(schema(max_length = 2000))]
    pub description: Option<String>,
    pub goal: Goal,
    pub intensity: Intensity,
    #[salvo(schema(minimum = 5, maximum = 120))]
    pub duration_minutes: i64,
    /// Labels (lowercase letters, digits and `-`); default `["none"]`.
    #[salvo(schema(max_items = 10))]
    pub equipment: Option<Vec<String>>,
    #[salvo(schema(min_items = 1, max_items = 50))]
    pub exercise_steps: Vec<TemplateStepInput>,
}

/// `PATCH /api/b2b/ai-training/routine-templates/{routineTemplateId}` (any create field).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplatePatch {
    #[salvo(schema(min_length = 1, max_length = 200))]
    pub name: Option<String>,
    #[salvo(schema(max_length = 2000))]
    pub description: Option<String>,
    pub goal: Option<Goal>,
    pub intensity: Option<Intensity>,
    #[salvo(schema(minimum = 5, maximum = 120))]
    pub duration_minutes: Option<i64>,
    #[salvo(schema(max_items = 10))]
    pub equipment: Option<Vec<String>>,
    #[salvo(schema(min_items = 1, max_items = 50))]
    pub exercise_steps: Option<Vec<TemplateStepInput>>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateStep {
    pub sequence_index: i64,
    pub step_id: String,
    pub exercise_id: String,
    pub duration_seconds: Option<i64>,
    pub reps: Option<i64>,
    pub guided: bool,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoutineTemplate {
    pub routine_template_id: String,
    /// `library` or `client`.
    pub source: String,
    pub client_id: Option<String>,
    pub name: String,
    pub description: String,
    pub goal: String,
    pub intensity: String,
    pub duration_minutes: i64,
    pub equipment: Vec<String>,
    /// `draft` or `published`.
    pub status: String,
    pub visible: Option<bool>,
    pub exercise_steps: Vec<TemplateStep>,
    pub published_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoutineTemplateBody {
    pub routine_template: RoutineTemplate,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoutineTemplateList {
    pub client_id: String,
    pub routine_templates: Vec<RoutineTemplate>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    pub client_id: String,
    pub customized: bool,
    pub visible_routine_template_ids: Vec<String>,
    pub routine_templates: Vec<RoutineTemplate>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogBody {
    pub catalog: Catalog,
}

/// `PATCH /api/b2b/ai-training/catalog`: exactly these library templates become visible.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogPatch {
    pub visible_routine_template_ids: Vec<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub client_id: String,
    pub defer_limit: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsBody {
    pub settings: Settings,
}

/// `PATCH /api/b2b/ai-training/settings`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsPatch {
    #[salvo(schema(minimum = 0, maximum = 100))]
    pub defer_limit: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomToken {
    pub custom_token: String,
    /// Seconds (at most 300).
    pub expires_in: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionToken {
    /// `Authorization: Bearer <sessionToken>` on AI Training and AI Move routes.
    pub session_token: String,
    /// Seconds (at most 3600, never beyond the bearer token behind the custom token).
    pub expires_in: i64,
}

// ---------------------------------------------------------------------------------------------
// Analytics (seed 004): `{"status": "ok", "data": …}`, snake_case
// ---------------------------------------------------------------------------------------------

/// `"ok"`, the seed's success status.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OkStatus {
    Ok,
}

/// One lap of an activity.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ActivityLap {
    /// Metres.
    #[salvo(schema(minimum = 0))]
    pub distance: f64,
    /// Seconds.
    #[salvo(schema(minimum = 0))]
    pub moving_time: f64,
    pub average_heartrate: Option<f64>,
}

/// One activity (Strava's field names; `id` and `type` are accepted for `external_id` and
/// `sport_type`).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ActivityUpload {
    /// Whose activity (default: the caller; required when a coach or admin uploads).
    #[salvo(schema(max_length = 200))]
    pub athlete_id: Option<String>,
    /// The source's id (a string or an integer): the upsert key per athlete.
    #[salvo(schema(min_length = 1, max_length = 200))]
    pub external_id: String,
    /// `Run`, `TrailRun`, `Ride`, …
    #[salvo(schema(min_length = 1, max_length = 50))]
    pub sport_type: String,
    /// RFC 3339 with an offset, at most 2 days in the future.
    pub start_date: chrono::DateTime<chrono::Utc>,
    /// IANA zone (or Strava's `(GMT-08:00) America/Los_Angeles`); default the athlete's.
    #[salvo(schema(max_length = 100))]
    pub timezone: Option<String>,
    /// Metres.
    #[salvo(schema(minimum = 0, maximum = 1000000))]
    pub distance: f64,
    /// Seconds.
    #[salvo(schema(minimum = 0, maximum = 604800))]
    pub moving_time: i64,
    /// Seconds (default `moving_time`).
    #[salvo(schema(minimum = 0, maximum = 604800))]
    pub elapsed_time: Option<i64>,
    #[salvo(schema(minimum = 20, maximum = 260))]
    pub average_heartrate: Option<f64>,
    #[salvo(schema(minimum = 20, maximum = 260))]
    pub max_heartrate: Option<f64>,
    #[salvo(schema(minimum = 0, maximum = 50000))]
    pub calories: Option<f64>,
    /// Seconds in pace zones Z1..Z5.
    #[salvo(schema(min_items = 5, max_items = 5))]
    pub pace_zone_seconds: Option<Vec<u32>>,
    /// Seconds in heart-rate zones Z1..Z5.
    #[salvo(schema(min_items = 5, max_items = 5))]
    pub hr_zone_seconds: Option<Vec<u32>>,
    #[salvo(schema(max_items = 1000))]
    pub laps: Option<Vec<ActivityLap>>,
}

/// `POST /api/v1/activities`: a batch (one activity object, or a bare array, is accepted too).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ActivityBatch {
    /// Default athlete of the items.
    #[salvo(schema(max_length = 200))]
    pub athlete_id: Option<String>,
    #[salvo(schema(min_items = 1, max_items = 1000))]
    pub activities: Vec<ActivityUpload>,
}

/// One day's health metrics (at least one value).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct HealthMetricUpload {
    #[salvo(schema(max_length = 200))]
    pub athlete_id: Option<String>,
    pub date: chrono::NaiveDate,
    #[salvo(schema(minimum = 20, maximum = 200))]
    pub resting_hr: Option<f64>,
    #[salvo(schema(minimum = 1, maximum = 500))]
    pub hrv_rmssd: Option<f64>,
    #[salvo(schema(minimum = 10, maximum = 100))]
    pub vo2_max: Option<f64>,
    #[salvo(schema(minimum = 0, maximum = 100))]
    pub recovery_score: Option<f64>,
}

/// `POST /api/v1/health_metrics`: a batch (one object, or a bare array, is accepted too).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct HealthMetricBatch {
    #[salvo(schema(max_length = 200))]
    pub athlete_id: Option<String>,
    #[salvo(schema(min_items = 1, max_items = 1000))]
    pub health_metrics: Vec<HealthMetricUpload>,
}

/// `created` or `updated`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UpsertStatus {
    Created,
    Updated,
}

/// A stored activity.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ActivityStored {
    pub index: i64,
    pub id: uuid::Uuid,
    pub athlete_id: String,
    pub external_id: String,
    pub status: UpsertStatus,
    pub training_load: f64,
}

/// A stored day of health metrics.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct HealthMetricStored {
    pub index: i64,
    pub athlete_id: String,
    pub date: chrono::NaiveDate,
    pub status: UpsertStatus,
}

/// A rejected item.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RejectedItem {
    pub index: i64,
    pub errors: Vec<ErrorDetail>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ActivityIngest {
    pub accepted: i64,
    pub rejected: i64,
    pub results: Vec<ActivityStored>,
    pub errors: Vec<RejectedItem>,
    /// Athlete id → the queued `recompute_stats` job (null when one was already queued).
    pub recompute_jobs: std::collections::BTreeMap<String, Option<uuid::Uuid>>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ActivityIngestEnvelope {
    pub status: OkStatus,
    pub data: ActivityIngest,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct HealthMetricIngest {
    pub accepted: i64,
    pub rejected: i64,
    pub results: Vec<HealthMetricStored>,
    pub errors: Vec<RejectedItem>,
    /// Athlete id → the queued `recompute_stats` job (null when one was already queued).
    pub recompute_jobs: std::collections::BTreeMap<String, Option<uuid::Uuid>>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct HealthMetricIngestEnvelope {
    pub status: OkStatus,
    pub data: HealthMetricIngest,
}

/// A race goal to create.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RaceGoalCreate {
    #[salvo(schema(min_length = 1, max_length = 200))]
    pub race_name: String,
    pub race_date: chrono::NaiveDate,
    /// `H:MM:SS` or `M:SS`.
    #[salvo(schema(max_length = 10, pattern = r"^[0-9]{1,2}(:[0-5][0-9]){1,2}$"))]
    pub goal_time: Option<String>,
    /// Metres.
    #[salvo(schema(minimum = 1, maximum = 1000000))]
    pub distance: Option<f64>,
}

/// Changes to a race goal (fields left out keep their value).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RaceGoalUpdate {
    #[salvo(schema(min_length = 1, max_length = 200))]
    pub race_name: Option<String>,
    pub race_date: Option<chrono::NaiveDate>,
    /// `H:MM:SS` or `M:SS`.
    #[salvo(schema(max_length = 10, pattern = r"^[0-9]{1,2}(:[0-5][0-9]){1,2}$"))]
    pub goal_time: Option<String>,
    #[salvo(schema(minimum = 1, maximum = 1000000))]
    pub distance: Option<f64>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RaceGoal {
    pub goal_id: String,
    pub race_name: String,
    pub race_date: chrono::NaiveDate,
    pub goal_time: Option<String>,
    pub distance: Option<f64>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RaceGoalEnvelope {
    pub status: OkStatus,
    pub data: RaceGoal,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RaceGoalList {
    pub goals: Vec<RaceGoal>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RaceGoalListEnvelope {
    pub status: OkStatus,
    pub data: RaceGoalList,
}

/// Push notification platforms.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PushPlatform {
    Ios,
    Android,
    Web,
}

/// `PUT /api/v1/me/push_token`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct PushTokenRequest {
    /// The device token from APNs, FCM or Web Push (never returned).
    #[salvo(schema(min_length = 1, max_length = 4096))]
    pub token: String,
    pub platform: Option<PushPlatform>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PushTokenState {
    pub has_push_token: bool,
    pub platform: Option<PushPlatform>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PushTokenEnvelope {
    pub status: OkStatus,
    pub data: PushTokenState,
}

/// Plan instance states.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlanStatus {
    Scheduled,
    Active,
    Completed,
    Cancelled,
}

/// A plan instance to create.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct PlanInstanceCreate {
    #[salvo(schema(min_length = 1, max_length = 200))]
    pub name: String,
    /// Default `scheduled`.
    pub status: Option<PlanStatus>,
    pub start_date: chrono::NaiveDate,
    #[salvo(schema(minimum = 1, maximum = 104))]
    pub total_weeks: i64,
    /// The sessions the plan plans (`missed_sessions` and `no_data` compare them with the
    /// athlete's runs). A generated plan's `content` is accepted as it is.
    #[salvo(schema(max_items = 1456))]
    pub sessions: Option<Vec<PlannedSession>>,
    /// Instead of `sessions`: a succeeded `generate_plan` job of the caller's whose workouts
    /// become the sessions (a workout without `date` falls on its `day` of its `week`, counted
    /// from `start_date`). Another user's job: 404; not succeeded: 409 `job_not_succeeded`.
    pub from_job: Option<uuid::Uuid>,
}

/// Changes to a plan instance (fields left out keep their value).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct PlanInstanceUpdate {
    #[salvo(schema(min_length = 1, max_length = 200))]
    pub name: Option<String>,
    pub status: Option<PlanStatus>,
    pub start_date: Option<chrono::NaiveDate>,
    #[salvo(schema(minimum = 1, maximum = 104))]
    pub total_weeks: Option<i64>,
    /// Replaces the plan's sessions (`[]` removes them; left out or `null`: kept).
    #[salvo(schema(max_items = 1456))]
    pub sessions: Option<Vec<PlannedSession>>,
    /// Replaces the plan's sessions with a generated plan's workouts (see `PlanInstanceCreate`).
    pub from_job: Option<uuid::Uuid>,
}

/// A planned session on the athlete's local calendar day: the fields of an AI Coach workout
/// that adherence reads (others are ignored).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct PlannedSession {
    pub date: chrono::NaiveDate,
    #[salvo(schema(minimum = 1, maximum = 86400))]
    pub target_duration_in_seconds: i64,
    #[salvo(schema(minimum = 0, maximum = 1000000))]
    pub target_distance_in_meters: Option<f64>,
    #[salvo(schema(max_length = 200))]
    pub workout_name: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PlanInstance {
    pub plan_instance_id: String,
    pub name: String,
    pub status: PlanStatus,
    pub start_date: chrono::NaiveDate,
    /// 0 before the start, then 1..=`total_weeks`.
    pub current_week: i64,
    pub total_weeks: i64,
    /// In the order they were sent (not in `athlete_profile` and the roster).
    pub sessions: Vec<PlannedSession>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PlanInstanceEnvelope {
    pub status: OkStatus,
    pub data: PlanInstance,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PlanInstanceList {
    pub plans: Vec<PlanInstance>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PlanInstanceListEnvelope {
    pub status: OkStatus,
    pub data: PlanInstanceList,
}

/// `POST /api/v1/admin/analytics/recompute` (optional body).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RecomputeRequest {
    /// The organization (admin: omit for every org; a coach: its own, the default).
    pub org_id: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RecomputeEnvelope {
    pub status: OkStatus,
    pub data: JobView,
}

/// A current plan as the profile and the roster show it.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CurrentPlan {
    pub plan_instance_id: String,
    pub name: String,
    pub status: PlanStatus,
    pub current_week: i64,
    pub total_weeks: i64,
}

/// A race still ahead.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CurrentRace {
    pub race_name: String,
    pub race_date: chrono::NaiveDate,
    pub goal_time: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CurrentGoals {
    pub races: Vec<CurrentRace>,
}

/// An attention flag (§5).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AttentionFlag {
    pub code: String,
    /// `warning` or `info`.
    pub severity: String,
    pub message: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AttentionSignals {
    pub flags: Vec<AttentionFlag>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RunningAnalytics {
    pub weekly_distance_km: Option<f64>,
    /// `M:SS`.
    pub avg_pace_per_km: Option<String>,
}

/// One day of a history.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct HistoryPoint {
    pub date: chrono::NaiveDate,
    pub value: f64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct FitnessCurrent {
    pub vo2_max: Option<f64>,
    pub hrv_avg: Option<f64>,
    pub recovery_score: Option<f64>,
    /// The last 30 days.
    pub vo2_max_history: Vec<HistoryPoint>,
    pub hrv_history: Vec<HistoryPoint>,
    pub recovery_score_history: Vec<HistoryPoint>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct FitnessValues {
    pub vo2_max: Option<f64>,
    pub hrv_avg: Option<f64>,
    pub recovery_score: Option<f64>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ProfileFitness {
    pub current: FitnessCurrent,
    pub seven_days_ago: FitnessValues,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ProfileTraining {
    pub current_week_load: Option<f64>,
    pub four_week_avg_load: Option<f64>,
    pub ctl: Option<f64>,
    pub atl: Option<f64>,
    pub acwr: Option<f64>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ProfileMetrics {
    pub running_analytics: RunningAnalytics,
    pub fitness: ProfileFitness,
    pub training: ProfileTraining,
    pub attention_signals: AttentionSignals,
    pub last_updated: Option<chrono::DateTime<chrono::Utc>>,
}

/// `GET /api/v1/analytics/athlete_profile`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AthleteProfile {
    pub user_id: String,
    pub display_name: Option<String>,
    pub profile_image_url: Option<String>,
    pub metrics: ProfileMetrics,
    pub current_goals: CurrentGoals,
    pub current_plans: Vec<CurrentPlan>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AthleteProfileEnvelope {
    pub status: OkStatus,
    pub data: AthleteProfile,
}

/// `GET /api/v1/analytics/fitness_stats`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct FitnessStats {
    pub days: i64,
    pub total_activities: i64,
    /// Metres.
    pub total_distance: f64,
    /// Seconds.
    pub total_duration: i64,
    /// Runs only, `M:SS` per km.
    pub avg_pace: Option<String>,
    /// Only when some activity has heart rate.
    pub avg_heart_rate: Option<f64>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct FitnessStatsEnvelope {
    pub status: OkStatus,
    pub data: FitnessStats,
}

/// One bucket of `running_stats` (runs only).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RunningStatsPoint {
    /// The bucket's first day.
    pub date: chrono::NaiveDate,
    pub distance: f64,
    pub duration: i64,
    pub nexrex_training_load: f64,
    pub runs: i64,
    pub calories: f64,
    pub pace_z1_time: i64,
    pub pace_z2_time: i64,
    pub pace_z3_time: i64,
    pub pace_z4_time: i64,
    pub pace_z5_time: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RunningStatsEnvelope {
    pub status: OkStatus,
    pub data: Vec<RunningStatsPoint>,
}

/// Range types of `running_stats`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RangeType {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

/// Metric types of `running_stats`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricType {
    Distance,
    Duration,
    TrainingLoad,
}

/// Granularities of `activity_stats`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DayOrMonth {
    Day,
    Month,
}

/// Granularities of `health_metrics`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DayWeekOrMonth {
    Day,
    Week,
    Month,
}

/// `true`/`false`/`1`/`0`.
#[derive(Serialize, Deserialize, ToSchema)]
pub enum BoolFlag {
    #[serde(rename = "true")]
    True,
    #[serde(rename = "false")]
    False,
    #[serde(rename = "1")]
    One,
    #[serde(rename = "0")]
    Zero,
}

/// Totals of one bucket (every activity).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ActivityTotals {
    pub activities: i64,
    pub distance: f64,
    pub duration: i64,
    pub training_load: f64,
    pub calories: f64,
    pub pace_z1_time: i64,
    pub pace_z2_time: i64,
    pub pace_z3_time: i64,
    pub pace_z4_time: i64,
    pub pace_z5_time: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ActivityBucket {
    pub date: chrono::NaiveDate,
    pub activities: i64,
    pub distance: f64,
    pub duration: i64,
    pub training_load: f64,
    pub calories: f64,
    pub pace_z1_time: i64,
    pub pace_z2_time: i64,
    pub pace_z3_time: i64,
    pub pace_z4_time: i64,
    pub pace_z5_time: i64,
}

/// `GET /api/v1/analytics/activity_stats`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ActivityStats {
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    pub timezone: String,
    pub granularity: DayOrMonth,
    pub buckets: Vec<ActivityBucket>,
    pub totals: ActivityTotals,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ActivityStatsEnvelope {
    pub status: OkStatus,
    pub data: ActivityStats,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct HealthMetricsPoint {
    pub date: chrono::NaiveDate,
    pub resting_hr: Option<f64>,
    pub hrv_rmssd: Option<f64>,
    pub vo2_max: Option<f64>,
    pub recovery_score: Option<f64>,
}

/// `GET /api/v1/analytics/health_metrics`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct HealthMetricsSeries {
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    pub granularity: DayWeekOrMonth,
    pub points: Vec<HealthMetricsPoint>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct HealthMetricsSeriesEnvelope {
    pub status: OkStatus,
    pub data: HealthMetricsSeries,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RosterRunning {
    pub weekly_distance_km: Option<f64>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RosterFitnessCurrent {
    pub vo2_max: Option<f64>,
    pub hrv_avg: Option<f64>,
    pub recovery_score: Option<f64>,
    pub hrv_avg_prev: Option<f64>,
    pub recovery_score_prev: Option<f64>,
    pub vo2_max_prev: Option<f64>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RosterFitness {
    pub current: RosterFitnessCurrent,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RosterTraining {
    pub current_week_load: Option<f64>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RosterMetrics {
    pub running_analytics: RosterRunning,
    pub fitness: RosterFitness,
    pub training: RosterTraining,
    pub attention_signals: AttentionSignals,
    pub last_updated: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RosterRace {
    pub race_name: String,
    pub race_date: chrono::NaiveDate,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RosterGoals {
    pub races: Vec<RosterRace>,
}

/// One athlete of the roster.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RosterAthlete {
    pub user_id: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub profile_image: Option<String>,
    pub email: Option<String>,
    pub assigned_coach_id: Option<String>,
    pub groups: Vec<String>,
    pub labels: Vec<String>,
    pub current_plans: Vec<CurrentPlan>,
    pub current_goals: RosterGoals,
    /// Always false: Pacer stores no push tokens.
    pub has_push_token: bool,
    pub metrics: RosterMetrics,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RosterPagination {
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
    pub total_pages: i64,
    pub has_next: bool,
    pub has_prev: bool,
}

/// `GET /api/v1/analytics/coach_athletes_metrics`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CoachAthletesMetrics {
    pub athletes: Vec<RosterAthlete>,
    pub total_count: i64,
    pub metadata: RosterPagination,
    /// The same as `metadata`.
    pub pagination: RosterPagination,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CoachAthletesMetricsEnvelope {
    pub status: OkStatus,
    pub data: CoachAthletesMetrics,
}
