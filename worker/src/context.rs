use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use apalis_redis::{Config as ApalisConfig, ConnectionManager};
use pacer_common::events::EventSink;
use pacer_common::jobs::Queue;
use pacer_common::keys::Keys;
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::WorkerConfig;
use crate::llm::OpenAi;

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
    /// Jobs this process is running now (handed back if shutdown outlasts the grace period).
    pub running: Mutex<HashSet<Uuid>>,
    /// The `openai` plan provider, when configured (`PACER_LLM_PROVIDER=openai`).
    pub openai: Option<OpenAi>,
}

impl WorkerCtx {
    pub fn new(
        config: WorkerConfig,
        name: String,
        db: PgPool,
        redis: ConnectionManager,
    ) -> anyhow::Result<Arc<Self>> {
        let keys = Keys::new(config.common.redis_prefix.clone());
        let events = EventSink {
            redis: redis.clone(),
            keys: keys.clone(),
            ttl_secs: config.common.event_log_ttl_secs,
        };
        let generation =
            pacer_common::queue::apalis_config(&keys, Queue::Generation, &config.common);
        let stats = pacer_common::queue::apalis_config(&keys, Queue::Stats, &config.common);
        let openai = if config.llm_provider == "openai" {
            Some(OpenAi::new(&config)?)
        } else {
            None
        };
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
