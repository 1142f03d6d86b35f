//! The per-athlete metrics snapshot (what `recompute_stats` stores): weekly distance and pace,
//! load this week and its 4-week average, CTL/ATL/ACWR, fitness values now and 7 days ago,
//! and attention flags. Pure: the worker loads the rows and writes the result.

use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;

use super::load::{acwr_ewma, ctl_atl};
use super::signals::{self, Flag};
use super::{avg_pace, four_week_avg};

/// One local day of the athlete's rollups.
#[derive(Debug, Clone, Default)]
pub struct DayTotals {
    pub day: NaiveDate,
    /// activities of any sport
    pub activities: u32,
    pub run_distance: f64,
    pub run_moving_time: f64,
    /// moving time of the runs that have a distance (average pace's numerator)
    pub run_paced_time: f64,
    /// longest single run of the day, metres
    pub longest_run: f64,
    /// longest single run of the day by moving time, seconds (the 150-min arm of
    /// `long_run_overreach`); may be another run than the longest by distance
    pub longest_run_time: f64,
    pub load: f64,
    pub pace_zone_seconds: [f64; 5],
}

/// One local day of health metrics.
#[derive(Debug, Clone, Default)]
pub struct HealthDay {
    pub day: NaiveDate,
    pub resting_hr: Option<f64>,
    pub hrv_rmssd: Option<f64>,
    pub vo2_max: Option<f64>,
    pub recovery_score: Option<f64>,
}

/// One session of a plan not cancelled, on the athlete's local day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannedSession {
    pub day: NaiveDate,
    pub duration_s: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    pub weekly_distance_km: f64,
    pub avg_pace_s_per_km: Option<f64>,
    pub current_week_load: f64,
    pub four_week_avg_load: f64,
    pub ctl: f64,
    pub atl: f64,
    pub acwr: Option<f64>,
    pub vo2_max: Option<f64>,
    pub vo2_max_prev: Option<f64>,
    pub hrv_avg: Option<f64>,
    pub hrv_avg_prev: Option<f64>,
    pub recovery_score: Option<f64>,
    pub recovery_score_prev: Option<f64>,
    pub flags: Vec<Flag>,
}

/// Monday of the ISO week holding `d`.
pub fn week_start(d: NaiveDate) -> NaiveDate {
    d - Duration::days(i64::from(d.weekday().num_days_from_monday()))
}

