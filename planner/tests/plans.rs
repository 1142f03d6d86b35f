#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, Weekday};
use pacer_planner::*;

fn input(weeks: u32, level: Level, prompt: &str) -> PlanInput {
    PlanInput {
        weeks,
        level,
        start_date: NaiveDate::from_ymd_opt(2025, 5, 5), // a Monday
        training_principle: "Polarized training with 80/20 easy-hard split.".into(),
        additional_prompt: Some(prompt.into()),
        recent_race: None,
    }
}

fn plan_of(i: &PlanInput) -> Plan {
    let d = write_draft(i);
    build_plan(i, &d.text)
}

fn by_week(p: &Plan) -> BTreeMap<u32, Vec<&Workout>> {
    let mut m: BTreeMap<u32, Vec<&Workout>> = BTreeMap::new();
    for w in &p.workouts {
        m.entry(w.week).or_default().push(w);
    }
    m
}

/// Training volume of a week without the race itself.
fn training_m(ws: &[&Workout]) -> u32 {
    ws.iter()
        .filter(|w| w.workout_sub_type != "race")
        .map(|w| w.target_distance_in_meters)
        .sum()
}

const LEVELS: [Level; 3] = [Level::Beginner, Level::Intermediate, Level::Advanced];
const RACES: [(&str, &str); 4] = [
    ("5K", "5K race"),
    ("10K", "a 10K"),
    ("Half Marathon", "half marathon"),
    ("Marathon", "marathon"),
];
const LENGTHS: [u32; 9] = [1, 2, 3, 4, 6, 8, 12, 16, 18];

