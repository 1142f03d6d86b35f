//! Job kinds, states, queues and typed inputs. Kind strings are a wire contract: never rename one.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::FieldError;
use crate::validate::FieldReader;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    GenerateDraft,
    GeneratePlan,
    RecomputeStats,
    RecomputeBatch,
}

impl JobKind {
    pub const ALL: [JobKind; 4] = [
        Self::GenerateDraft,
        Self::GeneratePlan,
        Self::RecomputeStats,
        Self::RecomputeBatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::GenerateDraft => "generate_draft",
            Self::GeneratePlan => "generate_plan",
            Self::RecomputeStats => "recompute_stats",
            Self::RecomputeBatch => "recompute_batch",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn queue(self) -> Queue {
        match self {
            Self::GenerateDraft | Self::GeneratePlan => Queue::Generation,
            Self::RecomputeStats | Self::RecomputeBatch => Queue::Stats,
        }
    }

    /// Validates a submitted input and returns it in canonical form (what is stored and what
    /// the worker reads back).
    pub fn validate_input(self, input: &Value) -> Result<Value, Vec<FieldError>> {
        let canonical = match self {
            Self::GenerateDraft => {
                serde_json::to_value(GenerateDraftInput::parse(input, "input.")?)
            }
            Self::GeneratePlan => serde_json::to_value(GeneratePlanInput::parse(input, "input.")?),
            Self::RecomputeStats => {
                serde_json::to_value(RecomputeStatsInput::parse(input, "input.")?)
            }
            Self::RecomputeBatch => {
                serde_json::to_value(RecomputeBatchInput::parse(input, "input.")?)
            }
        };
        canonical.map_err(|e| vec![FieldError::new("input", e.to_string())])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Queue {
    Generation,
    Stats,
}

impl Queue {
    pub const ALL: [Queue; 2] = [Self::Generation, Self::Stats];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generation => "generation",
            Self::Stats => "stats",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// What travels through the Redis queue: only the id; the worker loads the row from PostgreSQL,
/// the source of truth.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: Uuid,
}

pub const LEVELS: [&str; 3] = ["beginner", "intermediate", "advanced"];
pub const WORKOUT_PREFERENCES: [&str; 3] = ["ai_generate", "prefer_existing", "strict_existing"];
const TEXT_MAX: usize = 4_000;
const DRAFT_MAX: usize = 200_000;

/// A recent race result; lets the planner write concrete paces.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RecentRace {
    pub distance_m: f64,
    pub time_s: f64,
}

/// The body of `POST /api/v1/ai-coach/generate-draft` (seed 000).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateDraftInput {
    pub weeks: u32,
    pub level: String,
    pub org_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_principle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<NaiveDate>,
    /// As sent; absent on a plan request means "as the draft says" ([`Self::preference`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workout_preference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_race: Option<RecentRace>,
}

impl GenerateDraftInput {
    /// The workout source asked for, `ai_generate` (the seed's default) when none was.
    pub fn preference(&self) -> &str {
        self.workout_preference.as_deref().unwrap_or("ai_generate")
    }

    pub fn parse(body: &Value, prefix: &str) -> Result<Self, Vec<FieldError>> {
        let mut r = FieldReader::nested(body, prefix)?;
        let parsed = Self::read(&mut r);
        r.finish()?;
        parsed.ok_or_else(|| vec![FieldError::new(prefix.trim_end_matches('.'), "is invalid")])
    }

