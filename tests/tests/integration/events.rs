//! The event log writer (`pacer_common::events::EventSink`) against a real Redis: appends of
//! many jobs share script calls, and each job still gets its own numbers, cancel flag and
//! failure.

use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use pacer_common::events::{self, EventSink, read_log};
use pacer_common::keys::Keys;
use pacer_tests::redis_url;
use redis::aio::ConnectionManager;
use serde_json::json;
use uuid::Uuid;

struct Sink {
    sink: EventSink,
    keys: Keys,
    conn: ConnectionManager,
}

async fn sink() -> anyhow::Result<Sink> {
    let prefix = format!("pevt{}", Uuid::now_v7().simple());
    let conn = redis::Client::open(redis_url())?
        .get_connection_manager()
        .await?;
    let keys = Keys::new(prefix);
    Ok(Sink {
        sink: EventSink::new(conn.clone(), keys.clone(), 300),
        keys,
        conn,
    })
}

impl Sink {
    async fn ids(&self, job: Uuid) -> anyhow::Result<Vec<u64>> {
        let mut conn = self.conn.clone();
        let log = read_log(&mut conn, &self.keys, job, 0).await?;
        Ok(log.iter().map(|e| e.id).collect())
    }
}

#[tokio::test]
async fn concurrent_jobs_each_get_consecutive_numbers_and_final_events_land_once()
-> anyhow::Result<()> {
    let s = sink().await?;
    let jobs: Vec<Uuid> = (0..40).map(|_| Uuid::now_v7()).collect();
    // 40 jobs emitting at once share script calls; each job's own appends are sequential
    let runs = jobs.iter().map(|&job| {
        let sink = s.sink.clone();
        async move {
            let mut seqs = Vec::new();
            let mut floor = 0;
            for pct in [20u8, 60, 90] {
                let a = sink
                    .append(job, floor, true, &events::progress("thinking", "step", pct))
                    .await?;
                anyhow::ensure!(!a.cancel_requested, "nobody asked to cancel {job}");
                floor = a.seq;
                seqs.push(a.seq);
            }
            sink.append_final(job, floor + 2, &events::result(&json!({"ok": true})))
                .await?;
            anyhow::Ok(seqs)
        }
    });
    for (job, seqs) in jobs.iter().zip(join_all(runs).await) {
        assert_eq!(seqs?, [1, 2, 3], "job {job}");
        assert_eq!(s.ids(*job).await?, [1, 2, 3, 4, 5], "job {job}");
    }

    // the final events again (a duplicate terminal path): numbers the log passed are skipped
    let job = jobs[0];
    s.sink
        .append_final(job, 5, &events::error("late duplicate"))
        .await?;
    let mut conn = s.conn.clone();
    let log = read_log(&mut conn, &s.keys, job, 0).await?;
    assert_eq!(log.len(), 5);
    assert!(log[3].data.contains("\"result\""), "{:?}", log[3]);
    assert!(log[4].is_done());
    Ok(())
}

#[tokio::test]
async fn numbering_goes_above_both_the_floor_and_a_previous_owners_log() -> anyhow::Result<()> {
    let s = sink().await?;
    let job = Uuid::now_v7();
    // a previous owner numbered 1..7, then died before saving its last number
    for _ in 0..7 {
        s.sink
            .append(job, 0, true, &events::progress("a", "b", 1))
            .await?;
    }
    // the new owner's floor (the row's event_seq) is behind the log
    let a = s
        .sink
        .append(job, 3, true, &events::progress("a", "b", 2))
        .await?;
    assert_eq!(a.seq, 8);
    // a floor ahead of the log (the log was lost or trimmed) wins
    let b = s
        .sink
        .append(job, 20, true, &events::progress("a", "b", 3))
        .await?;
    assert_eq!(b.seq, 21);
    // trimmed to nothing: the stream remembers its top id, numbering still goes above it
    let mut conn = s.conn.clone();
    let _: i64 = redis::cmd("XTRIM")
        .arg(s.keys.event_log(job))
        .arg("MAXLEN")
        .arg(0)
        .query_async(&mut conn)
        .await?;
    let c = s
        .sink
        .append(job, 0, true, &events::progress("a", "b", 4))
        .await?;
    assert_eq!(c.seq, 22);
    assert_eq!(s.ids(job).await?, [22]);
    Ok(())
}

