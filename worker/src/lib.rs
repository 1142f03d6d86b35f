#![doc = include_str!("../README.md")]

pub mod config;
pub mod context;
pub mod jobs;
pub mod llm;
pub mod maintenance;
pub mod runner;
pub mod wake;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use apalis::layers::retry::HasherRng;
use apalis::layers::retry::backoff::{Backoff, ExponentialBackoffMaker, MakeBackoff};
use apalis::prelude::*;
use apalis_redis::RedisStorage;
use pacer_common::error::redis_unavailable;
use pacer_common::jobs::JobMessage;
use pacer_common::lifecycle::{shutdown_signal, until_reachable};
use tokio_util::sync::CancellationToken;

use crate::config::WorkerConfig;
use crate::context::{WorkerCtx, worker_name};

/// Runs until SIGTERM/SIGINT: running jobs get the grace period, then go back to the queue.
pub async fn run(config: WorkerConfig) -> anyhow::Result<()> {
    if !config.metrics_bind.is_empty() {
        let addr: std::net::SocketAddr = config
            .metrics_bind
            .parse()
            .context("PACER_WORKER_METRICS_BIND")?;
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .context("cannot serve metrics on PACER_WORKER_METRICS_BIND")?;
        pacer_common::telemetry::zero_counters(pacer_common::telemetry::Process::Worker);
    }
    let Some(db) = pacer_common::db::connect_when_reachable(
        &config.common.database_url,
        config.common.db_max_connections,
    )
    .await
    .context("PostgreSQL (DATABASE_URL)")?
    else {
        return Ok(());
    };
    let redis_client =
        redis::Client::open(config.common.redis_url.as_str()).context("REDIS_URL")?;
    // one connection try per wait (the connection manager alone retries for ~10 s, then fails)
    let Some(redis) = until_reachable("Redis", redis_unavailable, || async {
        redis_client.get_multiplexed_async_connection().await?;
        redis_client.get_connection_manager().await
    })
    .await
    .transpose()
    .context("Redis (REDIS_URL)")?
    else {
        return Ok(());
    };
    let name = worker_name();
    let ctx = WorkerCtx::new(config.clone(), name.clone(), db, redis.clone())
        .context("PACER_LLM_PROVIDER settings")?;
    let stop = CancellationToken::new();
    maintenance::spawn_all(&ctx, &stop);
    tracing::info!(worker = %name, queues = ?config.queues, concurrency = config.concurrency, "pacer-worker started");

    let grace = config.shutdown_grace();
    // set by the first SIGTERM/SIGINT: the grace period counts from it
    let stopping_since = Arc::new(std::sync::OnceLock::new());
    let mut monitor = Monitor::new()
        .should_restart(|w, err| {
            tracing::error!(worker = w.name(), error = %err, "worker stopped with an error; restarting");
            metrics::counter!("pacer_loop_restarts_total").increment(1);
            true
        })
        .with_terminator(async move {
            // polled from the first signal on: the grace period, or a second signal ends it
            tokio::select! {
                _ = tokio::time::sleep(grace) => {}
                _ = shutdown_signal() => tracing::warn!("second signal: ending the grace period now"),
            }
        });
    let mut all_slots = Vec::new();
    // each queue's current apalis worker name (a restarted loop takes a new one)
    let loop_names: Arc<std::sync::Mutex<Vec<(String, String)>>> = Arc::default();
    for &queue in &config.queues {
        let storage: RedisStorage<JobMessage> =
            RedisStorage::new(redis.clone()).with_config(ctx.apalis(queue).clone());
        let strategy = Strategy::new().apply(wake::WakeStrategy::new(
            wake::subscribe(
                redis_client.clone(),
                ctx.keys.wake_channel(queue),
                stop.clone(),
            ),
            Duration::from_millis(config.poll_interval_ms.max(10)),
        ));
        let ctx = ctx.clone();
        let base = name.clone();
        let concurrency = config.concurrency as usize;
        let names = loop_names.clone();
        let workers_set = ctx.apalis(queue).workers_set();
        let pace = RestartPace::new(config.common.heartbeat());
        // outlives the worker loops apalis restarts, so runs detached from a dropped loop
        // still count against the queue's concurrency
        let slots = Slots(Arc::new(tokio::sync::Semaphore::new(concurrency)));
        all_slots.push((slots.clone(), concurrency));
        monitor = monitor.register(move |restarts| {
            // a restarted worker needs a fresh name: apalis refuses a name seen alive recently
            let worker = if restarts == 0 {
                base.clone()
            } else {
                pace.wait();
                format!("{base}-r{restarts}")
            };
            if let Ok(mut names) = names.lock() {
                names.retain(|(set, _)| *set != workers_set);
                names.push((workers_set.clone(), worker.clone()));
            }
            WorkerBuilder::new(worker)
                .backend(storage.clone().poll_with_strategy(strategy.clone()))
                .data(ctx.clone())
                .data(slots.clone())
                .concurrency(concurrency)
                .catch_panic()
                .build(handle)
        });
        tracing::debug!(queue = queue.as_str(), "queue registered");
    }
    let since = stopping_since.clone();
    let stopped = CancellationToken::new();
    let (keep, heartbeat) = (stopped.clone(), config.common.heartbeat());
    let result = monitor
        .run_with_signal(async move {
            shutdown_signal().await;
            let _ = since.set(tokio::time::Instant::now());
            tracing::info!("shutting down: no new jobs; running ones get the grace period");
            tokio::spawn(keep_registered(redis, loop_names, heartbeat, keep));
            Ok(())
        })
        .await;
    stopped.cancel();
    // apalis waits for its own handlers only: runs detached from a restarted loop get the rest
    // of the grace period too (each holds its queue's slot until it ends)
    if let Some(&since) = stopping_since.get() {
        let detached_done = async {
            for (slots, concurrency) in &all_slots {
                let all = u32::try_from(*concurrency).unwrap_or(u32::MAX);
                let _ = slots.0.acquire_many(all).await;
            }
        };
        tokio::select! {
            _ = tokio::time::timeout_at(since + grace, detached_done) => {}
            _ = shutdown_signal() => tracing::warn!("second signal: ending the grace period now"),
        }
    }
    stop.cancel();
    if let Err(e) = maintenance::hand_back(&ctx).await {
        tracing::error!(error = %e, "could not hand running jobs back");
    }
    result.context("worker monitor")?;
    Ok(())
}

