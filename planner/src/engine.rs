//! Periodization and week construction (training-science.md §1).

use chrono::{Days, NaiveDate, Weekday};

use crate::prompt::{PromptHints, RaceDistance, read_prompt};
use crate::session::{Built, PaceSet, Planned, Session, build, measure};
use crate::text::{Amount, day_name};
use crate::{Level, PlanInput, Workout, hard_in};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Base,
    Build,
    Peak,
    Taper,
}

impl Phase {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Phase::Base => "base",
            Phase::Build => "build",
            Phase::Peak => "peak",
            Phase::Taper => "taper",
        }
    }
    pub(crate) fn from_word(w: &str) -> Option<Phase> {
        Some(match w {
            "base" => Phase::Base,
            "build" => Phase::Build,
            "peak" => Phase::Peak,
            "taper" => Phase::Taper,
            _ => return None,
        })
    }
}

/// How the training principle shapes quality work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Balanced,
    Polarized,
    Threshold,
}

/// Everything derived from the request that both steps need.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub weeks: u32,
    pub level: Level,
    pub race: Option<RaceDistance>,
    pub days_per_week: u32,
    pub long_day: Weekday,
    pub race_day: Weekday,
    pub allowed: Vec<Weekday>,
    pub excluded: Vec<Weekday>,
    /// Weekdays in plan-week order (starting on start_date's weekday, else Monday).
    pub order: Vec<Weekday>,
    pub paces: PaceSet,
    pub style: Style,
    pub easy_share: u32,
    pub start_date: Option<NaiveDate>,
    pub phases: Vec<Phase>,
    pub hints: PromptHints,
    /// Adjustments worth telling the coach in the draft.
    pub notes: Vec<String>,
}

/// Default VDOT per level when no race is given; chosen so easy pace is
/// about 6:30, 5:45 and 5:00 per km.
fn default_vdot(level: Level) -> f64 {
    match level {
        Level::Beginner => 38.0,
        Level::Intermediate => 45.0,
        Level::Advanced => 53.0,
    }
}

/// Race when the prompt names none, by plan length (beginners stop at the half).
fn default_race(level: Level, weeks: u32) -> RaceDistance {
    match (level, weeks) {
        (Level::Beginner, 0..=10) => RaceDistance::FiveK,
        (Level::Beginner, 11..=14) => RaceDistance::TenK,
        (Level::Beginner, _) => RaceDistance::HalfMarathon,
        (_, 0..=8) => RaceDistance::FiveK,
        (_, 9..=12) => RaceDistance::TenK,
        (_, 13..=16) => RaceDistance::HalfMarathon,
        _ => RaceDistance::Marathon,
    }
}

fn principle_style(text: &str) -> (Style, u32) {
    let lower = text.to_lowercase();
    let style = if lower.contains("polarized") || lower.contains("polarised") {
        Style::Polarized
    } else if ["threshold", "pyramidal", "tempo", "lactate"]
        .iter()
        .any(|w| lower.contains(w))
    {
        Style::Threshold
    } else {
        Style::Balanced
    };
    // An explicit "NN/MM" split (e.g. 80/20, 90/10) sets the easy share.
    let b = lower.as_bytes();
    let mut share = 80;
    for i in 0..b.len() {
        if b[i] == b'/' && i >= 2 && i + 2 < b.len() {
            let l = lower.get(i - 2..i).unwrap_or("");
            let r = lower.get(i + 1..i + 3).unwrap_or("");
            if let (Ok(x), Ok(y)) = (l.parse::<u32>(), r.parse::<u32>())
                && x + y == 100
                && (60..=95).contains(&x)
            {
                share = x;
                break;
            }
        }
    }
    (style, share)
}

fn taper_weeks(race: Option<RaceDistance>) -> u32 {
    match race {
        None => 0,
        Some(RaceDistance::FiveK | RaceDistance::TenK) => 1,
        Some(RaceDistance::HalfMarathon) => 2,
        Some(RaceDistance::Marathon) => 3,
    }
}

