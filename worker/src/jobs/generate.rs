//! AI Coach jobs with the built-in `rules` provider: `generate_draft` writes the readable draft,
//! `generate_plan` turns a (possibly edited) draft into workouts, streaming each one.

use std::collections::BTreeMap;

use chrono::{SecondsFormat, Utc};
use pacer_common::db::{orgs, users};
use pacer_common::events;
use pacer_common::jobs::{GenerateDraftInput, GeneratePlanInput};
use pacer_planner::{Level, PlanInput, RaceResult, WeekInfo};
use serde_json::{Value, json};

use crate::runner::{JobCtx, JobError};

/// Used when neither the request, the coach nor the organization has a principle.
pub const DEFAULT_PRINCIPLE: &str = "Polarized training with an 80/20 easy-hard split: most running easy and \
conversational, at most two quality sessions a week, gradual progression with regular cut-back weeks.";

/// Request override (non-empty) > coach's personal principle > organization's > built-in default.
pub async fn resolve_principle(
    ctx: &JobCtx,
    requested: Option<&str>,
    org_id: &str,
) -> Result<String, JobError> {
    if let Some(p) = requested.map(str::trim).filter(|p| !p.is_empty()) {
        return Ok(p.to_owned());
    }
    let db = &ctx.worker.db;
    if let Some(p) = users::get_user(db, &ctx.job.owner_id)
        .await?
        .and_then(|u| u.training_principle)
        .filter(|p| !p.trim().is_empty())
    {
        return Ok(p);
    }
    if let Some(p) = orgs::get_org(db, org_id)
        .await?
        .and_then(|o| o.training_principle)
        .filter(|p| !p.trim().is_empty())
    {
        return Ok(p);
    }
    Ok(DEFAULT_PRINCIPLE.to_owned())
}

fn plan_input(input: &GenerateDraftInput, principle: &str) -> PlanInput {
    let level = match input.level.as_str() {
        "beginner" => Level::Beginner,
        "advanced" => Level::Advanced,
        _ => Level::Intermediate,
    };
    PlanInput {
        weeks: input.weeks,
        level,
        start_date: input.start_date,
        training_principle: principle.to_owned(),
        additional_prompt: input.additional_prompt.clone(),
        recent_race: input.recent_race.map(|r| RaceResult {
            distance_m: r.distance_m,
            time_s: r.time_s,
        }),
    }
}

fn metadata(input: &GenerateDraftInput) -> Value {
    json!({
        "weeks": input.weeks,
        "level": input.level,
        "org_id": input.org_id,
        "generated_at": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
    })
}

pub async fn draft(ctx: &JobCtx) -> Result<Value, JobError> {
    let input: GenerateDraftInput = ctx.input()?;
    let delay = ctx.worker.config.rules_step_delay();
    ctx.progress("thinking", "Analyzing training principle...", 20)
        .await?;
    let principle =
        resolve_principle(ctx, input.training_principle.as_deref(), &input.org_id).await?;
    ctx.pause(delay).await?;
    ctx.progress("thinking", "Generating weekly structure...", 60)
        .await?;
    let draft = pacer_planner::write_draft(&plan_input(&input, &principle));
    ctx.pause(delay).await?;
    ctx.progress("thinking", "Writing the draft...", 90).await?;
    Ok(json!({"draft": draft.text, "training_principle": principle, "metadata": metadata(&input)}))
}

pub async fn plan(ctx: &JobCtx) -> Result<Value, JobError> {
    let input: GeneratePlanInput = ctx.input()?;
    let delay = ctx.worker.config.rules_step_delay();
    ctx.progress("thinking", "Reading the draft...", 5).await?;
    let principle = resolve_principle(
        ctx,
        input.draft.training_principle.as_deref(),
        &input.draft.org_id,
    )
    .await?;
    let plan =
        pacer_planner::build_plan(&plan_input(&input.draft, &principle), &input.refined_draft);
    let total = plan.workouts.len();
    let mut content = Vec::with_capacity(total);
    for (i, workout) in plan.workouts.iter().enumerate() {
        ctx.pause(delay).await?;
        let count = i + 1;
        let pct = u8::try_from(count * 100 / total.max(1))
            .unwrap_or(100)
            .min(99);
        let message = format!("Generating workout {count} of {total}");
        let progress = json!({"type": events::PROGRESS, "status": "generating", "message": message,
                              "count": count, "total": total, "progress": pct});
        ctx.emit(&progress, Some((pct, &message))).await?;
        let data = serde_json::to_value(workout).map_err(|e| JobError::Permanent(e.into()))?;
        ctx.emit(&json!({"type": events::WORKOUT, "data": data}), None)
            .await?;
        content.push(data);
        let week_done = plan
            .workouts
            .get(i + 1)
            .is_none_or(|next| next.week != workout.week);
        if week_done && let Some(info) = plan.weekly_info.get(&workout.week) {
            let one = json!({ workout.week.to_string(): info });
            ctx.emit(&json!({"type": events::WEEKLY_INFO, "data": one}), None)
                .await?;
        }
    }
    Ok(json!({
        "content": content,
        "weekly_info": weekly_info_json(&plan.weekly_info),
        "total_workouts": total,
        "warnings": plan.warnings,
        "training_principle": principle,
        "metadata": metadata(&input.draft),
    }))
}

fn weekly_info_json(info: &BTreeMap<u32, WeekInfo>) -> Value {
    let map: serde_json::Map<String, Value> = info
        .iter()
        .map(|(week, wi)| {
            (
                week.to_string(),
                serde_json::to_value(wi).unwrap_or(Value::Null),
            )
        })
        .collect();
    Value::Object(map)
}
