//! AI Coach API (seed 000) on the job engine, with the built-in rules provider.

use std::time::Duration;

use pacer_tests::{TestApp, read_sse, types};
use serde_json::{Value, json};

async fn app() -> anyhow::Result<(TestApp, String)> {
    let mut app = TestApp::new().await?;
    app.start().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    Ok((app, coach))
}

fn draft_body() -> Value {
    json!({"weeks": 4, "level": "intermediate", "org_id": "org_demo", "start_date": "2025-05-05",
           "additional_prompt": "10K race, 4 days per week, long run on Sunday"})
}

async fn draft(app: &TestApp, coach: &str) -> anyhow::Result<String> {
    let (status, body) = app
        .post(coach, "/api/v1/ai-coach/generate-draft", &draft_body())
        .await?;
    assert_eq!(status, 200, "{body}");
    Ok(body["data"]["draft"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

fn plan_body(refined_draft: &str) -> Value {
    let mut b = draft_body();
    b["refined_draft"] = json!(refined_draft);
    b
}

/// Every workout has the seed's fields with the seed's types; blocks add up to the duration.
fn assert_workout_shape(w: &Value) {
    for f in [
        "week",
        "target_duration_in_seconds",
        "target_distance_in_meters",
    ] {
        assert!(w[f].is_u64(), "{f} is an integer: {w}");
    }
    for f in [
        "phase",
        "day",
        "workout_name",
        "workout_description",
        "workout_type",
        "workout_sub_type",
        "date",
    ] {
        assert!(w[f].is_string(), "{f} is a string: {w}");
    }
    let blocks = w["content_blocks"]
        .as_array()
        .expect("content_blocks is an array");
    assert!(!blocks.is_empty());
    let sum: u64 = blocks
        .iter()
        .map(|b| b["duration_seconds"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        sum,
        w["target_duration_in_seconds"].as_u64().unwrap_or(0),
        "blocks add up: {w}"
    );
    assert!(
        blocks
            .iter()
            .all(|b| ["warmup", "main", "cooldown"].contains(&b["type"].as_str().unwrap_or("")))
    );
}

/// Past `PACER_SYNC_TIMEOUT_SECS` a synchronous route answers 202 with the job's links and its
/// state as it is (here still queued: no worker runs), the state a poll shows.
#[tokio::test]
async fn a_synchronous_route_past_its_timeout_answers_202_with_the_jobs_real_state()
-> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.set("PACER_SYNC_TIMEOUT_SECS", "1");
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    let (status, body) = app
        .post(&coach, "/api/v1/ai-coach/generate-draft", &draft_body())
        .await?;
    assert_eq!(status, 202, "{body}");
    let data = &body["data"];
    assert_eq!(data["state"], "queued", "{body}");
    let status_url = data["status_url"].as_str().unwrap_or_default();
    let (status, job) = app.get(&coach, status_url).await?;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["data"]["state"], data["state"], "{job}");
    assert_eq!(job["data"]["job_id"], data["job_id"], "{job}");
    Ok(())
}

#[tokio::test]
async fn generate_draft_answers_the_seed_shape_and_echoes_the_principle() -> anyhow::Result<()> {
    let (app, coach) = app().await?;
    let (status, body) = app
        .post(&coach, "/api/v1/ai-coach/generate-draft", &draft_body())
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    let data = &body["data"];
    assert!(data["draft"].as_str().is_some_and(|d| d.contains("Week 4")));
    assert_eq!(data["metadata"]["weeks"], 4);
    assert_eq!(data["metadata"]["level"], "intermediate");
    assert_eq!(data["metadata"]["org_id"], "org_demo");
    assert!(
        chrono::DateTime::parse_from_rfc3339(
            data["metadata"]["generated_at"].as_str().unwrap_or("")
        )
        .is_ok()
    );
    assert!(
        data["training_principle"]
            .as_str()
            .is_some_and(|p| p.contains("80/20")),
        "the default principle"
    );

    // a per-request principle wins and is echoed
    let mut b = draft_body();
    b["training_principle"] = json!("Threshold-heavy Norwegian model.");
    let (_, body) = app
        .post(&coach, "/api/v1/ai-coach/generate-draft", &b)
        .await?;
    assert_eq!(
        body["data"]["training_principle"],
        "Threshold-heavy Norwegian model."
    );
    Ok(())
}

#[tokio::test]
async fn draft_stream_sends_progress_result_done_with_a_job_id() -> anyhow::Result<()> {
    let (app, coach) = app().await?;
    let res = app
        .http
        .post(format!(
            "{}/api/v1/ai-coach/generate-draft/stream",
            app.base()
        ))
        .bearer_auth(&coach)
        .json(&draft_body())
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()?
            .starts_with("text/event-stream")
    );
    let job_id = res.headers()["x-job-id"].to_str()?.to_owned();
    let events = read_sse(res, None, Duration::from_secs(60)).await?;
    let t = types(&events);
    assert!(
        t.starts_with(&["progress".to_owned()])
            && t.ends_with(&["result".to_owned(), "done".to_owned()]),
        "{t:?}"
    );
    let p = &events[0].1;
    assert!(p["status"].is_string() && p["message"].is_string() && p["progress"].is_u64());
    assert!(events[events.len() - 2].1["data"]["draft"].is_string());
    // the same job through the Jobs API
    let job = app.job(&coach, job_id.parse()?).await?;
    assert_eq!(job["state"], "succeeded");
    Ok(())
}

#[tokio::test]
async fn generate_plan_turns_the_draft_into_one_workout_per_training_day() -> anyhow::Result<()> {
    let (app, coach) = app().await?;
    let text = draft(&app, &coach).await?;
    let (status, body) = app
        .post(&coach, "/api/v1/ai-coach/generate-plan", &plan_body(&text))
        .await?;
    assert_eq!(status, 200, "{body}");
    let content = body["data"]["content"].as_array().expect("content");
    assert_eq!(
        content.len(),
        4 * 4,
        "4 days a week, the race on the last Sunday"
    );
    assert_eq!(
        content.last().map(|w| w["workout_sub_type"].clone()),
        Some(json!("race"))
    );
    content.iter().for_each(assert_workout_shape);
    let mut days: Vec<(u64, String)> = content
        .iter()
        .map(|w| {
            (
                w["week"].as_u64().unwrap_or(0),
                w["day"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let n = days.len();
    days.dedup();
    assert_eq!(days.len(), n, "one workout per training day");
    // start_date (a Monday) gives each workout its calendar date, in its week, on its weekday
    let start = chrono::NaiveDate::from_ymd_opt(2025, 5, 5).expect("date");
    for w in content {
        let date = chrono::NaiveDate::parse_from_str(w["date"].as_str().unwrap_or(""), "%Y-%m-%d")?;
        assert_eq!(
            date.format("%A").to_string(),
            w["day"].as_str().unwrap_or(""),
            "{w}"
        );
        assert_eq!(
            (date - start).num_days() / 7 + 1,
            w["week"].as_i64().unwrap_or(0),
            "{w}"
        );
    }
    let info = &body["data"]["weekly_info"];
    for week in 1..=4 {
        let w = &info[week.to_string()];
        assert!(
            w["phase"].is_string() && w["focus"].is_string() && w["total_distance_km"].is_number(),
            "{w}"
        );
    }
    assert_eq!(
        body["data"]["warnings"],
        json!([]),
        "an untouched draft reads back cleanly"
    );

    // a coach's edit changes the workout
    let line = text
        .lines()
        .find(|l| l.contains("Tuesday:") && !l.contains("Rest"))
        .expect("a Tuesday run");
    let edited = text.replacen(line, "- Tuesday: Intervals 6 x 800m", 1);
    let (_, body) = app
        .post(
            &coach,
            "/api/v1/ai-coach/generate-plan",
            &plan_body(&edited),
        )
        .await?;
    let first_tuesday = body["data"]["content"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|w| w["day"] == "Tuesday")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        first_tuesday["workout_sub_type"], "intervals",
        "{first_tuesday}"
    );
    // and an unreadable line comes back as a warning
    let garbled = text.replacen("Week 2", "Week 2\n- Thursday: ???", 1);
    let (_, body) = app
        .post(
            &coach,
            "/api/v1/ai-coach/generate-plan",
            &plan_body(&garbled),
        )
        .await?;
    assert!(
        body["data"]["warnings"]
            .as_array()
            .is_some_and(|w| !w.is_empty()),
        "{}",
        body["data"]["warnings"]
    );
    Ok(())
}

#[tokio::test]
async fn plan_streams_batch_and_incremental_in_the_seed_shapes() -> anyhow::Result<()> {
    let (app, coach) = app().await?;
    let text = draft(&app, &coach).await?;
    let post = |path: &'static str| {
        app.http
            .post(format!("{}{path}", app.base()))
            .bearer_auth(&coach)
            .json(&plan_body(&text))
            .send()
    };

    let batch = read_sse(
        post("/api/v1/ai-coach/generate-plan/stream").await?,
        None,
        Duration::from_secs(60),
    )
    .await?;
    let t = types(&batch);
    assert!(
        !t.contains(&"workout".to_owned()) && !t.contains(&"weekly_info".to_owned()),
        "{t:?}"
    );
    assert_eq!(&t[t.len() - 2..], ["result", "done"]);
    let content = batch[batch.len() - 2].1["data"]["content"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!content.is_empty());

    let inc = read_sse(
        post("/api/v1/ai-coach/generate-plan/stream-content").await?,
        None,
        Duration::from_secs(60),
    )
    .await?;
    let workouts: Vec<&Value> = inc
        .iter()
        .filter(|(_, e)| e["type"] == "workout")
        .map(|(_, e)| &e["data"])
        .collect();
    assert_eq!(workouts.len(), content.len());
    workouts.iter().for_each(|w| assert_workout_shape(w));
    // every progress event carries the seed's fields, count and total included: the first
    // ("Reading the draft...") counts 0, then one per workout
    let progress: Vec<&Value> = inc
        .iter()
        .filter(|(_, e)| e["type"] == "progress")
        .map(|(_, e)| e)
        .collect();
    for p in &progress {
        for f in ["status", "message", "count", "total", "progress"] {
            assert!(p.get(f).is_some(), "{f} in {p}");
        }
        assert!(
            p["count"].is_u64() && p["total"] == json!(content.len()),
            "{p}"
        );
    }
    let counts: Vec<u64> = progress
        .iter()
        .filter_map(|p| p["count"].as_u64())
        .collect();
    assert_eq!(counts, (0..=content.len() as u64).collect::<Vec<_>>());
    assert!(progress[1..].iter().all(|p| p["status"] == "generating"));
    // a progress bar never goes back
    let pcts: Vec<u64> = progress
        .iter()
        .filter_map(|p| p["progress"].as_u64())
        .collect();
    assert!(pcts.windows(2).all(|w| w[0] <= w[1]), "{pcts:?}");
    // the batch stream's progress events are the job's too
    assert!(
        batch
            .iter()
            .filter(|(_, e)| e["type"] == "progress")
            .all(|(_, e)| e["count"].is_u64() && e["total"] == json!(content.len())),
        "{batch:?}"
    );
    // weekly_info follows each week's last workout
    let mut week_of_last_workout = None;
    let mut weekly = 0;
    for (_, e) in &inc {
        match e["type"].as_str() {
            Some("workout") => week_of_last_workout = e["data"]["week"].as_u64(),
            Some("weekly_info") => {
                let key = week_of_last_workout
                    .map(|w| w.to_string())
                    .unwrap_or_default();
                assert!(
                    e["data"][&key].is_object(),
                    "weekly_info for week {key}: {e}"
                );
                weekly += 1;
            }
            _ => {}
        }
    }
    assert_eq!(weekly, 4);
    let result = &inc[inc.len() - 2].1;
    assert_eq!(result["type"], "result");
    assert_eq!(result["total_workouts"], json!(content.len()));
    assert!(result["weekly_info"]["4"].is_object());
    assert_eq!(
        inc.last().map(|(_, e)| e["type"].clone()),
        Some(json!("done"))
    );
    Ok(())
}

#[tokio::test]
async fn training_principle_resolves_personal_over_org_over_default() -> anyhow::Result<()> {
    let (app, coach) = app().await?;
    let path = "/api/v1/ai-coach/training-principle/org_demo";
    let (_, body) = app.get(&coach, path).await?;
    assert_eq!(
        (
            body["data"]["org_id"].as_str(),
            body["data"]["source"].as_str()
        ),
        (Some("org_demo"), Some("default"))
    );

    let (s, _) = app
        .put(
            &coach,
            path,
            &json!({"training_principle": "Org: pyramidal.", "scope": "org"}),
        )
        .await?;
    assert_eq!(s, 200);
    let (_, body) = app.get(&coach, path).await?;
    assert_eq!(body["data"]["training_principle"], "Org: pyramidal.");
    let (_, d) = app
        .post(&coach, "/api/v1/ai-coach/generate-draft", &draft_body())
        .await?;
    assert_eq!(d["data"]["training_principle"], "Org: pyramidal.");

    app.put(
        &coach,
        path,
        &json!({"training_principle": "Mine: polarized.", "scope": "personal"}),
    )
    .await?;
    let (_, body) = app.get(&coach, path).await?;
    assert_eq!(
        (
            body["data"]["training_principle"].as_str(),
            body["data"]["source"].as_str()
        ),
        (Some("Mine: polarized."), Some("personal"))
    );
    // another coach of the org still sees the org's
    let (_, other) = app
        .get(&app.token("usr_coach2", "coach", "org_demo"), path)
        .await?;
    assert_eq!(other["data"]["training_principle"], "Org: pyramidal.");
    let (s, body) = app
        .put(
            &coach,
            path,
            &json!({"training_principle": "", "scope": "team"}),
        )
        .await?;
    assert_eq!(s, 400);
    assert_eq!(body["details"].as_array().map(Vec::len), Some(2));
    Ok(())
}

/// An admin's organization update naming some fields (the README's setup command, a feature
/// switch) keeps the others: the principle a coach set survives it; `null` clears it.
#[tokio::test]
async fn an_org_update_keeps_the_fields_it_leaves_out() -> anyhow::Result<()> {
    let (app, coach) = app().await?;
    let admin = app.admin();
    let principle = "/api/v1/ai-coach/training-principle/org_demo";
    let org = "/api/v1/admin/orgs/org_demo";
    let (s, _) = app
        .put(
            &coach,
            principle,
            &json!({"training_principle": "Org: pyramidal.", "scope": "org"}),
        )
        .await?;
    assert_eq!(s, 200);

    let (s, body) = app
        .put(
            &admin,
            org,
            &json!({"features": ["coach_agent", "ai_training"]}),
        )
        .await?;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["data"]["name"], "org_demo", "{body}");
    assert_eq!(
        body["data"]["training_principle"], "Org: pyramidal.",
        "{body}"
    );
    let (_, got) = app.get(&coach, principle).await?;
    assert_eq!(
        (
            got["data"]["training_principle"].as_str(),
            got["data"]["source"].as_str()
        ),
        (Some("Org: pyramidal."), Some("org")),
        "{got}"
    );
    let (s, body) = app.put(&admin, org, &json!({"name": "Demo Club"})).await?;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body["data"]["features"],
        json!(["ai_training", "coach_agent"]),
        "{body}"
    );

    let (s, body) = app
        .put(&admin, org, &json!({"training_principle": null}))
        .await?;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["data"]["name"], "Demo Club", "{body}");
    assert!(body["data"]["training_principle"].is_null(), "{body}");
    let (_, got) = app.get(&coach, principle).await?;
    assert_eq!(got["data"]["source"], "default", "{got}");
    Ok(())
}

