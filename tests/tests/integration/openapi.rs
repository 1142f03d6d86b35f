//! The OpenAPI document (issue 7): served without a token, OpenAPI 3.1, every route of the
//! router, the bearer scheme, the shared error body, the SSE routes, and the drift check: the
//! AI Coach request and response fields in the document are the ones seed 000 documents, the
//! Analytics response fields and read query parameters the ones seed 004 documents (plus
//! Pacer's named extensions).

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};
use pacer_tests::TestApp;
use serde_json::Value;

/// Every documented operation (method, path).
const OPERATIONS: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/v1/jobs"),
    ("post", "/api/v1/jobs"),
    ("get", "/api/v1/jobs/{job_id}"),
    ("delete", "/api/v1/jobs/{job_id}"),
    ("get", "/api/v1/jobs/{job_id}/events"),
    ("get", "/api/v1/admin/orgs/{org_id}"),
    ("put", "/api/v1/admin/orgs/{org_id}"),
    ("get", "/api/v1/admin/users/{user_id}"),
    ("put", "/api/v1/admin/users/{user_id}"),
    ("post", "/api/v1/ai-coach/generate-draft"),
    ("post", "/api/v1/ai-coach/generate-draft/stream"),
    ("post", "/api/v1/ai-coach/generate-plan"),
    ("post", "/api/v1/ai-coach/generate-plan/stream"),
    ("post", "/api/v1/ai-coach/generate-plan/stream-content"),
    ("get", "/api/v1/ai-coach/training-principle/{org_id}"),
    ("put", "/api/v1/ai-coach/training-principle/{org_id}"),
    ("get", "/api/v1/ai-coach/workouts"),
    ("post", "/api/v1/ai-coach/workouts"),
    ("get", "/api/v1/ai-coach/workouts/{workout_id}"),
    ("put", "/api/v1/ai-coach/workouts/{workout_id}"),
    ("delete", "/api/v1/ai-coach/workouts/{workout_id}"),
    ("get", "/api/v1/ai-coach/paces"),
    ("post", "/api/auth/exchange-token"),
    ("post", "/api/auth/custom-token-session"),
    ("get", "/api/ai-training/my-plan"),
    ("post", "/api/ai-training/my-plan/generate"),
    ("get", "/api/ai-training/my-routine-queue"),
    ("get", "/api/ai-training/routine-runs"),
    ("post", "/api/ai-training/routine-runs"),
    ("get", "/api/ai-training/routine-runs/{routineRunId}"),
    ("patch", "/api/ai-training/routine-runs/{routineRunId}"),
    ("post", "/api/ai-training/routine-runs/{routineRunId}/sync"),
    (
        "post",
        "/api/ai-training/routine-instances/{routineInstanceId}/defer",
    ),
    ("get", "/api/ai-training/progress-report"),
    ("get", "/api/ai-training/assessments"),
    ("post", "/api/ai-training/assessments"),
    ("get", "/api/ai-training/records"),
    ("post", "/api/ai-move/sessions"),
    (
        "get",
        "/api/client/{clientId}/users/{userId}/ai-training/plan",
    ),
    (
        "post",
        "/api/client/{clientId}/users/{userId}/ai-training/assign-starter-plan",
    ),
    (
        "post",
        "/api/client/{clientId}/users/{userId}/ai-training/assign-routine-template",
    ),
    (
        "get",
        "/api/client/{clientId}/users/{userId}/ai-training/routine-runs",
    ),
    (
        "get",
        "/api/client/{clientId}/users/{userId}/ai-training/assessments",
    ),
    (
        "post",
        "/api/client/{clientId}/users/{userId}/ai-training/assessments",
    ),
    ("get", "/api/b2b/ai-training/routine-templates"),
    ("post", "/api/b2b/ai-training/routine-templates"),
    (
        "get",
        "/api/b2b/ai-training/routine-templates/{routineTemplateId}",
    ),
    (
        "patch",
        "/api/b2b/ai-training/routine-templates/{routineTemplateId}",
    ),
    (
        "post",
        "/api/b2b/ai-training/routine-templates/{routineTemplateId}/publish",
    ),
    ("get", "/api/b2b/ai-training/catalog"),
    ("patch", "/api/b2b/ai-training/catalog"),
    ("get", "/api/b2b/ai-training/settings"),
    ("patch", "/api/b2b/ai-training/settings"),
    ("post", "/api/v1/activities"),
    ("post", "/api/v1/health_metrics"),
    ("get", "/api/v1/athletes/{user_id}/goals"),
    ("post", "/api/v1/athletes/{user_id}/goals"),
    ("patch", "/api/v1/athletes/{user_id}/goals/{goal_id}"),
    ("put", "/api/v1/athletes/{user_id}/goals/{goal_id}"),
    ("get", "/api/v1/athletes/{user_id}/plans"),
    ("post", "/api/v1/athletes/{user_id}/plans"),
    ("patch", "/api/v1/athletes/{user_id}/plans/{plan_id}"),
    ("put", "/api/v1/athletes/{user_id}/plans/{plan_id}"),
    ("get", "/api/v1/analytics/athlete_profile"),
    ("get", "/api/v1/analytics/fitness_stats"),
    ("get", "/api/v1/analytics/running_stats"),
    ("get", "/api/v1/analytics/activity_stats"),
    ("get", "/api/v1/analytics/health_metrics"),
    ("get", "/api/v1/analytics/coach_athletes_metrics"),
    ("post", "/api/v1/admin/analytics/recompute"),
    ("put", "/api/v1/me/push_token"),
    ("delete", "/api/v1/me/push_token"),
];

