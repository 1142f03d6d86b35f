use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use apalis_redis::{Config as ApalisConfig, ConnectionManager};
use metrics_exporter_prometheus::PrometheusHandle;
use pacer_common::auth::Verifier;
use pacer_common::events::EventSink;
use pacer_common::jobs::Queue;
use pacer_common::keys::Keys;
use sqlx::PgPool;

use crate::config::ApiConfig;
use crate::hub::Hub;

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
    /// Users already provisioned by this process (skips the upsert on later requests).
    pub seen_users: Arc<Mutex<HashSet<String>>>,
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
        let events = EventSink {
            redis: redis.clone(),
            keys: keys.clone(),
            ttl_secs: config.common.event_log_ttl_secs,
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
            generation: Arc::new(generation),
            stats: Arc::new(stats),
            seen_users: Arc::default(),
        }
    }

    pub fn apalis(&self, queue: Queue) -> &ApalisConfig {
        match queue {
            Queue::Generation => &self.generation,
            Queue::Stats => &self.stats,
        }
    }
}