fn check_plan(i: &PlanInput, race_label: &str, days: u32, excluded: &[Weekday], long_day: Weekday) {
    let ctx = format!("{:?} {} weeks {race_label}", i.level, i.weeks);
    let p = plan_of(i);
    assert!(p.warnings.is_empty(), "{ctx}: {:?}", p.warnings);
    let weeks = by_week(&p);
    assert_eq!(
        weeks.len() as u32,
        i.weeks,
        "{ctx}: every week has workouts"
    );
    assert_eq!(p.weekly_info.len() as u32, i.weeks);
    let mut prev: Option<(u32, bool)> = None;
    let mut pre_cut: Option<u32> = None;
    let mut peak = 0;
    let mut cutbacks = 0;
    for (wk, ws) in &weeks {
        let info = &p.weekly_info[wk];
        // exactly one workout per training day, on allowed days, in order
        assert_eq!(ws.len() as u32, days, "{ctx} week {wk}: runs per week");
        let mut seen = Vec::new();
        for w in ws {
            assert!(!seen.contains(&w.day), "{ctx}: two workouts on {}", w.day);
            seen.push(w.day.clone());
            let wd: Weekday = w.day.parse().unwrap();
            assert!(!excluded.contains(&wd), "{ctx}: excluded day used");
            let sum: u32 = w.content_blocks.iter().map(|b| b.duration_seconds).sum();
            assert_eq!(sum, w.target_duration_in_seconds, "{ctx}: blocks sum");
            assert!(w.target_duration_in_seconds > 0 && w.target_distance_in_meters > 0);
            assert_eq!(w.phase, info.phase);
            // date is the weekday inside the plan week
            let date = NaiveDate::parse_from_str(w.date.as_deref().unwrap(), "%Y-%m-%d").unwrap();
            assert_eq!(date.weekday(), wd);
            let start = i.start_date.unwrap();
            assert_eq!((date - start).num_days() / 7 + 1, i64::from(*wk));
            if w.workout_sub_type == "long-run" {
                assert_eq!(wd, long_day, "{ctx}: long run day");
            }
        }
        let order: Vec<u32> = ws
            .iter()
            .map(|w| w.day.parse::<Weekday>().unwrap().num_days_from_monday())
            .collect();
        assert!(
            order.windows(2).all(|x| x[0] < x[1]),
            "{ctx}: weekday order"
        );
        // quality and long-run counts
        let q = ws.iter().filter(|w| is_quality(w)).count();
        assert!(q <= 2, "{ctx} week {wk}: {q} quality sessions");
        assert!(
            ws.iter()
                .filter(|w| w.workout_sub_type == "long-run")
                .count()
                <= 1
        );
        if i.level == Level::Beginner {
            assert!(q <= 1, "{ctx}: beginners get at most one quality session");
        }
        // 80/20 on running time (race excluded)
        let (hard, total): (u32, u32) = ws
            .iter()
            .filter(|w| w.workout_sub_type != "race")
            .fold((0, 0), |(h, t), w| {
                (h + hard_seconds(w), t + w.target_duration_in_seconds)
            });
        assert!(
            hard * 100 <= 20 * total,
            "{ctx} week {wk}: hard {hard} of {total}"
        );
        // long run cap (§1.6), marathon exception up to 40 %
        let vol = training_m(ws);
        for w in ws.iter().filter(|w| w.workout_sub_type == "long-run") {
            let share = f64::from(w.target_distance_in_meters) / f64::from(vol);
            let cap = if race_label == "Marathon" && vol < 64_000 {
                0.40
            } else if vol < 64_000 {
                0.30
            } else {
                0.25
            };
            assert!(
                share <= cap + 0.02 || w.target_distance_in_meters <= 3000,
                "{ctx} week {wk}: long share {share}"
            );
            assert!(w.target_duration_in_seconds <= 150 * 60 + 60);
        }
        // weekly total
        let total_m: u32 = ws.iter().map(|w| w.target_distance_in_meters).sum();
        assert!(
            (info.total_distance_km - (f64::from(total_m) / 100.0).round() / 10.0).abs() < 1e-9
        );
        // progression ≤ 10 % except returning to the pre-cut-back level; taper only falls
        let cut = info.focus == "recovery";
        if cut {
            cutbacks += 1;
            assert_ne!(info.phase, "taper");
        }
        if let Some((pv, pcut)) = prev {
            if cut {
                assert!(
                    vol * 100 <= pv * 80,
                    "{ctx} week {wk}: cut-back {vol} vs {pv}"
                );
                pre_cut = Some(pv);
            } else if pcut {
                assert!(
                    vol <= pre_cut.unwrap_or(pv) * 101 / 100,
                    "{ctx} week {wk}: after cut-back {vol}"
                );
            } else {
                assert!(
                    vol * 100 <= pv * 110,
                    "{ctx} week {wk}: growth {pv} -> {vol}"
                );
            }
        }
        if info.phase != "taper" {
            peak = peak.max(vol);
        }
        prev = Some((vol, cut));
    }
    if i.weeks >= 8 {
        assert!(cutbacks >= 1, "{ctx}: no cut-back week");
    }
    // taper: below the peak per the table, race last
    let fractions: &[f64] = match race_label {
        "5K" | "10K" => &[0.60],
        "Half Marathon" => &[0.75, 0.50],
        _ => &[0.78, 0.60, 0.40],
    };
    let tapers: Vec<u32> = p
        .weekly_info
        .iter()
        .filter(|(_, x)| x.phase == "taper")
        .map(|(k, _)| *k)
        .collect();
    if i.weeks >= 4 {
        for (k, wk) in tapers.iter().enumerate() {
            let f = fractions[fractions.len() - tapers.len() + k];
            let v = f64::from(training_m(&weeks[wk]));
            assert!(
                (v / f64::from(peak) - f).abs() <= 0.08,
                "{ctx} taper week {wk}: {v} of peak {peak}, want {f}"
            );
        }
    }
    let last = weeks.values().last().unwrap();
    let race = last.last().unwrap();
    assert_eq!(race.workout_sub_type, "race", "{ctx}: race ends the plan");
    assert!(
        race.workout_name.contains(race_label),
        "{ctx}: {}",
        race.workout_name
    );
}

#[test]
fn sound_plans_for_every_level_distance_and_length() {
    for level in LEVELS {
        for (label, prompt) in RACES {
            for weeks in LENGTHS {
                let days = match level {
                    Level::Beginner => 3,
                    Level::Intermediate => 4,
                    Level::Advanced => {
                        if label.contains("Marathon") {
                            6
                        } else {
                            5
                        }
                    }
                };
                check_plan(&input(weeks, level, prompt), label, days, &[], Weekday::Sun);
            }
        }
    }
}

