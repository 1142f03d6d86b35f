//! The scenarios (issue 5, items 1–8). Each returns rows for the report; a scenario that fails
//! returns an error that the caller records in its row instead of stopping the suite.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::deploy::Deploy;
use crate::sse::{Arrival, RawSse, socket_addr};
use crate::util::{Published, Summary, fmt, ms, ms_between, proc_cpu_secs, proc_mem_mib};

/// Sizes of one run (`--smoke` or the full suite).
#[derive(Debug, Clone)]
pub struct Plan {
    pub weeks: u32,
    pub enqueue_clients: Vec<usize>,
    pub enqueue_secs: f64,
    pub e2e_workers: Vec<usize>,
    pub e2e_secs: f64,
    pub e2e_producers: usize,
    pub e2e_inflight: usize,
    pub idle_jobs: usize,
    pub idle_gap_ms: u64,
    pub load_rates: Vec<f64>,
    pub load_secs: f64,
    pub fanout: Vec<usize>,
    pub fanout_step_ms: u64,
    pub backlog_jobs: i64,
    pub backlog_workers: usize,
    pub backlog_timeout_secs: u64,
    pub rc_athletes: u32,
    pub rc_days: u32,
    pub rc_workers: Vec<usize>,
    pub recovery_jobs: usize,
    pub recovery_step_ms: u64,
    pub recovery_heartbeat_secs: Option<u32>,
    pub redis_n: u64,
    pub counter_wait_ms: u64,
}

impl Plan {
    pub fn full() -> Self {
        Self {
            weeks: 1,
            enqueue_clients: vec![1, 10, 100],
            enqueue_secs: 5.0,
            e2e_workers: vec![1, 2, 4],
            e2e_secs: 8.0,
            e2e_producers: 50,
            e2e_inflight: 1000,
            idle_jobs: 50,
            idle_gap_ms: 100,
            load_rates: vec![100.0, 500.0],
            load_secs: 5.0,
            fanout: vec![1_000, 10_000],
            fanout_step_ms: 300,
            backlog_jobs: 100_000,
            backlog_workers: 2,
            backlog_timeout_secs: 420,
            rc_athletes: 1_000,
            rc_days: 365,
            rc_workers: vec![1, 2],
            recovery_jobs: 8,
            recovery_step_ms: 1_500,
            recovery_heartbeat_secs: None,
            redis_n: 100_000,
            counter_wait_ms: 11_000,
        }
    }

