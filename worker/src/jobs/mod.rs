//! Every job kind, registered in one place. Kind strings are a wire contract: never rename one.

use pacer_common::jobs::JobKind;
use serde_json::Value;

use crate::runner::{JobCtx, JobError};

pub(crate) mod generate;
mod stats;

/// Each kind's future is boxed: inline, every job's task would be as large as the largest
/// kind's (an LLM plan, ~15 kB), and tokio copies a task's whole future slot when it stores
/// the output (11 % of a draining worker's CPU was `memcpy`; docs/benchmark-history.md "What changed" 26).
pub async fn run(kind: JobKind, ctx: &JobCtx) -> Result<Value, JobError> {
    match kind {
        JobKind::GenerateDraft => Box::pin(generate::draft(ctx)).await,
        JobKind::GeneratePlan => Box::pin(generate::plan(ctx)).await,
        JobKind::RecomputeStats => Box::pin(stats::recompute(ctx)).await,
        JobKind::RecomputeBatch => Box::pin(stats::recompute_batch(ctx)).await,
    }
}
