use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;

use pacer_tests::{TestApp, eventually, types};
use serde_json::json;

fn draft_input() -> serde_json::Value {
    json!({"weeks": 4, "level": "beginner", "org_id": "org_demo", "additional_prompt": "5K, 3 days per week"})
}

/// A generation job as the API records it (for tests of the `jobs` statements themselves).
fn new_job(owner: &str, idempotency_key: Option<&str>) -> pacer_common::db::jobs::NewJob {
    pacer_common::db::jobs::NewJob {
        id: uuid::Uuid::now_v7(),
        kind: pacer_common::jobs::JobKind::GenerateDraft,
        owner_id: owner.into(),
        org_id: Some("org_demo".into()),
        input: draft_input(),
        max_attempts: 3,
        idempotency_key: idempotency_key.map(str::to_owned),
        task_id: None,
        requires: None,
    }
}

fn plan_draft() -> String {
    "Week 1 (base, 15 km): Aerobic foundation\n- Tuesday: Easy run 30 min\n- Thursday: Easy run 30 min\n- Sunday: Long run 6 km\n\
     Week 2 (base, 16 km): Aerobic foundation\n- Tuesday: Easy run 35 min\n- Thursday: Tempo run 20 min\n- Sunday: Long run 7 km\n"
        .to_owned()
}

#[tokio::test]
async fn submitted_job_succeeds_and_its_stream_shows_numbered_progress_result_done()
-> anyhow::Result<()> {
    // Arrange
    let mut app = TestApp::new().await?;
    app.start().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();

    // Act
    let id = app.submit(&coach, "generate_draft", draft_input()).await?;
    let job = app
        .wait_state(&coach, id, "succeeded", Duration::from_secs(30))
        .await?;
    let events = app.events(&coach, id, None, None).await?;

    // Assert
    assert!(
        job["result"]["draft"]
            .as_str()
            .is_some_and(|d| d.contains("Week 1")),
        "{job}"
    );
    assert_eq!(job["progress"], 100);
    assert_eq!(job["attempts"], 1);
    assert!(job["finished_at"].is_string() && job["started_at"].is_string());
    let ids: Vec<u64> = events.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "ids are 1, 2, 3 …"
    );
    let t = types(&events);
    assert!(
        t.len() >= 3 && t[..t.len() - 2].iter().all(|t| t == "progress"),
        "{t:?}"
    );
    assert_eq!(&t[t.len() - 2..], ["result", "done"]);
    assert_eq!(events[events.len() - 2].1["data"], job["result"]);
    let pcts: Vec<i64> = events
        .iter()
        .filter_map(|(_, e)| e["progress"].as_i64())
        .collect();
    assert!(
        pcts.windows(2).all(|w| w[0] <= w[1]),
        "progress never goes back: {pcts:?}"
    );
    Ok(())
}

/// API and a worker pausing `step_ms` between steps, running a 2-week rules plan (many events).
async fn running_plan(step_ms: &str) -> anyhow::Result<(TestApp, String, uuid::Uuid)> {
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    app.start_worker(&[("PACER_RULES_STEP_DELAY_MS", step_ms)])?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    let id = app
        .submit(&coach, "generate_plan", json!({"weeks": 2, "level": "beginner", "org_id": "org_demo", "refined_draft": plan_draft()}))
        .await?;
    Ok((app, coach, id))
}

#[tokio::test]
async fn stream_resumes_after_last_event_id_without_gap_or_duplicate() -> anyhow::Result<()> {
    let (app, coach, id) = running_plan("150").await?;

    // disconnect after event k while the job is still running, then resume
    let k = 3;
    let first = app.events(&coach, id, None, Some(k)).await?;
    let rest = app.events(&coach, id, Some(k as u64), None).await?;

    let ids: Vec<u64> = first.iter().chain(&rest).map(|(n, _)| *n).collect();
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "no gap, no duplicate: {ids:?}"
    );
    assert_eq!(rest.first().map(|(n, _)| *n), Some(k as u64 + 1));
    assert_eq!(types(&rest).last().map(String::as_str), Some("done"));

    // a finished job's stream replays in full and closes
    let replay = app.events(&coach, id, None, None).await?;
    let all: Vec<_> = first.into_iter().chain(rest).collect();
    assert_eq!(replay, all);
    let t = types(&replay);
    assert!(
        t.contains(&"workout".to_owned()) && t.contains(&"weekly_info".to_owned()),
        "{t:?}"
    );
    Ok(())
}

/// A resume point above everything a running job has logged (an id from a log lost with
/// Redis, or a made-up one) does not swallow the events to come: the client gets the job's
/// next events, without repeats of what the log held, and its `done`.
#[tokio::test]
async fn a_resume_point_above_a_running_jobs_log_still_gets_the_rest_and_done() -> anyhow::Result<()>
{
    let (app, coach, id) = running_plan("300").await?;
    let first = app.events(&coach, id, None, Some(2)).await?;
    assert_eq!(first.len(), 2);

    let rest = app.events(&coach, id, Some(1_000_000), None).await?;

    assert_eq!(
        types(&rest).last().map(String::as_str),
        Some("done"),
        "{rest:?}"
    );
    let ids: Vec<u64> = rest.iter().map(|(n, _)| *n).collect();
    assert!(
        ids.first().is_some_and(|n| *n > 2),
        "no repeat of what was logged: {ids:?}"
    );
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, no gap: {ids:?}"
    );
    Ok(())
}