    pub fn smoke() -> Self {
        Self {
            weeks: 1,
            enqueue_clients: vec![1, 10],
            enqueue_secs: 0.5,
            e2e_workers: vec![1, 2],
            e2e_secs: 0.5,
            e2e_producers: 10,
            e2e_inflight: 100,
            idle_jobs: 3,
            idle_gap_ms: 50,
            load_rates: vec![50.0],
            load_secs: 0.5,
            fanout: vec![20],
            fanout_step_ms: 50,
            backlog_jobs: 300,
            backlog_workers: 1,
            backlog_timeout_secs: 60,
            rc_athletes: 5,
            rc_days: 30,
            rc_workers: vec![1],
            recovery_jobs: 2,
            recovery_step_ms: 1_000,
            recovery_heartbeat_secs: Some(1),
            redis_n: 2_000,
            counter_wait_ms: 1_100,
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Row {
    pub item: u8,
    pub scenario: String,
    pub config: String,
    pub result: String,
    pub data: Value,
}

impl Row {
    pub fn new(item: u8, scenario: &str, config: String, result: String, data: Value) -> Self {
        Self {
            item,
            scenario: scenario.to_owned(),
            config,
            result,
            data,
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn rate(n: usize, d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        n as f64 / d.as_secs_f64()
    }
}

/// Starts the API with the organization created; returns a coach token.
async fn fresh_api(d: &mut Deploy) -> Result<String> {
    d.reset().await?;
    d.start_api(&[]).await?;
    d.create_org().await?;
    Ok(d.coach())
}

/// Transactions committed in the benchmark database so far (pg_stat_database; other databases'
/// traffic is not counted). PostgreSQL 15 backends flush these counters lazily (an idle backend
/// within 10 s), so the full run waits 11 s first (precise, 22 s per scenario); the smoke run
/// waits 1.1 s (approximate).
async fn commits(d: &Deploy, plan: &Plan) -> Option<i64> {
    tokio::time::sleep(Duration::from_millis(plan.counter_wait_ms)).await;
    sqlx::query_scalar(
        "select xact_commit from pg_stat_database where datname = current_database()",
    )
    .fetch_one(&d.db)
    .await
    .ok()
}

fn per_job(a: Option<i64>, b: Option<i64>, jobs: usize) -> Value {
    match (a, b) {
        (Some(a), Some(b)) if jobs > 0 => crate::util::r2((b - a) as f64 / jobs as f64),
        _ => Value::Null,
    }
}

async fn listen(d: &Deploy) -> Result<(Published, tokio::task::JoinHandle<()>)> {
    Published::listen(&d.redis_url, &format!("{}:events", d.prefix)).await
}

// ---------------------------------------------------------------------------------------------
// 1. enqueue

pub async fn enqueue(d: &mut Deploy, plan: &Plan) -> Result<Vec<Row>> {
    let token = fresh_api(d).await?;
    let body = Deploy::draft_body(plan.weeks);
    for _ in 0..5 {
        d.submit(&token, &body).await?;
    }
    let mut rows = Vec::new();
    for &c in &plan.enqueue_clients {
        let t0 = Instant::now();
        let deadline = t0 + secs(plan.enqueue_secs);
        let mut tasks = Vec::new();
        for _ in 0..c {
            let (api, token, body) = (d.client(), token.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                let mut lats = Vec::new();
                let mut errors = 0usize;
                let mut first_error = None;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match api.submit(&token, &body).await {
                        Ok(_) => lats.push(ms(t.elapsed())),
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert(format!("{e:#}"));
                        }
                    }
                }
                (lats, errors, first_error)
            }));
        }
        let mut lats = Vec::new();
        let mut errors = 0;
        let mut first_error = None;
        for t in tasks {
            let (l, e, f) = t.await?;
            lats.extend(l);
            errors += e;
            if first_error.is_none() {
                first_error = f;
            }
        }
        let elapsed = t0.elapsed();
        let s = Summary::of(&lats);
        let jps = rate(lats.len(), elapsed);
        rows.push(Row::new(
            1,
            "enqueue (POST /api/v1/jobs)",
            format!("{c} client(s), {}s, no worker", plan.enqueue_secs),
            format!(
                "{} jobs/s; {}{}",
                fmt(jps),
                s.text(),
                if errors > 0 { format!("; {errors} errors") } else { String::new() }
            ),
            json!({"clients": c, "accepted": lats.len(), "errors": errors, "first_error": first_error,
                   "jobs_s": jps.round(), "latency_ms": s.json(), "seconds": elapsed.as_secs_f64()}),
        ));
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// 2. end to end

struct Followed {
    id: Uuid,
    submitted: Instant,
    submitted_wall: DateTime<Utc>,
    events: Vec<Arrival>,
}

impl Followed {
    fn done_at(&self) -> Option<Instant> {
        self.events.iter().find(|e| e.kind == "done").map(|e| e.at)
    }
    fn ok(&self) -> bool {
        self.done_at().is_some() && self.events.iter().any(|e| e.kind == "result")
    }
}

/// Up to 3 jobs that did not end with `result` + `done`, with the events their client saw.
fn not_done_samples(jobs: &[Followed]) -> Value {
    json!(
        jobs.iter()
            .filter(|j| !j.ok())
            .take(3)
            .map(|j| json!({"job_id": j.id, "events": j.events.iter()
            .map(|e| format!("{} {}", e.id, e.kind)).collect::<Vec<_>>()}))
            .collect::<Vec<_>>()
    )
}

pub async fn end_to_end(d: &mut Deploy, plan: &Plan, workers: usize) -> Result<Row> {
    let token = fresh_api(d).await?;
    for _ in 0..workers {
        d.start_worker(&[])?;
    }
    d.warm_up(&token).await?;
    let body = Deploy::draft_body(plan.weeks);
    let sem = Arc::new(Semaphore::new(plan.e2e_inflight));
    let commits0 = commits(d, plan).await;
    let t0 = Instant::now();
    let deadline = t0 + secs(plan.e2e_secs);
    let mut producers = Vec::new();
    for _ in 0..plan.e2e_producers {
        let (api, token, body, sem) = (d.client(), token.clone(), body.clone(), sem.clone());
        producers.push(tokio::spawn(async move {
            let mut followers = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < deadline {
                let Ok(permit) = sem.clone().acquire_owned().await else {
                    break;
                };
                let submitted = Instant::now();
                let submitted_wall = Utc::now();
                match api.submit(&token, &body).await {
                    Ok(id) => {
                        let (api, token) = (api.clone(), token.clone());
                        followers.push(tokio::spawn(async move {
                            let r = api.follow(&token, id, Duration::from_secs(300)).await;
                            drop(permit);
                            r.map(|events| Followed {
                                id,
                                submitted,
                                submitted_wall,
                                events,
                            })
                        }));
                    }
                    Err(_) => errors += 1,
                }
            }
            (followers, errors)
        }));
    }
    let mut submit_errors = 0;
    let mut jobs = Vec::new();
    let mut follow_errors = 0;
    for p in producers {
        let (followers, errors) = p.await?;
        submit_errors += errors;
        for f in followers {
            match f.await? {
                Ok(j) => jobs.push(j),
                Err(_) => follow_errors += 1,
            }
        }
    }
    let completed = jobs.iter().filter(|j| j.ok()).count();
    let last_done = jobs
        .iter()
        .filter_map(Followed::done_at)
        .max()
        .unwrap_or(t0);
    let jps = rate(completed, last_done.saturating_duration_since(t0));
    let e2e: Vec<f64> = jobs
        .iter()
        .filter_map(|j| j.done_at().map(|t| ms_between(j.submitted, t)))
        .collect();
    let s = Summary::of(&e2e);
    let events: usize = jobs.iter().map(|j| j.events.len()).sum();
    let failed = jobs.len() - completed + follow_errors + submit_errors;
    let commits1 = commits(d, plan).await;
    d.stop_all();
    Ok(Row::new(
        2,
        "end to end (rules generate_draft, SSE to done)",
        format!(
            "{workers} worker(s) × concurrency {}; {} producers, ≤ {} jobs in flight, {}s",
            d.worker_concurrency, plan.e2e_producers, plan.e2e_inflight, plan.e2e_secs
        ),
        format!(
            "{} jobs/s ({completed} jobs, {events} events, {} PG commits/job); enqueue→done {}{}",
            fmt(jps),
            per_job(commits0, commits1, jobs.len()),
            s.text(),
            if failed > 0 {
                format!("; {failed} not done")
            } else {
                String::new()
            }
        ),
        json!({"workers": workers, "completed": completed, "jobs_s": jps.round(), "events": events,
               "not_done": failed, "submit_errors": submit_errors, "follow_errors": follow_errors,
               "not_done_samples": not_done_samples(&jobs),
               "enqueue_to_done_ms": s.json(),
               "pg_commits_per_job": per_job(commits0, commits1, jobs.len()),
               "seconds": last_done.saturating_duration_since(t0).as_secs_f64()}),
    ))
}

// ---------------------------------------------------------------------------------------------
// 3. latency at idle and under load

pub async fn latency(d: &mut Deploy, plan: &Plan) -> Result<Vec<Row>> {
    let token = fresh_api(d).await?;
    let (published, listener) = listen(d).await?;
    d.start_worker(&[])?;
    d.warm_up(&token).await?;
    let body = Deploy::draft_body(plan.weeks);
    let mut rows = Vec::new();

    // idle: one job at a time, spaced out
    let mut idle = Vec::new();
    for _ in 0..plan.idle_jobs {
        let submitted = Instant::now();
        let submitted_wall = Utc::now();
        let id = d.submit(&token, &body).await?;
        let events = d.follow(&token, id, Duration::from_secs(60)).await?;
        idle.push(Followed {
            id,
            submitted,
            submitted_wall,
            events,
        });
        tokio::time::sleep(Duration::from_millis(plan.idle_gap_ms)).await;
    }
    rows.push(
        latency_row(
            d,
            &published,
            &idle,
            &format!(
                "idle: {} jobs one at a time, {} ms apart; 1 worker",
                plan.idle_jobs, plan.idle_gap_ms
            ),
            plan.idle_jobs,
        )
        .await?,
    );

    // load: open loop at fixed rates, each job followed by its own SSE client
    for &load_rate in &plan.load_rates {
        let n = (load_rate * plan.load_secs).round() as usize;
        let t0 = Instant::now();
        let mut handles = Vec::with_capacity(n);
        let mut i = 0;
        while i < n {
            let due = ((t0.elapsed().as_secs_f64() * load_rate).floor() as usize + 1).min(n);
            while i < due {
                let (api, token, body) = (d.client(), token.clone(), body.clone());
                handles.push(tokio::spawn(async move {
                    let submitted = Instant::now();
                    let submitted_wall = Utc::now();
                    let id = api.submit(&token, &body).await?;
                    let events = api.follow(&token, id, Duration::from_secs(120)).await?;
                    anyhow::Ok(Followed {
                        id,
                        submitted,
                        submitted_wall,
                        events,
                    })
                }));
                i += 1;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let offered = rate(n, t0.elapsed());
        let mut loaded = Vec::new();
        let mut errors = 0;
        for h in handles {
            match h.await? {
                Ok(f) => loaded.push(f),
                Err(_) => errors += 1,
            }
        }
        let mut row = latency_row(
            d,
            &published,
            &loaded,
            &format!(
                "load: open loop {} jobs/s for {}s (offered {} jobs/s); 1 worker",
                load_rate,
                plan.load_secs,
                fmt(offered)
            ),
            n,
        )
        .await?;
        row.data["errors"] = json!(errors);
        row.data["rate"] = json!(load_rate);
        rows.push(row);
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    listener.abort();
    d.stop_all();
    Ok(rows)
}

async fn latency_row(
    d: &Deploy,
    published: &Published,
    jobs: &[Followed],
    config: &str,
    expected: usize,
) -> Result<Row> {
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.id).collect();
    let rows: Vec<(Uuid, DateTime<Utc>, Option<DateTime<Utc>>)> =
        sqlx::query_as("select id, created_at, started_at from jobs where id = any($1)")
            .bind(&ids)
            .fetch_all(&d.db)
            .await?;
    let created: std::collections::HashMap<Uuid, DateTime<Utc>> =
        rows.iter().map(|(id, c, _)| (*id, *c)).collect();
    let started: std::collections::HashMap<Uuid, DateTime<Utc>> = rows
        .into_iter()
        .filter_map(|(id, _, t)| t.map(|t| (id, t)))
        .collect();
    // where enqueue→start goes: until the insert's transaction began (the API), then until the
    // claim's transaction began (commit, push, wake-up, fetch, claim batch)
    let ms = |a: DateTime<Utc>, b: DateTime<Utc>| {
        (b - a).num_microseconds().unwrap_or(0) as f64 / 1000.0
    };
    let mut to_insert = Vec::new();
    let mut insert_to_start = Vec::new();
    for j in jobs {
        if let Some(c) = created.get(&j.id) {
            to_insert.push(ms(j.submitted_wall, *c));
            if let Some(s) = started.get(&j.id) {
                insert_to_start.push(ms(*c, *s));
            }
        }
    }
    let mut to_start = Vec::new();
    let mut to_published = Vec::new();
    let mut to_first = Vec::new();
    let mut delivery = Vec::new();
    for j in jobs {
        if let Some(s) = started.get(&j.id) {
            to_start.push((*s - j.submitted_wall).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        }
        if let Some(p) = published.get(j.id, 1) {
            to_published.push(ms_between(j.submitted, p));
        }
        if let Some(first) = j.events.first() {
            to_first.push(ms_between(j.submitted, first.at));
        }
        for e in &j.events {
            if let Some(p) = published.get(j.id, e.id) {
                delivery.push(ms_between(p, e.at));
            }
        }
    }
    let (s, p, f, dl) = (
        Summary::of(&to_start),
        Summary::of(&to_published),
        Summary::of(&to_first),
        Summary::of(&delivery),
    );
    let done = jobs.iter().filter(|j| j.ok()).count();
    Ok(Row::new(
        3,
        "enqueue→start / enqueue→first SSE event",
        config.to_owned(),
        format!(
            "start {}; first SSE event {}; ({done}/{expected} done)",
            s.text(),
            f.text()
        ),
        json!({"jobs": jobs.len(), "done": done, "expected": expected,
               "not_done_samples": not_done_samples(jobs),
               "enqueue_to_start_ms": s.json(),
               "enqueue_to_insert_tx_ms": Summary::of(&to_insert).json(),
               "insert_tx_to_claim_tx_ms": Summary::of(&insert_to_start).json(),
               "enqueue_to_first_event_published_ms": p.json(),
               "enqueue_to_first_sse_event_ms": f.json(),
               "event_delivery_ms": dl.json()}),
    ))
}

// ---------------------------------------------------------------------------------------------
// 4. SSE fan-out

pub async fn fanout(d: &mut Deploy, plan: &Plan, clients: usize) -> Result<Row> {
    let token = fresh_api(d).await?;
    let (published, listener) = listen(d).await?;
    let api_pid = d.api_pid().ok_or_else(|| anyhow!("no api"))?;
    let id = d.submit(&token, &Deploy::draft_body(plan.weeks)).await?;
    let rss_before = proc_mem_mib(api_pid, "VmRSS:").unwrap_or(f64::NAN);
    let connected = Arc::new(AtomicUsize::new(0));
    let connect_sem = Arc::new(Semaphore::new(256));
    let t_connect = Instant::now();
    let addr = socket_addr(&d.base())?;
    let mut handles = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (token, connected, sem) = (token.clone(), connected.clone(), connect_sem.clone());
        handles.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await?;
            let sse = RawSse::open(addr, &token, id).await;
            drop(permit);
            let mut sse = sse?;
            connected.fetch_add(1, Ordering::Relaxed);
            let events = sse.read(Duration::from_secs(180)).await?;
            // keep the connection, as a browser keeps it in its pool after the response
            anyhow::Ok((events, sse))
        }));
    }
    // every client connected (headers in) or counted by the API's gauge
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = connected.load(Ordering::Relaxed);
        let gauge = d.api_metric("pacer_sse_clients").await.unwrap_or(0.0) as usize;
        if n >= clients || gauge >= clients {
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_secs = t_connect.elapsed().as_secs_f64();
    let n_connected = connected.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_connected = proc_mem_mib(api_pid, "VmRSS:").unwrap_or(f64::NAN);
    let step = plan.fanout_step_ms.to_string();
    let me = std::process::id();
    let cpu0 = (proc_cpu_secs(api_pid), proc_cpu_secs(me));
    let t_events = Instant::now();
    d.start_worker(&[("PACER_RULES_STEP_DELAY_MS", step.as_str())])?;
    let mut delivery = Vec::new();
    // per event (in order): where in the burst the tail is
    let mut by_event: std::collections::BTreeMap<u64, (String, Vec<f64>)> = Default::default();
    let mut done = 0usize;
    let mut errors = 0usize;
    let mut first_error = None;
    let mut open = Vec::with_capacity(clients);
    for h in handles {
        match h.await? {
            Ok((events, connection)) => {
                open.push(connection);
                if events.iter().any(|e| e.kind == "done") {
                    done += 1;
                }
                for e in &events {
                    if let Some(p) = published.get(id, e.id) {
                        let ms = ms_between(p, e.at);
                        delivery.push(ms);
                        let slot = by_event.entry(e.id).or_default();
                        slot.0.clone_from(&e.kind);
                        slot.1.push(ms);
                    }
                }
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(format!("{e:#}"));
            }
        }
    }
    let events_secs = t_events.elapsed().as_secs_f64();
    let peak = proc_mem_mib(api_pid, "VmHWM:").unwrap_or(f64::NAN);
    let cpu = |a: Option<f64>, b: Option<f64>| {
        a.zip(b)
            .map_or(Value::Null, |(a, b)| crate::util::r2(b - a))
    };
    let api_cpu = cpu(cpu0.0, proc_cpu_secs(api_pid));
    let bench_cpu = cpu(cpu0.1, proc_cpu_secs(me));
    let s = Summary::of(&delivery);
    drop(open);
    listener.abort();
    d.stop_all();
    Ok(Row::new(
        4,
        "SSE fan-out (one API process)",
        format!(
            "{clients} clients on one job; 1 worker, step delay {} ms",
            plan.fanout_step_ms
        ),
        format!(
            "delivery {}; API peak RSS {} MiB (idle {} MiB); {done}/{clients} reached done; CPU s API {} / bench client {} in {} s{}",
            s.text(),
            fmt(peak),
            fmt(rss_before),
            api_cpu,
            bench_cpu,
            fmt(events_secs),
            if errors > 0 {
                format!("; {errors} errors")
            } else {
                String::new()
            }
        ),
        json!({"clients": clients, "connected": n_connected, "connect_seconds": connect_secs,
               "done": done, "errors": errors, "first_error": first_error,
               "delivery_ms": s.json(),
               "delivery_ms_by_event": by_event.iter().map(|(seq, (kind, v))| {
                   // when the worker published it, after the first event
                   let published_after_first = published.get(id, *seq).zip(published.get(id, 1))
                       .map(|(p, first)| crate::util::r2(ms_between(first, p)));
                   json!({"seq": seq, "type": kind, "published_ms_after_first": published_after_first,
                          "delivery_ms": Summary::of(v).json()})
               }).collect::<Vec<_>>(),
               "api_rss_idle_mib": crate::util::r2(rss_before),
               "api_rss_connected_mib": crate::util::r2(rss_connected),
               "api_peak_rss_mib": crate::util::r2(peak),
               "event_phase_seconds": events_secs, "api_cpu_seconds_in_event_phase": api_cpu,
               "bench_client_cpu_seconds_in_event_phase": bench_cpu}),
    ))
}

// ---------------------------------------------------------------------------------------------
// 5. backlog

pub async fn backlog(d: &mut Deploy, plan: &Plan) -> Result<Row> {
    let token = fresh_api(d).await?;
    // one job through the API (validated, owner provisioned), then N-1 copies of its row
    let template = d.submit(&token, &Deploy::draft_body(plan.weeks)).await?;
    let t_insert = Instant::now();
    let copies = plan.backlog_jobs - 1;
    sqlx::query(
        "insert into jobs (id, kind, queue, owner_id, org_id, input, max_attempts)
         select gen_random_uuid(), j.kind, j.queue, j.owner_id, j.org_id, j.input, j.max_attempts
           from jobs j, generate_series(1, $2) where j.id = $1",
    )
    .bind(template)
    .bind(copies)
    .execute(&d.db)
    .await
    .context("inserting the backlog")?;
    let insert_secs = t_insert.elapsed().as_secs_f64();
    let total = plan.backlog_jobs;
    let commits0 = commits(d, plan).await;
    let t0 = Instant::now();
    for _ in 0..plan.backlog_workers {
        d.start_worker(&[])?;
    }
    let deadline = t0 + Duration::from_secs(plan.backlog_timeout_secs);
    // polls the live-jobs index for any job left: a count of finished jobs read the whole
    // table each second, ~7 % of PostgreSQL's time during the drain (pg_stat_statements)
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let left: bool =
            sqlx::query_scalar("select exists (select 1 from jobs where finished_at is null)")
                .fetch_one(&d.db)
                .await?;
        if !left {
            break;
        }
    }
    let wall = t0.elapsed();
    d.stop_workers();
    let commits1 = commits(d, plan).await;
    let (first_start, last_finish, succeeded, failed): (
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        i64,
        i64,
    ) = sqlx::query_as(
        "select min(started_at), max(finished_at),
                count(*) filter (where state = 'succeeded'), count(*) filter (where state in ('failed', 'cancelled'))
           from jobs",
    )
    .fetch_one(&d.db)
    .await?;
    let span = match (first_start, last_finish) {
        (Some(a), Some(b)) => (b - a).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    };
    let finished = succeeded + failed;
    let complete = finished >= total;
    let jps = rate(usize::try_from(finished).unwrap_or(0), span);
    d.stop_all();
    Ok(Row::new(
        5,
        "backlog drain",
        format!(
            "{total} jobs inserted in PostgreSQL (queued, undispatched) with no worker, then {} worker(s)",
            plan.backlog_workers
        ),
        format!(
            "{} jobs/s; {}{} s; {succeeded} succeeded, {failed} failed; {} PG commits/job",
            fmt(jps),
            if complete {
                "drained in "
            } else {
                "NOT drained, stopped after "
            },
            fmt(span
                .as_secs_f64()
                .max(if complete { 0.0 } else { wall.as_secs_f64() })),
            per_job(commits0, commits1, usize::try_from(finished).unwrap_or(0))
        ),
        json!({"jobs": total, "workers": plan.backlog_workers, "finished": finished,
               "succeeded": succeeded, "failed": failed, "complete": complete,
               "jobs_s": jps.round(), "drain_seconds": span.as_secs_f64(),
               "pg_commits_per_job": per_job(commits0, commits1, usize::try_from(finished).unwrap_or(0)),
               "wall_seconds_from_worker_spawn": wall.as_secs_f64(), "insert_seconds": insert_secs}),
    ))
}

// ---------------------------------------------------------------------------------------------
// 6. recompute batch

pub const RC_ORG: &str = "org_bench_rc";

pub fn generator_available(d: &Deploy) -> bool {
    std::process::Command::new(d.bin_dir.join("pacer-api"))
        .args(["generate", "--help"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub async fn recompute(d: &mut Deploy, plan: &Plan) -> Result<Vec<Row>> {
    d.reset().await?;
    d.start_api(&[]).await?;
    let t_gen = Instant::now();
    let (athletes, days) = (plan.rc_athletes.to_string(), plan.rc_days.to_string());
    d.run_api_command(&[
        "generate",
        "--org",
        RC_ORG,
        "--athletes",
        &athletes,
        "--coaches",
        "20",
        "--days",
        &days,
    ])
    .await?;
    let gen_secs = t_gen.elapsed().as_secs_f64();
    let n_athletes: i64 =
        sqlx::query_scalar("select count(*) from users where org_id = $1 and role = 'athlete'")
            .bind(RC_ORG)
            .fetch_one(&d.db)
            .await?;
    let n_activities: i64 = sqlx::query_scalar(
        "select count(*) from activities a join users u on u.id = a.athlete_id where u.org_id = $1",
    )
    .bind(RC_ORG)
    .fetch_one(&d.db)
    .await?;
    let admin = d.admin();
    let mut rows = Vec::new();
    for &w in &plan.rc_workers {
        d.stop_workers();
        for _ in 0..w {
            d.start_worker(&[])?;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let t0 = Instant::now();
        let res = d
            .http
            .post(format!("{}/api/v1/admin/analytics/recompute", d.base()))
            .bearer_auth(&admin)
            .json(&json!({"org_id": RC_ORG}))
            .send()
            .await?;
        let v = crate::util::expect_status(res, 202).await?;
        let id = v["data"]["job_id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| anyhow!("no job_id in {v}"))?;
        let job = d
            .wait_finished(&admin, id, Duration::from_secs(600))
            .await?;
        let wall = t0.elapsed();
        let state = job["state"].as_str().unwrap_or_default().to_owned();
        let (first, last, children, ok): (Option<DateTime<Utc>>, Option<DateTime<Utc>>, i64, i64) =
            sqlx::query_as(
                "select min(started_at), max(finished_at), count(*), count(*) filter (where state = 'succeeded')
                   from jobs where parent_id = $1",
            )
            .bind(id)
            .fetch_one(&d.db)
            .await?;
        let child_span = match (first, last) {
            (Some(a), Some(b)) => (b - a).to_std().unwrap_or_default().as_secs_f64(),
            _ => f64::NAN,
        };
        let secs = wall.as_secs_f64();
        rows.push(Row::new(
            6,
            "recompute_batch",
            format!("{n_athletes} athletes × {} days ({n_activities} activities); {w} worker(s)", plan.rc_days),
            format!(
                "{} s ({} athletes/s, {} activities/s); batch {state}, {ok}/{children} children succeeded",
                fmt(secs),
                fmt(n_athletes as f64 / secs),
                fmt(n_activities as f64 / secs)
            ),
            json!({"workers": w, "athletes": n_athletes, "activities": n_activities, "state": state,
                   "seconds": secs, "children": children, "children_succeeded": ok,
                   "children_span_seconds": child_span,
                   "athletes_s": (n_athletes as f64 / secs).round(),
                   "activities_s": (n_activities as f64 / secs).round(),
                   "generate_seconds": gen_secs}),
        ));
    }
    d.stop_all();
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// 7. recovery after kill -9

pub async fn recovery(d: &mut Deploy, plan: &Plan) -> Result<Row> {
    let token = fresh_api(d).await?;
    let step = plan.recovery_step_ms.to_string();
    let hb = plan.recovery_heartbeat_secs.map(|h| h.to_string());
    let mut env: Vec<(&str, &str)> = vec![("PACER_RULES_STEP_DELAY_MS", step.as_str())];
    if let Some(h) = hb.as_deref() {
        env.push(("PACER_HEARTBEAT_SECS", h));
    }
    // the victim starts alone, so it takes the jobs; the survivor joins before the kill
    let victim = d.start_worker(&env)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let body = Deploy::draft_body(plan.weeks);
    let mut ids = Vec::new();
    for _ in 0..plan.recovery_jobs {
        ids.push(d.submit(&token, &body).await?);
    }
    let pattern = format!("%-{victim}-____");
    let held_query =
        "select id, attempts from jobs where state = 'running' and worker like $1 and id = any($2)";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows: Vec<(Uuid, i32)> = sqlx::query_as(held_query)
            .bind(&pattern)
            .bind(&ids)
            .fetch_all(&d.db)
            .await?;
        if !rows.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            bail!("the worker to be killed never held a running job");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d.start_worker(&env)?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let held: Vec<(Uuid, i32)> = sqlx::query_as(held_query)
        .bind(&pattern)
        .bind(&ids)
        .fetch_all(&d.db)
        .await?;
    if held.is_empty() {
        bail!("the victim's jobs finished before the kill: raise the step delay");
    }
    let t_kill = Instant::now();
    if let Some(p) = d.workers.iter_mut().find(|p| p.pid() == victim) {
        p.kill9();
    }
    let held_ids: Vec<Uuid> = held.iter().map(|h| h.0).collect();
    let mut rerun: std::collections::HashMap<Uuid, f64> = std::collections::HashMap::new();
    let deadline = t_kill + Duration::from_secs(90);
    while rerun.len() < held.len() && Instant::now() < deadline {
        let rows: Vec<(Uuid, i32, String, Option<String>)> =
            sqlx::query_as("select id, attempts, state, worker from jobs where id = any($1)")
                .bind(&held_ids)
                .fetch_all(&d.db)
                .await?;
        let now = ms(t_kill.elapsed());
        for (id, attempts, state, worker) in rows {
            let before = held.iter().find(|h| h.0 == id).map_or(0, |h| h.1);
            let elsewhere = worker.is_some_and(|w| !w.contains(&format!("-{victim}-")));
            if !rerun.contains_key(&id) && attempts > before && (state == "running" || elsewhere) {
                rerun.insert(id, now);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // they must then finish exactly once
    let mut states = Vec::new();
    for id in &held_ids {
        let job = d.wait_finished(&token, *id, Duration::from_secs(60)).await;
        states.push(job.map_or_else(
            |e| format!("{e}"),
            |j| j["state"].as_str().unwrap_or("?").to_owned(),
        ));
    }
    let succeeded = states.iter().filter(|s| *s == "succeeded").count();
    let values: Vec<f64> = rerun.values().copied().collect();
    let s = Summary::of(&values);
    d.stop_all();
    Ok(Row::new(
        7,
        "recovery after kill -9",
        format!(
            "2 workers (heartbeat {} s × 3 missed), step delay {} ms; {} jobs, the killed worker held {}",
            plan.recovery_heartbeat_secs.unwrap_or(2),
            plan.recovery_step_ms,
            plan.recovery_jobs,
            held.len()
        ),
        format!(
            "running again after p50 {} / max {} ms; {}/{} re-run, {succeeded} succeeded",
            fmt(s.p50),
            fmt(s.max),
            rerun.len(),
            held.len()
        ),
        json!({"held": held.len(), "rerun": rerun.len(), "succeeded": succeeded,
               "rerun_after_kill_ms": s.json(), "states": states}),
    ))
}

// ---------------------------------------------------------------------------------------------
// 8. Redis ceiling

pub async fn redis_ceiling(d: &Deploy, plan: &Plan) -> Result<Row> {
    let hostport = d
        .redis_url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:6379")
        .rsplit('@')
        .next()
        .unwrap_or("127.0.0.1:6379")
        .to_owned();
    let (host, port) = hostport
        .split_once(':')
        .unwrap_or((hostport.as_str(), "6379"));
    let n = plan.redis_n.to_string();
    let stream = format!("{}:benchstream", d.prefix);
    let channel = format!("{}:benchchannel", d.prefix);
    let key = format!("{}:benchkey", d.prefix);
    let list = format!("{}:benchlist", d.prefix);
    let runs: Vec<(&str, Vec<&str>)> = vec![
        ("SET", vec!["SET", &key, "v"]),
        ("LPUSH", vec!["LPUSH", &list, "v"]),
        ("XADD", vec!["XADD", &stream, "*", "f", "v"]),
        ("PUBLISH", vec!["PUBLISH", &channel, "msg"]),
    ];
    let mut figures = serde_json::Map::new();
    let mut text = Vec::new();
    for (name, cmd) in runs {
        let out = tokio::process::Command::new("redis-benchmark")
            .args(["-h", host, "-p", port, "-q", "-n", &n])
            .args(&cmd)
            .output()
            .await
            .context("redis-benchmark must be installed")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        // "-q" prints progress with \r; the last segment holds "…: 123456.79 requests per second, p50=0.2 msec"
        let line = stdout
            .split(['\r', '\n'])
            .rfind(|l| l.contains("requests per second"))
            .unwrap_or_default()
            .to_owned();
        let rps = line
            .split(':')
            .next_back()
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(f64::NAN);
        figures.insert(
            name.to_owned(),
            json!({"ops_s": rps.round(), "line": line.trim()}),
        );
        text.push(format!("{name} {}", fmt(rps)));
    }
    d.clean_prefix().await?;
    Ok(Row::new(
        8,
        "redis-benchmark (same Redis)",
        format!("-n {} -q, 50 clients, no pipelining", plan.redis_n),
        format!("{} ops/s", text.join(", ")),
        Value::Object(figures),
    ))
}
