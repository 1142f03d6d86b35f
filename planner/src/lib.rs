//! Deterministic running-plan engine (the built-in `rules` provider).
//!
//! Two steps, like the AI Coach API: [`write_draft`] turns a request into a
//! readable draft, and [`build_plan`] reads a (possibly coach-edited) draft
//! back into structured workouts. Both go through the same line grammar and
//! the same workout builder, so an untouched draft reproduces exactly the plan
//! that was written, and every edit to a line changes that day's workout.
//! Pure functions only: no I/O, clock or randomness.

mod draft;
mod engine;
mod parse;
mod prompt;
mod session;
mod text;
pub mod vdot;

use serde::{Deserialize, Serialize};

pub use draft::write_draft;
pub use parse::{build_plan, draft_sections, draft_weeks, with_workout_source, workout_source};
pub use prompt::{PromptHints, RaceDistance, read_prompt};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Beginner,
    Intermediate,
    Advanced,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Beginner => "beginner",
            Level::Intermediate => "intermediate",
            Level::Advanced => "advanced",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RaceResult {
    pub distance_m: f64,
    pub time_s: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanInput {
    /// 1..=52; other values are clamped, never rejected here.
    pub weeks: u32,
    pub level: Level,
    pub start_date: Option<chrono::NaiveDate>,
    /// Resolved principle text; see README for the words it reacts to.
    pub training_principle: String,
    /// Free text read by [`read_prompt`].
    pub additional_prompt: Option<String>,
    /// When present, paces come from its VDOT and are written out.
    pub recent_race: Option<RaceResult>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub title: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentBlock {
    #[serde(rename = "type")]
    pub block_type: String,
    /// Whole block, all repeats and recoveries included, so blocks sum to the workout.
    pub duration_seconds: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub distance_meters: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub repeat: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target_pace: Option<PaceRange>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaceRange {
    pub min_seconds_per_km: u32,
    pub max_seconds_per_km: u32,
    pub per_km: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workout {
    pub week: u32,
    pub phase: String,
    pub day: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub date: Option<String>,
    pub workout_name: String,
    pub workout_description: String,
    pub workout_type: String,
    pub workout_sub_type: String,
    pub target_duration_in_seconds: u32,
    pub target_distance_in_meters: u32,
    pub content_blocks: Vec<ContentBlock>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeekInfo {
    pub phase: String,
    pub focus: String,
    pub total_distance_km: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub workouts: Vec<Workout>,
    pub weekly_info: std::collections::BTreeMap<u32, WeekInfo>,
    pub warnings: Vec<String>,
}

/// Sub-types that count as quality sessions (at most two per week).
pub const QUALITY_SUB_TYPES: &[&str] = &[
    "tempo",
    "cruise-intervals",
    "intervals",
    "repetition",
    "hills",
    "fartlek",
    "marathon-pace",
];

/// True for the quality sub-types listed in [`QUALITY_SUB_TYPES`].
pub fn is_quality(w: &Workout) -> bool {
    QUALITY_SUB_TYPES.contains(&w.workout_sub_type.as_str())
}

/// Seconds counted as non-easy for the 80/20 rule.
///
/// Conservative on purpose: the whole main set of a quality session
/// (recovery jogs included), every strides block and the whole race count as
/// hard; warm-ups, cool-downs, easy, recovery and long runs count as easy.
pub fn hard_seconds(w: &Workout) -> u32 {
    hard_in(&w.workout_sub_type, &w.content_blocks)
}

pub(crate) fn hard_in(sub_type: &str, blocks: &[ContentBlock]) -> u32 {
    let quality = QUALITY_SUB_TYPES.contains(&sub_type) || sub_type == "race";
    blocks
        .iter()
        .filter(|b| {
            let strides = b
                .description
                .as_deref()
                .is_some_and(|d| d.starts_with("Strides"));
            strides || (quality && b.block_type == "main")
        })
        .map(|b| b.duration_seconds)
        .sum()
}
