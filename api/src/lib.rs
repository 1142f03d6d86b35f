#![doc = include_str!("../README.md")]

pub mod auth;
pub mod config;
pub mod error;
pub mod guard;
pub mod hub;
pub mod jobs;
pub mod openapi;
pub mod routes;
pub mod schemas;
pub mod sse;
pub mod state;

use std::time::Duration;

use anyhow::Context;
use pacer_common::auth::Verifier;
use pacer_common::keys::Keys;
use salvo::conn::tcp::TcpAcceptor;
use salvo::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::config::ApiConfig;
use crate::hub::Hub;
use crate::state::AppState;

/// Serves until SIGTERM/SIGINT (and `PACER_SHUTDOWN_DELAY_SECS` more, reporting `draining`),
/// then drains in-flight requests for up to 10 s; SSE streams end at once (clients resume on
/// another process with `Last-Event-ID`).
pub async fn serve(config: ApiConfig) -> anyhow::Result<()> {
    let verifier = Verifier::new(
        config.jwt_secret.as_deref(),
        config.jwt_public_key_file.as_deref(),
        config.jwt_issuer.as_deref(),
        config.jwt_audience.as_deref(),
    )?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
        .ok();
    if metrics.is_some() {
        pacer_common::telemetry::zero_counters(pacer_common::telemetry::Process::Api);
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
    let redis = match redis_client
        .get_connection_manager_with_config(fail_fast())
        .await
    {
        Ok(redis) => redis,
        Err(e) => {
            // submissions need only PostgreSQL (the dispatchers push them later): serve anyway
            tracing::warn!(error = %e, "Redis cannot be reached; starting without it (jobs wait in PostgreSQL, /readyz says so)");
            redis::aio::ConnectionManager::new_lazy_with_config(redis_client.clone(), fail_fast())
                .context("Redis (REDIS_URL)")?
        }
    };
    let keys = Keys::new(config.common.redis_prefix.clone());
    let stop = CancellationToken::new();
    let hub = Hub::default();
    tokio::spawn(
        hub.clone()
            .run(redis_client, keys.events_channel(), stop.clone()),
    );

    let bind = config.bind.clone();
    let delay = Duration::from_secs(config.shutdown_delay_secs);
    let state = AppState::new(config, db, redis, keys, verifier, hub, metrics);
    let draining = state.draining.clone();
    let acceptor =
        listen(&bind).with_context(|| format!("cannot listen on {bind} (PACER_BIND)"))?;
    tracing::info!(%bind, "pacer-api listening");
    let server = Server::new(acceptor);
    let handle = server.handle();
    tokio::spawn(async move {
        pacer_common::lifecycle::shutdown_signal().await;
        draining.cancel();
        if !delay.is_zero() {
            tracing::info!(
                delay_secs = delay.as_secs(),
                "draining: /readyz answers 503 until the listener closes"
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = pacer_common::lifecycle::shutdown_signal() => {}
            }
        }
        tracing::info!("shutting down");
        stop.cancel();
        handle.stop_graceful(Some(Duration::from_secs(10)));
    });
    server.serve(routes::service(state)).await;
    Ok(())
}

/// The API's Redis connection gives up on a reconnect after one retry (~0.1–0.2 s) instead of
/// the redis crate's six (~6–10 s with backoff, which every command waits out in turn): while
/// Redis is down a submission then answers at once (its job waits in PostgreSQL for a
/// worker's dispatcher, as above the high-water mark) instead of after ~10 s. The next command
/// after Redis is back reconnects.
///
/// Its answer bound is 5 s, not the crate's 500 ms: every SSE replay shares this one
/// connection, so a command's answer waits behind the replies queued before it (a hundred
/// clients replaying a year's plan at once), and at 500 ms streams ended early.
fn fail_fast() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(200))
        .set_response_timeout(Some(Duration::from_secs(5)))
}

/// Binds the listening socket with `TCP_NODELAY`, which Linux passes on to accepted
/// connections: SSE events are small writes, and Nagle's algorithm would hold each one back
/// until the client's delayed ACK (~40 ms).
fn listen(bind: &str) -> anyhow::Result<TcpAcceptor> {
    let addr: std::net::SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(bind)?
        .next()
        .ok_or_else(|| anyhow::anyhow!("no address"))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    Ok(TcpAcceptor::try_from(socket.listen(1024)?)?)
}