#[test]
fn requested_days_exclusions_and_long_run_day() {
    for level in LEVELS {
        for (days, prompt, ex, long) in [
            (
                4,
                "half marathon, 4 days per week, no running on Fridays",
                vec![Weekday::Fri],
                Weekday::Sun,
            ),
            (
                5,
                "10K; run 5 days a week; long runs on Saturdays; can't run Tuesday",
                vec![Weekday::Tue],
                Weekday::Sat,
            ),
            (
                3,
                "three runs per week, rest on Monday, marathon",
                vec![Weekday::Mon],
                Weekday::Sun,
            ),
            (6, "6 days per week, 5k", vec![], Weekday::Sun),
        ] {
            for weeks in [3, 10, 16] {
                let label = match read_prompt(prompt).race {
                    Some(RaceDistance::FiveK) => "5K",
                    Some(RaceDistance::TenK) => "10K",
                    Some(RaceDistance::HalfMarathon) => "Half Marathon",
                    _ => "Marathon",
                };
                check_plan(&input(weeks, level, prompt), label, days, &ex, long);
            }
        }
    }
}

/// A race slower than the formula reaches (a 5 km walked in a day) is VDOT 20, as a slow race
/// is, not "no recent race".
#[test]
fn a_very_slow_recent_race_is_clamped_to_vdot_20_not_ignored() {
    let mut slow = input(4, Level::Beginner, "5k");
    slow.recent_race = Some(RaceResult {
        distance_m: 5_000.0,
        time_s: 3_000.0,
    });
    let mut walked = slow.clone();
    walked.recent_race = Some(RaceResult {
        distance_m: 5_000.0,
        time_s: 86_400.0,
    });
    let slow = write_draft(&slow).text;
    let walked = write_draft(&walked).text;
    assert!(slow.contains("VDOT 20.0"), "{slow}");
    assert!(walked.contains("VDOT 20.0"), "{walked}");
    assert!(!walked.contains("no recent race"), "{walked}");
}

#[test]
fn with_recent_race_paces_are_concrete() {
    let mut i = input(12, Level::Intermediate, "half marathon, 4 days per week");
    i.recent_race = Some(RaceResult {
        distance_m: 10_000.0,
        time_s: 45.0 * 60.0 + 16.0,
    });
    let d = write_draft(&i);
    assert!(d.text.contains("VDOT 45.0"), "{}", d.text);
    let p = build_plan(&i, &d.text);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    let mut quality = 0;
    for w in p.workouts.iter().filter(|w| {
        is_quality(w) && w.workout_sub_type != "hills" && w.workout_sub_type != "fartlek"
    }) {
        quality += 1;
        assert!(w.workout_name.contains("/km"), "{}", w.workout_name);
        let main = w
            .content_blocks
            .iter()
            .find(|b| b.block_type == "main")
            .unwrap();
        let tp = main.target_pace.as_ref().unwrap();
        assert!(tp.min_seconds_per_km < tp.max_seconds_per_km);
    }
    assert!(quality > 5);
    check_plan(&i, "Half Marathon", 4, &[], Weekday::Sun);
    // distance is consistent with the pace used
    for w in &p.workouts {
        for b in &w.content_blocks {
            if let (Some(tp), Some(m), None) = (&b.target_pace, b.distance_meters, b.repeat) {
                let pace = f64::from(b.duration_seconds) / f64::from(m) * 1000.0;
                assert!(
                    pace >= f64::from(tp.min_seconds_per_km) - 1.0
                        && pace <= f64::from(tp.max_seconds_per_km) + 1.0
                );
            }
        }
    }
}

#[test]
fn deterministic_and_round_trips() {
    let mut i = input(12, Level::Advanced, "marathon, long runs on Saturdays");
    i.start_date = NaiveDate::from_ymd_opt(2025, 5, 7); // a Wednesday
    let a = write_draft(&i);
    let b = write_draft(&i);
    assert_eq!(a, b);
    let pa = build_plan(&i, &a.text);
    let pb = build_plan(&i, &b.text);
    assert_eq!(pa, pb);
    assert_eq!(
        serde_json::to_string(&pa.workouts).unwrap(),
        serde_json::to_string(&pb.workouts).unwrap()
    );
    assert!(pa.warnings.is_empty(), "{:?}", pa.warnings);
    // Week 1 runs Wednesday..Tuesday: dates stay inside the 7-day window, in order.
    let start = i.start_date.unwrap();
    for w in &pa.workouts {
        let d = NaiveDate::parse_from_str(w.date.as_deref().unwrap(), "%Y-%m-%d").unwrap();
        let off = (d - start).num_days() - 7 * (i64::from(w.week) - 1);
        assert!((0..7).contains(&off), "{w:?}");
    }
    let dates: Vec<&str> = pa
        .workouts
        .iter()
        .map(|w| w.date.as_deref().unwrap())
        .collect();
    assert!(dates.windows(2).all(|x| x[0] < x[1]));
    // the race is the last workout, on the long-run day
    let last = pa.workouts.last().unwrap();
    assert_eq!(
        (last.workout_sub_type.as_str(), last.day.as_str()),
        ("race", "Saturday")
    );
    // without a start date there are no dates
    i.start_date = None;
    assert!(plan_of(&i).workouts.iter().all(|w| w.date.is_none()));
}