/// §1.1 split: base = build = round(N/4), taper by distance, peak the rest.
pub(crate) fn phase_split(n: u32, taper: u32) -> Vec<Phase> {
    use Phase::*;
    let n = n.clamp(1, 52);
    match (n, taper > 0) {
        (1, true) => return vec![Taper],
        (1, false) => return vec![Base],
        (2, true) => return vec![Base, Taper],
        (2, false) => return vec![Base, Build],
        (3, true) => return vec![Base, Build, Taper],
        (3, false) => return vec![Base, Build, Peak],
        _ => {}
    }
    let q = (n + 2) / 4;
    // Never more than a quarter of the plan tapering (a 6-week marathon plan tapers 1 week).
    let t = taper.min(n - 3).min((n / 4).max(1));
    let (mut base, mut build) = (q, q);
    while base + build + t >= n {
        if base > 1 {
            base -= 1;
        } else if build > 1 {
            build -= 1;
        } else {
            break;
        }
    }
    let peak = n.saturating_sub(base + build + t);
    let mut out = Vec::new();
    out.extend(std::iter::repeat_n(Base, base as usize));
    out.extend(std::iter::repeat_n(Build, build as usize));
    out.extend(std::iter::repeat_n(Peak, peak as usize));
    out.extend(std::iter::repeat_n(Taper, t as usize));
    out
}

pub(crate) fn context(input: &PlanInput) -> Ctx {
    let weeks = input.weeks.clamp(1, 52);
    let level = input.level;
    let hints = read_prompt(input.additional_prompt.as_deref().unwrap_or(""));
    let mut notes = Vec::new();
    let race = if hints.no_race {
        None
    } else {
        Some(hints.race.unwrap_or_else(|| default_race(level, weeks)))
    };
    let first = input
        .start_date
        .map(|d| chrono::Datelike::weekday(&d))
        .unwrap_or(Weekday::Mon);
    let order: Vec<Weekday> = (0..7).map(|i| nth_after(first, i)).collect();
    let mut excluded = hints.excluded_days.clone();
    if excluded.len() >= 7 {
        notes.push("Every day was excluded; the exclusions were ignored.".to_string());
        excluded.clear();
    }
    let allowed: Vec<Weekday> = order
        .iter()
        .copied()
        .filter(|d| !excluded.contains(d))
        .collect();
    let last_allowed = allowed.last().copied().unwrap_or(Weekday::Sun);
    let default_long = if allowed.contains(&Weekday::Sun) {
        Weekday::Sun
    } else {
        last_allowed
    };
    let long_day = match hints.long_run_day {
        Some(d) if allowed.contains(&d) => d,
        Some(d) => {
            notes.push(format!(
                "{} is excluded, so the long run is on {}.",
                day_name(d),
                day_name(default_long)
            ));
            default_long
        }
        None => default_long,
    };
    let default_days = match (level, race) {
        (Level::Beginner, _) => 3,
        (Level::Intermediate, _) => 4,
        (Level::Advanced, Some(RaceDistance::HalfMarathon | RaceDistance::Marathon)) => 6,
        (Level::Advanced, _) => 5,
    };
    let wanted = hints.days_per_week.unwrap_or(default_days).clamp(1, 7);
    let days_per_week = wanted.min(allowed.len().max(1) as u32);
    if days_per_week < wanted {
        notes.push(format!(
            "Only {days_per_week} days are available, so the plan runs {days_per_week} days a week."
        ));
    }
    // a race too slow for the formula (its oxygen cost goes negative at a walk) is VDOT 20,
    // the bottom of the clamp, like any other slow race
    let (from_race, vdot) = match input.recent_race {
        Some(r)
            if r.distance_m.is_finite()
                && r.time_s.is_finite()
                && r.distance_m > 0.0
                && r.time_s > 0.0 =>
        {
            (
                true,
                crate::vdot::vdot(r.distance_m, r.time_s).clamp(20.0, 90.0),
            )
        }
        _ => (false, default_vdot(level)),
    };
    let (style, easy_share) = principle_style(&input.training_principle);
    Ctx {
        weeks,
        level,
        race,
        days_per_week,
        long_day,
        race_day: long_day,
        allowed,
        excluded,
        order,
        paces: PaceSet::from_vdot(vdot, from_race),
        style,
        easy_share,
        start_date: input.start_date,
        phases: phase_split(weeks, taper_weeks(race)),
        hints,
        notes,
    }
}

fn nth_after(d: Weekday, n: u32) -> Weekday {
    let mut x = d;
    for _ in 0..n {
        x = x.succ();
    }
    x
}

impl Ctx {
    pub(crate) fn phase_of(&self, week: u32) -> Phase {
        self.phases
            .get(week.saturating_sub(1) as usize)
            .copied()
            .unwrap_or(Phase::Base)
    }

    pub(crate) fn day_index(&self, d: Weekday) -> usize {
        self.order.iter().position(|x| *x == d).unwrap_or(0)
    }

