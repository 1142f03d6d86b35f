//! Reading the coach's free-text `additional_prompt`.

use chrono::Weekday;
use serde::{Deserialize, Serialize};

use crate::text::{Tok, number_word, tokenize, weekday_from_word, word};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RaceDistance {
    FiveK,
    TenK,
    HalfMarathon,
    Marathon,
}

impl RaceDistance {
    pub fn meters(self) -> u32 {
        match self {
            RaceDistance::FiveK => 5000,
            RaceDistance::TenK => 10_000,
            RaceDistance::HalfMarathon => 21_098,
            RaceDistance::Marathon => 42_195,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RaceDistance::FiveK => "5K",
            RaceDistance::TenK => "10K",
            RaceDistance::HalfMarathon => "Half Marathon",
            RaceDistance::Marathon => "Marathon",
        }
    }
}

/// What was understood from `additional_prompt`; `None`/empty means "not said".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PromptHints {
    pub race: Option<RaceDistance>,
    pub days_per_week: Option<u32>,
    pub long_run_day: Option<Weekday>,
    pub excluded_days: Vec<Weekday>,
    /// "currently running 30 km per week" / "20 miles a week"; used as the start volume.
    pub current_weekly_km: Option<f64>,
    /// "no race", "not racing", "general fitness": plan without taper or race day.
    pub no_race: bool,
}

fn is_week_word(t: Option<&Tok>) -> bool {
    matches!(word(t), Some("week" | "weekly" | "wk" | "weeks"))
}

fn num_at(toks: &[Tok], i: usize) -> Option<f64> {
    match toks.get(i) {
        Some(Tok::Num(n)) => Some(*n),
        Some(Tok::Word(w)) => number_word(w).map(f64::from),
        _ => None,
    }
}

/// Understands race distance, runs per week, long-run day, days off and current volume.
pub fn read_prompt(text: &str) -> PromptHints {
    let toks = tokenize(text);
    let mut hints = PromptHints::default();
    let lower = text.to_lowercase();
    hints.no_race = [
        "no race",
        "not racing",
        "no target race",
        "general fitness",
        "no specific race",
    ]
    .iter()
    .any(|p| lower.contains(p));

    for i in 0..toks.len() {
        let w = word(toks.get(i));
        // Race distance: first mention wins.
        if hints.race.is_none() {
            hints.race = race_at(&toks, i);
        }
        // Days per week: "4 days per week", "three runs a week", "5x/week".
        if hints.days_per_week.is_none()
            && let Some(n) = num_at(&toks, i)
        {
            let mut j = i + 1;
            if matches!(word(toks.get(j)), Some("running" | "training" | "run")) {
                j += 1;
            }
            let unit = word(toks.get(j));
            if matches!(
                unit,
                Some("days" | "day" | "runs" | "times" | "x" | "sessions")
            ) {
                let sessions_ok = unit != Some("sessions") || j > i + 1;
                let week_near = (j + 1..=j + 3).any(|k| is_week_word(toks.get(k)));
                if sessions_ok && week_near && (1.0..=7.0).contains(&n) && n.fract() == 0.0 {
                    hints.days_per_week = Some(n as u32);
                }
            }
        }
        // Current weekly volume: "30 km per week", "20 miles a week", "30 km/week".
        if hints.current_weekly_km.is_none()
            && let Some(Tok::Num(n)) = toks.get(i)
        {
            let unit = word(toks.get(i + 1));
            let factor = match unit {
                Some("km" | "k" | "kms" | "kilometers" | "kilometres") => Some(1.0),
                Some("mi" | "miles" | "mile") => Some(1.609344),
                Some("mpw") => Some(1.609344),
                _ => None,
            };
            let per_week =
                unit == Some("mpw") || (i + 2..=i + 3).any(|k| is_week_word(toks.get(k)));
            if let Some(f) = factor
                && per_week
                && *n > 0.0
            {
                hints.current_weekly_km = Some((n * f).clamp(3.0, 250.0));
            }
        }
        // Long-run day: "long run(s) on Sunday(s)" or "Saturday long run".
        if w == Some("long") && matches!(word(toks.get(i + 1)), Some("run" | "runs")) {
            let after = (i + 2..i + 6).find_map(|k| word(toks.get(k)).and_then(weekday_from_word));
            let before = (i.saturating_sub(2)..i)
                .rev()
                .find_map(|k| word(toks.get(k)).and_then(weekday_from_word));
            if let Some(d) = after.or(before) {
                hints.long_run_day = Some(d);
            }
        }
    }
    hints.excluded_days = excluded_days(&toks, hints.long_run_day);
    hints
}

