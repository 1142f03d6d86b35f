#![doc = include_str!("../README.md")]

pub mod config;
pub mod context;
pub mod jobs;
pub mod llm;
pub mod maintenance;
pub mod runner;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use apalis::layers::retry::HasherRng;
use apalis::layers::retry::backoff::{Backoff, ExponentialBackoffMaker, MakeBackoff};
use apalis::prelude::*;
use apalis_redis::RedisStorage;
use futures::StreamExt;
use pacer_common::jobs::JobMessage;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
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
    }
    let db = pacer_common::db::connect(
        &config.common.database_url,
        config.common.db_max_connections,
    )
    .await
    .context("PostgreSQL (DATABASE_URL)")?;
    let redis_client =
        redis::Client::open(config.common.redis_url.as_str()).context("REDIS_URL")?;
    let redis = apalis_redis::connect(config.common.redis_url.as_str())
        .await
        .context("Redis (REDIS_URL)")?;
    let name = worker_name();
    let ctx = WorkerCtx::new(config.clone(), name.clone(), db, redis.clone())
        .context("PACER_LLM_PROVIDER settings")?;
    let stop = CancellationToken::new();
    maintenance::spawn_all(&ctx, &stop);
    tracing::info!(worker = %name, queues = ?config.queues, concurrency = config.concurrency, "pacer-worker started");

    let mut monitor = Monitor::new()
        .should_restart(|w, err| {
            tracing::error!(worker = w.name(), error = %err, "worker stopped with an error; restarting");
            true
        })
        .shutdown_timeout(config.shutdown_grace());
    for &queue in &config.queues {
        let storage: RedisStorage<JobMessage> =
            RedisStorage::new(redis.clone()).with_config(ctx.apalis(queue).clone());
        let strategy = Strategy::new()
            .stream(wake_stream(
                redis_client.clone(),
                ctx.keys.wake_channel(queue),
                stop.clone(),
            ))
            .interval(Duration::from_millis(config.poll_interval_ms.max(10)));
        let ctx = ctx.clone();
        let base = name.clone();
        let concurrency = config.concurrency as usize;
        monitor = monitor.register(move |restarts| {
            // a restarted worker needs a fresh name: apalis refuses a name seen alive recently
            let worker = if restarts == 0 {
                base.clone()
            } else {
                format!("{base}-r{restarts}")
            };
            WorkerBuilder::new(worker)
                .backend(storage.clone().poll_with_strategy(strategy.clone()))
                .data(ctx.clone())
                .concurrency(concurrency)
                .catch_panic()
                .build(handle)
        });
        tracing::debug!(queue = queue.as_str(), "queue registered");
    }
    let result = monitor
        .run_with_signal(async {
            pacer_common_shutdown().await;
            tracing::info!("shutting down: no new jobs; running ones get the grace period");
            Ok(())
        })
        .await;
    stop.cancel();
    if let Err(e) = maintenance::hand_back(&ctx).await {
        tracing::error!(error = %e, "could not hand running jobs back");
    }
    result.context("worker monitor")?;
    Ok(())
}

/// One delivery of a job: runs it, retrying transient failures in place with exponential
/// backoff and jitter. On shutdown a pending retry is handed to Redis, which re-schedules it.
async fn handle(
    msg: JobMessage,
    ctx: Data<Arc<WorkerCtx>>,
    worker: WorkerContext,
) -> Result<(), BoxDynError> {
    let ctx: Arc<WorkerCtx> = (*ctx).clone();
    let mut backoff = ExponentialBackoffMaker::new(
        Duration::from_millis(ctx.config.retry_base_ms.max(1)),
        Duration::from_secs(ctx.config.retry_max_secs.max(1)),
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
        match runner::run(ctx.clone(), msg.job_id).await {
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

/// Wake-ups published by producers after each push (apalis-redis 1.0 publishes none for
/// normal pushes). Reconnects on its own; a missed wake-up only costs one poll interval.
///
/// Each wake-up is followed by two more ([`FOLLOW_UPS`]): apalis-core's `PollWith` drains the
/// strategy before polling the backend and ignores the result, so a wake-up that arrives while
/// a fetch is in flight is used up by that fetch; if the fetch ran in Redis just before the
/// push, the job would wait for the next poll interval.
fn wake_stream(
    client: redis::Client,
    channel: String,
    stop: CancellationToken,
) -> ReceiverStream<()> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        // a full channel already holds a wake-up: coalesce
        let wake = || {
            let _ = tx.try_send(());
        };
        loop {
            let sub = async {
                let mut ps = client.get_async_pubsub().await?;
                ps.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(ps)
            };
            match sub.await {
                Ok(ps) => {
                    let mut messages = ps.into_on_message();
                    let mut follow_ups: std::collections::VecDeque<Instant> = Default::default();
                    loop {
                        let next_follow_up = follow_ups.front().copied();
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            m = messages.next() => match m {
                                Some(_) => {
                                    wake();
                                    // one pending schedule at a time: under load wake-ups are
                                    // frequent anyway
                                    if follow_ups.is_empty() {
                                        let now = Instant::now();
                                        follow_ups.extend(FOLLOW_UPS.iter().map(|d| now + *d));
                                    }
                                }
                                None => break,
                            },
                            _ = sleep_until_some(next_follow_up) => {
                                follow_ups.pop_front();
                                wake();
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(%channel, error = %e, "wake-up subscription failed; retrying")
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });
    ReceiverStream::new(rx)
}

/// When a wake-up is repeated, after the first (see [`wake_stream`]).
const FOLLOW_UPS: [Duration; 2] = [Duration::from_millis(5), Duration::from_millis(25)];

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn pacer_common_shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