/// An API process stopped (SIGTERM) while a client follows a running job: the stream ends at
/// once (streams never end by themselves, so the graceful stop would otherwise hold them its
/// whole grace period and then cut them), the process exits, and the client resumes against
/// the next API process with `Last-Event-ID` and gets the rest of the events, without gap or
/// duplicate, to `done`.
#[tokio::test]
async fn a_stream_cut_by_an_api_restart_resumes_on_the_next_process() -> anyhow::Result<()> {
    let (mut app, coach, id) = running_plan("300").await?;
    let res = app
        .http
        .get(format!("{}/api/v1/jobs/{id}/events", app.base()))
        .bearer_auth(&coach)
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("\nid: 2\n") && !seen.starts_with("id: 2\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(30), body.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("the stream ended early: {seen}"))??;
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }

    let mut api = app
        .api
        .take()
        .ok_or_else(|| anyhow::anyhow!("no API process"))?;
    api.signal(15);
    // the open stream ends properly (not cut when the grace period runs out), and the process
    // exits
    let rest_of_first = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk?));
        }
        anyhow::Ok(())
    })
    .await;
    assert!(
        matches!(rest_of_first, Ok(Ok(()))),
        "the stream was not ended at SIGTERM: {rest_of_first:?}"
    );
    assert_eq!(api.wait_exit(Duration::from_secs(30)).await?, Some(0));
    let got: Vec<u64> = seen
        .lines()
        .filter_map(|l| l.strip_prefix("id:")?.trim().parse().ok())
        .collect();
    let last = got.last().copied().unwrap_or(0);
    assert!(last >= 2, "{seen}");

    app.start_api().await?;
    let rest = app.events(&coach, id, Some(last), None).await?;
    let ids: Vec<u64> = got
        .iter()
        .copied()
        .chain(rest.iter().map(|(n, _)| *n))
        .collect();
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "no gap, no duplicate: {ids:?}"
    );
    assert_eq!(types(&rest).last().map(String::as_str), Some("done"));
    Ok(())
}

/// SIGTERM with `PACER_SHUTDOWN_DELAY_SECS`: `/readyz` answers 503 `draining` at once, so a
/// load balancer takes the process out of rotation, while requests are still served (a
/// submission is accepted and an open stream goes on to `done`); a second SIGTERM cuts the
/// (here ten-minute) delay short and the process exits cleanly.
#[tokio::test]
async fn sigterm_reports_draining_while_the_api_still_serves() -> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.set("PACER_SHUTDOWN_DELAY_SECS", "600");
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    let (s, body) = app
        .request(reqwest::Method::GET, None, "/readyz", None)
        .await?;
    assert_eq!((s, body["status"].as_str()), (200, Some("ok")));
    let mut api = app
        .api
        .take()
        .ok_or_else(|| anyhow::anyhow!("no API process"))?;

    api.signal(15);
    let body = eventually(
        Duration::from_secs(30),
        "readyz to say draining",
        || async {
            let (s, body) = app
                .request(reqwest::Method::GET, None, "/readyz", None)
                .await?;
            Ok((s == 503).then_some(body))
        },
    )
    .await?;
    assert_eq!(
        (
            body["status"].as_str(),
            body["postgres"].as_bool(),
            body["redis"].as_bool()
        ),
        (Some("draining"), Some(true), Some(true))
    );
    // still serving: a submission is accepted and runs to `done` on a worker started now
    let id = app.submit(&coach, "generate_draft", draft_input()).await?;
    app.start_worker(&[])?;
    let events = app.events(&coach, id, None, None).await?;
    assert_eq!(
        types(&events).last().map(String::as_str),
        Some("done"),
        "{events:?}"
    );
    assert!(
        api.wait_exit(Duration::from_millis(1)).await.is_err(),
        "exited before the delay"
    );

    api.signal(15);
    assert_eq!(api.wait_exit(Duration::from_secs(30)).await?, Some(0));
    Ok(())
}

#[tokio::test]
async fn two_hundred_sse_clients_on_one_api_process_all_receive_every_event() -> anyhow::Result<()>
{
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    // no worker yet: every client connects before the first event exists
    let id = app.submit(&coach, "generate_plan", json!({"weeks": 2, "level": "beginner", "org_id": "org_demo", "refined_draft": plan_draft()})).await?;
    let mut clients = Vec::new();
    for _ in 0..200 {
        let res = app
            .http
            .get(format!("{}/api/v1/jobs/{id}/events", app.base()))
            .bearer_auth(&coach)
            .send()
            .await?;
        assert_eq!(res.status(), 200);
        clients.push(tokio::spawn(pacer_tests::read_sse(
            res,
            None,
            Duration::from_secs(120),
        )));
    }
    app.start_worker(&[("PACER_RULES_STEP_DELAY_MS", "20")])?;

    let mut streams = Vec::new();
    for c in clients {
        streams.push(c.await??);
    }
    let reference = app.events(&coach, id, None, None).await?;
    assert!(reference.len() > 10, "a plan job emits many events");
    for s in &streams {
        assert_eq!(s, &reference, "every client sees every event, in order");
    }
    Ok(())
}

#[tokio::test]
async fn cancelled_queued_and_running_jobs_end_cancelled_with_error_then_done() -> anyhow::Result<()>
{
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    let input = json!({"weeks": 2, "level": "beginner", "org_id": "org_demo", "refined_draft": plan_draft()});

    // queued: no worker runs yet
    let queued = app.submit(&coach, "generate_plan", input.clone()).await?;
    let (status, body) = app
        .delete(&coach, &format!("/api/v1/jobs/{queued}"))
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["state"], "cancelled");

    // running: slow steps, cancel once it has started; the lease refresh (which also reads the
    // request from PostgreSQL) is made too rare to matter, so the job stops at its next event
    app.start_worker(&[
        ("PACER_RULES_STEP_DELAY_MS", "300"),
        ("PACER_HEARTBEAT_SECS", "60"),
    ])?;
    let running = app.submit(&coach, "generate_plan", input).await?;
    app.wait_state(&coach, running, "running", Duration::from_secs(30))
        .await?;
    let (status, body) = app
        .delete(&coach, &format!("/api/v1/jobs/{running}"))
        .await?;
    assert_eq!(status, 202, "{body}");
    app.wait_state(&coach, running, "cancelled", Duration::from_secs(30))
        .await?;

    for id in [queued, running] {
        let events = app.events(&coach, id, None, None).await?;
        let t = types(&events);
        assert_eq!(&t[t.len() - 2..], ["error", "done"], "{t:?}");
        assert_eq!(events[events.len() - 2].1["error"], "cancelled");
        assert!(!t.contains(&"result".to_owned()));
    }
    // the queued one never ran
    let job = app.job(&coach, queued).await?;
    assert_eq!(job["attempts"], 0);
    // a finished job cannot be cancelled
    let (status, body) = app
        .delete(&coach, &format!("/api/v1/jobs/{queued}"))
        .await?;
    assert_eq!((status, body["code"].as_str()), (409, Some("job_finished")));
    Ok(())
}

