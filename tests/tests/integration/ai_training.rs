//! AI Training (seed 003) against the real `pacer-api` binary and PostgreSQL: the end-user loop,
//! the plan generator's rules, defer, roles and tenancy, custom tokens, validation and 404s.

use std::collections::HashMap;

use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use pacer_tests::{SECRET, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

const CLIENT: &str = "org_demo";

async fn app() -> Result<TestApp> {
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    app.org(CLIENT, &["ai_training"]).await?;
    app.org("org_other", &["ai_training"]).await?;
    app.org("org_plain", &[]).await?;
    Ok(app)
}

async fn patch(app: &TestApp, token: &str, path: &str, body: &Value) -> Result<(u16, Value)> {
    app.request(Method::PATCH, Some(token), path, Some(body))
        .await
}

fn sign(claims: Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap_or_default()
}

fn ids(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|v| v[field].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts the common error body and its `code`.
fn assert_error(status: u16, body: &Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["error"].is_string() && body["details"].is_array(),
        "{body}"
    );
}

fn detail_fields(body: &Value) -> Vec<String> {
    ids(&body["details"], "field")
}

/// Library template id → (intensity, equipment, goal), read through the B2B listing.
async fn library(
    app: &TestApp,
    client_admin: &str,
) -> Result<HashMap<String, (String, Vec<String>, String)>> {
    let (s, body) = app
        .get(client_admin, "/api/b2b/ai-training/routine-templates")
        .await?;
    assert_eq!(s, 200, "{body}");
    let mut out = HashMap::new();
    for t in body["routineTemplates"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let equipment = t["equipment"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        out.insert(
            t["routineTemplateId"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            (
                t["intensity"].as_str().unwrap_or_default().to_owned(),
                equipment,
                t["goal"].as_str().unwrap_or_default().to_owned(),
            ),
        );
    }
    Ok(out)
}

#[tokio::test]
async fn ai_training_end_user_loop() -> Result<()> {
    let app = app().await?;
    let user = app.token("usr_1", "athlete", CLIENT);

    // an assessment feeds the snapshot
    let (s, body) = app
        .post(
            &user,
            "/api/ai-training/assessments",
            &json!({"type": "fallRisk", "riskTier": "moderate", "data": {"score": 7}}),
        )
        .await?;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["assessmentSnapshot"]["latestRiskTier"], "moderate");

    // no plan yet
    let (s, body) = app.get(&user, "/api/ai-training/my-plan").await?;
    assert_eq!((s, body["plan"].clone()), (200, Value::Null));

    // generate → plan + queued instances
    let (s, gen_body) = app
        .post(&user, "/api/ai-training/my-plan/generate", &json!({"goal": "balance", "intensity": "moderate", "frequency": 3, "equipmentAvailability": ["chair"]}))
        .await?;
    assert_eq!(s, 201, "{gen_body}");
    let plan = &gen_body["plan"];
    assert_eq!(plan["status"], "active");
    assert_eq!(plan["generationSource"], "rules");
    assert_eq!(plan["frequency"], 3);
    assert_eq!(plan["clientId"], CLIENT);
    assert_eq!(plan["userId"], "usr_1");
    assert_eq!(plan["assessmentSnapshot"]["latestRiskTier"], "moderate");
    assert_eq!(
        plan["assessmentSnapshot"]["availableInputs"],
        json!(["fallRisk"])
    );
    assert_eq!(
        plan["assessmentSnapshot"]["missingInputs"],
        json!(["mskAssessment", "cognitiveAssessment", "preferences"])
    );
    let instances = gen_body["routineInstances"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(instances.len(), 3);
    for (i, inst) in instances.iter().enumerate() {
        assert_eq!(inst["queueIndex"], i);
        assert_eq!(inst["status"], "queued");
        assert!(inst["routineTemplateName"].is_string());
    }
    let plan_id = plan["planId"].as_str().unwrap_or_default().to_owned();
    let (s, body) = app.get(&user, "/api/ai-training/my-plan").await?;
    assert_eq!(
        (s, body["plan"]["planId"].as_str()),
        (200, Some(plan_id.as_str()))
    );

    let (_, queue) = app.get(&user, "/api/ai-training/my-routine-queue").await?;
    let queue_ids = ids(&queue["routineInstances"], "routineInstanceId");
    assert_eq!(
        queue_ids,
        ids(&gen_body["routineInstances"], "routineInstanceId")
    );
    let head = queue_ids[0].clone();

    // start a run on the head
    let (s, body) = app
        .post(
            &user,
            "/api/ai-training/routine-runs",
            &json!({"routineInstanceId": head, "startedFrom": "dashboard"}),
        )
        .await?;
    assert_eq!(s, 201, "{body}");
    let run = &body["routineRun"];
    assert_eq!(run["status"], "created");
    assert_eq!(run["startedFrom"], "dashboard");
    assert_eq!(run["routineInstanceId"], head.as_str());
    let steps = run["exerciseSteps"].as_array().cloned().unwrap_or_default();
    let n = steps.len();
    assert!(n >= 3, "{run}");
    assert!(steps.iter().all(|s| s["status"] == "pending"));
    assert_eq!(
        run["summary"],
        json!({"completedExercises": 0, "totalExercises": n, "completionRate": 0.0, "totalDurationSeconds": 0, "totalCaloriesBurned": 0.0})
    );
    let run_id = run["routineRunId"].as_str().unwrap_or_default().to_owned();
    let run_path = format!("/api/ai-training/routine-runs/{run_id}");

    // the instance is in progress and cannot be started twice
    let (_, queue) = app.get(&user, "/api/ai-training/my-routine-queue").await?;
    assert_eq!(queue["routineInstances"][0]["status"], "in-progress");
    let (s, body) = app
        .post(
            &user,
            "/api/ai-training/routine-runs",
            &json!({"routineInstanceId": head, "startedFrom": "dashboard"}),
        )
        .await?;
    assert_error(s, &body, 409, "instance_not_queued");

    // nothing reported yet for step 0
    let (s, body) = app
        .post(
            &user,
            &format!("{run_path}/sync"),
            &json!({"sequenceIndex": 0}),
        )
        .await?;
    assert_error(s, &body, 409, "no_session_result");

    // AI Move results arrive; sync folds them step by step; the last step is skipped
    for i in 0..n - 1 {
        // an earlier, incomplete attempt: only the latest session counts
        let (s, body) = app
            .post(&user, "/api/ai-move/sessions", &json!({"metadata": {"routineRunId": run_id, "sequenceIndex": i}, "result": {"completed": false, "durationSeconds": 5}}))
            .await?;
        assert_eq!(s, 201, "{body}");
        let (s, body) = app
            .post(&user, "/api/ai-move/sessions", &json!({"metadata": {"routineRunId": run_id, "sequenceIndex": i, "planId": plan_id}, "result": {"completed": true, "durationSeconds": 60, "caloriesBurned": 2.5, "repsCompleted": 10, "score": 0.9}}))
            .await?;
        assert_eq!(s, 201, "{body}");
        let session_id = body["aiMoveSession"]["aiMoveSessionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(body["aiMoveSession"]["exerciseId"], steps[i]["exerciseId"]);
        let sync_body = if i == 1 {
            json!({"aiMoveSessionId": session_id})
        } else {
            json!({"sequenceIndex": i})
        };
        let (s, body) = app
            .post(&user, &format!("{run_path}/sync"), &sync_body)
            .await?;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["success"], true);
        let r = &body["routineRun"];
        assert_eq!(r["status"], "in-progress");
        assert_eq!(r["summary"]["completedExercises"], i + 1);
        assert_eq!(r["summary"]["totalDurationSeconds"], 60 * (i + 1));
        assert_eq!(r["exerciseSteps"][i]["status"], "completed");
        assert_eq!(
            r["exerciseSteps"][i]["aiMoveSessionId"],
            session_id.as_str()
        );
    }
    let (s, body) = app
        .post(
            &user,
            &format!("{run_path}/sync"),
            &json!({"sequenceIndex": n - 1, "skipped": true}),
        )
        .await?;
    assert_eq!(s, 200, "{body}");
    let summary = &body["routineRun"]["summary"];
    let rate = (((n - 1) as f64 / n as f64) * 100.0).round() / 100.0;
    assert_eq!(summary["completedExercises"], n - 1);
    assert_eq!(summary["totalExercises"], n);
    assert_eq!(summary["completionRate"], rate);
    assert_eq!(summary["totalCaloriesBurned"], 2.5 * (n - 1) as f64);
    assert_eq!(
        body["routineRun"]["exerciseSteps"][n - 1]["status"],
        "skipped"
    );

    // complete → the instance completes and the queue advances
    let (s, body) = patch(&app, &user, &run_path, &json!({"status": "completed"})).await?;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["routineRun"]["status"], "completed");
    assert!(body["routineRun"]["finishedAt"].is_string());
    assert_eq!(
        body["nextRoutineInstance"]["routineInstanceId"],
        queue_ids[1].as_str()
    );
    let created_at: DateTime<Utc> = body["routineRun"]["createdAt"]
        .as_str()
        .unwrap_or_default()
        .parse()?;
    let (_, queue) = app.get(&user, "/api/ai-training/my-routine-queue").await?;
    assert_eq!(
        ids(&queue["routineInstances"], "routineInstanceId"),
        queue_ids[1..].to_vec()
    );
    let (s, body) = app.get(&user, &run_path).await?;
    assert_eq!(
        (s, body["routineRun"]["status"].as_str()),
        (200, Some("completed"))
    );
    let (s, body) = app
        .post(&user, &format!("{run_path}/sync"), &json!({}))
        .await?;
    assert_error(s, &body, 409, "run_finished");
    let (s, body) = patch(&app, &user, &run_path, &json!({"status": "in-progress"})).await?;
    assert_error(s, &body, 409, "invalid_transition");
    let (_, body) = app.get(&user, "/api/ai-training/routine-runs").await?;
    assert_eq!(ids(&body["routineRuns"], "routineRunId"), [run_id.as_str()]);

    // abandoning puts an instance back; created → completed is refused
    let (_, body) = app
        .post(
            &user,
            "/api/ai-training/routine-runs",
            &json!({"routineInstanceId": queue_ids[1], "startedFrom": "reminder"}),
        )
        .await?;
    let second = format!(
        "/api/ai-training/routine-runs/{}",
        body["routineRun"]["routineRunId"]
            .as_str()
            .unwrap_or_default()
    );
    let (s, body) = patch(&app, &user, &second, &json!({"status": "completed"})).await?;
    assert_error(s, &body, 409, "invalid_transition");
    let (s, _) = patch(&app, &user, &second, &json!({"status": "abandoned"})).await?;
    assert_eq!(s, 200);
    let (_, queue) = app.get(&user, "/api/ai-training/my-routine-queue").await?;
    assert_eq!(
        queue["routineInstances"][0]["routineInstanceId"],
        queue_ids[1].as_str()
    );
    assert_eq!(queue["routineInstances"][0]["status"], "queued");

    // progress report: 2 runs today (1 completed, 1 abandoned), plan frequency 3 per week
    let (s, report) = app
        .get(&user, "/api/ai-training/progress-report?days=7")
        .await?;
    assert_eq!(s, 200, "{report}");
    assert_eq!(
        (
            report["totalRuns"].as_i64(),
            report["completedRuns"].as_i64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(report["completionRate"], 0.5);
    assert_eq!(report["expectedRuns"], 3);
    assert_eq!(report["adherence"], 0.33);
    assert_eq!(report["timezone"], "UTC");
    let series = report["series"].as_array().cloned().unwrap_or_default();
    assert_eq!(series.len(), 7);
    let day = created_at.date_naive();
    let point = series
        .iter()
        .find(|p| p["date"] == day.to_string())
        .cloned()
        .unwrap_or_default();
    assert_eq!(point["label"], day.format("%b %-d").to_string());
    assert_eq!(
        (
            point["completedRuns"].as_i64(),
            point["totalRuns"].as_i64(),
            point["completionRate"].as_f64()
        ),
        (Some(1), Some(2), Some(0.5))
    );

    // the series follows the user's time zone (UTC+14, no DST)
    let (s, _) = app
        .put(
            &app.admin(),
            "/api/v1/admin/users/usr_1",
            &json!({"org_id": CLIENT, "role": "athlete", "timezone": "Pacific/Kiritimati"}),
        )
        .await?;
    assert_eq!(s, 200);
    let local = (created_at + Duration::hours(14)).date_naive();
    let (from, to) = (local - Duration::days(1), local + Duration::days(1));
    let (s, report) = app
        .get(
            &user,
            &format!("/api/ai-training/progress-report?from={from}&to={to}"),
        )
        .await?;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["timezone"], "Pacific/Kiritimati");
    let totals: Vec<i64> = report["series"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| p["totalRuns"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(totals, [0, 2, 0]);
    assert_eq!(
        report["series"][1]["label"],
        local.format("%b %-d").to_string()
    );

    // report windows are bounded
    for q in [
        "days=0",
        "days=367",
        "from=2026-01-01",
        "from=2026-02-01&to=2026-01-01",
        "from=2024-01-01&to=2026-01-01",
        "timezone=Mars/Base",
    ] {
        let (s, body) = app
            .get(&user, &format!("/api/ai-training/progress-report?{q}"))
            .await?;
        assert_error(s, &body, 400, "validation_error");
    }

    // generating again replaces the plan and cancels its queue
    let (s, body) = app
        .post(&user, "/api/ai-training/my-plan/generate", &json!({}))
        .await?;
    assert_eq!(s, 201, "{body}");
    let new_plan = body["plan"]["planId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_ne!(new_plan, plan_id);
    let (_, queue) = app.get(&user, "/api/ai-training/my-routine-queue").await?;
    assert_eq!(queue["planId"], new_plan.as_str());
    assert_eq!(
        ids(&queue["routineInstances"], "routineInstanceId"),
        ids(&body["routineInstances"], "routineInstanceId")
    );
    let old_status: String =
        sqlx::query_scalar("select status from ai_training_plans where id = $1")
            .bind(&plan_id)
            .fetch_one(&app.db)
            .await?;
    assert_eq!(old_status, "replaced");
    Ok(())
}

#[tokio::test]
async fn ai_training_generator_rules() -> Result<()> {
    let app = app().await?;
    let demo_admin = app.token("usr_ca", "client_admin", CLIENT);
    let other_admin = app.token("usr_ca2", "client_admin", "org_other");
    let lib = library(&app, &other_admin).await?;
    let template = |id: &str| lib.get(id).cloned().unwrap_or_default();

    // catalog visibility + dedup: org_demo shows two balance templates only
    let visible = ["gofa-balance-flow", "gofa-balance-builder-b"];
    let (s, body) = patch(
        &app,
        &demo_admin,
        "/api/b2b/ai-training/catalog",
        &json!({"visibleRoutineTemplateIds": visible}),
    )
    .await?;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["catalog"]["customized"], true);
    let mut shown = ids(
        &json!(
            body["catalog"]["visibleRoutineTemplateIds"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|v| json!({"id": v}))
                .collect::<Vec<_>>()
        ),
        "id",
    );
    shown.sort();
    assert_eq!(shown, ["gofa-balance-builder-b", "gofa-balance-flow"]);
    let user = app.token("usr_dup", "athlete", CLIENT);
    let req = json!({"goal": "balance", "intensity": "moderate", "frequency": 4, "equipmentAvailability": ["chair"]});
    let (s, body) = app
        .post(&user, "/api/ai-training/my-plan/generate", &req)
        .await?;
    assert_eq!(s, 201, "{body}");
    let mut picked = ids(&body["routineInstances"], "routineTemplateId");
    assert_eq!(picked.len(), 2, "deduplicated: {picked:?}");
    picked.sort();
    assert_eq!(picked, ["gofa-balance-builder-b", "gofa-balance-flow"]);
    let mut dup_req = req.clone();
    dup_req["allowDuplicateRoutineTemplates"] = json!(true);
    let (s, body) = app
        .post(&user, "/api/ai-training/my-plan/generate", &dup_req)
        .await?;
    assert_eq!(s, 201, "{body}");
    let picked = ids(&body["routineInstances"], "routineTemplateId");
    assert_eq!(picked.len(), 4, "duplicates allowed: {picked:?}");
    assert!(picked.iter().all(|p| visible.contains(&p.as_str())));
    assert_eq!(body["plan"]["allowDuplicateRoutineTemplates"], true);
    // the queue hides duplicates unless asked
    let (_, q) = app.get(&user, "/api/ai-training/my-routine-queue").await?;
    assert_eq!(q["routineInstances"].as_array().map(Vec::len), Some(2));
    let (_, q) = app
        .get(
            &user,
            "/api/ai-training/my-routine-queue?allowDuplicateRoutineTemplates=true",
        )
        .await?;
    assert_eq!(q["routineInstances"].as_array().map(Vec::len), Some(4));
    // a run started on a later duplicate: the default view shows that instance, not the first
    let all = q["routineInstances"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let later = all
        .iter()
        .enumerate()
        .find(|(i, x)| {
            all[..*i]
                .iter()
                .any(|y| y["routineTemplateId"] == x["routineTemplateId"])
        })
        .map(|(_, x)| x["routineInstanceId"].clone());
    let later = later.ok_or_else(|| anyhow::anyhow!("no duplicate in {all:?}"))?;
    let (s, run) = app
        .post(
            &user,
            "/api/ai-training/routine-runs",
            &json!({"routineInstanceId": later, "startedFrom": "dashboard"}),
        )
        .await?;
    assert_eq!(s, 201, "{run}");
    let (_, q) = app.get(&user, "/api/ai-training/my-routine-queue").await?;
    let shown: Vec<Value> = q["routineInstances"]
        .as_array()
        .map(|a| a.iter().map(|x| x["routineInstanceId"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(shown.len(), 2, "{q}");
    assert!(
        shown.contains(&later),
        "the started instance is listed: {q}"
    );

    // nothing eligible → 409 and the active plan stays
    let active = body["plan"]["planId"].clone();
    let (s, _) = patch(
        &app,
        &demo_admin,
        "/api/b2b/ai-training/catalog",
        &json!({"visibleRoutineTemplateIds": []}),
    )
    .await?;
    assert_eq!(s, 200);
    let (s, err) = app
        .post(&user, "/api/ai-training/my-plan/generate", &req)
        .await?;
    assert_error(s, &err, 409, "no_eligible_routines");
    let (_, mine) = app.get(&user, "/api/ai-training/my-plan").await?;
    assert_eq!(mine["plan"]["planId"], active);

    // risk-tier cap (org_other: the default catalog shows the whole library)
    let wide = json!({"goal": "balance", "intensity": "high", "frequency": 14, "equipmentAvailability": ["chair", "resistance-band"]});
    let risky = app.token("usr_risk", "athlete", "org_other");
    let (s, _) = app
        .post(
            &risky,
            "/api/ai-training/assessments",
            &json!({"type": "fallRisk", "riskTier": "high"}),
        )
        .await?;
    assert_eq!(s, 201);
    let (s, body) = app
        .post(&risky, "/api/ai-training/my-plan/generate", &wide)
        .await?;
    assert_eq!(s, 201, "{body}");
    assert_eq!(
        (
            body["plan"]["intensity"].as_str(),
            body["plan"]["requestedIntensity"].as_str()
        ),
        (Some("low"), Some("high"))
    );
    let picked = ids(&body["routineInstances"], "routineTemplateId");
    assert!(!picked.is_empty());
    assert!(picked.iter().all(|p| template(p).0 == "low"), "{picked:?}");
    let fresh = app.token("usr_fresh", "athlete", "org_other");
    let (_, body) = app
        .post(&fresh, "/api/ai-training/my-plan/generate", &wide)
        .await?;
    let picked = ids(&body["routineInstances"], "routineTemplateId");
    assert_eq!(body["plan"]["intensity"], "high");
    assert!(picked.iter().any(|p| template(p).0 == "high"), "{picked:?}");
    // an admin cannot assign a high-intensity template to the high-risk user either
    let (s, err) = app
        .post(
            &other_admin,
            "/api/client/org_other/users/usr_risk/ai-training/assign-routine-template",
            &json!({"routineTemplateId": "gofa-balance-challenge"}),
        )
        .await?;
    assert_error(s, &err, 409, "intensity_above_risk_cap");

    // equipment: with none available, only no-equipment routines
    let bare = app.token("usr_bare", "athlete", "org_other");
    let (_, body) = app
        .post(
            &bare,
            "/api/ai-training/my-plan/generate",
            &json!({"intensity": "high", "frequency": 14}),
        )
        .await?;
    let picked = ids(&body["routineInstances"], "routineTemplateId");
    assert!(!picked.is_empty());
    assert!(
        picked.iter().all(|p| template(p).1 == ["none"]),
        "{picked:?}"
    );
    assert!(lib.values().any(|t| t.1 != ["none"]));

    // draft vs published client templates
    let (s, body) = app
        .post(&other_admin, "/api/b2b/ai-training/routine-templates", &json!({
            "name": "Hallway Balance", "goal": "balance", "intensity": "low", "durationMinutes": 20,
            "exerciseSteps": [{"exerciseId": "march-basic", "durationSeconds": 60, "guided": true}, {"exerciseId": "sit-to-stand", "reps": 8}]
        }))
        .await?;
    assert_eq!(s, 201, "{body}");
    let tpl = body["routineTemplate"].clone();
    assert_eq!(
        (
            tpl["status"].as_str(),
            tpl["source"].as_str(),
            tpl["clientId"].as_str()
        ),
        (Some("draft"), Some("client"), Some("org_other"))
    );
    assert_eq!(tpl["equipment"], json!(["none"]));
    assert_eq!(tpl["exerciseSteps"][1]["reps"], 8);
    let tpl_id = tpl["routineTemplateId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let low = json!({"goal": "balance", "intensity": "low", "frequency": 14});
    let user2 = app.token("usr_pub", "athlete", "org_other");
    let (_, body) = app
        .post(&user2, "/api/ai-training/my-plan/generate", &low)
        .await?;
    assert!(
        !ids(&body["routineInstances"], "routineTemplateId").contains(&tpl_id),
        "a draft is never used"
    );
    let (s, err) = app
        .post(
            &other_admin,
            "/api/client/org_other/users/usr_pub/ai-training/assign-routine-template",
            &json!({"routineTemplateId": tpl_id}),
        )
        .await?;
    assert_error(s, &err, 400, "validation_error");
    let (s, body) = app
        .post(
            &other_admin,
            &format!("/api/b2b/ai-training/routine-templates/{tpl_id}/publish"),
            &json!({}),
        )
        .await?;
    assert_eq!(
        (s, body["routineTemplate"]["status"].as_str()),
        (200, Some("published"))
    );
    let (_, body) = app
        .post(&user2, "/api/ai-training/my-plan/generate", &low)
        .await?;
    assert!(ids(&body["routineInstances"], "routineTemplateId").contains(&tpl_id));
    // another client's template is invisible to org_demo
    let (s, _) = patch(
        &app,
        &demo_admin,
        "/api/b2b/ai-training/catalog",
        &json!({"visibleRoutineTemplateIds": visible}),
    )
    .await?;
    assert_eq!(s, 200);
    let (_, body) = app.post(&user, "/api/ai-training/my-plan/generate", &json!({"goal": "balance", "intensity": "low", "frequency": 14, "equipmentAvailability": ["chair"]})).await?;
    let picked = ids(&body["routineInstances"], "routineTemplateId");
    assert!(
        picked.iter().all(|p| visible.contains(&p.as_str())),
        "{picked:?}"
    );
    let (s, err) = app
        .get(
            &demo_admin,
            &format!("/api/b2b/ai-training/routine-templates/{tpl_id}"),
        )
        .await?;
    assert_error(s, &err, 404, "not_found");
    let (s, err) = patch(
        &app,
        &demo_admin,
        &format!("/api/b2b/ai-training/routine-templates/{tpl_id}"),
        &json!({"name": "Mine now"}),
    )
    .await?;
    assert_error(s, &err, 404, "not_found");
    let (s, err) = patch(
        &app,
        &demo_admin,
        "/api/b2b/ai-training/routine-templates/gofa-balance-flow",
        &json!({"name": "Renamed"}),
    )
    .await?;
    assert_error(s, &err, 403, "forbidden");
    // the owner edits it
    let (s, body) = patch(
        &app,
        &other_admin,
        &format!("/api/b2b/ai-training/routine-templates/{tpl_id}"),
        &json!({"name": "Hallway Balance 2", "equipment": ["chair"]}),
    )
    .await?;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        (
            body["routineTemplate"]["name"].as_str(),
            body["routineTemplate"]["status"].as_str()
        ),
        (Some("Hallway Balance 2"), Some("published"))
    );

    // preferences are the defaults of an empty request
    let pref = app.token("usr_pref", "athlete", "org_other");
    let (s, body) = app.post(&pref, "/api/ai-training/assessments", &json!({"type": "preferences", "data": {"goal": "strength", "frequency": 2, "equipmentAvailability": ["chair", "resistance-band"]}})).await?;
    assert_eq!(s, 201, "{body}");
    assert_eq!(
        body["assessmentSnapshot"]["availableInputs"],
        json!(["preferences"])
    );
    let (_, body) = app
        .post(&pref, "/api/ai-training/my-plan/generate", &json!({}))
        .await?;
    assert_eq!(
        (
            body["plan"]["goal"].as_str(),
            body["plan"]["frequency"].as_i64()
        ),
        (Some("strength"), Some(2))
    );
    let picked = ids(&body["routineInstances"], "routineTemplateId");
    assert!(
        picked.iter().all(|p| template(p).2 == "strength"),
        "{picked:?}"
    );
    Ok(())
}

#[tokio::test]
async fn ai_training_defer_validation_and_not_found() -> Result<()> {
    let app = app().await?;
    let user = app.token("usr_1", "athlete", CLIENT);
    let other = app.token("usr_2", "athlete", CLIENT);
    let client_admin = app.token("usr_ca", "client_admin", CLIENT);
    let (s, body) = app
        .post(
            &user,
            "/api/ai-training/my-plan/generate",
            &json!({"frequency": 3}),
        )
        .await?;
    assert_eq!(s, 201, "{body}");
    let plan_id = body["plan"]["planId"].clone();
    let queue0 = ids(&body["routineInstances"], "routineInstanceId");
    let (a, b, c) = (queue0[0].clone(), queue0[1].clone(), queue0[2].clone());
    let queue_now = || async {
        let (_, q) = app.get(&user, "/api/ai-training/my-routine-queue").await?;
        anyhow::Ok(ids(&q["routineInstances"], "routineInstanceId"))
    };

    // defer moves to the back, up to the limit (default 2), then 409 and nothing moves
    let defer = |id: String| {
        let user = user.clone();
        let app = &app;
        async move {
            app.post(
                &user,
                &format!("/api/ai-training/routine-instances/{id}/defer"),
                &json!({}),
            )
            .await
        }
    };
    let (s, body) = defer(a.clone()).await?;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        (
            body["routineInstance"]["deferCount"].as_i64(),
            body["remainingDefers"].as_i64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(queue_now().await?, [b.clone(), c.clone(), a.clone()]);
    let (s, _) = defer(a.clone()).await?;
    assert_eq!(s, 200);
    assert_eq!(queue_now().await?, [b.clone(), c.clone(), a.clone()]);
    let (s, _) = defer(b.clone()).await?;
    assert_eq!(s, 200);
    assert_eq!(queue_now().await?, [c.clone(), a.clone(), b.clone()]);
    let (s, body) = defer(a.clone()).await?;
    assert_error(s, &body, 409, "defer_limit_reached");
    assert_eq!(queue_now().await?, [c.clone(), a.clone(), b.clone()]);
    // the client's limit is configurable
    let (s, body) = patch(
        &app,
        &client_admin,
        "/api/b2b/ai-training/settings",
        &json!({"deferLimit": 0}),
    )
    .await?;
    assert_eq!((s, body["settings"]["deferLimit"].as_i64()), (200, Some(0)));
    let (s, body) = defer(c.clone()).await?;
    assert_error(s, &body, 409, "defer_limit_reached");
    let (s, body) = patch(
        &app,
        &client_admin,
        "/api/b2b/ai-training/settings",
        &json!({"deferLimit": -1}),
    )
    .await?;
    assert_error(s, &body, 400, "validation_error");
    let (_, body) = app
        .get(&client_admin, "/api/b2b/ai-training/settings")
        .await?;
    assert_eq!(body["settings"]["deferLimit"], 0);

    // invalid bodies list every invalid field and change nothing
    let (s, body) = app
        .post(&user, "/api/ai-training/my-plan/generate", &json!({"goal": "flying", "intensity": 3, "frequency": 0, "preferredSessionDurationMinutes": 500, "equipmentAvailability": "chair", "allowDuplicateRoutineTemplates": "yes"}))
        .await?;
    assert_error(s, &body, 400, "validation_error");
    assert_eq!(
        detail_fields(&body),
        [
            "goal",
            "intensity",
            "frequency",
            "preferredSessionDurationMinutes",
            "equipmentAvailability",
            "allowDuplicateRoutineTemplates"
        ]
    );
    let (_, mine) = app.get(&user, "/api/ai-training/my-plan").await?;
    assert_eq!(mine["plan"]["planId"], plan_id);
    let (s, body) = app
        .request(
            Method::POST,
            Some(&user),
            "/api/ai-training/my-plan/generate",
            None,
        )
        .await?;
    assert_eq!(s, 201, "an empty body uses the defaults: {body}");
    let plan_id = body["plan"]["planId"].clone();
    let queue1 = ids(&body["routineInstances"], "routineInstanceId");

    let (s, body) = app
        .post(&user, "/api/ai-training/routine-runs", &json!({}))
        .await?;
    assert_error(s, &body, 400, "validation_error");
    assert_eq!(detail_fields(&body), ["routineInstanceId", "startedFrom"]);
    let (s, body) = app
        .request(
            Method::POST,
            Some(&user),
            "/api/ai-training/routine-runs",
            None,
        )
        .await?;
    assert_error(s, &body, 400, "malformed_json");
    let res = app
        .http
        .post(format!("{}/api/ai-training/routine-runs", app.base()))
        .bearer_auth(&user)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    assert_eq!(res.status().as_u16(), 400);
    let (s, body) = app
        .post(
            &user,
            "/api/ai-training/assessments",
            &json!({"type": "fallRisk", "riskTier": "extreme"}),
        )
        .await?;
    assert_error(s, &body, 400, "validation_error");
    assert_eq!(detail_fields(&body), ["riskTier"]);
    let (s, body) = app
        .post(
            &user,
            "/api/ai-training/assessments",
            &json!({"type": "preferences", "data": {"goal": "x", "frequency": 99}}),
        )
        .await?;
    assert_error(s, &body, 400, "validation_error");
    assert_eq!(detail_fields(&body), ["data.goal", "data.frequency"]);
    let (_, body) = app.get(&user, "/api/ai-training/assessments").await?;
    assert_eq!(body["assessments"], json!([]));
    let (s, body) = app
        .post(
            &client_admin,
            "/api/b2b/ai-training/routine-templates",
            &json!({"exerciseSteps": [{"exerciseId": "x"}, {"reps": 3, "durationSeconds": 3}]}),
        )
        .await?;
    assert_error(s, &body, 400, "validation_error");
    assert_eq!(
        detail_fields(&body),
        [
            "name",
            "goal",
            "intensity",
            "durationMinutes",
            "exerciseSteps[0].durationSeconds",
            "exerciseSteps[1].exerciseId",
            "exerciseSteps[1].durationSeconds"
        ]
    );
    let (s, body) = patch(
        &app,
        &client_admin,
        "/api/b2b/ai-training/catalog",
        &json!({"visibleRoutineTemplateIds": ["gofa-balance-flow", "nope"]}),
    )
    .await?;
    assert_error(s, &body, 400, "validation_error");
    let (_, body) = app
        .get(&client_admin, "/api/b2b/ai-training/catalog")
        .await?;
    assert_eq!(body["catalog"]["customized"], false);

    // start a run for the rest
    let (s, body) = app
        .post(
            &user,
            "/api/ai-training/routine-runs",
            &json!({"routineInstanceId": queue1[0], "startedFrom": "dashboard"}),
        )
        .await?;
    assert_eq!(s, 201, "{body}");
    let run_id = body["routineRun"]["routineRunId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let run_path = format!("/api/ai-training/routine-runs/{run_id}");
    let (s, body) = app
        .post(
            &user,
            &format!("/api/ai-training/routine-instances/{}/defer", queue1[0]),
            &json!({}),
        )
        .await?;
    assert_error(s, &body, 409, "instance_not_queued");
    let (s, body) = patch(&app, &user, &run_path, &json!({"status": "done"})).await?;
    assert_error(s, &body, 400, "validation_error");
    let (s, body) = app
        .post(
            &user,
            &format!("{run_path}/sync"),
            &json!({"guidedComplete": true, "skipped": true, "sequenceIndex": "1"}),
        )
        .await?;
    assert_error(s, &body, 400, "validation_error");
    assert_eq!(
        detail_fields(&body),
        ["sequenceIndex", "skipped", "guidedComplete", "skipped"]
    );
    let (s, body) = app
        .post(
            &user,
            &format!("{run_path}/sync"),
            &json!({"sequenceIndex": 99}),
        )
        .await?;
    assert_error(s, &body, 400, "validation_error");
    let (s, body) = app
        .post(
            &user,
            "/api/ai-move/sessions",
            &json!({"metadata": {"routineRunId": run_id}, "result": {"durationSeconds": -1}}),
        )
        .await?;
    assert_error(s, &body, 400, "validation_error");
    assert_eq!(
        detail_fields(&body),
        [
            "metadata.sequenceIndex",
            "result.completed",
            "result.durationSeconds"
        ]
    );
    let (s, body) = app
        .post(&user, "/api/ai-move/sessions", &json!({"metadata": {"routineRunId": run_id, "sequenceIndex": 50}, "result": {"completed": true}}))
        .await?;
    assert_error(s, &body, 400, "validation_error");
    let sessions: i64 = sqlx::query_scalar("select count(*) from ai_move_sessions")
        .fetch_one(&app.db)
        .await?;
    assert_eq!(sessions, 0);
    let (_, body) = app.get(&user, &run_path).await?;
    assert_eq!(body["routineRun"]["status"], "created");

    // unknown ids → 404
    for (method, path, body) in [
        (
            Method::GET,
            "/api/ai-training/routine-runs/run_nope".to_owned(),
            None,
        ),
        (
            Method::PATCH,
            "/api/ai-training/routine-runs/run_nope".to_owned(),
            Some(json!({"status": "abandoned"})),
        ),
        (
            Method::POST,
            "/api/ai-training/routine-runs/run_nope/sync".to_owned(),
            Some(json!({})),
        ),
        (
            Method::POST,
            "/api/ai-training/routine-instances/inst_nope/defer".to_owned(),
            Some(json!({})),
        ),
        (
            Method::POST,
            "/api/ai-training/routine-runs".to_owned(),
            Some(json!({"routineInstanceId": "inst_nope", "startedFrom": "x"})),
        ),
        (
            Method::POST,
            format!("{run_path}/sync"),
            Some(json!({"aiMoveSessionId": "ams_nope"})),
        ),
        (
            Method::POST,
            "/api/ai-move/sessions".to_owned(),
            Some(
                json!({"metadata": {"routineRunId": "run_nope", "sequenceIndex": 0}, "result": {"completed": true}}),
            ),
        ),
        (
            Method::GET,
            "/api/b2b/ai-training/routine-templates/tpl_nope".to_owned(),
            None,
        ),
    ] {
        let token = if path.starts_with("/api/b2b") {
            &client_admin
        } else {
            &user
        };
        let (s, b) = app
            .request(method, Some(token), &path, body.as_ref())
            .await?;
        assert_error(s, &b, 404, "not_found");
    }
    // another user's run and instance do not exist for them
    let (s, b) = app.get(&other, &run_path).await?;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = patch(&app, &other, &run_path, &json!({"status": "abandoned"})).await?;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app
        .post(&other, &format!("{run_path}/sync"), &json!({}))
        .await?;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app
        .post(
            &other,
            &format!("/api/ai-training/routine-instances/{}/defer", queue1[1]),
            &json!({}),
        )
        .await?;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app
        .post(
            &other,
            "/api/ai-training/routine-runs",
            &json!({"routineInstanceId": queue1[1], "startedFrom": "x"}),
        )
        .await?;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app.post(&other, "/api/ai-move/sessions", &json!({"metadata": {"routineRunId": run_id, "sequenceIndex": 0}, "result": {"completed": true}})).await?;
    assert_error(s, &b, 404, "not_found");
    let (_, b) = app.get(&other, "/api/ai-training/routine-runs").await?;
    assert_eq!(b["routineRuns"], json!([]));
    // nothing changed
    let (_, body) = app.get(&user, &run_path).await?;
    assert_eq!(body["routineRun"]["status"], "created");
    let (_, mine) = app.get(&user, "/api/ai-training/my-plan").await?;
    assert_eq!(mine["plan"]["planId"], plan_id);
    Ok(())
}

#[tokio::test]
async fn ai_training_roles_tenancy_and_admin_routes() -> Result<()> {
    let app = app().await?;
    let athlete = app.token("usr_1", "athlete", CLIENT);
    let coach = app.token("usr_c", "coach", CLIENT);
    let client_admin = app.token("usr_ca", "client_admin", CLIENT);
    let other_admin = app.token("usr_ca2", "client_admin", "org_other");
    let admin = app.admin();

    // module gating: no feature, unknown org, no token
    let plain = app.token("usr_p", "athlete", "org_plain");
    let (s, b) = app.get(&plain, "/api/ai-training/my-plan").await?;
    assert_error(s, &b, 403, "forbidden");
    let nowhere = app.token("usr_n", "athlete", "org_nowhere");
    let (s, b) = app
        .post(&nowhere, "/api/ai-training/my-plan/generate", &json!({}))
        .await?;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app
        .request(Method::GET, None, "/api/ai-training/my-plan", None)
        .await?;
    assert_error(s, &b, 401, "unauthorized");
    // the client_id claim is the tenant, not org_id
    let tenant = sign(
        json!({"sub": "usr_t", "role": "athlete", "org_id": "org_plain", "client_id": CLIENT, "exp": Utc::now().timestamp() + 600}),
    );
    let (s, b) = app
        .post(
            &tenant,
            "/api/ai-training/my-plan/generate",
            &json!({"frequency": 1}),
        )
        .await?;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["plan"]["clientId"], CLIENT);

    // a run to report on
    let inst = b["routineInstances"][0]["routineInstanceId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (s, _) = app
        .post(
            &tenant,
            "/api/ai-training/routine-runs",
            &json!({"routineInstanceId": inst, "startedFrom": "kiosk"}),
        )
        .await?;
    assert_eq!(s, 201);

    // records: admin or client_admin; clientId override for admin only; bounded limit
    for t in [&athlete, &coach] {
        let (s, b) = app.get(t, "/api/ai-training/records").await?;
        assert_error(s, &b, 403, "forbidden");
    }
    let (s, b) = app.get(&client_admin, "/api/ai-training/records").await?;
    assert_eq!((s, b["clientId"].as_str()), (200, Some(CLIENT)));
    assert_eq!(ids(&b["records"], "userId"), ["usr_t"]);
    assert_eq!(b["records"][0]["startedFrom"], "kiosk");
    let (s, b) = app
        .get(&client_admin, "/api/ai-training/records?clientId=org_other")
        .await?;
    assert_error(s, &b, 403, "forbidden");
    let (s, _) = app
        .get(
            &client_admin,
            &format!("/api/ai-training/records?clientId={CLIENT}"),
        )
        .await?;
    assert_eq!(s, 200);
    let (s, b) = app
        .get(
            &admin,
            &format!("/api/ai-training/records?clientId={CLIENT}&limit=500"),
        )
        .await?;
    assert_eq!((s, b["records"].as_array().map(Vec::len)), (200, Some(1)));
    let (s, b) = app
        .get(&admin, "/api/ai-training/records?clientId=org_other")
        .await?;
    assert_eq!((s, b["records"].as_array().map(Vec::len)), (200, Some(0)));
    let (s, b) = app
        .get(&admin, "/api/ai-training/records?clientId=org_plain")
        .await?;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app.get(&admin, "/api/ai-training/records").await?;
    assert_error(s, &b, 403, "forbidden"); // org_platform has no AI Training
    for q in ["limit=0", "limit=501", "limit=abc"] {
        let (s, b) = app
            .get(&client_admin, &format!("/api/ai-training/records?{q}"))
            .await?;
        assert_error(s, &b, 400, "validation_error");
    }

    // per-user admin routes
    let base = format!("/api/client/{CLIENT}/users/usr_1/ai-training");
    let (s, b) = app.get(&client_admin, &format!("{base}/plan")).await?;
    assert_eq!((s, b["plan"].clone()), (200, Value::Null));
    for t in [&athlete, &coach] {
        let (s, b) = app.get(t, &format!("{base}/plan")).await?;
        assert_error(s, &b, 403, "forbidden");
        let (s, b) = app
            .post(t, &format!("{base}/assign-starter-plan"), &json!({}))
            .await?;
        assert_error(s, &b, 403, "forbidden");
    }
    let (s, b) = app.get(&other_admin, &format!("{base}/plan")).await?;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app
        .post(
            &other_admin,
            &format!("{base}/assign-routine-template"),
            &json!({"routineTemplateId": "gofa-mobility-morning"}),
        )
        .await?;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app
        .get(&other_admin, &format!("{base}/routine-runs"))
        .await?;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app
        .get(
            &client_admin,
            "/api/client/org_plain/users/usr_1/ai-training/plan",
        )
        .await?;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app
        .get(&admin, "/api/client/org_plain/users/usr_1/ai-training/plan")
        .await?;
    assert_error(s, &b, 403, "forbidden");

    let (s, b) = app
        .post(
            &client_admin,
            &format!("{base}/assign-starter-plan"),
            &json!({"goal": "mobility", "frequency": 2, "allowDuplicateRoutineTemplates": false}),
        )
        .await?;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        (b["plan"]["assignedBy"].as_str(), b["plan"]["goal"].as_str()),
        (Some("usr_ca"), Some("mobility"))
    );
    assert_eq!(b["routineInstances"].as_array().map(Vec::len), Some(2));
    let plan_id = b["plan"]["planId"].clone();
    let (_, mine) = app.get(&athlete, "/api/ai-training/my-plan").await?;
    assert_eq!(mine["plan"]["planId"], plan_id);
    let (s, b) = app
        .post(
            &client_admin,
            &format!("{base}/assign-starter-plan"),
            &json!({"frequency": 99}),
        )
        .await?;
    assert_error(s, &b, 400, "validation_error");

    let (s, b) = app
        .post(
            &admin,
            &format!("{base}/assign-routine-template"),
            &json!({"routineTemplateId": "gofa-strength-chair"}),
        )
        .await?;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["plan"]["planId"], plan_id);
    assert_eq!(
        (
            b["routineInstance"]["queueIndex"].as_i64(),
            b["routineInstance"]["routineTemplateId"].as_str()
        ),
        (Some(2), Some("gofa-strength-chair"))
    );
    let (s, b) = app.get(&client_admin, &format!("{base}/plan")).await?;
    assert_eq!(s, 200);
    assert_eq!(b["plan"]["planId"], plan_id);
    assert_eq!(
        ids(&b["routineInstances"], "routineTemplateId")
            .last()
            .map(String::as_str),
        Some("gofa-strength-chair")
    );
    let (s, b) = app
        .post(
            &client_admin,
            &format!("{base}/assign-routine-template"),
            &json!({"routineTemplateId": "gofa-nope"}),
        )
        .await?;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app
        .post(
            &client_admin,
            &format!("{base}/assign-routine-template"),
            &json!({}),
        )
        .await?;
    assert_error(s, &b, 400, "validation_error");
    // a user without a plan gets one from an assignment
    let (s, b) = app
        .post(
            &client_admin,
            &format!("/api/client/{CLIENT}/users/usr_new/ai-training/assign-routine-template"),
            &json!({"routineTemplateId": "gofa-mobility-morning"}),
        )
        .await?;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        (
            b["plan"]["generationSource"].as_str(),
            b["routineInstance"]["queueIndex"].as_i64()
        ),
        (Some("assignment"), Some(0))
    );

    let (s, b) = app
        .get(
            &client_admin,
            &format!("/api/client/{CLIENT}/users/usr_t/ai-training/routine-runs"),
        )
        .await?;
    assert_eq!(
        (s, b["routineRuns"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    let (s, b) = app
        .get(&client_admin, &format!("{base}/routine-runs?limit=1000"))
        .await?;
    assert_error(s, &b, 400, "validation_error");
    let (s, b) = app
        .post(
            &client_admin,
            &format!("{base}/assessments"),
            &json!({"type": "mskAssessment", "data": {"notes": "knee"}}),
        )
        .await?;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["assessment"]["recordedBy"], "usr_ca");
    let (_, b) = app.get(&athlete, "/api/ai-training/assessments").await?;
    assert_eq!(
        b["assessmentSnapshot"]["availableInputs"],
        json!(["mskAssessment"])
    );

    // B2B authoring
    for t in [&athlete, &coach] {
        let (s, b) = app.get(t, "/api/b2b/ai-training/routine-templates").await?;
        assert_error(s, &b, 403, "forbidden");
        let (s, b) = patch(
            &app,
            t,
            "/api/b2b/ai-training/catalog",
            &json!({"visibleRoutineTemplateIds": []}),
        )
        .await?;
        assert_error(s, &b, 403, "forbidden");
    }
    let (s, b) = app
        .get(&client_admin, "/api/b2b/ai-training/routine-templates")
        .await?;
    assert_eq!(s, 200);
    assert!(b["routineTemplates"].as_array().map(Vec::len).unwrap_or(0) >= 12);
    let (s, b) = app
        .get(
            &client_admin,
            "/api/b2b/ai-training/catalog?clientId=org_other",
        )
        .await?;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app
        .get(&admin, "/api/b2b/ai-training/catalog?clientId=org_other")
        .await?;
    assert_eq!(
        (s, b["catalog"]["clientId"].as_str()),
        (200, Some("org_other"))
    );
    let (s, b) = app
        .get(&admin, "/api/b2b/ai-training/catalog?clientId=org_plain")
        .await?;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app.get(&plain, "/api/b2b/ai-training/catalog").await?;
    assert_error(s, &b, 403, "forbidden");
    let plain_admin = app.token("usr_pa", "client_admin", "org_plain");
    let (s, b) = app
        .get(&plain_admin, "/api/b2b/ai-training/catalog")
        .await?;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app.post(&admin, "/api/b2b/ai-training/routine-templates?clientId=org_other", &json!({"name": "Admin made", "goal": "strength", "intensity": "moderate", "durationMinutes": 15, "equipment": ["chair"], "exerciseSteps": [{"exerciseId": "sit-to-stand", "reps": 10}]})).await?;
    assert_eq!(
        (s, b["routineTemplate"]["clientId"].as_str()),
        (201, Some("org_other")),
        "{b}"
    );
    let id = b["routineTemplate"]["routineTemplateId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (s, b) = app
        .post(
            &client_admin,
            &format!("/api/b2b/ai-training/routine-templates/{id}/publish"),
            &json!({}),
        )
        .await?;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app
        .post(
            &other_admin,
            &format!("/api/b2b/ai-training/routine-templates/{id}/publish"),
            &json!({}),
        )
        .await?;
    assert_eq!(
        (s, b["routineTemplate"]["status"].as_str()),
        (200, Some("published"))
    );
    let (s, b) = app
        .post(
            &client_admin,
            "/api/b2b/ai-training/routine-templates/gofa-balance-flow/publish",
            &json!({}),
        )
        .await?;
    assert_error(s, &b, 403, "forbidden");
    Ok(())
}

#[tokio::test]
async fn ai_training_custom_token_is_single_use_and_expires() -> Result<()> {
    let app = app().await?;
    let user = app.token("usr_1", "athlete", CLIENT);

    let (s, b) = app
        .request(Method::POST, None, "/api/auth/exchange-token", None)
        .await?;
    assert_error(s, &b, 401, "unauthorized");
    // a client without the module gets no token it could not use
    let outsider = app.token("usr_out", "athlete", "client_without_module");
    let (s, b) = app
        .request(
            Method::POST,
            Some(&outsider),
            "/api/auth/exchange-token",
            None,
        )
        .await?;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app
        .request(Method::POST, Some(&user), "/api/auth/exchange-token", None)
        .await?;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["expiresIn"], 300);
    let token = b["customToken"].as_str().unwrap_or_default().to_owned();
    assert!(token.len() > 32);
    // only a hash is stored
    let stored: i64 = sqlx::query_scalar("select count(*) from ai_training_custom_tokens where position(convert_to($1, 'UTF8') in token_hash) > 0 or claims::text like '%' || $1 || '%'")
        .bind(&token)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(stored, 0);

    // accepted once, as the user it was exchanged for
    let path = format!("/api/ai-training/my-plan/generate?customToken={token}");
    let (s, b) = app
        .request(Method::POST, None, &path, Some(&json!({"frequency": 1})))
        .await?;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["plan"]["userId"], "usr_1");
    let (s, b) = app
        .request(
            Method::GET,
            None,
            &format!("/api/ai-training/my-plan?customToken={token}"),
            None,
        )
        .await?;
    assert_error(s, &b, 401, "invalid_custom_token");
    let (s, b) = app
        .request(
            Method::GET,
            None,
            "/api/ai-training/my-plan?customToken=ct_unknown",
            None,
        )
        .await?;
    assert_error(s, &b, 401, "invalid_custom_token");
    // not a bearer token and not accepted by the exchange or other APIs
    let (s, _) = app
        .request(Method::POST, Some(&token), "/api/auth/exchange-token", None)
        .await?;
    assert_eq!(s, 401);
    let (_, b) = app
        .request(Method::POST, Some(&user), "/api/auth/exchange-token", None)
        .await?;
    let fresh = b["customToken"].as_str().unwrap_or_default().to_owned();
    let (s, _) = app
        .request(
            Method::GET,
            None,
            &format!("/api/v1/jobs?customToken={fresh}"),
            None,
        )
        .await?;
    assert_eq!(s, 401);

    // expiry, without sleeping: rows written straight into the table
    let claims = json!({"sub": "usr_1", "role": "athlete", "org_id": CLIENT, "exp": Utc::now().timestamp() + 3600});
    for (raw, offset) in [
        ("ct_test_expired", "-1 second"),
        ("ct_test_live", "5 minutes"),
    ] {
        sqlx::query("insert into ai_training_custom_tokens (token_hash, user_id, claims, expires_at) values (sha256(convert_to($1, 'UTF8')), 'usr_1', $2, now() + $3::interval)")
            .bind(raw)
            .bind(&claims)
            .bind(offset)
            .execute(&app.db)
            .await?;
    }
    let (s, b) = app
        .request(
            Method::GET,
            None,
            "/api/ai-training/my-plan?customToken=ct_test_expired",
            None,
        )
        .await?;
    assert_error(s, &b, 401, "invalid_custom_token");
    let (s, b) = app
        .request(
            Method::GET,
            None,
            "/api/ai-training/my-plan?customToken=ct_test_live",
            None,
        )
        .await?;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["plan"]["userId"], "usr_1");
    Ok(())
}

/// Edge cases of the contract: an empty body is accepted however it is sent (an empty chunked
/// body, whitespace); a path id is limited to 200 characters, not bytes; a custom token of a
/// client whose module was turned off since the exchange opens no session.
#[tokio::test]
async fn ai_training_empty_bodies_character_ids_and_a_disabled_module() -> Result<()> {
    let app = app().await?;
    let user = app.token("usr_e", "athlete", CLIENT);
    // as some clients send it: chunked, with no data (written by hand: no length to send)
    let addr = app.base().trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await?;
    let request = format!(
        "POST /api/ai-training/my-plan/generate HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {user}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n0\r\n\r\n"
    );
    tokio::io::AsyncWriteExt::write_all(&mut conn, request.as_bytes()).await?;
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut conn, &mut answer).await?;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let (s, b) = app
        .request(
            Method::POST,
            Some(&user),
            "/api/ai-training/my-plan/generate",
            None,
        )
        .await?;
    assert_eq!(s, 201, "{b}");
    let res = app
        .http
        .post(format!("{}/api/ai-training/my-plan/generate", app.base()))
        .bearer_auth(&user)
        .body("  \n")
        .send()
        .await?;
    assert_eq!(res.status().as_u16(), 201, "whitespace only");

    let cjk = "日".repeat(70);
    let long = app.token(&cjk, "athlete", CLIENT);
    let (s, b) = app
        .request(
            Method::POST,
            Some(&long),
            "/api/ai-training/my-plan/generate",
            None,
        )
        .await?;
    assert_eq!(s, 201, "{b}");
    let admin = app.token("usr_ca", "client_admin", CLIENT);
    let path = format!(
        "/api/client/{CLIENT}/users/{}/ai-training/plan",
        "%E6%97%A5".repeat(70)
    );
    let (s, b) = app.get(&admin, &path).await?;
    assert_eq!(s, 200, "70 characters (210 bytes) reach the user: {b}");
    let path = format!(
        "/api/client/{CLIENT}/users/{}/ai-training/plan",
        "u".repeat(201)
    );
    let (s, b) = app.get(&admin, &path).await?;
    assert_eq!(
        (s, b["details"][0]["field"].as_str()),
        (400, Some("userId")),
        "{b}"
    );
    let path = format!("/api/ai-training/records?userId={}", "u".repeat(201));
    let (s, b) = app.get(&admin, &path).await?;
    assert_eq!(
        (s, b["details"][0]["field"].as_str()),
        (400, Some("userId")),
        "{b}"
    );

    let (_, b) = app
        .request(Method::POST, Some(&user), "/api/auth/exchange-token", None)
        .await?;
    let custom = b["customToken"].as_str().unwrap_or_default().to_owned();
    app.org(CLIENT, &[]).await?;
    let open = format!("/api/auth/custom-token-session?customToken={custom}");
    let (s, b) = app.request(Method::POST, None, &open, None).await?;
    assert_error(s, &b, 403, "forbidden");
    Ok(())
}

#[tokio::test]
async fn ai_training_a_custom_token_opens_a_session_for_the_play_page() -> Result<()> {
    // Arrange: a play page holding only a custom token
    let app = app().await?;
    let user = app.token("usr_s", "athlete", CLIENT);
    let (_, b) = app
        .request(Method::POST, Some(&user), "/api/auth/exchange-token", None)
        .await?;
    let custom = b["customToken"].as_str().unwrap_or_default().to_owned();

    // Act: the page opens a session with it, then makes several calls with the session
    let open = format!("/api/auth/custom-token-session?customToken={custom}");
    let (s, opened) = app.request(Method::POST, None, &open, None).await?;
    let session = opened["sessionToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (s1, generated) = app
        .request(
            Method::POST,
            Some(&session),
            "/api/ai-training/my-plan/generate",
            Some(&json!({"frequency": 1})),
        )
        .await?;
    let (s2, mine) = app
        .request(
            Method::GET,
            Some(&session),
            "/api/ai-training/my-plan",
            None,
        )
        .await?;

    // Assert: the session acts as the user, many times, only where custom tokens do
    assert_eq!(s, 200, "{opened}");
    assert!(session.starts_with("cs_") && session.len() > 32, "{opened}");
    let expires_in = opened["expiresIn"].as_i64().unwrap_or(0);
    assert!((3590..=3600).contains(&expires_in), "{opened}");
    assert_eq!((s1, s2), (201, 200), "{generated} {mine}");
    assert_eq!(mine["plan"]["userId"], "usr_s");
    assert_eq!(mine["plan"]["planId"], generated["plan"]["planId"]);
    let (s, b) = app.request(Method::POST, None, &open, None).await?;
    assert_error(s, &b, 401, "invalid_custom_token");
    let (s, _) = app
        .request(Method::GET, Some(&session), "/api/v1/jobs", None)
        .await?;
    assert_eq!(s, 401, "not a bearer token for other APIs");
    let (s, b) = app
        .request(
            Method::POST,
            Some(&user),
            "/api/auth/custom-token-session",
            None,
        )
        .await?;
    assert_eq!(
        (s, b["details"][0]["field"].as_str()),
        (400, Some("customToken")),
        "{b}"
    );
    // as a play page calls it: no bearer header, and the parameter missing or empty
    for path in [
        "/api/auth/custom-token-session",
        "/api/auth/custom-token-session?customToken=",
    ] {
        let (s, b) = app.request(Method::POST, None, path, None).await?;
        assert_eq!(
            (s, b["details"][0]["field"].as_str()),
            (400, Some("customToken")),
            "{path}: {b}"
        );
    }
    let (s, b) = app
        .request(
            Method::GET,
            Some("cs_unknown"),
            "/api/ai-training/my-plan",
            None,
        )
        .await?;
    assert_error(s, &b, 401, "invalid_session");
    // expiry, without sleeping: the session's row moved into the past
    sqlx::query("update ai_training_login_sessions set expires_at = now() - interval '1 second'")
        .execute(&app.db)
        .await?;
    let (s, b) = app
        .request(
            Method::GET,
            Some(&session),
            "/api/ai-training/my-plan",
            None,
        )
        .await?;
    assert_error(s, &b, 401, "invalid_session");
    Ok(())
}

/// Generates a plan for `token` and returns `(planId, routineInstanceIds)`.
async fn generate_plan(app: &TestApp, token: &str, body: &Value) -> Result<(String, Vec<String>)> {
    let (s, b) = app
        .post(token, "/api/ai-training/my-plan/generate", body)
        .await?;
    assert_eq!(s, 201, "{b}");
    let plan_id = b["plan"]["planId"].as_str().unwrap_or_default().to_owned();
    Ok((plan_id, ids(&b["routineInstances"], "routineInstanceId")))
}

async fn instance_status(app: &TestApp, id: &str) -> Result<String> {
    Ok(
        sqlx::query_scalar("select status from ai_routine_instances where id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await?,
    )
}

/// Open runs whose instance is cancelled (what a plan replacement must never leave behind).
async fn open_runs_on_cancelled_instances(app: &TestApp) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "select count(*) from ai_routine_runs r
         join ai_routine_instances i on i.id = r.routine_instance_id
         where i.status = 'cancelled' and r.status in ('created', 'in-progress')",
    )
    .fetch_one(&app.db)
    .await?)
}

#[tokio::test]
async fn ai_training_routine_queue_names_the_active_plan_when_every_instance_is_done() -> Result<()>
{
    // Arrange: a one-routine plan whose only instance is completed
    let app = app().await?;
    let user = app.token("usr_1", "athlete", CLIENT);
    let (plan_id, instances) = generate_plan(&app, &user, &json!({"frequency": 1})).await?;
    assert_eq!(instances.len(), 1);
    let (s, b) = app
        .post(
            &user,
            "/api/ai-training/routine-runs",
            &json!({"routineInstanceId": instances[0], "startedFrom": "dashboard"}),
        )
        .await?;
    assert_eq!(s, 201, "{b}");
    let run_path = format!(
        "/api/ai-training/routine-runs/{}",
        b["routineRun"]["routineRunId"].as_str().unwrap_or_default()
    );
    for status in ["in-progress", "completed"] {
        let (s, b) = patch(&app, &user, &run_path, &json!({"status": status})).await?;
        assert_eq!(s, 200, "{b}");
    }

    // Act
    let (s, queue) = app.get(&user, "/api/ai-training/my-routine-queue").await?;

    // Assert: the queue is empty but the plan is still the active one
    assert_eq!(s, 200, "{queue}");
    assert_eq!(queue["routineInstances"], json!([]));
    assert_eq!(queue["planId"], plan_id.as_str());
    // no plan at all: null
    let other = app.token("usr_2", "athlete", CLIENT);
    let (_, queue) = app.get(&other, "/api/ai-training/my-routine-queue").await?;
    assert_eq!(queue["planId"], Value::Null);
    Ok(())
}

#[tokio::test]
async fn ai_training_replaced_plan_instances_cannot_be_started_or_resurrected() -> Result<()> {
    // Arrange: a run on plan A, then plan A replaced by plan B
    let app = app().await?;
    let user = app.token("usr_1", "athlete", CLIENT);
    let (_, old) = generate_plan(&app, &user, &json!({"frequency": 2})).await?;
    let (s, b) = app
        .post(
            &user,
            "/api/ai-training/routine-runs",
            &json!({"routineInstanceId": old[0], "startedFrom": "dashboard"}),
        )
        .await?;
    assert_eq!(s, 201, "{b}");
    let run_id = b["routineRun"]["routineRunId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let run_path = format!("/api/ai-training/routine-runs/{run_id}");
    let (new_plan, _) = generate_plan(&app, &user, &json!({"frequency": 2})).await?;
    assert_eq!(instance_status(&app, &old[0]).await?, "cancelled");
    assert_eq!(open_runs_on_cancelled_instances(&app).await?, 0);

    // Act + Assert: a cancelled instance cannot be started
    let start_old = json!({"routineInstanceId": old[1], "startedFrom": "dashboard"});
    let (s, b) = app
        .post(&user, "/api/ai-training/routine-runs", &start_old)
        .await?;
    assert_error(s, &b, 409, "instance_not_queued");

    // The states the replacement race used to leave behind, written directly: an open run on a
    // cancelled instance, and (after abandoning such a run) a queued instance of a replaced plan.
    sqlx::query("update ai_routine_instances set status = 'queued' where id = $1")
        .bind(&old[1])
        .execute(&app.db)
        .await?;
    let (s, b) = app
        .post(&user, "/api/ai-training/routine-runs", &start_old)
        .await?;
    assert_error(s, &b, 409, "instance_not_queued");
    let reopen = || {
        sqlx::query(
            "update ai_routine_runs set status = 'in-progress', finished_at = null where id = $1",
        )
        .bind(&run_id)
        .execute(&app.db)
    };

    // finishing such a run closes the run but leaves the instance cancelled
    reopen().await?;
    let (s, b) = patch(&app, &user, &run_path, &json!({"status": "completed"})).await?;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["routineRun"]["status"], "completed");
    assert_eq!(b["nextRoutineInstance"]["planId"], new_plan.as_str());
    assert_eq!(instance_status(&app, &old[0]).await?, "cancelled");
    reopen().await?;
    let (s, b) = patch(&app, &user, &run_path, &json!({"status": "abandoned"})).await?;
    assert_eq!(s, 200, "{b}");
    assert_eq!(instance_status(&app, &old[0]).await?, "cancelled");
    let (_, queue) = app.get(&user, "/api/ai-training/my-routine-queue").await?;
    assert_eq!(queue["planId"], new_plan.as_str());
    assert!(
        queue["routineInstances"]
            .as_array()
            .is_some_and(|q| q.iter().all(|i| i["planId"] == new_plan.as_str())),
        "{queue}"
    );
    Ok(())
}

/// Backends of the test database waiting for a lock (row or advisory).
async fn lock_waiters(app: &TestApp) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "select count(*) from pg_stat_activity where datname = $1 and wait_event_type = 'Lock'",
    )
    .bind(&app.db_name)
    .fetch_one(&app.db)
    .await?)
}

async fn until_lock_waiters(app: &TestApp, n: i64) -> Result<()> {
    pacer_tests::eventually(
        std::time::Duration::from_secs(20),
        &format!("{n} backends waiting for a lock"),
        || async { Ok((lock_waiters(app).await? >= n).then_some(())) },
    )
    .await
}

#[tokio::test]
async fn ai_training_run_started_during_plan_replacement_leaves_no_open_run_on_a_cancelled_instance()
-> Result<()> {
    // Arrange: the test holds the instance's row lock, so that the interleaving is forced
    // (waiting on observed lock waits, not on time): run creation queues for the row first, the
    // replacement second.
    let app = app().await?;
    let user = app.token("usr_1", "athlete", CLIENT);
    let (_, old) = generate_plan(&app, &user, &json!({"frequency": 1})).await?;
    let mut blocker = app.db.begin().await?;
    sqlx::query("select 1 from ai_routine_instances where id = $1 for update")
        .bind(&old[0])
        .execute(&mut *blocker)
        .await?;

    // Act
    let start_body = json!({"routineInstanceId": old[0], "startedFrom": "dashboard"});
    let generate_body = json!({"frequency": 1});
    let create = app.post(&user, "/api/ai-training/routine-runs", &start_body);
    let replace = async {
        until_lock_waiters(&app, 1).await?;
        let generate = app.post(&user, "/api/ai-training/my-plan/generate", &generate_body);
        let release = async {
            until_lock_waiters(&app, 2).await?;
            blocker.commit().await?;
            anyhow::Ok(())
        };
        let (generated, released) = tokio::join!(generate, release);
        released?;
        generated
    };
    let (created, replaced) = tokio::join!(create, replace);

    // Assert: the run was started first, then abandoned with its instance by the replacement
    let (s, b) = created?;
    assert_eq!(s, 201, "{b}");
    let run_id = b["routineRun"]["routineRunId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (s, b) = replaced?;
    assert_eq!(s, 201, "{b}");
    let (_, b) = app
        .get(&user, &format!("/api/ai-training/routine-runs/{run_id}"))
        .await?;
    assert_eq!(b["routineRun"]["status"], "abandoned", "{b}");
    assert_eq!(instance_status(&app, &old[0]).await?, "cancelled");
    assert_eq!(open_runs_on_cancelled_instances(&app).await?, 0);
    Ok(())
}

#[tokio::test]
async fn ai_training_two_defers_at_once_take_distinct_places() -> Result<()> {
    // Arrange: the test holds the user's lock (as a plan change would), so both defers are in
    // flight together, then lets them go
    let app = app().await?;
    let user = app.token("usr_1", "athlete", CLIENT);
    let (_, ids) = generate_plan(&app, &user, &json!({"frequency": 3})).await?;
    let mut blocker = app.db.begin().await?;
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 6))")
        .bind(CLIENT)
        .bind("usr_1")
        .execute(&mut *blocker)
        .await?;

    // Act
    let paths: Vec<String> = ids[..2]
        .iter()
        .map(|id| format!("/api/ai-training/routine-instances/{id}/defer"))
        .collect();
    let empty = json!({});
    let release = async {
        until_lock_waiters(&app, 2).await?;
        blocker.commit().await?;
        anyhow::Ok(())
    };
    let (first, second, released) = tokio::join!(
        app.post(&user, &paths[0], &empty),
        app.post(&user, &paths[1], &empty),
        release
    );
    released?;

    // Assert: one behind the other, behind the third
    let places: Vec<i64> = [first?, second?]
        .iter()
        .map(|(s, b)| {
            assert_eq!(*s, 200, "{b}");
            b["routineInstance"]["queueIndex"].as_i64().unwrap_or(-1)
        })
        .collect();
    let mut sorted = places.clone();
    sorted.sort();
    assert_eq!(sorted, [3, 4], "{places:?}");
    Ok(())
}

#[tokio::test]
async fn ai_training_admin_and_b2b_routes_take_no_custom_or_session_token() -> Result<()> {
    // Arrange: a client admin's custom token and a session opened with another
    let app = app().await?;
    let admin = app.token("usr_ca", "client_admin", CLIENT);
    let exchange = || async {
        let (_, b) = app
            .request(Method::POST, Some(&admin), "/api/auth/exchange-token", None)
            .await?;
        anyhow::Ok(b["customToken"].as_str().unwrap_or_default().to_owned())
    };
    let custom = exchange().await?;
    let open = format!(
        "/api/auth/custom-token-session?customToken={}",
        exchange().await?
    );
    let (_, opened) = app.request(Method::POST, None, &open, None).await?;
    let session = opened["sessionToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let assign = format!("/api/client/{CLIENT}/users/usr_1/ai-training/assign-starter-plan");
    let authoring = "/api/b2b/ai-training/routine-templates";

    // Act
    let mut answers = Vec::new();
    for path in [assign.as_str(), authoring] {
        let with_custom = format!("{path}?customToken={custom}");
        answers.push(
            app.request(Method::POST, None, &with_custom, Some(&json!({})))
                .await?
                .0,
        );
        answers.push(
            app.request(Method::POST, Some(&session), path, Some(&json!({})))
                .await?
                .0,
        );
    }
    // the admin read of every run of the client too
    let records = "/api/ai-training/records";
    let with_custom = format!("{records}?customToken={custom}");
    answers.push(app.request(Method::GET, None, &with_custom, None).await?.0);
    answers.push(
        app.request(Method::GET, Some(&session), records, None)
            .await?
            .0,
    );
    // the refused custom token was not spent: the end-user routes still take it once
    let (s, b) = app
        .request(
            Method::GET,
            None,
            &format!("/api/ai-training/my-plan?customToken={custom}"),
            None,
        )
        .await?;

    // Assert
    assert_eq!(answers, [401; 6]);
    assert_eq!(s, 200, "{b}");
    Ok(())
}

#[tokio::test]
async fn ai_training_workers_delete_expired_custom_tokens_and_sessions() -> Result<()> {
    // Arrange: an expired and a live row in each table
    let mut app = app().await?;
    let claims = json!({"sub": "usr_1", "role": "athlete", "org_id": CLIENT, "exp": Utc::now().timestamp() + 3600});
    for table in ["ai_training_custom_tokens", "ai_training_login_sessions"] {
        for (raw, offset) in [("expired", "-1 second"), ("live", "5 minutes")] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "insert into {table} (token_hash, user_id, claims, expires_at)
                 values (sha256(convert_to($1, 'UTF8')), 'usr_1', $2, now() + $3::interval)"
            )))
            .bind(format!("{table}_{raw}"))
            .bind(&claims)
            .bind(offset)
            .execute(&app.db)
            .await?;
        }
    }
    let db = app.db.clone();
    let left = move || {
        let db = db.clone();
        async move {
            let (tokens, sessions): (i64, i64) = sqlx::query_as(
                "select (select count(*) from ai_training_custom_tokens),
                        (select count(*) from ai_training_login_sessions)",
            )
            .fetch_one(&db)
            .await?;
            anyhow::Ok([tokens, sessions])
        }
    };
    assert_eq!(left().await?, [2, 2]);

    // Act: a worker's sweep runs every reconciler pass
    app.start_worker(&[("PACER_RECONCILE_INTERVAL_SECS", "1")])?;

    // Assert: the expired rows go, the live ones stay
    pacer_tests::eventually(std::time::Duration::from_secs(30), "the sweep", || {
        let left = left.clone();
        async move { Ok((left().await? == [1, 1]).then_some(())) }
    })
    .await?;
    let (s, b) = app
        .request(
            Method::GET,
            None,
            "/api/ai-training/my-plan?customToken=ai_training_custom_tokens_live",
            None,
        )
        .await?;
    assert_eq!(s, 200, "{b}");
    Ok(())
}
