//! Nothing accepted is lost: killed workers, SIGTERM, a Redis flush or restart, a PostgreSQL outage, a backlog larger than
//! apalis-redis can promote at once.

use std::time::Duration;

use futures::StreamExt;
use pacer_tests::pg_proxy::ReplyLosingProxy;
use pacer_tests::{RedisServer, TestApp, eventually, free_port, metric, types};
use serde_json::json;
use uuid::Uuid;

fn plan_input() -> serde_json::Value {
    let draft = "Week 1: Base\n- Monday: Easy run 30 min\n- Wednesday: Easy run 30 min\n- Friday: Easy run 30 min\n- Sunday: Long run 6 km\n\
                 Week 2: Base\n- Monday: Easy run 30 min\n- Wednesday: Tempo run 20 min\n- Friday: Easy run 30 min\n- Sunday: Long run 7 km\n";
    json!({"weeks": 2, "level": "beginner", "org_id": "org_demo", "refined_draft": draft})
}

/// The pid inside a worker name `{host}-{pid}-{random}`.
fn worker_pid(name: &str) -> Option<i32> {
    name.rsplit('-').nth(1)?.parse().ok()
}

async fn running_worker(app: &TestApp, id: Uuid) -> anyhow::Result<String> {
    eventually(Duration::from_secs(30), "the job to run", || async {
        let w: Option<(String, Option<String>)> =
            sqlx::query_as("select state, worker from jobs where id = $1")
                .bind(id)
                .fetch_optional(&app.db)
                .await?;
        Ok(w.and_then(|(state, worker)| (state == "running").then_some(worker).flatten()))
    })
    .await
}

async fn result_and_done_counts(
    app: &TestApp,
    coach: &str,
    id: Uuid,
) -> anyhow::Result<(usize, usize)> {
    let t = types(&app.events(coach, id, None, None).await?);
    Ok((
        t.iter().filter(|t| *t == "result").count(),
        t.iter().filter(|t| *t == "done").count(),
    ))
}

#[tokio::test]
async fn a_sigkilled_workers_job_runs_again_elsewhere_and_is_stored_once() -> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let slow = [("PACER_RULES_STEP_DELAY_MS", "400")];
    app.start_worker(&slow)?;
    app.start_worker(&slow)?;
    let coach = app.coach();
    let id = app.submit(&coach, "generate_plan", plan_input()).await?;

    let owner = running_worker(&app, id).await?;
    let pid = worker_pid(&owner).ok_or_else(|| anyhow::anyhow!("no pid in {owner}"))?;
    let victim = app
        .workers
        .iter()
        .position(|w| w.pid() == pid)
        .ok_or_else(|| anyhow::anyhow!("worker {owner} is not ours"))?;
    app.workers[victim].signal(9);

    let job = app
        .wait_state(&coach, id, "succeeded", Duration::from_secs(90))
        .await?;
    assert!(
        job["attempts"].as_i64() >= Some(2),
        "the killed attempt counts: {job}"
    );
    assert_eq!(job["result"]["content"].as_array().map(Vec::len), Some(8));
    let (worker,): (String,) = sqlx::query_as("select worker from jobs where id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await?;
    assert_ne!(worker, owner, "another worker finished it");
    assert_eq!(
        result_and_done_counts(&app, &coach, id).await?,
        (1, 1),
        "exactly one result stored and announced"
    );
    Ok(())
}

#[tokio::test]
async fn sigterm_lets_a_running_job_finish_or_hands_it_back() -> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();

    // 1. within the grace period: the job finishes on the stopping worker, which then exits 0
    app.start_worker(&[
        ("PACER_RULES_STEP_DELAY_MS", "200"),
        ("PACER_SHUTDOWN_GRACE_SECS", "60"),
    ])?;
    let id = app.submit(&coach, "generate_plan", plan_input()).await?;
    let owner = running_worker(&app, id).await?;
    app.workers[0].signal(15);
    let code = app.workers[0].wait_exit(Duration::from_secs(60)).await?;
    assert_eq!(code, Some(0));
    let job = app.job(&coach, id).await?;
    assert_eq!(job["state"], "succeeded", "{job}");
    let (worker,): (String,) = sqlx::query_as("select worker from jobs where id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(worker, owner);

    // 2. past the grace period: the job goes back to the queue and another worker finishes it
    app.start_worker(&[
        ("PACER_RULES_STEP_DELAY_MS", "1000"),
        ("PACER_SHUTDOWN_GRACE_SECS", "1"),
    ])?;
    let id = app.submit(&coach, "generate_plan", plan_input()).await?;
    running_worker(&app, id).await?;
    app.workers[1].signal(15);
    app.workers[1].wait_exit(Duration::from_secs(30)).await?;
    app.start_worker(&[])?;
    let job = app
        .wait_state(&coach, id, "succeeded", Duration::from_secs(90))
        .await?;
    assert!(job["attempts"].as_i64() >= Some(2), "{job}");
    assert_eq!(result_and_done_counts(&app, &coach, id).await?, (1, 1));
    Ok(())
}