    pub(crate) fn date_for(&self, week: u32, d: Weekday) -> Option<String> {
        let start = self.start_date?;
        let offset = u64::from(week.saturating_sub(1)) * 7 + self.day_index(d) as u64;
        start
            .checked_add_days(Days::new(offset))
            .map(|x| x.format("%Y-%m-%d").to_string())
    }

    pub(crate) fn to_workout(&self, week: u32, phase: &str, d: Weekday, p: &Planned) -> Workout {
        let b = build(p, &self.paces, self.level);
        Workout {
            week,
            phase: phase.to_string(),
            day: day_name(d).to_string(),
            date: self.date_for(week, d),
            target_duration_in_seconds: b.duration(),
            target_distance_in_meters: b.distance(),
            workout_name: b.name,
            workout_description: b.description,
            workout_type: b.workout_type.to_string(),
            workout_sub_type: b.sub_type.to_string(),
            content_blocks: b.blocks,
        }
    }
}

// ---------- weekly volume (§1.2–1.4, §1.7) ----------

fn start_km(level: Level) -> f64 {
    match level {
        Level::Beginner => 12.0,
        Level::Intermediate => 30.0,
        Level::Advanced => 50.0,
    }
}

fn peak_km(level: Level, race: Option<RaceDistance>) -> f64 {
    let col = match race {
        None | Some(RaceDistance::FiveK | RaceDistance::TenK) => 0,
        Some(RaceDistance::HalfMarathon) => 1,
        Some(RaceDistance::Marathon) => 2,
    };
    let row = match level {
        Level::Beginner => [25.0, 35.0, 55.0],
        Level::Intermediate => [40.0, 55.0, 70.0],
        Level::Advanced => [70.0, 90.0, 110.0],
    };
    row[col]
}

/// Taper volumes as fractions of the peak week, last entry = race week (§1.4).
fn taper_fractions(race: Option<RaceDistance>) -> &'static [f64] {
    match race {
        None => &[],
        Some(RaceDistance::FiveK | RaceDistance::TenK) => &[0.60],
        Some(RaceDistance::HalfMarathon) => &[0.75, 0.50],
        Some(RaceDistance::Marathon) => &[0.78, 0.60, 0.40],
    }
}

