//! AI Training rules (seed 003), free of I/O: the plan generator, the routine-run summary and the
//! progress report. The SQL lives in `crate::db::ai_training`.

pub mod plan;
pub mod progress;
pub mod run;

use rand::Rng;

pub const GOALS: [&str; 4] = ["balance", "strength", "mobility", "endurance"];
pub const INTENSITIES: [&str; 3] = ["low", "moderate", "high"];
pub const RISK_TIERS: [&str; 3] = ["low", "moderate", "high"];
/// Assessment types, named as they appear in `assessmentSnapshot`.
pub const ASSESSMENT_TYPES: [&str; 4] = [
    "fallRisk",
    "mskAssessment",
    "cognitiveAssessment",
    "preferences",
];
/// The equipment label of a routine that needs nothing.
pub const NO_EQUIPMENT: &str = "none";
/// Lifetime of a custom token, in seconds.
pub const CUSTOM_TOKEN_TTL_SECS: i64 = 300;

/// 0 = low, 1 = moderate, 2 = high; `None` for an unknown label.
pub fn intensity_rank(intensity: &str) -> Option<usize> {
    INTENSITIES.iter().position(|i| *i == intensity)
}

/// A new random custom token (256 bits, hex). Only its SHA-256 is stored.
pub fn new_custom_token() -> String {
    random_token("ct_")
}

/// Longest life of a session a custom token opens (never beyond the bearer token behind it).
pub const SESSION_TTL_SECS: i64 = 3600;

/// Bearer tokens that name a session rather than a JWT start with this.
pub const SESSION_PREFIX: &str = "cs_";

/// A new random session token (256 bits, hex). Only its SHA-256 is stored.
pub fn new_session_token() -> String {
    random_token(SESSION_PREFIX)
}

fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    let mut out = String::with_capacity(prefix.len() + 64);
    out.push_str(prefix);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A prefixed, time-ordered id (`plan_0190…`).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// Rounds a ratio or amount to two decimals, as the API reports it.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `part / whole` rounded to two decimals; 0 when `whole` is 0.
pub fn ratio(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        0.0
    } else {
        round2(part as f64 / whole as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_tokens_are_random_and_well_formed() {
        let (a, b) = (new_custom_token(), new_custom_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 67);
        assert!(a[3..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn ratios_round_and_survive_zero() {
        assert_eq!(ratio(2, 3), 0.67);
        assert_eq!(ratio(1, 0), 0.0);
        assert_eq!(intensity_rank("high"), Some(2));
        assert_eq!(intensity_rank("extreme"), None);
    }
}