/// Rolling deploys: a job handed back at shutdown more times than its attempt limit still
/// runs; the hand-backs are counted on the job but not spent.
#[tokio::test]
async fn hand_backs_at_shutdown_do_not_use_up_a_jobs_attempts() -> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.set("PACER_MAX_ATTEMPTS", "1");
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    let stopping = [
        ("PACER_RULES_STEP_DELAY_MS", "1000"),
        ("PACER_SHUTDOWN_GRACE_SECS", "1"),
    ];
    let id = app.submit(&coach, "generate_plan", plan_input()).await?;
    let mut owners = Vec::new();
    for i in 0..2 {
        app.start_worker(&stopping)?;
        // handed back, the job is queued (no worker) until the new worker claims it
        let owner = running_worker(&app, id).await?;
        assert!(!owners.contains(&owner), "{owner} ran it before");
        owners.push(owner);
        app.workers[i].signal(15);
        app.workers[i].wait_exit(Duration::from_secs(30)).await?;
    }
    let (handed_back,): (i32,) = sqlx::query_as("select handed_back from jobs where id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(handed_back, 2);
    app.start_worker(&[])?;
    let job = app
        .wait_state(&coach, id, "succeeded", Duration::from_secs(90))
        .await?;
    assert_eq!(job["attempts"], 3, "every run is counted: {job}");
    assert_eq!(result_and_done_counts(&app, &coach, id).await?, (1, 1));
    Ok(())
}

/// A second SIGTERM ends the grace period at once: the running job is handed back instead of
/// being waited for.
#[tokio::test]
async fn a_second_sigterm_hands_running_jobs_back_at_once() -> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    app.start_worker(&[
        ("PACER_RULES_STEP_DELAY_MS", "5000"),
        ("PACER_SHUTDOWN_GRACE_SECS", "300"),
    ])?;
    let id = app.submit(&coach, "generate_plan", plan_input()).await?;
    running_worker(&app, id).await?;

    // the first signal starts the grace period; every later one is a second signal
    let worker = &mut app.workers[0];
    let code = eventually(Duration::from_secs(120), "the worker to exit", || {
        worker.signal(15);
        let exited = worker.child.try_wait();
        async move { Ok(exited?.map(|s| s.code())) }
    })
    .await?;
    assert_eq!(code, Some(0));
    let (state, handed_back): (String, i32) =
        sqlx::query_as("select state, handed_back from jobs where id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await?;
    assert_eq!((state.as_str(), handed_back), ("queued", 1));
    Ok(())
}

/// During its grace period a stopping worker stays registered with apalis: a peer does not
/// take its in-flight tasks for orphans (each copy would hold one of the peer's slots, waiting
/// for the job the stopping worker runs), and the job finishes where it runs, once.
#[tokio::test]
async fn a_stopping_worker_keeps_its_tasks_through_the_grace_period() -> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    app.start_worker(&[
        ("PACER_RULES_STEP_DELAY_MS", "1500"),
        ("PACER_SHUTDOWN_GRACE_SECS", "120"),
    ])?;
    let id = app.submit(&coach, "generate_plan", plan_input()).await?;
    let owner = running_worker(&app, id).await?;
    app.start_worker(&[("PACER_CONCURRENCY", "1")])?;
    let mut redis = app.redis().await?;
    let log = format!("{}:job:{id}:events", app.prefix);
    let at_signal = last_logged(&mut redis, &log).await?.unwrap_or(0);

    app.workers[0].signal(15);
    // the plan's own steps are the clock: 1.5 s each, so 10 events later the stopping worker's
    // apalis heartbeat (1 s, 3 missed) would have expired several times over
    eventually(Duration::from_secs(60), "ten more events", || {
        let (mut redis, log) = (redis.clone(), log.clone());
        async move {
            let n = last_logged(&mut redis, &log).await?.unwrap_or(0);
            Ok((n >= at_signal + 10).then_some(()))
        }
    })
    .await?;
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg(format!("{}:generation:workers", app.prefix))
        .arg(&owner)
        .query_async(&mut redis)
        .await?;

    assert!(score.is_some(), "{owner} was taken for dead");
    let code = app.workers[0].wait_exit(Duration::from_secs(60)).await?;
    assert_eq!(code, Some(0));
    let (state, attempts, worker): (String, i32, String) =
        sqlx::query_as("select state, attempts, worker from jobs where id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await?;
    assert_eq!((state.as_str(), attempts, worker), ("succeeded", 1, owner));
    assert_eq!(result_and_done_counts(&app, &coach, id).await?, (1, 1));
    Ok(())
}

#[tokio::test]
async fn every_job_completes_after_redis_is_flushed_while_they_wait() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let mut app = TestApp::with_redis(&redis.url).await?;
    app.set("PACER_RECONCILE_INTERVAL_SECS", "1")
        .set("PACER_RECONCILE_STALE_SECS", "2");
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    app.start_worker(&[
        ("PACER_CONCURRENCY", "1"),
        ("PACER_RULES_STEP_DELAY_MS", "300"),
    ])?;
    let coach = app.coach();
    let input = json!({"weeks": 4, "level": "beginner", "org_id": "org_demo"});
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(app.submit(&coach, "generate_draft", input.clone()).await?);
    }
    running_worker(&app, ids[0]).await?;

    let mut conn = app.redis().await?;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await?;

    for id in &ids {
        let job = app
            .wait_state(&coach, *id, "succeeded", Duration::from_secs(120))
            .await?;
        assert!(job["result"]["draft"].is_string());
    }
    // the streams still end properly (events after the flush live on; the rest come from PostgreSQL)
    for id in &ids {
        let t = types(&app.events(&coach, *id, None, None).await?);
        assert_eq!(t.last().map(String::as_str), Some("done"), "{t:?}");
    }
    Ok(())
}

