//! Streams one job's events: subscribe in process first, replay the log after `Last-Event-ID`,
//! then forward live events, dropping any number already sent. Closes after `done`.

use std::convert::Infallible;
use std::time::Duration;

use pacer_common::db::jobs::get_job;
use pacer_common::events::{NumberedEvent, final_events_from_row, read_log};
use salvo::prelude::*;
use salvo::sse::{SseEvent, SseKeepAlive};
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use crate::hub::HubMsg;
use crate::state::AppState;

/// Starts streaming `job_id`'s events after `after` into `res`.
pub fn stream_job(state: AppState, job_id: Uuid, after: u64, res: &mut Response) {
    let (tx, rx) = mpsc::channel::<Result<SseEvent, Infallible>>(256);
    let keepalive = state.config.sse_keepalive();
    tokio::spawn(async move {
        if let Err(e) = pump(&state, job_id, after, &tx).await {
            tracing::warn!(job.id = %job_id, error = %e, "event stream ended early");
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    res.headers_mut().insert(
        "x-accel-buffering",
        salvo::http::HeaderValue::from_static("no"),
    );
    SseKeepAlive::new(stream)
        .max_interval(keepalive)
        .stream(res);
}

enum Flow {
    Continue,
    Finished,
}

struct Cursor<'a> {
    tx: &'a mpsc::Sender<Result<SseEvent, Infallible>>,
    last: u64,
}

impl Cursor<'_> {
    /// Sends `ev` unless already sent. `Finished` after `done` or when the client is gone.
    async fn send(&mut self, ev: &NumberedEvent) -> Flow {
        if ev.id <= self.last {
            return Flow::Continue;
        }
        let sse = SseEvent::default()
            .id(ev.id.to_string())
            .text(ev.data.clone());
        if self.tx.send(Ok(sse)).await.is_err() {
            return Flow::Finished;
        }
        self.last = ev.id;
        if ev.is_done() {
            Flow::Finished
        } else {
            Flow::Continue
        }
    }
}

async fn pump(
    state: &AppState,
    job_id: Uuid,
    after: u64,
    tx: &mpsc::Sender<Result<SseEvent, Infallible>>,
) -> anyhow::Result<()> {
    let mut sub = state.hub.subscribe(job_id);
    let mut cursor = Cursor { tx, last: after };
    if let Flow::Finished = catch_up(state, job_id, &mut cursor).await? {
        return Ok(());
    }
    // a quiet stream is re-checked against PostgreSQL now and then, in case a notice was lost
    let recheck = Duration::from_secs(10);
    loop {
        tokio::select! {
            _ = tx.closed() => return Ok(()),
            msg = sub.rx.recv() => {
                let flow = match msg {
                    Ok(HubMsg::Event(ev)) if ev.id == cursor.last + 1 => cursor.send(&ev).await,
                    Ok(HubMsg::Event(ev)) if ev.id <= cursor.last => Flow::Continue,
                    // a gap, a lag or a resubscription: the log has everything in order
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => catch_up(state, job_id, &mut cursor).await?,
                    Err(broadcast::error::RecvError::Closed) => Flow::Finished,
                };
                if let Flow::Finished = flow {
                    return Ok(());
                }
            }
            _ = tokio::time::sleep(recheck) => {
                if let Flow::Finished = catch_up(state, job_id, &mut cursor).await? {
                    return Ok(());
                }
            }
        }
    }
}

/// Sends what the log holds after the cursor; for a finished job whose log is gone, the final
/// events rebuilt from its row.
async fn catch_up(state: &AppState, job_id: Uuid, cursor: &mut Cursor<'_>) -> anyhow::Result<Flow> {
    let mut conn = state.redis.clone();
    let logged = read_log(&mut conn, &state.keys, job_id, cursor.last).await?;
    for ev in &logged {
        if let Flow::Finished = cursor.send(ev).await {
            return Ok(Flow::Finished);
        }
    }
    let Some(row) = get_job(&state.db, job_id).await? else {
        return Ok(Flow::Finished);
    };
    if row.is_terminal() {
        for ev in final_events_from_row(&row) {
            if let Flow::Finished = cursor.send(&ev).await {
                return Ok(Flow::Finished);
            }
        }
        if cursor.last >= u64::try_from(row.event_seq).unwrap_or(0) {
            return Ok(Flow::Finished);
        }
    }
    Ok(Flow::Continue)
}