/// The SSE routes (`text/event-stream`).
const STREAMS: &[(&str, &str)] = &[
    ("get", "/api/v1/jobs/{job_id}/events"),
    ("post", "/api/v1/ai-coach/generate-draft/stream"),
    ("post", "/api/v1/ai-coach/generate-plan/stream"),
    ("post", "/api/v1/ai-coach/generate-plan/stream-content"),
];

// Seed 000 (AI Coach), as documented there.
const SEED_DRAFT_REQUEST: &[&str] = &[
    "weeks",
    "level",
    "org_id",
    "additional_prompt",
    "training_principle",
    "start_date",
    "workout_preference",
];
const SEED_DRAFT_REQUIRED: &[&str] = &["weeks", "level", "org_id"];
const SEED_DRAFT_RESPONSE: &[&str] = &["draft", "training_principle", "metadata"];
const SEED_DRAFT_METADATA: &[&str] = &["weeks", "level", "org_id", "generated_at"];
const SEED_PLAN_WORKOUT: &[&str] = &[
    "week",
    "phase",
    "day",
    "workout_name",
    "workout_description",
    "workout_type",
    "workout_sub_type",
    "target_duration_in_seconds",
    "target_distance_in_meters",
    "content_blocks",
];
const SEED_PLAN_RESPONSE: &[&str] = &["content", "weekly_info"];
const SEED_WEEKLY_INFO: &[&str] = &["phase", "focus", "total_distance_km"];
const SEED_PRINCIPLE_RESPONSE: &[&str] = &["training_principle", "org_id"];
const SEED_EVENT_TYPES: &[&str] = &[
    "progress",
    "workout",
    "weekly_info",
    "result",
    "error",
    "done",
];

// Pacer's documented extensions of the seed (README "AI Coach"); anything else is drift.
const EXT_REQUEST: &[&str] = &["recent_race"];
const EXT_PLAN_WORKOUT: &[&str] = &["date"];
/// Present only on a model's draft cut off at its token limit.
const EXT_DRAFT_METADATA: &[&str] = &["truncated", "missing_weeks"];
const EXT_PLAN_RESPONSE: &[&str] = &[
    "total_workouts",
    "warnings",
    "training_principle",
    "metadata",
];
const EXT_PRINCIPLE_RESPONSE: &[&str] = &["source", "scope"];

