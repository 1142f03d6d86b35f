//! Attention signals (§5.1–5.3) and the recovery score (§5.4).

use chrono::{Duration, NaiveDate};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flag {
    pub code: &'static str,
    /// "warning" or "info"
    pub severity: &'static str,
    pub message: String,
}

impl Flag {
    fn new(code: &'static str, severity: &'static str, message: String) -> Self {
        Self {
            code,
            severity,
            message,
        }
    }
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Sample standard deviation; `None` below two values.
fn sample_sd(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs)?;
    let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
    Some(var.sqrt())
}

/// HRV z-score (§5.1) on ln(rMSSD): baseline = the 60 days before the last 7 (≥ 30 values),
/// recent = mean of the last 7 days (≥ 3 values). Inputs are already ln values.
pub fn hrv_z(baseline_ln: &[f64], recent_ln: &[f64]) -> Option<f64> {
    if baseline_ln.len() < 30 || recent_ln.len() < 3 {
        return None;
    }
    let sd = sample_sd(baseline_ln).filter(|sd| *sd > 0.0)?;
    Some((mean(recent_ln)? - mean(baseline_ln)?) / sd)
}

/// `hrv_low` (warning) when z < −1, `hrv_below_swc` (info) when z < −0.5.
pub fn hrv_flag(z: Option<f64>) -> Option<Flag> {
    let z = z?;
    if z < -1.0 {
        Some(Flag::new(
            "hrv_low",
            "warning",
            format!("7-day HRV is {:.1} SD below the 60-day baseline", -z),
        ))
    } else if z < -0.5 {
        Some(Flag::new(
            "hrv_below_swc",
            "info",
            format!("7-day HRV is {:.1} SD below the 60-day baseline", -z),
        ))
    } else {
        None
    }
}

/// `hrv_acute_drop` (warning, §5.1): a single-day ln(rMSSD) below `baseline_mean − 2·sd` on
/// at least 2 consecutive calendar days. Same baseline as [`hrv_z`] (≥ 30 values, sample SD);
/// `recent_ln` holds the days to look at (the snapshot passes its last 7), in any order. A day
/// without a value breaks the run: "consecutive" means calendar days, not measurements, so two
/// low readings a day apart say nothing about the night between. It answers a different
/// question than `hrv_low` (a sudden, sustained dip rather than a low weekly mean), so both may
/// be raised. The latest run of low days is reported.
pub fn hrv_acute_drop(baseline_ln: &[f64], recent_ln: &[(NaiveDate, f64)]) -> Option<Flag> {
    if baseline_ln.len() < 30 {
        return None;
    }
    let m = mean(baseline_ln)?;
    let sd = sample_sd(baseline_ln).filter(|sd| *sd > 0.0)?;
    let bound = m - 2.0 * sd;
    let mut low: Vec<(NaiveDate, f64)> = recent_ln
        .iter()
        .filter(|(_, v)| *v < bound)
        .map(|(d, v)| (*d, (m - v) / sd))
        .collect();
    low.sort_by_key(|(d, _)| *d);
    low.dedup_by_key(|(d, _)| *d);
    // runs of consecutive calendar days among the low days; keep the latest one of ≥ 2 days
    let mut best: Option<&[(NaiveDate, f64)]> = None;
    let mut start = 0;
    for i in 1..=low.len() {
        let ends = i == low.len() || low[i].0 != low[i - 1].0 + Duration::days(1);
        if ends {
            if i - start >= 2 {
                best = Some(&low[start..i]);
            }
            start = i;
        }
    }
    let run = best?;
    let (first, last) = (run.first()?.0, run.last()?.0);
    let deepest = run.iter().map(|(_, sds)| *sds).fold(0.0, f64::max);
    Some(Flag::new(
        "hrv_acute_drop",
        "warning",
        format!(
            "daily HRV below the 60-day baseline − 2 SD on {} consecutive days ({first} to {last}), \
             down to {deepest:.1} SD below",
            run.len()
        ),
    ))
}

