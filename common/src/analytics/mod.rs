//! Analytics formulas, pure and unit-tested against the worked cases of
//! `training-science.md` (§3 load, §4 zones, §5 signals). `docs/analytics.md` lists which
//! ones Pacer uses and why.

pub mod load;
pub mod signals;
pub mod snapshot;
pub mod zones;

/// Strava sport types that count as running (weekly distance, pace, running_stats).
pub const RUN_TYPES: [&str; 3] = ["Run", "TrailRun", "VirtualRun"];

pub fn is_run(sport_type: &str) -> bool {
    RUN_TYPES.contains(&sport_type)
}

/// Seconds per km as `M:SS` (rounded to the nearest second); `None` for no pace.
pub fn format_pace(secs_per_km: f64) -> Option<String> {
    if !secs_per_km.is_finite() || secs_per_km <= 0.0 {
        return None;
    }
    let total = secs_per_km.round() as i64;
    Some(format!("{}:{:02}", total / 60, total % 60))
}

/// Distance-weighted average pace (§3.8): Σ moving time / (Σ distance / 1000). `None` without
/// distance. The mean of per-activity paces would be wrong.
pub fn avg_pace(total_moving_secs: f64, total_distance_m: f64) -> Option<f64> {
    (total_distance_m > 0.0 && total_moving_secs > 0.0)
        .then(|| total_moving_secs / (total_distance_m / 1000.0))
}

/// Mean of the 4 most recent completed weekly totals (§3.8); `weeks` is oldest to newest and
/// holds completed weeks only. Missing weeks count as 0.
pub fn four_week_avg(completed_weeks: &[f64]) -> f64 {
    let last: Vec<f64> = completed_weeks.iter().rev().take(4).copied().collect();
    last.iter().sum::<f64>() / 4.0
}

/// Rounds to `places` decimals (for JSON output). `+ 0.0` turns −0.0 (an empty float sum
/// starts there) into 0.
pub fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f + 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l25_weekly_distance_and_distance_weighted_pace() {
        let acts = [
            (10000.0, 3000.0),
            (8000.0, 2640.0),
            (21100.0, 7385.0),
            (5000.0, 1350.0),
        ];
        let dist: f64 = acts.iter().map(|a| a.0).sum();
        let secs: f64 = acts.iter().map(|a| a.1).sum();
        assert!((dist / 1000.0 - 44.1).abs() < 1e-9);
        let pace = avg_pace(secs, dist).unwrap();
        assert!((pace - 325.96).abs() < 0.01, "{pace}");
        assert_eq!(format_pace(pace).as_deref(), Some("5:26"));
        let naive: f64 = acts.iter().map(|a| a.1 / (a.0 / 1000.0)).sum::<f64>() / 4.0;
        assert!(
            (naive - 312.5).abs() < 0.01,
            "the naive mean differs: {naive}"
        );
    }

    #[test]
    fn l26_four_week_average_excludes_the_current_week() {
        let completed = [300.0, 320.0, 350.0, 260.0];
        assert!((four_week_avg(&completed) - 307.5).abs() < 1e-9);
        assert!(
            (four_week_avg(&[100.0]) - 25.0).abs() < 1e-9,
            "missing weeks are 0"
        );
    }

    #[test]
    fn pace_formats_as_minutes_and_zero_padded_seconds() {
        assert_eq!(format_pace(300.0).as_deref(), Some("5:00"));
        assert_eq!(format_pace(359.6).as_deref(), Some("6:00"));
        assert_eq!(format_pace(61.0).as_deref(), Some("1:01"));
        assert_eq!(format_pace(0.0), None);
        assert_eq!(avg_pace(100.0, 0.0), None);
    }

    #[test]
    fn rounding_never_yields_negative_zero() {
        let empty: f64 = std::iter::empty::<f64>().sum();
        assert!(round(empty, 1).is_sign_positive());
        assert_eq!(round(141.666, 1), 141.7);
    }
}
