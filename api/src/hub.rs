//! One Redis subscription per API process, fanned out in process to every SSE client of a job.
//! No Redis connection per client: 10,000 clients cost 10,000 channel receivers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use pacer_common::events::{NumberedEvent, channel_events};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// An event as every client of its job receives it: its SSE frame is formatted once, here, and
/// shared by all of them.
#[derive(Debug)]
pub struct LiveEvent {
    pub event: NumberedEvent,
    pub frame: bytes::Bytes,
}

impl std::ops::Deref for LiveEvent {
    type Target = NumberedEvent;

    fn deref(&self) -> &NumberedEvent {
        &self.event
    }
}

#[derive(Debug, Clone)]
pub enum HubMsg {
    Event(Arc<LiveEvent>),
    /// The subscription was re-established; events may have been missed: re-read the log.
    Resync,
}

type Senders = HashMap<Uuid, broadcast::Sender<HubMsg>>;

/// Live events buffered per watched job. A client that falls further behind re-reads the job's
/// log (`Lagged`), so this only needs to cover a burst; it is allocated whole for every job
/// that has a client (1,024 slots cost ~48 KiB per job, measurable at hundreds of jobs/s).
const LIVE_BUFFER: usize = 64;

#[derive(Clone, Default)]
pub struct Hub {
    jobs: Arc<Mutex<Senders>>,
    /// Set at shutdown: every stream ends, and a stream opened later ends at once.
    closed: Arc<std::sync::atomic::AtomicBool>,
}

/// A client's place in the hub; leaving drops the job's channel when it was the last one.
pub struct Subscription {
    pub rx: broadcast::Receiver<HubMsg>,
    hub: Hub,
    job_id: Uuid,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.hub.jobs.lock() {
            // our receiver is still alive here, so "1" means we are the last one
            if jobs
                .get(&self.job_id)
                .is_some_and(|tx| tx.receiver_count() <= 1)
            {
                jobs.remove(&self.job_id);
            }
        }
        metrics::gauge!("pacer_sse_clients").decrement(1.0);
    }
}

impl Hub {
    pub fn subscribe(&self, job_id: Uuid) -> Subscription {
        let rx = if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            // no sender: the stream's first wait reads `Closed`
            broadcast::channel(1).1
        } else {
            self.channel(job_id)
        };
        metrics::gauge!("pacer_sse_clients").increment(1.0);
        Subscription {
            rx,
            hub: self.clone(),
            job_id,
        }
    }

    fn channel(&self, job_id: Uuid) -> broadcast::Receiver<HubMsg> {
        match self.jobs.lock() {
            Ok(mut jobs) => jobs
                .entry(job_id)
                .or_insert_with(|| broadcast::channel(LIVE_BUFFER).0)
                .subscribe(),
            // a poisoned lock only means another thread panicked mid-insert; the map is still usable
            Err(poisoned) => poisoned
                .into_inner()
                .entry(job_id)
                .or_insert_with(|| broadcast::channel(LIVE_BUFFER).0)
                .subscribe(),
        }
    }

    /// Ends every stream (their channels close; each ends after what it has queued), so that a
    /// graceful stop does not wait its whole grace period for streams that never end by
    /// themselves. Clients resume on another process with `Last-Event-ID`.
    fn close_all(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let drained = match self.jobs.lock() {
            Ok(mut jobs) => std::mem::take(&mut *jobs),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        drop(drained);
    }

    fn dispatch(&self, job_id: Uuid, event: NumberedEvent) {
        let tx = match self.jobs.lock() {
            Ok(jobs) => jobs.get(&job_id).cloned(),
            Err(_) => None,
        };
        if let Some(tx) = tx {
            let frame = crate::sse::frame(event.id, &event.data);
            let _ = tx.send(HubMsg::Event(Arc::new(LiveEvent { event, frame })));
        }
    }

    fn resync_all(&self) {
        if let Ok(jobs) = self.jobs.lock() {
            for tx in jobs.values() {
                let _ = tx.send(HubMsg::Resync);
            }
        }
    }

    pub fn jobs_watched(&self) -> usize {
        self.jobs.lock().map(|j| j.len()).unwrap_or(0)
    }

    /// Keeps the subscription alive until `stop`, reconnecting with backoff; then ends every
    /// stream.
    pub async fn run(self, client: redis::Client, channel: String, stop: CancellationToken) {
        self.follow(client, channel, stop).await;
        self.close_all();
    }

    async fn follow(&self, client: redis::Client, channel: String, stop: CancellationToken) {
        let mut delay = Duration::from_millis(100);
        let mut first = true;
        loop {
            let attempt = async {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            let pubsub = tokio::select! {
                _ = stop.cancelled() => return,
                r = attempt => r,
            };
            match pubsub {
                Ok(pubsub) => {
                    tracing::info!(%channel, "event subscription ready");
                    if !first {
                        self.resync_all();
                    }
                    first = false;
                    delay = Duration::from_millis(100);
                    let mut messages = pubsub.into_on_message();
                    loop {
                        let msg = tokio::select! {
                            _ = stop.cancelled() => return,
                            m = messages.next() => m,
                        };
                        let Some(msg) = msg else { break };
                        let Ok(payload) = msg.get_payload::<String>() else {
                            continue;
                        };
                        for (job_id, event) in channel_events(&payload) {
                            self.dispatch(job_id, event);
                        }
                    }
                    tracing::warn!("event subscription lost; reconnecting");
                    self.resync_all();
                }
                Err(e) => tracing::warn!(error = %e, "cannot subscribe to job events; retrying"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}