#[test]
fn edited_line_changes_the_workout() {
    let i = input(8, Level::Intermediate, "10K, 4 days per week");
    let d = write_draft(&i);
    let draft = "Week 1 (base, 30 km): Aerobic foundation\n- Monday: Rest\n- Tuesday: Easy run 45 min\n- Thursday: Tempo run 40 min\n- Saturday: Long run 12 km\n";
    let p = build_plan(&i, draft);
    let thu = p.workouts.iter().find(|w| w.day == "Thursday").unwrap();
    assert_eq!(thu.workout_sub_type, "tempo");
    let main = thu
        .content_blocks
        .iter()
        .find(|b| b.block_type == "main")
        .unwrap();
    assert_eq!(main.duration_seconds, 2400);
    let edited = draft.replace("Thursday: Tempo run 40 min", "Thursday: Intervals 6 x 800m");
    let p = build_plan(&i, &edited);
    let thu = p.workouts.iter().find(|w| w.day == "Thursday").unwrap();
    assert_eq!(thu.workout_sub_type, "intervals");
    let main = thu
        .content_blocks
        .iter()
        .find(|b| b.block_type == "main")
        .unwrap();
    assert_eq!(main.repeat, Some(6));
    assert!(main.distance_meters.unwrap() >= 4800);
    assert!(
        thu.workout_name.contains("6 × 800m"),
        "{}",
        thu.workout_name
    );
    // the other weeks are missing from this short draft: warned, no workouts
    assert!(p.warnings.iter().any(|w| w.starts_with("week 2:")));
    assert!(p.workouts.iter().all(|w| w.week == 1));
    assert_eq!(p.weekly_info.len(), 8);
    assert_eq!(p.weekly_info[&2].total_distance_km, 0.0);

    // Editing the generated draft: turn a rest day into a run and a run into rest.
    let lines: Vec<&str> = d.text.lines().collect();
    let w1 = lines.iter().position(|l| l.starts_with("Week 1 ")).unwrap();
    let mut changed: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    let mon = (w1..lines.len())
        .find(|k| lines[*k].starts_with("- Monday"))
        .unwrap();
    changed[mon] = "- Monday: Easy 8 km".into();
    let p0 = build_plan(&i, &d.text);
    let p1 = build_plan(&i, &changed.join("\n"));
    assert!(p1.warnings.is_empty(), "{:?}", p1.warnings);
    assert_eq!(p1.workouts.len(), p0.workouts.len() + 1);
    let m = p1
        .workouts
        .iter()
        .find(|w| w.week == 1 && w.day == "Monday")
        .unwrap();
    assert_eq!(
        (m.workout_sub_type.as_str(), m.target_distance_in_meters),
        ("easy-run", 8000)
    );
    assert!(p1.weekly_info[&1].total_distance_km > p0.weekly_info[&1].total_distance_km);
}