fn floor100(x: f64) -> u32 {
    if x.is_finite() && x > 0.0 {
        ((x / 100.0).floor() * 100.0).min(1.0e9) as u32
    } else {
        0
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WeekVol {
    /// Target running volume in metres, excluding the race itself.
    pub meters: u32,
    pub cutback: bool,
}

/// §1.2 progression with §1.3 cut-backs and the §1.4 taper.
///
/// The step is the smaller of 10 % and 1.6 km per run, less 210 m, so that
/// rounding easy runs to 100 m can never push realised growth over 10 %.
pub(crate) fn volumes(ctx: &Ctx) -> Vec<WeekVol> {
    let start = ctx
        .hints
        .current_weekly_km
        .unwrap_or_else(|| start_km(ctx.level));
    let start_m = floor100(start * 1000.0).max(3000);
    let peak_m = floor100(peak_km(ctx.level, ctx.race) * 1000.0).max(start_m);
    let runs = f64::from(ctx.days_per_week);
    let load_before_cut = if ctx.level == Level::Beginner { 2 } else { 3 };
    let first_taper = ctx
        .phases
        .iter()
        .position(|p| *p == Phase::Taper)
        .unwrap_or(ctx.phases.len());
    let mut out: Vec<WeekVol> = Vec::new();
    let mut level_m = start_m; // current loading level
    let mut loading = 0;
    let mut base_idx = 0;
    let mut after_cut = false;
    for (i, phase) in ctx.phases.iter().enumerate() {
        if *phase == Phase::Taper {
            break;
        }
        let cut_allowed = i > 0 && i + 1 < first_taper;
        if cut_allowed && loading >= load_before_cut {
            out.push(WeekVol {
                meters: floor100(f64::from(level_m) * 0.75),
                cutback: true,
            });
            loading = 0;
            after_cut = true;
            if *phase == Phase::Base {
                base_idx += 1;
            }
            continue;
        }
        if i > 0 && !after_cut {
            let raise = match phase {
                Phase::Base => base_idx % 3 == 2,
                _ => true,
            };
            if raise {
                let v = f64::from(level_m);
                let step = floor100((0.10 * v - 210.0).min(1600.0 * runs));
                level_m = (level_m + step).min(peak_m).max(level_m);
            }
        }
        after_cut = false;
        if *phase == Phase::Base {
            base_idx += 1;
        }
        loading += 1;
        out.push(WeekVol {
            meters: level_m,
            cutback: false,
        });
    }
    let peak_week = out.iter().map(|w| w.meters).max().unwrap_or(start_m);
    let fr = taper_fractions(ctx.race);
    let tapers = ctx.phases.len() - out.len();
    for k in 0..tapers {
        let from_end = tapers - k; // 1 = race week
        let f = if from_end <= fr.len() {
            fr[fr.len() - from_end]
        } else {
            0.85
        };
        out.push(WeekVol {
            meters: floor100(f64::from(peak_week) * f).max(3000),
            cutback: false,
        });
    }
    out
}

// ---------- days ----------

fn cyc(a: Weekday, b: Weekday) -> u32 {
    let d = (a.num_days_from_monday() as i32 - b.num_days_from_monday() as i32).unsigned_abs();
    d.min(7 - d)
}

/// Training days: spread out (fewest back-to-back pairs), rest after and before the anchor if possible.
fn select_days(ctx: &Ctx, allowed: &[Weekday], anchor: Weekday) -> Vec<Weekday> {
    let d = (ctx.days_per_week as usize).min(allowed.len());
    let n = allowed.len();
    type Scored = ((u32, bool, bool, u32), Vec<Weekday>);
    let mut best: Option<Scored> = None;
    for mask in 0u32..(1u32 << n) {
        if mask.count_ones() as usize != d {
            continue;
        }
        let set: Vec<Weekday> = (0..n)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| allowed[i])
            .collect();
        if allowed.contains(&anchor) && !set.contains(&anchor) {
            continue;
        }
        let mut adj = 0;
        for (i, a) in set.iter().enumerate() {
            for b in &set[i + 1..] {
                if cyc(*a, *b) == 1 {
                    adj += 1;
                }
            }
        }
        let score = (
            adj,
            set.contains(&anchor.succ()),
            set.contains(&anchor.pred()),
            mask,
        );
        if best.as_ref().is_none_or(|(s, _)| score < *s) {
            best = Some((score, set));
        }
    }
    best.map(|(_, s)| s).unwrap_or_default()
}

/// Quality days: not next to each other or the anchor, as far apart as possible.
fn pick_quality(ctx: &Ctx, days: &[Weekday], anchor: Weekday, nq: usize) -> Vec<Weekday> {
    let cands: Vec<Weekday> = days.iter().copied().filter(|d| *d != anchor).collect();
    let n = cands.len();
    let nq = nq.min(n);
    type Scored = ((u32, i64, Vec<usize>), Vec<Weekday>);
    let mut best: Option<Scored> = None;
    for mask in 0u32..(1u32 << n) {
        if mask.count_ones() as usize != nq {
            continue;
        }
        let set: Vec<Weekday> = (0..n)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| cands[i])
            .collect();
        let mut adj = 0;
        let mut min_d = 7;
        for (i, a) in set.iter().enumerate() {
            let da = cyc(*a, anchor);
            min_d = min_d.min(da);
            if da == 1 {
                adj += 1;
            }
            for b in &set[i + 1..] {
                let db = cyc(*a, *b);
                min_d = min_d.min(db);
                if db == 1 {
                    adj += 1;
                }
            }
        }
        let idx: Vec<usize> = set.iter().map(|d| ctx.day_index(*d)).collect();
        let score = (adj, -i64::from(min_d), idx);
        if best.as_ref().is_none_or(|(s, _)| score < *s) {
            best = Some((score, set));
        }
    }
    let mut out = best.map(|(_, s)| s).unwrap_or_default();
    out.sort_by_key(|d| ctx.day_index(*d));
    out
}

// ---------- sessions ----------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Q {
    Tempo,
    Cruise,
    Intervals,
    Repetition,
    Hills,
    Fartlek,
    Mp,
}