fn race_at(toks: &[Tok], i: usize) -> Option<RaceDistance> {
    let w = word(toks.get(i));
    let next = word(toks.get(i + 1));
    match (toks.get(i), w) {
        (_, Some("half" | "halfmarathon" | "hm")) => {
            if w == Some("half") && !matches!(next, Some("marathon" | "marathons")) {
                // a lone "half" counts only when it plausibly names the race
                let prev = i.checked_sub(1).and_then(|k| word(toks.get(k)));
                if !matches!(
                    prev,
                    Some("a" | "the" | "my" | "for" | "run" | "target" | "targeting")
                ) {
                    return None;
                }
            }
            Some(RaceDistance::HalfMarathon)
        }
        (_, Some("marathon" | "marathons")) => Some(RaceDistance::Marathon),
        (_, Some("parkrun")) => Some(RaceDistance::FiveK),
        (Some(Tok::Num(n)), _) => {
            let unit = next;
            let km_unit = matches!(unit, Some("k" | "km" | "kms"));
            let per_week = (i + 2..=i + 3).any(|k| is_week_word(toks.get(k)));
            if !km_unit || per_week {
                // "13.1 miles", "26.2 mi"
                if matches!(unit, Some("mi" | "miles" | "mile")) {
                    if (*n - 13.1).abs() < 0.05 {
                        return Some(RaceDistance::HalfMarathon);
                    }
                    if (*n - 26.2).abs() < 0.05 {
                        return Some(RaceDistance::Marathon);
                    }
                }
                return None;
            }
            match *n {
                x if (x - 5.0).abs() < 1e-9 => Some(RaceDistance::FiveK),
                x if (x - 10.0).abs() < 1e-9 => Some(RaceDistance::TenK),
                x if (x - 21.1).abs() < 0.05 || (x - 21.0).abs() < 1e-9 => {
                    Some(RaceDistance::HalfMarathon)
                }
                x if (x - 42.2).abs() < 0.05 || (x - 42.0).abs() < 1e-9 => {
                    Some(RaceDistance::Marathon)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Weekdays named after a "no/can't/rest/off/busy..." cue in the same clause.
///
/// A clause ends at punctuation or "but"; "long run" cancels the cue so
/// "rest on Monday and long run on Sunday" excludes only Monday.
fn excluded_days(toks: &[Tok], long_run_day: Option<Weekday>) -> Vec<Weekday> {
    const CUES: &[&str] = &[
        "no",
        "not",
        "can't",
        "cant",
        "cannot",
        "unable",
        "won't",
        "rest",
        "off",
        "unavailable",
        "busy",
        "avoid",
        "never",
        "without",
        "except",
        "skip",
    ];
    let mut out: Vec<Weekday> = Vec::new();
    let mut neg = false;
    for t in toks {
        match t {
            Tok::Sym('.') => neg = false,
            Tok::Word(w) => {
                if w == "but" || w == "long" || w == "prefer" || w == "prefers" || w == "only" {
                    neg = false;
                } else if CUES.contains(&w.as_str()) {
                    // "rest days" as a plain noun still marks the following days as off
                    neg = true;
                } else if let Some(d) = weekday_from_word(w)
                    && neg
                    && Some(d) != long_run_day
                    && !out.contains(&d)
                {
                    out.push(d);
                }
            }
            _ => {}
        }
    }
    out.sort_by_key(|d| d.num_days_from_monday());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn race_distances() {
        assert_eq!(
            read_prompt("Targeting a half marathon in May").race,
            Some(RaceDistance::HalfMarathon)
        );
        assert_eq!(
            read_prompt("Half-Marathon goal").race,
            Some(RaceDistance::HalfMarathon)
        );
        assert_eq!(
            read_prompt("HM in spring").race,
            Some(RaceDistance::HalfMarathon)
        );
        assert_eq!(
            read_prompt("race is 21.1 km").race,
            Some(RaceDistance::HalfMarathon)
        );
        assert_eq!(
            read_prompt("run the half").race,
            Some(RaceDistance::HalfMarathon)
        );
        assert_eq!(
            read_prompt("sub-4 hour marathon").race,
            Some(RaceDistance::Marathon)
        );
        assert_eq!(
            read_prompt("Focus on 5K speed development").race,
            Some(RaceDistance::FiveK)
        );
        assert_eq!(read_prompt("a 10k race").race, Some(RaceDistance::TenK));
        assert_eq!(
            read_prompt("10 km race in June").race,
            Some(RaceDistance::TenK)
        );
        assert_eq!(read_prompt("runs 10 km per week").race, None);
        assert_eq!(read_prompt("half of the runs on trails").race, None);
        assert_eq!(read_prompt("").race, None);
    }

    #[test]
    fn days_per_week() {
        assert_eq!(
            read_prompt("Prefers running 4 days per week.").days_per_week,
            Some(4)
        );
        assert_eq!(read_prompt("run 5 days a week").days_per_week, Some(5));
        assert_eq!(read_prompt("three runs per week").days_per_week, Some(3));
        assert_eq!(
            read_prompt("6 running days each week").days_per_week,
            Some(6)
        );
        assert_eq!(
            read_prompt("Include two track sessions per week").days_per_week,
            None
        );
        assert_eq!(read_prompt("4x/week").days_per_week, Some(4));
    }

    #[test]
    fn long_run_and_days_off() {
        let h = read_prompt("Long runs on Saturdays, no running on Fridays.");
        assert_eq!(h.long_run_day, Some(Weekday::Sat));
        assert_eq!(h.excluded_days, vec![Weekday::Fri]);
        let h = read_prompt("long run on Sunday; can't run Tuesday");
        assert_eq!(h.long_run_day, Some(Weekday::Sun));
        assert_eq!(h.excluded_days, vec![Weekday::Tue]);
        let h = read_prompt("rest on Monday and long run on Sunday");
        assert_eq!(h.excluded_days, vec![Weekday::Mon]);
        assert_eq!(h.long_run_day, Some(Weekday::Sun));
        let h = read_prompt("Cannot run on Wednesdays or Fridays");
        assert_eq!(h.excluded_days, vec![Weekday::Wed, Weekday::Fri]);
        assert_eq!(
            read_prompt("Saturday long run").long_run_day,
            Some(Weekday::Sat)
        );
    }

    #[test]
    fn volume_and_no_race() {
        assert_eq!(
            read_prompt("currently running 30 km per week").current_weekly_km,
            Some(30.0)
        );
        let h = read_prompt("20 miles a week, general fitness");
        assert!(h.no_race);
        assert!((h.current_weekly_km.unwrap_or(0.0) - 32.19).abs() < 0.01);
    }
}
