use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global tracing subscriber. `RUST_LOG` overrides the default filter.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,apalis=warn,apalis_core=warn,apalis_redis=warn,sqlx=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // try_init: a second call (tests) must not panic
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Which process's counters [`zero_counters`] registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    Api,
    Worker,
}

/// Registers every counter the process may increment, at 0, once the recorder is installed:
/// a series that appears only at its first increment has no `rate()` until then, and an alert
/// on it ("any job failed") cannot tell "none yet" from "not scraped".
pub fn zero_counters(process: Process) {
    use crate::jobs::{JobKind, JobState, Queue};
    let zero = |c: metrics::Counter| c.increment(0);
    for what in ["PostgreSQL", "Redis"] {
        zero(metrics::counter!("pacer_dependency_waits_total", "dependency" => what));
    }
    for kind in JobKind::ALL.map(JobKind::as_str) {
        match process {
            Process::Api => {
                zero(metrics::counter!("pacer_jobs_submitted_total", "kind" => kind));
                zero(
                    metrics::counter!("pacer_jobs_finished_total", "kind" => kind, "state" => JobState::Cancelled.as_str()),
                );
            }
            Process::Worker => {
                zero(metrics::counter!("pacer_job_retries_total", "kind" => kind));
                for state in [JobState::Succeeded, JobState::Failed, JobState::Cancelled] {
                    zero(
                        metrics::counter!("pacer_jobs_finished_total", "kind" => kind, "state" => state.as_str()),
                    );
                }
            }
        }
    }
    match process {
        Process::Api => zero(metrics::counter!("pacer_jobs_left_to_dispatchers_total")),
        Process::Worker => {
            for queue in Queue::ALL.map(Queue::as_str) {
                zero(metrics::counter!("pacer_jobs_reconciled_total", "queue" => queue));
                zero(metrics::counter!("pacer_jobs_pruned_total", "queue" => queue));
            }
            for kind in ["prompt", "completion"] {
                zero(metrics::counter!("pacer_llm_tokens_total", "kind" => kind));
            }
            zero(metrics::counter!("pacer_snapshot_rollovers_total"));
            zero(metrics::counter!("pacer_runs_detached_total"));
            zero(metrics::counter!("pacer_loop_restarts_total"));
            zero(metrics::counter!("pacer_event_append_waits_total"));
        }
    }
}