#[tokio::test]
async fn idempotency_key_returns_the_first_job_and_list_shows_the_callers_jobs()
-> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.start().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    let body = json!({"kind": "generate_draft", "input": draft_input()});
    let send = |key: &'static str, body: serde_json::Value| {
        let req = app
            .http
            .post(format!("{}/api/v1/jobs", app.base()))
            .bearer_auth(&coach)
            .header("Idempotency-Key", key)
            .json(&body);
        async move {
            let res = req.send().await?;
            let status = res.status().as_u16();
            Ok::<_, anyhow::Error>((status, res.json::<serde_json::Value>().await?))
        }
    };
    let (s1, b1) = send("k-1", body.clone()).await?;
    let (s2, b2) = send("k-1", body.clone()).await?;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(b1["data"]["job_id"], b2["data"]["job_id"]);
    let mut other = body.clone();
    other["input"]["weeks"] = json!(5);
    let (s3, b3) = send("k-1", other).await?;
    assert_eq!(
        (s3, b3["code"].as_str()),
        (409, Some("idempotency_conflict"))
    );

    let second = app.submit(&coach, "generate_draft", draft_input()).await?;
    let (status, list) = app.get(&coach, "/api/v1/jobs?per_page=1").await?;
    assert_eq!(status, 200);
    assert_eq!(list["data"]["pagination"]["total"], 2);
    assert_eq!(
        list["data"]["jobs"][0]["job_id"],
        second.to_string(),
        "newest first"
    );
    assert_eq!(list["data"]["pagination"]["has_next"], true);
    let (_, by_kind) = app.get(&coach, "/api/v1/jobs?kind=recompute_stats").await?;
    assert_eq!(by_kind["data"]["pagination"]["total"], 0);
    // another coach sees none of them; an admin sees all
    let (_, theirs) = app
        .get(&app.token("usr_other", "coach", "org_demo"), "/api/v1/jobs")
        .await?;
    assert_eq!(theirs["data"]["pagination"]["total"], 0);
    let (_, all) = app.get(&app.admin(), "/api/v1/jobs").await?;
    assert_eq!(all["data"]["pagination"]["total"], 2);
    let ids: HashSet<_> = all["data"]["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|j| j["job_id"].clone())
        .collect();
    assert_eq!(ids.len(), 2);
    Ok(())
}

/// Submissions arriving together share one insert (and one push): each still gets its own
/// answer, a reused key its first job, and a refused one changes nothing.
#[tokio::test]
async fn concurrent_submissions_each_get_their_own_answer() -> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.start().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    app.org("org_plain", &[]).await?;
    let coach = app.coach();
    let admin = app.admin();
    let post = |token: &str, key: Option<String>, input: serde_json::Value| {
        let mut req = app
            .http
            .post(format!("{}/api/v1/jobs", app.base()))
            .bearer_auth(token)
            .json(&json!({"kind": "generate_draft", "input": input}));
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        async move {
            let res = req.send().await?;
            let status = res.status().as_u16();
            Ok::<_, anyhow::Error>((status, res.json::<serde_json::Value>().await?))
        }
    };
    let with_org = |org: &str| {
        let mut input = draft_input();
        input["org_id"] = json!(org);
        input
    };
    // 0..20: same key; 20..40: no key; 40..50: admin, org without the feature;
    // 50..60: admin, missing org
    let calls = (0..60).map(|i| match i {
        0..20 => post(&coach, Some("shared-key".into()), draft_input()),
        20..40 => post(&coach, None, draft_input()),
        40..50 => post(&admin, None, with_org("org_plain")),
        _ => post(&admin, None, with_org("org_nowhere")),
    });
    let answers = futures::future::try_join_all(calls).await?;
    let id = |b: &serde_json::Value| b["data"]["job_id"].as_str().map(str::to_owned);
    let keyed: HashSet<_> = answers[..20].iter().map(|(_, b)| id(b)).collect();
    assert!(answers[..40].iter().all(|(s, _)| *s == 202), "{answers:?}");
    assert_eq!(keyed.len(), 1, "one job for one key: {keyed:?}");
    let unkeyed: HashSet<_> = answers[20..40].iter().map(|(_, b)| id(b)).collect();
    assert_eq!(unkeyed.len(), 20);
    assert!(unkeyed.iter().all(|i| i.is_some() && !keyed.contains(i)));
    for (status, body) in &answers[40..50] {
        assert_eq!(
            (*status, body["status"].as_str()),
            (403, Some("error")),
            "{body}"
        );
    }
    for (status, body) in &answers[50..] {
        assert_eq!(
            (*status, body["status"].as_str()),
            (404, Some("error")),
            "{body}"
        );
    }
    let rows: i64 = sqlx::query_scalar("select count(*) from jobs")
        .fetch_one(&app.db)
        .await?;
    assert_eq!(rows, 21, "refused submissions record nothing");
    // every recorded job runs
    let all: Vec<uuid::Uuid> = keyed
        .iter()
        .chain(&unkeyed)
        .flatten()
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    for id in all {
        app.wait_state(&coach, id, "succeeded", Duration::from_secs(60))
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn recompute_stats_aggregates_activities_by_local_day() -> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.start().await?;
    let admin = app.admin();
    let (status, _) = app
        .put(
            &admin,
            "/api/v1/admin/users/usr_ath",
            &json!({"org_id": "org_demo", "role": "athlete", "timezone": "America/Chicago"}),
        )
        .await?;
    assert_eq!(status, 200);
    // 03:30 UTC on the 2nd is still the 1st in Chicago; 15:00 UTC on the 2nd is the 2nd
    for (ext, start, dist) in [
        ("a1", "2025-04-02T03:30:00Z", 5000.0),
        ("a2", "2025-04-01T13:00:00Z", 3000.0),
        ("a3", "2025-04-02T15:00:00Z", 8000.0),
    ] {
        sqlx::query("insert into activities (id, athlete_id, external_id, sport_type, start_date, distance, moving_time) values ($1, 'usr_ath', $2, 'Run', $3::timestamptz, $4, 1800)")
            .bind(uuid::Uuid::now_v7())
            .bind(ext)
            .bind(start)
            .bind(dist)
            .execute(&app.db)
            .await?;
    }
    let athlete = app.token("usr_ath", "athlete", "org_demo");
    let id = app
        .submit(&athlete, "recompute_stats", json!({"user_id": "usr_ath"}))
        .await?;
    let job = app
        .wait_state(&athlete, id, "succeeded", Duration::from_secs(30))
        .await?;
    assert_eq!(job["result"]["activities"], 3);
    assert_eq!(job["result"]["days"], 2);
    let rows: Vec<(chrono::NaiveDate, i32, f64)> = sqlx::query_as(
        "select day, runs, distance from daily_rollups where athlete_id = 'usr_ath' order by day",
    )
    .fetch_all(&app.db)
    .await?;
    let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    assert_eq!(
        rows,
        vec![(d("2025-04-01"), 2, 8000.0), (d("2025-04-02"), 1, 8000.0)]
    );
    Ok(())
}

