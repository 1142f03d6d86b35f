//! When a worker fetches: on a producer's wake-up (published after each push) and on a fallback
//! interval.
//!
//! apalis-core 1.0's own strategies lose wake-ups, which showed as jobs waiting up to the
//! worker heartbeat (2 s) for pickup:
//! - `Strategy` stops at the first ready strategy, and `IntervalStrategy` re-arms its timer
//!   without polling it, so after a tick or a stream item there can be no waker registered at
//!   all; the worker then sleeps until its heartbeat timer fires;
//! - `PollWith` drains the strategy before polling the backend and ignores the result, so a
//!   wake-up that arrives while a fetch is in flight is used up by that fetch; if the fetch ran
//!   in Redis just before the push, the job waits for the next wake-up.
//!
//! [`WakeStrategy`] leaves a waker on both sources after every poll, and [`subscribe`] repeats
//! each wake-up a little later ([`FOLLOW_UPS`]) so that a fetch starts after the one in flight.

use std::collections::VecDeque;
use std::task::{Context, Poll};
use std::time::Duration;

use apalis::prelude::{PollSnapshot, PollStrategy};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// When a wake-up is repeated, after the first.
pub const FOLLOW_UPS: [Duration; 2] = [Duration::from_millis(5), Duration::from_millis(25)];

/// Fetch on a wake-up or every `interval`, with a waker always registered on both.
pub struct WakeStrategy {
    wakes: mpsc::Receiver<()>,
    interval: Interval,
}

impl WakeStrategy {
    pub fn new(wakes: mpsc::Receiver<()>, every: Duration) -> Self {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self { wakes, interval }
    }
}

impl PollStrategy for WakeStrategy {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        let mut due = false;
        // poll each source until it is pending, which is what registers the waker
        while let Poll::Ready(Some(())) = self.wakes.poll_recv(cx) {
            due = true;
        }
        while self.interval.poll_tick(cx).is_ready() {
            due = true;
        }
        if due {
            Poll::Ready(Some(()))
        } else {
            Poll::Pending
        }
    }
}

/// Wake-ups published on `channel` (apalis-redis 1.0 publishes none for normal pushes), each
/// repeated after [`FOLLOW_UPS`]. Reconnects on its own; a missed wake-up costs one poll
/// interval.
pub fn subscribe(
    client: redis::Client,
    channel: String,
    stop: CancellationToken,
) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        // a full channel already holds a wake-up: coalesce
        let wake = || {
            let _ = tx.try_send(());
        };
        loop {
            let sub = async {
                let mut ps = client.get_async_pubsub().await?;
                ps.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(ps)
            };
            match sub.await {
                Ok(ps) => {
                    let mut messages = ps.into_on_message();
                    let mut follow_ups: VecDeque<Instant> = VecDeque::new();
                    loop {
                        let next_follow_up = follow_ups.front().copied();
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            m = messages.next() => match m {
                                Some(_) => {
                                    wake();
                                    // one schedule at a time: under load wake-ups are frequent
                                    if follow_ups.is_empty() {
                                        let now = Instant::now();
                                        follow_ups.extend(FOLLOW_UPS.iter().map(|d| now + *d));
                                    }
                                }
                                None => break,
                            },
                            _ = sleep_until_some(next_follow_up) => {
                                follow_ups.pop_front();
                                wake();
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(%channel, error = %e, "wake-up subscription failed; retrying")
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });
    rx
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::sync::Notify;

    /// A waker that tells the test when the worker would be woken.
    struct Woken(Notify);

    impl futures::task::ArcWake for Woken {
        fn wake_by_ref(this: &Arc<Self>) {
            this.0.notify_one();
        }
    }

    /// The apalis-core defect this replaces: once a poll returned ready, nothing woke the
    /// worker again (neither the next wake-up nor the next tick).
    #[tokio::test]
    async fn after_a_ready_poll_both_the_next_wake_up_and_the_next_tick_wake_the_worker() {
        let (tx, rx) = mpsc::channel(1);
        // an interval far longer than the test's wait for the wake-up, short for the tick's
        let mut strategy = WakeStrategy::new(rx, Duration::from_millis(300));
        let snapshot = PollSnapshot::default();
        let woken = Arc::new(Woken(Notify::new()));
        let waker = futures::task::waker(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let deadline = Duration::from_secs(10);

        // the first tick is immediate; a wake-up arrives too
        tx.try_send(()).unwrap();
        assert!(strategy.poll_drive(&mut cx, &snapshot).is_ready());
        // no further poll: the next wake-up must still reach the worker
        tx.try_send(()).unwrap();
        tokio::time::timeout(deadline, woken.0.notified())
            .await
            .expect("a wake-up after a ready poll wakes the worker");
        assert!(strategy.poll_drive(&mut cx, &snapshot).is_ready());
        // and so must the next tick
        tokio::time::timeout(deadline, woken.0.notified())
            .await
            .expect("a tick after a ready poll wakes the worker");
        assert!(strategy.poll_drive(&mut cx, &snapshot).is_ready());
        assert!(strategy.poll_drive(&mut cx, &snapshot).is_pending());
    }
}