/// Redis stopped, then started again empty (it keeps nothing on disk): the submissions made
/// while it was down are accepted and kept in PostgreSQL, and run once it is back; the API's
/// event fan-out and the worker reconnect by themselves.
#[tokio::test]
async fn jobs_submitted_while_redis_is_down_run_once_it_is_back() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let port = redis.port;
    let mut app = TestApp::with_redis(&redis.url).await?;
    app.set("PACER_RECONCILE_INTERVAL_SECS", "1")
        .set("PACER_RECONCILE_STALE_SECS", "2");
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    app.start_worker(&[("PACER_RULES_STEP_DELAY_MS", "2000")])?;
    let coach = app.coach();
    let input = json!({"weeks": 4, "level": "beginner", "org_id": "org_demo"});
    let first = app.submit(&coach, "generate_draft", input.clone()).await?;
    app.wait_state(&coach, first, "succeeded", Duration::from_secs(30))
        .await?;

    drop(redis);
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.submit(&coach, "generate_draft", input.clone()).await?);
    }
    let queued: i64 =
        sqlx::query_scalar("select count(*) from jobs where id = any($1) and state = 'queued'")
            .bind(&ids)
            .fetch_one(&app.db)
            .await?;
    assert_eq!(queued, 5, "nothing can run while Redis is down");
    // a cancel needs only PostgreSQL: the job is cancelled at once and never runs
    let doomed = app.submit(&coach, "generate_draft", input.clone()).await?;
    let (status, body) = app
        .delete(&coach, &format!("/api/v1/jobs/{doomed}"))
        .await?;
    assert_eq!(
        (status, body["data"]["state"].as_str()),
        (200, Some("cancelled")),
        "{body}"
    );
    let job = app.job(&coach, ids[0]).await?;
    assert_eq!(job["state"].as_str(), Some("queued"), "{job}");

    let api_metrics = format!("127.0.0.1:{}", app.port);
    let left = "pacer_jobs_left_to_dispatchers_total";
    assert_eq!(metric(&app.http, &api_metrics, left).await?, 6.0);

    let _redis = RedisServer::start_on(port).await?;
    // a job submitted once Redis is back is pushed by the API itself
    ids.push(app.submit(&coach, "generate_draft", input.clone()).await?);
    assert_eq!(metric(&app.http, &api_metrics, left).await?, 6.0);
    for id in &ids {
        let job = app
            .wait_state(&coach, *id, "succeeded", Duration::from_secs(60))
            .await?;
        assert!(job["result"]["draft"].is_string(), "{job}");
        assert_eq!(job["attempts"].as_i64(), Some(1), "{job}");
        assert_eq!(result_and_done_counts(&app, &coach, *id).await?, (1, 1));
    }
    let job = app.job(&coach, doomed).await?;
    assert_eq!(
        (job["state"].as_str(), job["attempts"].as_i64()),
        (Some("cancelled"), Some(0)),
        "{job}"
    );
    // events flow live again: a new job's stream, open before its second event (a step, 2 s,
    // after the first), gets it while the job still runs; without the API's subscription it
    // would come only from the stream's next log check, 15 s later, after the job ended
    let live = app.submit(&coach, "generate_draft", input).await?;
    let two = app.events(&coach, live, None, Some(2)).await?;
    assert_eq!(two.len(), 2);
    let state: String = sqlx::query_scalar("select state from jobs where id = $1")
        .bind(live)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(state, "running", "events so far {two:?}");
    app.wait_state(&coach, live, "succeeded", Duration::from_secs(30))
        .await?;
    assert_eq!(result_and_done_counts(&app, &coach, live).await?, (1, 1));
    Ok(())
}

/// Redis restarted while a job runs (a blip: it is back within a second, empty): the job
/// finishes in its first attempt, and its stream still ends with one `result` and one `done`.
#[tokio::test]
async fn a_job_running_through_a_redis_restart_finishes_in_its_first_attempt() -> anyhow::Result<()>
{
    let (redis, app, coach, id) =
        a_job_running_on_a_private_redis(&[("PACER_RULES_STEP_DELAY_MS", "2000")]).await?;
    let port = redis.port;
    drop(redis);
    let _redis = RedisServer::start_on(port).await?;
    // the API's first command after the restart fails on the dropped connection: it tries once
    // more and pushes the next job itself instead of leaving it to a dispatcher's pass
    let input = json!({"weeks": 2, "level": "beginner", "org_id": "org_demo"});
    let next = app.submit(&coach, "generate_draft", input).await?;
    let api_metrics = format!("127.0.0.1:{}", app.port);
    let left = metric(
        &app.http,
        &api_metrics,
        "pacer_jobs_left_to_dispatchers_total",
    )
    .await?;
    assert_eq!(left, 0.0);
    succeeded_in_its_first_attempt(&app, &coach, id).await?;
    succeeded_in_its_first_attempt(&app, &coach, next).await
}

/// A deployment on a private Redis whose one rules draft runs, past its first event, on a
/// worker with `worker_env`.
async fn a_job_running_on_a_private_redis(
    worker_env: &[(&str, &str)],
) -> anyhow::Result<(RedisServer, TestApp, String, Uuid)> {
    let redis = RedisServer::start().await?;
    let mut app = TestApp::with_redis(&redis.url).await?;
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    app.start_worker(worker_env)?;
    let coach = app.coach();
    let input = json!({"weeks": 4, "level": "beginner", "org_id": "org_demo"});
    let id = app.submit(&coach, "generate_draft", input).await?;
    let log = format!("{}:job:{id}:events", app.prefix);
    eventually(Duration::from_secs(30), "the job's first event", || async {
        let mut conn = app.redis().await?;
        Ok(last_logged(&mut conn, &log).await?.filter(|n| *n >= 1))
    })
    .await?;
    Ok((redis, app, coach, id))
}

/// The job succeeded in its first attempt, its stream with one `result` and one `done`.
async fn succeeded_in_its_first_attempt(
    app: &TestApp,
    coach: &str,
    id: Uuid,
) -> anyhow::Result<()> {
    let job = app
        .wait_state(coach, id, "succeeded", Duration::from_secs(60))
        .await?;
    assert_eq!(job["attempts"].as_i64(), Some(1), "{job}");
    assert_eq!(result_and_done_counts(app, coach, id).await?, (1, 1));
    Ok(())
}

