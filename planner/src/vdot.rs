//! Daniels & Gilbert VDOT maths (training-science.md §2.1).
//!
//! Speeds are in metres per minute and times in minutes inside the
//! regressions, as in the source; the public functions take metres and
//! seconds and return seconds per km.

/// Oxygen cost (ml/kg/min) of running at `v` metres per minute.
fn oxygen_cost(v: f64) -> f64 {
    -4.60 + 0.182258 * v + 0.000104 * v * v
}

/// Fraction of VO2max that can be sustained for `t` minutes.
fn sustainable_fraction(t: f64) -> f64 {
    0.8 + 0.1894393 * (-0.012778 * t).exp() + 0.2989558 * (-0.1932605 * t).exp()
}

/// Speed (m/min) whose oxygen cost is `vo2`: the positive root of the cost quadratic.
fn velocity_for_vo2(vo2: f64) -> f64 {
    let (a, b, c) = (0.000104, 0.182258, -4.60 - vo2);
    let disc = (b * b - 4.0 * a * c).max(0.0);
    ((-b + disc.sqrt()) / (2.0 * a)).max(1.0)
}

/// Pace (s/km) at `pct` of VO2max for an athlete of the given VDOT.
fn pace_at(vdot: f64, pct: f64) -> f64 {
    60_000.0 / velocity_for_vo2(vdot * pct)
}

/// VDOT from a maximal effort; 0 for non-positive or non-finite input.
pub fn vdot(distance_m: f64, time_s: f64) -> f64 {
    if !(distance_m.is_finite() && time_s.is_finite()) || distance_m <= 0.0 || time_s <= 0.0 {
        return 0.0;
    }
    let t = time_s / 60.0;
    oxygen_cost(distance_m / t) / sustainable_fraction(t)
}

/// Race time (s) at which `vdot` would be achieved over `distance_m`.
///
/// Bisection on 1..1440 min: the ratio falls monotonically with time, so the
/// root is bracketed for any realistic VDOT; out-of-range answers clamp to the
/// bracket instead of failing.
pub fn predict_time_s(vdot: f64, distance_m: f64) -> f64 {
    if !(vdot.is_finite() && distance_m.is_finite()) || vdot <= 0.0 || distance_m <= 0.0 {
        return 0.0;
    }
    let g = |t: f64| oxygen_cost(distance_m / t) / sustainable_fraction(t) - vdot;
    let (mut lo, mut hi) = (1.0_f64, 1440.0_f64);
    if g(lo) <= 0.0 {
        return lo * 60.0;
    }
    if g(hi) >= 0.0 {
        return hi * 60.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        // adjacent floats: g(lo) > 0 >= g(hi) holds, so no further step changes either
        if mid <= lo || mid >= hi {
            break;
        }
        if g(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi) * 60.0
}

/// Training paces in seconds per km; `easy_min` is the fast end of E.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paces {
    pub easy_min: f64,
    pub easy_max: f64,
    pub marathon: f64,
    pub threshold: f64,
    pub interval: f64,
    pub repetition: f64,
}

/// Paces from the %VO2max fits of the DRF 3rd-edition tables (§2.1 table).
pub fn training_paces(vdot: f64) -> Paces {
    let v = if vdot.is_finite() {
        vdot.clamp(1.0, 120.0)
    } else {
        1.0
    };
    let interval = pace_at(v, 0.975);
    // Daniels' R rule: I minus 6 s/400 m (8 s below VDOT 50), metric form.
    let repetition = interval - if v >= 50.0 { 15.0 } else { 20.0 };
    Paces {
        easy_min: pace_at(v, 0.7346),
        easy_max: pace_at(v, 0.6304),
        marathon: predict_time_s(v, 42_195.0) / 42.195,
        threshold: pace_at(v, 0.88),
        interval,
        repetition,
    }
}