#[test]
fn parses_line_variants() {
    let i = input(4, Level::Intermediate, "");
    let draft = "\
**4-Week Plan**
Some intro prose that is not a warning.

## Week 1: Easy start
- **Monday:** Easy 8km @ conversational pace
* Tuesday: Intervals 6 x 800m @ 3:55/km
Wednesday - Tempo run 40 min
THURSDAY: tempo 5 km @ 4:20/km
Friday: Long run 1h30
Saturday: Hill repeats 8 x 60s
Sunday: Race — Half Marathon
Week 2 (peak, 40 km):
Monday: Recovery run 30 min
Tuesday: Fartlek 6 x 2 min
Wednesday: Cruise intervals 4 x 1600m
Thursday: Marathon pace 10 km
Friday: Easy run 40 min + 6 x 20s strides
Saturday: Repetitions 10 x 200m
Sunday: Cross-training 45 min
Week 3:
Monday: Rest
";
    let p = build_plan(&i, draft);
    let get = |w: u32, d: &str| {
        p.workouts
            .iter()
            .find(|x| x.week == w && x.day == d)
            .unwrap()
    };
    assert_eq!(get(1, "Monday").target_distance_in_meters, 8000);
    assert_eq!(get(1, "Tuesday").workout_sub_type, "intervals");
    let tue_main = get(1, "Tuesday")
        .content_blocks
        .iter()
        .find(|b| b.block_type == "main")
        .unwrap()
        .clone();
    assert_eq!(tue_main.target_pace.unwrap().per_km, "3:52-3:58");
    assert_eq!(get(1, "Wednesday").workout_sub_type, "tempo");
    let thu = get(1, "Thursday");
    assert!(
        thu.workout_name.contains("5 km @ 4:20/km"),
        "{}",
        thu.workout_name
    );
    let main = thu
        .content_blocks
        .iter()
        .find(|b| b.block_type == "main")
        .unwrap();
    assert_eq!(
        (main.duration_seconds, main.distance_meters),
        (1300, Some(5000))
    );
    assert_eq!(get(1, "Friday").target_duration_in_seconds, 5400);
    assert_eq!(get(1, "Friday").workout_sub_type, "long-run");
    assert_eq!(get(1, "Saturday").workout_sub_type, "hills");
    let race = get(1, "Sunday");
    assert_eq!(
        (race.workout_type.as_str(), race.workout_sub_type.as_str()),
        ("race", "race")
    );
    assert!(
        race.content_blocks
            .iter()
            .any(|b| b.distance_meters == Some(21_098))
    );
    assert_eq!(p.weekly_info[&1].focus, "Easy start");
    assert_eq!(p.weekly_info[&2].phase, "peak");
    assert_eq!(get(2, "Monday").workout_sub_type, "recovery-run");
    assert_eq!(get(2, "Tuesday").workout_sub_type, "fartlek");
    assert_eq!(get(2, "Wednesday").workout_sub_type, "cruise-intervals");
    assert_eq!(get(2, "Thursday").workout_sub_type, "marathon-pace");
    let fri = get(2, "Friday");
    assert_eq!(fri.content_blocks.len(), 2);
    assert_eq!(fri.content_blocks[1].repeat, Some(6));
    assert_eq!(get(2, "Saturday").workout_sub_type, "repetition");
    assert_eq!(get(2, "Sunday").workout_type, "cross-training");
    assert_eq!(p.workouts.iter().filter(|w| w.week == 3).count(), 0);
    // week 3 has a header, week 4 is missing
    assert_eq!(
        p.warnings,
        vec!["week 4: not found in the draft; no workouts for it".to_string()]
    );
    for w in &p.workouts {
        let sum: u32 = w.content_blocks.iter().map(|b| b.duration_seconds).sum();
        assert_eq!(sum, w.target_duration_in_seconds);
    }
}

#[test]
fn unreadable_lines_become_warnings() {
    let i = input(2, Level::Beginner, "");
    let draft = "\
2-Week 5K Plan
Just a title-area line.
Week 1 (base, 12 km): Aerobic foundation
- Monday: Rest
- Tuesday: Easy run 4 km
- Thursday: blah
the quick brown fox
- Sunday: Long run 5 km
Week 9: too far
- Monday: Easy run 5 km
Week 2:
- Tuesday: Easy run
- Sunday: Race — 5K
- Sunday: Race — 10K
";
    let p = build_plan(&i, draft);
    assert_eq!(
        p.warnings,
        vec![
            "line 6: could not read \"- Thursday: blah\"".to_string(),
            "line 7: could not read \"the quick brown fox\"".to_string(),
            "line 9: week 9 is outside the plan's 2 weeks; ignored".to_string(),
            "line 12: no distance or duration in \"- Tuesday: Easy run\"; assumed 40 min"
                .to_string(),
            "line 14: Sunday of week 2 appears twice; this line replaces the earlier one"
                .to_string(),
        ]
    );
    assert_eq!(p.workouts.len(), 4);
    assert_eq!(
        p.workouts[3].target_distance_in_meters,
        10_000
            + p.workouts[3]
                .content_blocks
                .iter()
                .filter(|b| b.block_type != "main")
                .filter_map(|b| b.distance_meters)
                .sum::<u32>()
    );
}

