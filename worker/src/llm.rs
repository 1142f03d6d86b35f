//! The `openai` plan provider: any OpenAI-compatible chat-completions server (OpenAI, vLLM,
//! llama.cpp, Ollama) through async-openai.
//!
//! - Drafts are streamed; progress events follow the text as it arrives.
//! - Plans are generated one week per request, several weeks at once (bounded), each asked for
//!   JSON matching a schema. An answer that does not validate is sent back once with the errors;
//!   a second bad answer fails the job with a clear message. A valid week is finished by the
//!   caller (workout preference, distances), then its workouts and `weekly_info` are emitted,
//!   in week order, as soon as it and the weeks before it are done.
//! - 429, 5xx and connection errors are retried with backoff, waiting at least a 429's
//!   `Retry-After`; a 429 for an exhausted quota is not retried. Token usage is recorded on the
//!   job and capped per job.
//! - A draft the model stopped at its token limit (`finish_reason: length`) is kept without the
//!   line it was writing (or its last word, if it is one line) and marked in its metadata,
//!   with the weeks it lacks. An empty draft fails the attempt, not the job.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::anyhow;
use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use chrono::{Datelike, NaiveDate, Weekday};
use futures::StreamExt;
use pacer_common::events;
use pacer_common::jobs::{GenerateDraftInput, GeneratePlanInput};
use serde_json::{Value, json};

use crate::config::WorkerConfig;
use crate::jobs::generate::StreamedWeeks;
use crate::runner::{JobCtx, JobError};

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const PHASES: [&str; 4] = ["base", "build", "peak", "taper"];
const BLOCKS: [&str; 3] = ["warmup", "main", "cooldown"];
/// The sub-types a model may choose (the rules planner's vocabulary, so libraries match both).
const SUB_TYPES: [&str; 11] = [
    "easy-run",
    "recovery-run",
    "long-run",
    "tempo",
    "intervals",
    "repetition",
    "hills",
    "fartlek",
    "marathon-pace",
    "race",
    "cross-training",
];

/// A draft the model wrote.
pub struct ModelDraft {
    pub text: String,
    /// The model stopped at its token limit; the line it was writing was dropped.
    pub truncated: bool,
    /// With `truncated`: the weeks the draft has no section for.
    pub missing_weeks: Vec<u32>,
}

pub struct OpenAi {
    client: Client<OpenAIConfig>,
    model: String,
    /// `PACER_LLM_TIMEOUT_SECS`: how long a request may stay silent, and a whole answer take.
    timeout: Duration,
    max_tokens_per_job: u64,
    concurrency: usize,
    retries: u32,
}

/// Token usage of one job, across all its requests.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    prompt: u64,
    completion: u64,
    requests: u64,
    /// What the requests in flight may still spend (see [`Budget::reserve`]).
    reserved: u64,
}

impl Usage {
    fn total(&self) -> u64 {
        self.prompt + self.completion
    }
}

/// What one job shares between its concurrent requests. It starts from the tokens earlier
/// attempts spent (the job's `usage`), so the cap is per job and `usage` sums every attempt.
struct Budget<'a> {
    usage: Mutex<Usage>,
    /// A request's answer was counted (its reservation given back).
    settled: tokio::sync::Notify,
    max: u64,
    ctx: &'a JobCtx,
    model: &'a str,
}

impl<'a> Budget<'a> {
    /// Reserves a request's prompt (estimated) and up to `wanted` generated tokens until its
    /// answer is counted, so that the requests in flight at once (a plan's weeks) cannot pass
    /// the budget together. With too little left it waits for those in flight to settle; with
    /// nothing in flight the budget is spent and the job fails.
    async fn reserve(&self, prompt: u64, wanted: u64) -> Result<Reservation<'_, 'a>, JobError> {
        loop {
            // registered before the check, so a settlement in between is not missed
            let settled = self.settled.notified();
            {
                let mut u = self.usage.lock().unwrap_or_else(|p| p.into_inner());
                let left = self.max.saturating_sub(u.total() + u.reserved);
                let max_tokens = wanted.min(left.saturating_sub(prompt));
                if max_tokens >= 64 {
                    u.reserved += prompt + max_tokens;
                    return Ok(Reservation {
                        budget: self,
                        tokens: prompt + max_tokens,
                        max_tokens,
                    });
                }
                if u.reserved == 0 {
                    return Err(JobError::Permanent(anyhow!(
                        "the job's token budget ({} tokens) is spent",
                        self.max
                    )));
                }
            }
            settled.await;
        }
    }

    /// Counts one answer's tokens and records the job's total at once: an attempt cut off
    /// afterwards (timeout, cancel) still leaves what it spent on the job.
    fn add(&self, prompt: u64, completion: u64) {
        let u = match self.usage.lock() {
            Ok(mut u) => {
                u.prompt += prompt;
                u.completion += completion;
                u.requests += 1;
                *u
            }
            Err(_) => return,
        };
        metrics::counter!("pacer_llm_tokens_total", "kind" => "prompt").increment(prompt);
        metrics::counter!("pacer_llm_tokens_total", "kind" => "completion").increment(completion);
        let value = json!({"provider": "openai", "model": self.model, "prompt_tokens": u.prompt,
                           "completion_tokens": u.completion, "total_tokens": u.total(), "requests": u.requests});
        if let Ok(mut slot) = self.ctx.usage.lock() {
            *slot = Some(value);
        }
    }
}

/// Tokens held for one request in flight, given back when it is dropped (its answer counted,
/// or the request failed).
struct Reservation<'b, 'a> {
    budget: &'b Budget<'a>,
    tokens: u64,
    /// The request's `max_tokens`.
    max_tokens: u64,
}

impl Drop for Reservation<'_, '_> {
    fn drop(&mut self) {
        if let Ok(mut u) = self.budget.usage.lock() {
            u.reserved = u.reserved.saturating_sub(self.tokens);
        }
        self.budget.settled.notify_waiters();
    }
}

/// A prompt's size in tokens, roughly (4 characters a token), for servers that do not report
/// usage and to reserve it before a request.
fn estimate_tokens(chars: usize) -> u64 {
    (chars / 4) as u64
}