// Seed 004 (Analytics), as documented there.
const SEED_PROFILE: &[&str] = &[
    "user_id",
    "display_name",
    "profile_image_url",
    "metrics",
    "current_goals",
    "current_plans",
];
const SEED_PROFILE_METRICS: &[&str] = &["running_analytics", "fitness", "training"];
const SEED_RUNNING_ANALYTICS: &[&str] = &["weekly_distance_km", "avg_pace_per_km"];
const SEED_FITNESS: &[&str] = &["current"];
const SEED_FITNESS_CURRENT: &[&str] = &["vo2_max", "hrv_avg", "recovery_score"];
const SEED_PROFILE_TRAINING: &[&str] = &["current_week_load", "four_week_avg_load"];
const SEED_RACE: &[&str] = &["race_name", "race_date", "goal_time"];
const SEED_CURRENT_PLAN: &[&str] = &[
    "plan_instance_id",
    "name",
    "status",
    "current_week",
    "total_weeks",
];
const SEED_FITNESS_STATS: &[&str] = &[
    "total_activities",
    "total_distance",
    "total_duration",
    "avg_pace",
    "avg_heart_rate",
];
const SEED_RUNNING_POINT: &[&str] = &[
    "date",
    "distance",
    "duration",
    "nexrex_training_load",
    "runs",
    "calories",
    "pace_z1_time",
    "pace_z2_time",
    "pace_z3_time",
    "pace_z4_time",
    "pace_z5_time",
];
const SEED_ROSTER: &[&str] = &["athletes", "total_count", "metadata", "pagination"];
const SEED_ROSTER_ATHLETE: &[&str] = &[
    "user_id",
    "username",
    "display_name",
    "profile_image",
    "email",
    "assigned_coach_id",
    "groups",
    "labels",
    "current_plans",
    "current_goals",
    "has_push_token",
    "metrics",
];
const SEED_ROSTER_METRICS: &[&str] = &[
    "running_analytics",
    "fitness",
    "training",
    "attention_signals",
    "last_updated",
];
const SEED_ROSTER_FITNESS_CURRENT: &[&str] = &[
    "vo2_max",
    "hrv_avg",
    "recovery_score",
    "hrv_avg_prev",
    "recovery_score_prev",
    "vo2_max_prev",
];
const SEED_PAGINATION: &[&str] = &[
    "total",
    "page",
    "per_page",
    "total_pages",
    "has_next",
    "has_prev",
];
/// Query parameters of the six reads.
const SEED_READ_PARAMS: &[(&str, &[&str])] = &[
    ("athlete_profile", &["user_id", "refresh"]),
    ("fitness_stats", &["days"]),
    (
        "running_stats",
        &[
            "from_timestamp",
            "to_timestamp",
            "range_type",
            "metric_type",
            "timezone",
            "timezone_offset_minutes",
        ],
    ),
    (
        "activity_stats",
        &["from", "to", "timezone", "granularity", "refresh"],
    ),
    ("health_metrics", &["from", "to", "granularity", "refresh"]),
    (
        "coach_athletes_metrics",
        &[
            "org_id",
            "filter_by_coach",
            "group_id",
            "unassigned_only",
            "search",
            "page",
            "per_page",
            "no_cache",
        ],
    ),
];

// Pacer's documented extensions of seed 004 (docs/analytics.md); anything else is drift.
const EXT_PROFILE_METRICS: &[&str] = &["attention_signals", "last_updated"];
const EXT_FITNESS: &[&str] = &["seven_days_ago"];
const EXT_FITNESS_CURRENT: &[&str] = &["vo2_max_history", "hrv_history", "recovery_score_history"];
const EXT_PROFILE_TRAINING: &[&str] = &["ctl", "atl", "acwr"];
const EXT_FITNESS_STATS: &[&str] = &["days"];
/// `user_id` on the "self only" reads: a coach or admin reads an athlete's.
const EXT_READ_PARAMS: &[&str] = &["user_id"];

fn set(names: &[&[&str]]) -> BTreeSet<String> {
    names
        .iter()
        .flat_map(|n| n.iter().map(|s| (*s).to_owned()))
        .collect()
}