/// Every counter is exported from the start, at 0: an alert on "jobs failed" or a `rate()`
/// needs the series before the first increment.
#[tokio::test]
async fn every_counter_is_exported_at_zero_before_its_first_increment() -> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    let metrics = format!("127.0.0.1:{}", pacer_tests::free_port());
    app.start_worker(&[("PACER_WORKER_METRICS_BIND", &metrics)])?;
    let scrape = |url: String| {
        let http = app.http.clone();
        async move { Ok::<_, anyhow::Error>(http.get(url).send().await?.text().await?) }
    };
    let worker = pacer_tests::eventually(Duration::from_secs(30), "worker metrics", || async {
        Ok(scrape(format!("http://{metrics}/metrics")).await.ok())
    })
    .await?;
    let api = scrape(format!("{}/metrics", app.base())).await?;
    for (text, series) in [
        (
            &api,
            r#"pacer_jobs_submitted_total{kind="generate_plan"} 0"#,
        ),
        (
            &api,
            r#"pacer_jobs_finished_total{kind="generate_draft",state="cancelled"} 0"#,
        ),
        (&api, "pacer_jobs_left_to_dispatchers_total 0"),
        (
            &worker,
            r#"pacer_jobs_finished_total{kind="recompute_batch",state="failed"} 0"#,
        ),
        (
            &worker,
            r#"pacer_job_retries_total{kind="generate_draft"} 0"#,
        ),
        (&worker, r#"pacer_jobs_reconciled_total{queue="stats"} 0"#),
        (&worker, r#"pacer_llm_tokens_total{kind="prompt"} 0"#),
        (&worker, "pacer_runs_detached_total 0"),
    ] {
        assert!(text.lines().any(|l| l == series), "{series} in:\n{text}");
    }
    Ok(())
}

/// An SSE replay that waits on a slow Redis (here every command held for 2 s) still replays
/// every event and ends with `done`. The API's Redis answer bound was the redis crate's 500 ms,
/// shared by every replay on its one connection: under load streams ended early, with nothing
/// to tell the client why.
#[tokio::test]
async fn a_replay_waiting_on_a_slow_redis_still_ends_with_done() -> anyhow::Result<()> {
    // Arrange
    let redis = pacer_tests::RedisServer::start().await?;
    let mut app = TestApp::with_redis(&redis.url).await?;
    app.start().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    let id = app.submit(&coach, "generate_draft", draft_input()).await?;
    app.wait_state(&coach, id, "succeeded", Duration::from_secs(30))
        .await?;
    let before = app.events(&coach, id, None, None).await?;

    // Act: Redis holds every other client's commands for 2 s
    let mut conn = app.redis().await?;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(2000)
        .arg("ALL")
        .query_async(&mut conn)
        .await?;
    let replay = app.events(&coach, id, None, None).await?;

    // Assert
    assert_eq!(replay, before);
    assert_eq!(
        replay.last().map(|(_, e)| e["type"].clone()),
        Some(json!("done"))
    );
    Ok(())
}

#[tokio::test]
async fn health_readiness_and_metrics_report_the_system() -> anyhow::Result<()> {
    let redis = pacer_tests::RedisServer::start().await?;
    let mut app = TestApp::with_redis(&redis.url).await?;
    app.start().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    let id = app.submit(&coach, "generate_draft", draft_input()).await?;
    app.wait_state(&coach, id, "succeeded", Duration::from_secs(30))
        .await?;

    let text = app
        .http
        .get(format!("{}/metrics", app.base()))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        text.contains(r#"pacer_jobs{kind="generate_draft",state="succeeded"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"pacer_jobs_submitted_total{kind="generate_draft"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"pacer_queue_depth{queue="generation"} 0"#),
        "{text}"
    );
    let (s, body) = app
        .request(reqwest::Method::GET, None, "/healthz", None)
        .await?;
    assert_eq!((s, body["status"].as_str()), (200, Some("ok")));
    let (s, body) = app
        .request(reqwest::Method::GET, None, "/readyz", None)
        .await?;
    assert_eq!((s, body["redis"].as_bool()), (200, Some(true)));

    // Redis gone: not ready, still alive
    let port = redis.port;
    drop(redis);
    let (s, body) = pacer_tests::eventually(
        Duration::from_secs(30),
        "readyz to report Redis down",
        || async {
            let (s, body) = app
                .request(reqwest::Method::GET, None, "/readyz", None)
                .await?;
            Ok((s == 503).then_some((s, body)))
        },
    )
    .await?;
    assert_eq!(
        (s, body["redis"].as_bool(), body["postgres"].as_bool()),
        (503, Some(false), Some(true))
    );
    assert_eq!(
        app.request(reqwest::Method::GET, None, "/healthz", None)
            .await?
            .0,
        200
    );

    // Redis back: the first probe says so (its first command on the dropped connection fails
    // and reconnects; it is tried once more)
    let redis = pacer_tests::RedisServer::start_on(port).await?;
    let (s, body) = app
        .request(reqwest::Method::GET, None, "/readyz", None)
        .await?;
    assert_eq!((s, body["redis"].as_bool()), (200, Some(true)), "{body}");
    // restarted between two probes: the next one is 200 too
    drop(redis);
    let _redis = pacer_tests::RedisServer::start_on(port).await?;
    let (s, body) = app
        .request(reqwest::Method::GET, None, "/readyz", None)
        .await?;
    assert_eq!((s, body["redis"].as_bool()), (200, Some(true)), "{body}");
    Ok(())
}

#[tokio::test]
async fn finished_jobs_are_deleted_after_the_retention_period_by_the_workers_of_their_queue()
-> anyhow::Result<()> {
    // Arrange: the worker serves only `generation`, so a `stats` job stays queued
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let (status, _) = app
        .put(
            &app.admin(),
            "/api/v1/admin/users/usr_ath",
            &json!({"org_id": "org_demo", "role": "athlete"}),
        )
        .await?;
    assert_eq!(status, 200);
    let athlete = app.token("usr_ath", "athlete", "org_demo");
    let waiting = app
        .submit(&athlete, "recompute_stats", json!({"user_id": "usr_ath"}))
        .await?;
    app.start_worker(&[
        ("PACER_QUEUES", "generation"),
        ("PACER_JOB_RETENTION_SECS", "1"),
        ("PACER_RECONCILE_INTERVAL_SECS", "1"),
    ])?;
    let coach = app.coach();
    let finished = app.submit(&coach, "generate_draft", draft_input()).await?;
    app.wait_state(&coach, finished, "succeeded", Duration::from_secs(30))
        .await?;

    // Act
    eventually(
        Duration::from_secs(30),
        "the finished job to be deleted",
        || async {
            let (status, _) = app.get(&coach, &format!("/api/v1/jobs/{finished}")).await?;
            Ok((status == 404).then_some(()))
        },
    )
    .await?;
    let left: Vec<(uuid::Uuid, String)> = sqlx::query_as("select id, state from jobs")
        .fetch_all(&app.db)
        .await?;

    // Assert: only the job of a queue this worker does not serve is left (live jobs of its own
    // queues: see the next test)
    assert_eq!(left, [(waiting, "queued".to_owned())]);
    Ok(())
}

#[tokio::test]
async fn retention_keeps_live_jobs_and_the_finished_children_of_a_live_batch() -> anyhow::Result<()>
{
    // Arrange: rows of a day ago, written as a worker elsewhere left them. The live ones hold a
    // lease that does not expire during the test, so no worker here touches them.
    let mut app = TestApp::new().await?;
    app.start_api().await?; // applies the migrations
    let ids: Vec<uuid::Uuid> = (0..6).map(|_| uuid::Uuid::now_v7()).collect();
    let (live_job, live_batch, live_child, done_batch, done_child, done_job) =
        (ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]);
    let rows = [
        (live_job, "generate_draft", "generation", "running", None),
        (live_batch, "recompute_batch", "stats", "running", None),
        (
            live_child,
            "recompute_stats",
            "stats",
            "succeeded",
            Some(live_batch),
        ),
        (done_batch, "recompute_batch", "stats", "succeeded", None),
        (
            done_child,
            "recompute_stats",
            "stats",
            "succeeded",
            Some(done_batch),
        ),
        (done_job, "generate_draft", "generation", "failed", None),
    ];
    for (id, kind, queue, state, parent) in rows {
        sqlx::query(
            "insert into jobs (id, kind, queue, state, owner_id, input, max_attempts, parent_id, attempts,
                               worker, task_id, dispatched_at, heartbeat_at, created_at, started_at, finished_at)
             values ($1, $2, $3, $4, 'usr_coach', '{}', 3, $5, 1, 'elsewhere', 'task', now() - interval '1 day',
                     now() + interval '1 hour', now() - interval '1 day', now() - interval '1 day',
                     case when $4 in ('running', 'queued') then null else now() - interval '1 day' end)",
        )
        .bind(id)
        .bind(kind)
        .bind(queue)
        .bind(state)
        .bind(parent)
        .execute(&app.db)
        .await?;
    }
    app.start_worker(&[
        ("PACER_JOB_RETENTION_SECS", "60"),
        ("PACER_RECONCILE_INTERVAL_SECS", "1"),
    ])?;

    // Act: wait for the pruner of each queue to delete its finished job
    let left = eventually(
        Duration::from_secs(30),
        "the finished jobs to be deleted",
        || async {
            let now: Vec<uuid::Uuid> = sqlx::query_scalar("select id from jobs order by id")
                .fetch_all(&app.db)
                .await?;
            let gone = [done_job, done_child, done_batch]
                .iter()
                .all(|id| !now.contains(id));
            Ok(gone.then_some(now))
        },
    )
    .await?;

    // Assert: live jobs stay, and so does the finished child its live batch still counts
    assert!(left.contains(&live_job), "{left:?}");
    assert!(left.contains(&live_batch), "{left:?}");
    assert!(left.contains(&live_child), "{left:?}");
    Ok(())
}

