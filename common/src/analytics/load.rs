//! Training load (§3): Banister TRIMP, HRSS, rTSS, CTL/ATL (TrainingPeaks form) and ACWR.

/// Defaults used when an athlete's own values are unknown (Pacer stores none yet).
pub const DEFAULT_HR_REST: f64 = 60.0;
pub const DEFAULT_HR_MAX: f64 = 190.0;
/// Threshold pace (s/km) for rTSS and pace zones: 5:00/km.
pub const DEFAULT_THRESHOLD_PACE: f64 = 300.0;
/// Banister's k for men; Pacer has no sex field and uses it for everyone.
pub const K_MALE: f64 = 1.92;
pub const K_FEMALE: f64 = 1.67;

/// Elevate's default LTHR: resting HR + 85 % of the heart-rate reserve (L13).
pub fn default_lthr(hr_rest: f64, hr_max: f64) -> f64 {
    hr_rest + 0.85 * (hr_max - hr_rest)
}

/// Banister TRIMP from an average HR over `minutes` (§3.1 average-HR form); 0 below rest.
pub fn trimp(minutes: f64, avg_hr: f64, hr_rest: f64, hr_max: f64, k: f64) -> f64 {
    if hr_max <= hr_rest || avg_hr <= hr_rest || minutes <= 0.0 {
        return 0.0;
    }
    let hrr = ((avg_hr - hr_rest) / (hr_max - hr_rest)).min(1.0);
    minutes * hrr * 0.64 * (k * hrr).exp()
}

/// HRSS (§3.5): 100 × TRIMP / TRIMP of one hour at LTHR.
pub fn hrss(trimp: f64, lthr: f64, hr_rest: f64, hr_max: f64, k: f64) -> f64 {
    let hour = self::trimp(60.0, lthr, hr_rest, hr_max, k);
    if hour <= 0.0 {
        0.0
    } else {
        100.0 * trimp / hour
    }
}

/// rTSS-like (§3.4): 100 × hours × IF², IF = threshold speed ratio = threshold pace / pace.
pub fn rtss(moving_secs: f64, pace_s_per_km: f64, threshold_pace: f64) -> f64 {
    if moving_secs <= 0.0 || pace_s_per_km <= 0.0 {
        return 0.0;
    }
    let intensity = threshold_pace / pace_s_per_km;
    100.0 * (moving_secs / 3600.0) * intensity * intensity
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMethod {
    Hrss,
    Rtss,
    None,
}

impl LoadMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hrss => "hrss",
            Self::Rtss => "rtss",
            Self::None => "none",
        }
    }
}

/// The load Pacer stores per activity: HRSS when an average HR above rest is known (default
/// HRrest 60, HRmax 190, LTHR 170.5, moving minutes), otherwise, for a run, rTSS from the
/// average pace against a 5:00/km threshold, otherwise 0 (a running threshold says nothing
/// of a ride's speed: 30 km/h would score as a run at 2:00/km).
pub fn activity_load(
    moving_secs: f64,
    distance_m: f64,
    avg_hr: Option<f64>,
    run: bool,
) -> (f64, LoadMethod) {
    if let Some(hr) = avg_hr.filter(|hr| *hr > DEFAULT_HR_REST && moving_secs > 0.0) {
        let t = trimp(
            moving_secs / 60.0,
            hr,
            DEFAULT_HR_REST,
            DEFAULT_HR_MAX,
            K_MALE,
        );
        let lthr = default_lthr(DEFAULT_HR_REST, DEFAULT_HR_MAX);
        return (
            hrss(t, lthr, DEFAULT_HR_REST, DEFAULT_HR_MAX, K_MALE),
            LoadMethod::Hrss,
        );
    }
    if run && distance_m > 0.0 && moving_secs > 0.0 {
        let pace = moving_secs / (distance_m / 1000.0);
        return (
            rtss(moving_secs, pace, DEFAULT_THRESHOLD_PACE),
            LoadMethod::Rtss,
        );
    }
    (0.0, LoadMethod::None)
}

/// CTL/ATL after each day (TrainingPeaks recursion, §3.6): `x += (load − x) / N`, from 0.
/// Returns `(ctl, atl)` per day.
pub fn ctl_atl(daily_loads: &[f64]) -> Vec<(f64, f64)> {
    let (mut ctl, mut atl) = (0.0, 0.0);
    daily_loads
        .iter()
        .map(|l| {
            ctl += (l - ctl) / 42.0;
            atl += (l - atl) / 7.0;
            (ctl, atl)
        })
        .collect()
}

/// EWMA acute:chronic ratio (§3.7, Williams 2017): λa = 2/8, λc = 2/29, seeded with the first
/// day's load. `None` with fewer than 28 days or a zero chronic value.
pub fn acwr_ewma(daily_loads: &[f64]) -> Option<f64> {
    let (acute, chronic) = ewma(daily_loads)?;
    (daily_loads.len() >= 28 && chronic > 0.0).then(|| acute / chronic)
}

/// (acute, chronic) EWMA values after the last day.
pub fn ewma(daily_loads: &[f64]) -> Option<(f64, f64)> {
    let first = *daily_loads.first()?;
    let (la, lc) = (2.0 / 8.0, 2.0 / 29.0);
    let (mut a, mut c) = (first, first);
    for l in &daily_loads[1..] {
        a = la * l + (1.0 - la) * a;
        c = lc * l + (1.0 - lc) * c;
    }
    Some((a, c))
}

