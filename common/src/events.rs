//! Job events. A running job's events are numbered in Redis, by the script that appends them to
//! the job's stream under the entry id `n-0` (replay and `Last-Event-ID` resume are one
//! `XRANGE`) and publishes them on the single events channel every API process subscribes to
//! once: no PostgreSQL write per event. The number is one more than the larger of the stream's
//! last entry and a floor the writer passes in (the job's `event_seq` in PostgreSQL, then the
//! last number it was given), so numbers keep growing across a Redis flush. The worker persists
//! the last number to the row at each lease refresh and at the end; the final `result`/`error`
//! and `done` take the two numbers after it, reserved by the terminal write in PostgreSQL.

use apalis_redis::ConnectionManager;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::db::jobs::JobRow;
use crate::error::Result;
use crate::jobs::JobState;
use crate::keys::Keys;

/// Event types exactly as the seed documents name them.
pub const PROGRESS: &str = "progress";
pub const WORKOUT: &str = "workout";
pub const WEEKLY_INFO: &str = "weekly_info";
pub const RESULT: &str = "result";
pub const ERROR: &str = "error";
pub const DONE: &str = "done";

pub fn progress(status: &str, message: &str, progress: u8) -> Value {
    json!({"type": PROGRESS, "status": status, "message": message, "progress": progress.min(100)})
}

pub fn result(data: &Value) -> Value {
    json!({"type": RESULT, "data": data})
}

pub fn error(message: &str) -> Value {
    json!({"type": ERROR, "error": message})
}

pub fn done() -> Value {
    json!({"type": DONE})
}

pub fn event_type(event: &Value) -> &str {
    event.get("type").and_then(Value::as_str).unwrap_or("")
}

/// One numbered event.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberedEvent {
    pub id: u64,
    pub data: String,
}

impl NumberedEvent {
    pub fn is_done(&self) -> bool {
        // cheap check without parsing: the payload is produced by `done()`
        self.data == r#"{"type":"done"}"#
    }
}

/// Where events are written.
#[derive(Clone)]
pub struct EventSink {
    pub redis: ConnectionManager,
    pub keys: Keys,
    pub ttl_secs: u64,
}

/// What appending returned.
#[derive(Debug, Clone, Copy)]
pub struct Appended {
    pub seq: u64,
    /// Someone asked to cancel this job: a running job stops at this step.
    pub cancel_requested: bool,
}

/// KEYS: log, cancel flag. ARGV: floor, payload, channel, job id, ttl, maxlen.
/// Returns `{number, cancel flag}`.
static APPEND: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        local n = tonumber(ARGV[1])
        local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
        if #last > 0 then
            local logged = tonumber(string.match(last[1][1], '^(%d+)'))
            if logged > n then n = logged end
        end
        n = n + 1
        redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[6], n .. '-0', 'd', ARGV[2])
        redis.call('EXPIRE', KEYS[1], ARGV[5])
        redis.call('PUBLISH', ARGV[3], ARGV[4] .. ' ' .. n .. ' ' .. ARGV[2])
        return {n, redis.call('EXISTS', KEYS[2])}
        "#,
    )
});

/// KEYS: log. ARGV: channel, job id, ttl, maxlen, then (number, payload) pairs. Appends under
/// numbers reserved in PostgreSQL; a number the log already passed is not appended again.
static APPEND_AT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        for i = 5, #ARGV, 2 do
            local ok = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], ARGV[i] .. '-0', 'd', ARGV[i + 1])
            if not (type(ok) == 'table' and ok.err) then
                redis.call('PUBLISH', ARGV[1], ARGV[2] .. ' ' .. ARGV[i] .. ' ' .. ARGV[i + 1])
            end
        end
        redis.call('EXPIRE', KEYS[1], ARGV[3])
        return 1
        "#,
    )
});

const LOG_MAXLEN: u64 = 20_000;

impl EventSink {
    /// Numbers the event above `floor` and above the log's last entry, appends and publishes
    /// it; also reports whether the job's cancellation was requested.
    pub async fn append(&self, job_id: Uuid, floor: u64, event: &Value) -> Result<Appended> {
        let mut conn = self.redis.clone();
        let (seq, cancel): (u64, i64) = APPEND
            .key(self.keys.event_log(job_id))
            .key(self.keys.cancel_flag(job_id))
            .arg(floor)
            .arg(event.to_string())
            .arg(self.keys.events_channel())
            .arg(job_id.to_string())
            .arg(self.ttl_secs.max(60))
            .arg(LOG_MAXLEN)
            .invoke_async(&mut conn)
            .await?;
        Ok(Appended {
            seq,
            cancel_requested: cancel == 1,
        })
    }