#[test]
fn amounts_no_session_has_are_warned_about_and_not_planned() {
    let i = input(1, Level::Beginner, "");
    let draft = "\
Week 1 (base):
- Monday: Easy run 99999999 km
- Tuesday: Intervals 999999 x 800m
- Wednesday: Long run 0 km
- Thursday: Tempo run 0 min
- Friday: Easy run 8 km then 0 min of strides
";
    let p = build_plan(&i, draft);
    assert_eq!(
        p.warnings,
        [
            "line 2: 99999999 km in \"- Monday: Easy run 99999999 km\" is not a session's amount (1 s to 48 h, up to 300 km, 1 to 50 repetitions); assumed 40 min",
            "line 3: 999999 x 800 m in \"- Tuesday: Intervals 999999 x 800m\" is not a session's amount (1 s to 48 h, up to 300 km, 1 to 50 repetitions); assumed 5 x 800m",
            "line 4: 0 km in \"- Wednesday: Long run 0 km\" is not a session's amount (1 s to 48 h, up to 300 km, 1 to 50 repetitions); assumed 1h",
            "line 5: 0 min in \"- Thursday: Tempo run 0 min\" is not a session's amount (1 s to 48 h, up to 300 km, 1 to 50 repetitions); assumed 20 min",
            "line 6: 0 min in \"- Friday: Easy run 8 km then 0 min of strides\" is not a session's amount (1 s to 48 h, up to 300 km, 1 to 50 repetitions); left out",
        ]
    );
    assert_eq!(p.workouts.len(), 5);
    for w in &p.workouts {
        assert!(
            w.target_distance_in_meters > 0
                && w.target_distance_in_meters <= 100_000
                && w.target_duration_in_seconds > 0
                && w.target_duration_in_seconds <= 6 * 3600,
            "{w:?}"
        );
    }
    assert!(p.weekly_info[&1].total_distance_km < 100.0);
}

#[test]
fn principle_words_change_the_mix() {
    let mut i = input(12, Level::Advanced, "10K");
    i.training_principle = "Pyramidal, threshold-focused training".into();
    let t = plan_of(&i);
    i.training_principle = "Polarized 80/20".into();
    let pz = plan_of(&i);
    let count = |p: &Plan, s: &str| {
        p.workouts
            .iter()
            .filter(|w| w.workout_sub_type == s)
            .count()
    };
    assert!(
        count(&t, "tempo") + count(&t, "cruise-intervals")
            > count(&pz, "tempo") + count(&pz, "cruise-intervals")
    );
    i.training_principle = "Low intensity, 90/10 split".into();
    let p = plan_of(&i);
    for wk in 1..=12 {
        let ws: Vec<&Workout> = p
            .workouts
            .iter()
            .filter(|w| w.week == wk && w.workout_sub_type != "race")
            .collect();
        let hard: u32 = ws.iter().map(|w| hard_seconds(w)).sum();
        let total: u32 = ws.iter().map(|w| w.target_duration_in_seconds).sum();
        assert!(hard * 100 <= 10 * total + 1, "week {wk}");
    }
}

#[test]
fn no_race_plan_has_no_taper() {
    let p = plan_of(&input(
        10,
        Level::Intermediate,
        "general fitness, 4 days per week",
    ));
    assert!(p.warnings.is_empty());
    assert!(p.workouts.iter().all(|w| w.workout_sub_type != "race"));
    assert!(p.weekly_info.values().all(|x| x.phase != "taper"));
}

#[test]
fn odd_inputs_never_panic() {
    for weeks in [0, 1, 2, 5, 7, 52, 60, u32::MAX] {
        for prompt in [
            "",
            "1 day per week",
            "2 days per week",
            "7 days per week",
            "no running on monday tuesday wednesday thursday friday saturday sunday",
            "currently 200 km per week marathon",
        ] {
            for level in LEVELS {
                let mut i = input(weeks, level, prompt);
                i.recent_race = Some(RaceResult {
                    distance_m: 5000.0,
                    time_s: 0.0,
                });
                let d = write_draft(&i);
                let p = build_plan(&i, &d.text);
                for w in &p.workouts {
                    let sum: u32 = w.content_blocks.iter().map(|b| b.duration_seconds).sum();
                    assert_eq!(sum, w.target_duration_in_seconds);
                }
                let _ = build_plan(&i, "");
                let _ = build_plan(&i, "Week 1\nMonday:\n- Tuesday: x 800m @ 99:99/km\n@@@\n");
            }
        }
    }
}