/// Redis away for longer than a connection's own retries (~10 s) while a job runs: the job
/// waits for it, keeping its lease, instead of failing its attempt (a few such failures used
/// up its attempts and failed it for good), and finishes in its first attempt.
#[tokio::test]
async fn a_job_waits_out_a_long_redis_outage_without_using_up_its_attempts() -> anyhow::Result<()> {
    let metrics = format!("127.0.0.1:{}", free_port());
    let (redis, app, coach, id) = a_job_running_on_a_private_redis(&[
        ("PACER_RULES_STEP_DELAY_MS", "1000"),
        ("PACER_WORKER_METRICS_BIND", &metrics),
    ])
    .await?;
    let port = redis.port;
    drop(redis);
    // down until the job's next event has failed once the connection gave up
    eventually(
        Duration::from_secs(60),
        "the job to wait for Redis",
        || async {
            let waits = metric(&app.http, &metrics, "pacer_event_append_waits_total").await?;
            Ok((waits >= 1.0).then_some(()))
        },
    )
    .await?;
    let _redis = RedisServer::start_on(port).await?;
    succeeded_in_its_first_attempt(&app, &coach, id).await
}

/// A Redis that answers but refuses writes for a while (here at its `maxmemory`; a replica
/// after a failover and a Redis loading its data answer the same way) is waited out like an
/// outage: the running job finishes in its first attempt (its attempts were used up within a
/// second), `/readyz` says Redis is not ready meanwhile (`PING` still answered), and the
/// workers' loops, which fail on every fetch, restart a few times, not thousands a second.
#[tokio::test]
async fn a_redis_refusing_writes_is_waited_out_like_an_outage() -> anyhow::Result<()> {
    let metrics = format!("127.0.0.1:{}", free_port());
    let (_redis, app, coach, id) = a_job_running_on_a_private_redis(&[
        ("PACER_RULES_STEP_DELAY_MS", "1000"),
        ("PACER_WORKER_METRICS_BIND", &metrics),
    ])
    .await?;
    let mut conn = app.redis().await?;
    let max_memory = |bytes: u64| {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg(bytes)
            .clone()
    };
    max_memory(1).query_async::<()>(&mut conn).await?;
    eventually(
        Duration::from_secs(60),
        "the job to wait for Redis",
        || async {
            let waits = metric(&app.http, &metrics, "pacer_event_append_waits_total").await?;
            let restarts = metric(&app.http, &metrics, "pacer_loop_restarts_total").await?;
            Ok((waits >= 3.0 && restarts >= 1.0).then_some(()))
        },
    )
    .await?;
    let (status, ready) = app
        .request(reqwest::Method::GET, None, "/readyz", None)
        .await?;
    let restarts = metric(&app.http, &metrics, "pacer_loop_restarts_total").await?;
    max_memory(0).query_async::<()>(&mut conn).await?;

    assert_eq!((status, &ready["redis"]), (503, &json!(false)), "{ready}");
    assert!(restarts < 50.0, "{restarts} loop restarts");
    succeeded_in_its_first_attempt(&app, &coach, id).await?;
    let (status, ready) = app
        .request(reqwest::Method::GET, None, "/readyz", None)
        .await?;
    assert_eq!(status, 200, "{ready}");
    Ok(())
}

/// A run detached from an apalis loop restarted after a Redis error gets the grace period at
/// SIGTERM like any other: it finishes in its first attempt instead of being handed back.
#[tokio::test]
async fn a_run_detached_by_a_redis_restart_finishes_within_the_grace_period() -> anyhow::Result<()>
{
    let metrics = format!("127.0.0.1:{}", free_port());
    let (redis, mut app, coach, id) = a_job_running_on_a_private_redis(&[
        ("PACER_RULES_STEP_DELAY_MS", "1500"),
        ("PACER_SHUTDOWN_GRACE_SECS", "120"),
        ("PACER_WORKER_METRICS_BIND", &metrics),
    ])
    .await?;
    let port = redis.port;
    drop(redis);
    let _redis = RedisServer::start_on(port).await?;
    eventually(
        Duration::from_secs(60),
        "the run to be detached",
        || async {
            let n = metric(&app.http, &metrics, "pacer_runs_detached_total").await?;
            Ok((n >= 1.0).then_some(()))
        },
    )
    .await?;

    app.workers[0].signal(15);
    let code = app.workers[0].wait_exit(Duration::from_secs(120)).await?;

    assert_eq!(code, Some(0));
    let (state, attempts, handed_back): (String, i32, i32) =
        sqlx::query_as("select state, attempts, handed_back from jobs where id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await?;
    assert_eq!((state.as_str(), attempts, handed_back), ("succeeded", 1, 0));
    assert_eq!(result_and_done_counts(&app, &coach, id).await?, (1, 1));
    Ok(())
}

/// A handed-back job can be claimed through its old delivery before the dispatcher pushes it
/// again: it then runs with no task of its own. If its worker dies and Redis loses its data,
/// the reconciler still finds it (silent far too long) and it runs again.
#[tokio::test]
async fn a_running_job_without_a_task_is_recovered_once_silent() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let mut app = TestApp::with_redis(&redis.url).await?;
    app.set("PACER_RECONCILE_INTERVAL_SECS", "1")
        .set("PACER_RECONCILE_STALE_SECS", "1");
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    let input = json!({"weeks": 2, "level": "beginner", "org_id": "org_demo"});
    let id = app.submit(&coach, "generate_draft", input).await?;
    // as claimed through an old delivery by a worker that then died, and Redis emptied
    sqlx::query(
        "update jobs set state = 'running', worker = 'gone-1-x', attempts = 1, task_id = null,
                dispatched_at = null, heartbeat_at = now() - interval '1 hour',
                started_at = now() - interval '1 hour'
          where id = $1",
    )
    .bind(id)
    .execute(&app.db)
    .await?;
    let mut conn = app.redis().await?;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await?;

    app.start_worker(&[])?;

    let job = app
        .wait_state(&coach, id, "succeeded", Duration::from_secs(60))
        .await?;
    assert_eq!(job["attempts"].as_i64(), Some(2), "{job}");
    assert_eq!(result_and_done_counts(&app, &coach, id).await?, (1, 1));
    Ok(())
}