fn menu(ctx: &Ctx, phase: Phase, week: u32, race_week: bool) -> Vec<Q> {
    use Q::*;
    let marathon = ctx.race == Some(RaceDistance::Marathon);
    let half = ctx.race == Some(RaceDistance::HalfMarathon);
    if race_week {
        return match ctx.race {
            Some(RaceDistance::Marathon) => vec![Mp],
            Some(RaceDistance::HalfMarathon) => vec![Tempo],
            _ if ctx.level == Level::Beginner => vec![Fartlek],
            _ => vec![Intervals],
        };
    }
    if ctx.level == Level::Beginner {
        return match phase {
            Phase::Base => vec![],
            Phase::Build | Phase::Taper => vec![Fartlek],
            Phase::Peak => vec![if week.is_multiple_of(2) {
                Tempo
            } else {
                Fartlek
            }],
        };
    }
    let peak = match (ctx.style, marathon) {
        (Style::Balanced, false) => vec![Intervals, Tempo],
        (Style::Balanced, true) => vec![Tempo, Mp],
        (Style::Polarized, false) => vec![Intervals, Repetition],
        (Style::Polarized, true) => vec![Intervals, Mp],
        (Style::Threshold, false) => vec![Cruise, Intervals],
        (Style::Threshold, true) => vec![Cruise, Mp],
    };
    match phase {
        Phase::Base => vec![Hills],
        Phase::Build => match (ctx.style, marathon) {
            (Style::Balanced, false) => vec![Repetition, Tempo],
            (Style::Balanced, true) => vec![Tempo, Mp],
            (Style::Polarized, false) => vec![Repetition, Intervals],
            (Style::Polarized, true) => vec![Intervals, Mp],
            (Style::Threshold, false) => vec![Tempo, Cruise],
            (Style::Threshold, true) => vec![Cruise, Mp],
        },
        Phase::Peak => peak,
        Phase::Taper => {
            let n = if ctx.level == Level::Advanced { 2 } else { 1 };
            let mut p = peak;
            if half && ctx.style == Style::Balanced {
                p = vec![Tempo, Intervals];
            }
            p.truncate(n);
            p
        }
    }
}

fn floor_to(x: f64, unit: u32) -> u32 {
    if x.is_finite() && x > 0.0 {
        (x / f64::from(unit)).floor().min(1.0e9) as u32 * unit
    } else {
        0
    }
}

/// Largest session of kind `q` whose main set fits `budget` seconds and the §1.6 caps for volume `v` metres.
fn size(ctx: &Ctx, q: Q, v: u32, budget: u32) -> Session {
    let p = &ctx.paces;
    let vf = f64::from(v);
    let b = f64::from(budget);
    let adv = ctx.level == Level::Advanced;
    let largest = |min: u32, max: u32, fits: &dyn Fn(u32) -> bool| -> u32 {
        (min..=max).rev().find(|r| fits(*r)).unwrap_or(min)
    };
    match q {
        Q::Tempo | Q::Cruise => {
            let cap_d = 0.10 * vf;
            let t = f64::from(p.threshold);
            let rep = if adv { 1600 } else { 1000 };
            let rep_t = f64::from(rep) * t / 1000.0;
            let fits = |r: u32| {
                let r = f64::from(r);
                r * rep_t + (r - 1.0) * 60.0 <= b && r * f64::from(rep) <= cap_d
            };
            let cruise_ok = (2..=6).rev().find(|r| fits(*r));
            let want_cruise = q == Q::Cruise || (b.min(cap_d * t / 1000.0) > 1200.0);
            if want_cruise && ctx.level != Level::Beginner {
                let reps = cruise_ok.unwrap_or(2);
                return Session::Cruise {
                    reps,
                    rep: Amount::Meters(rep),
                };
            }
            let t_max = b.min(cap_d * t / 1000.0).min(1200.0);
            if p.from_race {
                let m = floor_to(t_max * 1000.0 / t, 500).max(1500);
                Session::Tempo {
                    amount: Amount::Meters(m),
                }
            } else {
                let min = floor_to(t_max, 60).max(480);
                Session::Tempo {
                    amount: Amount::Seconds(min),
                }
            }
        }
        Q::Intervals => {
            let i = f64::from(p.interval);
            let cap = 10_000f64.min(0.08 * vf);
            for rep in [if adv { 1000 } else { 800 }, 400] {
                let rep_t = f64::from(rep) * i / 1000.0;
                let fits = |r: u32| f64::from(2 * r - 1) * rep_t <= b && f64::from(r * rep) <= cap;
                if let Some(r) = (3..=8).rev().find(|r| fits(*r)) {
                    return Session::Intervals {
                        reps: r,
                        rep: Amount::Meters(rep),
                    };
                }
            }
            Session::Intervals {
                reps: 4,
                rep: Amount::Meters(400),
            }
        }
        Q::Repetition => {
            let rep = if adv { 400 } else { 200 };
            let rt = f64::from(rep) * f64::from(p.repetition) / 1000.0;
            let jt = f64::from(rep) * f64::from(p.easy_slow) / 1000.0;
            let cap = 8000f64.min(0.05 * vf);
            let r = largest(4, 12, &|r| {
                let r = f64::from(r);
                r * rt + (r - 1.0) * jt <= b && r * f64::from(rep) <= cap
            });
            Session::Repetition {
                reps: r,
                rep: Amount::Meters(rep),
            }
        }
        Q::Hills => {
            let rep_s = if adv { 90 } else { 60 };
            let up = f64::from(rep_s) * 1000.0 / f64::from(p.threshold);
            let r = largest(4, 10, &|r| {
                f64::from(3 * r - 2) * f64::from(rep_s) <= b && f64::from(r) * up <= 0.08 * vf
            });
            Session::Hills { reps: r, rep_s }
        }
        Q::Fartlek => {
            let rep_s = if ctx.level == Level::Beginner {
                60
            } else {
                120
            };
            let pace = f64::from((p.threshold + p.interval) / 2);
            let r = largest(4, 10, &|r| {
                f64::from(2 * r - 1) * f64::from(rep_s) <= b
                    && f64::from(r * rep_s) * 1000.0 / pace <= 0.10 * vf
            });
            Session::Fartlek { reps: r, rep_s }
        }
        Q::Mp => {
            let m = f64::from(p.marathon);
            let cap_d = (0.20 * vf).min(29_000.0).min(6600.0 * 1000.0 / m);
            let t_max = b.min(cap_d * m / 1000.0);
            if p.from_race {
                Session::MarathonPace {
                    amount: Amount::Meters(floor_to(t_max * 1000.0 / m, 1000).max(3000)),
                }
            } else {
                Session::MarathonPace {
                    amount: Amount::Seconds(floor_to(t_max, 300).max(900)),
                }
            }
        }
    }
}