/// A worker reads principles for a batch of jobs at once, each (coach, organization) pair once:
/// jobs of coaches with different principles, submitted together, each get their own coach's.
#[tokio::test]
async fn jobs_of_several_coaches_at_once_each_get_their_coachs_principle() -> anyhow::Result<()> {
    let (app, coach) = app().await?;
    app.org("org_other", &["coach_agent"]).await?;
    let path = "/api/v1/ai-coach/training-principle/org_demo";
    let org = json!({"training_principle": "Org: pyramidal.", "scope": "org"});
    assert_eq!(app.put(&coach, path, &org).await?.0, 200);
    let mine = app.token("usr_mine", "coach", "org_demo");
    let personal = json!({"training_principle": "Mine: polarized.", "scope": "personal"});
    assert_eq!(app.put(&mine, path, &personal).await?.0, 200);
    let far = app.token("usr_far", "coach", "org_other");
    let coaches = [
        (coach.as_str(), "org_demo", "Org: pyramidal."),
        (mine.as_str(), "org_demo", "Mine: polarized."),
        (
            far.as_str(),
            "org_other",
            pacer_common::principle::DEFAULT_PRINCIPLE,
        ),
    ];
    let submissions = (0..30).map(|i| {
        let (token, org_id, expected) = coaches[i % coaches.len()];
        let input = json!({"weeks": 2, "level": "beginner", "org_id": org_id});
        let app = &app;
        async move {
            let id = app.submit(token, "generate_draft", input).await?;
            anyhow::Ok((token, id, expected))
        }
    });
    for submitted in futures::future::join_all(submissions).await {
        let (token, id, expected) = submitted?;
        let job = app
            .wait_state(token, id, "succeeded", Duration::from_secs(60))
            .await?;
        assert_eq!(job["result"]["training_principle"], expected, "{job}");
    }
    Ok(())
}