/// `M:SS`, rounded to whole seconds first so 59.6 s becomes "1:00".
pub fn format_pace(seconds_per_km: f64) -> String {
    let total = if seconds_per_km.is_finite() && seconds_per_km > 0.0 {
        seconds_per_km.round().min(359_999.0) as u64
    } else {
        0
    };
    format!("{}:{:02}", total / 60, total % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hms(h: f64, m: f64, s: f64) -> f64 {
        h * 3600.0 + m * 60.0 + s
    }

    // Published DRF 3rd-ed. rows (race tables, as transcribed in tlgs/vdot notebook 2).
    const RACES: &[(f64, f64, f64)] = &[
        (40.0, 5000.0, 24.0 * 60.0 + 8.0),
        (40.0, 42_195.0, 3.0 * 3600.0 + 49.0 * 60.0 + 45.0),
        (50.0, 5000.0, 19.0 * 60.0 + 57.0),
        (50.0, 10_000.0, 41.0 * 60.0 + 21.0),
        (50.0, 21_097.5, 3600.0 + 31.0 * 60.0 + 35.0),
        (50.0, 42_195.0, 3.0 * 3600.0 + 10.0 * 60.0 + 49.0),
        (60.0, 10_000.0, 35.0 * 60.0 + 22.0),
        (70.0, 21_097.5, 3600.0 + 8.0 * 60.0 + 21.0),
    ];

    #[test]
    fn vdot_matches_published_rows() {
        for &(expected, d, t) in RACES {
            let got = vdot(d, t);
            assert!(
                (got - expected).abs() <= 0.2,
                "{d} m in {t} s: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn prediction_inverts_vdot() {
        for &(v, d, t) in RACES {
            let p = predict_time_s(v, d);
            // Within 0.2 VDOT of the row means within roughly 0.5 % of the time.
            assert!((p - t).abs() / t < 0.006, "{v} {d}: {p} vs {t}");
            assert!((vdot(d, p) - v).abs() < 1e-6);
        }
        assert!((predict_time_s(50.0, 42_195.0) - hms(3.0, 10.0, 49.0)).abs() < 60.0);
    }

    #[test]
    fn paces_match_published_rows() {
        // (VDOT, T s/km, I s/km, M s/km) from the DRF tables (per-km columns).
        let rows: &[(f64, f64, f64, f64)] = &[
            (40.0, 306.0, 282.0, 329.0),
            (50.0, 255.0, 235.0, 271.0),
            (60.0, 220.0, 203.0, 232.0),
            (70.0, 194.0, 177.0, 204.0),
        ];
        for &(v, t, i, m) in rows {
            let p = training_paces(v);
            assert!((p.threshold - t).abs() <= 2.0, "T at {v}: {}", p.threshold);
            assert!((p.interval - i).abs() <= 2.0, "I at {v}: {}", p.interval);
            assert!((p.marathon - m).abs() <= 3.0, "M at {v}: {}", p.marathon);
        }
        // E range at VDOT 50 is 4:56-5:34 in the table; the fit is ±5 s.
        let p = training_paces(50.0);
        assert!((p.easy_min - 296.0).abs() <= 5.0 && (p.easy_max - 334.0).abs() <= 5.0);
        assert!(p.repetition < p.interval && p.interval < p.threshold);
    }

    #[test]
    fn format_pace_rounds() {
        assert_eq!(format_pace(260.0), "4:20");
        assert_eq!(format_pace(259.6), "4:20");
        assert_eq!(format_pace(59.6), "1:00");
        assert_eq!(format_pace(119.5), "2:00");
        assert_eq!(format_pace(305.4), "5:05");
        assert_eq!(format_pace(f64::NAN), "0:00");
        assert_eq!(format_pace(-3.0), "0:00");
    }

    #[test]
    fn degenerate_input_is_total() {
        assert_eq!(vdot(0.0, 100.0), 0.0);
        assert_eq!(predict_time_s(-1.0, 5000.0), 0.0);
        let p = training_paces(f64::NAN);
        assert!(p.easy_max.is_finite());
    }
}
