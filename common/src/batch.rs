//! Natural batching of per-job PostgreSQL statements (submissions, claims, terminal writes) and
//! Redis script calls (event appends): a request waits only for the call already running;
//! whatever arrived meanwhile goes in the next call together. At idle a batch is one request,
//! so nothing waits for a timer; under load one round trip serves many jobs.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

/// Why a batched call did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Failed(Arc<crate::Error>),
    #[error("the batcher stopped")]
    Stopped,
}

impl BatchError {
    /// Whether the batch failed because PostgreSQL could not be reached (see
    /// [`crate::db::is_unreachable`]): worth repeating as it is once the database is back.
    pub fn is_db_unreachable(&self) -> bool {
        matches!(self, Self::Failed(e) if matches!(&**e, crate::Error::Db(e) if crate::db::is_unreachable(e)))
    }
}

type Pending<I, O> = (I, oneshot::Sender<Result<O, BatchError>>);

/// Sends requests to a background task that runs them in batches of up to `max`, with at most
/// `parallel` batches in flight.
pub struct Batcher<I, O> {
    tx: mpsc::UnboundedSender<Pending<I, O>>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// `run` gets the inputs of one batch and answers each, in order.
    pub fn spawn<F, Fut>(max: usize, parallel: usize, run: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = crate::Result<Vec<O>>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<Pending<I, O>>();
        let run = Arc::new(run);
        let slots = Arc::new(Semaphore::new(parallel.max(1)));
        tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let Some(first) = rx.recv().await else {
                    return;
                };
                let mut batch = vec![first];
                while batch.len() < max.max(1) {
                    match rx.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let run = run.clone();
                tokio::spawn(async move {
                    let (inputs, replies): (Vec<I>, Vec<_>) = batch.into_iter().unzip();
                    match run(inputs).await {
                        Ok(outputs) => {
                            for (reply, out) in replies.into_iter().zip(outputs) {
                                let _ = reply.send(Ok(out));
                            }
                        }
                        Err(e) => {
                            let e = Arc::new(e);
                            for reply in replies {
                                let _ = reply.send(Err(BatchError::Failed(e.clone())));
                            }
                        }
                    }
                    drop(slot);
                });
            }
        });
        Self { tx }
    }

    pub async fn call(&self, input: I) -> Result<O, BatchError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((input, reply))
            .map_err(|_| BatchError::Stopped)?;
        answer.await.map_err(|_| BatchError::Stopped)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn concurrent_calls_share_batches_and_each_gets_its_own_answer() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let batcher = Arc::new(Batcher::spawn(8, 1, move |xs: Vec<u32>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(xs.len());
                // hold the slot a moment so later calls queue up behind this batch
                tokio::task::yield_now().await;
                Ok(xs.into_iter().map(|x| x * 10).collect())
            }
        }));
        let calls: Vec<_> = (0..40u32)
            .map(|i| {
                let b = batcher.clone();
                tokio::spawn(async move { (i, b.call(i).await) })
            })
            .collect();
        for c in calls {
            let (i, out) = c.await.unwrap();
            assert_eq!(out.unwrap(), i * 10);
        }
        let sizes = sizes.lock().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 40);
        assert!(sizes.iter().all(|n| (1..=8).contains(n)), "{sizes:?}");
    }

    #[tokio::test]
    async fn a_failed_batch_fails_each_of_its_calls() {
        let batcher = Batcher::spawn(4, 1, |_xs: Vec<u32>| async {
            Err::<Vec<u32>, _>(crate::Error::Db(sqlx::Error::PoolTimedOut))
        });
        assert!(matches!(batcher.call(1).await, Err(BatchError::Failed(_))));
    }
}