/// A schema with `$ref`s followed, and `allOf`/`oneOf` wrappers around a single non-null
/// schema (how optional fields are written) unwrapped.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> Result<&'a Value> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r
            .strip_prefix("#/components/schemas/")
            .with_context(|| format!("unexpected $ref {r}"))?;
        let target = &doc["components"]["schemas"][name];
        if target.is_null() {
            bail!("dangling $ref {r}");
        }
        return resolve(doc, target);
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(parts) = schema.get(key).and_then(Value::as_array) {
            let real: Vec<&Value> = parts
                .iter()
                .filter(|p| p.get("type").and_then(Value::as_str) != Some("null"))
                .filter(|p| {
                    p.get("$ref").is_some() || p.get("type").is_some() || p.get("oneOf").is_some()
                })
                .collect();
            if let [one] = real.as_slice() {
                return resolve(doc, one);
            }
        }
    }
    Ok(schema)
}

fn properties(doc: &Value, schema: &Value) -> Result<BTreeSet<String>> {
    let s = resolve(doc, schema)?;
    let props = s["properties"]
        .as_object()
        .with_context(|| format!("schema without properties: {s}"))?;
    Ok(props.keys().cloned().collect())
}

fn required(doc: &Value, schema: &Value) -> Result<BTreeSet<String>> {
    let s = resolve(doc, schema)?;
    Ok(s["required"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}

fn property<'a>(doc: &'a Value, schema: &'a Value, name: &str) -> Result<&'a Value> {
    let s = resolve(doc, schema)?;
    let p = &s["properties"][name];
    if p.is_null() {
        bail!("no property {name} in {s}");
    }
    resolve(doc, p)
}

fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> Result<&'a Value> {
    let op = &doc["paths"][path][method];
    if op.is_null() {
        bail!("{method} {path} is not documented");
    }
    Ok(op)
}

fn request_schema<'a>(doc: &'a Value, method: &str, path: &str) -> Result<&'a Value> {
    let s = &operation(doc, method, path)?["requestBody"]["content"]["application/json"]["schema"];
    if s.is_null() {
        bail!("{method} {path} has no JSON request body");
    }
    Ok(s)
}

fn response_schema<'a>(
    doc: &'a Value,
    method: &str,
    path: &str,
    status: &str,
) -> Result<&'a Value> {
    let s = &operation(doc, method, path)?["responses"][status]["content"]["application/json"]["schema"];
    if s.is_null() {
        bail!("{method} {path} has no JSON {status} response");
    }
    Ok(s)
}

/// The `data` of a `{"status", "data"}` envelope.
fn envelope_data<'a>(doc: &'a Value, method: &str, path: &str, status: &str) -> Result<&'a Value> {
    property(doc, response_schema(doc, method, path, status)?, "data")
}