/// While the grace period runs, apalis stops its workers' heartbeats: after the missed
/// heartbeats, a peer would take this process's in-flight tasks for orphans and re-queue them.
/// Each copy then finds its job running here and holds a slot of the peer in backoff, and this
/// process's acknowledgements fail. Keeping the loops' heartbeats (only those still registered)
/// until the monitor returns leaves the tasks here; what is still running at the end is handed
/// back.
async fn keep_registered(
    mut redis: redis::aio::ConnectionManager,
    loops: Arc<std::sync::Mutex<Vec<(String, String)>>>,
    every: Duration,
    stopped: CancellationToken,
) {
    loop {
        let names = loops.lock().map(|n| n.clone()).unwrap_or_default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for (set, worker) in names {
            let beat: redis::RedisResult<i64> = redis::cmd("ZADD")
                .arg(&set)
                .arg("XX")
                .arg(now)
                .arg(&worker)
                .query_async(&mut redis)
                .await;
            if let Err(e) = beat {
                tracing::warn!(error = %e, "heartbeat during shutdown failed");
            }
        }
        tokio::select! {
            _ = stopped.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// A queue's run slots in this process (`PACER_CONCURRENCY`). apalis bounds the handlers of
/// one worker loop; a run detached from a loop it dropped (see [`Detachable`]) keeps its slot
/// until it ends, so the restarted loop's handlers wait for it instead of running over the
/// bound.
#[derive(Clone)]
struct Slots(Arc<tokio::sync::Semaphore>);

/// Spaces out the restarts of one queue's apalis loop. apalis restarts a failed loop at once,
/// from inside its monitor's poll; while Redis refuses every command (at its `maxmemory`, a
/// replica after a failover, loading its data) each new loop fails on its first round trip,
/// which made thousands of restarts (and log lines) a second. A restart after a quiet spell
/// goes at once; each one soon after the last waits twice as long as before, up to the
/// heartbeat, so that the loop's registration is never silent for longer than that.
struct RestartPace {
    max: Duration,
    last: std::sync::Mutex<Option<(std::time::Instant, Duration)>>,
}

impl RestartPace {
    fn new(max: Duration) -> Arc<Self> {
        Arc::new(Self {
            max,
            last: std::sync::Mutex::new(None),
        })
    }

    fn wait(&self) {
        const FIRST: Duration = Duration::from_millis(50);
        let now = std::time::Instant::now();
        let pause = {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            let pause = match *last {
                Some((at, prev)) if now.duration_since(at) < self.max * 5 => {
                    (prev * 2).clamp(FIRST, self.max)
                }
                _ => Duration::ZERO,
            };
            *last = Some((now + pause, pause.max(FIRST / 2)));
            pause
        };
        if !pause.is_zero() {
            tracing::warn!(
                ?pause,
                "apalis loop failing repeatedly; pausing before its restart"
            );
            // the monitor's poll is synchronous; let the runtime move other tasks elsewhere
            tokio::task::block_in_place(|| std::thread::sleep(pause));
        }
    }
}

/// One delivery of a job: runs it, retrying transient failures in place with exponential
/// backoff and jitter. On shutdown a pending retry is handed to Redis, which re-schedules it.
async fn handle(
    msg: JobMessage,
    ctx: Data<Arc<WorkerCtx>>,
    slots: Data<Slots>,
    worker: WorkerContext,
) -> Result<(), BoxDynError> {
    let ctx: Arc<WorkerCtx> = (*ctx).clone();
    // held by this handler and by each run it starts, so a detached run keeps it
    let Slots(slots) = (*slots).clone();
    let slot = Arc::new(slots.acquire_owned().await?);
    let mut backoff = ExponentialBackoffMaker::new(
        Duration::from_millis(ctx.config.retry_base_ms),
        Duration::from_secs(ctx.config.retry_max_secs),
        0.5,
        HasherRng::default(),
    )
    .map_err(|e| format!("retry settings: {e:?}"))?
    .make_backoff();
    // a job leased by another worker is looked at again until that lease could have expired
    // (its owner died) and then left to the owner
    let busy_limit = ctx.config.common.job_lease() * 3;
    let mut busy_since = None;
    loop {
        let stopping = worker.clone();
        let run = Detachable::new(
            with_slot(slot.clone(), runner::run(ctx.clone(), msg.job_id)),
            move || !stopping.is_shutting_down(),
        );
        match run.await {
            Ok(()) => return Ok(()),
            Err(runner::JobError::Busy)
                if busy_since
                    .get_or_insert_with(std::time::Instant::now)
                    .elapsed()
                    > busy_limit =>
            {
                tracing::debug!(job.id = %msg.job_id, "leaving the job to the worker that holds it");
                return Ok(());
            }
            Err(e) if worker.is_shutting_down() => return Err(e.into()),
            Err(_) => backoff.next_backoff().await,
        }
    }
}

/// A job's run, holding its slot until it ends (in its handler or detached).
async fn with_slot<F: Future>(slot: Arc<tokio::sync::OwnedSemaphorePermit>, run: F) -> F::Output {
    let out = run.await;
    drop(slot);
    out
}

/// A job's run, polled in its handler (where the claims and terminal writes of the jobs in
/// flight meet in shared batches; a task per job made them smaller: +15–20 % PostgreSQL
/// commits per job end to end), that is not lost with the handler. apalis drops its in-flight
/// handlers when it restarts a worker after a Redis error; the run then moves to a task of its
/// own and finishes there, keeping its lease, instead of being aborted and run again later (a
/// model's minutes of work). Its delivery, left unacknowledged, finds the job finished (or
/// running here) when it comes back. A handler dropped at shutdown (the grace period is over)
/// aborts its run: the job is handed back.
struct Detachable<F: std::future::Future<Output = Result<(), runner::JobError>> + Send + 'static> {
    run: Option<std::pin::Pin<Box<F>>>,
    detach: Box<dyn Fn() -> bool + Send>,
}

impl<F: std::future::Future<Output = Result<(), runner::JobError>> + Send + 'static> Detachable<F> {
    fn new(run: F, detach: impl Fn() -> bool + Send + 'static) -> Self {
        Self {
            run: Some(Box::pin(run)),
            detach: Box::new(detach),
        }
    }
}

impl<F: std::future::Future<Output = Result<(), runner::JobError>> + Send + 'static>
    std::future::Future for Detachable<F>
{
    type Output = Result<(), runner::JobError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let Some(run) = self.run.as_mut() else {
            return std::task::Poll::Ready(Ok(()));
        };
        let out = std::task::ready!(run.as_mut().poll(cx));
        self.run = None;
        std::task::Poll::Ready(out)
    }
}

