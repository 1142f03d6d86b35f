//! Job events. A running job's events are numbered in Redis, by the script that appends them to
//! the job's stream under the entry id `n-0` (replay and `Last-Event-ID` resume are one
//! `XRANGE`) and publishes them on the single events channel every API process subscribes to
//! once: no PostgreSQL write per event. The number is one more than the larger of the stream's
//! top id (its last entry, or the last one trimmed) and a floor the writer passes in (the job's `event_seq` in PostgreSQL, then the
//! last number it was given), so numbers keep growing across a Redis flush. The worker persists
//! the last number to the row at each lease refresh and at the end; the final `result`/`error`
//! and `done` take the two numbers after it, reserved by the terminal write in PostgreSQL.

use apalis_redis::ConnectionManager;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::batch::{BatchError, Batcher};
use crate::db::jobs::JobRow;
use crate::error::{Error, Result};
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

/// Where events are written. Appends of all the process's jobs share script calls (see
/// `batch`): under load one round trip appends and publishes the events of many jobs.
#[derive(Clone)]
pub struct EventSink {
    pub redis: ConnectionManager,
    pub keys: Keys,
    pub ttl_secs: u64,
    /// `None`: that append failed (the others of its batch are unaffected).
    appends: Batcher<Append, Option<Appended>>,
}

/// What appending returned.
#[derive(Debug, Clone, Copy)]
pub struct Appended {
    /// The number of the (last) event appended.
    pub seq: u64,
    /// Someone asked to cancel this job: a running job stops at this step.
    pub cancel_requested: bool,
    /// A later attempt of the job has started (this writer's lease was taken over while it
    /// stalled): nothing was appended, and the writer must stop.
    pub superseded: bool,
}

/// When a running job's appends renew its log's TTL: at its first append, then once a
/// quarter of the TTL has passed since the last renewal. The log then outlives the job's last
/// event by at least three quarters of the TTL (the final events renew it in full), without
/// an `EXPIRE` per event.
#[derive(Debug, Default)]
pub struct TtlRenewal(std::sync::Mutex<Option<std::time::Instant>>);

impl TtlRenewal {
    /// Whether the next append should renew the TTL (`ttl_secs`: the sink's).
    pub fn due(&self, ttl_secs: u64) -> bool {
        let quarter = std::time::Duration::from_secs(ttl_secs / 4);
        match self.0.lock() {
            Ok(last) => last.is_none_or(|t| t.elapsed() >= quarter),
            Err(_) => true,
        }
    }

    /// An append that renewed the TTL succeeded.
    pub fn renewed(&self) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some(std::time::Instant::now());
        }
    }
}

/// Events of one job to append in one go.
struct Append {
    job_id: Uuid,
    /// `Next(floor)`: number each event one above the larger of `floor` and the log's last
    /// entry. `At(n)`: the numbers were reserved in PostgreSQL: `n`, `n + 1`, …; a number the
    /// log already passed is not appended again.
    numbering: Numbering,
    /// Renew the log's TTL (the final append always does).
    renew_ttl: bool,
    /// The writer's attempt, refused once a later one has started (see [`EventSink::fence`]);
    /// 0: not checked.
    attempt: u32,
    /// Compact JSON: no line breaks, so that a channel message can hold one event per line.
    payloads: Vec<String>,
}

impl Append {
    fn new(
        job_id: Uuid,
        attempt: u32,
        numbering: Numbering,
        renew_ttl: bool,
        events: &[Value],
    ) -> Self {
        Self {
            job_id,
            numbering,
            renew_ttl,
            attempt,
            payloads: events.iter().map(Value::to_string).collect(),
        }
    }
}

#[derive(Clone, Copy)]
enum Numbering {
    Next(u64),
    /// As `Next`, for an append repeated after its reply was lost: a payload already logged
    /// above the floor (the lost call ran) is not appended again.
    Again(u64),
    At(u64),
}

