//! Streams one job's events: subscribe in process first, replay the log after `Last-Event-ID`,
//! then forward live events, dropping any number already sent. Closes after `done`.
//!
//! The response body is a stream polled by the connection itself: no task or channel per
//! client, and a live event's frame is formatted once for all its clients (see `hub`), so an
//! idle client costs its connection, its broadcast receiver and this small state.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use pacer_common::db::jobs::JobRow;
use pacer_common::events::{self, NumberedEvent, final_events_from_row, read_log};
use salvo::http::HeaderValue;
use salvo::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use salvo::prelude::*;
use tokio::sync::broadcast;
use tokio::time::Instant;
use uuid::Uuid;

use crate::hub::{HubMsg, Subscription};
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

/// One SSE frame: `data:` lines (a CR, LF or CRLF in the payload starts a new one, so it
/// cannot change the framing), then `id:`.
pub fn frame(id: u64, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 32);
    let mut rest = data;
    loop {
        let (line, next) = match rest.find(['\r', '\n']) {
            Some(i) if rest[i..].starts_with("\r\n") => (&rest[..i], Some(&rest[i + 2..])),
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    let _ = writeln!(out, "id: {id}\n");
    Bytes::from(out)
}

const KEEP_ALIVE: Bytes = Bytes::from_static(b":\n\n");

/// A quiet stream re-reads its log this often in case a notice was lost, and asks PostgreSQL
/// (whether the job ended while its log was lost) every fourth time.
const RECHECK: Duration = Duration::from_secs(15);

/// Starts streaming the events of `row`'s job after `after` into `res`. The row, just read by
/// the caller, serves the first check for a finished job.
pub fn stream_job(state: AppState, row: JobRow, after: u64, mode: StreamMode, res: &mut Response) {
    let now = Instant::now();
    let job_id = row.id;
    let feed = Feed {
        sub: state.hub.subscribe(job_id),
        first_row: Some(Box::new(row)),
        keepalive: state.config.sse_keepalive(),
        state,
        job_id,
        mode,
        last: after,
        out: VecDeque::new(),
        started: false,
        finished: false,
        quiet_rounds: 0,
        last_write: now,
        last_check: now,
    };
    let body = futures::stream::unfold(feed, |mut feed| async move {
        let frame = feed.next_frame().await?;
        Some((Ok::<_, Infallible>(frame), feed))
    });
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    res.stream(body);
}

/// One client's position in its job's events.
struct Feed {
    state: AppState,
    sub: Subscription,
    /// The row the handler read, for the first catch-up.
    first_row: Option<Box<JobRow>>,
    job_id: Uuid,
    mode: StreamMode,
    keepalive: Duration,
    /// The last number sent (or skipped by the mode).
    last: u64,
    /// Frames ready to write.
    out: VecDeque<Bytes>,
    started: bool,
    /// `done` was queued (or the job is gone): end after `out` is written.
    finished: bool,
    quiet_rounds: u32,
    last_write: Instant,
    last_check: Instant,
}

impl Feed {
    /// The next frame to write; `None` ends the response.
    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.out.pop_front() {
                self.last_write = Instant::now();
                return Some(frame);
            }
            if self.finished {
                return None;
            }
            if !self.started {
                self.started = true;
                self.catch_up(true).await;
                continue;
            }
            let keepalive_at = self.last_write + self.keepalive;
            let check_at = self.last_check + RECHECK;
            match tokio::time::timeout_at(keepalive_at.min(check_at), self.sub.rx.recv()).await {
                Ok(Ok(HubMsg::Event(ev))) if ev.id == self.last + 1 => {
                    if self.mode == StreamMode::Job {
                        self.queue_frame(&ev.event, ev.frame.clone());
                    } else {
                        self.queue(&ev.event);
                    }
                }
                Ok(Ok(HubMsg::Event(ev))) if ev.id <= self.last => {}
                // a gap, a lag or a resubscription: the log has everything in order
                Ok(Ok(_) | Err(broadcast::error::RecvError::Lagged(_))) => {
                    self.catch_up(true).await;
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => self.finished = true,
                Err(_elapsed) if Instant::now() >= check_at => {
                    self.quiet_rounds += 1;
                    let check_row = self.quiet_rounds.is_multiple_of(4);
                    self.catch_up(check_row).await;
                }
                Err(_elapsed) => {
                    self.last_write = Instant::now();
                    return Some(KEEP_ALIVE);
                }
            }
        }
    }

    /// Queues `ev` in this stream's shape unless already sent.
    fn queue(&mut self, ev: &NumberedEvent) {
        if ev.id <= self.last || self.finished {
            return;
        }
        if let Some(data) = self.mode.shape(ev) {
            self.out.push_back(frame(ev.id, &data));
        }
        self.advance(ev);
    }

    /// Queues an already formatted frame of `ev` (the `Job` shape).
    fn queue_frame(&mut self, ev: &NumberedEvent, frame: Bytes) {
        if ev.id <= self.last || self.finished {
            return;
        }
        self.out.push_back(frame);
        self.advance(ev);
    }

    fn advance(&mut self, ev: &NumberedEvent) {
        self.last = ev.id;
        if ev.is_done() {
            self.finished = true;
        }
    }

    /// Queues what the log holds after the cursor; for a finished job whose log is gone, the
    /// final events rebuilt from its row. A failed read ends the stream (the client resumes
    /// with `Last-Event-ID`).
    async fn catch_up(&mut self, check_row: bool) {
        self.last_check = Instant::now();
        let mut caught_up = self.try_catch_up(check_row).await;
        if caught_up
            .as_ref()
            .is_err_and(|e| crate::error::out_of_reach(e) == Some("Redis"))
        {
            // the first command on a connection Redis dropped (a restart) fails and reconnects:
            // once more before giving up (what was queued stays queued; nothing is sent twice)
            caught_up = self.try_catch_up(check_row).await;
        }
        if let Err(e) = caught_up {
            tracing::warn!(job.id = %self.job_id, error = %e, "event stream ended early");
            self.finished = true;
        }
    }

    /// A cursor above everything a running job has logged (an id from a log lost with Redis,
    /// or a made-up one) would drop every event to come, `done` included: it is moved down to
    /// the log's last event, so the client gets what the job logs from now on.
    async fn clamp_to_log(&mut self, row: &JobRow) -> anyhow::Result<()> {
        let saved = u64::try_from(row.event_seq).unwrap_or(0);
        if self.last <= saved {
            return Ok(());
        }
        let mut conn = self.state.redis.clone();
        let logged = events::last_logged(&mut conn, &self.state.keys, &[self.job_id])
            .await?
            .first()
            .copied()
            .unwrap_or(0);
        let top = logged.max(saved);
        if top < self.last {
            tracing::debug!(job.id = %self.job_id, from = self.last, to = top, "resume point above the job's log");
            self.last = top;
        }
        Ok(())
    }

    async fn try_catch_up(&mut self, check_row: bool) -> anyhow::Result<()> {
        // the row before the log: every event logged before the job's terminal write is then in
        // the log read below (read the other way round, events appended between the two reads
        // would be skipped by the final events rebuilt from the row)
        let row = if check_row && !self.finished {
            match self.first_row.take() {
                Some(row) => Some(Some(*row)),
                None => Some(self.state.rows.call(self.job_id).await?),
            }
        } else {
            None
        };
        let mut conn = self.state.redis.clone();
        let logged = read_log(&mut conn, &self.state.keys, self.job_id, self.last).await?;
        if let Some(Some(row)) = &row
            && logged.is_empty()
            && !row.is_terminal()
        {
            self.clamp_to_log(row).await?;
        }
        for ev in logged {
            self.queue(&ev);
        }
        let row = match row {
            None => return Ok(()),
            // the job is gone (retention)
            Some(None) => {
                self.finished = true;
                return Ok(());
            }
            Some(Some(row)) => row,
        };
        if self.finished {
            return Ok(());
        }
        if row.is_terminal() {
            for ev in final_events_from_row(&row) {
                self.queue(&ev);
            }
            if self.last >= u64::try_from(row.event_seq).unwrap_or(0) {
                self.finished = true;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_keep_line_breaks_from_changing_the_framing() {
        assert_eq!(
            &frame(3, r#"{"type":"done"}"#)[..],
            b"data: {\"type\":\"done\"}\nid: 3\n\n"
        );
        assert_eq!(
            &frame(4, "a\nb\r\nc")[..],
            b"data: a\ndata: b\ndata: c\nid: 4\n\n"
        );
    }
}