impl OpenAi {
    pub fn new(config: &WorkerConfig) -> anyhow::Result<Self> {
        // a silence bound, not a total one: a streamed draft may take longer than the timeout
        // as long as the model keeps writing (a plan week's answer is bounded whole below)
        let timeout = Duration::from_secs(config.llm_timeout_secs);
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .build()?;
        let openai = OpenAIConfig::new()
            .with_api_base(config.openai_base_url.trim_end_matches('/'))
            .with_api_key(config.openai_api_key.clone());
        Ok(Self {
            // async-openai retries 429/5xx itself (up to 3 times) unless given a bare service:
            // `PACER_LLM_REQUEST_RETRIES` alone decides
            client: Client::with_config(openai)
                .with_http_client(http.clone())
                .with_http_service(tower::ServiceExt::and_then(
                    async_openai::middleware::ReqwestService::new(http),
                    rate_limited,
                )),
            model: config.llm_model.clone(),
            timeout,
            max_tokens_per_job: config.llm_max_tokens_per_job,
            concurrency: config.llm_concurrency as usize,
            retries: config.llm_request_retries,
        })
    }

    fn budget<'a>(&'a self, ctx: &'a JobCtx) -> Budget<'a> {
        let spent = |k: &str| {
            ctx.job
                .usage
                .as_ref()
                .and_then(|u| u.0[k].as_u64())
                .unwrap_or(0)
        };
        Budget {
            usage: Mutex::new(Usage {
                prompt: spent("prompt_tokens"),
                completion: spent("completion_tokens"),
                requests: spent("requests"),
                reserved: 0,
            }),
            settled: tokio::sync::Notify::new(),
            max: self.max_tokens_per_job,
            ctx,
            model: &self.model,
        }
    }

    /// Writes a draft in the line format the rules planner reads, streaming it.
    pub async fn draft(
        &self,
        ctx: &JobCtx,
        input: &GenerateDraftInput,
        principle: &str,
    ) -> Result<ModelDraft, JobError> {
        let budget = self.budget(ctx);
        self.draft_inner(ctx, input, principle, &budget).await
    }