/// Computes the snapshot for local date `today`. `days`, `health` and `planned` may come in
/// any order and may include days after `today` (ignored).
pub fn compute(
    today: NaiveDate,
    days: &[DayTotals],
    health: &[HealthDay],
    planned: &[PlannedSession],
) -> Snapshot {
    let days: Vec<&DayTotals> = days.iter().filter(|d| d.day <= today).collect();
    let monday = week_start(today);
    let sum_in = |from: NaiveDate, to: NaiveDate, f: &dyn Fn(&DayTotals) -> f64| -> f64 {
        days.iter()
            .filter(|d| d.day >= from && d.day <= to)
            .map(|d| f(d))
            .sum()
    };

    // §3.8: current ISO week so far; the 4 completed weeks before it
    let week_dist = sum_in(monday, today, &|d| d.run_distance);
    let week_paced = sum_in(monday, today, &|d| d.run_paced_time);
    let current_week_load = sum_in(monday, today, &|d| d.load);
    let completed: Vec<f64> = (1..=4)
        .rev()
        .map(|w| {
            let start = monday - Duration::weeks(w);
            sum_in(start, start + Duration::days(6), &|d| d.load)
        })
        .collect();
    // run km of the 4 completed weeks, last week first
    let last_weeks_km = [1, 2, 3, 4].map(|w| {
        let start = monday - Duration::weeks(w);
        sum_in(start, start + Duration::days(6), &|d| d.run_distance) / 1000.0
    });

    // daily load series from the first day with data to today (rest days = 0)
    let first = days.iter().map(|d| d.day).min();
    let series: Vec<f64> = match first {
        Some(first) => {
            let n = (today - first).num_days() + 1;
            let mut s = vec![0.0; usize::try_from(n).unwrap_or(0)];
            for d in &days {
                if let Ok(i) = usize::try_from((d.day - first).num_days()) {
                    s[i] += d.load;
                }
            }
            s
        }
        None => Vec::new(),
    };
    let pmc = ctl_atl(&series);
    let (ctl, atl) = pmc.last().copied().unwrap_or((0.0, 0.0));
    let (ctl_week_ago, _) = pmc
        .len()
        .checked_sub(8)
        .map(|i| pmc[i])
        .unwrap_or((0.0, 0.0));
    let tsb_pre = pmc
        .len()
        .checked_sub(2)
        .map(|i| pmc[i].0 - pmc[i].1)
        .unwrap_or(0.0);
    let acwr = acwr_ewma(&series);

    let mut zones14 = [0.0; 5];
    for d in days.iter().filter(|d| d.day > today - Duration::days(14)) {
        for (z, s) in zones14.iter_mut().zip(d.pace_zone_seconds) {
            *z += s;
        }
    }

    // fitness values now and 7 days ago
    let h = |from: NaiveDate, to: NaiveDate| -> Vec<&HealthDay> {
        health
            .iter()
            .filter(|x| x.day >= from && x.day <= to)
            .collect()
    };
    let latest = |until: NaiveDate, f: &dyn Fn(&HealthDay) -> Option<f64>| -> Option<f64> {
        health
            .iter()
            .filter(|x| x.day <= until && x.day > until - Duration::days(30))
            .filter_map(|x| f(x).map(|v| (x.day, v)))
            .max_by_key(|(d, _)| *d)
            .map(|(_, v)| v)
    };
    let mean_of = |xs: Vec<f64>| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
    let hrv_mean = |until: NaiveDate| {
        mean_of(
            h(until - Duration::days(6), until)
                .iter()
                .filter_map(|x| x.hrv_rmssd)
                .collect(),
        )
    };
    let week_ago = today - Duration::days(7);
    // the §5.4 score of a day with HRV and RHR, against the days 8–67 before it
    let computed = |day: &HealthDay| -> Option<f64> {
        let base = h(day.day - Duration::days(67), day.day - Duration::days(8));
        let ln: Vec<f64> = base
            .iter()
            .filter_map(|x| x.hrv_rmssd.filter(|v| *v > 0.0).map(f64::ln))
            .collect();
        let rhr: Vec<f64> = base.iter().filter_map(|x| x.resting_hr).collect();
        signals::recovery_score(day.hrv_rmssd?.max(1e-9).ln(), day.resting_hr?, &ln, &rhr)
    };
    let recovery = |until: NaiveDate| -> Option<f64> {
        // the latest day of the 7 with a score: the device's own, else the §5.4 one (a newer day
        // whose baseline is too short for a score does not hide an older day's)
        let mut week: Vec<&HealthDay> = health
            .iter()
            .filter(|x| x.day <= until && x.day > until - Duration::days(7))
            .collect();
        week.sort_by_key(|x| std::cmp::Reverse(x.day));
        week.into_iter()
            .find_map(|day| day.recovery_score.or_else(|| computed(day)))
    };

    // the last 7 days (rest days and days before the first activity count as 0)
    let last7: Vec<f64> = (0..7)
        .rev()
        .map(|i| series.len().checked_sub(1 + i).map_or(0.0, |j| series[j]))
        .collect();
    let week_ago_plus1 = today - Duration::days(6);
    let km7 = sum_in(week_ago_plus1, today, &|d| d.run_distance) / 1000.0;
    let longest7 = days
        .iter()
        .filter(|d| d.day >= week_ago_plus1)
        .map(|d| d.longest_run)
        .fold(0.0, f64::max)
        / 1000.0;
    let longest7_secs = days
        .iter()
        .filter(|d| d.day >= week_ago_plus1)
        .map(|d| d.longest_run_time)
        .fold(0.0, f64::max);

    let mut flags = Vec::new();
    flags.extend(signals::volume_spike(week_dist / 1000.0, last_weeks_km));
    flags.extend(signals::acwr_flag(acwr));
    flags.extend(signals::ctl_ramp_flag(ctl, ctl_week_ago));
    flags.extend(signals::tsb_flag(tsb_pre));
    flags.extend(signals::intensity_flag(zones14));
    flags.extend(signals::monotony_flag(signals::monotony(&last7)));
    flags.extend(signals::long_run_flag(longest7, longest7_secs, km7));
    let recent = h(today - Duration::days(6), today);
    let baseline = h(today - Duration::days(66), today - Duration::days(7));
    let ln = |xs: &[&HealthDay]| -> Vec<f64> {
        xs.iter()
            .filter_map(|x| x.hrv_rmssd.filter(|v| *v > 0.0).map(f64::ln))
            .collect()
    };
    let baseline_ln = ln(&baseline);
    flags.extend(signals::hrv_flag(signals::hrv_z(
        &baseline_ln,
        &ln(&recent),
    )));
    // daily values of the same 7 days against the same baseline: a sudden dip a weekly mean
    // can hide (and `hrv_low` may flag alongside it)
    let recent_days: Vec<(NaiveDate, f64)> = recent
        .iter()
        .filter_map(|x| x.hrv_rmssd.filter(|v| *v > 0.0).map(|v| (x.day, v.ln())))
        .collect();
    flags.extend(signals::hrv_acute_drop(&baseline_ln, &recent_days));
    let rhr_base: Vec<f64> = h(today - Duration::days(34), today - Duration::days(7))
        .iter()
        .filter_map(|x| x.resting_hr)
        .collect();
    let rhr_recent: Vec<f64> = recent.iter().filter_map(|x| x.resting_hr).collect();
    if rhr_base.len() >= 14 && rhr_recent.len() >= 3 {
        flags.extend(signals::rhr_flag(&rhr_base, &rhr_recent));
    }
    flags.extend(signals::adherence_flag(&adherence(today, &days, planned)));

    Snapshot {
        weekly_distance_km: week_dist / 1000.0,
        avg_pace_s_per_km: avg_pace(week_paced, week_dist),
        current_week_load,
        four_week_avg_load: four_week_avg(&completed),
        ctl,
        atl,
        acwr,
        vo2_max: latest(today, &|x| x.vo2_max),
        vo2_max_prev: latest(week_ago, &|x| x.vo2_max),
        hrv_avg: hrv_mean(today),
        hrv_avg_prev: hrv_mean(week_ago),
        recovery_score: recovery(today),
        recovery_score_prev: recovery(week_ago),
        flags,
    }
}