/// Rolling coupled 7/28 ACWR (§3.7): mean of the last 7 days / mean of the last 28.
pub fn acwr_rolling(daily_loads: &[f64]) -> Option<f64> {
    if daily_loads.len() < 28 {
        return None;
    }
    let n = daily_loads.len();
    let acute = daily_loads[n - 7..].iter().sum::<f64>() / 7.0;
    let chronic = daily_loads[n - 28..].iter().sum::<f64>() / 28.0;
    (chronic > 0.0).then(|| acute / chronic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn l1_l2_banister_trimp_average_hr() {
        assert!(close(trimp(30.0, 130.0, 40.0, 200.0, K_MALE), 31.80, 0.01));
        assert!(close(
            trimp(30.0, 130.0, 40.0, 200.0, K_FEMALE),
            27.63,
            0.01
        ));
    }

    #[test]
    fn l3_l4_segments_sum_higher_than_the_average_form() {
        let segs = [(10.0, 120.0), (20.0, 150.0), (10.0, 170.0)];
        let sum: f64 = segs
            .iter()
            .map(|(m, hr)| trimp(*m, *hr, 50.0, 190.0, K_MALE))
            .sum();
        assert!(close(sum, 72.83, 0.01), "{sum}");
        assert!(close(trimp(40.0, 147.5, 50.0, 190.0, K_MALE), 67.89, 0.01));
    }

    #[test]
    fn l11_l12_l13_l14_hrss() {
        assert_eq!(hrss(333.0, 163.0, 60.0, 190.0, K_MALE).floor(), 239.0);
        assert_eq!(hrss(333.0, 170.5, 60.0, 190.0, K_MALE).floor(), 199.0);
        assert!(close(default_lthr(60.0, 190.0), 170.5, 1e-9));
        assert!(close(hrss(72.83, 170.0, 50.0, 190.0, K_MALE), 42.68, 0.01));
    }

    #[test]
    fn l8_l9_l10_rtss() {
        assert!(close(rtss(3600.0, 300.0, 300.0), 100.0, 1e-9));
        assert!(close(rtss(1800.0, 300.0, 270.0), 40.5, 0.01));
        assert!(close(rtss(5400.0, 330.0, 270.0), 100.41, 0.01));
    }

    #[test]
    fn activity_load_prefers_heart_rate_then_pace() {
        let (l, m) = activity_load(3600.0, 12000.0, None, true);
        assert_eq!(m, LoadMethod::Rtss);
        assert!(close(l, 100.0, 1e-9));
        let (l, m) = activity_load(3600.0, 12000.0, Some(170.5), true);
        assert_eq!(m, LoadMethod::Hrss);
        assert!(close(l, 100.0, 1e-9), "one hour at LTHR is 100: {l}");
        assert_eq!(activity_load(0.0, 0.0, None, true).1, LoadMethod::None);
    }

    #[test]
    fn a_ride_gets_no_pace_load() {
        // 40 km in an hour: as a run at 1:30/km it would score 1,111
        assert_eq!(
            activity_load(3600.0, 40000.0, None, false),
            (0.0, LoadMethod::None)
        );
        let (l, m) = activity_load(3600.0, 40000.0, Some(170.5), false);
        assert_eq!(m, LoadMethod::Hrss);
        assert!(close(l, 100.0, 1e-9));
    }

    #[test]
    fn l16_l17_ctl_atl_constant_load() {
        let s = ctl_atl(&[100.0; 42]);
        assert!(
            close(s[6].0, 15.52, 0.01) && close(s[6].1, 66.01, 0.01),
            "{:?}",
            s[6]
        );
        assert!(
            close(s[41].0, 63.65, 0.01) && close(s[41].1, 99.85, 0.01),
            "{:?}",
            s[41]
        );
    }

    #[test]
    fn l20_ctl_atl_tsb() {
        let loads = [
            50.0, 0.0, 80.0, 60.0, 0.0, 120.0, 40.0, 60.0, 0.0, 90.0, 70.0, 0.0, 150.0, 50.0,
        ];
        let s = ctl_atl(&loads);
        let (c14, a14) = s[13];
        let (c13, a13) = s[12];
        assert!(close(c14, 16.02, 0.01) && close(a14, 53.98, 0.01));
        assert!(close(c14 - a14, -37.95, 0.01));
        assert!(close(c13, 15.20, 0.01) && close(a13, 54.64, 0.01));
        assert!(close(c13 - a13, -39.45, 0.01), "tsb_pre of day 14");
    }

    #[test]
    fn l22_l24_acwr() {
        let mut loads = vec![400.0; 21];
        loads.extend([600.0, 0.0, 900.0, 700.0, 0.0, 1200.0, 800.0]);
        assert!(close(acwr_rolling(&loads).unwrap(), 1.3333, 0.0001));
        let (a, c) = ewma(&loads).unwrap();
        assert!(close(a, 650.11, 0.01) && close(c, 487.33, 0.01), "{a} {c}");
        assert!(close(acwr_ewma(&loads).unwrap(), 1.3340, 0.0001));
        assert_eq!(acwr_ewma(&loads[..27]), None, "suppressed before 28 days");
    }
}