    async fn draft_inner(
        &self,
        ctx: &JobCtx,
        input: &GenerateDraftInput,
        principle: &str,
        budget: &Budget<'_>,
    ) -> Result<ModelDraft, JobError> {
        let system = "You are an experienced running coach. Write a periodized training plan draft that another coach \
            will read and edit. Format: a title line; then for every week a header line 'Week N (phase): focus' \
            where phase is base, build, peak or taper; under it one line per day of the week, Monday to Sunday, \
            like '- Tuesday: Easy run 45 min', '- Thursday: Tempo run 30 min', '- Saturday: Long run 12 km' or \
            '- Friday: Rest'. No other text.";
        let mut user = format!(
            "Weeks: {}\nAthlete level: {}\nTraining principle: {principle}\n",
            input.weeks, input.level
        );
        if let Some(d) = input.start_date {
            user.push_str(&format!("Start date: {d}\n"));
        }
        if let Some(p) = &input.additional_prompt {
            user.push_str(&format!("Coach's instructions: {p}\n"));
        }
        if let Some(r) = input.recent_race {
            user.push_str(&format!(
                "Recent race: {:.0} m in {:.0} s\n",
                r.distance_m, r.time_s
            ));
        }
        let wanted = 200 + 260 * u64::from(input.weeks);
        let prompt = estimate_tokens(system.len() + user.len());
        let reservation = budget.reserve(prompt, wanted).await?;
        let max_tokens = reservation.max_tokens;
        let body = json!({
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": max_tokens,
            "temperature": 0.4,
        });
        let expected_chars = 120 + 330 * usize::try_from(input.weeks).unwrap_or(1);
        let mut last_pct = 20u8;
        let mut text = String::new();
        let mut stream = self
            .with_retries(|| async {
                self.client
                    .chat()
                    .create_stream_byot::<Value, Value>(body.clone())
                    .await
            })
            .await?;
        let mut usage_seen = false;
        let (mut cut_off, mut finished) = (false, false);
        let streamed: Result<(), JobError> = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(classify)?;
                // an error in the stream (an overloaded server, a context too long) ends it
                if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
                    return Err(stream_error(error));
                }
                match chunk["choices"][0]["finish_reason"].as_str() {
                    Some("length") => (cut_off, finished) = (true, true),
                    Some(_) => finished = true,
                    None => {}
                }
                if let Some(delta) = chunk["choices"][0]["delta"]["content"].as_str() {
                    text.push_str(delta);
                    let pct =
                        u8::try_from((20 + text.len() * 70 / expected_chars).min(90)).unwrap_or(90);
                    if pct >= last_pct + 10 {
                        last_pct = pct;
                        ctx.progress("thinking", "Writing the draft...", pct)
                            .await?;
                    }
                }
                if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
                    usage_seen = true;
                    budget.add(
                        u["prompt_tokens"].as_u64().unwrap_or(0),
                        u["completion_tokens"].as_u64().unwrap_or(0),
                    );
                }
            }
            Ok(())
        }
        .await;
        if !usage_seen {
            // no usage reported (the server does not, or the stream broke off, or the job was
            // cancelled): count what was streamed roughly (4 characters a token), so the budget
            // and the job's `usage` keep it
            budget.add(prompt, estimate_tokens(text.len()));
        }
        drop(reservation);
        streamed?;
        if !finished {
            // a stream closed without saying why the model stopped: the draft may end anywhere
            return Err(JobError::Retryable(anyhow!(
                "the model's stream ended before the model finished ({} characters written)",
                text.len()
            )));
        }
        let mut missing_weeks = Vec::new();
        if cut_off {
            // the line the limit cut is dropped; the weeks the draft has no section for are
            // named, for the coach to add (a draft is text to edit, and what the model wrote
            // is paid for)
            drop_unfinished_tail(&mut text);
            let sections = pacer_planner::draft_sections(&text);
            missing_weeks = (1..=input.weeks)
                .filter(|w| !sections.contains_key(w))
                .collect();
            tracing::warn!(job.id = %ctx.job.id, max_tokens, ?missing_weeks, "the model's draft reached its token limit");
        }
        let text = text.trim().to_owned();
        if text.len() < 10 {
            // a sampled answer: another attempt may well write one
            return Err(JobError::Retryable(anyhow!(
                "the model returned an empty draft{}",
                if cut_off {
                    format!(" before its token limit ({max_tokens} tokens)")
                } else {
                    String::new()
                }
            )));
        }
        Ok(ModelDraft {
            text,
            truncated: cut_off,
            missing_weeks,
        })
    }

    /// Generates the plan week by week (several at once). `finish` turns each valid week
    /// (workouts, weekly info) into its final form (the workout preference applied, distances
    /// recomputed), which is then emitted: the week's workouts, then its weekly info, in week
    /// order. Returns (final workouts in plan order, final weekly info, warnings).
    pub async fn plan<F>(
        &self,
        ctx: &JobCtx,
        input: &GeneratePlanInput,
        principle: &str,
        expected: &BTreeMap<u32, usize>,
        finish: &F,
        streamed: &StreamedWeeks,
    ) -> Result<(Vec<Value>, serde_json::Map<String, Value>, Vec<String>), JobError>
    where
        F: Fn(Vec<Value>, Value, &mut Vec<String>) -> (Vec<Value>, Value) + Sync,
    {
        let budget = self.budget(ctx);
        self.plan_inner(ctx, input, principle, expected, finish, streamed, &budget)
            .await
    }

    #[allow(clippy::too_many_arguments)] // `plan`'s arguments and its budget
    async fn plan_inner<F>(
        &self,
        ctx: &JobCtx,
        input: &GeneratePlanInput,
        principle: &str,
        expected: &BTreeMap<u32, usize>,
        finish: &F,
        streamed: &StreamedWeeks,
        budget: &Budget<'_>,
    ) -> Result<(Vec<Value>, serde_json::Map<String, Value>, Vec<String>), JobError>
    where
        F: Fn(Vec<Value>, Value, &mut Vec<String>) -> (Vec<Value>, Value) + Sync,
    {
        let expected_total: usize = expected.values().sum();
        let sections = pacer_planner::draft_sections(&input.refined_draft);
        let mut warnings = Vec::new();
        let mut weeks = Vec::new();
        let mut by_week: BTreeMap<u32, Vec<Value>> = BTreeMap::new();
        let mut info = serde_json::Map::new();
        // weeks an earlier attempt streamed are kept, not asked for again
        for (w, (workouts, week_info)) in streamed {
            by_week.insert(*w, workouts.clone());
            info.insert(w.to_string(), week_info.clone());
        }
        let mut count: usize = by_week.values().map(Vec::len).sum();
        for w in (1..=input.draft.weeks).filter(|w| !streamed.contains_key(w)) {
            match sections.get(&w) {
                Some(text) => weeks.push((w, text.clone())),
                None => warnings.push(format!(
                    "week {w}: not found in the draft; no workouts for it"
                )),
            }
        }
        let mut generated = futures::stream::iter(weeks)
            .map(|(w, text)| match expected.get(&w).copied() {
                // as many workouts as the draft has training days that week (bounds the answer)
                Some(days) => futures::future::Either::Left(self.week(
                    input,
                    principle,
                    w,
                    text,
                    days.clamp(1, 7),
                    budget,
                )),
                // a week of rest days only (a holiday, a deload): nothing to ask a model for
                None => futures::future::Either::Right(futures::future::ready(Ok((
                    w,
                    Vec::new(),
                    rest_week_info(&text),
                    Vec::new(),
                )))),
            })
            // in week order (still several requests at once), so the stream's workouts are in
            // the result's order
            .buffered(self.concurrency.max(1));
        // training days without a workout: the model's short weeks, and the workouts the
        // preference left out (strict_existing)
        let mut left_out = 0usize;
        while let Some(week) = generated.next().await {
            let (w, answered, week_info, week_warnings) = week?;
            warnings.extend(week_warnings);
            let (workouts, week_info) = finish(answered, week_info, &mut warnings);
            let days = expected.get(&w).copied().unwrap_or(0);
            left_out += days.saturating_sub(workouts.len());
            let total = expected_total
                .saturating_sub(left_out)
                .max(count + workouts.len());
            // the week's events in one append: a retry after a kill finds the week streamed
            // whole (and keeps it) or not at all (and asks for it again), never in part
            let mut week_events = Vec::with_capacity(workouts.len() * 2 + 1);
            let mut last_progress = None;
            for workout in &workouts {
                count += 1;
                let pct = crate::jobs::generate::plan_progress(count, total);
                let message = format!("Generating workout {count} of {total}");
                week_events.push(
                    json!({"type": events::PROGRESS, "status": "generating", "message": message,
                                        "count": count, "total": total, "progress": pct}),
                );
                week_events.push(json!({"type": events::WORKOUT, "data": workout}));
                last_progress = Some((pct, message));
            }
            week_events
                .push(json!({"type": events::WEEKLY_INFO, "data": {w.to_string(): week_info}}));
            ctx.emit_all(
                &week_events,
                last_progress.as_ref().map(|(p, m)| (*p, m.as_str())),
            )
            .await?;
            info.insert(w.to_string(), week_info);
            by_week.insert(w, workouts);
        }
        Ok((by_week.into_values().flatten().collect(), info, warnings))
    }

    /// One week: ask, validate, re-ask once with the errors, or fail clearly.
    async fn week(
        &self,
        input: &GeneratePlanInput,
        principle: &str,
        week: u32,
        section: String,
        days: usize,
        budget: &Budget<'_>,
    ) -> Result<(u32, Vec<Value>, Value, Vec<String>), JobError> {
        let system = "You convert one week of a running coach's approved plan into structured workouts. Reply with \
            JSON only, matching the schema: one workout per training day (leave rest days out), durations in \
            seconds, distances in meters, content_blocks of type warmup, main or cooldown whose duration_seconds \
            add up to target_duration_in_seconds, workout_sub_type such as easy-run, recovery-run, long-run, \
            tempo, intervals, repetition, hills, fartlek, marathon-pace or race.";
        let mut user = format!(
            "Plan: {} weeks, athlete level {}. Training principle: {principle}\n",
            input.draft.weeks, input.draft.level
        );
        if let Some(p) = &input.draft.additional_prompt {
            user.push_str(&format!("Coach's instructions: {p}\n"));
        }
        user.push_str(&format!(
            "Week {week} of the approved draft:\n{section}\nReturn week {week} as JSON."
        ));
        let mut messages = vec![
            json!({"role": "system", "content": system}),
            json!({"role": "user", "content": user}),
        ];
        for round in 0..2 {
            let prompt = estimate_tokens(
                messages
                    .iter()
                    .filter_map(|m| m["content"].as_str())
                    .map(str::len)
                    .sum(),
            );
            let reservation = budget.reserve(prompt, 250 + 300 * days as u64).await?;
            let body = json!({
                "model": self.model,
                "messages": messages,
                "stream": false,
                "max_tokens": reservation.max_tokens,
                "temperature": 0.2,
                "response_format": {"type": "json_schema", "json_schema": {"name": "training_week", "strict": true, "schema": week_schema(days)}},
            });
            let response: Value = self
                .with_retries(|| async {
                    tokio::time::timeout(
                        self.timeout,
                        self.client.chat().create_byot::<Value, Value>(body.clone()),
                    )
                    .await
                    .unwrap_or_else(|_| Err(OpenAIError::Boxed(Box::new(TimedOut(self.timeout)))))
                })
                .await?;
            let message = &response["choices"][0]["message"];
            let answer = message["content"].as_str().unwrap_or_default().to_owned();
            match response.get("usage").filter(|u| u.is_object()) {
                Some(u) => budget.add(
                    u["prompt_tokens"].as_u64().unwrap_or(0),
                    u["completion_tokens"].as_u64().unwrap_or(0),
                ),
                None => budget.add(prompt, estimate_tokens(answer.len())),
            }
            drop(reservation);
            // a refusal is the model's answer to this request, not JSON to correct
            if let Some(refusal) = message["refusal"].as_str().filter(|r| !r.trim().is_empty()) {
                return Err(JobError::Permanent(anyhow!(
                    "the model refused week {week}: {refusal}"
                )));
            }
            if response["choices"].as_array().is_none_or(Vec::is_empty) {
                return Err(JobError::Retryable(anyhow!(
                    "the model server answered week {week} without a choice: {response}"
                )));
            }
            match validate_week(week, &answer, input.draft.start_date, days) {
                Ok((workouts, info, mut warnings)) => {
                    // kept (the days it has are right), and said: the coach may add the rest
                    if workouts.len() < days {
                        warnings.push(format!(
                            "week {week}: the model gave {} workouts for the draft's {days} training days",
                            workouts.len()
                        ));
                    }
                    return Ok((week, workouts, info, warnings));
                }
                Err(errors) if round == 0 => {
                    messages.push(json!({"role": "assistant", "content": answer}));
                    messages.push(json!({"role": "user", "content": format!(
                        "That answer is invalid: {}. Reply again with corrected JSON only.", errors.join("; "))}));
                }
                Err(errors) => {
                    return Err(JobError::Permanent(anyhow!(
                        "the model's answer for week {week} is still invalid after one correction: {}",
                        errors.join("; ")
                    )));
                }
            }
        }
        Err(JobError::Permanent(anyhow!("week {week}: no valid answer")))
    }

    /// Runs a request, retrying 429, 5xx and connection errors with exponential backoff.
    async fn with_retries<T, F, Fut>(&self, f: F) -> Result<T, JobError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, OpenAIError>>,
    {
        let mut attempt = 0;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let asked = asked_wait(&e);
                    let err = classify(e);
                    if !matches!(err, JobError::Retryable(_)) || attempt >= self.retries {
                        return Err(err);
                    }
                    let base = 250u64.saturating_mul(1 << attempt.min(6));
                    let jitter = rand::random::<u64>() % 250;
                    let backoff = Duration::from_millis((base + jitter).min(10_000));
                    let wait = asked
                        .map_or(backoff, |a| a.max(backoff))
                        .min(MAX_ASKED_WAIT);
                    tracing::warn!(attempt, error = %err, wait_ms = wait.as_millis() as u64, "model request failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// Drops what a draft cut off at its token limit was writing when it stopped: its last line,
/// or, when the whole draft is one line (a model that never breaks its lines), its last word.
fn drop_unfinished_tail(text: &mut String) {
    let written = text.trim_end();
    let kept = written
        .rfind('\n')
        .or_else(|| written.rfind(char::is_whitespace))
        .unwrap_or(0);
    text.truncate(kept);
}

/// The longest a request waits before its retry, whatever a `Retry-After` asks: a longer
/// wait is better spent as a retry of the job, which frees the worker's slot meanwhile.
const MAX_ASKED_WAIT: Duration = Duration::from_secs(60);

/// A 429 answer, kept with its `Retry-After`: async-openai's own error drops the headers.
#[derive(Debug, thiserror::Error)]
#[error("model server answered 429: {body}")]
struct RateLimited {
    retry_after: Option<Duration>,
    body: String,
}

/// Turns a 429 answer into [`RateLimited`]; other answers go on to async-openai.
async fn rate_limited(response: reqwest::Response) -> Result<reqwest::Response, OpenAIError> {
    if response.status() != reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after(v, chrono::Utc::now()));
    let body = response.text().await.unwrap_or_default();
    Err(OpenAIError::Boxed(Box::new(RateLimited {
        retry_after,
        body,
    })))
}

/// A `Retry-After` value: seconds, or an HTTP date (IMF-fixdate, which RFC 2822 parsing
/// reads; a date already past means now). The obsolete RFC 850 and asctime forms are not read.
fn retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.to_utc() - now).to_std().unwrap_or(Duration::ZERO))
}

