//! Job events. Each event gets its number from the job's row in PostgreSQL (so numbers survive
//! a Redis flush and never repeat), is appended to the job's Redis stream under the entry id
//! `n-0` (replay and `Last-Event-ID` resume are one `XRANGE`), and is published on the single
//! events channel that every API process subscribes to once.

use apalis_redis::ConnectionManager;
use serde_json::{Value, json};
use sqlx::PgPool;
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
    pub db: PgPool,
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

static APPEND: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        local ok = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[6], ARGV[1] .. '-0', 'd', ARGV[2])
        if type(ok) == 'table' and ok.err then return 0 end
        redis.call('EXPIRE', KEYS[1], ARGV[5])
        redis.call('PUBLISH', ARGV[3], ARGV[4] .. ' ' .. ARGV[1] .. ' ' .. ARGV[2])
        return 1
        "#,
    )
});

const LOG_MAXLEN: u64 = 20_000;

impl EventSink {
    /// Numbers the event in PostgreSQL (also storing `progress`/`message` on the row and
    /// refreshing a running job's heartbeat), then appends and publishes it in Redis.
    pub async fn append(
        &self,
        job_id: Uuid,
        event: &Value,
        progress: Option<(u8, &str)>,
    ) -> Result<Appended> {
        let (pct, msg) = match progress {
            Some((p, m)) => (Some(i16::from(p.min(100))), Some(m)),
            None => (None, None),
        };
        let (seq, cancel_requested): (i64, bool) = sqlx::query_as(
            "update jobs set event_seq = event_seq + 1,
                    progress = coalesce($2, progress), message = coalesce($3, message),
                    heartbeat_at = case when state = 'running' then now() else heartbeat_at end,
                    updated_at = now()
              where id = $1
          returning event_seq, cancel_requested",
        )
        .bind(job_id)
        .bind(pct)
        .bind(msg)
        .fetch_one(&self.db)
        .await?;
        let seq = u64::try_from(seq).unwrap_or(0);
        self.publish(job_id, seq, &event.to_string()).await?;
        Ok(Appended {
            seq,
            cancel_requested,
        })
    }

    /// Appends a finished job's last two events under the numbers its terminal write reserved
    /// (`done_seq - 1` for `result`/`error`, `done_seq` for `done`).
    pub async fn append_final(&self, job_id: Uuid, done_seq: u64, last: &Value) -> Result<()> {
        self.publish(job_id, done_seq.saturating_sub(1), &last.to_string())
            .await?;
        self.publish(job_id, done_seq, &done().to_string()).await
    }

    async fn publish(&self, job_id: Uuid, seq: u64, payload: &str) -> Result<()> {
        let mut conn = self.redis.clone();
        let _: i64 = APPEND
            .key(self.keys.event_log(job_id))
            .arg(seq)
            .arg(payload)
            .arg(self.keys.events_channel())
            .arg(job_id.to_string())
            .arg(self.ttl_secs.max(60))
            .arg(LOG_MAXLEN)
            .invoke_async(&mut conn)
            .await?;
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
