//! AI Coach jobs with the built-in `rules` provider or a model (`crate::llm`): `generate_draft`
//! writes the readable draft, `generate_plan` turns a (possibly edited) draft into workouts,
//! streaming each one. Either way the workout preference is applied before a workout is
//! streamed, so the `workout` and `weekly_info` events are the result's.

use std::collections::BTreeMap;

use chrono::{SecondsFormat, Utc};
use pacer_common::db::workouts::{self, WorkoutRow};
use pacer_common::events;
use pacer_common::jobs::{GenerateDraftInput, GeneratePlanInput};
use pacer_planner::{Level, PlanInput, RaceResult};
use serde_json::{Value, json};

use crate::runner::{JobCtx, JobError};

async fn resolve_principle(
    ctx: &JobCtx,
    requested: Option<&str>,
    org_id: &str,
) -> Result<String, JobError> {
    use pacer_common::principle::choose;
    if requested.is_some_and(|p| !p.trim().is_empty()) {
        return Ok(choose(requested, None, None).0);
    }
    let (personal, org) = ctx
        .worker
        .principles
        .call((ctx.job.owner_id.clone(), org_id.to_owned()))
        .await?;
    Ok(choose(None, personal.as_deref(), org.as_deref()).0)
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
    let mut metadata = metadata(&input);
    let text = match &ctx.worker.openai {
        // boxed: the model call's future is large, the rules path's is not
        Some(model) => {
            let draft = Box::pin(model.draft(ctx, &input, &principle)).await?;
            if draft.truncated {
                metadata["truncated"] = true.into();
                metadata["missing_weeks"] = draft.missing_weeks.into();
            }
            draft.text
        }
        None => {
            ctx.pause(delay).await?;
            ctx.progress("thinking", "Generating weekly structure...", 60)
                .await?;
            let draft = pacer_planner::write_draft(&plan_input(&input, &principle));
            ctx.pause(delay).await?;
            ctx.progress("thinking", "Writing the draft...", 90).await?;
            draft.text
        }
    };
    let text = pacer_planner::with_workout_source(text, input.preference());
    Ok(json!({"draft": text, "training_principle": principle, "metadata": metadata}))
}

pub async fn plan(ctx: &JobCtx) -> Result<Value, JobError> {
    let input: GeneratePlanInput = ctx.input()?;
    let principle = resolve_principle(
        ctx,
        input.draft.training_principle.as_deref(),
        &input.draft.org_id,
    )
    .await?;
    // the rules reading of the draft: the plan itself, or (for a model) the expected day count
    let rules =
        pacer_planner::build_plan(&plan_input(&input.draft, &principle), &input.refined_draft);
    // the request's own preference, else the one its draft was written for
    let preference = match &input.draft.workout_preference {
        Some(p) => p.as_str(),
        None => pacer_planner::workout_source(&input.refined_draft).unwrap_or("ai_generate"),
    };
    let library = match preference {
        "ai_generate" => Vec::new(),
        _ => workouts::list(&ctx.worker.db, &input.draft.org_id).await?,
    };
    let Streamed {
        weeks: streamed,
        partial,
    } = streamed_weeks(ctx).await;
    // what a client following the stream has been told so far ("3 of 6"): counts go on from it
    let already: usize = streamed.values().map(|(workouts, _)| workouts.len()).sum();
    let (content, weekly_info, mut warnings) = match &ctx.worker.openai {
        Some(model) => {
            let mut expected = BTreeMap::new();
            for w in &rules.workouts {
                *expected.entry(w.week).or_insert(0usize) += 1;
            }
            // the model's events count out of the draft's training days
            reading_the_draft(ctx, already, rules.workouts.len()).await?;
            // each week is final (preference applied, distance recomputed) before it is
            // streamed, so the events are the result's content and weekly_info
            let finish = |workouts: Vec<Value>, info: Value, warnings: &mut Vec<String>| {
                finish_week(workouts, info, &library, preference, warnings)
            };
            let (content, info, warnings) =
                Box::pin(model.plan(ctx, &input, &principle, &expected, &finish, &streamed))
                    .await?;
            (content, Value::Object(info), warnings)
        }
        None => {
            let planned = rules
                .workouts
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| JobError::Permanent(e.into()))?;
            let info = rules
                .weekly_info
                .iter()
                .map(|(w, i)| {
                    (
                        w.to_string(),
                        serde_json::to_value(i).unwrap_or(Value::Null),
                    )
                })
                .collect();
            let mut warnings = rules.warnings.clone();
            let content = apply_preference(planned, &library, preference, &mut warnings);
            let weekly_info = with_distances(info, &content);
            let (content, weekly_info) = keep_streamed(content, weekly_info, &streamed);
            reading_the_draft(ctx, already, content.len()).await?;
            stream_workouts(ctx, &content, &weekly_info, &streamed, partial).await?;
            (content, weekly_info, warnings)
        }
    };
    if !streamed.is_empty() {
        let weeks: Vec<String> = streamed.keys().map(u32::to_string).collect();
        warnings.push(format!(
            "week(s) {} kept as an earlier attempt streamed them",
            weeks.join(", ")
        ));
    }
    Ok(json!({
        "content": content,
        "weekly_info": weekly_info,
        "total_workouts": content.len(),
        "warnings": warnings,
        "training_principle": principle,
        "metadata": metadata(&input.draft),
    }))
}