/// How long the server asked us to wait before trying again, if it said.
fn asked_wait(e: &OpenAIError) -> Option<Duration> {
    match e {
        OpenAIError::Boxed(b) => b.downcast_ref::<RateLimited>()?.retry_after,
        _ => None,
    }
}

/// OpenAI answers 429 both to "slow down" and to "your quota is used up"; only the first
/// passes by waiting.
fn out_of_quota(error: &Value) -> bool {
    [&error["type"], &error["code"]]
        .iter()
        .any(|v| *v == "insufficient_quota")
}

/// 429, 5xx and transport errors are worth retrying; other refusals (and an exhausted quota)
/// are not.
fn classify(e: OpenAIError) -> JobError {
    match e {
        OpenAIError::Boxed(b) if b.is::<TimedOut>() => JobError::Retryable(anyhow!("{b}")),
        OpenAIError::Boxed(b) => match b.downcast::<RateLimited>() {
            Ok(r) => {
                let error = serde_json::from_str::<Value>(&r.body).unwrap_or_default();
                if out_of_quota(&error["error"]) {
                    JobError::Permanent(anyhow!("the model account's quota is used up: {r}"))
                } else {
                    JobError::Retryable(anyhow!("{r}"))
                }
            }
            Err(other) => JobError::Permanent(anyhow!("model request failed: {other}")),
        },
        OpenAIError::Reqwest(e) => {
            JobError::Retryable(anyhow!("model server unreachable: {}", causes(&e)))
        }
        OpenAIError::StreamError(e) => {
            JobError::Retryable(anyhow!("model stream broke: {}", causes(&e)))
        }
        OpenAIError::ApiError(r)
            if r.status_code.as_u16() == 429 || r.status_code.is_server_error() =>
        {
            JobError::Retryable(anyhow!("model server answered {}", r.status_code))
        }
        OpenAIError::ApiError(r) => {
            JobError::Permanent(anyhow!("model server refused the request: {r}"))
        }
        // llama.cpp sends a numeric error code that async-openai cannot parse; read it ourselves
        OpenAIError::JSONDeserialize(_, raw) => {
            let code = serde_json::from_str::<Value>(&raw)
                .ok()
                .and_then(|v| v["error"]["code"].as_u64());
            match code {
                Some(c) if c == 429 || c >= 500 => {
                    JobError::Retryable(anyhow!("model server answered {c}"))
                }
                Some(c) => {
                    JobError::Permanent(anyhow!("model server refused the request ({c}): {raw}"))
                }
                None => {
                    JobError::Retryable(anyhow!("unreadable answer from the model server: {raw}"))
                }
            }
        }
        other => JobError::Permanent(anyhow!("model request failed: {other}")),
    }
}

