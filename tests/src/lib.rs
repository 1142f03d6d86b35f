//! Test harness: each test gets its own PostgreSQL database and Redis key prefix (so tests run in
//! parallel on shared servers), starts the real `pacer-api` / `pacer-worker` binaries, and talks
//! HTTP and SSE to them. Tests that flush or kill Redis start their own `redis-server`.
//!
//! The binaries are found next to the test executable's `deps/` folder; build them first
//! (`cargo build --bins`, which `.ci/run` does).

pub mod fake_llm;
pub mod pg_proxy;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

pub const SECRET: &str = "pacer-test-secret";

pub fn database_server() -> String {
    std::env::var("PACER_TEST_DATABASE_SERVER")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn redis_url() -> String {
    std::env::var("PACER_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// `target/<profile>/<name>`, located from the running test binary (`target/<profile>/deps/…`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(name)
}

/// A port for a child process to listen on, kept bound (not listening) by this process until
/// dropped. An automatic port (`bind` to port 0) is never one a socket is bound to, so no
/// other test is given it meanwhile, as a port only looked up by [`free_port`] may be before
/// the child binds it; the child, binding with `SO_REUSEADDR` like this socket, still can.
pub fn reserve_port() -> Result<(u16, tokio::net::TcpSocket)> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let port = socket.local_addr()?.port();
    Ok((port, socket))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Waits for `f` to return `Some` (polling), or fails with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what} (last error: {last_err:?})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of `series` (a metric's name with its labels, as the Prometheus text format
/// writes them) in the text served at `http://{addr}/metrics`; 0 while absent.
pub async fn metric(http: &reqwest::Client, addr: &str, series: &str) -> Result<f64> {
    let text = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .unwrap_or(0.0))
}

/// A spawned binary, killed (SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap_or(0)
    }

    /// Sends a signal (`kill -SIG pid`): 9 = SIGKILL, 15 = SIGTERM.
    pub fn signal(&self, sig: i32) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status();
    }

    /// Waits for the process to exit; returns its status code.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<Option<i32>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.code());
            }
            if Instant::now() > deadline {
                bail!("{} did not exit within {timeout:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private redis-server on a random port (for tests that flush or kill Redis).
pub struct RedisServer {
    pub proc: Proc,
    pub url: String,
    pub port: u16,
    _dir: PathBuf,
}

impl RedisServer {
    pub async fn start() -> Result<Self> {
        Self::start_on(free_port()).await
    }

    /// A server on `port`: a restart of one that was stopped (empty: it keeps nothing on disk).
    pub async fn start_on(port: u16) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("pacer-redis-{}", Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir)?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("redis-server must be installed")?;
        let url = format!("redis://127.0.0.1:{port}");
        let server = Self {
            proc: Proc {
                child,
                name: "redis-server",
            },
            url: url.clone(),
            port,
            _dir: dir,
        };
        eventually(Duration::from_secs(10), "redis-server to answer", || {
            let url = url.clone();
            async move {
                let client = redis::Client::open(url.as_str())?;
                let mut c = client.get_multiplexed_async_connection().await?;
                let pong: String = redis::cmd("PING").query_async(&mut c).await?;
                Ok((pong == "PONG").then_some(()))
            }
        })
        .await?;
        Ok(server)
    }
}

/// One isolated Pacer deployment: a fresh database, a Redis prefix, processes and a client.
pub struct TestApp {
    pub db_name: String,
    pub database_url: String,
    pub redis_url: String,
    pub prefix: String,
    pub port: u16,
    pub api: Option<Proc>,
    pub workers: Vec<Proc>,
    pub http: reqwest::Client,
    pub env: HashMap<String, String>,
    pub db: sqlx::PgPool,
    /// Keeps `port` for this deployment's API (see [`reserve_port`]).
    _port_reservation: tokio::net::TcpSocket,
}

impl TestApp {
    /// Settings for a new deployment; nothing started yet.
    pub async fn new() -> Result<Self> {
        Self::with_redis(&redis_url()).await
    }

    pub async fn with_redis(redis_url: &str) -> Result<Self> {
        let id = Uuid::now_v7().simple().to_string();
        let db_name = format!("pacer_test_{id}");
        let database_url = format!("{}/{}", database_server(), db_name);
        let prefix = format!("t{id}");
        let (port, port_reservation) = reserve_port()?;
        let mut env = HashMap::new();
        for (k, v) in [
            ("DATABASE_URL", database_url.as_str()),
            ("REDIS_URL", redis_url),
            ("PACER_REDIS_PREFIX", prefix.as_str()),
            ("PACER_JWT_SECRET", SECRET),
            ("PACER_DB_MAX_CONNECTIONS", "8"),
            ("PACER_HEARTBEAT_SECS", "1"),
            ("PACER_MISSED_HEARTBEATS", "3"),
            ("PACER_RETRY_BASE_MS", "100"),
            ("PACER_RETRY_MAX_SECS", "2"),
            ("PACER_POLL_INTERVAL_MS", "200"),
            ("PACER_SSE_KEEPALIVE_SECS", "5"),
            ("RUST_LOG", "warn"),
        ] {
            env.insert(k.to_owned(), v.to_owned());
        }
        env.insert("PACER_BIND".into(), format!("127.0.0.1:{port}"));
        // create the database and apply migrations here, so the test can read it at once
        let options: sqlx::postgres::PgConnectOptions = database_server().parse()?;
        let mut admin =
            sqlx::ConnectOptions::connect(&options.clone().database("postgres")).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "create database \"{db_name}\""
        )))
        .execute(&mut admin)
        .await?;
        let db = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&database_url)
            .await?;
        Ok(Self {
            db_name,
            database_url,
            redis_url: redis_url.to_owned(),
            prefix,
            port,
            api: None,
            workers: Vec::new(),
            http: reqwest::Client::new(),
            env,
            db,
            _port_reservation: port_reservation,
        })
    }

    pub fn set(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    fn spawn(&self, name: &'static str, extra: &[(&str, &str)]) -> Result<Proc> {
        let path = bin(name);
        if !path.exists() {
            bail!(
                "{} not found: run `cargo build --bins` first",
                path.display()
            );
        }
        let mut cmd = Command::new(path);
        cmd.envs(&self.env).stdin(Stdio::null());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        if std::env::var("PACER_TEST_SHOW_LOGS").is_err() {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        Ok(Proc {
            child: cmd.spawn()?,
            name,
        })
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn start_api(&mut self) -> Result<()> {
        self.start_api_until("/readyz").await
    }

    /// Starts the API and waits until `path` (`/readyz`, or `/healthz` when a dependency is
    /// meant to be down) answers 2xx.
    pub async fn start_api_until(&mut self, path: &str) -> Result<()> {
        self.spawn_api()?;
        self.api_answers(path).await
    }

    /// Starts the API without waiting for it.
    pub fn spawn_api(&mut self) -> Result<()> {
        self.api = Some(self.spawn("pacer-api", &[])?);
        Ok(())
    }

    /// Waits until the API answers `path` with 2xx.
    pub async fn api_answers(&self, path: &str) -> Result<()> {
        let url = format!("{}{path}", self.base());
        let http = self.http.clone();
        eventually(Duration::from_secs(30), "pacer-api to be ready", || {
            let (url, http) = (url.clone(), http.clone());
            async move {
                Ok(http
                    .get(&url)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ()))
            }
        })
        .await
    }

    /// Starts a worker; returns its index in `workers`.
    pub fn start_worker(&mut self, extra: &[(&str, &str)]) -> Result<usize> {
        let p = self.spawn("pacer-worker", extra)?;
        self.workers.push(p);
        Ok(self.workers.len() - 1)
    }

    pub async fn start(&mut self) -> Result<()> {
        self.start_api().await?;
        self.start_worker(&[])?;
        Ok(())
    }

    pub fn token(&self, sub: &str, role: &str, org: &str) -> String {
        let claims = json!({"sub": sub, "role": role, "org_id": org, "exp": chrono::Utc::now().timestamp() + 3600});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap_or_default()
    }

    pub fn admin(&self) -> String {
        self.token("usr_admin", "admin", "org_platform")
    }

    pub fn coach(&self) -> String {
        self.token("usr_coach", "coach", "org_demo")
    }

    /// Creates `org_demo` with the given features.
    pub async fn org(&self, id: &str, features: &[&str]) -> Result<()> {
        let (status, body) = self
            .put(
                &self.admin(),
                &format!("/api/v1/admin/orgs/{id}"),
                &json!({"name": id, "features": features}),
            )
            .await?;
        if status != 200 {
            bail!("org upsert failed: {status} {body}");
        }
        Ok(())
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        token: Option<&str>,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base(), path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let text = res.text().await?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    pub async fn get(&self, token: &str, path: &str) -> Result<(u16, Value)> {
        self.request(reqwest::Method::GET, Some(token), path, None)
            .await
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> Result<(u16, Value)> {
        self.request(reqwest::Method::POST, Some(token), path, Some(body))
            .await
    }

    pub async fn put(&self, token: &str, path: &str, body: &Value) -> Result<(u16, Value)> {
        self.request(reqwest::Method::PUT, Some(token), path, Some(body))
            .await
    }

    pub async fn delete(&self, token: &str, path: &str) -> Result<(u16, Value)> {
        self.request(reqwest::Method::DELETE, Some(token), path, None)
            .await
    }

    /// Submits a job; returns its id.
    pub async fn submit(&self, token: &str, kind: &str, input: Value) -> Result<Uuid> {
        let (status, body) = self
            .post(
                token,
                "/api/v1/jobs",
                &json!({"kind": kind, "input": input}),
            )
            .await?;
        if status != 202 {
            bail!("submit failed: {status} {body}");
        }
        let id = body["data"]["job_id"]
            .as_str()
            .ok_or_else(|| anyhow!("no job_id in {body}"))?;
        Ok(Uuid::parse_str(id)?)
    }

    pub async fn job(&self, token: &str, id: Uuid) -> Result<Value> {
        let (status, body) = self.get(token, &format!("/api/v1/jobs/{id}")).await?;
        if status != 200 {
            bail!("get job failed: {status} {body}");
        }
        Ok(body["data"].clone())
    }

    /// Polls until the job is in `state`; fails early if it ends in another terminal state.
    pub async fn wait_state(
        &self,
        token: &str,
        id: Uuid,
        state: &str,
        timeout: Duration,
    ) -> Result<Value> {
        eventually(timeout, &format!("job {id} to be {state}"), || async {
            let job = self.job(token, id).await?;
            let s = job["state"].as_str().unwrap_or_default();
            if s == state {
                return Ok(Some(job));
            }
            if ["succeeded", "failed", "cancelled"].contains(&s) {
                bail!("job ended {s} instead of {state}: {job}");
            }
            Ok(None)
        })
        .await
    }

    /// Reads the job's SSE stream until it closes (or `limit` events); returns (id, event).
    pub async fn events(
        &self,
        token: &str,
        id: Uuid,
        last_event_id: Option<u64>,
        limit: Option<usize>,
    ) -> Result<Vec<(u64, Value)>> {
        let mut req = self
            .http
            .get(format!("{}/api/v1/jobs/{id}/events", self.base()))
            .bearer_auth(token);
        if let Some(n) = last_event_id {
            req = req.header("Last-Event-ID", n.to_string());
        }
        let res = req.send().await?;
        if res.status() != 200 {
            bail!("events: {}", res.status());
        }
        read_sse(res, limit, Duration::from_secs(120)).await
    }

    pub async fn redis(&self) -> Result<redis::aio::MultiplexedConnection> {
        Ok(redis::Client::open(self.redis_url.as_str())?
            .get_multiplexed_async_connection()
            .await?)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.api.take();
        self.workers.clear();
        // best effort: the database is private to this test
        let _ = Command::new("dropdb")
            .args([
                "--if-exists",
                "--force",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                &self.db_name,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Parses an SSE body into (id, JSON data) until the server closes it, `limit` events arrive,
/// or `timeout` passes.
pub async fn read_sse(
    res: reqwest::Response,
    limit: Option<usize>,
    timeout: Duration,
) -> Result<Vec<(u64, Value)>> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut body = res.bytes_stream();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .map_err(|_| anyhow!("SSE stream did not finish in {timeout:?}; got {out:?}"))?;
        let Some(chunk) = chunk else { return Ok(out) };
        buf.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let mut id = None;
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse::<u64>().ok();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if let Some(id) = id {
                out.push((id, serde_json::from_str(&data)?));
                if limit.is_some_and(|l| out.len() >= l) {
                    return Ok(out);
                }
            }
        }
    }
}

/// The event types of a stream, in order.
pub fn types(events: &[(u64, Value)]) -> Vec<String> {
    events
        .iter()
        .map(|(_, e)| e["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}