#[test]
fn json_shape_matches_the_api() {
    let i = input(3, Level::Intermediate, "5K");
    let p = plan_of(&i);
    let v = serde_json::to_value(&p.workouts[0]).unwrap();
    for k in [
        "week",
        "phase",
        "day",
        "date",
        "workout_name",
        "workout_description",
        "workout_type",
        "workout_sub_type",
        "target_duration_in_seconds",
        "target_distance_in_meters",
        "content_blocks",
    ] {
        assert!(v.get(k).is_some(), "{k}");
    }
    assert!(v["content_blocks"][0].get("type").is_some());
    assert_eq!(serde_json::to_value(Level::Beginner).unwrap(), "beginner");
    let info = serde_json::to_value(&p.weekly_info).unwrap();
    assert!(info.get("1").unwrap().get("total_distance_km").is_some());
}

/// Days without running keep what they are: a strength, yoga or swim day used to come back as
/// an easy run (or a swim's distance was dropped), with no warning.
#[test]
fn non_running_days_stay_what_the_draft_says() {
    let i = input(1, Level::Beginner, "");
    let draft = "\
Week 1
- Monday: Swim 1500m
- Tuesday: Easy run 30 min + core
- Wednesday: Strength training 30 min
- Thursday: Run/walk 20 min
- Friday: Zumba 45 min
- Saturday: Yoga
- Sunday: 10 km
";
    let p = build_plan(&i, draft);
    let by_day = |d: &str| {
        p.workouts
            .iter()
            .find(|w| w.day == d)
            .map(|w| {
                (
                    w.workout_name.as_str(),
                    w.workout_sub_type.as_str(),
                    w.target_duration_in_seconds,
                    w.target_distance_in_meters,
                )
            })
            .unwrap_or_default()
    };
    assert_eq!(
        by_day("Monday"),
        ("Swim 1.5 km", "cross-training", 1800, 1500)
    );
    assert_eq!(by_day("Tuesday").1, "easy-run");
    assert_eq!(
        by_day("Wednesday"),
        ("Strength Training 30 min", "cross-training", 1800, 0)
    );
    assert_eq!(by_day("Thursday").1, "easy-run");
    assert_eq!(by_day("Friday").1, "easy-run");
    assert_eq!(
        by_day("Saturday"),
        ("Yoga 30 min", "cross-training", 1800, 0)
    );
    assert_eq!(by_day("Sunday").1, "easy-run");
    assert_eq!(
        p.warnings,
        vec![
            "line 6: \"- Friday: Zumba 45 min\" names no session this planner knows; read as an easy run"
                .to_string(),
            "line 7: no distance or duration in \"- Saturday: Yoga\"; assumed 30 min".to_string(),
        ]
    );
    // the week's distance is its running: the swim's metres are not in it
    let run_m: u32 = p
        .workouts
        .iter()
        .filter(|w| w.workout_type != "cross-training")
        .map(|w| w.target_distance_in_meters)
        .sum();
    let km = p.weekly_info[&1].total_distance_km;
    assert!(
        (km - f64::from(run_m) / 1000.0).abs() < 0.051,
        "{km} vs {run_m} m"
    );
}

/// The writer's line for each activity reads back as the same session.
#[test]
fn non_running_days_round_trip_through_the_draft_text() {
    let i = input(1, Level::Beginner, "");
    for line in [
        "Bike 45 min",
        "Rowing 5 km",
        "Hike 2h",
        "Pilates 40 min",
        "Cross-Training 30 min",
    ] {
        let first = build_plan(&i, &format!("Week 1\n- Monday: {line}\n"));
        let name = first.workouts[0].workout_name.clone();
        let again = build_plan(&i, &format!("Week 1\n- Monday: {name}\n"));
        assert_eq!(again.workouts, first.workouts, "{line}");
        assert!(first.warnings.is_empty(), "{line}: {:?}", first.warnings);
    }
}
