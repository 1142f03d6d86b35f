use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apalis_redis::{Config as ApalisConfig, ConnectionManager};
use metrics_exporter_prometheus::PrometheusHandle;
use pacer_common::auth::Verifier;
use pacer_common::batch::Batcher;
use pacer_common::db::jobs::{JobRow, get_jobs};
use pacer_common::db::{Commit, KeyedConns};
use pacer_common::events::EventSink;
use pacer_common::jobs::Queue;
use pacer_common::keys::Keys;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::ApiConfig;
use crate::hub::Hub;
use crate::jobs::{Recorder, RecorderCtx};

/// Shared by every handler (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ApiConfig>,
    pub db: PgPool,
    pub redis: ConnectionManager,
    pub keys: Keys,
    pub verifier: Verifier,
    pub hub: Hub,
    pub events: EventSink,
    pub metrics: Option<PrometheusHandle>,
    generation: Arc<ApalisConfig>,
    stats: Arc<ApalisConfig>,
    /// Records and pushes submissions (batched).
    pub recorder: Arc<Recorder>,
    /// Reads job rows by id (batched: every poll and SSE connection reads its job).
    pub rows: Arc<Batcher<Uuid, Option<JobRow>>>,
    /// Users already provisioned by this process (skips the upsert on later requests).
    pub seen_users: Arc<Mutex<HashSet<String>>>,
    /// Cancelled at SIGTERM: `/readyz` answers `draining` while requests are still served.
    pub draining: CancellationToken,
}

impl AppState {
    pub fn new(
        config: ApiConfig,
        db: PgPool,
        redis: ConnectionManager,
        keys: Keys,
        verifier: Verifier,
        hub: Hub,
        metrics: Option<PrometheusHandle>,
    ) -> Self {
        let generation =
            pacer_common::queue::apalis_config(&keys, Queue::Generation, &config.common);
        let stats = pacer_common::queue::apalis_config(&keys, Queue::Stats, &config.common);
        let events = EventSink::new(
            redis.clone(),
            keys.clone(),
            config.common.event_log_ttl_secs,
        );
        let generation = Arc::new(generation);
        let stats = Arc::new(stats);
        // the recorder's and the row reader's statements, two of each at a time
        // a client waits on these: a hung PostgreSQL gets its 503 within ~20 s (this bound, then
        // the repeat's connect timeout), before common client timeouts of 30 s
        let keyed = KeyedConns::answering_within(&db, 4, Commit::Durable, Duration::from_secs(10));
        let recorder = RecorderCtx {
            keyed: keyed.clone(),
            db: db.clone(),
            redis: redis.clone(),
            keys: keys.clone(),
            generation: generation.clone(),
            stats: stats.clone(),
            high_water: config.common.queue_high_water,
        }
        .spawn();
        let rows = {
            let db = keyed;
            Batcher::spawn(64, 2, move |ids: Vec<Uuid>| {
                let db = db.clone();
                let ids = Arc::new(ids);
                async move {
                    Ok(db
                        .run(|c| {
                            let ids = ids.clone();
                            Box::pin(async move { get_jobs(c, &ids).await })
                        })
                        .await?)
                }
            })
        };
        Self {
            config: Arc::new(config),
            db,
            redis,
            keys,
            verifier,
            hub,
            events,
            metrics,
            generation,
            stats,
            recorder: Arc::new(recorder),
            rows: Arc::new(rows),
            seen_users: Arc::default(),
            draining: CancellationToken::new(),
        }
    }

    pub fn apalis(&self, queue: Queue) -> &ApalisConfig {
        match queue {
            Queue::Generation => &self.generation,
            Queue::Stats => &self.stats,
        }
    }
}
