//! The progress report: runs per local calendar day (in the user's time zone) over a window.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::{GapInfo, Tz};
use serde::Serialize;

use super::ratio;

/// Longest window a report may cover, in days.
pub const MAX_WINDOW_DAYS: i64 = 366;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesPoint {
    /// `Mar 27`
    pub label: String,
    /// `2026-03-27`
    pub date: NaiveDate,
    pub completed_runs: i64,
    pub total_runs: i64,
    pub completion_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub adherence: f64,
    pub total_runs: i64,
    pub completed_runs: i64,
    pub completion_rate: f64,
    /// Runs the active plan asked for in the window (`frequency` per 7 days), when there is one.
    pub expected_runs: Option<i64>,
    pub series: Vec<SeriesPoint>,
}

/// The UTC instants bounding the local days `from..=to` in `tz` (`[start, end)`).
pub fn window_bounds(tz: Tz, from: NaiveDate, to: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        start_of_day(tz, from),
        start_of_day(tz, to + Duration::days(1)),
    )
}

/// The first instant of the local day `d` in `tz`: local midnight (the earlier one when it is
/// ambiguous) or, when midnight falls in a DST gap (e.g. America/Santiago in September, where
/// clocks jump from 00:00 to 01:00), the first valid instant after the gap.
fn start_of_day(tz: Tz, d: NaiveDate) -> DateTime<Utc> {
    let midnight = d.and_time(NaiveTime::MIN);
    match midnight.and_local_timezone(tz).earliest() {
        Some(t) => t.with_timezone(&Utc),
        None => GapInfo::new(&midnight, &tz)
            .and_then(|gap| gap.end)
            .map(|t| t.with_timezone(&Utc))
            // the gap's end is past the tz data's last transition (not reachable with real zones)
            .unwrap_or_else(|| midnight.and_utc()),
    }
}

/// Builds the report from runs `(created_at, completed)` inside the window.
///
/// `adherence` = completed runs / expected runs (capped at 1) when the active plan gives an
/// expectation, else the completion rate.
pub fn report(
    runs: &[(DateTime<Utc>, bool)],
    tz: Tz,
    from: NaiveDate,
    to: NaiveDate,
    plan_frequency: Option<i64>,
) -> Report {
    let days = (to - from).num_days() + 1;
    let mut series: Vec<SeriesPoint> = (0..days.max(0))
        .map(|i| {
            let date = from + Duration::days(i);
            SeriesPoint {
                label: date.format("%b %-d").to_string(),
                date,
                completed_runs: 0,
                total_runs: 0,
                completion_rate: 0.0,
            }
        })
        .collect();
    for (at, completed) in runs {
        let day = at.with_timezone(&tz).date_naive();
        let Ok(i) = usize::try_from((day - from).num_days()) else {
            continue;
        };
        if let Some(p) = series.get_mut(i) {
            p.total_runs += 1;
            p.completed_runs += i64::from(*completed);
        }
    }
    for p in &mut series {
        p.completion_rate = ratio(p.completed_runs, p.total_runs);
    }
    let total_runs: i64 = series.iter().map(|p| p.total_runs).sum();
    let completed_runs: i64 = series.iter().map(|p| p.completed_runs).sum();
    let completion_rate = ratio(completed_runs, total_runs);
    let expected_runs = plan_frequency
        .filter(|f| *f > 0)
        .map(|f| ((f * days) as f64 / 7.0).ceil().max(1.0) as i64);
    let adherence = match expected_runs {
        Some(expected) => ratio(completed_runs.min(expected), expected),
        None => completion_rate,
    };
    Report {
        adherence,
        total_runs,
        completed_runs,
        completion_rate,
        expected_runs,
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn runs_land_on_the_local_day() {
        let tz: Tz = "Asia/Taipei".parse().unwrap();
        let from = NaiveDate::from_ymd_opt(2026, 3, 26).unwrap();
        let to = NaiveDate::from_ymd_opt(2026, 3, 27).unwrap();
        // 20:00 UTC on the 26th is already the 27th in Taipei (UTC+8)
        let runs = [
            (utc("2026-03-26T20:00:00Z"), true),
            (utc("2026-03-27T03:00:00Z"), false),
            (utc("2026-03-25T17:00:00Z"), true),
        ];
        let r = report(&runs, tz, from, to, None);
        assert_eq!(r.series.len(), 2);
        assert_eq!(r.series[1].label, "Mar 27");
        assert_eq!((r.series[1].completed_runs, r.series[1].total_runs), (1, 2));
        assert_eq!(r.series[1].completion_rate, 0.5);
        assert_eq!(
            (r.series[0].label.as_str(), r.series[0].total_runs),
            ("Mar 26", 1)
        );
        assert_eq!(
            (r.total_runs, r.completed_runs, r.completion_rate),
            (3, 2, 0.67)
        );
        assert_eq!(r.adherence, 0.67);
        let (start, end) = window_bounds(tz, from, to);
        assert_eq!(start, utc("2026-03-25T16:00:00Z"));
        assert_eq!(end, utc("2026-03-27T16:00:00Z"));
    }

    #[test]
    fn a_day_starting_in_a_dst_gap_starts_after_the_gap() {
        // Chile moves its clocks from 00:00 to 01:00 (UTC-4 → UTC-3) on the first Sunday of
        // September: 2026-09-06 has no local midnight, its first instant is 01:00 -03.
        let tz: Tz = "America/Santiago".parse().unwrap();
        let gap_day = NaiveDate::from_ymd_opt(2026, 9, 6).unwrap();
        let midnight = gap_day.and_time(NaiveTime::MIN);
        assert!(
            midnight.and_local_timezone(tz).earliest().is_none(),
            "2026-09-06 00:00 should not exist in {tz}"
        );
        let one_am = gap_day.and_hms_opt(1, 0, 0).unwrap();
        let after_gap = one_am.and_local_timezone(tz).single().unwrap();
        assert_eq!(after_gap.with_timezone(&Utc), utc("2026-09-06T04:00:00Z"));

        // the day before the gap ends where the gap day starts, not at UTC midnight (20:00 local)
        let eve = gap_day - Duration::days(1);
        let (start, end) = window_bounds(tz, eve, eve);
        assert_eq!(start, utc("2026-09-05T04:00:00Z"));
        assert_eq!(end, utc("2026-09-06T04:00:00Z"));
        // a run at 22:00 local on the eve is inside the eve's window, not the gap day's
        let run = utc("2026-09-06T02:00:00Z");
        assert!(start <= run && run < end);
        let (gap_start, gap_end) = window_bounds(tz, gap_day, gap_day);
        assert_eq!(gap_start, utc("2026-09-06T04:00:00Z"));
        assert_eq!(gap_end, utc("2026-09-07T03:00:00Z"));
        assert!(run < gap_start);
    }

    #[test]
    fn adherence_uses_the_plan_frequency() {
        let from = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let to = NaiveDate::from_ymd_opt(2026, 3, 7).unwrap();
        let runs = [(utc("2026-03-02T10:00:00Z"), true)];
        let r = report(&runs, Tz::UTC, from, to, Some(3));
        assert_eq!(r.expected_runs, Some(3));
        assert_eq!(r.adherence, 0.33);
        assert_eq!(r.completion_rate, 1.0);
        assert_eq!(r.series[4].label, "Mar 5");
    }
}
