use pacer_tests::TestApp;
use serde_json::{Value, json};

#[tokio::test]
async fn bad_input_gets_a_4xx_error_body_and_queues_nothing() -> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.set("PACER_MAX_BODY_BYTES", "20000");
    app.start().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    let ok = json!({"weeks": 4, "level": "beginner", "org_id": "org_demo"});
    let with = |patch: Value| {
        let mut input = ok.clone();
        for (k, v) in patch.as_object().cloned().unwrap_or_default() {
            input[k] = v;
        }
        json!({"kind": "generate_draft", "input": input})
    };
    let cases: Vec<(Value, &str, &[&str])> = vec![
        (
            json!({"kind": "generate_draft"}),
            "validation_error",
            &["input"],
        ),
        (
            json!({"kind": "teleport", "input": {}}),
            "validation_error",
            &["kind"],
        ),
        (
            json!({"kind": 7, "input": {}}),
            "validation_error",
            &["kind"],
        ),
        (json!([1, 2, 3]), "validation_error", &["body"]),
        (
            with(json!({"weeks": 0})),
            "validation_error",
            &["input.weeks"],
        ),
        (
            with(json!({"weeks": 53})),
            "validation_error",
            &["input.weeks"],
        ),
        (
            with(json!({"weeks": "twelve"})),
            "validation_error",
            &["input.weeks"],
        ),
        (
            with(json!({"weeks": 4.5})),
            "validation_error",
            &["input.weeks"],
        ),
        (
            with(json!({"level": "elite"})),
            "validation_error",
            &["input.level"],
        ),
        (
            with(json!({"start_date": "05/05/2025"})),
            "validation_error",
            &["input.start_date"],
        ),
        (
            with(json!({"workout_preference": "whatever"})),
            "validation_error",
            &["input.workout_preference"],
        ),
        (
            with(json!({"weeks": 0, "level": 3, "org_id": ""})),
            "validation_error",
            &["input.weeks", "input.level", "input.org_id"],
        ),
        (
            json!({"kind": "generate_plan", "input": {"weeks": 4, "level": "beginner", "org_id": "org_demo", "refined_draft": "too short"}}),
            "validation_error",
            &["input.refined_draft"],
        ),
    ];
    for (body, code, fields) in cases {
        let (status, res) = app.post(&coach, "/api/v1/jobs", &body).await?;
        assert_eq!(status, 400, "{body} -> {res}");
        assert_eq!(res["status"], "error");
        assert_eq!(res["code"], code, "{res}");
        let got: Vec<&str> = res["details"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["field"].as_str())
            .collect();
        assert_eq!(got, fields, "{body} -> {res}");
        assert!(res["error"].as_str().is_some_and(|e| !e.is_empty()));
    }

    // malformed JSON and an empty body
    for raw in ["{\"kind\": ", "", "not json"] {
        let res = app
            .http
            .post(format!("{}/api/v1/jobs", app.base()))
            .bearer_auth(&coach)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await?;
        assert_eq!(res.status(), 400);
        let body: Value = res.json().await?;
        assert_eq!(body["code"], "malformed_json", "{body}");
    }
    // oversized body
    let big = json!({"kind": "generate_draft", "input": {"weeks": 4, "level": "beginner", "org_id": "org_demo", "additional_prompt": "x".repeat(30_000)}});
    let (status, body) = app.post(&coach, "/api/v1/jobs", &big).await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    // bad query parameters and unknown routes keep the same body
    let (status, body) = app
        .get(&coach, "/api/v1/jobs?state=sleeping&per_page=500")
        .await?;
    assert_eq!(status, 400);
    let fields: Vec<&str> = body["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert_eq!(fields, ["state", "per_page"]);
    let (status, body) = app.get(&coach, "/api/v1/nothing-here").await?;
    assert_eq!((status, body["status"].as_str()), (404, Some("error")));
    let (status, _) = app.get(&coach, "/api/v1/jobs/not-a-uuid").await?;
    assert_eq!(status, 404);

    // nothing was queued, and the service still serves
    let count: i64 = sqlx::query_scalar("select count(*) from jobs")
        .fetch_one(&app.db)
        .await?;
    assert_eq!(count, 0);
    let mut redis = app.redis().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", app.prefix))
        .query_async(&mut redis)
        .await?;
    assert!(
        keys.iter()
            .all(|k| !k.contains(":scheduled") && !k.contains(":data")),
        "{keys:?}"
    );
    let id = app.submit(&coach, "generate_draft", ok).await?;
    app.wait_state(&coach, id, "succeeded", std::time::Duration::from_secs(30))
        .await?;
    Ok(())
}

/// A plan whose `weeks` does not match its draft's week headers is refused the same way by the
/// Jobs API and the AI Coach route (the input validated before anything is queued): a 400 with
/// the same message, the field named as each path names its input fields.
#[tokio::test]
async fn a_plan_whose_weeks_miss_its_draft_is_refused_by_the_jobs_api_too() -> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    let input = json!({"weeks": 4, "level": "beginner", "org_id": "org_demo",
                       "refined_draft": "Week 1: base\n- Monday: Easy 5 km\nWeek 6: base\n- Monday: Easy 5 km"});
    let message = "must match the draft, which has 6 weeks";

    let (status, jobs) = app
        .post(
            &coach,
            "/api/v1/jobs",
            &json!({"kind": "generate_plan", "input": input}),
        )
        .await?;
    assert_eq!(status, 400, "{jobs}");
    assert_eq!(jobs["code"], "validation_error");
    assert_eq!(
        jobs["details"],
        json!([{"field": "input.weeks", "message": message}])
    );
    assert_eq!(jobs["error"], format!("input.weeks: {message}"));

    let (status, coach_route) = app
        .post(&coach, "/api/v1/ai-coach/generate-plan", &input)
        .await?;
    assert_eq!(status, 400, "{coach_route}");
    assert_eq!(coach_route["code"], jobs["code"]);
    assert_eq!(
        coach_route["details"],
        json!([{"field": "weeks", "message": message}])
    );

    // nothing was queued
    let count: i64 = sqlx::query_scalar("select count(*) from jobs")
        .fetch_one(&app.db)
        .await?;
    assert_eq!(count, 0);
    let mut redis = app.redis().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", app.prefix))
        .query_async(&mut redis)
        .await?;
    assert!(
        keys.iter()
            .all(|k| !k.contains(":scheduled") && !k.contains(":data")),
        "{keys:?}"
    );

    // with matching weeks the same input is accepted
    let mut matching = input.clone();
    matching["weeks"] = json!(6);
    app.submit(&coach, "generate_plan", matching).await?;
    Ok(())
}