/// An append repeated after its reply was lost (the first call ran): the event is logged and
/// published once; a repeat of one that did not run appends it.
#[tokio::test]
async fn an_append_repeated_after_a_lost_reply_is_logged_once() -> anyhow::Result<()> {
    let s = sink().await?;
    let job = Uuid::now_v7();
    let mut pubsub = redis::Client::open(redis_url())?.get_async_pubsub().await?;
    pubsub.subscribe(s.keys.events_channel()).await?;
    let first = events::progress("thinking", "step", 20);
    let a = s.sink.append(job, 0, true, &first).await?;
    // its reply lost: the worker repeats it with the same floor
    let again = s.sink.append_again(job, 0, true, &first).await?;
    assert_eq!((a.seq, again.seq), (1, 1));
    assert_eq!(s.ids(job).await?, [1]);
    // the next event, whose call never reached Redis, repeated: appended above it
    let second = events::progress("thinking", "step", 60);
    let b = s.sink.append_again(job, again.seq, true, &second).await?;
    assert_eq!(b.seq, 2);
    let mut conn = s.conn.clone();
    let log = read_log(&mut conn, &s.keys, job, 0).await?;
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].data, second.to_string());
    // published once each: a marker published after them is the third message
    let _: i64 = redis::cmd("PUBLISH")
        .arg(s.keys.events_channel())
        .arg("marker")
        .query_async(&mut conn)
        .await?;
    let mut messages = pubsub.on_message();
    let mut seen = Vec::new();
    while let Some(m) = tokio::time::timeout(Duration::from_secs(10), messages.next()).await? {
        let text: String = m.get_payload()?;
        if text == "marker" {
            break;
        }
        seen.push(text);
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    Ok(())
}

#[tokio::test]
async fn a_cancel_request_and_a_broken_log_concern_only_their_own_job() -> anyhow::Result<()> {
    let s = sink().await?;
    let (cancelled, broken) = (Uuid::now_v7(), Uuid::now_v7());
    let others: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
    s.sink.request_cancel(&[cancelled]).await?;
    // the broken job's log key holds a string: Redis refuses its XADD
    let mut conn = s.conn.clone();
    let _: () = redis::cmd("SET")
        .arg(s.keys.event_log(broken))
        .arg("not a stream")
        .query_async(&mut conn)
        .await?;

    let ev = events::progress("thinking", "x", 10);
    let mut calls = vec![
        s.sink.append(cancelled, 0, true, &ev),
        s.sink.append(broken, 0, true, &ev),
    ];
    calls.extend(others.iter().map(|&job| s.sink.append(job, 0, true, &ev)));
    let answers = join_all(calls).await;

    let first = answers[0].as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(first.cancel_requested);
    assert!(
        answers[1].is_err(),
        "the broken log's append reports failure"
    );
    for (job, answer) in others.iter().zip(&answers[2..]) {
        let a = answer.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!((a.seq, a.cancel_requested), (1, false), "job {job}");
    }
    // every appended event is published on the shared channel as `<job> <n> <json>`
    let mut sub = redis::Client::open(redis_url())?.get_async_pubsub().await?;
    sub.subscribe(s.keys.events_channel()).await?;
    let job = others[0];
    let published = s.sink.append(job, 1, true, &ev).await?;
    let mut messages = sub.on_message();
    let msg = tokio::time::timeout(Duration::from_secs(10), messages.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("the subscription ended"))?;
    let payload: String = msg.get_payload()?;
    let seen = events::channel_events(&payload)
        .next()
        .ok_or_else(|| anyhow::anyhow!("unexpected message {payload}"))?;
    assert_eq!(seen.0, job);
    assert_eq!(seen.1.id, published.seq);
    assert_eq!(seen.1.data, ev.to_string());
    Ok(())
}

#[tokio::test]
async fn concurrent_emits_of_one_job_get_distinct_numbers_published_in_order() -> anyhow::Result<()>
{
    let s = sink().await?;
    let mut sub = redis::Client::open(redis_url())?.get_async_pubsub().await?;
    sub.subscribe(s.keys.events_channel()).await?;
    let job = Uuid::now_v7();
    // an LLM plan's weeks: several emits of one job at once, all from the same floor, so most
    // of them find the log already past floor + 1 and are numbered above its top
    let ev = events::progress("generating", "week", 50);
    let answers = join_all((0..8).map(|_| s.sink.append(job, 0, true, &ev))).await;
    let mut seqs = answers
        .into_iter()
        .map(|a| a.map(|a| a.seq))
        .collect::<Result<Vec<_>, _>>()?;
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=8).collect::<Vec<u64>>());
    assert_eq!(s.ids(job).await?, (1..=8).collect::<Vec<u64>>());
    s.sink
        .append_final(job, 10, &events::result(&json!({"ok": true})))
        .await?;

    // each number is published once, in increasing order
    let mut messages = sub.on_message();
    let mut published = Vec::new();
    while published.len() < 10 {
        let msg = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("the subscription ended"))?;
        let payload: String = msg.get_payload()?;
        for (id, ev) in events::channel_events(&payload) {
            if id == job {
                published.push(ev.id);
            }
        }
    }
    assert_eq!(published, (1..=10).collect::<Vec<u64>>());
    Ok(())
}