/// An error with its causes ("error decoding response body: … operation timed out"): a
/// transport error's own text often leaves out what happened.
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// A model's answer that took longer than `PACER_LLM_TIMEOUT_SECS` as a whole.
#[derive(Debug, thiserror::Error)]
#[error("the model did not answer within {}s (PACER_LLM_TIMEOUT_SECS)", .0.as_secs())]
struct TimedOut(Duration);

/// An error object sent inside a stream (`data: {"error": {...}}`): a refused request (a
/// context too long, an unknown model) is permanent; an overloaded or failing server is not.
fn stream_error(error: &Value) -> JobError {
    let message = error["message"].as_str().unwrap_or("no message");
    let code = error["code"]
        .as_u64()
        .or_else(|| error["status"].as_u64())
        .or_else(|| error["code"].as_str().and_then(|c| c.parse().ok()));
    let refused = out_of_quota(error)
        || error["type"] == "invalid_request_error"
        || code.is_some_and(|c| (400..500).contains(&c) && c != 408 && c != 429);
    let what = anyhow!("the model's stream ended with an error: {message} ({error})");
    if refused {
        JobError::Permanent(what)
    } else {
        JobError::Retryable(what)
    }
}

/// Bounds of a model's workout, in the schema it is sent and in the check of its answer.
const MIN_SECONDS: i64 = 600;
const MAX_SECONDS: i64 = 14_400;
const MAX_METERS: i64 = 60_000;
const MAX_BLOCKS: usize = 3;
/// Seconds per km a running workout's distance and duration may imply.
const RUNNING_PACE: std::ops::RangeInclusive<i64> = 150..=1200;