#[tokio::test]
async fn openapi_document_is_served_and_complete() -> Result<()> {
    let mut app = TestApp::new().await?;
    app.start_api().await?;

    // served without a token
    let (status, doc) = app
        .request(reqwest::Method::GET, None, "/api-docs/openapi.json", None)
        .await?;
    assert_eq!(status, 200, "{doc}");
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1"), "openapi is {version:?}");
    assert!(doc["info"]["title"].is_string());

    // every route of the router, and nothing else
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .context("no paths")?
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flatten()
                .filter(|(m, _)| {
                    ["get", "put", "post", "delete", "patch", "head", "options"]
                        .contains(&m.as_str())
                })
                .map(move |(m, _)| (m.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let missing: Vec<_> = expected.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, undocumented in the test {extra:?}"
    );

    // the bearer scheme, required by every /api route but the one a custom token opens a session with
    let bearer = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["type"], "http", "{bearer}");
    assert_eq!(bearer["scheme"], "bearer", "{bearer}");
    assert_eq!(bearer["bearerFormat"], "JWT", "{bearer}");
    let error_ref = "#/components/schemas/ErrorBody";
    for (method, path) in OPERATIONS {
        let op = operation(&doc, method, path)?;
        let ids = op["operationId"].as_str().unwrap_or_default();
        assert!(!ids.is_empty(), "{method} {path} has no operationId");
        let responses = op["responses"].as_object().context("no responses")?;
        assert!(
            responses.keys().any(|c| c.starts_with('2')),
            "{method} {path} documents no success"
        );
        if path.starts_with("/api/") {
            let schemes: Vec<&str> = op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .flat_map(|o| o.keys().map(String::as_str))
                .collect();
            // opening a session takes a custom token only
            let needed = if *path == "/api/auth/custom-token-session" {
                "customToken"
            } else {
                "bearer"
            };
            assert!(
                schemes.contains(&needed),
                "{method} {path}: security {schemes:?}"
            );
            let unauthorized = &responses["401"]["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(unauthorized, error_ref, "{method} {path}: 401");
        }
        // every documented error carries the shared error body
        for (code, r) in responses {
            if code.starts_with('4') || code == "500" {
                assert_eq!(
                    r["content"]["application/json"]["schema"]["$ref"], error_ref,
                    "{method} {path}: {code}"
                );
            }
        }
    }
    let error_schema = serde_json::json!({"$ref": error_ref});
    let error_body = properties(&doc, &error_schema)?;
    assert_eq!(error_body, set(&[&["status", "code", "error", "details"]]));
    let detail = property(&doc, &error_schema, "details")?;
    assert_eq!(
        properties(&doc, &detail["items"])?,
        set(&[&["field", "message"]])
    );

    // SSE routes: text/event-stream, events described
    for (method, path) in STREAMS {
        let ok = &operation(&doc, method, path)?["responses"]["200"]["content"];
        let schema = &ok["text/event-stream"]["schema"];
        assert!(!schema.is_null(), "{method} {path}: {ok}");
        // each event: `id` and `data`, whose content is one JSON JobEvent
        let event = resolve(&doc, schema)?;
        assert!(
            event["properties"]["id"].is_object(),
            "{method} {path}: {event}"
        );
        let data = property(&doc, schema, "data")?;
        assert_eq!(
            data["contentMediaType"], "application/json",
            "{method} {path}"
        );
        let payload = &data["contentSchema"];
        let kind = property(&doc, payload, "type")?;
        let types: BTreeSet<String> = kind["enum"]
            .as_array()
            .context("event type enum")?
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        assert_eq!(types, set(&[SEED_EVENT_TYPES]), "{method} {path}");
    }

    // limits are documented
    let draft_req = request_schema(&doc, "post", "/api/v1/ai-coach/generate-draft")?;
    let weeks = property(&doc, draft_req, "weeks")?;
    assert_eq!(
        (weeks["minimum"].as_i64(), weeks["maximum"].as_i64()),
        (Some(1), Some(52))
    );
    let level = property(&doc, draft_req, "level")?;
    assert_eq!(
        level["enum"],
        serde_json::json!(["beginner", "intermediate", "advanced"])
    );
    assert_eq!(property(&doc, draft_req, "start_date")?["format"], "date");

    // drift check: AI Coach fields = seed 000 (+ named extensions)
    assert_eq!(
        properties(&doc, draft_req)?,
        set(&[SEED_DRAFT_REQUEST, EXT_REQUEST]),
        "generate-draft request"
    );
    assert_eq!(required(&doc, draft_req)?, set(&[SEED_DRAFT_REQUIRED]));
    for path in [
        "/api/v1/ai-coach/generate-draft",
        "/api/v1/ai-coach/generate-draft/stream",
    ] {
        assert_eq!(
            properties(&doc, request_schema(&doc, "post", path)?)?,
            set(&[SEED_DRAFT_REQUEST, EXT_REQUEST]),
            "{path} request"
        );
    }
    for path in [
        "/api/v1/ai-coach/generate-plan",
        "/api/v1/ai-coach/generate-plan/stream",
        "/api/v1/ai-coach/generate-plan/stream-content",
    ] {
        let req = request_schema(&doc, "post", path)?;
        assert_eq!(
            properties(&doc, req)?,
            set(&[SEED_DRAFT_REQUEST, &["refined_draft"], EXT_REQUEST]),
            "{path} request"
        );
        assert_eq!(
            required(&doc, req)?,
            set(&[SEED_DRAFT_REQUIRED, &["refined_draft"]])
        );
    }
    let draft = envelope_data(&doc, "post", "/api/v1/ai-coach/generate-draft", "200")?;
    assert_eq!(
        properties(&doc, draft)?,
        set(&[SEED_DRAFT_RESPONSE]),
        "draft response"
    );
    assert_eq!(
        properties(&doc, property(&doc, draft, "metadata")?)?,
        set(&[SEED_DRAFT_METADATA, EXT_DRAFT_METADATA]),
        "draft metadata"
    );
    let plan = envelope_data(&doc, "post", "/api/v1/ai-coach/generate-plan", "200")?;
    assert_eq!(
        properties(&doc, plan)?,
        set(&[SEED_PLAN_RESPONSE, EXT_PLAN_RESPONSE]),
        "plan response"
    );
    let content = property(&doc, plan, "content")?;
    assert_eq!(content["type"], "array");
    assert_eq!(
        properties(&doc, &content["items"])?,
        set(&[SEED_PLAN_WORKOUT, EXT_PLAN_WORKOUT]),
        "plan workout"
    );
    let weekly = property(&doc, plan, "weekly_info")?;
    assert_eq!(
        properties(&doc, &weekly["additionalProperties"])?,
        set(&[SEED_WEEKLY_INFO]),
        "weekly_info"
    );
    let principle = envelope_data(
        &doc,
        "get",
        "/api/v1/ai-coach/training-principle/{org_id}",
        "200",
    )?;
    assert_eq!(
        properties(&doc, principle)?,
        set(&[SEED_PRINCIPLE_RESPONSE, EXT_PRINCIPLE_RESPONSE]),
        "training-principle response"
    );
    let principle_req =
        request_schema(&doc, "put", "/api/v1/ai-coach/training-principle/{org_id}")?;
    assert!(properties(&doc, principle_req)?.contains("training_principle"));

    // drift check: Analytics fields and parameters = seed 004 (+ named extensions)
    analytics_drift(&doc)?;

    // Swagger UI, embedded (no CDN)
    let res = reqwest::get(format!("{}/api-docs/", app.base())).await?;
    assert_eq!(res.status().as_u16(), 200);
    let html = res.text().await?;
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "Swagger UI loads something remote: {html}"
    );
    let res = reqwest::get(format!("{}/api-docs/swagger-ui-bundle.js", app.base())).await?;
    assert_eq!(res.status().as_u16(), 200, "embedded bundle");
    Ok(())
}

