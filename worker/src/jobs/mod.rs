//! Every job kind, registered in one place. Kind strings are a wire contract: never rename one.

use pacer_common::jobs::JobKind;
use serde_json::Value;

use crate::runner::{JobCtx, JobError};

mod generate;
mod stats;

pub async fn run(kind: JobKind, ctx: &JobCtx) -> Result<Value, JobError> {
    match kind {
        JobKind::GenerateDraft => generate::draft(ctx).await,
        JobKind::GeneratePlan => generate::plan(ctx).await,
        JobKind::RecomputeStats => stats::recompute(ctx).await,
        JobKind::RecomputeBatch => stats::recompute_batch(ctx).await,
    }
}