/// A plan's first event. Like every `progress` event of a plan (seed 000, stream-content), it
/// carries `count` (workouts generated so far: those an earlier attempt streamed) and `total`
/// (the same total as the events that follow), so it is sent once the total is known.
async fn reading_the_draft(ctx: &JobCtx, count: usize, total: usize) -> Result<(), JobError> {
    // a later attempt keeps the progress an earlier one reached: it never goes back
    let pct = u8::try_from(ctx.job.progress.clamp(0, 99))
        .unwrap_or(0)
        .max(READING_THE_DRAFT);
    let message = "Reading the draft...";
    let progress = json!({"type": events::PROGRESS, "status": "thinking", "message": message,
                          "count": count, "total": total, "progress": pct});
    ctx.emit(&progress, Some((pct, message))).await
}

/// The progress of a plan's first event.
const READING_THE_DRAFT: u8 = 5;

/// A plan's progress once `count` of its `total` workouts are streamed: from above the first
/// event's to 99 (100 is the result), so it never goes back.
pub fn plan_progress(count: usize, total: usize) -> u8 {
    let step = count.min(total) * 94 / total.max(1);
    u8::try_from(usize::from(READING_THE_DRAFT) + 1 + step)
        .unwrap_or(99)
        .min(99)
}

/// A plan's weeks that earlier attempts of its job streamed whole: the week's workouts and its
/// `weekly_info`.
pub type StreamedWeeks = BTreeMap<u32, (Vec<Value>, Value)>;

/// What earlier attempts of a job streamed.
#[derive(Default)]
struct Streamed {
    /// weeks streamed whole
    weeks: StreamedWeeks,
    /// workouts of a week cut short (streamed without the week's `weekly_info`)
    partial: Vec<Value>,
}

