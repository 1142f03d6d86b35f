//! The plan generator (`generationSource: "rules"`).
//!
//! 1. The effective intensity is the requested one capped by the latest fall-risk tier
//!    (high risk → at most low, moderate risk → at most moderate, low or unknown → no cap).
//! 2. Eligible templates: visible to the client (published client templates and catalog-visible
//!    library templates; the caller passes only those), intensity at most the effective one, and
//!    every equipment label available (`none` always is).
//! 3. Ranking: goal match first, then intensity closest to the effective one, then duration
//!    closest to the preferred one, then name and id (deterministic).
//! 4. Without duplicates: the first `frequency` ranked templates (each once; fewer when fewer are
//!    eligible). With `allowDuplicateRoutineTemplates`: the goal-matching templates (all ranked
//!    ones when none matches the goal) repeated in rank order until `frequency` is reached.

use super::{INTENSITIES, NO_EQUIPMENT, intensity_rank};

/// What the generator is asked for (body fields, then preferences, then defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRequest {
    pub goal: String,
    pub intensity: String,
    pub frequency: usize,
    pub preferred_session_duration_minutes: i64,
    pub equipment_availability: Vec<String>,
    pub allow_duplicate_routine_templates: bool,
}

impl Default for PlanRequest {
    fn default() -> Self {
        Self {
            goal: "balance".into(),
            intensity: "moderate".into(),
            frequency: 3,
            preferred_session_duration_minutes: 20,
            equipment_availability: Vec::new(),
            allow_duplicate_routine_templates: false,
        }
    }
}

/// A template the generator may choose from.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub name: String,
    pub goal: String,
    pub intensity: String,
    pub duration_minutes: i64,
    pub equipment: Vec<String>,
}

/// The highest intensity allowed for a fall-risk tier.
pub fn intensity_cap(risk_tier: Option<&str>) -> &'static str {
    match risk_tier {
        Some("high") => "low",
        Some("moderate") => "moderate",
        _ => "high",
    }
}

/// The requested intensity, lowered to the risk tier's cap when above it.
pub fn effective_intensity(requested: &str, risk_tier: Option<&str>) -> &'static str {
    let cap = intensity_rank(intensity_cap(risk_tier)).unwrap_or(0);
    let wanted = intensity_rank(requested).unwrap_or(1);
    INTENSITIES[wanted.min(cap)]
}

fn equipment_ok(template: &Candidate, available: &[String]) -> bool {
    template
        .equipment
        .iter()
        .all(|e| e == NO_EQUIPMENT || available.iter().any(|a| a == e))
}

/// Indices into `candidates` of the chosen templates, in queue order.
pub fn select(req: &PlanRequest, risk_tier: Option<&str>, candidates: &[Candidate]) -> Vec<usize> {
    let effective = effective_intensity(&req.intensity, risk_tier);
    let max_rank = intensity_rank(effective).unwrap_or(0);
    let mut ranked: Vec<(usize, (bool, usize, i64))> = candidates
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let rank = intensity_rank(&c.intensity)?;
            (rank <= max_rank && equipment_ok(c, &req.equipment_availability)).then(|| {
                let key = (
                    c.goal != req.goal,
                    max_rank - rank,
                    (c.duration_minutes - req.preferred_session_duration_minutes).abs(),
                );
                (i, key)
            })
        })
        .collect();
    ranked.sort_by(|(a, ka), (b, kb)| {
        ka.cmp(kb)
            .then_with(|| candidates[*a].name.cmp(&candidates[*b].name))
            .then_with(|| candidates[*a].id.cmp(&candidates[*b].id))
    });
    let ranked: Vec<usize> = ranked.into_iter().map(|(i, _)| i).collect();
    if !req.allow_duplicate_routine_templates {
        return ranked.into_iter().take(req.frequency).collect();
    }
    let matching: Vec<usize> = ranked
        .iter()
        .copied()
        .filter(|i| candidates[*i].goal == req.goal)
        .collect();
    let pool = if matching.is_empty() {
        ranked
    } else {
        matching
    };
    pool.iter().copied().cycle().take(req.frequency).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, goal: &str, intensity: &str, minutes: i64, equipment: &[&str]) -> Candidate {
        Candidate {
            id: id.into(),
            name: id.into(),
            goal: goal.into(),
            intensity: intensity.into(),
            duration_minutes: minutes,
            equipment: equipment.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn ids(cands: &[Candidate], picked: &[usize]) -> Vec<String> {
        picked.iter().map(|i| cands[*i].id.clone()).collect()
    }

    fn library() -> Vec<Candidate> {
        vec![
            c("bal-low", "balance", "low", 15, &["chair"]),
            c("bal-mod", "balance", "moderate", 20, &["none"]),
            c("bal-high", "balance", "high", 25, &["none"]),
            c("str-mod", "strength", "moderate", 20, &["resistance-band"]),
            c("mob-low", "mobility", "low", 10, &["none"]),
        ]
    }

    #[test]
    fn high_risk_never_gets_high_or_moderate_intensity() {
        let lib = library();
        let req = PlanRequest {
            intensity: "high".into(),
            frequency: 5,
            equipment_availability: vec!["chair".into(), "resistance-band".into()],
            ..Default::default()
        };
        assert_eq!(effective_intensity("high", Some("high")), "low");
        let picked = ids(&lib, &select(&req, Some("high"), &lib));
        assert_eq!(picked, ["bal-low", "mob-low"]);
        // without an assessment the same request reaches the high template first
        let picked = ids(&lib, &select(&req, None, &lib));
        assert_eq!(picked[0], "bal-high");
        assert_eq!(effective_intensity("moderate", Some("low")), "moderate");
        assert_eq!(effective_intensity("high", Some("moderate")), "moderate");
    }

    #[test]
    fn equipment_must_be_available() {
        let lib = library();
        let req = PlanRequest {
            frequency: 5,
            ..Default::default()
        };
        let picked = ids(&lib, &select(&req, None, &lib));
        assert!(!picked.contains(&"bal-low".to_string()));
        assert!(!picked.contains(&"str-mod".to_string()));
        assert_eq!(picked, ["bal-mod", "mob-low"]);
    }

    #[test]
    fn goal_then_duration_order_and_frequency() {
        let lib = vec![
            c("a", "strength", "moderate", 20, &["none"]),
            c("b", "balance", "moderate", 30, &["none"]),
            c("c", "balance", "moderate", 15, &["none"]),
        ];
        let req = PlanRequest {
            preferred_session_duration_minutes: 15,
            frequency: 2,
            ..Default::default()
        };
        assert_eq!(ids(&lib, &select(&req, None, &lib)), ["c", "b"]);
    }

    #[test]
    fn duplicates_only_when_allowed() {
        let lib = vec![
            c("b1", "balance", "moderate", 20, &["none"]),
            c("b2", "balance", "moderate", 15, &["none"]),
            c("s1", "strength", "moderate", 20, &["none"]),
        ];
        let mut req = PlanRequest {
            frequency: 5,
            ..Default::default()
        };
        assert_eq!(ids(&lib, &select(&req, None, &lib)), ["b1", "b2", "s1"]);
        req.allow_duplicate_routine_templates = true;
        assert_eq!(
            ids(&lib, &select(&req, None, &lib)),
            ["b1", "b2", "b1", "b2", "b1"]
        );
        assert!(select(&req, None, &[]).is_empty());
    }
}
