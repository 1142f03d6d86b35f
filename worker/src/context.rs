use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use apalis_redis::{Config as ApalisConfig, ConnectionManager};
use pacer_common::db::jobs::{self, Finish, JobRow};
use pacer_common::db::{Commit, KeyedConns};
use pacer_common::events::EventSink;
use pacer_common::jobs::Queue;
use pacer_common::keys::Keys;
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::WorkerConfig;
use crate::llm::OpenAi;
use pacer_common::batch::Batcher;

/// What every job of this process shares.
pub struct WorkerCtx {
    pub config: WorkerConfig,
    /// Unique per process (apalis refuses a restarted worker that reuses a live name).
    pub name: String,
    pub db: PgPool,
    pub redis: ConnectionManager,
    pub keys: Keys,
    pub events: EventSink,
    pub generation: ApalisConfig,
    pub stats: ApalisConfig,
    /// Jobs this process is running, and runs dropped unfinished when the shutdown grace period
    /// ran out (handed back at exit).
    pub running: Mutex<HashSet<Uuid>>,
    /// The `openai` plan provider, when configured (`PACER_LLM_PROVIDER=openai`).
    pub openai: Option<OpenAi>,
    /// Claims of delivered jobs, batched: the claimed row, or `None` (see `jobs::unclaimed`).
    pub claims: Batcher<Uuid, Option<JobRow>>,
    /// Terminal writes, batched: the reserved `done` number, or `None` if the job had ended.
    pub finishes: Batcher<Finish, Option<jobs::Ended>>,
    /// Stored training principles of (coach, organization), batched: (personal, organization).
    pub principles: Batcher<(String, String), (Option<String>, Option<String>)>,
}

/// Jobs per batched statement, and batches in flight at once per process. One at a time: a
/// lone request still goes at once, and under load the batches grow instead of splitting
/// between two statements (alternated runs: 50,000-job drains +8 %, end to end with 2 workers
/// +17 %, PostgreSQL commits per job −20 %, no latency difference at 500 jobs/s; docs/benchmark-history.md
/// "What changed" 24).
const BATCH_MAX: usize = 64;
const BATCHES_IN_FLIGHT: usize = 1;

fn claim_batcher(
    db: Arc<KeyedConns>,
    worker: String,
    lease_secs: f64,
) -> Batcher<Uuid, Option<JobRow>> {
    Batcher::spawn(BATCH_MAX, BATCHES_IN_FLIGHT, move |ids: Vec<Uuid>| {
        let (db, worker) = (db.clone(), worker.clone());
        async move {
            let mut distinct = ids.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let distinct = Arc::new(distinct);
            let token = Uuid::new_v4();
            let mut rows: HashMap<Uuid, JobRow> = db
                .run(|c| {
                    let (ids, worker) = (distinct.clone(), worker.clone());
                    Box::pin(
                        async move { jobs::claim_many(c, &ids, &worker, lease_secs, token).await },
                    )
                })
                .await?
                .into_iter()
                .map(|r| (r.id, r))
                .collect();
            // a second delivery of the same job in one batch does not get the row twice
            Ok(ids.iter().map(|id| rows.remove(id)).collect())
        }
    })
}

fn finish_batcher(db: Arc<KeyedConns>, worker: String) -> Batcher<Finish, Option<jobs::Ended>> {
    Batcher::spawn(BATCH_MAX, BATCHES_IN_FLIGHT, move |writes: Vec<Finish>| {
        let (db, worker) = (db.clone(), worker.clone());
        async move {
            let mut seen = HashSet::new();
            let first: Vec<bool> = writes.iter().map(|w| seen.insert(w.id)).collect();
            let distinct: Vec<Finish> = writes
                .iter()
                .zip(&first)
                .filter(|(_, first)| **first)
                .map(|(w, _)| w.clone())
                .collect();
            let distinct = Arc::new(distinct);
            let won: HashMap<Uuid, jobs::Ended> = db
                .run(|c| {
                    let (writes, worker) = (distinct.clone(), worker.clone());
                    Box::pin(async move { jobs::finish_many(c, &worker, &writes).await })
                })
                .await?
                .into_iter()
                .map(|e| (e.id, e))
                .collect();
            Ok(writes
                .iter()
                .zip(first)
                .map(|(w, first)| if first { won.get(&w.id).copied() } else { None })
                .collect())
        }
    })
}

impl WorkerCtx {
    pub fn new(
        config: WorkerConfig,
        name: String,
        db: PgPool,
        redis: ConnectionManager,
    ) -> anyhow::Result<Arc<Self>> {
        let keys = Keys::new(config.common.redis_prefix.clone());
        let events = EventSink::new(
            redis.clone(),
            keys.clone(),
            config.common.event_log_ttl_secs,
        );
        let generation =
            pacer_common::queue::apalis_config(&keys, Queue::Generation, &config.common);
        let stats = pacer_common::queue::apalis_config(&keys, Queue::Stats, &config.common);
        let openai = if config.llm_provider == "openai" {
            Some(OpenAi::new(&config)?)
        } else {
            None
        };
        let claims = claim_batcher(
            KeyedConns::new(&db, BATCHES_IN_FLIGHT, Commit::Lease),
            name.clone(),
            config.common.job_lease().as_secs_f64(),
        );
        // terminal writes and principle reads share connections: a job needs them at
        // different moments, and each process's connections count against PostgreSQL's limit
        let durable = KeyedConns::new(&db, 2 * BATCHES_IN_FLIGHT, Commit::Durable);
        let finishes = finish_batcher(durable.clone(), name.clone());
        let principles = Batcher::spawn(
            BATCH_MAX,
            BATCHES_IN_FLIGHT,
            move |pairs: Vec<(String, String)>| {
                let db = durable.clone();
                // a batch is mostly one coach's jobs: each pair is read once
                let mut distinct = pairs.clone();
                distinct.sort_unstable();
                distinct.dedup();
                let distinct = Arc::new(distinct);
                async move {
                    let stored = db
                        .run(|c| {
                            let distinct = distinct.clone();
                            Box::pin(async move {
                                pacer_common::principle::stored_many(c, &distinct).await
                            })
                        })
                        .await?;
                    pairs
                        .iter()
                        .map(|pair| {
                            distinct
                                .binary_search(pair)
                                .ok()
                                .and_then(|i| stored.get(i).cloned())
                                .ok_or_else(|| {
                                    pacer_common::Error::Invalid(format!(
                                        "no stored principles read for {pair:?}"
                                    ))
                                })
                        })
                        .collect()
                }
            },
        );
        Ok(Arc::new(Self {
            config,
            name,
            db,
            redis,
            keys,
            events,
            generation,
            stats,
            running: Mutex::default(),
            openai,
            claims,
            finishes,
            principles,
        }))
    }

    pub fn apalis(&self, queue: Queue) -> &ApalisConfig {
        match queue {
            Queue::Generation => &self.generation,
            Queue::Stats => &self.stats,
        }
    }

    pub fn running_jobs(&self) -> Vec<Uuid> {
        self.running
            .lock()
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// `{hostname}-{pid}-{random}`: unique even when a worker restarts at once on the same host.
pub fn worker_name() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    format!(
        "{}-{}-{:04x}",
        if host.is_empty() { "worker" } else { &host },
        std::process::id(),
        rand::random::<u16>()
    )
}