/// The weeks earlier attempts of this job streamed whole (a week's `weekly_info` follows its
/// workouts, if any), read back from the job's event log, and the workouts of a week one of
/// them was cut short in. A new attempt keeps the whole weeks rather than streaming them again
/// (a client following the stream would get them twice) and, with a model, asking for them
/// again. Unreadable: none (regenerating is only costlier).
async fn streamed_weeks(ctx: &JobCtx) -> Streamed {
    let mut weeks = StreamedWeeks::new();
    if ctx.job.attempts <= 1 {
        return Streamed::default();
    }
    let sink = &ctx.worker.events;
    let mut conn = sink.redis.clone();
    let log = match events::read_log(&mut conn, &sink.keys, ctx.job.id, 0).await {
        Ok(log) => log,
        Err(e) => {
            tracing::warn!(job.id = %ctx.job.id, error = %e, "cannot read the event log; the plan starts over");
            return Streamed::default();
        }
    };
    let mut pending: Vec<Value> = Vec::new();
    for logged in log {
        let Ok(mut event) = serde_json::from_str::<Value>(&logged.data) else {
            continue;
        };
        match events::event_type(&event) {
            events::WORKOUT => pending.push(event["data"].take()),
            events::WEEKLY_INFO => {
                let Some((week, info)) = event["data"].as_object().and_then(|m| m.iter().next())
                else {
                    continue;
                };
                let Ok(n) = week.parse::<u32>() else {
                    continue;
                };
                let (mine, rest) = pending
                    .into_iter()
                    .partition(|w| w["week"].as_u64() == Some(u64::from(n)));
                pending = rest;
                weeks.insert(n, (mine, info.clone()));
            }
            _ => {}
        }
    }
    Streamed {
        weeks,
        partial: pending,
    }
}

/// The plan with the weeks already streamed as they were streamed.
fn keep_streamed(
    mut content: Vec<Value>,
    mut weekly_info: Value,
    streamed: &StreamedWeeks,
) -> (Vec<Value>, Value) {
    if streamed.is_empty() {
        return (content, weekly_info);
    }
    let week = |w: &Value| u32::try_from(w["week"].as_u64().unwrap_or(0)).unwrap_or(0);
    content.retain(|w| !streamed.contains_key(&week(w)));
    for (n, (workouts, info)) in streamed {
        content.extend(workouts.iter().cloned());
        weekly_info[n.to_string()] = info.clone();
    }
    // stable: each week keeps its order
    content.sort_by_key(week);
    (content, weekly_info)
}

/// The rules provider's incremental events: progress with count/total, each workout, and each
/// week's `weekly_info` after that week's workouts, in week order. A week the preference left
/// empty (strict_existing) still gets its info, between the weeks around it, so the stream's
/// `weekly_info` events are the result's `weekly_info`, as with a model. Weeks an earlier
/// attempt streamed are counted, not sent again; so are the workouts of a week it was cut short
/// in (`partial`: the rules planner writes the same workouts again, so an equal one was sent).
async fn stream_workouts(
    ctx: &JobCtx,
    content: &[Value],
    weekly_info: &Value,
    streamed: &StreamedWeeks,
    mut partial: Vec<Value>,
) -> Result<(), JobError> {
    let delay = ctx.worker.config.rules_step_delay();
    let total = content.len();
    let mut infos: Vec<(u64, &Value)> = weekly_info
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(w, info)| w.parse::<u64>().ok().map(|n| (n, info)))
        .collect();
    infos.sort_by_key(|(n, _)| *n);
    let mut infos = infos.into_iter().peekable();
    for (i, workout) in content.iter().enumerate() {
        let week = workout["week"].as_u64().unwrap_or(0);
        // the weeks before this workout's are done, empty ones included
        while let Some((n, info)) = infos.next_if(|(n, _)| *n < week) {
            emit_weekly_info(ctx, n, info, streamed).await?;
        }
        if u32::try_from(week).is_ok_and(|w| streamed.contains_key(&w)) {
            continue;
        }
        if let Some(sent) = partial.iter().position(|w| w == workout) {
            partial.swap_remove(sent);
            continue;
        }
        ctx.pause(delay).await?;
        let count = i + 1;
        let pct = plan_progress(count, total);
        let message = format!("Generating workout {count} of {total}");
        let progress = json!({"type": events::PROGRESS, "status": "generating", "message": message,
                              "count": count, "total": total, "progress": pct});
        ctx.emit(&progress, Some((pct, &message))).await?;
        ctx.emit(&json!({"type": events::WORKOUT, "data": workout}), None)
            .await?;
    }
    // the last workout's week and any empty weeks after it
    for (n, info) in infos {
        emit_weekly_info(ctx, n, info, streamed).await?;
    }
    Ok(())
}