fn analytics_drift(doc: &Value) -> Result<()> {
    let read = |name: &str| envelope_data(doc, "get", &format!("/api/v1/analytics/{name}"), "200");
    let profile = read("athlete_profile")?;
    assert_eq!(
        properties(doc, profile)?,
        set(&[SEED_PROFILE]),
        "athlete_profile"
    );
    let metrics = property(doc, profile, "metrics")?;
    assert_eq!(
        properties(doc, metrics)?,
        set(&[SEED_PROFILE_METRICS, EXT_PROFILE_METRICS]),
        "athlete_profile metrics"
    );
    assert_eq!(
        properties(doc, property(doc, metrics, "running_analytics")?)?,
        set(&[SEED_RUNNING_ANALYTICS]),
        "athlete_profile running_analytics"
    );
    let fitness = property(doc, metrics, "fitness")?;
    assert_eq!(
        properties(doc, fitness)?,
        set(&[SEED_FITNESS, EXT_FITNESS]),
        "athlete_profile fitness"
    );
    assert_eq!(
        properties(doc, property(doc, fitness, "current")?)?,
        set(&[SEED_FITNESS_CURRENT, EXT_FITNESS_CURRENT]),
        "athlete_profile fitness.current"
    );
    assert_eq!(
        properties(doc, property(doc, metrics, "training")?)?,
        set(&[SEED_PROFILE_TRAINING, EXT_PROFILE_TRAINING]),
        "athlete_profile training"
    );
    let races = property(doc, property(doc, profile, "current_goals")?, "races")?;
    assert_eq!(
        properties(doc, &races["items"])?,
        set(&[SEED_RACE]),
        "current_goals.races"
    );
    let plans = property(doc, profile, "current_plans")?;
    assert_eq!(
        properties(doc, &plans["items"])?,
        set(&[SEED_CURRENT_PLAN]),
        "current_plans"
    );

    assert_eq!(
        properties(doc, read("fitness_stats")?)?,
        set(&[SEED_FITNESS_STATS, EXT_FITNESS_STATS]),
        "fitness_stats"
    );
    let running = read("running_stats")?;
    assert_eq!(running["type"], "array", "running_stats data");
    assert_eq!(
        properties(doc, &running["items"])?,
        set(&[SEED_RUNNING_POINT]),
        "running_stats item"
    );

    let roster = read("coach_athletes_metrics")?;
    assert_eq!(properties(doc, roster)?, set(&[SEED_ROSTER]), "roster");
    for name in ["metadata", "pagination"] {
        assert_eq!(
            properties(doc, property(doc, roster, name)?)?,
            set(&[SEED_PAGINATION]),
            "roster {name}"
        );
    }
    let athlete = &property(doc, roster, "athletes")?["items"];
    assert_eq!(
        properties(doc, athlete)?,
        set(&[SEED_ROSTER_ATHLETE]),
        "roster athlete"
    );
    let metrics = property(doc, athlete, "metrics")?;
    assert_eq!(
        properties(doc, metrics)?,
        set(&[SEED_ROSTER_METRICS]),
        "roster metrics"
    );
    let current = property(doc, property(doc, metrics, "fitness")?, "current")?;
    assert_eq!(
        properties(doc, current)?,
        set(&[SEED_ROSTER_FITNESS_CURRENT]),
        "roster fitness.current"
    );
    assert_eq!(
        properties(doc, property(doc, metrics, "attention_signals")?)?,
        set(&[&["flags"]]),
        "roster attention_signals"
    );

    for (name, seed) in SEED_READ_PARAMS {
        let op = operation(doc, "get", &format!("/api/v1/analytics/{name}"))?;
        let params: BTreeSet<String> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect();
        let mut expected = set(&[seed]);
        if !["athlete_profile", "coach_athletes_metrics"].contains(name) {
            expected.extend(set(&[EXT_READ_PARAMS]));
        }
        assert_eq!(params, expected, "{name} query parameters");
    }
    // limits of the seed
    let days = operation(doc, "get", "/api/v1/analytics/fitness_stats")?["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "days")
        .context("days")?;
    assert_eq!(days["schema"]["maximum"], 365, "{days}");
    Ok(())
}

/// What schemathesis found (scripts/fuzz.sh): input PostgreSQL cannot store or give back is a
/// 400 naming the field, not a 500.
#[tokio::test]
async fn openapi_fuzz_findings_nul_and_huge_numbers_are_400s() -> Result<()> {
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    app.org("org_demo", &["coach_agent", "ai_training"]).await?;
    let admin = app.admin();
    let athlete = app.token("usr_fuzz_1", "athlete", "org_demo");
    let expect_400 = |(status, body): (u16, Value), field: &str| {
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], "validation_error", "{body}");
        assert_eq!(body["details"][0]["field"], field, "{body}");
    };

    // a NUL in a JSON string (PostgreSQL text/jsonb cannot hold it)
    let nul = serde_json::json!({"kind": "generate_draft",
        "input": {"weeks": 2, "level": "beginner", "org_id": "org\u{0}demo"}});
    expect_400(
        app.post(&admin, "/api/v1/jobs", &nul).await?,
        "input.org_id",
    );
    // a number jsonb stores but writes back beyond f64
    let huge =
        serde_json::json!({"type": "preferences", "data": {"x": 1.797_693_134_862_315_7e308}});
    expect_400(
        app.post(&athlete, "/api/ai-training/assessments", &huge)
            .await?,
        "data.x",
    );
    // a NUL in the path or in the query string
    expect_400(
        app.get(&admin, "/api/v1/admin/orgs/org%00demo").await?,
        "path",
    );
    expect_400(
        app.get(&admin, "/api/ai-training/records?userId=a%00b")
            .await?,
        "query",
    );
    // nothing was queued or stored
    let (status, body) = app.get(&admin, "/api/v1/jobs").await?;
    assert_eq!(
        (status, &body["data"]["pagination"]["total"]),
        (200, &serde_json::json!(0))
    );
    Ok(())
}