/// One planned week, ready to be written as draft lines.
#[derive(Debug, Clone)]
pub(crate) struct WeekPlan {
    pub week: u32,
    pub phase: Phase,
    pub focus: String,
    pub days: Vec<(Weekday, Planned)>,
    pub notes: Vec<String>,
}

pub(crate) fn focus_for(ctx: &Ctx, phase: Phase, cutback: bool, race_week: bool) -> String {
    if cutback {
        return "recovery".to_string();
    }
    if race_week {
        return "Race week".to_string();
    }
    let s = match (phase, ctx.race) {
        (Phase::Base, _) => "Aerobic foundation",
        (Phase::Build, None) => "Build volume",
        (Phase::Build, Some(RaceDistance::FiveK | RaceDistance::TenK)) => "Speed and economy",
        (Phase::Build, Some(RaceDistance::HalfMarathon)) => "Threshold and economy",
        (Phase::Build, Some(RaceDistance::Marathon)) => "Endurance and threshold",
        (Phase::Peak, None) => "Consolidate fitness",
        (Phase::Peak, Some(RaceDistance::FiveK | RaceDistance::TenK)) => {
            "VO2max and race sharpness"
        }
        (Phase::Peak, Some(RaceDistance::HalfMarathon)) => "Race-specific threshold",
        (Phase::Peak, Some(RaceDistance::Marathon)) => "Marathon-specific endurance",
        (Phase::Taper, _) => "Taper: stay sharp, shed fatigue",
    };
    s.to_string()
}

fn planned(session: Session, ctx: &Ctx) -> Planned {
    // With a known race, every running line states its pace so the coach sees (and can edit) it.
    let p = &ctx.paces;
    let pace = if !p.from_race {
        None
    } else {
        match &session {
            Session::Easy { .. } | Session::Long { .. } => Some((p.easy_fast, p.easy_slow)),
            Session::Tempo { .. } | Session::Cruise { .. } => Some((p.threshold, p.threshold)),
            Session::Intervals { .. } => Some((p.interval, p.interval)),
            Session::Repetition { .. } => Some((p.repetition, p.repetition)),
            Session::MarathonPace { .. } => Some((p.marathon, p.marathon)),
            Session::Race { meters, .. } => {
                let r = p.race_pace(*meters);
                Some((r, r))
            }
            _ => None,
        }
    };
    Planned { session, pace }
}

pub(crate) const LONG_NOTE: &str = "Note: long run above Daniels' 30% cap (low weekly volume for a marathon), kept within 150 min at easy pace.";

/// §1.6 exception: marathon plans below 64 km/week get a 40 % / 150 min long run.
pub(crate) fn low_volume_marathon(ctx: &Ctx, phase: Phase, v: u32) -> bool {
    ctx.race == Some(RaceDistance::Marathon)
        && v < 64_000
        && phase != Phase::Taper
        && ctx.days_per_week >= 3
}

