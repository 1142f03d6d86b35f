//! Streams one job's events: subscribe in process first, replay the log after `Last-Event-ID`,
//! then forward live events, dropping any number already sent. Closes after `done`.

use std::convert::Infallible;
use std::time::Duration;

use pacer_common::db::jobs::get_job;
use pacer_common::events::{self, NumberedEvent, final_events_from_row, read_log};
use salvo::prelude::*;
use salvo::sse::{SseEvent, SseKeepAlive};
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use crate::hub::HubMsg;
use crate::state::AppState;

/// Which events a stream shows, and in which shape. Event ids stay the job's numbers, so a
/// client can resume any of these streams at `/api/v1/jobs/{id}/events` too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    /// Every event as the job wrote it (Jobs API, draft stream).
    Job,
    /// Plan stream, batch: progress, one `result` with the full content, error, done.
    PlanBatch,
    /// Plan stream, incremental: progress, each `workout`, `weekly_info`, then a `result` with
    /// `total_workouts` and the full `weekly_info` (seed 000).
    PlanContent,
}

impl StreamMode {
    /// The payload to send for `ev`, or `None` to skip it.
    fn shape(self, ev: &NumberedEvent) -> Option<String> {
        if self == Self::Job || ev.is_done() {
            return Some(ev.data.clone());
        }
        let parsed: serde_json::Value = serde_json::from_str(&ev.data).ok()?;
        match (self, events::event_type(&parsed)) {
            (Self::PlanBatch, events::WORKOUT | events::WEEKLY_INFO) => None,
            (Self::PlanContent, events::RESULT) => {
                let data = &parsed["data"];
                let total = data.get("total_workouts").cloned().unwrap_or_else(|| {
                    serde_json::json!(data["content"].as_array().map(Vec::len).unwrap_or(0))
                });
                Some(serde_json::json!({"type": events::RESULT, "total_workouts": total, "weekly_info": data["weekly_info"]}).to_string())
            }
            _ => Some(ev.data.clone()),
        }
    }
}

/// Starts streaming `job_id`'s events after `after` into `res`.
pub fn stream_job(state: AppState, job_id: Uuid, after: u64, mode: StreamMode, res: &mut Response) {
    let (tx, rx) = mpsc::channel::<Result<SseEvent, Infallible>>(256);
    let keepalive = state.config.sse_keepalive();
    tokio::spawn(async move {
        if let Err(e) = pump(&state, job_id, after, mode, &tx).await {
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
    mode: StreamMode,
}

impl Cursor<'_> {
    /// Sends `ev` unless already sent. `Finished` after `done` or when the client is gone.
    async fn send(&mut self, ev: &NumberedEvent) -> Flow {
        if ev.id <= self.last {
            return Flow::Continue;
        }
        if let Some(data) = self.mode.shape(ev) {
            let sse = SseEvent::default().id(ev.id.to_string()).text(data);
            if self.tx.send(Ok(sse)).await.is_err() {
                return Flow::Finished;
            }
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
    mode: StreamMode,
    tx: &mpsc::Sender<Result<SseEvent, Infallible>>,
) -> anyhow::Result<()> {
    let mut sub = state.hub.subscribe(job_id);
    let mut cursor = Cursor {
        tx,
        last: after,
        mode,
    };
    if let Flow::Finished = catch_up(state, job_id, &mut cursor, true).await? {
        return Ok(());
    }
    // a quiet stream re-reads its log now and then in case a notice was lost, and asks
    // PostgreSQL (whether the job ended while its log was lost) only every fourth time
    let recheck = Duration::from_secs(15);
    let mut quiet_rounds = 0u32;
    loop {
        tokio::select! {
            _ = tx.closed() => return Ok(()),
            msg = sub.rx.recv() => {
                let flow = match msg {
                    Ok(HubMsg::Event(ev)) if ev.id == cursor.last + 1 => cursor.send(&ev).await,
                    Ok(HubMsg::Event(ev)) if ev.id <= cursor.last => Flow::Continue,
                    // a gap, a lag or a resubscription: the log has everything in order
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => catch_up(state, job_id, &mut cursor, true).await?,
                    Err(broadcast::error::RecvError::Closed) => Flow::Finished,
                };
                if let Flow::Finished = flow {
                    return Ok(());
                }
            }
            _ = tokio::time::sleep(recheck) => {
                quiet_rounds += 1;
                if let Flow::Finished = catch_up(state, job_id, &mut cursor, quiet_rounds.is_multiple_of(4)).await? {
                    return Ok(());
                }
            }
        }
    }
}

/// Sends what the log holds after the cursor; for a finished job whose log is gone, the final
/// events rebuilt from its row.
async fn catch_up(
    state: &AppState,
    job_id: Uuid,
    cursor: &mut Cursor<'_>,
    check_row: bool,
) -> anyhow::Result<Flow> {
    let mut conn = state.redis.clone();
    let logged = read_log(&mut conn, &state.keys, job_id, cursor.last).await?;
    for ev in &logged {
        if let Flow::Finished = cursor.send(ev).await {
            return Ok(Flow::Finished);
        }
    }
    if !check_row {
        return Ok(Flow::Continue);
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
