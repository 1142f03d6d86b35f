//! Every Redis key and channel Pacer uses, under one prefix.

use uuid::Uuid;

use crate::jobs::Queue;

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// apalis queue name; apalis derives its own keys (`{name}:scheduled`, `{name}:active`, …).
    pub fn queue(&self, queue: Queue) -> String {
        format!("{}:{}", self.prefix, queue.as_str())
    }

    /// Published after a push so idle workers fetch at once instead of on their next poll.
    pub fn wake_channel(&self, queue: Queue) -> String {
        format!("{}:wake:{}", self.prefix, queue.as_str())
    }

    /// The job's event log (a stream whose entry ids are `n-0`, n = SSE event id).
    pub fn event_log(&self, job_id: Uuid) -> String {
        format!("{}:job:{}:events", self.prefix, job_id)
    }

    /// Set when a running job's cancellation is requested; read with each of its events.
    pub fn cancel_flag(&self, job_id: Uuid) -> String {
        format!("{}:job:{}:cancel", self.prefix, job_id)
    }

    /// The latest attempt of a job that has started: appends of earlier attempts are refused.
    pub fn attempt_fence(&self, job_id: Uuid) -> String {
        format!("{}:job:{}:attempt", self.prefix, job_id)
    }

    /// The one channel every job event is published on; each API process subscribes once.
    pub fn events_channel(&self) -> String {
        format!("{}:events", self.prefix)
    }

    /// Written by `/readyz`: a Redis that answers `PING` may still refuse writes (`OOM`,
    /// `READONLY`, `LOADING`).
    pub fn readiness_probe(&self) -> String {
        format!("{}:readyz", self.prefix)
    }

    pub fn cache(&self, name: &str) -> String {
        format!("{}:cache:{}", self.prefix, name)
    }
}