#[tokio::test]
async fn keyed_connections_keep_generic_plans_and_only_lease_ones_skip_the_wal_flush()
-> anyhow::Result<()> {
    use pacer_common::db::{Commit, KeyedConns};
    /// The settings this test looks at, as one connection sees them.
    fn settings(
        c: &mut sqlx::PgConnection,
    ) -> futures::future::BoxFuture<'_, sqlx::Result<Vec<String>>> {
        Box::pin(async move {
            let mut values = Vec::new();
            for name in ["plan_cache_mode", "enable_seqscan", "synchronous_commit"] {
                let value: String = sqlx::query_scalar("select current_setting($1)")
                    .bind(name)
                    .fetch_one(&mut *c)
                    .await?;
                values.push(value);
            }
            Ok(values)
        })
    }

    // Arrange
    let app = TestApp::new().await?;
    let durable = KeyedConns::new(&app.db, 1, Commit::Durable);
    let lease = KeyedConns::new(&app.db, 1, Commit::Lease);
    // Act
    let main = settings(&mut *app.db.acquire().await?).await?;
    let durable_seen = durable.run(settings).await?;
    let lease_seen = lease.run(settings).await?;

    // Assert: the main pool keeps the server's defaults
    assert_eq!(
        [main, durable_seen, lease_seen],
        [
            ["auto", "on", "on"],
            ["force_generic_plan", "off", "on"],
            ["force_generic_plan", "off", "off"],
        ]
    );
    Ok(())
}

