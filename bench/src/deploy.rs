//! One private Pacer deployment for the benchmark: its own PostgreSQL database, a Redis key
//! prefix per scenario (deleted afterwards; the shared Redis is never flushed), and the real
//! `pacer-api` / `pacer-worker` binaries found next to this executable.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::sse::{Arrival, read_sse};
use crate::util::expect_status;

/// A spawned binary, killed (SIGKILL) and reaped when dropped.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub struct Deploy {
    pub server: String,
    pub db_name: String,
    pub database_url: String,
    pub redis_url: String,
    pub prefix: String,
    base_prefix: String,
    scenario_no: u32,
    pub port: u16,
    pub bin_dir: PathBuf,
    pub log_dir: PathBuf,
    secret: String,
    pub http: reqwest::Client,
    pub db: sqlx::PgPool,
    pub api: Option<Proc>,
    pub workers: Vec<Proc>,
    /// `PACER_CONCURRENCY` of each worker process.
    pub worker_concurrency: u32,
    n_spawned: u32,
}

pub const ORG: &str = "org_bench";
/// `PACER_DB_MAX_CONNECTIONS` of each worker process (the API keeps its default, 20).
pub const WORKER_DB_POOL: u32 = 12;
/// `PACER_CONCURRENCY` of each worker process unless `--worker-concurrency` says otherwise
/// (the product's default is 8). The peers' harness runs its workers
/// with 50; with 8, a worker waits on round trips more than it works (backlog drain, 2
/// workers: 577 jobs/s at 8, 790 at 32). More jobs at once make the shared PostgreSQL and
/// Redis batches larger: 20,000-job drains alternated, 1,731–1,737 jobs/s at 96 against
/// 1,370–1,578 at 32 (0.5 against 0.8 PostgreSQL commits per job); end to end, no difference
/// beyond the noise.
pub const WORKER_CONCURRENCY: u32 = 96;