/// A model's text on one line (no line breaks or double quotes, as the schema's patterns ask),
/// at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .trim()
        .chars()
        .map(|c| {
            if c == '"' {
                '\''
            } else if c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect();
    flat.chars()
        .take(max)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

/// The JSON a week must match. String patterns and numeric bounds keep a grammar-constrained
/// model from looping inside a value; `days` caps the number of workouts.
fn week_schema(days: usize) -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["phase", "focus", "workouts"],
        "properties": {
            "phase": {"type": "string", "enum": PHASES},
            "focus": {"type": "string", "pattern": "^[^\\n\"]{1,80}$"},
            "workouts": {
                "type": "array",
                "minItems": 1,
                "maxItems": days,
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["day", "workout_name", "workout_description", "workout_sub_type",
                                 "target_duration_in_seconds", "target_distance_in_meters", "content_blocks"],
                    "properties": {
                        "day": {"type": "string", "enum": DAYS},
                        "workout_name": {"type": "string", "pattern": "^[^\\n\"]{1,60}$"},
                        "workout_description": {"type": "string", "pattern": "^[^\\n\"]{0,200}$"},
                        "workout_sub_type": {"type": "string", "enum": SUB_TYPES},
                        "target_duration_in_seconds": {"type": "integer", "minimum": MIN_SECONDS, "maximum": MAX_SECONDS},
                        "target_distance_in_meters": {"type": "integer", "minimum": 0, "maximum": MAX_METERS},
                        "content_blocks": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_BLOCKS,
                            "items": {
                                "type": "object",
                                "additionalProperties": false,
                                "required": ["type", "duration_seconds"],
                                "properties": {
                                    "type": {"type": "string", "enum": BLOCKS},
                                    "duration_seconds": {"type": "integer", "minimum": 0, "maximum": MAX_SECONDS}
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// The calendar date of `day` in plan week `week` (week 1 = the 7 days from `start`).
fn date_of(start: NaiveDate, week: u32, day: Weekday) -> Option<String> {
    let first = start.checked_add_days(chrono::Days::new(u64::from(week.saturating_sub(1)) * 7))?;
    (0..7u64)
        .filter_map(|i| first.checked_add_days(chrono::Days::new(i)))
        .find(|d| d.weekday() == day)
        .map(|d| d.to_string())
}

/// The info of a draft week without training days: its phase from the week's header (the
/// draft writes `Week N: Phase …`), no distance.
fn rest_week_info(section: &str) -> Value {
    let header = section.lines().next().unwrap_or_default().to_lowercase();
    let phase = PHASES
        .iter()
        .find(|p| header.contains(*p))
        .copied()
        .unwrap_or("base");
    json!({"phase": phase, "focus": "Rest", "total_distance_km": 0.0})
}

/// The JSON inside an answer wrapped in a Markdown code fence (some servers ignore
/// `response_format` and fence their JSON), else the answer.
fn unfenced(answer: &str) -> &str {
    let t = answer.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_alphanumeric());
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

/// Checks a model's week against the schema and the plan's rules: at most `days` workouts (the
/// draft's training days that week; servers that ignore the schema may add more). Blocks that
/// do not add up to the stated duration are trusted over it (the duration becomes their sum); a
/// duplicated day keeps its first workout, with a warning. Everything else wrong is an error
/// sent back once.
pub fn validate_week(
    week: u32,
    answer: &str,
    start: Option<NaiveDate>,
    days: usize,
) -> Result<(Vec<Value>, Value, Vec<String>), Vec<String>> {
    let v: Value = serde_json::from_str(unfenced(answer))
        .map_err(|e| vec![format!("not valid JSON ({e})")])?;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let phase = v["phase"]
        .as_str()
        .map(str::to_lowercase)
        .filter(|p| PHASES.contains(&p.as_str()));
    if phase.is_none() {
        errors.push("phase must be one of base, build, peak, taper".to_owned());
    }
    let focus = v["focus"]
        .as_str()
        .map(|f| one_line(f, 80))
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "Training".to_owned());
    let items = v["workouts"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        errors.push("workouts must list at least one workout".to_owned());
    }
    if items.len() > days {
        errors.push(format!(
            "workouts must list at most {days} (the draft's training days that week), not {}",
            items.len()
        ));
    }
    let mut out: Vec<(usize, Value)> = Vec::new();
    for (i, w) in items.iter().enumerate() {
        let at = |what: &str| format!("workouts[{i}].{what}");
        let day = w["day"]
            .as_str()
            .and_then(|d| DAYS.iter().position(|x| x.eq_ignore_ascii_case(d.trim())));
        let sub_type = w["workout_sub_type"]
            .as_str()
            .map(|s| s.trim().to_lowercase().replace([' ', '_'], "-"))
            .filter(|s| SUB_TYPES.contains(&s.as_str()));
        // a nameless workout is named after its type rather than rejected
        let name = w["workout_name"]
            .as_str()
            .map(|n| one_line(n, 60))
            .filter(|s| !s.is_empty())
            .or_else(|| sub_type.as_deref().map(title));
        let distance = w["target_distance_in_meters"]
            .as_i64()
            .filter(|d| (0..=MAX_METERS).contains(d));
        let mut duration = w["target_duration_in_seconds"]
            .as_i64()
            .filter(|d| (MIN_SECONDS..=MAX_SECONDS).contains(d));
        let mut blocks = Vec::new();
        let mut sum = 0i64;
        let given_blocks = w["content_blocks"]
            .as_array()
            .is_some_and(|b| !b.is_empty());
        for (j, b) in w["content_blocks"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let t = b["type"]
                .as_str()
                .map(str::to_lowercase)
                .filter(|t| BLOCKS.contains(&t.as_str()));
            let d = b["duration_seconds"]
                .as_i64()
                .filter(|d| (0..=MAX_SECONDS).contains(d));
            match (t, d) {
                (Some(t), Some(d)) => {
                    sum += d;
                    blocks.push(json!({"type": t, "duration_seconds": d}));
                }
                _ => errors.push(format!(
                    "{}: type must be warmup, main or cooldown and duration_seconds 0..{MAX_SECONDS}",
                    at(&format!("content_blocks[{j}]"))
                )),
            }
        }
        if blocks.len() > MAX_BLOCKS {
            errors.push(format!(
                "{} must have at most {MAX_BLOCKS} blocks (warmup, main, cooldown)",
                at("content_blocks")
            ));
        }
        if !given_blocks {
            if let Some(d) = duration {
                blocks.push(json!({"type": "main", "duration_seconds": d}));
            }
        } else if duration != Some(sum) {
            if (MIN_SECONDS..=MAX_SECONDS).contains(&sum) {
                duration = Some(sum);
            } else if let Some(d) = duration {
                // the blocks' total is impossible (over six hours, or nothing at all): keep the
                // workout's duration and share it among the blocks in their proportions
                share(&mut blocks, sum, d);
            }
        }
        if day.is_none() {
            errors.push(format!("{} must be a weekday name", at("day")));
        }
        if sub_type.is_none() {
            errors.push(format!(
                "{} must be one of {}",
                at("workout_sub_type"),
                SUB_TYPES.join(", ")
            ));
        }
        if duration.is_none() {
            errors.push(format!(
                "{} must be an integer between {MIN_SECONDS} and {MAX_SECONDS}",
                at("target_duration_in_seconds")
            ));
        }
        if distance.is_none() {
            errors.push(format!(
                "{} must be an integer between 0 and {MAX_METERS}",
                at("target_distance_in_meters")
            ));
        }

        if let (Some(day), Some(name), Some(sub_type), Some(duration), Some(distance)) =
            (day, name, sub_type, duration, distance)
        {
            if out.iter().any(|(d, _)| *d == day) {
                warnings.push(format!(
                    "week {week} {}: the model gave two workouts; kept the first",
                    DAYS[day]
                ));
                continue;
            }
            // a distance no run covers in that time (a small model wrote 150 m for 50 min): the
            // workout keeps its duration, without a distance target
            let distance = if sub_type != "cross-training"
                && distance > 0
                && !RUNNING_PACE.contains(&(duration * 1000 / distance))
            {
                warnings.push(format!(
                    "week {week} {}: {distance} m in {duration} s is no running pace (2:30 to 20:00 per km); the distance is left out",
                    DAYS[day]
                ));
                0
            } else {
                distance
            };
            let mut workout = json!({
                "week": week,
                "phase": phase.clone().unwrap_or_default(),
                "day": DAYS[day],
                "workout_name": name,
                "workout_description": one_line(w["workout_description"].as_str().unwrap_or_default(), 200),
                "workout_type": "run",
                "workout_sub_type": sub_type,
                "target_duration_in_seconds": duration,
                "target_distance_in_meters": distance,
                "content_blocks": blocks,
            });
            if let Some(start) = start
                && let Some(date) = date_of(start, week, weekday(day))
            {
                workout["date"] = json!(date);
            }
            out.push((day, workout));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    out.sort_by_key(|(d, _)| *d);
    let total_m: i64 = out
        .iter()
        .filter_map(|(_, w)| w["target_distance_in_meters"].as_i64())
        .sum();
    let info = json!({"phase": phase.unwrap_or_default(), "focus": focus, "total_distance_km": (total_m as f64 / 100.0).round() / 10.0});
    Ok((out.into_iter().map(|(_, w)| w).collect(), info, warnings))
}

/// Rescales the blocks' `duration_seconds` to add up to `total`, in proportion to their
/// current durations (`sum`), or equally when those are all zero.
fn share(blocks: &mut [Value], sum: i64, total: i64) {
    let n = i64::try_from(blocks.len()).unwrap_or(i64::MAX).max(1);
    let mut left = total;
    let last = blocks.len().saturating_sub(1);
    for (i, b) in blocks.iter_mut().enumerate() {
        let d = if i == last {
            left
        } else if sum > 0 {
            let own = b["duration_seconds"].as_i64().unwrap_or(0);
            i64::try_from(i128::from(total) * i128::from(own) / i128::from(sum)).unwrap_or(0)
        } else {
            total / n
        };
        left -= d;
        b["duration_seconds"] = json!(d);
    }
}

fn title(sub_type: &str) -> String {
    let words: Vec<String> = sub_type
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    words.join(" ")
}

fn weekday(i: usize) -> Weekday {
    [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ][i.min(6)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn week_json(blocks_sum_ok: bool) -> String {
        let main = if blocks_sum_ok { 1800 } else { 1500 };
        json!({"phase": "base", "focus": "Aerobic", "workouts": [
            {"day": "wednesday", "workout_name": "Tempo", "workout_description": "", "workout_sub_type": "tempo",
             "target_duration_in_seconds": 2400, "target_distance_in_meters": 7000,
             "content_blocks": [{"type": "warmup", "duration_seconds": 600}, {"type": "main", "duration_seconds": main}]},
            {"day": "Monday", "workout_name": "Easy", "workout_description": "", "workout_sub_type": "Easy Run",
             "target_duration_in_seconds": 1800, "target_distance_in_meters": 5000, "content_blocks": []}
        ]})
        .to_string()
    }

    #[test]
    fn a_valid_week_is_normalised_and_sorted() {
        let start = NaiveDate::from_ymd_opt(2025, 5, 7);
        let (w, info, warnings) = validate_week(2, &week_json(true), start, 7).unwrap();
        assert_eq!(w[0]["day"], "Monday");
        assert_eq!(w[0]["workout_sub_type"], "easy-run");
        assert_eq!(
            w[0]["content_blocks"],
            json!([{"type": "main", "duration_seconds": 1800}])
        );
        // week 2 of a plan starting Wednesday 7 May runs 14–20 May: its Monday is the 19th
        assert_eq!(w[0]["date"], "2025-05-19");
        assert_eq!(w[1]["date"], "2025-05-14");
        assert_eq!(info["total_distance_km"], 12.0);
        assert!(warnings.is_empty());
    }

    #[test]
    fn blocks_win_over_a_wrong_duration() {
        let (w, _, _) = validate_week(1, &week_json(false), None, 7).unwrap();
        let tempo = w.iter().find(|x| x["day"] == "Wednesday").unwrap();
        assert_eq!(tempo["target_duration_in_seconds"], 2100);
        assert!(tempo.get("date").is_none());
    }

    #[test]
    fn impossible_block_totals_are_shared_out_of_the_duration() {
        // the block durations of a one-workout week (2,000 s) after validation
        let shared = |blocks: Value| -> Vec<i64> {
            let week = json!({"phase": "peak", "focus": "", "workouts": [
                {"day": "Monday", "workout_name": "Fartlek", "workout_description": "",
                 "workout_sub_type": "fartlek", "target_duration_in_seconds": 2000,
                 "target_distance_in_meters": 2000, "content_blocks": blocks}]});
            let (w, _, _) = validate_week(1, &week.to_string(), None, 7).unwrap();
            assert_eq!(w[0]["target_duration_in_seconds"], 2000);
            w[0]["content_blocks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["duration_seconds"].as_i64().unwrap())
                .collect()
        };
        // a real model's answer: three blocks adding up to 25,000 s for a 2,000 s workout
        let big = json!([{"type": "main", "duration_seconds": 10000},
                         {"type": "main", "duration_seconds": 10000},
                         {"type": "warmup", "duration_seconds": 5000}]);
        assert_eq!(shared(big), [800, 800, 400]);
        let zero = json!([{"type": "warmup", "duration_seconds": 0}, {"type": "main", "duration_seconds": 0},
                          {"type": "cooldown", "duration_seconds": 0}]);
        assert_eq!(shared(zero), [666, 666, 668]);
    }

    #[test]
    fn invalid_answers_list_their_errors() {
        assert!(validate_week(1, "{not json", None, 7).unwrap_err()[0].contains("not valid JSON"));
        let errs = validate_week(
            1,
            r#"{"phase": "x", "focus": "", "workouts": [{"day": "Funday"}]}"#,
            None,
            7,
        )
        .unwrap_err();
        assert!(errs.iter().any(|e| e.contains("phase")));
        assert!(errs.iter().any(|e| e.contains("workouts[0].day")));
        assert!(
            errs.iter()
                .any(|e| e.contains("target_duration_in_seconds"))
        );
    }

    /// What the schema sent with the request says, the answer is checked for (a server that
    /// ignores the schema answered a 100 km workout of 60 s, of sub-type "banana"); a distance
    /// no run covers in the workout's time is left out, with a warning.
    #[test]
    fn an_answer_outside_the_schema_is_refused_or_trimmed_to_it() {
        let answer = |w: Value| {
            json!({"phase": "peak", "focus": "F".repeat(3000), "workouts": [w]}).to_string()
        };
        let workout = |sub: &str, secs: i64, meters: i64, blocks: usize| {
            json!({"day": "Monday", "workout_name": "N".repeat(500), "workout_description": "D\n".repeat(2000),
                   "workout_sub_type": sub, "target_duration_in_seconds": secs,
                   "target_distance_in_meters": meters,
                   "content_blocks": vec![json!({"type": "main", "duration_seconds": secs / blocks as i64}); blocks]})
        };
        let errs =
            validate_week(1, &answer(workout("banana", 1800, 5000, 1)), None, 7).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.contains("workout_sub_type must be one of")),
            "{errs:?}"
        );
        let (w, _, warnings) =
            validate_week(1, &answer(workout("tempo", 600, 60000, 1)), None, 7).unwrap();
        assert_eq!(w[0]["target_distance_in_meters"], 0);
        assert!(
            warnings.iter().any(|e| e.contains("no running pace")),
            "{warnings:?}"
        );
        let errs =
            validate_week(1, &answer(workout("tempo", 3600, 100_000, 1)), None, 7).unwrap_err();
        assert!(
            errs.iter().any(|e| e.contains("between 0 and 60000")),
            "{errs:?}"
        );
        let errs = validate_week(1, &answer(workout("tempo", 60, 0, 1)), None, 7).unwrap_err();
        assert!(
            errs.iter().any(|e| e.contains("between 600 and 14400")),
            "{errs:?}"
        );
        let errs =
            validate_week(1, &answer(workout("easy-run", 2400, 6000, 4)), None, 7).unwrap_err();
        assert!(
            errs.iter().any(|e| e.contains("at most 3 blocks")),
            "{errs:?}"
        );
        // a ride's pace is not a run's
        let (w, info, _) = validate_week(
            1,
            &answer(workout("cross-training", 3600, 30000, 1)),
            None,
            7,
        )
        .unwrap();
        assert_eq!(w[0]["workout_name"].as_str().map(str::len), Some(60));
        let description = w[0]["workout_description"].as_str().unwrap_or_default();
        assert!(
            description.chars().count() <= 200 && !description.contains('\n'),
            "{description}"
        );
        assert_eq!(info["focus"].as_str().map(str::len), Some(80));
    }

    #[test]
    fn more_workouts_than_the_weeks_training_days_are_refused() {
        let answer = week_json(true);
        let n = serde_json::from_str::<Value>(&answer).unwrap()["workouts"]
            .as_array()
            .map_or(0, Vec::len);
        assert!(n >= 2, "{answer}");
        let errs = validate_week(2, &answer, None, n - 1).unwrap_err();
        assert!(errs.iter().any(|e| e.contains("at most")), "{errs:?}");
        assert!(validate_week(2, &answer, None, n).is_ok());
    }

    #[test]
    fn a_fenced_answer_is_read_as_its_json() {
        let fenced = format!("```json\n{}\n```", week_json(true));
        assert!(validate_week(2, &fenced, None, 7).is_ok());
        assert_eq!(unfenced("```\n{}\n```"), "{}");
        assert_eq!(unfenced(" {} "), "{}");
    }

    #[test]
    fn a_rest_week_takes_its_phase_from_the_drafts_header() {
        let info = rest_week_info("Week 3: Taper (recovery)\n- Monday: Rest\n- Tuesday: Rest");
        assert_eq!(info["phase"], "taper");
        assert_eq!(info["total_distance_km"], 0.0);
        assert_eq!(rest_week_info("")["phase"], "base");
    }

    #[test]
    fn rate_limits_and_server_errors_are_retryable() {
        let raw =
            r#"{"error":{"code":429,"message":"busy","type":"unavailable_error"}}"#.to_owned();
        let e = serde_json::from_str::<u8>("x").unwrap_err();
        assert!(matches!(
            classify(OpenAIError::JSONDeserialize(e, raw)),
            JobError::Retryable(_)
        ));
        let raw = r#"{"error":{"code":400,"message":"bad"}}"#.to_owned();
        let e = serde_json::from_str::<u8>("x").unwrap_err();
        assert!(matches!(
            classify(OpenAIError::JSONDeserialize(e, raw)),
            JobError::Permanent(_)
        ));
    }

    #[test]
    fn a_cut_off_draft_loses_its_unfinished_line_or_its_last_word() {
        let mut text = "Week 1 (base): Easy\n- Monday: Easy run 30 min\n- Wednesday: Ea".to_owned();
        drop_unfinished_tail(&mut text);
        assert_eq!(text, "Week 1 (base): Easy\n- Monday: Easy run 30 min");
        let mut one_line = "Week 1 base, Monday easy run, Wednesday tempo ru".to_owned();
        drop_unfinished_tail(&mut one_line);
        assert_eq!(one_line, "Week 1 base, Monday easy run, Wednesday tempo");
        let mut one_word = "Weeeeeeeeeeeeeeeek".to_owned();
        drop_unfinished_tail(&mut one_word);
        assert_eq!(one_word, "");
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-25T07:28:00Z")
            .map(|t| t.to_utc())
            .unwrap();
        assert_eq!(retry_after(" 12 ", now), Some(Duration::from_secs(12)));
        assert_eq!(
            retry_after("Wed, 25 Nov 2026 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Wed, 25 Nov 2026 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-3", now), None);
    }

    #[test]
    fn a_rate_limit_is_retried_after_its_asked_wait_and_a_used_up_quota_is_not() {
        let limited = |body: &str| {
            OpenAIError::Boxed(Box::new(RateLimited {
                retry_after: Some(Duration::from_secs(7)),
                body: body.to_owned(),
            }))
        };
        let slow_down = limited(r#"{"error":{"type":"requests","code":"rate_limit_exceeded"}}"#);
        assert_eq!(asked_wait(&slow_down), Some(Duration::from_secs(7)));
        assert!(matches!(classify(slow_down), JobError::Retryable(_)));
        let quota = limited(r#"{"error":{"type":"insufficient_quota","code":null}}"#);
        assert!(matches!(classify(quota), JobError::Permanent(_)));
    }
}