#[tokio::test]
async fn jobs_are_accepted_and_run_after_postgres_closes_every_connection() -> anyhow::Result<()> {
    // Arrange: a first job leaves idle connections in every pool of both processes
    let mut app = TestApp::new().await?;
    app.start().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    let first = app.submit(&coach, "generate_draft", draft_input()).await?;
    app.wait_state(&coach, first, "succeeded", Duration::from_secs(30))
        .await?;

    // Act: what a PostgreSQL restart does to them
    let closed: Vec<bool> = sqlx::query_scalar(
        "select pg_terminate_backend(pid) from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid()",
    )
    .fetch_all(&app.db)
    .await?;
    let second = app.submit(&coach, "generate_draft", draft_input()).await?;
    let job = app
        .wait_state(&coach, second, "succeeded", Duration::from_secs(30))
        .await?;

    // Assert
    assert!(closed.len() >= 2 && closed.iter().all(|c| *c), "{closed:?}");
    assert_eq!(job["progress"], 100);
    Ok(())
}

#[tokio::test]
async fn a_repeated_claim_whose_first_run_committed_takes_its_jobs_back_once() -> anyhow::Result<()>
{
    use pacer_common::db::jobs::{claim_many, insert_jobs};
    // Arrange: two queued jobs; the first is claimed by a statement whose reply is lost
    let app = TestApp::new().await?;
    pacer_common::db::MIGRATOR.run(&app.db).await?;
    let mut conn = app.db.acquire().await?;
    let jobs = [new_job("coach_claim", None), new_job("coach_claim", None)];
    let (a, b) = (jobs[0].id, jobs[1].id);
    insert_jobs(&mut conn, &jobs).await?;
    let (lost, other) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let first = claim_many(&mut *conn, &[a], "w1", 30.0, lost).await?;

    // Act: another batch of the same worker carrying the same job, then the lost claim's
    // repeat (with a job its first run did not take), then that repeat again
    let elsewhere = claim_many(&mut *conn, &[a], "w1", 30.0, other).await?;
    let repeat = claim_many(&mut *conn, &[a, b], "w1", 30.0, lost).await?;
    let again = claim_many(&mut *conn, &[a], "w1", 30.0, lost).await?;

    // Assert: only the lost claim's repeats get the job, and its attempt counts once
    let taken = |rows: &[pacer_common::db::jobs::JobRow]| {
        let mut v: Vec<_> = rows.iter().map(|r| (r.id, r.attempts)).collect();
        v.sort();
        v
    };
    assert_eq!(taken(&first), vec![(a, 1)]);
    assert!(elsewhere.is_empty(), "{elsewhere:?}");
    let mut expected = vec![(a, 1), (b, 1)];
    expected.sort();
    assert_eq!(taken(&repeat), expected);
    assert_eq!(taken(&again), vec![(a, 1)]);
    let attempts: i32 = sqlx::query_scalar("select attempts from jobs where id = $1")
        .bind(a)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(attempts, 1);
    Ok(())
}

/// Per-job connections that reach PostgreSQL through a [`ReplyLosingProxy`], one of them
/// already used once (only a connection that was idle is suspected dead and its statement
/// repeated).
async fn keyed_via_proxy(
    app: &TestApp,
    commit: pacer_common::db::Commit,
    answer_within: Duration,
) -> anyhow::Result<(
    pacer_tests::pg_proxy::ReplyLosingProxy,
    std::sync::Arc<pacer_common::db::KeyedConns>,
)> {
    pacer_common::db::MIGRATOR.run(&app.db).await?;
    let (proxy, pool) =
        pacer_tests::pg_proxy::ReplyLosingProxy::in_front_of(&app.database_url).await?;
    let conns = pacer_common::db::KeyedConns::answering_within(&pool, 1, commit, answer_within);
    conns
        .run(|c| Box::pin(async move { sqlx::query("select 1").execute(c).await.map(|_| ()) }))
        .await?;
    Ok((proxy, conns))
}

