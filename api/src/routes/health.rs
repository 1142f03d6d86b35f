use std::time::Duration;

use pacer_common::jobs::Queue;
use salvo::prelude::*;

use crate::schemas as s;
use serde_json::json;

use crate::auth::app_state;
use crate::error::ApiError;

pub fn router() -> Router {
    Router::new()
        .push(Router::with_path("healthz").get(healthz))
        .push(Router::with_path("readyz").get(readyz))
        .push(Router::with_path("metrics").get(metrics_text))
}

/// Liveness: the process answers.
#[endpoint(
    tags("health"),
    summary = "Liveness",
    responses(
        (status_code = 200, description = "The process answers", body = s::Healthz),
    ),
    status_codes(200)
)]
async fn healthz(res: &mut Response) {
    res.render(Json(json!({"status": "ok"})));
}

/// Readiness: PostgreSQL answers, Redis takes a write, and the process is not shutting down.
#[endpoint(
    tags("health"),
    summary = "Readiness: PostgreSQL answers and Redis takes a write",
    responses(
        (status_code = 200, description = "Ready", body = s::Readyz),
        (status_code = 503, description = "A dependency does not answer, or the process is shutting down (`draining`)", body = s::Readyz),
    ),
    status_codes(200, 503, 500)
)]
async fn readyz(depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    let state = app_state(depot)?;
    let pg = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query("select 1").execute(&state.db),
    )
    .await;
    let pg_ok = matches!(pg, Ok(Ok(_)));
    let redis_ok = redis_takes_writes(state).await;
    let draining = state.draining.is_cancelled();
    let status = if draining {
        "draining"
    } else if pg_ok && redis_ok {
        "ok"
    } else {
        "unavailable"
    };
    let body = json!({"status": status, "postgres": pg_ok, "redis": redis_ok});
    if draining || !(pg_ok && redis_ok) {
        res.status_code(StatusCode::SERVICE_UNAVAILABLE);
    }
    res.render(Json(body));
    Ok(())
}

/// Whether Redis takes a write: one that answers `PING` may refuse writes (`OOM` at its
/// `maxmemory`, a `READONLY` replica after a failover, `LOADING`), and submissions need them.
/// The first command on a connection Redis dropped (a restart) fails and reconnects: once more.
async fn redis_takes_writes(state: &crate::state::AppState) -> bool {
    for _ in 0..2 {
        let mut conn = state.redis.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(state.keys.readiness_probe())
            .arg(1)
            .arg("EX")
            .arg(60);
        let set = cmd.query_async::<()>(&mut conn);
        match tokio::time::timeout(Duration::from_secs(2), set).await {
            Ok(Ok(())) => return true,
            Ok(Err(e)) if e.is_connection_dropped() || e.is_io_error() => continue,
            _ => return false,
        }
    }
    false
}

/// Prometheus text format. Queue depths and job counts are read at scrape time.
#[endpoint(
    tags("health"),
    summary = "Prometheus metrics",
    responses(
        (status_code = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain"),
    ),
    status_codes(200, 500, 503)
)]
async fn metrics_text(depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    let state = app_state(depot)?;
    let mut conn = state.redis.clone();
    for q in Queue::ALL {
        if let Ok(depth) = pacer_common::queue::depth(&mut conn, state.apalis(q)).await {
            metrics::gauge!("pacer_queue_depth", "queue" => q.as_str()).set(depth as f64);
        }
    }
    if let Ok(counts) = pacer_common::db::jobs::counts(&state.db).await {
        for (kind, job_state, n) in counts {
            metrics::gauge!("pacer_jobs", "kind" => kind, "state" => job_state).set(n as f64);
        }
    }
    metrics::gauge!("pacer_sse_jobs_watched").set(state.hub.jobs_watched() as f64);
    let text = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    res.add_header("content-type", "text/plain; version=0.0.4", true)
        .ok();
    res.render(text);
    Ok(())
}