/// `rhr_elevated` (§5.2): 7-day mean ≥ 28-day baseline + 5 bpm, or a single recent day ≥
/// baseline + 10.
pub fn rhr_flag(baseline: &[f64], recent: &[f64]) -> Option<Flag> {
    let b = mean(baseline)?;
    let r = mean(recent)?;
    let spike = recent.iter().any(|x| *x >= b + 10.0);
    // compare at 0.01 bpm so a mean exactly 5 over (L35) is not lost to rounding
    let delta = ((r - b) * 100.0).round() / 100.0;
    (delta >= 5.0 || spike).then(|| {
        Flag::new(
            "rhr_elevated",
            "warning",
            format!("resting HR is {delta:+.1} bpm over the 28-day baseline"),
        )
    })
}

/// `volume_spike` (§5.3): this week's run distance ≥ 1.30 × last week's, when last week had
/// at least 10 km. After a cutback week (last week ≥ 20 % under the mean of the three before
/// it: a planned cutback is 25 %, §1.3) the reference is the mean of the last 4 weeks, so
/// returning to the usual volume is not a spike. `last_weeks_km`: last week first.
pub fn volume_spike(this_week_km: f64, last_weeks_km: [f64; 4]) -> Option<Flag> {
    let [last, before @ ..] = last_weeks_km;
    let cutback = last <= 0.8 * before.iter().sum::<f64>() / 3.0;
    let reference = if cutback {
        last_weeks_km.iter().sum::<f64>() / 4.0
    } else {
        last
    };
    (last >= 10.0 && this_week_km >= 1.30 * reference).then(|| {
        let against = if cutback {
            "the 4-week mean after a cutback week"
        } else {
            "last week"
        };
        Flag::new(
            "volume_spike",
            "warning",
            format!(
                "weekly distance {:.1} % over {against} ({reference:.1} → {this_week_km:.1} km)",
                (this_week_km / reference - 1.0) * 100.0
            ),
        )
    })
}

/// `acwr_high`: EWMA ACWR > 1.5 warning, 1.3–1.5 info.
pub fn acwr_flag(acwr: Option<f64>) -> Option<Flag> {
    let a = acwr?;
    if a > 1.5 {
        Some(Flag::new(
            "acwr_high",
            "warning",
            format!("acute:chronic load ratio {a:.2}"),
        ))
    } else if a >= 1.3 {
        Some(Flag::new(
            "acwr_high",
            "info",
            format!("acute:chronic load ratio {a:.2}"),
        ))
    } else {
        None
    }
}

/// `ctl_ramp_high`: CTL rose more than 7 in a week.
pub fn ctl_ramp_flag(ctl_now: f64, ctl_week_ago: f64) -> Option<Flag> {
    let ramp = ctl_now - ctl_week_ago;
    (ramp > 7.0).then(|| {
        Flag::new(
            "ctl_ramp_high",
            "info",
            format!("fitness (CTL) rose {ramp:.1} in 7 days"),
        )
    })
}

/// `tsb_very_negative`: form going into today below −30.
pub fn tsb_flag(tsb_pre: f64) -> Option<Flag> {
    (tsb_pre < -30.0).then(|| {
        Flag::new(
            "tsb_very_negative",
            "warning",
            format!("form (TSB) is {tsb_pre:.1}"),
        )
    })
}

/// `intensity_drift`: Z3–Z5 share of pace-zone time above 25 % over 14 days.
pub fn intensity_flag(zone_secs: [f64; 5]) -> Option<Flag> {
    let total: f64 = zone_secs.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let hard = (zone_secs[2] + zone_secs[3] + zone_secs[4]) / total;
    (hard > 0.25).then(|| {
        Flag::new(
            "intensity_drift",
            "info",
            format!("{:.0} % of the last 14 days in Z3–Z5", hard * 100.0),
        )
    })
}