impl<F: std::future::Future<Output = Result<(), runner::JobError>> + Send + 'static> Drop
    for Detachable<F>
{
    fn drop(&mut self) {
        if let Some(run) = self.run.take()
            && (self.detach)()
        {
            metrics::counter!("pacer_runs_detached_total").increment(1);
            tokio::spawn(async move {
                if let Err(e) = run.await {
                    tracing::warn!(error = %e, "a run that outlived its handler failed; its delivery comes back");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    /// A run that waits for `go`, then reports on `done`.
    async fn run_until(
        go: oneshot::Receiver<()>,
        done: oneshot::Sender<()>,
    ) -> Result<(), runner::JobError> {
        let _ = go.await;
        let _ = done.send(());
        Ok(())
    }

    #[tokio::test]
    async fn a_detached_run_keeps_its_slot_until_it_ends() {
        let slots = Arc::new(tokio::sync::Semaphore::new(1));
        let slot = Arc::new(slots.clone().acquire_owned().await.unwrap());
        let (go_tx, go_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let mut run = Detachable::new(with_slot(slot.clone(), run_until(go_rx, done_tx)), || true);
        assert!(futures::poll!(&mut run).is_pending());
        // apalis drops the handler (and its own hold on the slot)
        drop(run);
        drop(slot);
        assert_eq!(
            slots.available_permits(),
            0,
            "the detached run still holds it"
        );
        let _ = go_tx.send(());
        let finished = tokio::time::timeout(Duration::from_secs(10), done_rx).await;
        assert!(matches!(finished, Ok(Ok(()))));
        let freed = tokio::time::timeout(Duration::from_secs(10), slots.acquire()).await;
        assert!(freed.is_ok(), "freed when the run ended");
    }

    #[tokio::test]
    async fn a_dropped_handlers_run_finishes_unless_the_worker_is_stopping() {
        for detach in [true, false] {
            let (go_tx, go_rx) = oneshot::channel();
            let (done_tx, done_rx) = oneshot::channel();
            let mut run = Detachable::new(run_until(go_rx, done_tx), move || detach);
            // polled once (waiting for `go`), then dropped as apalis drops a handler
            assert!(futures::poll!(&mut run).is_pending());
            drop(run);
            let _ = go_tx.send(());
            let finished = tokio::time::timeout(Duration::from_secs(10), done_rx).await;
            // detached: it finished in its own task; not detached: it was dropped unfinished
            assert_eq!(matches!(finished, Ok(Ok(()))), detach);
        }
    }
}