/// Cancelling does not wait for Redis: PostgreSQL holds the request. A queued job is
/// cancelled at once and a running one stops at its next lease refresh, both while Redis is
/// down.
#[tokio::test]
async fn jobs_can_be_cancelled_while_redis_is_down() -> anyhow::Result<()> {
    let (redis, app, coach, running) = a_job_running_on_a_private_redis(&[
        ("PACER_RULES_STEP_DELAY_MS", "1000"),
        ("PACER_CONCURRENCY", "1"),
    ])
    .await?;
    // the one slot is taken: this one waits
    let input = json!({"weeks": 2, "level": "beginner", "org_id": "org_demo"});
    let queued = app.submit(&coach, "generate_draft", input).await?;
    assert_eq!(app.job(&coach, queued).await?["state"], "queued");
    drop(redis);

    let (status, body) = app
        .delete(&coach, &format!("/api/v1/jobs/{queued}"))
        .await?;
    assert_eq!(
        (status, &body["data"]["state"]),
        (200, &json!("cancelled")),
        "{body}"
    );
    let (status, body) = app
        .delete(&coach, &format!("/api/v1/jobs/{running}"))
        .await?;
    assert_eq!(status, 202, "{body}");
    let job = app
        .wait_state(&coach, running, "cancelled", Duration::from_secs(30))
        .await?;
    assert_eq!(job["error"], "cancelled", "{job}");
    Ok(())
}

/// An API started while Redis is down serves anyway: it accepts jobs (they wait in PostgreSQL)
/// and reports Redis down until it answers; the jobs run once Redis and a worker are up.
#[tokio::test]
async fn an_api_started_while_redis_is_down_accepts_jobs_that_run_once_it_is_up()
-> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let port = redis.port;
    let mut app = TestApp::with_redis(&redis.url).await?;
    drop(redis);
    app.start_api_until("/healthz").await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    let input = json!({"weeks": 2, "level": "beginner", "org_id": "org_demo"});
    let id = app.submit(&coach, "generate_draft", input).await?;
    let (s, ready) = app
        .request(reqwest::Method::GET, None, "/readyz", None)
        .await?;
    assert_eq!((s, ready["redis"].as_bool()), (503, Some(false)), "{ready}");

    let _redis = RedisServer::start_on(port).await?;
    eventually(Duration::from_secs(30), "readyz to see Redis", || async {
        let (s, _) = app
            .request(reqwest::Method::GET, None, "/readyz", None)
            .await?;
        Ok((s == 200).then_some(()))
    })
    .await?;
    app.start_worker(&[])?;
    app.wait_state(&coach, id, "succeeded", Duration::from_secs(60))
        .await?;
    assert_eq!(result_and_done_counts(&app, &coach, id).await?, (1, 1));
    Ok(())
}

/// A deployment brought up before its PostgreSQL and Redis (processes and services started at
/// once, a host restart): the API and the worker wait for them, retrying, instead of exiting;
/// the worker waits for Redis after PostgreSQL is up, while the API already accepts jobs, and
/// runs them once Redis is there.
#[tokio::test]
async fn processes_started_before_postgres_and_redis_wait_for_them() -> anyhow::Result<()> {
    let redis_port = free_port();
    let mut app = TestApp::with_redis(&format!("redis://127.0.0.1:{redis_port}")).await?;
    let (proxy, _pool) = ReplyLosingProxy::in_front_of(&app.database_url).await?;
    app.set("DATABASE_URL", &proxy.url_for(&app.database_url)?);
    proxy.set_down(true);
    let metrics = format!("127.0.0.1:{}", free_port());
    let worker = app.start_worker(&[("PACER_WORKER_METRICS_BIND", &metrics)])?;
    app.spawn_api()?;
    // several tries each (one process alone would take ~20 s for eight), both still running
    eventually(Duration::from_secs(60), "retries of PostgreSQL", || async {
        Ok((proxy.turned_away() >= 8).then_some(()))
    })
    .await?;
    let alive = |p: &mut pacer_tests::Proc| p.child.try_wait().map(|s| s.is_none());
    assert!(alive(&mut app.workers[worker])?, "the worker exited");
    if let Some(api) = app.api.as_mut() {
        assert!(alive(api)?, "the API exited");
    }

    proxy.set_down(false);
    app.api_answers("/healthz").await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    let input = json!({"weeks": 2, "level": "beginner", "org_id": "org_demo"});
    let id = app.submit(&coach, "generate_draft", input).await?;
    eventually(
        Duration::from_secs(60),
        "the worker to wait for Redis",
        || async {
            let series = r#"pacer_dependency_waits_total{dependency="Redis"}"#;
            Ok((metric(&app.http, &metrics, series).await? >= 3.0).then_some(()))
        },
    )
    .await?;
    assert!(alive(&mut app.workers[worker])?, "the worker exited");
    let job = app.job(&coach, id).await?;
    assert_eq!(job["state"].as_str(), Some("queued"), "{job}");

    let _redis = RedisServer::start_on(redis_port).await?;
    app.wait_state(&coach, id, "succeeded", Duration::from_secs(60))
        .await?;
    assert_eq!(result_and_done_counts(&app, &coach, id).await?, (1, 1));
    Ok(())
}