impl Deploy {
    pub async fn create(
        server: &str,
        params: &str,
        redis_url: &str,
        bin_dir: &Path,
        log_dir: &Path,
        stamp: &str,
        worker_concurrency: u32,
    ) -> Result<Self> {
        for b in ["pacer-api", "pacer-worker"] {
            if !bin_dir.join(b).exists() {
                bail!(
                    "{} not found: build the binaries first (cargo build --bins, same profile)",
                    bin_dir.join(b).display()
                );
            }
        }
        let db_name = format!("pacer_bench_{stamp}");
        let database_url = if params.is_empty() {
            format!("{server}/{db_name}")
        } else {
            format!("{server}/{db_name}?{params}")
        };
        let options: sqlx::postgres::PgConnectOptions =
            server.parse().context("database server URL")?;
        let mut admin = sqlx::ConnectOptions::connect(&options.clone().database("postgres"))
            .await
            .context("connecting to PostgreSQL")?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "create database \"{db_name}\""
        )))
        .execute(&mut admin)
        .await
        .context("create database")?;
        let db = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&database_url)
            .await?;
        std::fs::create_dir_all(log_dir)?;
        let port = free_port()?;
        let base_prefix = format!("pbench{stamp}");
        // PACER_BENCH_FRESH_CONNECTIONS=1: no keep-alive (a diagnostic: a new connection per
        // request starts in TCP quick-ACK mode, which hides Nagle/delayed-ACK stalls)
        let fresh = std::env::var("PACER_BENCH_FRESH_CONNECTIONS").is_ok_and(|v| v == "1");
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(if fresh { 0 } else { 256 })
            .build()?;
        Ok(Self {
            server: server.to_owned(),
            db_name,
            database_url,
            redis_url: redis_url.to_owned(),
            prefix: format!("{base_prefix}s0"),
            base_prefix,
            scenario_no: 0,
            port,
            bin_dir: bin_dir.to_owned(),
            log_dir: log_dir.to_owned(),
            secret: format!("bench-{}", Uuid::new_v4().simple()),
            http,
            db,
            api: None,
            workers: Vec::new(),
            worker_concurrency,
            n_spawned: 0,
        })
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn env(&self) -> Vec<(String, String)> {
        // the product's log filter (`RUST_LOG`) for the spawned processes: quiet unless asked
        let log = std::env::var("PACER_BENCH_LOG").unwrap_or_else(|_| "warn".to_owned());
        [
            ("DATABASE_URL", self.database_url.as_str()),
            ("REDIS_URL", self.redis_url.as_str()),
            ("PACER_REDIS_PREFIX", self.prefix.as_str()),
            ("PACER_JWT_SECRET", self.secret.as_str()),
            ("PACER_BIND", &format!("127.0.0.1:{}", self.port)),
            ("PACER_LOG_FORMAT", "text"),
            ("RUST_LOG", log.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn spawn(&mut self, bin: &str, args: &[&str], extra: &[(&str, &str)]) -> Result<Proc> {
        self.n_spawned += 1;
        let log = self
            .log_dir
            .join(format!("{:03}-{}-{bin}.log", self.n_spawned, self.prefix));
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(self.bin_dir.join(bin));
        cmd.args(args)
            .envs(self.env())
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().with_context(|| format!("spawning {bin}"))?;
        Ok(Proc { child })
    }

    pub async fn start_api(&mut self, extra: &[(&str, &str)]) -> Result<()> {
        self.api = None;
        let p = self.spawn("pacer-api", &[], extra)?;
        self.api = Some(p);
        let url = format!("{}/readyz", self.base());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = self.http.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if let Some(api) = self.api.as_mut()
                && let Ok(Some(status)) = api.child.try_wait()
            {
                bail!(
                    "pacer-api exited at start-up ({status}); see {}",
                    self.log_dir.display()
                );
            }
            if Instant::now() > deadline {
                bail!("pacer-api not ready after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn api_pid(&self) -> Option<u32> {
        self.api.as_ref().map(Proc::pid)
    }

    pub fn start_worker(&mut self, extra: &[(&str, &str)]) -> Result<u32> {
        // PostgreSQL here allows 100 connections: 4 workers × 12 + the API's 20 leave room
        let pool = WORKER_DB_POOL.to_string();
        let concurrency = self.worker_concurrency.to_string();
        let mut env: Vec<(&str, &str)> = vec![
            ("PACER_DB_MAX_CONNECTIONS", pool.as_str()),
            ("PACER_CONCURRENCY", concurrency.as_str()),
        ];
        env.extend_from_slice(extra);
        let p = self.spawn("pacer-worker", &[], &env)?;
        let pid = p.pid();
        self.workers.push(p);
        Ok(pid)
    }

    pub fn stop_workers(&mut self) {
        self.workers.clear();
    }

    pub fn stop_all(&mut self) {
        self.workers.clear();
        self.api = None;
    }

    /// Runs `pacer-api <args>` to completion (e.g. the synthetic data generator).
    pub async fn run_api_command(&mut self, args: &[&str]) -> Result<String> {
        let mut p = self.spawn("pacer-api", args, &[])?;
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if let Some(status) = p.child.try_wait()? {
                if !status.success() {
                    bail!("pacer-api {} failed: {status}", args.join(" "));
                }
                return Ok(String::new());
            }
            if Instant::now() > deadline {
                bail!("pacer-api {} did not finish in 600 s", args.join(" "));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops every process, empties the jobs table and moves to a fresh Redis prefix (the old
    /// one's keys are deleted).
    pub async fn reset(&mut self) -> Result<()> {
        self.stop_all();
        self.clean_prefix().await?;
        sqlx::query("truncate jobs").execute(&self.db).await.ok();
        self.scenario_no += 1;
        self.prefix = format!("{}s{}", self.base_prefix, self.scenario_no);
        Ok(())
    }

    /// Deletes every key under the current prefix (SCAN + UNLINK; never FLUSHALL).
    pub async fn clean_prefix(&self) -> Result<u64> {
        let client = redis::Client::open(self.redis_url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let pattern = format!("{}:*", self.prefix);
        let mut cursor: u64 = 0;
        let mut deleted = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            if !keys.is_empty() {
                let n: u64 = redis::cmd("UNLINK")
                    .arg(&keys)
                    .query_async(&mut conn)
                    .await?;
                deleted += n;
            }
            cursor = next;
            if cursor == 0 {
                return Ok(deleted);
            }
        }
    }

    /// Stops everything, deletes the Redis keys and drops the database.
    pub async fn destroy(mut self) -> Result<()> {
        self.stop_all();
        self.clean_prefix().await.ok();
        self.db.close().await;
        let options: sqlx::postgres::PgConnectOptions = self.server.parse()?;
        let mut admin = sqlx::ConnectOptions::connect(&options.database("postgres")).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "drop database if exists \"{}\" with (force)",
            self.db_name
        )))
        .execute(&mut admin)
        .await?;
        Ok(())
    }

    pub fn token(&self, sub: &str, role: &str, org: &str) -> String {
        let claims = json!({"sub": sub, "role": role, "org_id": org,
            "exp": chrono::Utc::now().timestamp() + 6 * 3600});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(self.secret.as_bytes()),
        )
        .unwrap_or_default()
    }

    pub fn admin(&self) -> String {
        self.token("usr_bench_admin", "admin", "org_platform")
    }

    pub fn coach(&self) -> String {
        self.token("usr_bench_coach", "coach", ORG)
    }

    /// Creates the benchmark organization with the `coach_agent` feature.
    pub async fn create_org(&self) -> Result<()> {
        let res = self
            .http
            .put(format!("{}/api/v1/admin/orgs/{ORG}", self.base()))
            .bearer_auth(self.admin())
            .json(&json!({"name": "Bench Running Club", "features": ["coach_agent"]}))
            .send()
            .await?;
        expect_status(res, 200).await?;
        Ok(())
    }

    /// The input of the cheapest rules `generate_draft` job.
    pub fn draft_body(weeks: u32) -> Value {
        json!({"kind": "generate_draft", "input": {"weeks": weeks, "level": "beginner", "org_id": ORG}})
    }

    pub fn client(&self) -> Api {
        Api {
            http: self.http.clone(),
            base: self.base(),
        }
    }

    pub async fn submit(&self, token: &str, body: &Value) -> Result<Uuid> {
        self.client().submit(token, body).await
    }

    pub async fn follow(&self, token: &str, id: Uuid, timeout: Duration) -> Result<Vec<Arrival>> {
        self.client().follow(token, id, timeout).await
    }

    pub async fn wait_finished(&self, token: &str, id: Uuid, timeout: Duration) -> Result<Value> {
        self.client().wait_finished(token, id, timeout).await
    }

    /// One job submitted and followed to `done` (checks the system answers end to end).
    pub async fn warm_up(&self, token: &str) -> Result<()> {
        let id = self.submit(token, &Self::draft_body(1)).await?;
        let events = self.follow(token, id, Duration::from_secs(60)).await?;
        if events.last().is_none_or(|e| e.kind != "done") {
            bail!("warm-up job {id} did not reach done: {events:?}");
        }
        Ok(())
    }

    /// A value of the API's Prometheus metrics (first sample whose line starts with `name`).
    pub async fn api_metric(&self, name: &str) -> Option<f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base()))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
    }
}

pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A cheap, cloneable HTTP client of the deployment's API (for spawned tasks).
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    /// `POST /api/v1/jobs`; returns the job id.
    pub async fn submit(&self, token: &str, body: &Value) -> Result<Uuid> {
        let res = self
            .http
            .post(format!("{}/api/v1/jobs", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        let v = expect_status(res, 202).await?;
        let id = v["data"]["job_id"]
            .as_str()
            .ok_or_else(|| anyhow!("no job_id in {v}"))?;
        Ok(Uuid::parse_str(id)?)
    }

    /// Opens the job's event stream; returns once the response headers are in.
    pub async fn open_events(&self, token: &str, id: Uuid) -> Result<reqwest::Response> {
        let res = self
            .http
            .get(format!("{}/api/v1/jobs/{id}/events", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        if res.status() != 200 {
            bail!("events of {id}: HTTP {}", res.status());
        }
        Ok(res)
    }

    /// Follows a job's events to `done`.
    pub async fn follow(&self, token: &str, id: Uuid, timeout: Duration) -> Result<Vec<Arrival>> {
        let res = self.open_events(token, id).await?;
        read_sse(res, timeout).await
    }

    pub async fn job(&self, token: &str, id: Uuid) -> Result<Value> {
        let res = self
            .http
            .get(format!("{}/api/v1/jobs/{id}", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        Ok(expect_status(res, 200).await?["data"].clone())
    }

    /// Polls the job until it is finished; returns it.
    pub async fn wait_finished(&self, token: &str, id: Uuid, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self.job(token, id).await?;
            let state = job["state"].as_str().unwrap_or_default();
            if ["succeeded", "failed", "cancelled"].contains(&state) {
                return Ok(job);
            }
            if Instant::now() > deadline {
                bail!("job {id} still {state} after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