/// One week's `weekly_info` event, unless an earlier attempt already streamed that week.
async fn emit_weekly_info(
    ctx: &JobCtx,
    week: u64,
    info: &Value,
    streamed: &StreamedWeeks,
) -> Result<(), JobError> {
    if u32::try_from(week).is_ok_and(|w| streamed.contains_key(&w)) {
        return Ok(());
    }
    ctx.emit(
        &json!({"type": events::WEEKLY_INFO, "data": {week.to_string(): info}}),
        None,
    )
    .await
}

/// `prefer_existing` swaps in the organization's library workout of the same sub-type (the
/// closest in duration) where one exists; `strict_existing` uses library workouts only and
/// leaves out, and reports, a day with no match; `ai_generate` keeps the planner's workouts.
fn apply_preference(
    planned: Vec<Value>,
    library: &[WorkoutRow],
    preference: &str,
    warnings: &mut Vec<String>,
) -> Vec<Value> {
    if preference == "ai_generate" {
        return planned;
    }
    let mut out = Vec::with_capacity(planned.len());
    for mut v in planned {
        let sub_type = v["workout_sub_type"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let planned_secs = v["target_duration_in_seconds"].as_i64().unwrap_or(0);
        let best = library
            .iter()
            .filter(|l| l.workout_sub_type.eq_ignore_ascii_case(&sub_type))
            .min_by_key(|l| (i64::from(l.target_duration_in_seconds) - planned_secs).abs());
        match best {
            Some(l) => {
                v["workout_name"] = json!(l.workout_name);
                v["workout_description"] = json!(l.workout_description);
                v["workout_type"] = json!(l.workout_type);
                v["target_duration_in_seconds"] = json!(l.target_duration_in_seconds);
                v["target_distance_in_meters"] = json!(l.target_distance_in_meters);
                v["content_blocks"] = l.content_blocks.0.clone();
                v["library_workout_id"] = json!(l.id);
                out.push(v);
            }
            None if preference == "strict_existing" => warnings.push(format!(
                "week {} {}: no library workout of type {sub_type}; left out (strict_existing)",
                v["week"],
                v["day"].as_str().unwrap_or_default()
            )),
            None => out.push(v),
        }
    }
    out
}

/// One week of a model's plan as the client sees it: the workout preference applied to its
/// workouts, and its info with `total_distance_km` recomputed from the workouts kept.
fn finish_week(
    workouts: Vec<Value>,
    mut info: Value,
    library: &[WorkoutRow],
    preference: &str,
    warnings: &mut Vec<String>,
) -> (Vec<Value>, Value) {
    let workouts = apply_preference(workouts, library, preference, warnings);
    if let Some(info) = info.as_object_mut() {
        info.insert(
            "total_distance_km".to_owned(),
            json!(distance_km(workouts.iter())),
        );
    }
    (workouts, info)
}

/// Weekly info with `total_distance_km` recomputed from the final workouts.
fn with_distances(mut info: serde_json::Map<String, Value>, content: &[Value]) -> Value {
    for (week, v) in info.iter_mut() {
        let of_week = content
            .iter()
            .filter(|w| w["week"].as_u64().is_some_and(|n| n.to_string() == *week));
        v["total_distance_km"] = json!(distance_km(of_week));
    }
    Value::Object(info)
}

/// The workouts' total `target_distance_in_meters`, in km to one decimal.
fn distance_km<'a>(workouts: impl Iterator<Item = &'a Value>) -> f64 {
    let meters: i64 = workouts
        .filter_map(|w| w["target_distance_in_meters"].as_i64())
        .sum();
    (meters as f64 / 100.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plans_progress_starts_above_its_first_event_and_never_goes_back() {
        for total in [1, 2, 7, 28, 94, 95, 364, 1456] {
            let mut last = READING_THE_DRAFT;
            for count in 1..=total {
                let pct = plan_progress(count, total);
                assert!(
                    pct > READING_THE_DRAFT && pct >= last && pct <= 99,
                    "{count}/{total}"
                );
                last = pct;
            }
            assert_eq!(last, 99, "{total}");
        }
    }
}