/// Planned sessions against runs over the 7 days before today, day by day: a day's run moving
/// time counts up to the day's planned duration, and the sessions of a day without a run are
/// missed.
fn adherence(
    today: NaiveDate,
    days: &[&DayTotals],
    planned: &[PlannedSession],
) -> signals::Adherence {
    let first = today - Duration::days(7);
    let mut by_day: std::collections::BTreeMap<NaiveDate, (usize, f64)> = Default::default();
    for p in planned.iter().filter(|p| p.day >= first && p.day < today) {
        let e = by_day.entry(p.day).or_default();
        e.0 += 1;
        e.1 += p.duration_s;
    }
    let mut a = signals::Adherence {
        activities: days
            .iter()
            .filter(|d| d.day >= first)
            .map(|d| d.activities)
            .sum(),
        ..Default::default()
    };
    for (day, (sessions, secs)) in by_day {
        let ran = days
            .iter()
            .filter(|d| d.day == day)
            .map(|d| d.run_moving_time)
            .sum::<f64>();
        a.planned += sessions;
        a.planned_secs += secs;
        a.done_secs += ran.min(secs);
        if ran <= 0.0 {
            a.missed += sessions;
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn run(day: &str, km: f64, secs: f64, load: f64) -> DayTotals {
        DayTotals {
            day: date(day),
            activities: 1,
            run_distance: km * 1000.0,
            run_moving_time: secs,
            run_paced_time: if km > 0.0 { secs } else { 0.0 },
            longest_run: km * 1000.0,
            longest_run_time: secs,
            load,
            pace_zone_seconds: [secs, 0.0, 0.0, 0.0, 0.0],
        }
    }

    #[test]
    fn weekly_figures_and_l26_four_week_average() {
        // today is Wednesday 2025-04-23; the current ISO week started Monday 04-21
        let today = date("2025-04-23");
        let days = [
            run("2025-03-24", 10.0, 3000.0, 300.0),
            run("2025-03-31", 10.0, 3000.0, 320.0),
            run("2025-04-07", 10.0, 3000.0, 350.0),
            run("2025-04-14", 10.0, 3000.0, 200.0),
            run("2025-04-20", 5.0, 1500.0, 60.0),
            run("2025-04-21", 10.0, 3000.0, 300.0),
            run("2025-04-23", 8.0, 2640.0, 80.0),
            run("2025-04-24", 50.0, 9000.0, 999.0),
        ];
        let s = compute(today, &days, &[], &[]);
        assert!((s.weekly_distance_km - 18.0).abs() < 1e-9);
        assert!((s.avg_pace_s_per_km.unwrap() - 5640.0 / 18.0).abs() < 1e-9);
        assert!(
            (s.current_week_load - 380.0).abs() < 1e-9,
            "future days ignored"
        );
        assert!((s.four_week_avg_load - 307.5).abs() < 1e-9);
        assert!(
            s.flags.iter().all(|f| f.code != "volume_spike"),
            "18 < 1.3 × 15"
        );
    }

    #[test]
    fn fitness_now_and_seven_days_ago() {
        let today = date("2025-04-23");
        let mut health = Vec::new();
        for i in 0..14 {
            let day = today - Duration::days(i);
            health.push(HealthDay {
                day,
                resting_hr: Some(50.0),
                hrv_rmssd: Some(if i < 7 { 60.0 } else { 50.0 }),
                vo2_max: (i == 2 || i == 10).then_some(if i == 2 { 52.0 } else { 50.0 }),
                recovery_score: (i == 0 || i == 7).then_some(if i == 0 { 80.0 } else { 70.0 }),
            });
        }
        let s = compute(today, &[], &health, &[]);
        assert_eq!(s.vo2_max, Some(52.0));
        assert_eq!(s.vo2_max_prev, Some(50.0));
        assert_eq!(s.hrv_avg, Some(60.0));
        assert_eq!(s.hrv_avg_prev, Some(50.0));
        assert_eq!(s.recovery_score, Some(80.0));
        assert_eq!(s.recovery_score_prev, Some(70.0));
    }

    #[test]
    fn a_newer_day_without_a_score_keeps_an_older_days_score() {
        let today = date("2025-04-23");
        let day = |d: &str, hrv: Option<f64>, rhr: Option<f64>, score: Option<f64>| HealthDay {
            day: date(d),
            resting_hr: rhr,
            hrv_rmssd: hrv,
            vo2_max: None,
            recovery_score: score,
        };
        // today has HRV and RHR but no baseline for a §5.4 score; two days ago the device scored
        let health = [
            day("2025-04-21", None, None, Some(78.0)),
            day("2025-04-23", Some(60.0), Some(50.0), None),
        ];
        let s = compute(today, &[], &health, &[]);
        assert_eq!(s.recovery_score, Some(78.0));
        // with 30 baseline days today's own §5.4 score is the latest
        let mut health = health.to_vec();
        for i in 8..=40 {
            let d = today - Duration::days(i);
            health.push(HealthDay {
                day: d,
                resting_hr: Some(50.0 + (i % 3) as f64),
                hrv_rmssd: Some(60.0 + (i % 5) as f64),
                vo2_max: None,
                recovery_score: None,
            });
        }
        let s = compute(today, &[], &health, &[]);
        let own = s.recovery_score.unwrap();
        assert_ne!(own, 78.0);
        assert!((0.0..=100.0).contains(&own));
    }

    #[test]
    fn l36_volume_spike_against_last_week() {
        let today = date("2025-04-23");
        let days = [
            run("2025-04-15", 32.0, 9600.0, 100.0),
            run("2025-04-22", 45.0, 13500.0, 100.0),
        ];
        let s = compute(today, &days, &[], &[]);
        assert!(
            s.flags.iter().any(|f| f.code == "volume_spike"),
            "{:?}",
            s.flags
        );
    }

    #[test]
    fn no_volume_spike_when_returning_from_a_cutback_week() {
        let today = date("2025-04-23");
        let days = [
            run("2025-03-25", 40.0, 12000.0, 100.0),
            run("2025-04-01", 40.0, 12000.0, 100.0),
            run("2025-04-08", 40.0, 12000.0, 100.0),
            run("2025-04-15", 30.0, 9000.0, 80.0),
            run("2025-04-22", 40.0, 12000.0, 100.0),
        ];
        let s = compute(today, &days, &[], &[]);
        assert!(
            s.flags.iter().all(|f| f.code != "volume_spike"),
            "{:?}",
            s.flags
        );
    }

    #[test]
    fn the_last_7_days_give_monotony_and_the_long_run_share() {
        let today = date("2025-04-23");
        // a run every day, loads 60–75: little variation, so monotony is high; the 10 km
        // longest is 17 % of the 58 km of the last 7 days
        let days = [
            run("2025-04-16", 8.0, 2400.0, 60.0),
            run("2025-04-17", 8.0, 2400.0, 60.0),
            run("2025-04-18", 8.0, 2400.0, 60.0),
            run("2025-04-19", 10.0, 3000.0, 75.0),
            run("2025-04-20", 8.0, 2400.0, 60.0),
            run("2025-04-21", 8.0, 2400.0, 60.0),
            run("2025-04-22", 8.0, 2400.0, 60.0),
            run("2025-04-23", 8.0, 2400.0, 60.0),
        ];
        let codes = |s: &Snapshot| s.flags.iter().map(|f| f.code).collect::<Vec<_>>();
        let s = compute(today, &days, &[], &[]);
        assert!(codes(&s).contains(&"monotony_high"), "{:?}", s.flags);
        assert!(!codes(&s).contains(&"long_run_overreach"), "{:?}", s.flags);
        // three runs in the week, the long one half of it
        let days = [
            run("2025-04-18", 5.0, 1500.0, 40.0),
            run("2025-04-20", 16.0, 5400.0, 120.0),
            run("2025-04-22", 5.0, 1500.0, 40.0),
        ];
        let s = compute(today, &days, &[], &[]);
        assert!(codes(&s).contains(&"long_run_overreach"), "{:?}", s.flags);
        assert!(!codes(&s).contains(&"monotony_high"), "{:?}", s.flags);
    }

    #[test]
    fn long_run_overreach_from_64_km_flags_a_run_over_150_minutes() {
        let today = date("2025-04-23");
        // 72 km in the last 7 days; the 16 km long run is 22 % of it, under the 25 % share cap
        let week = |long_secs: f64| {
            vec![
                run("2025-04-17", 14.0, 4200.0, 70.0),
                run("2025-04-18", 14.0, 4200.0, 70.0),
                run("2025-04-20", 16.0, long_secs, 90.0),
                run("2025-04-21", 14.0, 4200.0, 70.0),
                run("2025-04-22", 14.0, 4200.0, 70.0),
            ]
        };
        let flag = |s: &Snapshot| {
            s.flags
                .iter()
                .find(|f| f.code == "long_run_overreach")
                .cloned()
        };
        let s = compute(today, &week(9000.0), &[], &[]);
        assert_eq!(flag(&s), None, "exactly 150 min is not over");
        let s = compute(today, &week(9300.0), &[], &[]);
        let f = flag(&s).unwrap_or_else(|| panic!("{:?}", s.flags));
        assert!(f.message.contains("2:35:00"), "{}", f.message);
        // the longest by time need not be the longest by distance: a slow 12 km trail run
        let mut days = week(5000.0);
        days.push(DayTotals {
            day: date("2025-04-19"),
            activities: 1,
            run_distance: 12000.0,
            run_moving_time: 9300.0,
            run_paced_time: 9300.0,
            longest_run: 12000.0,
            longest_run_time: 9300.0,
            ..DayTotals::default()
        });
        assert!(flag(&compute(today, &days, &[], &[])).is_some());
        // a long run 8 days back is out of the window
        let mut days = week(5000.0);
        days.push(run("2025-04-15", 16.0, 9300.0, 90.0));
        assert_eq!(flag(&compute(today, &days, &[], &[])), None);
    }

    /// 60 baseline days (ln rMSSD alternating 4.0 / 4.2: mean 4.1, SD 0.10, bound 3.90) then
    /// the last 7 days at 4.1 except `low` (ln 3.7) and `missing` (no HRV).
    fn hrv_days(today: NaiveDate, low: &[i64], missing: &[i64]) -> Vec<HealthDay> {
        (0..67)
            .filter(|i| !missing.contains(i))
            .map(|i| {
                let ln = if low.contains(&i) {
                    3.7
                } else if i < 7 {
                    4.1
                } else if i % 2 == 0 {
                    4.0
                } else {
                    4.2
                };
                HealthDay {
                    day: today - Duration::days(i),
                    hrv_rmssd: Some(f64::exp(ln)),
                    ..HealthDay::default()
                }
            })
            .collect()
    }

    #[test]
    fn hrv_acute_drop_counts_two_consecutive_low_days_of_the_last_7() {
        let today = date("2025-04-23");
        let codes = |health: &[HealthDay]| {
            compute(today, &[], health, &[])
                .flags
                .iter()
                .map(|f| f.code)
                .collect::<Vec<_>>()
        };
        // two consecutive low days: the drop, and the week's mean is low too (z −1.1)
        let c = codes(&hrv_days(today, &[2, 3], &[]));
        assert!(
            c.contains(&"hrv_acute_drop") && c.contains(&"hrv_low"),
            "{c:?}"
        );
        let s = compute(today, &[], &hrv_days(today, &[2, 3], &[]), &[]);
        let f = s.flags.iter().find(|f| f.code == "hrv_acute_drop");
        assert!(
            f.is_some_and(|f| f.message.contains("2025-04-20 to 2025-04-21")),
            "{f:?}"
        );
        // one low day: no drop (the week's mean is only below the SWC)
        let c = codes(&hrv_days(today, &[3], &[]));
        assert!(!c.contains(&"hrv_acute_drop"), "{c:?}");
        // low two days apart with no reading between: not consecutive days
        let c = codes(&hrv_days(today, &[2, 4], &[3]));
        assert!(!c.contains(&"hrv_acute_drop"), "{c:?}");
        // the day before the window belongs to the baseline: it does not pair with day 6
        let c = codes(&hrv_days(today, &[6, 7], &[]));
        assert!(!c.contains(&"hrv_acute_drop"), "{c:?}");
    }

    #[test]
    fn planned_sessions_of_the_7_days_before_today_give_missed_sessions_and_no_data() {
        // today is Wednesday 2025-04-23; the window is 04-16 to 04-22
        let today = date("2025-04-23");
        let plan = |day: &str, mins: f64| PlannedSession {
            day: date(day),
            duration_s: mins * 60.0,
        };
        let planned = [
            plan("2025-04-15", 60.0), // before the window
            plan("2025-04-16", 40.0),
            plan("2025-04-18", 40.0),
            plan("2025-04-20", 90.0),
            plan("2025-04-23", 40.0), // today: may still be run
        ];
        let codes = |days: &[DayTotals]| {
            compute(today, days, &[], &planned)
                .flags
                .iter()
                .map(|f| (f.code, f.message.clone()))
                .collect::<Vec<_>>()
        };
        // all three run, one of them short: 40 + 40 + 60 of 170 min = 82 %
        let done = [
            run("2025-04-16", 8.0, 2400.0, 50.0),
            run("2025-04-18", 8.0, 2700.0, 50.0),
            run("2025-04-20", 12.0, 3600.0, 70.0),
        ];
        let c = codes(&done);
        assert!(
            c.iter()
                .all(|(code, _)| *code != "missed_sessions" && *code != "no_data"),
            "{c:?}"
        );
        // the long run skipped: 80 of 170 min = 47 %, one session missed
        let c = codes(&done[..2]);
        let missed = c.iter().find(|(code, _)| *code == "missed_sessions");
        assert!(
            missed.is_some_and(|(_, m)| m.starts_with("1 of 3") && m.contains("47 %")),
            "{c:?}"
        );
        // nothing at all recorded, three sessions planned
        let c = codes(&[]);
        assert!(c.iter().any(|(code, _)| *code == "no_data"), "{c:?}");
        assert!(
            c.iter().all(|(code, _)| *code != "missed_sessions"),
            "{c:?}"
        );
        // a ride (no run) on a planned day: data, but the sessions were missed
        let ride = DayTotals {
            day: date("2025-04-17"),
            activities: 1,
            ..DayTotals::default()
        };
        let c = codes(&[ride]);
        let missed = c.iter().find(|(code, _)| *code == "missed_sessions");
        assert!(
            missed.is_some_and(|(_, m)| m.starts_with("3 of 3")),
            "{c:?}"
        );
    }
}