fn long_run_m(ctx: &Ctx, phase: Phase, v: u32, notes: &mut Vec<String>) -> u32 {
    let vf = f64::from(v);
    let cap_time_m = 9000.0 * 1000.0 / f64::from(ctx.paces.easy); // 150 min at E
    let mut cap = if vf < 64_000.0 {
        0.30 * vf
    } else {
        (0.25 * vf).min(cap_time_m)
    };
    if low_volume_marathon(ctx, phase, v) {
        cap = (0.40 * vf).min(cap_time_m);
        notes.push(LONG_NOTE.to_string());
    }
    if ctx.days_per_week <= 1 {
        cap = vf.min(cap_time_m);
    }
    floor_to(cap, 500).max(3000)
}

/// Builds one week: days, sessions, and sizes that meet the volume target and the easy share.
fn plan_week(ctx: &Ctx, week: u32, phase: Phase, vol: WeekVol, race_week: bool) -> WeekPlan {
    let anchor = if race_week {
        ctx.race_day
    } else {
        ctx.long_day
    };
    // Race week ends with the race: no days after it in the plan week.
    let allowed: Vec<Weekday> = if race_week {
        let last = ctx.day_index(anchor);
        ctx.allowed
            .iter()
            .copied()
            .filter(|d| ctx.day_index(*d) <= last)
            .collect()
    } else {
        ctx.allowed.clone()
    };
    let days = select_days(ctx, &allowed, anchor);
    let d = days.len();
    let mut kinds = menu(ctx, phase, week, race_week);
    let max_q = match d {
        0..=2 => 0,
        3 => 1,
        _ => 2,
    };
    kinds.truncate(if ctx.level == Level::Beginner {
        max_q.min(1)
    } else {
        max_q
    });
    let q_days = pick_quality(ctx, &days, anchor, kinds.len());
    let recovery_day = anchor.succ();
    let has_recovery = !race_week
        && ctx.level != Level::Beginner
        && d >= 4
        && days.contains(&recovery_day)
        && !q_days.contains(&recovery_day);
    let easy_days: Vec<Weekday> = days
        .iter()
        .copied()
        .filter(|x| *x != anchor && !q_days.contains(x) && !(has_recovery && *x == recovery_day))
        .collect();
    let strides_runs = match (phase, ctx.level) {
        (Phase::Base, Level::Beginner) if week >= 2 => 1,
        (Phase::Base, Level::Beginner) => 0,
        (Phase::Base, Level::Intermediate) => 1,
        (Phase::Base, Level::Advanced) => 2,
        (Phase::Build, Level::Beginner) => 1,
        (Phase::Taper, _) => 1,
        _ => 0,
    };
    let strides_n = match ctx.level {
        Level::Beginner => 4,
        Level::Intermediate => 6,
        Level::Advanced => 8,
    };
    let mut notes = Vec::new();
    let v = vol.meters;
    let long_m = if race_week {
        0
    } else {
        long_run_m(ctx, phase, v, &mut notes)
    };
    let est_total = f64::from(v) * f64::from(ctx.paces.easy) / 1000.0;
    let hard_budget = est_total * f64::from(100 - ctx.easy_share) / 100.0;
    let strides_hard = f64::from(
        strides_runs.min(easy_days.len() as u32) * (strides_n * 20 + (strides_n - 1) * 60),
    );
    // Shortest easy run; lower when many runs share little volume (e.g. a beginner running 5 days).
    let level_min = if ctx.level == Level::Beginner {
        2000
    } else {
        3000
    };
    let min_easy = floor100(0.6 * f64::from(v) / d.max(1) as f64).clamp(1000, level_min);
    let mut result: Vec<(Weekday, Planned)> = Vec::new();
    for attempt in 0..12u32 {
        let factor = 1.0 - 0.08 * f64::from(attempt);
        let active: Vec<Q> = if attempt >= 10 {
            Vec::new()
        } else {
            kinds.clone()
        };
        let nq = active.len().max(1) as f64;
        let per = ((hard_budget - strides_hard).max(0.0) * factor.max(0.1) / nq).max(0.0) as u32;
        let mut sized: Vec<(Weekday, Session)> = q_days
            .iter()
            .zip(active.iter())
            .map(|(day, q)| (*day, size(ctx, *q, v, per)))
            .collect();
        if vol.cutback && sized.len() == 2 {
            // §1.3: keep the shorter quality session, drop the other.
            let t: Vec<u32> = sized
                .iter()
                .map(|(_, s)| measure(&planned(s.clone(), ctx), &ctx.paces, ctx.level).duration())
                .collect();
            let drop = if t[0] <= t[1] { 1 } else { 0 };
            sized.remove(drop);
        }
        let mut plan: Vec<(Weekday, Planned)> = Vec::new();
        let mut fixed = 0u32;
        for (day, s) in &sized {
            let p = planned(s.clone(), ctx);
            fixed += measure(&p, &ctx.paces, ctx.level).distance();
            plan.push((*day, p));
        }
        if race_week {
            if let Some(r) = ctx.race {
                plan.push((
                    anchor,
                    planned(
                        Session::Race {
                            meters: r.meters(),
                            label: r.label().to_string(),
                        },
                        ctx,
                    ),
                ));
            }
        } else {
            let p = planned(
                Session::Long {
                    amount: Amount::Meters(long_m),
                },
                ctx,
            );
            fixed += long_m;
            plan.push((anchor, p));
        }
        // Easy days: whatever is not a quality day, a strides day first.
        let used: Vec<Weekday> = plan.iter().map(|(x, _)| *x).collect();
        let mut easy: Vec<Weekday> = days.iter().copied().filter(|x| !used.contains(x)).collect();
        easy.retain(|x| !(has_recovery && *x == recovery_day));
        let strides_take = if attempt >= 11 {
            0
        } else {
            strides_runs as usize
        };
        let strides_days: Vec<Weekday> = easy.iter().copied().take(strides_take).collect();
        let strides_extra = if strides_days.is_empty() {
            0
        } else {
            let probe = Planned {
                session: Session::Easy {
                    amount: Amount::Meters(0),
                    strides: strides_n,
                },
                pace: None,
            };
            measure(&probe, &ctx.paces, ctx.level).distance()
        };
        fixed += strides_extra * strides_days.len() as u32;
        let remaining = v.saturating_sub(fixed);
        let n_e = easy.len() as u32;
        let n_r = u32::from(has_recovery);
        let mut rec_m = 0;
        let mut clamped = false;
        if n_e + n_r > 0 {
            let unit = f64::from(remaining) * 10.0 / f64::from(10 * n_e + 7 * n_r);
            if has_recovery {
                rec_m = floor100(unit * 0.7);
                if rec_m < min_easy {
                    clamped = true;
                    rec_m = min_easy;
                }
            }
            let easy_total = remaining.saturating_sub(rec_m);
            if let Some(per) = easy_total.checked_div(n_e) {
                let base = (per / 100) * 100;
                let mut extra = (easy_total - base * n_e) / 100;
                for x in &easy {
                    let mut m = base;
                    if extra > 0 {
                        m += 100;
                        extra -= 1;
                    }
                    let strides = if strides_days.contains(x) {
                        strides_n
                    } else {
                        0
                    };
                    if m < min_easy {
                        clamped = true;
                    }
                    plan.push((
                        *x,
                        planned(
                            Session::Easy {
                                amount: Amount::Meters(m.max(min_easy)),
                                strides,
                            },
                            ctx,
                        ),
                    ));
                }
            }
        }
        if has_recovery {
            plan.push((
                recovery_day,
                Planned {
                    session: Session::Recovery {
                        amount: Amount::Meters(rec_m),
                    },
                    pace: None,
                },
            ));
        }
        plan.sort_by_key(|(x, _)| ctx.day_index(*x));
        // §1.5 check on the real workouts (race excluded).
        let (mut hard, mut total) = (0u64, 0u64);
        for (_, p) in &plan {
            if matches!(p.session, Session::Race { .. }) {
                continue;
            }
            let b: Built = measure(p, &ctx.paces, ctx.level);
            hard += u64::from(hard_in(b.sub_type, &b.blocks));
            total += u64::from(b.duration());
        }
        result = plan;
        // Too little volume left for the easy runs means the quality work is too big: shrink it.
        if hard * 100 <= u64::from(100 - ctx.easy_share) * total && !clamped {
            break;
        }
    }
    WeekPlan {
        week,
        phase,
        focus: focus_for(ctx, phase, vol.cutback, race_week),
        days: result,
        notes,
    }
}

pub(crate) fn generate(ctx: &Ctx) -> Vec<WeekPlan> {
    let vols = volumes(ctx);
    let n = ctx.phases.len();
    ctx.phases
        .iter()
        .enumerate()
        .map(|(i, phase)| {
            let vol = vols.get(i).copied().unwrap_or(WeekVol {
                meters: 3000,
                cutback: false,
            });
            let race_week = ctx.race.is_some() && i + 1 == n;
            plan_week(ctx, i as u32 + 1, *phase, vol, race_week)
        })
        .collect()
}