    fn read(r: &mut FieldReader<'_>) -> Option<Self> {
        let weeks = r.required_int("weeks", 1, 52);
        let level = r.required_enum("level", &LEVELS);
        let org_id = r.required_str("org_id", 1, 200);
        let additional_prompt = r.opt_str("additional_prompt", TEXT_MAX);
        let training_principle = r.opt_str("training_principle", TEXT_MAX);
        let start_date = r.opt_date("start_date");
        let workout_preference = r.opt_enum("workout_preference", &WORKOUT_PREFERENCES);
        let recent_race = read_recent_race(r);
        if r.has_errors() {
            return None;
        }
        Some(Self {
            weeks: u32::try_from(weeks?).ok()?,
            level: level?,
            org_id: org_id?,
            additional_prompt: additional_prompt.filter(|s| !s.trim().is_empty()),
            training_principle: training_principle.filter(|s| !s.trim().is_empty()),
            start_date,
            workout_preference,
            recent_race,
        })
    }
}

fn read_recent_race(r: &mut FieldReader<'_>) -> Option<RecentRace> {
    r.raw("recent_race")?;
    let mut nested = match r.child("recent_race") {
        Ok(n) => n,
        Err(errs) => {
            r.extend(errs);
            return None;
        }
    };
    let distance_m = match nested.raw("distance_m") {
        None => {
            nested.error("distance_m", "is required");
            None
        }
        Some(_) => nested.opt_number("distance_m", 800.0, 100_000.0),
    };
    let time_s = match nested.raw("time_s") {
        None => {
            nested.error("time_s", "is required");
            None
        }
        Some(_) => nested.opt_number("time_s", 60.0, 86_400.0),
    };
    match nested.finish() {
        Ok(()) => Some(RecentRace {
            distance_m: distance_m?,
            time_s: time_s?,
        }),
        Err(errs) => {
            r.extend(errs);
            None
        }
    }
}

/// The body of `POST /api/v1/ai-coach/generate-plan`: the draft fields plus the refined draft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratePlanInput {
    #[serde(flatten)]
    pub draft: GenerateDraftInput,
    pub refined_draft: String,
}

impl GeneratePlanInput {
    pub fn parse(body: &Value, prefix: &str) -> Result<Self, Vec<FieldError>> {
        let mut r = FieldReader::nested(body, prefix)?;
        let draft = GenerateDraftInput::read(&mut r);
        let refined_draft = r.required_str("refined_draft", 10, DRAFT_MAX);
        r.finish()?;
        match (draft, refined_draft) {
            (Some(draft), Some(refined_draft)) => Ok(Self {
                draft,
                refined_draft,
            }),
            _ => Err(vec![FieldError::new(
                prefix.trim_end_matches('.'),
                "is invalid",
            )]),
        }
    }
}

/// Rebuild one athlete's rollups and metrics snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecomputeStatsInput {
    pub user_id: String,
}

impl RecomputeStatsInput {
    pub fn parse(body: &Value, prefix: &str) -> Result<Self, Vec<FieldError>> {
        let mut r = FieldReader::nested(body, prefix)?;
        let user_id = r.required_str("user_id", 1, 200);
        r.finish()?;
        Ok(Self {
            user_id: user_id.unwrap_or_default(),
        })
    }
}

/// Recompute every athlete of an organization (or of all organizations when `org_id` is absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecomputeBatchInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
}

impl RecomputeBatchInput {
    pub fn parse(body: &Value, prefix: &str) -> Result<Self, Vec<FieldError>> {
        let mut r = FieldReader::nested(body, prefix)?;
        let org_id = r.opt_str("org_id", 200).filter(|s| !s.is_empty());
        r.finish()?;
        Ok(Self { org_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn draft_input_is_canonicalised_with_defaults() {
        let v = JobKind::GenerateDraft
            .validate_input(&json!({"weeks": 4, "level": "beginner", "org_id": "o1", "training_principle": "  "}))
            .unwrap();
        assert_eq!(v, json!({"weeks": 4, "level": "beginner", "org_id": "o1"}));
    }

    #[test]
    fn plan_input_reports_every_field() {
        let errs = JobKind::GeneratePlan
            .validate_input(&json!({"weeks": 53, "level": "x", "org_id": "o", "refined_draft": "short", "recent_race": {"distance_m": "5k"}}))
            .unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "input.weeks",
                "input.level",
                "input.recent_race.distance_m",
                "input.recent_race.time_s",
                "input.refined_draft"
            ]
        );
    }

    #[test]
    fn kinds_round_trip() {
        for k in JobKind::ALL {
            assert_eq!(JobKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(JobKind::parse("nope"), None);
    }
}
