//! Pace and heart-rate zones Z1..Z5 (§4.1–4.3) and time in zone.

/// Pace zone index 0..=4 (Z1..Z5) from `r = pace / threshold pace` (§4.2 default):
/// Z1 r ≥ 1.29, Z2 ≥ 1.14, Z3 ≥ 1.06, Z4 ≥ 1.00, Z5 below.
pub fn pace_zone(pace_s_per_km: f64, threshold_pace: f64) -> usize {
    let r = pace_s_per_km / threshold_pace;
    if r >= 1.29 {
        0
    } else if r >= 1.14 {
        1
    } else if r >= 1.06 {
        2
    } else if r >= 1.00 {
        3
    } else {
        4
    }
}

/// Heart-rate zone index 0..=4 by Friel %LTHR (§4.1 default): h < 0.85, < 0.90, < 0.95,
/// < 1.00, else Z5.
pub fn hr_zone(hr: f64, lthr: f64) -> usize {
    let h = hr / lthr;
    if h < 0.85 {
        0
    } else if h < 0.90 {
        1
    } else if h < 0.95 {
        2
    } else if h < 1.00 {
        3
    } else {
        4
    }
}

/// One sample or lap: seconds, and the pace (s/km) or HR it was held at; `None` = stopped.
pub type Sample = (f64, Option<f64>);

/// Adds each moving sample's seconds to its zone (§4.3); stopped time is excluded.
pub fn time_in_zone(samples: &[Sample], zone: impl Fn(f64) -> usize) -> [f64; 5] {
    let mut out = [0.0; 5];
    for (secs, value) in samples {
        if let Some(v) = value.filter(|v| *v > 0.0) {
            out[zone(v).min(4)] += secs.max(0.0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l27_pace_time_in_zone() {
        let samples = [
            (180.0, Some(360.0)),
            (600.0, Some(330.0)),
            (300.0, Some(290.0)),
            (480.0, Some(275.0)),
            (240.0, Some(255.0)),
            (120.0, None),
        ];
        let z = time_in_zone(&samples, |p| pace_zone(p, 270.0));
        assert_eq!(z, [180.0, 600.0, 300.0, 480.0, 240.0]);
    }

    #[test]
    fn l28_heart_rate_time_in_zone() {
        let samples = [
            (300.0, Some(140.0)),
            (900.0, Some(150.0)),
            (600.0, Some(155.0)),
            (600.0, Some(163.0)),
            (300.0, Some(172.0)),
        ];
        let z = time_in_zone(&samples, |hr| hr_zone(hr, 170.0));
        assert_eq!(z, [300.0, 900.0, 600.0, 600.0, 300.0]);
    }

    #[test]
    fn zone_boundaries_are_closed_downward() {
        assert_eq!(pace_zone(300.0 * 1.29, 300.0), 0);
        assert_eq!(pace_zone(300.0, 300.0), 3);
        assert_eq!(pace_zone(299.0, 300.0), 4);
        assert_eq!(hr_zone(170.0, 170.0), 4);
    }
}
