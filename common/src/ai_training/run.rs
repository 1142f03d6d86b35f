//! Routine-run steps and their summary. A run copies its instance's template steps as `pending`
//! steps; `sync` folds AI Move session results (or the guided/skipped flags) into them, and the
//! summary is always recomputed from the steps.

use serde::{Deserialize, Serialize};

/// One step of a routine template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateStep {
    pub step_id: String,
    pub exercise_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reps: Option<i64>,
    #[serde(default)]
    pub guided: bool,
}

/// One step of a routine run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStep {
    pub sequence_index: i64,
    pub step_id: String,
    pub exercise_id: String,
    pub guided: bool,
    pub target_duration_seconds: Option<i64>,
    pub target_reps: Option<i64>,
    /// `pending`, `completed` or `skipped`.
    pub status: String,
    pub ai_move_session_id: Option<String>,
    pub duration_seconds: i64,
    pub calories_burned: f64,
    pub reps_completed: Option<i64>,
    pub score: Option<f64>,
}

impl RunStep {
    pub fn pending(sequence_index: i64, t: &TemplateStep) -> Self {
        Self {
            sequence_index,
            step_id: t.step_id.clone(),
            exercise_id: t.exercise_id.clone(),
            guided: t.guided,
            target_duration_seconds: t.duration_seconds,
            target_reps: t.reps,
            status: "pending".into(),
            ai_move_session_id: None,
            duration_seconds: 0,
            calories_burned: 0.0,
            reps_completed: None,
            score: None,
        }
    }

    /// Takes the measurements of an AI Move session; a completed session completes the step
    /// (a skipped step stays skipped).
    pub fn fold_session(&mut self, s: &SessionResult) {
        self.ai_move_session_id = Some(s.id.clone());
        self.duration_seconds = s.duration_seconds.max(0);
        self.calories_burned = s.calories_burned.max(0.0);
        self.reps_completed = s.reps_completed;
        self.score = s.score;
        if s.completed && self.status != "skipped" {
            self.status = "completed".into();
        }
    }

    pub fn skip(&mut self) {
        self.status = "skipped".into();
    }

    pub fn complete_guided(&mut self) {
        self.status = "completed".into();
    }
}

/// What an AI Move child session reported.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionResult {
    pub id: String,
    pub completed: bool,
    pub duration_seconds: i64,
    pub calories_burned: f64,
    pub reps_completed: Option<i64>,
    pub score: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub completed_exercises: i64,
    pub total_exercises: i64,
    pub completion_rate: f64,
    pub total_duration_seconds: i64,
    pub total_calories_burned: f64,
}

/// Skipped steps count toward the total but not as completed; measurements of every step count.
pub fn summarize(steps: &[RunStep]) -> Summary {
    let completed = steps.iter().filter(|s| s.status == "completed").count() as i64;
    let total = steps.len() as i64;
    Summary {
        completed_exercises: completed,
        total_exercises: total,
        completion_rate: super::ratio(completed, total),
        total_duration_seconds: steps.iter().map(|s| s.duration_seconds).sum(),
        total_calories_burned: super::round2(steps.iter().map(|s| s.calories_burned).sum()),
    }
}

/// Allowed status changes of a run: created → in-progress | abandoned,
/// in-progress → completed | abandoned. Everything else (including terminal states) is refused.
pub fn transition_allowed(from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        ("created", "in-progress")
            | ("created", "abandoned")
            | ("in-progress", "completed")
            | ("in-progress", "abandoned")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps() -> Vec<RunStep> {
        let t = |id: &str, guided| TemplateStep {
            step_id: id.into(),
            exercise_id: format!("ex-{id}"),
            duration_seconds: Some(60),
            reps: None,
            guided,
        };
        vec![
            RunStep::pending(0, &t("s1", false)),
            RunStep::pending(1, &t("s2", true)),
            RunStep::pending(2, &t("s3", false)),
        ]
    }

    #[test]
    fn summary_follows_the_steps() {
        let mut s = steps();
        assert_eq!(summarize(&s).completion_rate, 0.0);
        s[0].fold_session(&SessionResult {
            id: "ams_1".into(),
            completed: true,
            duration_seconds: 70,
            calories_burned: 4.25,
            reps_completed: Some(10),
            score: Some(0.9),
        });
        s[1].complete_guided();
        s[2].skip();
        let sum = summarize(&s);
        assert_eq!(
            (
                sum.completed_exercises,
                sum.total_exercises,
                sum.completion_rate
            ),
            (2, 3, 0.67)
        );
        assert_eq!(sum.total_duration_seconds, 70);
        assert_eq!(sum.total_calories_burned, 4.25);
    }

    #[test]
    fn an_incomplete_session_records_but_does_not_complete() {
        let mut s = steps();
        s[0].fold_session(&SessionResult {
            id: "ams_1".into(),
            completed: false,
            duration_seconds: 20,
            calories_burned: 1.0,
            reps_completed: None,
            score: None,
        });
        assert_eq!(s[0].status, "pending");
        assert_eq!(summarize(&s).total_duration_seconds, 20);
    }

    #[test]
    fn transitions() {
        assert!(transition_allowed("created", "in-progress"));
        assert!(transition_allowed("in-progress", "completed"));
        assert!(!transition_allowed("created", "completed"));
        assert!(!transition_allowed("completed", "in-progress"));
        assert!(!transition_allowed("abandoned", "abandoned"));
    }
}