/// Foster's training monotony (§3.3): mean ÷ population SD of 7 daily loads (rest days 0);
/// `None` when the SD is 0.
pub fn monotony(daily_loads: &[f64]) -> Option<f64> {
    let n = daily_loads.len() as f64;
    let mean = daily_loads.iter().sum::<f64>() / n;
    let sd = (daily_loads.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    (sd > 0.0).then(|| mean / sd)
}

/// `monotony_high` (§5.3): 7-day monotony above 2.0 (the strain condition applies to sRPE
/// loads, which Pacer does not have).
pub fn monotony_flag(monotony: Option<f64>) -> Option<Flag> {
    monotony.filter(|m| *m > 2.0).map(|m| {
        Flag::new(
            "monotony_high",
            "info",
            format!("7-day training monotony {m:.2} (above 2.0: little variation between days)"),
        )
    })
}

/// Seconds as `H:MM:SS`, so a run a few seconds over the cap does not print as "150 min".
fn hms(secs: f64) -> String {
    let t = secs.max(0.0).round() as i64;
    format!("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
}

/// Daniels' time cap on a single run from 64 km a week (§1.6), in seconds: 150 min.
const LONG_RUN_MAX_SECS: f64 = 150.0 * 60.0;

/// `long_run_overreach` (§5.3, Daniels' cap, §1.6): over the last 7 days, a single run above
/// 30 % of their run distance below 64 km; from 64 km, a single run above 25 % of it **or**
/// longer than 150 min (moving time). `longest_km` is the longest run by distance and
/// `longest_secs` the longest by moving time; they may be different runs, and either arm alone
/// flags. Below 64 km the time arm does not apply (Daniels caps that range by share only).
pub fn long_run_flag(longest_km: f64, longest_secs: f64, week_km: f64) -> Option<Flag> {
    if week_km <= 0.0 {
        return None;
    }
    let high_volume = week_km >= 64.0;
    let cap = if high_volume { 0.25 } else { 0.30 };
    let mut reasons = Vec::new();
    if longest_km > cap * week_km {
        reasons.push(format!(
            "a {longest_km:.1} km run is {:.0} % of the last 7 days' {week_km:.1} km (cap {:.0} %)",
            longest_km / week_km * 100.0,
            cap * 100.0
        ));
    }
    if high_volume && longest_secs > LONG_RUN_MAX_SECS {
        reasons.push(format!(
            "a {} run (moving time) in the last 7 days' {week_km:.1} km (cap 2:30:00 from 64 km)",
            hms(longest_secs)
        ));
    }
    (!reasons.is_empty()).then(|| Flag::new("long_run_overreach", "info", reasons.join("; ")))
}

/// What the athlete planned and did over the 7 days before today (a session planned for today
/// may still be run today, so today is not judged).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Adherence {
    /// sessions planned on those days (plans not cancelled)
    pub planned: usize,
    /// of those, sessions on a day with no run
    pub missed: usize,
    /// Σ planned duration, seconds
    pub planned_secs: f64,
    /// Σ over the planned days of min(run moving time, planned duration), seconds
    pub done_secs: f64,
    /// activities of any sport on those days and today
    pub activities: u32,
}

impl Adherence {
    /// Weekly compliance (§5.3, TrainingPeaks): Σ min(completed, planned) / Σ planned.
    pub fn compliance(&self) -> Option<f64> {
        (self.planned_secs > 0.0).then(|| self.done_secs / self.planned_secs)
    }
}

/// `no_data` (§5.3): no activity at all in 7 days (and today) while at least 3 sessions were
/// planned; else `missed_sessions`: weekly compliance under 70 % or at least 2 sessions missed.
/// `no_data` says more (nothing was recorded, a device may not be syncing), so it is raised
/// instead of `missed_sessions`, not beside it.
pub fn adherence_flag(a: &Adherence) -> Option<Flag> {
    if a.planned == 0 {
        return None;
    }
    if a.activities == 0 && a.planned >= 3 {
        return Some(Flag::new(
            "no_data",
            "warning",
            format!(
                "no activity recorded in the 7 days before today, with {} sessions planned",
                a.planned
            ),
        ));
    }
    let compliance = a.compliance().unwrap_or(1.0);
    (compliance < 0.70 || a.missed >= 2).then(|| {
        Flag::new(
            "missed_sessions",
            "warning",
            format!(
                "{} of {} planned sessions missed in the 7 days before today; weekly compliance {:.0} % (planned {}, run {})",
                a.missed,
                a.planned,
                compliance * 100.0,
                hms(a.planned_secs),
                hms(a.done_secs)
            ),
        )
    })
}

/// Recovery score (§5.4, a placeholder convention): `clamp(50 + 15·(0.7·z_hrv + 0.3·z_rhr))`
/// against 60-day baselines (ln rMSSD for HRV). `None` without enough baseline values.
pub fn recovery_score(
    today_ln_rmssd: f64,
    today_rhr: f64,
    baseline_ln: &[f64],
    baseline_rhr: &[f64],
) -> Option<f64> {
    if baseline_ln.len() < 30 || baseline_rhr.len() < 30 {
        return None;
    }
    let sd_h = sample_sd(baseline_ln).filter(|s| *s > 0.0)?;
    let sd_r = sample_sd(baseline_rhr).filter(|s| *s > 0.0)?;
    let z_hrv = (today_ln_rmssd - mean(baseline_ln)?) / sd_h;
    let z_rhr = (mean(baseline_rhr)? - today_rhr) / sd_r;
    Some((50.0 + 15.0 * (0.7 * z_hrv + 0.3 * z_rhr)).clamp(0.0, 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l34_hrv_low() {
        let base: Vec<f64> = [4.10, 4.05, 4.20, 4.15, 4.00, 4.12, 4.08, 4.18, 4.02, 4.11].repeat(6);
        let recent = [3.95, 3.90, 4.00, 3.85, 3.92, 3.98, 3.88];
        assert!((mean(&base).unwrap() - 4.1010).abs() < 1e-4);
        assert!((sample_sd(&base).unwrap() - 0.0627).abs() < 1e-4);
        let z = hrv_z(&base, &recent).unwrap();
        assert!((z - -2.794).abs() < 0.001, "{z}");
        assert_eq!(hrv_flag(Some(z)).unwrap().code, "hrv_low");
        assert_eq!(hrv_flag(Some(-0.7)).unwrap().code, "hrv_below_swc");
        assert_eq!(
            hrv_z(&base[..29], &recent),
            None,
            "needs 30 baseline values"
        );
    }

    #[test]
    fn l35_rhr_elevated_boundary_is_inclusive() {
        let base: Vec<f64> = [48.0, 49.0, 47.0, 48.0, 50.0, 48.0, 49.0].repeat(4);
        let recent = [53.0, 54.0, 52.0, 55.0, 53.0, 54.0, 53.0];
        assert!((mean(&base).unwrap() - 48.43).abs() < 0.01);
        assert_eq!(rhr_flag(&base, &recent).unwrap().code, "rhr_elevated");
        assert!(rhr_flag(&base, &[50.0; 7]).is_none());
    }

    #[test]
    fn l36_volume_spike() {
        let f = volume_spike(45.0, [32.0, 0.0, 0.0, 0.0]).unwrap();
        assert!(f.message.contains("40.6 % over last week"), "{}", f.message);
        assert!(volume_spike(41.0, [32.0, 0.0, 0.0, 0.0]).is_none());
        assert!(
            volume_spike(20.0, [9.0; 4]).is_none(),
            "last week under 10 km"
        );
    }

    #[test]
    fn volume_spike_after_a_cutback_week_compares_with_the_4_week_mean() {
        // 40/40/40 then a 25 % cutback to 30: back to 40 is 37.5 × 1.07, not 30 × 1.33
        assert!(volume_spike(40.0, [30.0, 40.0, 40.0, 40.0]).is_none());
        let f = volume_spike(48.75, [30.0, 40.0, 40.0, 40.0]).unwrap();
        assert!(
            f.message.contains("30.0 % over the 4-week mean"),
            "{}",
            f.message
        );
        // a 10 % dip is no cutback: last week stays the reference
        assert!(volume_spike(47.0, [36.0, 40.0, 40.0, 40.0]).is_some());
        assert!(volume_spike(46.0, [36.0, 40.0, 40.0, 40.0]).is_none());
    }

    #[test]
    fn l7_monotony_uses_the_population_sd() {
        let m = monotony(&[720.0, 0.0, 300.0, 450.0, 0.0, 600.0, 400.0]).unwrap();
        assert!((m - 1.3775).abs() < 1e-4, "{m}");
        assert!(monotony(&[50.0; 7]).is_none(), "SD 0");
        assert!(monotony_flag(Some(m)).is_none());
        let steady = monotony(&[60.0, 55.0, 60.0, 65.0, 60.0, 55.0, 60.0]);
        assert_eq!(monotony_flag(steady).unwrap().code, "monotony_high");
    }

    #[test]
    fn long_run_cap_is_30_percent_below_64_km_and_25_from_it() {
        assert!(long_run_flag(12.0, 3600.0, 40.0).is_none(), "exactly 30 %");
        assert_eq!(
            long_run_flag(12.5, 3600.0, 40.0).unwrap().code,
            "long_run_overreach"
        );
        assert!(long_run_flag(16.0, 3600.0, 64.0).is_none(), "exactly 25 %");
        assert!(long_run_flag(16.5, 3600.0, 64.0).is_some());
        assert!(long_run_flag(0.0, 0.0, 0.0).is_none());
    }

    #[test]
    fn long_run_time_arm_is_strictly_over_150_min_and_only_from_64_km() {
        // 14 km of 70 km is 20 %: only the time arm can flag
        assert!(
            long_run_flag(14.0, 9000.0, 70.0).is_none(),
            "exactly 150 min is not over"
        );
        let f = long_run_flag(14.0, 9001.0, 70.0).unwrap();
        assert_eq!((f.code, f.severity), ("long_run_overreach", "info"));
        assert!(f.message.contains("2:30:01"), "{}", f.message);
        assert!(
            !f.message.contains('%'),
            "the share arm did not fire: {}",
            f.message
        );
        assert!(
            long_run_flag(14.0, 9060.0, 64.0).is_some(),
            "64 km is already the high-volume range"
        );
        assert!(
            long_run_flag(14.0, 10800.0, 63.9).is_none(),
            "below 64 km only the 30 % share counts"
        );
        // both arms: one flag naming both
        let f = long_run_flag(20.0, 9600.0, 70.0).unwrap();
        assert!(
            f.message.contains("29 %") && f.message.contains("2:40:00"),
            "{}",
            f.message
        );
    }

    fn day(i: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 4, 17).unwrap() + Duration::days(i)
    }

    #[test]
    fn hrv_acute_drop_needs_two_consecutive_calendar_days_below_mean_minus_2_sd() {
        // mean 4.1, SD 0.1017: the bound is 3.897
        let base: Vec<f64> = [4.0, 4.2].repeat(15);
        let f = hrv_acute_drop(&base, &[(day(0), 4.1), (day(1), 3.8), (day(2), 3.75)]).unwrap();
        assert_eq!((f.code, f.severity), ("hrv_acute_drop", "warning"));
        assert!(
            f.message
                .contains("2 consecutive days (2025-04-18 to 2025-04-19)")
                && f.message.contains("down to 3.4 SD below"),
            "{}",
            f.message
        );
        // any order; a run of three days is one flag
        let f = hrv_acute_drop(&base, &[(day(3), 3.8), (day(1), 3.8), (day(2), 3.8)]).unwrap();
        assert!(f.message.contains("3 consecutive days"), "{}", f.message);
        assert!(
            hrv_acute_drop(&base, &[(day(1), 3.8), (day(2), 4.1)]).is_none(),
            "one day below is not a drop"
        );
        assert!(
            hrv_acute_drop(&base, &[(day(1), 3.8), (day(2), 4.1), (day(3), 3.8)]).is_none(),
            "two low days with a normal one between"
        );
        assert!(
            hrv_acute_drop(&base, &[(day(1), 3.8), (day(3), 3.8)]).is_none(),
            "two low measurements with an unmeasured day between are not consecutive days"
        );
        let bound = mean(&base).unwrap() - 2.0 * sample_sd(&base).unwrap();
        assert!(
            hrv_acute_drop(&base, &[(day(1), bound), (day(2), bound)]).is_none(),
            "at the bound is not below it"
        );
        assert!(
            hrv_acute_drop(&base[..29], &[(day(1), 3.0), (day(2), 3.0)]).is_none(),
            "needs 30 baseline values"
        );
        // two separate drops: the latest is reported
        let f = hrv_acute_drop(
            &base,
            &[
                (day(0), 3.8),
                (day(1), 3.8),
                (day(2), 4.1),
                (day(4), 3.8),
                (day(5), 3.8),
            ],
        )
        .unwrap();
        assert!(
            f.message.contains("2025-04-21 to 2025-04-22"),
            "{}",
            f.message
        );
    }

    #[test]
    fn adherence_compliance_under_70_percent_or_two_missed_sessions() {
        let a = |planned, missed, planned_secs, done_secs, activities| Adherence {
            planned,
            missed,
            planned_secs,
            done_secs,
            activities,
        };
        // L37: 45 of 60 planned minutes is 0.75, over the 0.70 bound, and nothing missed
        assert_eq!(a(1, 0, 3600.0, 2700.0, 1).compliance(), Some(0.75));
        assert!(adherence_flag(&a(1, 0, 3600.0, 2700.0, 1)).is_none());
        let f = adherence_flag(&a(3, 1, 3.0 * 3600.0, 7000.0, 2)).unwrap();
        assert_eq!((f.code, f.severity), ("missed_sessions", "warning"));
        assert!(
            f.message.contains("1 of 3") && f.message.contains("65 %"),
            "{}",
            f.message
        );
        // two missed sessions flag even when the runs done made up the time
        assert!(adherence_flag(&a(4, 2, 4.0 * 1800.0, 4.0 * 1800.0, 2)).is_some());
        // exactly 70 % is not under it
        assert!(adherence_flag(&a(2, 1, 2.0 * 3600.0, 0.7 * 2.0 * 3600.0, 1)).is_none());
        // nothing planned: nothing to miss
        assert!(adherence_flag(&a(0, 0, 0.0, 0.0, 0)).is_none());
    }

    #[test]
    fn no_data_needs_three_planned_sessions_and_no_activity_at_all() {
        let none = Adherence {
            planned: 3,
            missed: 3,
            planned_secs: 3.0 * 3600.0,
            ..Adherence::default()
        };
        assert_eq!(adherence_flag(&none).unwrap().code, "no_data");
        // two planned and nothing done: missed, not no_data
        let two = Adherence {
            planned: 2,
            missed: 2,
            planned_secs: 7200.0,
            ..Adherence::default()
        };
        assert_eq!(adherence_flag(&two).unwrap().code, "missed_sessions");
        // a bike ride is an activity: the sessions were missed, but there is data
        let ride = Adherence {
            activities: 1,
            ..none
        };
        assert_eq!(adherence_flag(&ride).unwrap().code, "missed_sessions");
    }

    #[test]
    fn load_signals_thresholds() {
        assert_eq!(acwr_flag(Some(1.6)).unwrap().severity, "warning");
        assert_eq!(acwr_flag(Some(1.4)).unwrap().severity, "info");
        assert!(acwr_flag(Some(1.2)).is_none() && acwr_flag(None).is_none());
        assert!(ctl_ramp_flag(20.0, 12.0).is_some() && ctl_ramp_flag(20.0, 13.0).is_none());
        assert!(tsb_flag(-30.5).is_some() && tsb_flag(-30.0).is_none());
        assert!(intensity_flag([600.0, 50.0, 100.0, 100.0, 50.0]).is_some());
        assert!(intensity_flag([800.0, 0.0, 100.0, 100.0, 0.0]).is_none());
    }

    #[test]
    fn recovery_score_is_neutral_at_baseline_and_moves_15_per_sd() {
        let base_h: Vec<f64> = [4.0, 4.2].repeat(15);
        let base_r: Vec<f64> = [48.0, 52.0].repeat(15);
        let s = recovery_score(4.1, 50.0, &base_h, &base_r).unwrap();
        assert!((s - 50.0).abs() < 1e-9);
        let sd = sample_sd(&base_h).unwrap();
        let s = recovery_score(4.1 + sd, 50.0, &base_h, &base_r).unwrap();
        assert!((s - 60.5).abs() < 1e-9, "{s}");
        assert_eq!(recovery_score(4.1, 50.0, &base_h[..10], &base_r), None);
    }
}