/// A worker waiting for PostgreSQL at start stops at once on SIGTERM (exit 0); a setting
/// PostgreSQL rejects (an unknown role) is not waited out: the process stops with an error.
#[tokio::test]
async fn waiting_at_start_ends_on_sigterm_and_a_rejected_login_is_not_waited_out()
-> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    let nobody = format!("postgres://postgres@127.0.0.1:{}/pacer", free_port());
    app.set("DATABASE_URL", &nobody);
    let metrics = format!("127.0.0.1:{}", free_port());
    let w = app.start_worker(&[("PACER_WORKER_METRICS_BIND", &metrics)])?;
    eventually(Duration::from_secs(30), "the worker to wait", || async {
        let series = r#"pacer_dependency_waits_total{dependency="PostgreSQL"}"#;
        Ok((metric(&app.http, &metrics, series).await? >= 2.0).then_some(()))
    })
    .await?;
    app.workers[w].signal(15);
    assert_eq!(
        app.workers[w].wait_exit(Duration::from_secs(10)).await?,
        Some(0)
    );

    let server: sqlx::postgres::PgConnectOptions = app.database_url.parse()?;
    let url = format!(
        "postgres://pacer_no_such_role@{}:{}/postgres",
        server.get_host(),
        server.get_port()
    );
    app.set("DATABASE_URL", &url);
    let w = app.start_worker(&[])?;
    let code = app.workers[w].wait_exit(Duration::from_secs(20)).await?;
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}");
    Ok(())
}

/// A submission whose insert reached PostgreSQL, which then stopped answering: the API gives
/// up on the silent connection after 10 s (before a client's 30 s timeout) and repeats the
/// insert on a new one, which answers the job as recorded (202, one job). If new connections
/// are turned away too, the 503 cannot tell whether the insert committed (here it did): its
/// message says to retry with an Idempotency-Key.
#[tokio::test]
async fn a_submission_to_a_postgres_that_stops_answering_is_answered_in_time() -> anyhow::Result<()>
{
    let mut app = TestApp::new().await?;
    let (proxy, _pool) = ReplyLosingProxy::in_front_of(&app.database_url).await?;
    app.set("DATABASE_URL", &proxy.url_for(&app.database_url)?);
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    let coach = app.coach();
    let jobs = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from jobs")
            .fetch_one(&app.db)
            .await
    };
    let body = json!({"kind": "generate_draft", "input": {"weeks": 1, "level": "beginner", "org_id": "org_demo"}});
    // provisions the user (an insert of its own) and leaves an idle connection that answered
    // (one that never did is not repeated on: the server itself is the problem)
    let (s, reply) = app.post(&coach, "/api/v1/jobs", &body).await?;
    assert_eq!(s, 202, "{reply}");

    proxy.arm_silent("INSERT");
    let answer = tokio::time::timeout(
        Duration::from_secs(25),
        app.post(&coach, "/api/v1/jobs", &body),
    )
    .await;
    let (s, reply) = answer.map_err(|_| anyhow::anyhow!("no answer within 25 s"))??;
    assert_eq!(s, 202, "{reply}");
    assert_eq!((proxy.lost(), jobs().await?), (1, 2));

    proxy.arm_silent("INSERT");
    let post = app.post(&coach, "/api/v1/jobs", &body);
    let cut = async {
        eventually(Duration::from_secs(30), "the insert's commit", || async {
            Ok((proxy.lost() == 2).then_some(()))
        })
        .await?;
        proxy.set_down(true);
        anyhow::Ok(())
    };
    let (answer, cut) = tokio::join!(post, cut);
    cut?;
    let (s, reply) = answer?;
    proxy.set_down(false);
    assert_eq!(
        (s, reply["code"].as_str()),
        (503, Some("unavailable")),
        "{reply}"
    );
    assert!(
        reply["error"]
            .as_str()
            .is_some_and(|m| m.contains("Idempotency-Key")),
        "{reply}"
    );
    assert_eq!(
        jobs().await?,
        3,
        "the insert committed before the server stopped answering"
    );
    Ok(())
}