/// A job claimed through the proxy while the claim's reply is lost after its commit (the
/// connection closes, or stays open and `silent`); asserts the claim still hands over the job
/// with its attempt counted once, in the answer and in the row.
async fn claim_with_a_lost_reply(silent: bool, answer_within: Duration) -> anyhow::Result<()> {
    use pacer_common::db::jobs::{claim_many, insert_jobs};
    // Arrange
    let app = TestApp::new().await?;
    let (proxy, claims) =
        keyed_via_proxy(&app, pacer_common::db::Commit::Lease, answer_within).await?;
    let job = new_job("coach_lost_reply", None);
    let id = job.id;
    insert_jobs(&mut *app.db.acquire().await?, &[job]).await?;

    // Act
    if silent {
        proxy.arm_silent("UPDATE");
    } else {
        proxy.arm("UPDATE");
    }
    let token = uuid::Uuid::new_v4();
    let ids = std::sync::Arc::new(vec![id]);
    let claim = claims.run(|c| {
        let ids = ids.clone();
        Box::pin(async move { claim_many(c, &ids, "w1", 30.0, token).await })
    });
    let rows = tokio::time::timeout(Duration::from_secs(30), claim).await??;

    // Assert
    assert_eq!(proxy.lost(), 1);
    let taken: Vec<_> = rows.iter().map(|r| (r.id, r.attempts)).collect();
    assert_eq!(taken, vec![(id, 1)]);
    let (state, attempts): (String, i32) =
        sqlx::query_as("select state, attempts from jobs where id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await?;
    assert_eq!((state.as_str(), attempts), ("running", 1));
    Ok(())
}

#[tokio::test]
async fn a_claim_whose_reply_is_lost_after_its_commit_is_repeated_and_runs_its_job_once()
-> anyhow::Result<()> {
    // the connection closes: the repeat runs at once
    claim_with_a_lost_reply(false, Duration::from_secs(30)).await
}

#[tokio::test]
async fn a_claim_on_a_connection_that_stops_answering_is_repeated_on_another() -> anyhow::Result<()>
{
    // the connection stays open and silent (a hung server or network): without the 2 s bound
    // on an answer the claim would wait past the 30 s deadline
    claim_with_a_lost_reply(true, Duration::from_secs(2)).await
}

#[tokio::test]
async fn a_submission_whose_reply_is_lost_after_its_commit_is_answered_as_recorded()
-> anyhow::Result<()> {
    use pacer_common::db::jobs::{Inserted, insert_jobs};
    // Arrange: a batch of two, as the API records it
    let app = TestApp::new().await?;
    let (proxy, inserts) = keyed_via_proxy(
        &app,
        pacer_common::db::Commit::Durable,
        Duration::from_secs(30),
    )
    .await?;
    let batch = std::sync::Arc::new([
        new_job("coach_lost_insert", None),
        new_job("coach_lost_insert", Some("k1")),
    ]);

    // Act: the insert commits and its reply never arrives
    proxy.arm("INSERT");
    let insert = inserts.run(|c| {
        let batch = batch.clone();
        Box::pin(async move { insert_jobs(c, &batch[..]).await })
    });
    let answers = tokio::time::timeout(Duration::from_secs(30), insert).await??;

    // Assert: both answered as new (each client gets its 202), each recorded once
    assert_eq!(proxy.lost(), 1);
    let new: Vec<_> = answers
        .iter()
        .map(|a| match a {
            Inserted::New(row) => Some(row.id),
            _ => None,
        })
        .collect();
    assert_eq!(new, batch.iter().map(|j| Some(j.id)).collect::<Vec<_>>());
    let rows: i64 =
        sqlx::query_scalar("select count(*) from jobs where owner_id = 'coach_lost_insert'")
            .fetch_one(&app.db)
            .await?;
    assert_eq!(rows, 2);
    Ok(())
}

#[tokio::test]
async fn a_terminal_write_whose_reply_is_lost_after_its_commit_still_answers_its_numbers()
-> anyhow::Result<()> {
    use pacer_common::db::jobs::{Finish, Reported, claim_many, finish_many, insert_jobs};
    use pacer_common::jobs::JobState;
    // Arrange: a job claimed by worker w1
    let app = TestApp::new().await?;
    let (proxy, finishes) = keyed_via_proxy(
        &app,
        pacer_common::db::Commit::Durable,
        Duration::from_secs(30),
    )
    .await?;
    let job = new_job("coach_lost_finish", None);
    let id = job.id;
    let mut conn = app.db.acquire().await?;
    insert_jobs(&mut conn, &[job]).await?;
    claim_many(&mut *conn, &[id], "w1", 30.0, uuid::Uuid::new_v4()).await?;
    let write = std::sync::Arc::new([Finish {
        id,
        state: JobState::Succeeded,
        result: Some(std::sync::Arc::new(json!({"draft": "Week 1"}))),
        error: None,
        usage: None,
        reported: Reported::default(),
        claimed: Some(1),
    }]);

    // Act: the terminal write commits and its reply never arrives
    proxy.arm("UPDATE");
    let finish = finishes.run(|c| {
        let write = write.clone();
        Box::pin(async move { finish_many(c, "w1", &write[..]).await })
    });
    let answers = tokio::time::timeout(Duration::from_secs(30), finish).await??;

    // Assert: the repeat answers the numbers the first run reserved, so the final events go out
    assert_eq!(proxy.lost(), 1);
    let (state, seq): (String, i64) =
        sqlx::query_as("select state, event_seq from jobs where id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await?;
    assert_eq!(state, "succeeded");
    assert_eq!(
        answers,
        vec![pacer_common::db::jobs::Ended {
            id,
            done_seq: u64::try_from(seq)?,
            state: JobState::Succeeded
        }]
    );
    Ok(())
}

/// A cancel accepted while the job was running (202, "it stops at its next step") wins over an
/// outcome written after it: a job that finished its last step just after the cancel used to
/// end `succeeded`, its stream with `result`.
#[tokio::test]
async fn a_terminal_write_after_a_cancel_request_ends_the_job_cancelled() -> anyhow::Result<()> {
    use pacer_common::db::jobs::{Finish, Reported, claim_many, finish_many, insert_jobs};
    use pacer_common::jobs::JobState;
    // Arrange: a running job whose cancel was requested
    let app = TestApp::new().await?;
    pacer_common::db::MIGRATOR.run(&app.db).await?;
    let mut conn = app.db.acquire().await?;
    let job = new_job("coach_cancel_late", None);
    let id = job.id;
    insert_jobs(&mut conn, &[job]).await?;
    claim_many(&mut *conn, &[id], "w1", 30.0, uuid::Uuid::new_v4()).await?;
    sqlx::query("update jobs set cancel_requested = true where id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let write = Finish {
        id,
        state: JobState::Succeeded,
        result: Some(std::sync::Arc::new(json!({"draft": "Week 1"}))),
        error: None,
        usage: None,
        reported: Reported::default(),
        claimed: Some(1),
    };

    // Act: the success, then its repeat (a lost reply)
    let first = finish_many(&mut conn, "w1", std::slice::from_ref(&write)).await?;
    let repeat = finish_many(&mut conn, "w1", &[write]).await?;

    // Assert
    let row: (String, Option<serde_json::Value>, Option<String>) =
        sqlx::query_as("select state, result, error from jobs where id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await?;
    assert_eq!(
        row,
        ("cancelled".to_owned(), None, Some("cancelled".to_owned()))
    );
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].state, JobState::Cancelled);
    assert_eq!(repeat, first);
    Ok(())
}

/// A worker that stalled past its lease (its job taken over by another) cannot end the job
/// when it wakes up: the terminal write of an attempt the worker no longer holds is refused.
#[tokio::test]
async fn a_stalled_attempts_terminal_write_does_not_end_the_job_its_successor_runs()
-> anyhow::Result<()> {
    use pacer_common::db::jobs::{Finish, Reported, claim_many, finish_many, insert_jobs};
    use pacer_common::jobs::JobState;
    // Arrange: attempt 1 on w1, then taken over by w2 as if w1's lease had expired
    let app = TestApp::new().await?;
    pacer_common::db::MIGRATOR.run(&app.db).await?;
    let mut conn = app.db.acquire().await?;
    let job = new_job("coach_stalled", None);
    let id = job.id;
    insert_jobs(&mut conn, &[job]).await?;
    claim_many(&mut *conn, &[id], "w1", 30.0, uuid::Uuid::new_v4()).await?;
    let taken = claim_many(&mut *conn, &[id], "w2", 0.0, uuid::Uuid::new_v4()).await?;
    let write = |attempt: i32| Finish {
        id,
        state: JobState::Succeeded,
        result: Some(std::sync::Arc::new(json!({"draft": "Week 1"}))),
        error: None,
        usage: None,
        reported: Reported::default(),
        claimed: Some(attempt),
    };

    // Act
    let stale = finish_many(&mut conn, "w1", &[write(1)]).await?;
    let state: String = sqlx::query_scalar("select state from jobs where id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await?;
    let current = finish_many(&mut conn, "w2", &[write(2)]).await?;

    // Assert
    assert_eq!(taken.len(), 1, "w2 took the job over");
    assert!(stale.is_empty(), "{stale:?}");
    assert_eq!(state, "running");
    assert_eq!(current.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_repeated_terminal_write_whose_first_run_committed_still_answers_its_numbers()
-> anyhow::Result<()> {
    use pacer_common::db::jobs::{Finish, Reported, claim_many, finish_many, insert_jobs};
    use pacer_common::jobs::JobState;
    // Arrange: a job claimed by worker w1 (its first attempt)
    let app = TestApp::new().await?;
    pacer_common::db::MIGRATOR.run(&app.db).await?;
    let mut conn = app.db.acquire().await?;
    let job = new_job("coach_finish", None);
    let id = job.id;
    insert_jobs(&mut conn, &[job]).await?;
    let claimed = claim_many(&mut *conn, &[id], "w1", 30.0, uuid::Uuid::new_v4()).await?;
    let write = |state: JobState, attempt: i32| Finish {
        id,
        state,
        result: Some(std::sync::Arc::new(json!({"draft": "Week 1"}))),
        error: None,
        usage: None,
        reported: Reported::default(),
        claimed: Some(attempt),
    };

    // Act: the write, then the same write again (a repeat after a lost reply), then writes
    // that are not this one: another worker's, another attempt's, another state
    let first = finish_many(&mut conn, "w1", &[write(JobState::Succeeded, 1)]).await?;
    let repeat = finish_many(&mut conn, "w1", &[write(JobState::Succeeded, 1)]).await?;
    let others = [
        finish_many(&mut conn, "w2", &[write(JobState::Succeeded, 1)]).await?,
        finish_many(&mut conn, "w1", &[write(JobState::Succeeded, 2)]).await?,
        finish_many(&mut conn, "w1", &[write(JobState::Failed, 1)]).await?,
    ];

    // Assert
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempts, 1);
    assert_eq!(first.len(), 1);
    assert_eq!(repeat, first);
    assert!(others.iter().all(Vec::is_empty), "{others:?}");
    Ok(())
}

/// `(updates, HOT updates)` of the `jobs` table in the current transaction.
async fn updates_so_far(conn: &mut sqlx::PgConnection) -> anyhow::Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "select n_tup_upd, n_tup_hot_upd from pg_stat_xact_user_tables where relname = 'jobs'",
    )
    .fetch_one(conn)
    .await?)
}