#[tokio::test]
async fn the_workout_library_feeds_prefer_and_strict_existing() -> anyhow::Result<()> {
    let (app, coach) = app().await?;
    let lib = json!({"workout_name": "Club Tempo", "workout_description": "Our Thursday tempo", "workout_sub_type": "easy-run",
                     "target_duration_in_seconds": 2400, "target_distance_in_meters": 6000,
                     "content_blocks": [{"type": "warmup", "duration_seconds": 600}, {"type": "main", "duration_seconds": 1800}]});
    let (s, created) = app.post(&coach, "/api/v1/ai-coach/workouts", &lib).await?;
    assert_eq!(s, 201, "{created}");
    let id = created["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (_, list) = app.get(&coach, "/api/v1/ai-coach/workouts").await?;
    assert_eq!(list["data"]["total"], 1);
    let mut bad = lib.clone();
    bad["target_duration_in_seconds"] = json!(100);
    let (s, body) = app.post(&coach, "/api/v1/ai-coach/workouts", &bad).await?;
    assert_eq!(
        (s, body["details"][0]["field"].as_str()),
        (400, Some("content_blocks"))
    );

    let text = draft(&app, &coach).await?;
    let mut b = plan_body(&text);
    b["workout_preference"] = json!("prefer_existing");
    let (_, prefer) = app
        .post(&coach, "/api/v1/ai-coach/generate-plan", &b)
        .await?;
    let content = prefer["data"]["content"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let from_lib = content
        .iter()
        .filter(|w| w["library_workout_id"] == json!(id))
        .count();
    let easy = content
        .iter()
        .filter(|w| w["workout_sub_type"] == "easy-run")
        .count();
    assert!(
        easy > 0 && from_lib == easy,
        "every easy run comes from the library ({from_lib} of {easy})"
    );
    assert!(
        content.iter().any(|w| w["workout_sub_type"] != "easy-run"),
        "other days are generated"
    );

    b["workout_preference"] = json!("strict_existing");
    let (_, strict) = app
        .post(&coach, "/api/v1/ai-coach/generate-plan", &b)
        .await?;
    let content = strict["data"]["content"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        content.iter().all(|w| w["library_workout_id"] == json!(id)),
        "only library workouts"
    );
    assert!(strict["data"]["warnings"].as_array().is_some_and(|w| {
        w.iter()
            .any(|m| m.as_str().unwrap_or("").contains("left out"))
    }));

    // `org_id` is the admins' way to another library: a coach naming another one is refused
    // and adds nothing; naming its own is the default
    let (s, body) = app
        .post(&coach, "/api/v1/ai-coach/workouts?org_id=org_other", &lib)
        .await?;
    assert_eq!(
        (s, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (s, own) = app
        .get(&coach, "/api/v1/ai-coach/workouts?org_id=org_demo")
        .await?;
    assert_eq!(s, 200, "{own}");
    assert_eq!(own["data"]["total"], 1, "{own}");

    let (s, _) = app
        .delete(&coach, &format!("/api/v1/ai-coach/workouts/{id}"))
        .await?;
    assert_eq!(s, 204);
    assert_eq!(
        app.get(&coach, &format!("/api/v1/ai-coach/workouts/{id}"))
            .await?
            .0,
        404
    );
    Ok(())
}

/// strict_existing can leave a week with no workout at all. Its `weekly_info` is still
/// streamed, right after the previous week's (as the openai provider does), so a client that
/// follows stream-content gets every week of the result's `weekly_info` once, in week order,
/// each after its week's workouts: here with empty weeks at the start, in the middle and at the
/// end.
#[tokio::test]
async fn strict_existing_streams_the_weekly_info_of_weeks_left_empty() -> anyhow::Result<()> {
    let (app, coach) = app().await?;
    // the 4-week draft has repetitions in weeks 2 and 3 only (base and taper weeks have none)
    let lib = json!({"workout_name": "Club Reps", "workout_description": "Our track reps", "workout_sub_type": "repetition",
                     "target_duration_in_seconds": 2700, "target_distance_in_meters": 7000,
                     "content_blocks": [{"type": "warmup", "duration_seconds": 900}, {"type": "main", "duration_seconds": 1200},
                                        {"type": "cooldown", "duration_seconds": 600}]});
    let (s, created) = app.post(&coach, "/api/v1/ai-coach/workouts", &lib).await?;
    assert_eq!(s, 201, "{created}");
    let text = draft(&app, &coach).await?;
    // the coach's edit: week 3 has no repetitions, the race week has them instead
    let mut week = 0;
    let edited: Vec<String> = text
        .lines()
        .map(|line| {
            if let Some(rest) = line.strip_prefix("Week ") {
                week = rest
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(week);
            }
            match (week, line.split_once(": ")) {
                (3, Some((day, what))) if what.starts_with("Repetitions") => {
                    format!("{day}: Easy run 5 km")
                }
                (4, Some((day, what))) if what.starts_with("Intervals") => {
                    format!("{day}: Repetitions 8 x 200m")
                }
                _ => line.to_owned(),
            }
        })
        .collect();
    let edited = edited.join("\n");
    assert_ne!(edited, text, "the draft has the lines edited");

    for (refined, empty_weeks) in [(&text, ["1", "4"]), (&edited, ["1", "3"])] {
        let mut body = plan_body(refined);
        body["workout_preference"] = json!("strict_existing");
        let res = app
            .http
            .post(format!(
                "{}/api/v1/ai-coach/generate-plan/stream-content",
                app.base()
            ))
            .bearer_auth(&coach)
            .json(&body)
            .send()
            .await?;
        let job_id: uuid::Uuid = res.headers()["x-job-id"].to_str()?.parse()?;
        let events = read_sse(res, None, Duration::from_secs(60)).await?;
        let t = types(&events);
        assert_eq!(&t[t.len() - 2..], ["result", "done"], "{t:?}");
        // the result event has total_workouts and weekly_info; the content is on the job
        let result = &events[events.len() - 2].1;
        let job = app.job(&coach, job_id).await?;
        let content = job["result"]["content"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(result["weekly_info"], job["result"]["weekly_info"]);
        let weekly_info = result["weekly_info"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(result["total_workouts"], json!(content.len()));
        let has_workouts = |w: &str| content.iter().any(|c| c["week"].as_u64() == w.parse().ok());
        let empty: Vec<&str> = weekly_info
            .keys()
            .map(String::as_str)
            .filter(|w| !has_workouts(w))
            .collect();
        assert_eq!(empty, empty_weeks, "weeks left empty: {result}");
        assert!(
            empty
                .iter()
                .all(|w| weekly_info[*w]["total_distance_km"] == json!(0.0)),
            "{result}"
        );
        assert!(!content.is_empty(), "{result}");

        let streamed: Vec<Value> = events
            .iter()
            .filter(|(_, e)| e["type"] == "workout")
            .map(|(_, e)| e["data"].clone())
            .collect();
        assert_eq!(
            streamed, content,
            "workout events are the result's content, in order"
        );
        let mut infos = Vec::new();
        // (week, 0) per workout and (week, 1) per weekly_info, in stream order: sorted when each
        // week's info follows its workouts and precedes the next week's
        let mut order = Vec::new();
        for (_, e) in &events {
            match e["type"].as_str() {
                Some("workout") => order.push((e["data"]["week"].as_u64(), 0)),
                Some("weekly_info") => {
                    let data = e["data"].as_object().cloned().unwrap_or_default();
                    assert_eq!(data.len(), 1, "one week per event: {e}");
                    for (w, info) in data {
                        order.push((w.parse().ok(), 1));
                        infos.push((w, info));
                    }
                }
                _ => {}
            }
        }
        assert_eq!(
            infos,
            weekly_info.into_iter().collect::<Vec<_>>(),
            "the weekly_info events are the result's weekly_info, each week once, in order"
        );
        assert!(
            order.windows(2).all(|p| p[0] <= p[1]),
            "each week's info follows its workouts, before the next week's: {order:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_preference_given_to_the_draft_carries_to_the_plan_through_the_draft_text()
-> anyhow::Result<()> {
    // Arrange: a library easy run, and a draft asked for with strict_existing (the seed's
    // generate-plan request has no workout_preference)
    let (app, coach) = app().await?;
    let lib = json!({"workout_name": "Club Easy", "workout_description": "Conversational", "workout_sub_type": "easy-run",
                     "target_duration_in_seconds": 2400, "target_distance_in_meters": 6000,
                     "content_blocks": [{"type": "main", "duration_seconds": 2400}]});
    let (s, created) = app.post(&coach, "/api/v1/ai-coach/workouts", &lib).await?;
    assert_eq!(s, 201, "{created}");
    let id = created["data"]["id"].clone();
    let mut body = draft_body();
    body["workout_preference"] = json!("strict_existing");
    let (s, drafted) = app
        .post(&coach, "/api/v1/ai-coach/generate-draft", &body)
        .await?;
    assert_eq!(s, 200, "{drafted}");
    let text = drafted["data"]["draft"].as_str().unwrap_or_default();

    // Act: the plan from that draft, once as the seed sends it and once choosing ai_generate
    let (s, inherited) = app
        .post(&coach, "/api/v1/ai-coach/generate-plan", &plan_body(text))
        .await?;
    let mut explicit = plan_body(text);
    explicit["workout_preference"] = json!("ai_generate");
    let (s2, overridden) = app
        .post(&coach, "/api/v1/ai-coach/generate-plan", &explicit)
        .await?;

    // Assert
    assert!(text.contains("Workout source: strict_existing"), "{text}");
    assert_eq!((s, s2), (200, 200), "{inherited} {overridden}");
    let from_library = |plan: &Value| -> Vec<bool> {
        plan["data"]["content"]
            .as_array()
            .map(|c| c.iter().map(|w| w["library_workout_id"] == id).collect())
            .unwrap_or_default()
    };
    let inherited = from_library(&inherited);
    assert!(
        !inherited.is_empty() && inherited.iter().all(|l| *l),
        "{inherited:?}"
    );
    let overridden = from_library(&overridden);
    assert!(
        !overridden.is_empty() && overridden.iter().all(|l| !*l),
        "{overridden:?}"
    );
    Ok(())
}

#[tokio::test]
async fn paces_follow_daniels_tables() -> anyhow::Result<()> {
    let (app, coach) = app().await?;
    // VDOT 50 row: 5K 19:57, marathon 3:10:49; T 4:15, I 3:55, M 4:31 per km
    let (s, body) = app
        .get(&coach, "/api/v1/ai-coach/paces?distance_m=5000&time_s=1197")
        .await?;
    assert_eq!(s, 200, "{body}");
    let d = &body["data"];
    assert!(
        (d["vdot"].as_f64().unwrap_or(0.0) - 50.0).abs() <= 0.2,
        "{d}"
    );
    for (zone, secs) in [("threshold", 255), ("interval", 235), ("marathon", 271)] {
        let got = d["paces"][zone]["seconds_per_km"].as_i64().unwrap_or(0);
        assert!((got - secs).abs() <= 2, "{zone}: {got} vs {secs}");
        assert!(
            d["paces"][zone]["per_km"]
                .as_str()
                .is_some_and(|p| p.contains(':'))
        );
    }
    assert!(
        d["paces"]["easy"]["min_seconds_per_km"].as_i64()
            < d["paces"]["easy"]["max_seconds_per_km"].as_i64()
    );
    let marathon = d["predictions"]["marathon"].as_i64().unwrap_or(0);
    assert!(
        (marathon - (3 * 3600 + 10 * 60 + 49)).abs() <= 60,
        "{marathon}"
    );
    let (s, body) = app
        .get(&coach, "/api/v1/ai-coach/paces?distance_m=abc")
        .await?;
    assert_eq!(s, 400);
    assert_eq!(body["details"].as_array().map(Vec::len), Some(2));
    Ok(())
}

#[tokio::test]
async fn documented_errors_have_their_status_codes() -> anyhow::Result<()> {
    let (app, coach) = app().await?;
    app.org("org_plain", &[]).await?;
    let post = |token: String, body: Value| {
        let app = &app;
        async move {
            app.post(&token, "/api/v1/ai-coach/generate-draft", &body)
                .await
        }
    };
    let with = |k: &str, v: Value| {
        let mut b = draft_body();
        b[k] = v;
        b
    };
    for (body, field) in [
        (with("weeks", json!(0)), "weeks"),
        (with("weeks", json!(53)), "weeks"),
        (with("level", json!("pro")), "level"),
        (with("start_date", json!("2025-02-30")), "start_date"),
    ] {
        let (s, res) = post(coach.clone(), body).await?;
        assert_eq!(
            (s, res["details"][0]["field"].as_str()),
            (400, Some(field)),
            "{res}"
        );
    }
    let mut short = draft_body();
    short["refined_draft"] = json!("too short");
    let (s, res) = app
        .post(&coach, "/api/v1/ai-coach/generate-plan", &short)
        .await?;
    assert_eq!(
        (s, res["details"][0]["field"].as_str()),
        (400, Some("refined_draft"))
    );
    let mut mismatch = draft_body();
    mismatch["refined_draft"] =
        json!("Week 1: base\n- Monday: Easy 5 km\nWeek 6: base\n- Monday: Easy 5 km");
    let (s, res) = app
        .post(&coach, "/api/v1/ai-coach/generate-plan", &mismatch)
        .await?;
    assert_eq!(
        (s, res["details"][0]["field"].as_str()),
        (400, Some("weeks")),
        "{res}"
    );
    // a draft without week headers would be an empty plan, whatever `weeks` says
    let mut headerless = draft_body();
    headerless["refined_draft"] =
        json!("Easy runs most days, a long run on Sunday.\n- Monday: Easy 5 km");
    let (s, res) = app
        .post(&coach, "/api/v1/ai-coach/generate-plan", &headerless)
        .await?;
    assert_eq!(
        (s, res["details"][0]["field"].as_str()),
        (400, Some("refined_draft")),
        "{res}"
    );
    let jobs: i64 = sqlx::query_scalar("select count(*) from jobs where kind = 'generate_plan'")
        .fetch_one(&app.db)
        .await?;
    assert_eq!(jobs, 0, "nothing recorded for refused plans");

    assert_eq!(
        app.request(
            reqwest::Method::POST,
            None,
            "/api/v1/ai-coach/generate-draft",
            Some(&draft_body())
        )
        .await?
        .0,
        401
    );
    assert_eq!(
        post(app.token("usr_a", "athlete", "org_demo"), draft_body())
            .await?
            .0,
        403
    );
    assert_eq!(
        post(
            app.token("usr_p", "coach", "org_plain"),
            with("org_id", json!("org_plain"))
        )
        .await?
        .0,
        403
    );
    assert_eq!(
        post(coach.clone(), with("org_id", json!("org_missing")))
            .await?
            .0,
        404
    );
    assert_eq!(
        app.get(&coach, "/api/v1/ai-coach/training-principle/org_missing")
            .await?
            .0,
        404
    );
    let count: i64 = sqlx::query_scalar("select count(*) from jobs")
        .fetch_one(&app.db)
        .await?;
    assert_eq!(count, 0, "nothing queued on error");
    Ok(())
}

#[tokio::test]
async fn every_ai_coach_route_refuses_the_unauthenticated_the_wrong_role_and_other_orgs()
-> anyhow::Result<()> {
    // Arrange: the coach's org has the feature; another org has it too; a third does not
    let (app, coach) = app().await?;
    app.org("org_other", &["coach_agent"]).await?;
    app.org("org_plain", &[]).await?;
    let athlete = app.token("usr_a", "athlete", "org_demo");
    let plain_coach = app.token("usr_p", "coach", "org_plain");
    let draft_text = draft(&app, &coach).await?;
    let routes = [
        ("/api/v1/ai-coach/generate-draft", draft_body()),
        ("/api/v1/ai-coach/generate-draft/stream", draft_body()),
        ("/api/v1/ai-coach/generate-plan", plan_body(&draft_text)),
        (
            "/api/v1/ai-coach/generate-plan/stream",
            plan_body(&draft_text),
        ),
        (
            "/api/v1/ai-coach/generate-plan/stream-content",
            plan_body(&draft_text),
        ),
    ];
    let jobs_before: i64 = sqlx::query_scalar("select count(*) from jobs")
        .fetch_one(&app.db)
        .await?;

    for (path, body) in routes {
        let mut other = body.clone();
        other["org_id"] = json!("org_other");
        let mut plain = body.clone();
        plain["org_id"] = json!("org_plain");
        let mut missing = body.clone();
        missing["org_id"] = json!("org_missing");
        let cases: [(Option<&str>, &Value, u16, &str); 5] = [
            (None, &body, 401, "unauthorized"),
            (Some(&athlete), &body, 403, "forbidden"),
            (Some(&coach), &other, 403, "forbidden"),
            (Some(&plain_coach), &plain, 403, "forbidden"),
            (Some(&coach), &missing, 404, "not_found"),
        ];
        for (token, body, status, code) in cases {
            // Act
            let (s, res) = app
                .request(reqwest::Method::POST, token, path, Some(body))
                .await?;

            // Assert: the documented status and error body, before any stream starts
            assert_eq!(
                (s, res["code"].as_str()),
                (status, Some(code)),
                "{path} {body}: {res}"
            );
        }
    }
    for (token, status) in [(None, 401), (Some(athlete.as_str()), 403)] {
        let (s, res) = app
            .request(
                reqwest::Method::GET,
                token,
                "/api/v1/ai-coach/training-principle/org_demo",
                None,
            )
            .await?;
        assert_eq!(s, status, "{res}");
    }
    let (s, res) = app
        .get(&coach, "/api/v1/ai-coach/training-principle/org_other")
        .await?;
    assert_eq!(s, 403, "another org's principle: {res}");
    let jobs_after: i64 = sqlx::query_scalar("select count(*) from jobs")
        .fetch_one(&app.db)
        .await?;
    assert_eq!(jobs_after, jobs_before, "nothing queued on error");
    Ok(())
}

// ---- the `openai` provider against a local server speaking the chat-completions protocol ----

mod openai {
    use std::time::Duration;

    use pacer_tests::fake_llm::{FakeLlm, Reply, requested_week};
    use pacer_tests::{TestApp, read_sse, types};
    use serde_json::{Value, json};

    const DRAFT: &str = "2-Week Plan\nWeek 1 (base): Aerobic\n- Monday: Easy run 30 min\n- Wednesday: Tempo run 30 min\n- Saturday: Long run 8 km\n\
                         Week 2 (taper): Race\n- Tuesday: Easy run 25 min\n- Sunday: Race 5K\n";

    fn week(w: u32) -> String {
        json!({"phase": if w == 1 { "base" } else { "taper" }, "focus": format!("Focus {w}"), "workouts": [
            {"day": "Monday", "workout_name": "Easy Run", "workout_description": "Conversational", "workout_sub_type": "easy-run",
             "target_duration_in_seconds": 1800, "target_distance_in_meters": 5000,
             "content_blocks": [{"type": "main", "duration_seconds": 1800}]},
            {"day": "Saturday", "workout_name": "Long Run", "workout_description": "Steady", "workout_sub_type": "long-run",
             "target_duration_in_seconds": 3000, "target_distance_in_meters": 8000,
             "content_blocks": [{"type": "warmup", "duration_seconds": 600}, {"type": "main", "duration_seconds": 2400}]}
        ]})
        .to_string()
    }

    async fn app_with(fake: &FakeLlm, extra: &[(&str, &str)]) -> anyhow::Result<(TestApp, String)> {
        let mut app = TestApp::new().await?;
        app.set("PACER_MAX_ATTEMPTS", "2")
            .set("PACER_SYNC_TIMEOUT_SECS", "120");
        app.start_api().await?;
        app.start_worker(&openai_env(fake, extra))?;
        app.org("org_demo", &["coach_agent"]).await?;
        let coach = app.coach();
        Ok((app, coach))
    }

    /// A worker's environment for the openai provider against `fake`, then `extra`.
    fn openai_env<'a>(fake: &'a FakeLlm, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut env = vec![
            ("PACER_LLM_PROVIDER", "openai"),
            ("OPENAI_BASE_URL", fake.url.as_str()),
            ("OPENAI_API_KEY", "sk-test"),
            ("PACER_LLM_MODEL", "fake-model"),
            ("PACER_LLM_REQUEST_RETRIES", "2"),
        ];
        env.extend_from_slice(extra);
        env
    }

    fn plan_body() -> Value {
        json!({"weeks": 2, "level": "beginner", "org_id": "org_demo", "refined_draft": DRAFT, "start_date": "2025-05-05"})
    }

    /// A draft week of rest days only (a holiday, a deload) is not sent to the model (it would
    /// have to invent workouts or fail the plan): it comes back empty, with its info.
    #[tokio::test]
    async fn a_week_of_rest_days_is_not_asked_of_the_model() -> anyhow::Result<()> {
        let fake =
            FakeLlm::start(|body, _| Reply::Content(week(requested_week(body).unwrap_or(1))))
                .await?;
        let (app, coach) = app_with(&fake, &[]).await?;
        let draft = "3-Week Plan\nWeek 1 (base): Aerobic\n- Monday: Easy run 30 min\n- Saturday: Long run 8 km\n\
                     Week 2 (base): Holiday\n- Monday: Rest\n- Thursday: Rest\n\
                     Week 3 (taper): Race\n- Tuesday: Easy run 25 min\n- Sunday: Race 5K\n";
        let body = json!({"weeks": 3, "level": "beginner", "org_id": "org_demo", "refined_draft": draft,
                          "start_date": "2025-05-05"});

        let (s, plan) = app
            .post(&coach, "/api/v1/ai-coach/generate-plan", &body)
            .await?;

        assert_eq!(s, 200, "{plan}");
        let asked: Vec<u32> = fake
            .requests
            .lock()
            .map(|r| r.iter().filter_map(requested_week).collect())
            .unwrap_or_default();
        assert!(!asked.contains(&2), "asked for weeks {asked:?}");
        let content = plan["data"]["content"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!content.is_empty());
        assert!(content.iter().all(|w| w["week"] != 2), "{plan}");
        let rest = &plan["data"]["weekly_info"]["2"];
        assert_eq!(
            (&rest["phase"], &rest["total_distance_km"]),
            (&json!("base"), &json!(0.0)),
            "{plan}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_model_writes_the_draft_streamed_and_the_plan_week_by_week() -> anyhow::Result<()> {
        let fake = FakeLlm::start(|body, _| match requested_week(body) {
            Some(w) => Reply::Content(week(w)),
            None => Reply::Chunks(DRAFT.split_inclusive('\n').map(str::to_owned).collect()),
        })
        .await?;
        let (app, coach) = app_with(&fake, &[]).await?;

        let (s, draft) = app
            .post(
                &coach,
                "/api/v1/ai-coach/generate-draft",
                &json!({"weeks": 2, "level": "beginner", "org_id": "org_demo"}),
            )
            .await?;
        assert_eq!(s, 200, "{draft}");
        assert_eq!(draft["data"]["draft"], DRAFT.trim());
        let first = fake
            .requests
            .lock()
            .map(|r| r[0].clone())
            .unwrap_or_default();
        assert_eq!(first["stream"], true);
        assert_eq!(first["model"], "fake-model");

        let res = app
            .http
            .post(format!(
                "{}/api/v1/ai-coach/generate-plan/stream-content",
                app.base()
            ))
            .bearer_auth(&coach)
            .json(&plan_body())
            .send()
            .await?;
        let job_id: uuid::Uuid = res.headers()["x-job-id"].to_str()?.parse()?;
        let events = read_sse(res, None, Duration::from_secs(60)).await?;
        let t = types(&events);
        assert_eq!(t.iter().filter(|t| *t == "workout").count(), 4, "{t:?}");
        assert_eq!(t.iter().filter(|t| *t == "weekly_info").count(), 2);
        let result = &events[events.len() - 2].1;
        assert_eq!(result["total_workouts"], 4);
        assert_eq!(result["weekly_info"]["2"]["phase"], "taper");
        // the draft's week 1 has three training days and the model gave two: said, and the
        // workouts are counted out of what there is ("1 of 5" … "4 of 5" before)
        let totals: Vec<i64> = events
            .iter()
            .filter(|(_, e)| e["type"] == "progress" && e["count"].as_i64() > Some(0))
            .filter_map(|(_, e)| e["total"].as_i64())
            .collect();
        assert_eq!(totals, [4, 4, 4, 4], "{events:?}");
        let job = app.job(&coach, job_id).await?;
        assert_eq!(
            job["result"]["warnings"],
            json!(["week 1: the model gave 2 workouts for the draft's 3 training days"]),
            "{job}"
        );
        let content = job["result"]["content"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(content[0]["date"], "2025-05-05");
        assert_eq!(content[2]["week"], 2);
        // token usage of every request is on the job (fake: 150 per request, 2 weeks)
        assert_eq!(job["usage"]["total_tokens"], 300, "{}", job["usage"]);
        assert_eq!(job["usage"]["requests"], 2);
        // each week request asked for schema-constrained JSON
        let week_req = fake
            .requests
            .lock()
            .map(|r| r[1].clone())
            .unwrap_or_default();
        assert_eq!(week_req["response_format"]["type"], "json_schema");
        Ok(())
    }

    /// A model plan's week is appended in one go: the progress and workout events of a week and
    /// its `weekly_info` reach the log (and the API, in one channel message) together, so a
    /// retry after a kill finds a week streamed whole or not at all, never in part.
    #[tokio::test]
    async fn a_model_plans_week_is_logged_all_at_once() -> anyhow::Result<()> {
        use futures::StreamExt;
        let fake =
            FakeLlm::start(|body, _| Reply::Content(week(requested_week(body).unwrap_or(1))))
                .await?;
        let (app, coach) = app_with(&fake, &[]).await?;
        let channel = pacer_common::keys::Keys::new(app.prefix.clone()).events_channel();
        let mut pubsub = redis::Client::open(app.redis_url.as_str())?
            .get_async_pubsub()
            .await?;
        pubsub.subscribe(&channel).await?;
        let mut messages = pubsub.into_on_message();

        let id = app.submit(&coach, "generate_plan", plan_body()).await?;
        let job = app
            .wait_state(&coach, id, "succeeded", Duration::from_secs(60))
            .await?;
        // every message the job's events went out in, as lists of event types
        let mut batches: Vec<Vec<String>> = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !batches.iter().flatten().any(|t| t == "done") {
            let msg = tokio::time::timeout_at(deadline, messages.next())
                .await?
                .ok_or_else(|| anyhow::anyhow!("subscription ended"))?;
            let payload: String = msg.get_payload()?;
            let types: Vec<String> = payload
                .lines()
                .filter(|l| l.starts_with(&id.to_string()))
                .filter_map(|l| l.splitn(3, ' ').nth(2))
                .filter_map(|p| serde_json::from_str::<Value>(p).ok())
                .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
                .collect();
            if !types.is_empty() {
                batches.push(types);
            }
        }

        let per_week = |w: u64| {
            job["result"]["content"]
                .as_array()
                .map(|c| c.iter().filter(|x| x["week"] == w).count())
                .unwrap_or(0)
        };
        let week_batches: Vec<&Vec<String>> = batches
            .iter()
            .filter(|b| b.iter().any(|t| t == "workout"))
            .collect();
        assert_eq!(week_batches.len(), 2, "one message per week: {batches:?}");
        for (b, w) in week_batches.iter().zip([1u64, 2]) {
            let workouts = b.iter().filter(|t| *t == "workout").count();
            assert_eq!(workouts, per_week(w), "week {w}: {b:?}");
            assert_eq!(b.last().map(String::as_str), Some("weekly_info"), "{b:?}");
            assert_eq!(b.iter().filter(|t| *t == "progress").count(), workouts);
        }
        Ok(())
    }

    /// With a workout preference, what stream-content streams is what the plan is: the `workout`
    /// events are the result's `content` items (library workouts swapped in, unmatched days left
    /// out for strict_existing) and each `weekly_info` event is the result's entry for its week.
    #[tokio::test]
    async fn streamed_workouts_and_weekly_info_follow_the_workout_preference() -> anyhow::Result<()>
    {
        let fake =
            FakeLlm::start(|body, _| Reply::Content(week(requested_week(body).unwrap_or(1))))
                .await?;
        let (app, coach) = app_with(&fake, &[]).await?;
        // the library has an easy run (the model's Monday), no long run (its Saturday)
        let lib = json!({"workout_name": "Club Easy", "workout_description": "Our easy loop", "workout_sub_type": "easy-run",
                         "target_duration_in_seconds": 2400, "target_distance_in_meters": 6000,
                         "content_blocks": [{"type": "warmup", "duration_seconds": 600}, {"type": "main", "duration_seconds": 1800}]});
        let (s, created) = app.post(&coach, "/api/v1/ai-coach/workouts", &lib).await?;
        assert_eq!(s, 201, "{created}");
        let lib_id = created["data"]["id"].clone();

        for (preference, expected_workouts) in [("strict_existing", 2), ("prefer_existing", 4)] {
            let mut body = plan_body();
            body["workout_preference"] = json!(preference);
            let res = app
                .http
                .post(format!(
                    "{}/api/v1/ai-coach/generate-plan/stream-content",
                    app.base()
                ))
                .bearer_auth(&coach)
                .json(&body)
                .send()
                .await?;
            let job_id: uuid::Uuid = res.headers()["x-job-id"].to_str()?.parse()?;
            let events = read_sse(res, None, Duration::from_secs(60)).await?;
            let t = types(&events);
            assert_eq!(&t[t.len() - 2..], ["result", "done"], "{preference}: {t:?}");
            let job = app.job(&coach, job_id).await?;
            let content = job["result"]["content"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let weekly_info = job["result"]["weekly_info"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            assert_eq!(content.len(), expected_workouts, "{preference}: {job}");
            assert!(
                content
                    .iter()
                    .filter(|w| w["workout_sub_type"] == "easy-run")
                    .all(|w| w["library_workout_id"] == lib_id),
                "{preference}: easy runs come from the library: {job}"
            );

            let streamed: Vec<Value> = events
                .iter()
                .filter(|(_, e)| e["type"] == "workout")
                .map(|(_, e)| e["data"].clone())
                .collect();
            assert_eq!(
                streamed, content,
                "{preference}: workout events are the result's content, in order"
            );
            let result = &events[events.len() - 2].1;
            assert_eq!(
                result["total_workouts"],
                json!(streamed.len()),
                "{preference}"
            );
            assert_eq!(
                result["weekly_info"],
                Value::Object(weekly_info.clone()),
                "{preference}"
            );
            let mut weeks = Vec::new();
            for (_, e) in events.iter().filter(|(_, e)| e["type"] == "weekly_info") {
                let data = e["data"].as_object().cloned().unwrap_or_default();
                assert_eq!(data.len(), 1, "{preference}: one week per event: {e}");
                for (w, info) in data {
                    assert_eq!(
                        Some(&info),
                        weekly_info.get(&w),
                        "{preference}: streamed weekly_info of week {w} is the result's"
                    );
                    weeks.push(w);
                }
            }
            assert_eq!(
                weeks,
                weekly_info.keys().cloned().collect::<Vec<_>>(),
                "{preference}: every week's info is streamed once, in order"
            );
        }
        Ok(())
    }

    #[tokio::test]
    async fn an_invalid_answer_is_sent_back_once_and_the_repair_is_used() -> anyhow::Result<()> {
        let fake = FakeLlm::start(|body, _| {
            let w = requested_week(body).unwrap_or(1);
            let retry = body["messages"].as_array().is_some_and(|m| m.len() > 2);
            if w == 1 && !retry {
                Reply::Content("{\"phase\": \"base\", \"workouts\": [oops".into())
            } else {
                Reply::Content(week(w))
            }
        })
        .await?;
        let (app, coach) = app_with(&fake, &[]).await?;
        let (s, body) = app
            .post(&coach, "/api/v1/ai-coach/generate-plan", &plan_body())
            .await?;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["data"]["content"].as_array().map(Vec::len), Some(4));
        assert!(
            fake.user_messages()
                .iter()
                .any(|m| m.contains("That answer is invalid") && m.contains("not valid JSON"))
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_rate_limit_is_retried_with_backoff() -> anyhow::Result<()> {
        let fake = FakeLlm::start(|body, n| {
            if n == 0 {
                Reply::Error(429, r#"{"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":null}}"#.into())
            } else {
                Reply::Content(week(requested_week(body).unwrap_or(1)))
            }
        })
        .await?;
        let (app, coach) = app_with(&fake, &[("PACER_LLM_CONCURRENCY", "1")]).await?;
        let (s, body) = app
            .post(&coach, "/api/v1/ai-coach/generate-plan", &plan_body())
            .await?;
        assert_eq!(s, 200, "{body}");
        assert_eq!(fake.count(), 3, "one 429, then one request per week");
        Ok(())
    }

    /// A worker killed while its attempt waits on the model does not lose what the attempt's
    /// earlier answers cost: the lease refresh saves the tokens on the job, and its total
    /// counts both attempts.
    #[tokio::test]
    async fn a_killed_workers_token_usage_stays_on_the_job() -> anyhow::Result<()> {
        let hung = std::sync::atomic::AtomicBool::new(false);
        let fake = FakeLlm::start(move |body, _| match requested_week(body) {
            Some(2) if !hung.swap(true, std::sync::atomic::Ordering::SeqCst) => Reply::Hang,
            w => Reply::Content(week(w.unwrap_or(1))),
        })
        .await?;
        let one_at_a_time = [("PACER_LLM_CONCURRENCY", "1")];
        let (mut app, coach) = app_with(&fake, &one_at_a_time).await?;
        let id = app.submit(&coach, "generate_plan", plan_body()).await?;

        // Act: the first attempt has week 1's answer and waits on week 2's when it is killed
        pacer_tests::eventually(
            Duration::from_secs(30),
            "week 1's tokens saved on the running job",
            || async {
                let job = app.job(&coach, id).await?;
                Ok(
                    (job["state"] == "running" && job["usage"]["total_tokens"] == 150)
                        .then_some(()),
                )
            },
        )
        .await?;
        app.workers[0].signal(9);
        app.start_worker(&openai_env(&fake, &one_at_a_time))?;
        let job = app
            .wait_state(&coach, id, "succeeded", Duration::from_secs(60))
            .await?;

        let events = app.events(&coach, id, None, None).await?;

        // Assert: week 1 (first attempt) and week 2 (second attempt), 150 tokens each
        assert_eq!(job["usage"]["total_tokens"], 300, "{}", job["usage"]);
        assert_eq!(job["usage"]["requests"], 2, "{}", job["usage"]);
        // the second attempt counts on from the workouts the first streamed (it said "0 of 4")
        let counts: Vec<i64> = events
            .iter()
            .filter_map(|(_, e)| e["count"].as_i64())
            .collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
        assert_eq!(counts.last(), Some(&4), "{counts:?}");
        Ok(())
    }

    /// A model that refuses a week fails the plan with its refusal (it failed as "not valid
    /// JSON", the refusal lost, after a correction round sent to a model that had refused).
    #[tokio::test]
    async fn a_refused_week_fails_the_plan_with_the_refusal() -> anyhow::Result<()> {
        let fake = FakeLlm::start(|_, _| {
            Reply::Json(json!({"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "fake",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
                    "refusal": "I can't help with that."}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105}}))
        })
        .await?;
        let (app, coach) = app_with(&fake, &[("PACER_LLM_CONCURRENCY", "1")]).await?;

        let id = app.submit(&coach, "generate_plan", plan_body()).await?;
        let job = app
            .wait_state(&coach, id, "failed", Duration::from_secs(60))
            .await?;

        assert_eq!(job["attempts"], 1, "{job}");
        assert_eq!(fake.count(), 1, "no correction round");
        let error = job["error"].as_str().unwrap_or_default();
        assert!(error.contains("I can't help with that."), "{job}");
        Ok(())
    }

    /// The token budget holds with requests in flight together: a plan's weeks are asked for
    /// at once, and each was allowed the whole budget (4 weeks × 1,000 tokens spent of 1,000).
    #[tokio::test]
    async fn weeks_asked_at_once_share_the_token_budget() -> anyhow::Result<()> {
        let fake =
            FakeLlm::start(|body, _| Reply::Spending(week(requested_week(body).unwrap_or(1))))
                .await?;
        let (app, coach) = app_with(
            &fake,
            &[
                ("PACER_LLM_MAX_TOKENS_PER_JOB", "1000"),
                ("PACER_LLM_CONCURRENCY", "2"),
            ],
        )
        .await?;

        let id = app.submit(&coach, "generate_plan", plan_body()).await?;
        let job = app
            .wait_state(&coach, id, "failed", Duration::from_secs(60))
            .await?;

        // Assert: the second week waited for the first's answer, then found the budget spent
        let spent = job["usage"]["total_tokens"].as_u64().unwrap_or(u64::MAX);
        assert!(spent <= 1000, "{}", job["usage"]);
        assert_eq!(job["attempts"], 1, "{job}");
        assert!(
            job["error"]
                .as_str()
                .is_some_and(|e| e.contains("token budget")),
            "{job}"
        );
        Ok(())
    }

    /// A 429's `Retry-After` is waited out (the backoff alone would retry within 0.5 s).
    #[tokio::test]
    async fn a_rate_limit_waits_for_its_retry_after() -> anyhow::Result<()> {
        let fake = FakeLlm::start(|body, n| {
            if n == 0 {
                Reply::RetryAfter(2, r#"{"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#.into())
            } else {
                Reply::Content(week(requested_week(body).unwrap_or(1)))
            }
        })
        .await?;
        let (app, coach) = app_with(&fake, &[("PACER_LLM_CONCURRENCY", "1")]).await?;

        let (s, body) = app
            .post(&coach, "/api/v1/ai-coach/generate-plan", &plan_body())
            .await?;

        assert_eq!(s, 200, "{body}");
        let at = fake.arrivals.lock().map(|a| a.clone()).unwrap_or_default();
        assert_eq!(at.len(), 3, "one 429, then one request per week");
        let waited = at[1].duration_since(at[0]);
        assert!(waited >= Duration::from_secs(2), "retried after {waited:?}");
        Ok(())
    }

    /// A 429 for a used-up quota does not pass by waiting: the job fails at once, clearly.
    #[tokio::test]
    async fn an_exhausted_quota_fails_the_job_without_retrying() -> anyhow::Result<()> {
        let fake = FakeLlm::start(|_, _| {
            Reply::Error(429, r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#.into())
        })
        .await?;
        let (app, coach) = app_with(&fake, &[]).await?;

        let id = app
            .submit(
                &coach,
                "generate_draft",
                json!({"weeks": 2, "level": "beginner", "org_id": "org_demo"}),
            )
            .await?;
        let job = app
            .wait_state(&coach, id, "failed", Duration::from_secs(60))
            .await?;

        assert!(
            job["error"].as_str().is_some_and(|e| e.contains("quota")),
            "{job}"
        );
        assert_eq!(job["attempts"], 1, "{job}");
        assert_eq!(fake.count(), 1, "no request retried");
        Ok(())
    }

    /// A draft the model stopped at its token limit: kept without the line it was writing (a
    /// draft is text for the coach to edit), and marked, with the weeks it lacks.
    #[tokio::test]
    async fn a_draft_cut_off_at_the_token_limit_is_kept_and_marked_with_its_missing_weeks()
    -> anyhow::Result<()> {
        let fake = FakeLlm::start(|_, _| {
            let mut deltas: Vec<String> = DRAFT.lines().take(4).map(|l| format!("{l}\n")).collect();
            deltas.push("- Saturday: Long ru".into());
            Reply::CutOff(deltas)
        })
        .await?;
        let (app, coach) = app_with(&fake, &[]).await?;

        let (s, draft) = app
            .post(
                &coach,
                "/api/v1/ai-coach/generate-draft",
                &json!({"weeks": 2, "level": "beginner", "org_id": "org_demo"}),
            )
            .await?;

        assert_eq!(s, 200, "{draft}");
        let kept: Vec<&str> = DRAFT.lines().take(4).collect();
        assert_eq!(draft["data"]["draft"], kept.join("\n"));
        assert_eq!(draft["data"]["metadata"]["truncated"], true, "{draft}");
        assert_eq!(
            draft["data"]["metadata"]["missing_weeks"],
            json!([2]),
            "{draft}"
        );
        assert_eq!(fake.count(), 1);

        // a draft the model finished carries neither
        let fake = FakeLlm::start(|_, _| {
            Reply::Chunks(DRAFT.split_inclusive('\n').map(str::to_owned).collect())
        })
        .await?;
        let (app, coach) = app_with(&fake, &[]).await?;
        let (s, draft) = app
            .post(
                &coach,
                "/api/v1/ai-coach/generate-draft",
                &json!({"weeks": 2, "level": "beginner", "org_id": "org_demo"}),
            )
            .await?;
        assert_eq!(s, 200, "{draft}");
        assert!(
            draft["data"]["metadata"].get("truncated").is_none(),
            "{draft}"
        );
        assert!(
            draft["data"]["metadata"].get("missing_weeks").is_none(),
            "{draft}"
        );
        Ok(())
    }

    /// A draft stream that breaks off (an error sent inside the stream, or a close without a
    /// `finish_reason`) is not a draft: the attempt fails and is retried, and what it streamed
    /// is counted in the job's usage. It used to be saved as the whole draft.
    #[tokio::test]
    async fn a_draft_stream_that_breaks_off_is_retried_not_saved() -> anyhow::Result<()> {
        let fake = FakeLlm::start(|_, n| {
            let mut deltas: Vec<String> = DRAFT.lines().take(4).map(|l| format!("{l}\n")).collect();
            deltas.push("- Saturday: Long ru".into());
            match n {
                0 => Reply::Broken(
                    deltas,
                    Some(json!({"message": "overloaded", "type": "server_error"})),
                ),
                _ => Reply::Broken(deltas, None),
            }
        })
        .await?;
        let (app, coach) = app_with(&fake, &[]).await?;

        let id = app
            .submit(
                &coach,
                "generate_draft",
                json!({"weeks": 2, "level": "beginner", "org_id": "org_demo"}),
            )
            .await?;
        let job = app
            .wait_state(&coach, id, "failed", Duration::from_secs(60))
            .await?;

        assert_eq!(job["attempts"], 2, "{job}");
        assert_eq!(fake.count(), 2, "each attempt streamed once");
        let error = job["error"].as_str().unwrap_or_default();
        assert!(error.contains("ended before the model finished"), "{job}");
        // two attempts' prompts and streamed text, estimated (no usage chunk came)
        assert_eq!(job["usage"]["requests"], 2, "{job}");
        assert!(
            job["usage"]["completion_tokens"].as_u64() > Some(0),
            "{job}"
        );
        Ok(())
    }

    /// An error inside the stream that refuses the request (a context too long) fails the job
    /// at once, with the server's message.
    #[tokio::test]
    async fn a_refusal_inside_a_draft_stream_fails_the_job_with_its_message() -> anyhow::Result<()>
    {
        let fake = FakeLlm::start(|_, _| {
            Reply::Broken(
                Vec::new(),
                Some(json!({"message": "context length exceeded", "code": 400})),
            )
        })
        .await?;
        let (app, coach) = app_with(&fake, &[]).await?;

        let id = app
            .submit(
                &coach,
                "generate_draft",
                json!({"weeks": 2, "level": "beginner", "org_id": "org_demo"}),
            )
            .await?;
        let job = app
            .wait_state(&coach, id, "failed", Duration::from_secs(60))
            .await?;

        assert_eq!(job["attempts"], 1, "{job}");
        assert_eq!(fake.count(), 1);
        let error = job["error"].as_str().unwrap_or_default();
        assert!(error.contains("context length exceeded"), "{job}");
        Ok(())
    }

    /// `PACER_LLM_TIMEOUT_SECS` bounds a stream's silences, not its length: a model that keeps
    /// writing may take longer than the timeout in all (it was cut off, and every retry too).
    #[tokio::test]
    async fn a_draft_streamed_longer_than_the_timeout_without_a_long_silence_succeeds()
    -> anyhow::Result<()> {
        let fake = FakeLlm::start(|_, _| {
            Reply::Trickle(
                DRAFT.split_inclusive('\n').map(str::to_owned).collect(),
                Duration::from_millis(300),
            )
        })
        .await?;
        let (app, coach) = app_with(&fake, &[("PACER_LLM_TIMEOUT_SECS", "1")]).await?;

        let id = app
            .submit(
                &coach,
                "generate_draft",
                json!({"weeks": 2, "level": "beginner", "org_id": "org_demo"}),
            )
            .await?;
        let job = app
            .wait_state(&coach, id, "succeeded", Duration::from_secs(60))
            .await?;

        assert_eq!(job["attempts"], 1, "{job}");
        assert_eq!(fake.count(), 1);
        assert_eq!(job["result"]["draft"], DRAFT.trim(), "{job}");
        Ok(())
    }

    /// A small sampling model may answer with nothing, or run to its token limit on a single
    /// line: an empty draft is another attempt's to write, and a one-line draft cut off at the
    /// limit keeps all but its unfinished word.
    #[tokio::test]
    async fn an_empty_draft_is_tried_again_and_a_one_line_cut_off_draft_is_kept()
    -> anyhow::Result<()> {
        let fake = FakeLlm::start(|_, n| match n {
            0 => Reply::Chunks(vec!["  ".into(), "\n".into()]),
            _ => Reply::CutOff(vec![
                "Week 1 (base): easy running, Monday easy run 30 min, ".into(),
                "Wednesday tempo ru".into(),
            ]),
        })
        .await?;
        let (app, coach) = app_with(&fake, &[]).await?;

        let (s, draft) = app
            .post(
                &coach,
                "/api/v1/ai-coach/generate-draft",
                &json!({"weeks": 1, "level": "beginner", "org_id": "org_demo"}),
            )
            .await?;

        assert_eq!(s, 200, "{draft}");
        assert_eq!(
            draft["data"]["draft"],
            "Week 1 (base): easy running, Monday easy run 30 min, Wednesday tempo"
        );
        assert_eq!(draft["data"]["metadata"]["truncated"], true, "{draft}");
        assert_eq!(fake.count(), 2, "the empty answer was tried again");
        Ok(())
    }

    /// A plan job whose week requests all fail and whose retry waits 5 s, submitted and
    /// followed until its first attempt has failed (the retry is waiting).
    async fn a_plan_waiting_for_its_retry() -> anyhow::Result<(FakeLlm, TestApp, String, uuid::Uuid)>
    {
        let fake = FakeLlm::start(|body, _| match requested_week(body) {
            Some(_) => Reply::Error(500, "upstream exploded".into()),
            None => Reply::Content(week(1)),
        })
        .await?;
        let (app, coach) = app_with(
            &fake,
            &[
                ("PACER_LLM_REQUEST_RETRIES", "0"),
                ("PACER_RETRY_BASE_MS", "5000"),
                ("PACER_RETRY_MAX_SECS", "10"),
            ],
        )
        .await?;
        let id = app.submit(&coach, "generate_plan", plan_body()).await?;
        pacer_tests::eventually(
            Duration::from_secs(30),
            "the first attempt to fail",
            || async {
                let (state, message): (String, Option<String>) =
                    sqlx::query_as("select state, message from jobs where id = $1")
                        .bind(id)
                        .fetch_one(&app.db)
                        .await?;
                Ok(
                    (state == "queued" && message.is_some_and(|m| m.contains("retrying")))
                        .then_some(()),
                )
            },
        )
        .await?;
        Ok((fake, app, coach, id))
    }

    /// The stream's last events: the retry notice, then `error` and `done`.
    async fn ends_with_retrying_error_done(
        app: &TestApp,
        coach: &str,
        id: uuid::Uuid,
    ) -> anyhow::Result<()> {
        let events = app.events(coach, id, None, None).await?;
        let t = types(&events);
        anyhow::ensure!(
            t.len() >= 3 && t[t.len() - 3..] == ["progress", "error", "done"],
            "{t:?}"
        );
        anyhow::ensure!(
            events[events.len() - 3].1["status"] == "retrying",
            "{events:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_job_past_its_attempts_fails_at_its_next_claim() -> anyhow::Result<()> {
        // Arrange: while the retry waits, the row is set as if its workers had died
        let (_fake, app, coach, id) = a_plan_waiting_for_its_retry().await?;

        // Act
        sqlx::query("update jobs set attempts = max_attempts where id = $1")
            .bind(id)
            .execute(&app.db)
            .await?;
        let job = app
            .wait_state(&coach, id, "failed", Duration::from_secs(60))
            .await?;

        // Assert: failed at the claim, without running again
        assert!(
            job["error"]
                .as_str()
                .is_some_and(|e| e.contains("gave up after 2 attempts")),
            "{job}"
        );
        ends_with_retrying_error_done(&app, &coach, id).await
    }

    #[tokio::test]
    async fn a_retry_that_fails_before_its_first_event_still_ends_its_stream_with_error()
    -> anyhow::Result<()> {
        // Arrange: while the retry waits, its input becomes unreadable, so the next attempt
        // fails before it logs anything (its final events come right after the retry notice)
        let (_fake, app, coach, id) = a_plan_waiting_for_its_retry().await?;

        // Act
        sqlx::query("update jobs set input = '{}' where id = $1")
            .bind(id)
            .execute(&app.db)
            .await?;
        let job = app
            .wait_state(&coach, id, "failed", Duration::from_secs(60))
            .await?;

        // Assert
        assert!(
            job["error"]
                .as_str()
                .is_some_and(|e| e.contains("invalid job input")),
            "{job}"
        );
        ends_with_retrying_error_done(&app, &coach, id).await
    }

    #[tokio::test]
    async fn a_server_that_keeps_failing_fails_the_job_with_error_then_done() -> anyhow::Result<()>
    {
        let fake = FakeLlm::start(|_, _| Reply::Error(500, "upstream exploded".into())).await?;
        let (app, coach) = app_with(
            &fake,
            &[
                ("PACER_LLM_REQUEST_RETRIES", "1"),
                ("PACER_LLM_CONCURRENCY", "1"),
            ],
        )
        .await?;
        let res = app
            .http
            .post(format!(
                "{}/api/v1/ai-coach/generate-plan/stream",
                app.base()
            ))
            .bearer_auth(&coach)
            .json(&plan_body())
            .send()
            .await?;
        let job_id: uuid::Uuid = res.headers()["x-job-id"].to_str()?.parse()?;
        let events = read_sse(res, None, Duration::from_secs(90)).await?;
        let t = types(&events);
        assert_eq!(&t[t.len() - 2..], ["error", "done"], "{t:?}");
        assert!(
            events[events.len() - 2].1["error"]
                .as_str()
                .is_some_and(|e| e.contains("500"))
        );
        let job = app.job(&coach, job_id).await?;
        assert_eq!(
            (job["state"].as_str(), job["attempts"].as_i64()),
            (Some("failed"), Some(2))
        );
        // two attempts of a request and its one retry: no retries beyond the setting
        assert_eq!(fake.count(), 4);
        // each attempt's first progress event and the retrying one in between carry count and
        // total (the draft's 5 training days, none generated)
        let progress: Vec<&Value> = events
            .iter()
            .filter(|(_, e)| e["type"] == "progress")
            .map(|(_, e)| e)
            .collect();
        let statuses: Vec<&str> = progress
            .iter()
            .filter_map(|p| p["status"].as_str())
            .collect();
        assert_eq!(statuses, ["thinking", "retrying", "thinking"], "{events:?}");
        for p in progress {
            assert_eq!((&p["count"], &p["total"]), (&json!(0), &json!(5)), "{p}");
        }
        // the synchronous endpoint reports the failure as the seed's 500
        let (s, body) = app
            .post(&coach, "/api/v1/ai-coach/generate-plan", &plan_body())
            .await?;
        assert_eq!((s, body["code"].as_str()), (500, Some("generation_failed")));
        Ok(())
    }

    #[tokio::test]
    async fn a_job_that_spends_its_token_budget_fails_clearly() -> anyhow::Result<()> {
        // each answer spends its whole max_tokens: the first week gets what the budget leaves
        // after its prompt, and nothing is left for the second
        let fake =
            FakeLlm::start(|body, _| Reply::Spending(week(requested_week(body).unwrap_or(1))))
                .await?;
        let (app, coach) = app_with(
            &fake,
            &[
                ("PACER_LLM_MAX_TOKENS_PER_JOB", "1000"),
                ("PACER_LLM_CONCURRENCY", "1"),
            ],
        )
        .await?;
        let (s, body) = app
            .post(&coach, "/api/v1/ai-coach/generate-plan", &plan_body())
            .await?;
        assert_eq!(
            (s, body["code"].as_str()),
            (500, Some("generation_failed")),
            "{body}"
        );
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("token budget")),
            "{body}"
        );
        assert_eq!(
            fake.count(),
            1,
            "no request once the budget is spent; a budget failure is not retried"
        );
        let (_, jobs) = app.get(&coach, "/api/v1/jobs?kind=generate_plan").await?;
        let spent = &jobs["data"]["jobs"][0]["usage"]["total_tokens"];
        assert!(spent.as_u64().is_some_and(|t| t <= 1000), "{spent}");
        Ok(())
    }

    /// Against a real OpenAI-compatible server when `PACER_TEST_OPENAI_BASE_URL` is set (CI
    /// starts llama.cpp's server with SmolLM2-135M through `../shared/tools/llm-peer.sh`). The
    /// model is tiny: this checks structure and validity, not coaching.
    #[tokio::test]
    async fn a_real_model_server_produces_a_valid_plan_through_the_whole_flow() -> anyhow::Result<()>
    {
        let Ok(base) = std::env::var("PACER_TEST_OPENAI_BASE_URL") else {
            eprintln!(
                "PACER_TEST_OPENAI_BASE_URL is not set: no real model server to test against"
            );
            return Ok(());
        };
        let model = std::env::var("PACER_TEST_OPENAI_MODEL")
            .unwrap_or_else(|_| "smollm2-135m-instruct".into());
        let mut app = TestApp::new().await?;
        app.set("PACER_SYNC_TIMEOUT_SECS", "600");
        app.start_api().await?;
        app.start_worker(&[
            ("PACER_LLM_PROVIDER", "openai"),
            ("OPENAI_BASE_URL", base.as_str()),
            ("PACER_LLM_MODEL", model.as_str()),
            ("PACER_LLM_CONCURRENCY", "1"),
            ("PACER_LLM_TIMEOUT_SECS", "300"),
            ("PACER_JOB_TIMEOUTS", "generate_draft=900,generate_plan=900"),
        ])?;
        app.org("org_demo", &["coach_agent"]).await?;
        let coach = app.coach();
        let (s, draft) = app
            .post(
                &coach,
                "/api/v1/ai-coach/generate-draft",
                &json!({"weeks": 1, "level": "beginner", "org_id": "org_demo"}),
            )
            .await?;
        assert_eq!(s, 200, "{draft}");
        assert!(
            draft["data"]["draft"]
                .as_str()
                .is_some_and(|d| d.len() >= 10)
        );
        let body = json!({"weeks": 1, "level": "beginner", "org_id": "org_demo",
                          "refined_draft": "Week 1 (base): Aerobic\n- Monday: Easy run 30 min\n- Wednesday: Easy run 30 min\n- Saturday: Long run 5 km\n"});
        let res = app
            .http
            .post(format!(
                "{}/api/v1/ai-coach/generate-plan/stream-content",
                app.base()
            ))
            .bearer_auth(&coach)
            .json(&body)
            .send()
            .await?;
        let events = read_sse(res, None, Duration::from_secs(900)).await?;
        let t = types(&events);
        assert_eq!(t.last().map(String::as_str), Some("done"), "{t:?}");
        assert_eq!(t[t.len() - 2], "result", "{:?}", events[events.len() - 2]);
        let workouts: Vec<&Value> = events
            .iter()
            .filter(|(_, e)| e["type"] == "workout")
            .map(|(_, e)| &e["data"])
            .collect();
        assert!(!workouts.is_empty());
        for w in workouts {
            let sum: i64 = w["content_blocks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|b| b["duration_seconds"].as_i64())
                .sum();
            assert_eq!(Some(sum), w["target_duration_in_seconds"].as_i64(), "{w}");
            assert!(w["day"].is_string() && w["workout_sub_type"].is_string() && w["week"] == 1);
        }
        Ok(())
    }
}

/// A synchronous request waiting for its job when the API is told to stop gets its 202 with the
/// job's links (the job stays queued for a worker) instead of being cut off with the
/// connection at the end of the graceful stop.
#[tokio::test]
async fn a_waiting_sync_request_gets_its_202_when_the_api_stops() -> anyhow::Result<()> {
    // Arrange: no worker, so the draft waits in the queue
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    let request = app
        .http
        .post(format!("{}/api/v1/ai-coach/generate-draft", app.base()))
        .bearer_auth(&coach)
        .json(&draft_body())
        .send();
    let waiting = tokio::spawn(request);
    let db = app.db.clone();
    pacer_tests::eventually(Duration::from_secs(30), "the job to be recorded", || {
        let db = db.clone();
        async move {
            let n: i64 = sqlx::query_scalar("select count(*) from jobs")
                .fetch_one(&db)
                .await?;
            Ok((n == 1).then_some(()))
        }
    })
    .await?;

    // Act
    if let Some(api) = &app.api {
        api.signal(15);
    }

    // Assert
    let res = waiting.await??;
    let status = res.status().as_u16();
    let body: Value = res.json().await?;
    assert_eq!(status, 202, "{body}");
    let id = body["data"]["job_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (state,): (String,) = sqlx::query_as("select state from jobs where id::text = $1")
        .bind(&id)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(state, "queued");
    Ok(())
}

/// A client of `generate-plan/stream-content` that lost its connection resumes at the Jobs
/// API's events with `mode=plan_content` and gets the rest in the same shape (the `result`
/// with `total_workouts` and `weekly_info`); after `done` there is nothing more (204, so an
/// `EventSource` stops reconnecting).
#[tokio::test]
async fn a_plan_content_stream_resumes_in_its_own_shape() -> anyhow::Result<()> {
    // Arrange: a finished stream-content job and its events
    let (app, coach) = app().await?;
    let text = draft(&app, &coach).await?;
    let res = app
        .http
        .post(format!(
            "{}/api/v1/ai-coach/generate-plan/stream-content",
            app.base()
        ))
        .bearer_auth(&coach)
        .json(&plan_body(&text))
        .send()
        .await?;
    let id = res.headers()["x-job-id"].to_str()?.to_owned();
    let first = read_sse(res, None, Duration::from_secs(60)).await?;
    let (result_id, first_result) = first
        .iter()
        .find(|(_, e)| e["type"] == "result")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no result in {first:?}"))?;
    let resume = |last: u64, mode: &str| {
        app.http
            .get(format!(
                "{}/api/v1/jobs/{id}/events?mode={mode}",
                app.base()
            ))
            .bearer_auth(&coach)
            .header("Last-Event-ID", last.to_string())
            .send()
    };

    // Act
    let resumed = read_sse(
        resume(result_id - 1, "plan_content").await?,
        None,
        Duration::from_secs(30),
    )
    .await?;
    let past_done = resume(result_id + 1, "plan_content")
        .await?
        .status()
        .as_u16();
    let (status, body) = app
        .get(&coach, &format!("/api/v1/jobs/{id}/events?mode=sideways"))
        .await?;

    // Assert
    assert_eq!(types(&resumed), ["result", "done"]);
    assert_eq!(
        resumed[0].1, first_result,
        "the same result event as the stream's"
    );
    assert!(
        resumed[0].1["total_workouts"].as_u64() > Some(0),
        "{resumed:?}"
    );
    assert_eq!(past_done, 204);
    assert_eq!(
        (status, body["details"][0]["field"].as_str()),
        (400, Some("mode")),
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn a_long_plans_progress_never_goes_back() -> anyhow::Result<()> {
    // Arrange: 8 weeks of 4 days, more workouts than the first event's 5 % of progress
    let (app, coach) = app().await?;
    let mut body = draft_body();
    body["weeks"] = json!(8);
    let (status, drafted) = app
        .post(&coach, "/api/v1/ai-coach/generate-draft", &body)
        .await?;
    assert_eq!(status, 200, "{drafted}");
    body["refined_draft"] = drafted["data"]["draft"].clone();

    // Act
    let res = app
        .http
        .post(format!(
            "{}/api/v1/ai-coach/generate-plan/stream-content",
            app.base()
        ))
        .bearer_auth(&coach)
        .json(&body)
        .send()
        .await?;
    let events = read_sse(res, None, Duration::from_secs(60)).await?;

    // Assert
    let pcts: Vec<u64> = events
        .iter()
        .filter(|(_, e)| e["type"] == "progress")
        .filter_map(|(_, e)| e["progress"].as_u64())
        .collect();
    assert!(pcts.len() > 21, "{pcts:?}");
    assert!(pcts.windows(2).all(|w| w[0] <= w[1]), "{pcts:?}");
    Ok(())
}