/// PostgreSQL out of reach for a while (the API's and the worker's connections go through a
/// proxy that cuts them all and turns new ones away): requests are answered 503 `unavailable`
/// and record nothing; a job whose terminal write falls in the outage is recorded once
/// PostgreSQL is back, without running again, its stream with one `result` and one `done`.
#[tokio::test]
async fn a_postgres_outage_is_a_503_and_the_job_it_interrupts_still_finishes() -> anyhow::Result<()>
{
    let mut app = TestApp::new().await?;
    let (proxy, _pool) = ReplyLosingProxy::in_front_of(&app.database_url).await?;
    let url = proxy.url_for(&app.database_url)?;
    app.set("DATABASE_URL", &url);
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    app.start_worker(&[("PACER_RULES_STEP_DELAY_MS", "2000")])?;
    let coach = app.coach();
    let input = json!({"weeks": 4, "level": "beginner", "org_id": "org_demo"});
    let id = app.submit(&coach, "generate_draft", input.clone()).await?;
    let log = format!("{}:job:{id}:events", app.prefix);
    let logged = |at_least: u64| {
        let (app, log) = (&app, &log);
        eventually(
            Duration::from_secs(30),
            "the job's events",
            move || async move {
                let mut conn = app.redis().await?;
                Ok(last_logged(&mut conn, log)
                    .await?
                    .filter(|n| *n >= at_least))
            },
        )
    };
    // down after the second of three progress events: the third (Redis) still goes out a step
    // later, then the terminal write finds PostgreSQL gone
    logged(2).await?;
    proxy.set_down(true);
    let body = json!({"kind": "generate_draft", "input": input});
    let (s, reply) = app.post(&coach, "/api/v1/jobs", &body).await?;
    assert_eq!(
        (s, reply["code"].as_str()),
        (503, Some("unavailable")),
        "{reply}"
    );
    let (s, reply) = app.get(&coach, &format!("/api/v1/jobs/{id}")).await?;
    assert_eq!(
        (s, reply["code"].as_str()),
        (503, Some("unavailable")),
        "{reply}"
    );
    logged(3).await?;
    // the terminal write follows the third event at once; two more connections turned away
    // after it (lease refreshes come once a second) leave no doubt it was tried
    let seen = proxy.turned_away();
    eventually(
        Duration::from_secs(30),
        "the worker to find PostgreSQL gone",
        || async { Ok((proxy.turned_away() >= seen + 2).then_some(())) },
    )
    .await?;
    let state: String = sqlx::query_scalar("select state from jobs where id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(state, "running");
    let recorded: i64 = sqlx::query_scalar("select count(*) from jobs")
        .fetch_one(&app.db)
        .await?;
    assert_eq!(recorded, 1, "the refused submission recorded nothing");

    proxy.set_down(false);
    let job = app
        .wait_state(&coach, id, "succeeded", Duration::from_secs(60))
        .await?;
    assert!(job["result"]["draft"].is_string(), "{job}");
    // the outcome waited in the worker for PostgreSQL; the job did not run again
    assert_eq!(job["attempts"].as_i64(), Some(1), "{job}");
    assert_eq!(result_and_done_counts(&app, &coach, id).await?, (1, 1));
    let after = app.submit(&coach, "generate_draft", input).await?;
    app.wait_state(&coach, after, "succeeded", Duration::from_secs(30))
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_backlog_of_ten_thousand_jobs_drains_and_a_restarted_worker_rejoins() -> anyhow::Result<()>
{
    const N: usize = 10_000;
    let mut app = TestApp::new().await?;
    app.set("PACER_QUEUE_HIGH_WATER", "1000");
    app.start_api().await?;
    let athlete = app.token("usr_backlog", "athlete", "org_demo");

    // no worker: everything is accepted; Redis holds at most the high-water mark, PostgreSQL the rest
    let submitted = futures::stream::iter(0..N)
        .map(|_| {
            app.submit(
                &athlete,
                "recompute_stats",
                json!({"user_id": "usr_backlog"}),
            )
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(submitted.into_iter().filter(Result::is_ok).count(), N);
    let mut redis = app.redis().await?;
    let scheduled: u64 = redis::cmd("ZCARD")
        .arg(format!("{}:stats:scheduled", app.prefix))
        .query_async(&mut redis)
        .await?;
    assert!(scheduled <= 1000 + 32, "Redis holds {scheduled} due jobs");
    assert!(scheduled > 0);

    // a worker drains it; kill it mid-way and restart one at once
    let worker = [("PACER_CONCURRENCY", "32")];
    app.start_worker(&worker)?;
    let db = app.db.clone();
    let count_done = || {
        let db = db.clone();
        async move {
            let n: i64 = sqlx::query_scalar("select count(*) from jobs where state = 'succeeded'")
                .fetch_one(&db)
                .await?;
            Ok::<_, anyhow::Error>(n)
        }
    };
    eventually(
        Duration::from_secs(300),
        "a first part of the backlog",
        || async { Ok((count_done().await? >= 1500).then_some(())) },
    )
    .await?;
    app.workers[0].signal(9);
    app.start_worker(&worker)?;
    let before = count_done().await?;
    eventually(
        Duration::from_secs(60),
        "the restarted worker to make progress",
        || async { Ok((count_done().await? > before + 100).then_some(())) },
    )
    .await?;
    eventually(Duration::from_secs(600), "the whole backlog", || async {
        Ok((count_done().await? == N as i64).then_some(()))
    })
    .await?;

    let failed: i64 = sqlx::query_scalar("select count(*) from jobs where state <> 'succeeded'")
        .fetch_one(&app.db)
        .await?;
    assert_eq!(failed, 0);
    let depth: u64 = redis::cmd("ZCARD")
        .arg(format!("{}:stats:scheduled", app.prefix))
        .query_async(&mut redis)
        .await?;
    assert_eq!(depth, 0);
    Ok(())
}

/// The last entry number of a job's event log, if it has one.
async fn last_logged(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
) -> anyhow::Result<Option<u64>> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(reply
        .ids
        .first()
        .and_then(|e| e.id.split('-').next()?.parse().ok()))
}

#[tokio::test]
async fn event_numbers_keep_growing_after_a_running_jobs_log_is_lost_and_polls_see_progress()
-> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    app.start_worker(&[("PACER_RULES_STEP_DELAY_MS", "1000")])?;
    let coach = app.coach();
    let id = app.submit(&coach, "generate_plan", plan_input()).await?;
    let log = format!("{}:job:{id}:events", app.prefix);
    let mut conn = app.redis().await?;

    // events are numbered in Redis; the lease refresh saves progress where polls read it
    let polled = eventually(
        Duration::from_secs(30),
        "a workout's progress in a poll while running",
        || async {
            let job = app.job(&coach, id).await?;
            let generating = job["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Generating workout"));
            Ok((job["state"] == "running" && generating).then_some(job))
        },
    )
    .await?;
    assert!(polled["progress"].as_i64() > Some(5), "{polled}");

    // the log disappears mid-job (a flush, an eviction): numbering goes on above what was sent
    let lost = eventually(Duration::from_secs(30), "a few events", || async {
        let mut conn = app.redis().await?;
        Ok(last_logged(&mut conn, &log).await?.filter(|n| *n >= 3))
    })
    .await?;
    let _: () = redis::cmd("DEL").arg(&log).query_async(&mut conn).await?;
    app.wait_state(&coach, id, "succeeded", Duration::from_secs(60))
        .await?;

    let events = app.events(&coach, id, Some(lost), None).await?;
    let ids: Vec<u64> = events.iter().map(|(n, _)| *n).collect();
    assert!(
        ids.first().is_some_and(|n| *n > lost),
        "{ids:?} after {lost}"
    );
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(&types(&events)[events.len() - 2..], ["result", "done"]);
    // the row reserved the final numbers above every progress number
    let seq: i64 = sqlx::query_scalar("select event_seq from jobs where id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(ids.last().copied(), u64::try_from(seq).ok());
    Ok(())
}

/// A worker killed in the middle of a week of a rules plan (after some of its workouts were
/// streamed, before its `weekly_info`): the next attempt writes the same workouts and sends
/// only those not yet streamed, so a client following the stream gets each workout once, and
/// the streamed workouts are the result's.
#[tokio::test]
async fn a_week_cut_short_by_a_killed_worker_is_not_streamed_twice() -> anyhow::Result<()> {
    // Arrange: 1.5 s between workouts, so the kill lands between two workouts of week 1
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    app.start_worker(&[("PACER_RULES_STEP_DELAY_MS", "1500")])?;
    let coach = app.coach();
    let id = app.submit(&coach, "generate_plan", plan_input()).await?;
    let keys = pacer_common::keys::Keys::new(app.prefix.clone());
    let mut conn = redis::Client::open(app.redis_url.as_str())?
        .get_connection_manager()
        .await?;
    let logged_types = |log: &[pacer_common::events::NumberedEvent]| -> Vec<String> {
        log.iter()
            .filter_map(|e| serde_json::from_str::<serde_json::Value>(&e.data).ok())
            .map(|v| v["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    pacer_tests::eventually(
        Duration::from_secs(30),
        "a first workout streamed",
        || async {
            let mut c = conn.clone();
            let log = pacer_common::events::read_log(&mut c, &keys, id, 0).await?;
            Ok(logged_types(&log)
                .iter()
                .any(|t| t == "workout")
                .then_some(()))
        },
    )
    .await?;

    // Act: kill it; what it streamed is then final until another worker takes the job over
    app.workers[0].signal(9);
    let before = pacer_common::events::read_log(&mut conn, &keys, id, 0).await?;
    app.start_worker(&[("PACER_RULES_STEP_DELAY_MS", "10")])?;
    let job = app
        .wait_state(&coach, id, "succeeded", Duration::from_secs(90))
        .await?;
    let events = app.events(&coach, id, None, None).await?;

    // Assert
    let t = logged_types(&before);
    assert!(
        t.iter().any(|t| t == "workout") && !t.iter().any(|t| t == "weekly_info"),
        "killed within week 1: {t:?}"
    );
    let workouts: Vec<&serde_json::Value> = events
        .iter()
        .filter(|(_, e)| e["type"] == "workout")
        .map(|(_, e)| &e["data"])
        .collect();
    let content = job["result"]["content"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(content.len(), 8, "{job}");
    assert_eq!(
        workouts,
        content.iter().collect::<Vec<_>>(),
        "each workout streamed once, in the result's order"
    );
    assert!(job["attempts"].as_i64() >= Some(2), "{job}");
    Ok(())
}

/// apalis-redis keeps a metadata hash per worker name and never deletes it: every worker start
/// and loop restart would leave one behind. Workers delete those of names no longer registered.
#[tokio::test]
async fn the_metadata_of_gone_workers_is_deleted_and_a_live_ones_kept() -> anyhow::Result<()> {
    // Arrange: one live worker, and the hash a worker that is gone left behind
    let mut app = TestApp::new().await?;
    app.start_worker(&[])?;
    let mut conn = app.redis().await?;
    let set = format!("{}:generation:workers", app.prefix);
    let ghost = format!("{set}:metadata:gone-worker-1");
    eventually(Duration::from_secs(30), "the worker to register", || {
        let mut conn = conn.clone();
        let set = set.clone();
        async move {
            Ok((redis::AsyncCommands::zcard::<_, usize>(&mut conn, &set).await? > 0).then_some(()))
        }
    })
    .await?;
    redis::cmd("HSET")
        .arg(&ghost)
        .arg("backend_name")
        .arg("gone")
        .query_async::<()>(&mut conn)
        .await?;

    // Act: the trimmer's pass (every 15 s)
    eventually(
        Duration::from_secs(60),
        "the gone worker's metadata to be deleted",
        || {
            let mut conn = conn.clone();
            let ghost = ghost.clone();
            async move {
                Ok(
                    (!redis::AsyncCommands::exists::<_, bool>(&mut conn, &ghost).await?)
                        .then_some(()),
                )
            }
        },
    )
    .await?;

    // Assert: every registered worker still has its hash
    let live: Vec<String> = redis::AsyncCommands::zrange(&mut conn, &set, 0, -1).await?;
    assert!(!live.is_empty());
    for name in live {
        let kept: bool =
            redis::AsyncCommands::exists(&mut conn, format!("{set}:metadata:{name}")).await?;
        assert!(kept, "{name}");
    }
    Ok(())
}