/// A cancel that lands right after a retry put the job back in the queue (before the worker
/// appended its `retrying` event) reserves its final events above that event's number: they
/// took the same number, and the stream lost its `error` ("cancelled").
#[tokio::test]
async fn a_cancel_during_a_retrys_requeue_numbers_its_events_after_the_retrying_one()
-> anyhow::Result<()> {
    use pacer_common::db::jobs::{
        CancelOutcome, Reported, cancel, claim_many, insert_jobs, requeue_for_retry,
    };
    // Arrange: a running job that has logged 3 events
    let app = TestApp::new().await?;
    pacer_common::db::MIGRATOR.run(&app.db).await?;
    let job = new_job("coach_retry_cancel", None);
    let id = job.id;
    insert_jobs(&mut *app.db.acquire().await?, &[job]).await?;
    claim_many(&app.db, &[id], "w1", 30.0, uuid::Uuid::new_v4()).await?;
    let reported = Reported {
        last_seq: 3,
        ..Reported::default()
    };

    // Act: the retry's requeue, then the cancel (the log still ends at 3)
    let retrying = requeue_for_retry(&app.db, id, "w1", "retrying", &reported, None).await?;
    let cancelled = cancel(&app.db, id, 3).await?;

    // Assert
    assert_eq!(retrying, Some(4));
    assert!(
        matches!(cancelled, CancelOutcome::Cancelled(6)),
        "error at 5, done at 6: {cancelled:?}"
    );
    Ok(())
}

#[tokio::test]
async fn dispatch_claim_lease_refresh_and_retry_add_no_index_entries() -> anyhow::Result<()> {
    use pacer_common::db::jobs::{
        Finish, Reported, claim_many, finish_many, heartbeat, insert_jobs, mark_dispatched,
        requeue_for_retry,
    };
    use pacer_common::jobs::JobState;
    // Arrange: a queued job, then one transaction (its statistics count only its own updates)
    let app = TestApp::new().await?;
    pacer_common::db::MIGRATOR.run(&app.db).await?;
    let job = new_job("coach_hot", None);
    let id = job.id;
    insert_jobs(&mut *app.db.acquire().await?, &[job]).await?;
    let mut tx = app.db.begin().await?;

    // Act: every update a job sees while it stays live, then its terminal write
    mark_dispatched(&mut *tx, &[id], &["task-1".to_owned()]).await?;
    let claimed = claim_many(&mut *tx, &[id], "w1", 30.0, uuid::Uuid::new_v4()).await?;
    let refreshed = heartbeat(&mut *tx, id, "w1", &Reported::default(), None).await?;
    let handed_back =
        requeue_for_retry(&mut *tx, id, "w1", "retrying", &Reported::default(), None).await?;
    let again = claim_many(&mut *tx, &[id], "w1", 30.0, uuid::Uuid::new_v4()).await?;
    let live = updates_so_far(&mut tx).await?;
    let finish = Finish {
        id,
        state: JobState::Succeeded,
        result: Some(std::sync::Arc::new(json!({"draft": "Week 1"}))),
        error: None,
        usage: None,
        reported: Reported::default(),
        claimed: Some(2),
    };
    let finished = finish_many(&mut tx, "w1", &[finish]).await?;
    let all = updates_so_far(&mut tx).await?;
    tx.rollback().await?;

    // Assert: five updates, all HOT (no indexed column changed); the terminal write, which
    // takes the job off the live list, is the only one that is not
    assert_eq!(claimed.len(), 1);
    assert_eq!(refreshed, Some(false));
    assert_eq!(handed_back, Some(1), "the retrying event's number");
    assert_eq!(again.len(), 1);
    assert_eq!(finished.len(), 1);
    assert_eq!(live, (5, 5));
    assert_eq!(all, (6, 5));
    Ok(())
}