/// A running job's appends renew its log's TTL only when asked (its writer asks now and then,
/// not at every event); the final events always do.
#[tokio::test]
async fn only_appends_asked_to_and_final_events_renew_the_logs_ttl() -> anyhow::Result<()> {
    let s = sink().await?;
    let job = Uuid::now_v7();
    let mut conn = s.conn.clone();
    let log = s.keys.event_log(job);
    let ev = events::progress("a", "b", 1);

    s.sink.append(job, 0, false, &ev).await?;
    let ttl: i64 = redis::cmd("TTL").arg(&log).query_async(&mut conn).await?;
    assert_eq!(ttl, -1, "not asked: no expiry set");

    s.sink.append(job, 1, true, &ev).await?;
    let ttl: i64 = redis::cmd("TTL").arg(&log).query_async(&mut conn).await?;
    assert!(ttl > 0 && ttl <= 300, "asked: {ttl}");

    let _: i64 = redis::cmd("PERSIST")
        .arg(&log)
        .query_async(&mut conn)
        .await?;
    s.sink
        .append_final(job, 4, &events::result(&json!({"ok": true})))
        .await?;
    let ttl: i64 = redis::cmd("TTL").arg(&log).query_async(&mut conn).await?;
    assert!(ttl > 0 && ttl <= 300, "final events: {ttl}");
    assert_eq!(s.ids(job).await?, [1, 2, 3, 4]);
    Ok(())
}

/// The events one script call appends go out in one message, one line each, in order.
#[tokio::test]
async fn a_calls_events_are_published_in_one_message_one_line_each() -> anyhow::Result<()> {
    let s = sink().await?;
    let mut sub = redis::Client::open(redis_url())?.get_async_pubsub().await?;
    sub.subscribe(s.keys.events_channel()).await?;
    let job = Uuid::now_v7();

    s.sink
        .append_final(job, 2, &events::result(&json!({"text": "two\nlines"})))
        .await?;

    let mut messages = sub.on_message();
    let msg = tokio::time::timeout(Duration::from_secs(10), messages.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("the subscription ended"))?;
    let payload: String = msg.get_payload()?;
    let got: Vec<(Uuid, u64, String)> = events::channel_events(&payload)
        .map(|(id, ev)| (id, ev.id, ev.data))
        .collect();
    assert_eq!(
        got,
        [
            (
                job,
                1,
                events::result(&json!({"text": "two\nlines"})).to_string()
            ),
            (job, 2, events::done().to_string()),
        ],
        "{payload}"
    );
    Ok(())
}

/// Once a later attempt of a job is fenced in, an earlier attempt's appends (a worker that
/// stalled past its lease and woke up) add nothing and say so; the fence never goes back.
#[tokio::test]
async fn an_earlier_attempts_appends_are_refused_once_a_later_one_is_fenced_in()
-> anyhow::Result<()> {
    let s = sink().await?;
    let job = Uuid::now_v7();
    let ev = |n| [events::progress("a", "b", n)];

    let first = s.sink.append_all(job, 1, 0, true, &ev(1)).await?;
    s.sink.fence(job, 2).await?;
    let stale = s.sink.append_all(job, 1, first.seq, true, &ev(2)).await?;
    let stale_again = s
        .sink
        .append_all_again(job, 1, first.seq, true, &ev(2))
        .await?;
    let taken_over = s.sink.append_all(job, 2, first.seq, true, &ev(3)).await?;
    s.sink.fence(job, 1).await?;
    let still_stale = s
        .sink
        .append_all(job, 1, taken_over.seq, true, &ev(4))
        .await?;

    assert!(!first.superseded);
    assert!(stale.superseded && stale_again.superseded && still_stale.superseded);
    assert!(!taken_over.superseded);
    let mut conn = s.conn.clone();
    let log = read_log(&mut conn, &s.keys, job, 0).await?;
    let pcts: Vec<i64> = log
        .iter()
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(&e.data).ok())
        .filter_map(|e| e["progress"].as_i64())
        .collect();
    assert_eq!(pcts, [1, 3], "only the current attempt's events");
    assert_eq!(s.ids(job).await?, [1, 2]);
    Ok(())
}