/// KEYS: per append, the job's log, cancel flag and attempt fence. ARGV: channel, ttl, maxlen,
/// then per append: job id, mode (`n` next, `r` next again, `a` at), number, whether to renew
/// the log's TTL (`1`; mode `a`, a job's last events, always does), the writer's attempt (0:
/// unchecked), count, that many payloads. Every event appended is published, all of the call's
/// in one message (one line each, in order). Returns per append `{last number, cancel flag (2:
/// a later attempt has started, nothing appended), appended}`. In mode `n`, `XADD` at floor + 1
/// is tried first: it fails only when the log is already past it (a previous owner's events),
/// and only then is the log's top id read. Mode `r` first reads the entries above the floor
/// and takes a payload found there as appended. Nothing here raises, so one bad append does
/// not fail the others of its batch; it answers `appended = 0` instead.
static APPEND: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        local function failed(r) return type(r) == 'table' and r.err ~= nil end
        -- a server refusing writes for a while: the whole call fails with its error, which
        -- the caller waits out (redis_unavailable) and retries without logging twice
        local busy = {OOM = true, READONLY = true, LOADING = true, MASTERDOWN = true,
                      TRYAGAIN = true, CLUSTERDOWN = true, BUSY = true}
        local function refused_for_now(r)
            return failed(r) and busy[string.match(r.err, '^%-?(%u+)') or ''] == true
        end
        local function top(log)
            local info = redis.pcall('XINFO', 'STREAM', log)
            if failed(info) then return nil end
            for k = 1, #info, 2 do
                if info[k] == 'last-generated-id' then
                    return tonumber(string.match(info[k + 1], '^(%d+)'))
                end
            end
            return nil
        end
        local function logged_above(log, n)
            local found = {}
            local entries = redis.pcall('XRANGE', log, (n + 1) .. '-0', '+', 'COUNT', 64)
            if failed(entries) then return found end
            for _, e in ipairs(entries) do
                local fields = e[2]
                for k = 1, #fields, 2 do
                    if fields[k] == 'd' then
                        found[fields[k + 1]] = tonumber(string.match(e[1], '^(%d+)'))
                    end
                end
            end
            return found
        end
        local channel, ttl, maxlen = ARGV[1], ARGV[2], ARGV[3]
        local out = {}
        local published = {}
        local j = 4
        for i = 1, #KEYS, 3 do
            local log, job, mode, n = KEYS[i], ARGV[j], ARGV[j + 1], tonumber(ARGV[j + 2])
            local renew, attempt = ARGV[j + 3] == '1' or mode == 'a', tonumber(ARGV[j + 4])
            local count = tonumber(ARGV[j + 5])
            j = j + 6
            local next = mode ~= 'a'
            -- a stalled writer whose job another worker took over must not add events
            local superseded = attempt > 0
                and (tonumber(redis.call('GET', KEYS[i + 2])) or 0) > attempt
            if superseded then
                j = j + count
                count = 0
            end
            local logged = mode == 'r' and logged_above(log, n) or nil
            if mode == 'a' then n = n - 1 end
            local appended = 1
            for k = 1, count do
                local payload = ARGV[j]
                j = j + 1
                n = n + 1
                local ok
                if logged and logged[payload] then
                    n = logged[payload]
                    ok = false
                else
                    ok = redis.pcall('XADD', log, 'MAXLEN', '~', maxlen, n .. '-0', 'd', payload)
                end
                if failed(ok) and next then
                    local last = top(log)
                    if last ~= nil and last >= n then
                        n = last + 1
                        ok = redis.pcall('XADD', log, 'MAXLEN', '~', maxlen, n .. '-0', 'd', payload)
                    end
                end
                if refused_for_now(ok) then
                    if #published > 0 then
                        redis.pcall('PUBLISH', channel, table.concat(published, '\n'))
                    end
                    return ok
                end
                if ok == false then
                    -- logged by the call whose reply was lost, and published with it
                elseif not failed(ok) then
                    published[#published + 1] = job .. ' ' .. n .. ' ' .. payload
                elseif next then
                    appended = 0
                end
            end
            if superseded then
                out[#out + 1] = n
                out[#out + 1] = 2
                out[#out + 1] = 1
            else
                if renew then
                    redis.pcall('EXPIRE', log, ttl)
                end
                out[#out + 1] = n
                out[#out + 1] = next and redis.call('EXISTS', KEYS[i + 1]) or 0
                out[#out + 1] = appended
            end
        end
        if #published > 0 then
            redis.pcall('PUBLISH', channel, table.concat(published, '\n'))
        end
        return out
        "#,
    )
});

/// KEYS: a job's attempt fence. ARGV: attempt, ttl. Raises the fence to `attempt` (never
/// lowers it: a late claim of an earlier attempt cannot reopen it).
static FENCE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        if (tonumber(redis.call('GET', KEYS[1])) or 0) < tonumber(ARGV[1]) then
            redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
        end
        "#,
    )
});

const LOG_MAXLEN: u64 = 20_000;
/// Appends per script call, and calls in flight at once per process (one, as the worker's
/// statements: larger batches under load, a lone append still goes at once).
const BATCH_MAX: usize = 64;
const BATCHES_IN_FLIGHT: usize = 1;

impl EventSink {
    pub fn new(redis: ConnectionManager, keys: Keys, ttl_secs: u64) -> Self {
        let ttl_secs = ttl_secs.max(60);
        let appends = {
            let (redis, keys) = (redis.clone(), keys.clone());
            Batcher::spawn(BATCH_MAX, BATCHES_IN_FLIGHT, move |batch: Vec<Append>| {
                let (mut conn, keys) = (redis.clone(), keys.clone());
                async move { append_batch(&mut conn, &keys, ttl_secs, batch).await }
            })
        };
        Self {
            redis,
            keys,
            ttl_secs,
            appends,
        }
    }

    /// Numbers the event above `floor` and above the log's last entry, appends and publishes
    /// it; also reports whether the job's cancellation was requested. `renew_ttl`: (re)sets
    /// the log's expiry, which a running job's writer needs only now and then (see
    /// [`TtlRenewal`]); the final events always set it.
    pub async fn append(
        &self,
        job_id: Uuid,
        floor: u64,
        renew_ttl: bool,
        event: &Value,
    ) -> Result<Appended> {
        self.append_all(job_id, 0, floor, renew_ttl, std::slice::from_ref(event))
            .await
    }

    /// [`append`](Self::append) again after a call that failed without an answer: if that
    /// call ran (Redis received it and the reply was lost), its event is not logged twice.
    pub async fn append_again(
        &self,
        job_id: Uuid,
        floor: u64,
        renew_ttl: bool,
        event: &Value,
    ) -> Result<Appended> {
        self.append_all_again(job_id, 0, floor, renew_ttl, std::slice::from_ref(event))
            .await
    }

    /// [`append`](Self::append) of several events in one script call: they are logged (and
    /// published, in one message) all together or not at all, so a reader never sees part of
    /// them. `seq` is the last one's number.
    /// `attempt`: the writer's (refused once a later attempt is fenced in, see
    /// [`fence`](Self::fence)); 0 for a writer that is not running the job.
    pub async fn append_all(
        &self,
        job_id: Uuid,
        attempt: u32,
        floor: u64,
        renew_ttl: bool,
        events: &[Value],
    ) -> Result<Appended> {
        self.call(Append::new(
            job_id,
            attempt,
            Numbering::Next(floor),
            renew_ttl,
            events,
        ))
        .await
    }

    /// [`append_again`](Self::append_again) of several events (each one found in the log above
    /// the floor is not appended again).
    pub async fn append_all_again(
        &self,
        job_id: Uuid,
        attempt: u32,
        floor: u64,
        renew_ttl: bool,
        events: &[Value],
    ) -> Result<Appended> {
        self.call(Append::new(
            job_id,
            attempt,
            Numbering::Again(floor),
            renew_ttl,
            events,
        ))
        .await
    }

    /// Refuses from now on the appends of the job's attempts before `attempt`, which has just
    /// claimed it: a worker that stalled (a pause, a swapped-out process) past its lease must
    /// not add events to the log of the attempt that took over, which reads the log first to
    /// go on from what was already sent.
    pub async fn fence(&self, job_id: Uuid, attempt: u32) -> Result<()> {
        let mut conn = self.redis.clone();
        let _: () = FENCE
            .key(self.keys.attempt_fence(job_id))
            .arg(attempt)
            .arg(self.ttl_secs)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Appends one event under the number PostgreSQL reserved for it (a retry's `retrying`).
    pub async fn append_at(&self, job_id: Uuid, n: u64, event: &Value) -> Result<()> {
        self.call(Append::new(
            job_id,
            0,
            Numbering::At(n),
            true,
            std::slice::from_ref(event),
        ))
        .await?;
        Ok(())
    }

    /// Appends a finished job's last two events under the numbers its terminal write reserved
    /// (`done_seq - 1` for `result`/`error`, `done_seq` for `done`), in one call.
    pub async fn append_final(&self, job_id: Uuid, done_seq: u64, last: &Value) -> Result<()> {
        self.call(Append {
            job_id,
            numbering: Numbering::At(done_seq.saturating_sub(1)),
            renew_ttl: true,
            // numbered by the terminal write, which only the job's owner wins
            attempt: 0,
            payloads: vec![last.to_string(), done().to_string()],
        })
        .await?;
        Ok(())
    }

    async fn call(&self, append: Append) -> Result<Appended> {
        let job_id = append.job_id;
        match self.appends.call(append).await {
            Ok(Some(appended)) => Ok(appended),
            Ok(None) => Err(Error::Queue(format!(
                "job {job_id}: Redis refused the event append"
            ))),
            Err(BatchError::Failed(e)) => match &*e {
                // kept whole, so that callers can tell Redis being away from a refusal
                Error::Redis(e) => Err(Error::Redis(e.clone())),
                e => Err(Error::Queue(format!("event append failed: {e}"))),
            },
            Err(BatchError::Stopped) => Err(Error::Queue("the event appender stopped".to_owned())),
        }
    }

    /// The number of the log's last event (0 when the log is empty or gone): what a writer
    /// that did not number the job's events itself must reserve its numbers above.
    pub async fn last_logged(&self, job_id: Uuid) -> Result<u64> {
        Ok(self
            .last_logged_many(&[job_id])
            .await?
            .first()
            .copied()
            .unwrap_or(0))
    }

    /// `last_logged` of several jobs in one round trip, in their order.
    pub async fn last_logged_many(&self, job_ids: &[Uuid]) -> Result<Vec<u64>> {
        let mut conn = self.redis.clone();
        last_logged(&mut conn, &self.keys, job_ids).await
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

/// One script call for a batch of appends.
async fn append_batch(
    conn: &mut ConnectionManager,
    keys: &Keys,
    ttl_secs: u64,
    batch: Vec<Append>,
) -> Result<Vec<Option<Appended>>> {
    let mut call = APPEND.prepare_invoke();
    call.arg(keys.events_channel())
        .arg(ttl_secs)
        .arg(LOG_MAXLEN);
    for a in &batch {
        let (mode, n) = match a.numbering {
            Numbering::Next(floor) => ("n", floor),
            Numbering::Again(floor) => ("r", floor),
            Numbering::At(n) => ("a", n),
        };
        call.key(keys.event_log(a.job_id))
            .key(keys.cancel_flag(a.job_id))
            .key(keys.attempt_fence(a.job_id))
            .arg(a.job_id.to_string())
            .arg(mode)
            .arg(n)
            .arg(if a.renew_ttl { "1" } else { "0" })
            .arg(a.attempt)
            .arg(a.payloads.len());
        for p in &a.payloads {
            call.arg(p);
        }
    }
    let flat: Vec<i64> = call.invoke_async(conn).await?;
    if flat.len() != batch.len() * 3 {
        return Err(Error::Queue(format!(
            "event append script answered {} values for {} appends",
            flat.len(),
            batch.len()
        )));
    }
    Ok(flat
        .chunks_exact(3)
        .map(|c| {
            (c[2] == 1).then(|| Appended {
                seq: u64::try_from(c[0]).unwrap_or(0),
                cancel_requested: c[1] == 1,
                superseded: c[1] == 2,
            })
        })
        .collect())
}

/// Events numbered after `after`, from the job's log (empty when the log is gone). Read a page
/// at a time: one reply of a long log (a year's plan is ~800 events, ~430 kB) would hold up
/// every other command on the shared connection until it is all read.
pub async fn read_log(
    conn: &mut ConnectionManager,
    keys: &Keys,
    job_id: Uuid,
    after: u64,
) -> Result<Vec<NumberedEvent>> {
    const PAGE: usize = 128;
    let mut out = Vec::new();
    let mut from = after;
    loop {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(keys.event_log(job_id))
            .arg(format!("{}-0", from.saturating_add(1)))
            .arg("+")
            .arg("COUNT")
            .arg(PAGE)
            .query_async(conn)
            .await?;
        let full = reply.ids.len() == PAGE;
        for entry in reply.ids {
            let id = entry
                .id
                .split('-')
                .next()
                .and_then(|n| n.parse::<u64>().ok());
            let data: Option<String> = entry.get("d");
            if let Some(id) = id {
                from = from.max(id);
                if let Some(data) = data {
                    out.push(NumberedEvent { id, data });
                }
            }
        }
        if !full {
            return Ok(out);
        }
    }
}

/// The number of each job's last logged event (0 when its log is empty or gone), in one round
/// trip, in the jobs' order.
pub async fn last_logged(
    conn: &mut ConnectionManager,
    keys: &Keys,
    job_ids: &[Uuid],
) -> Result<Vec<u64>> {
    if job_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in job_ids {
        pipe.cmd("XREVRANGE")
            .arg(keys.event_log(*id))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
    }
    let replies: Vec<redis::streams::StreamRangeReply> = pipe.query_async(conn).await?;
    Ok(replies
        .iter()
        .map(|r| {
            r.ids
                .first()
                .and_then(|e| e.id.split('-').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        })
        .collect())
}

/// The events of a message of the events channel: one `<job uuid> <n> <json>` per line (a
/// script call publishes all the events it appended in one message).
pub fn channel_events(payload: &str) -> impl Iterator<Item = (Uuid, NumberedEvent)> + '_ {
    payload.split('\n').filter_map(parse_channel_message)
}

/// Parses one line of a message of the events channel: `<job uuid> <n> <json>`.
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

/// Cancels a batch's children: the queued ones end at once with their final events (numbered
/// after anything an earlier attempt logged), the running ones are asked to stop (PostgreSQL
/// flag and Redis flag). Returns how many ended here. Used by the batch itself and by a cancel
/// that reaches the batch when it is not running (queued for a retry, its worker dead).
pub async fn cancel_batch_children(
    db: &sqlx::PgPool,
    sink: &EventSink,
    parent: Uuid,
) -> Result<usize> {
    let queued = crate::db::analytics::queued_children(db, parent).await?;
    let tops = sink.last_logged_many(&queued).await?;
    let logged: Vec<_> = queued.into_iter().zip(tops).collect();
    let (cancelled, running) = crate::db::analytics::cancel_children(db, parent, &logged).await?;
    sink.request_cancel(&running).await?;
    // nobody else writes events for a child that never ran: close its stream here (SSE
    // followers see it at once, and after any events an earlier attempt left in its log)
    let last = error("cancelled");
    let appended = futures::future::join_all(
        cancelled
            .iter()
            .map(|(id, done_seq)| sink.append_final(*id, *done_seq, &last)),
    )
    .await;
    for ((id, _), r) in cancelled.iter().zip(appended) {
        if let Err(e) = r {
            // the row is cancelled either way; SSE rebuilds the final events from it
            tracing::warn!(job.id = %id, error = %e, "final events of a cancelled child not appended");
        }
    }
    metrics::counter!("pacer_jobs_finished_total", "kind" => crate::jobs::JobKind::RecomputeStats.as_str(), "state" => "cancelled")
        .increment(cancelled.len() as u64);
    Ok(cancelled.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_ttl_is_renewed_first_then_once_a_quarter_of_it_has_passed() {
        let renewal = TtlRenewal::default();
        assert!(renewal.due(86_400), "the first append renews");
        renewal.renewed();
        assert!(!renewal.due(86_400), "not again at once");
        assert!(
            renewal.due(3),
            "a quarter of a 3 s TTL rounds to 0: every time"
        );
    }

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