    /// Appends a finished job's last two events under the numbers its terminal write reserved
    /// (`done_seq - 1` for `result`/`error`, `done_seq` for `done`), in one round trip.
    pub async fn append_final(&self, job_id: Uuid, done_seq: u64, last: &Value) -> Result<()> {
        let mut conn = self.redis.clone();
        let _: i64 = APPEND_AT
            .key(self.keys.event_log(job_id))
            .arg(self.keys.events_channel())
            .arg(job_id.to_string())
            .arg(self.ttl_secs.max(60))
            .arg(LOG_MAXLEN)
            .arg(done_seq.saturating_sub(1))
            .arg(last.to_string())
            .arg(done_seq)
            .arg(done().to_string())
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// The number of the log's last event (0 when the log is empty or gone): what a writer
    /// that did not number the job's events itself must reserve its numbers above.
    pub async fn last_logged(&self, job_id: Uuid) -> Result<u64> {
        let mut conn = self.redis.clone();
        let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.keys.event_log(job_id))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await?;
        Ok(reply
            .ids
            .first()
            .and_then(|e| e.id.split('-').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// Tells the job's worker to stop at its next event (it also learns it from PostgreSQL at
    /// its next lease refresh, which covers a Redis flush).
    pub async fn request_cancel(&self, job_ids: &[Uuid]) -> Result<()> {
        if job_ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.redis.clone();
        let mut pipe = redis::pipe();
        for id in job_ids {
            pipe.set_ex(self.keys.cancel_flag(*id), 1, self.ttl_secs.max(60))
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }
}

/// Events numbered after `after`, from the job's log (empty when the log is gone).
pub async fn read_log(
    conn: &mut ConnectionManager,
    keys: &Keys,
    job_id: Uuid,
    after: u64,
) -> Result<Vec<NumberedEvent>> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(keys.event_log(job_id))
        .arg(format!("{}-0", after.saturating_add(1)))
        .arg("+")
        .query_async(conn)
        .await?;
    let mut out = Vec::with_capacity(reply.ids.len());
    for entry in reply.ids {
        let id = entry
            .id
            .split('-')
            .next()
            .and_then(|n| n.parse::<u64>().ok());
        let data: Option<String> = entry.get("d");
        if let (Some(id), Some(data)) = (id, data) {
            out.push(NumberedEvent { id, data });
        }
    }
    Ok(out)
}

/// Parses a message of the events channel: `<job uuid> <n> <json>`.
pub fn parse_channel_message(payload: &str) -> Option<(Uuid, NumberedEvent)> {
    let (job, rest) = payload.split_once(' ')?;
    let (n, data) = rest.split_once(' ')?;
    Some((
        Uuid::parse_str(job).ok()?,
        NumberedEvent {
            id: n.parse().ok()?,
            data: data.to_owned(),
        },
    ))
}

/// The last two events of a finished job, rebuilt from its row (for when the Redis log has
/// expired or was lost): `result` or `error`, then `done`, with their original numbers.
pub fn final_events_from_row(job: &JobRow) -> Vec<NumberedEvent> {
    let Some(state) = JobState::parse(&job.state) else {
        return Vec::new();
    };
    if !state.is_terminal() || job.event_seq < 2 {
        return Vec::new();
    }
    let seq = u64::try_from(job.event_seq).unwrap_or(0);
    let last = match state {
        JobState::Succeeded => result(job.result.as_ref().map(|j| &j.0).unwrap_or(&Value::Null)),
        JobState::Cancelled => error("cancelled"),
        _ => error(job.error.as_deref().unwrap_or("failed")),
    };
    vec![
        NumberedEvent {
            id: seq - 1,
            data: last.to_string(),
        },
        NumberedEvent {
            id: seq,
            data: done().to_string(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_message_round_trip() {
        let id = Uuid::now_v7();
        let (job, ev) = parse_channel_message(&format!("{id} 7 {{\"type\":\"done\"}}")).unwrap();
        assert_eq!(job, id);
        assert_eq!(ev.id, 7);
        assert!(ev.is_done());
        assert!(parse_channel_message("garbage").is_none());
    }

    #[test]
    fn done_payload_matches_cheap_check() {
        assert!(
            NumberedEvent {
                id: 1,
                data: done().to_string()
            }
            .is_done()
        );
    }
}
