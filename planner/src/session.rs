//! One training day: the parsed/planned session and how it becomes a workout.
//!
//! The writer and the parser share this module, so the text of a line fully
//! determines its workout (given the request's paces and level).

use crate::text::{Amount, format_amount};
use crate::vdot::{format_pace, predict_time_s, training_paces};
use crate::{ContentBlock, Level, PaceRange};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Session {
    Easy { amount: Amount, strides: u32 },
    Recovery { amount: Amount },
    Long { amount: Amount },
    Tempo { amount: Amount },
    Cruise { reps: u32, rep: Amount },
    Intervals { reps: u32, rep: Amount },
    Repetition { reps: u32, rep: Amount },
    Hills { reps: u32, rep_s: u32 },
    Fartlek { reps: u32, rep_s: u32 },
    MarathonPace { amount: Amount },
    Race { meters: u32, label: String },
    Cross { activity: Activity, amount: Amount },
}

/// What a non-running day does. All are `cross-training` workouts (the sub-type vocabulary a
/// model shares with this planner); the activity names the workout and sizes a distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Activity {
    CrossTraining,
    Bike,
    Swim,
    Elliptical,
    Rowing,
    Walk,
    Hike,
    Strength,
    Yoga,
    Pilates,
    Mobility,
}

impl Activity {
    /// As the draft writes it (and the parser reads it back).
    pub(crate) fn title(self) -> &'static str {
        match self {
            Self::CrossTraining => "Cross-Training",
            Self::Bike => "Bike",
            Self::Swim => "Swim",
            Self::Elliptical => "Elliptical",
            Self::Rowing => "Rowing",
            Self::Walk => "Walk",
            Self::Hike => "Hike",
            Self::Strength => "Strength Training",
            Self::Yoga => "Yoga",
            Self::Pilates => "Pilates",
            Self::Mobility => "Mobility",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::CrossTraining => {
                "Low-impact aerobic work (bike, swim, elliptical) at easy effort."
            }
            Self::Bike | Self::Swim | Self::Elliptical | Self::Rowing => {
                "Low-impact aerobic cross-training at easy effort."
            }
            Self::Walk | Self::Hike => "Easy time on feet without the impact of running.",
            Self::Strength => {
                "Strength work for runners: legs, hips and core, controlled form, no training to failure."
            }
            Self::Yoga | Self::Pilates | Self::Mobility => {
                "Mobility, flexibility and core control at an easy effort."
            }
        }
    }

    /// Seconds per km at an easy effort, to turn a written distance into time; `None` where a
    /// distance means nothing (a gym session).
    fn easy_pace(self) -> Option<u32> {
        match self {
            Self::Bike => Some(144),
            Self::Swim => Some(1200),
            Self::Rowing => Some(270),
            Self::Walk => Some(600),
            Self::Hike => Some(720),
            Self::CrossTraining
            | Self::Elliptical
            | Self::Strength
            | Self::Yoga
            | Self::Pilates
            | Self::Mobility => None,
        }
    }

    /// (seconds, metres) of the written amount; a distance without a pace is a default half hour.
    fn measure(self, amount: Amount) -> (u32, Option<u32>) {
        match (amount, self.easy_pace()) {
            (Amount::Seconds(s), _) => (s, None),
            (Amount::Meters(m), Some(pace)) => (time_for(m, pace), Some(m)),
            (Amount::Meters(_), None) => (1800, None),
        }
    }
}

/// A session plus the pace written on its line ("@ 4:20/km" or "@ 5:23-6:03/km").
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Planned {
    pub session: Session,
    /// (fast, slow) seconds per km; equal when a single pace was written.
    pub pace: Option<(u32, u32)>,
}

/// Whole-second paces used for every duration/distance conversion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PaceSet {
    pub easy_fast: u32,
    pub easy_slow: u32,
    pub easy: u32,
    pub marathon: u32,
    pub threshold: u32,
    pub interval: u32,
    pub repetition: u32,
    pub vdot: f64,
    /// True when the paces come from the athlete's recent race (then they are shown).
    pub from_race: bool,
}

fn secs(x: f64) -> u32 {
    if x.is_finite() {
        x.round().clamp(60.0, 3600.0) as u32
    } else {
        600
    }
}

impl PaceSet {
    pub(crate) fn from_vdot(vdot: f64, from_race: bool) -> PaceSet {
        let p = training_paces(vdot);
        let easy_fast = secs(p.easy_min);
        let easy_slow = secs(p.easy_max).max(easy_fast);
        PaceSet {
            easy_fast,
            easy_slow,
            easy: (easy_fast + easy_slow) / 2,
            marathon: secs(p.marathon),
            threshold: secs(p.threshold),
            interval: secs(p.interval),
            repetition: secs(p.repetition),
            vdot,
            from_race,
        }
    }

    pub(crate) fn race_pace(&self, meters: u32) -> u32 {
        if meters == 0 {
            return self.threshold;
        }
        secs(predict_time_s(self.vdot, f64::from(meters)) * 1000.0 / f64::from(meters))
    }
}

/// Workout content before it is placed on a week/day.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Built {
    pub name: String,
    pub description: String,
    pub workout_type: &'static str,
    pub sub_type: &'static str,
    pub blocks: Vec<ContentBlock>,
}

impl Built {
    pub(crate) fn duration(&self) -> u32 {
        self.blocks.iter().map(|b| b.duration_seconds).sum()
    }
    pub(crate) fn distance(&self) -> u32 {
        self.blocks.iter().filter_map(|b| b.distance_meters).sum()
    }
}

fn dist_for(secs: u32, pace: u32) -> u32 {
    let pace = u64::from(pace.max(1));
    ((u64::from(secs) * 1000 + pace / 2) / pace).min(u64::from(u32::MAX)) as u32
}

fn time_for(meters: u32, pace: u32) -> u32 {
    ((u64::from(meters) * u64::from(pace) + 500) / 1000).min(u64::from(u32::MAX)) as u32
}

/// (seconds, metres) of an amount run at `pace`.
pub(crate) fn amount_pair(a: Amount, pace: u32) -> (u32, u32) {
    match a {
        Amount::Meters(m) => (time_for(m, pace), m),
        Amount::Seconds(s) => (s, dist_for(s, pace)),
    }
}

pub(crate) fn pace_range(fast: u32, slow: u32) -> PaceRange {
    let (fast, slow) = (fast.min(slow), fast.max(slow));
    PaceRange {
        min_seconds_per_km: fast,
        max_seconds_per_km: slow,
        per_km: format!(
            "{}-{}",
            format_pace(f64::from(fast)),
            format_pace(f64::from(slow))
        ),
    }
}

pub(crate) fn pace_text(p: (u32, u32)) -> String {
    if p.0 == p.1 {
        format!("{}/km", format_pace(f64::from(p.0)))
    } else {
        format!(
            "{}-{}/km",
            format_pace(f64::from(p.0)),
            format_pace(f64::from(p.1))
        )
    }
}

fn block(
    kind: &str,
    duration: u32,
    meters: Option<u32>,
    repeat: Option<u32>,
    target: Option<PaceRange>,
    desc: String,
) -> ContentBlock {
    ContentBlock {
        block_type: kind.to_string(),
        duration_seconds: duration,
        distance_meters: meters,
        repeat,
        target_pace: target,
        description: Some(desc),
    }
}

/// Warm-up and cool-down minutes by level: longer for fitter runners (§1.8 structures).
fn wu_cd(level: Level) -> (u32, u32) {
    match level {
        Level::Beginner => (600, 300),
        Level::Intermediate => (900, 600),
        Level::Advanced => (1200, 600),
    }
}

/// Builds the blocks, name and description of one session.
pub(crate) fn build(p: &Planned, paces: &PaceSet, level: Level) -> Built {
    build_with::<true>(p, paces, level)
}

/// The session's blocks with their durations and distances, for sizing a week: names,
/// descriptions and pace targets are left empty (formatting them was most of a draft's time).
pub(crate) fn measure(p: &Planned, paces: &PaceSet, level: Level) -> Built {
    build_with::<false>(p, paces, level)
}

/// One copy with the texts, one without (no branch per text at run time).
fn build_with<const WORDS: bool>(p: &Planned, paces: &PaceSet, level: Level) -> Built {
    let words = WORDS;
    macro_rules! words {
        ($($arg:tt)*) => {
            if words { format!($($arg)*) } else { String::new() }
        };
    }
    // Pace the main work at the written pace, else at the kind's default.
    let explicit = p.pace;
    let center = |default: u32| {
        explicit
            .map(|(f, s)| (f + s) / 2)
            .unwrap_or(default)
            .max(60)
    };
    let show = paces.from_race || explicit.is_some();
    let target = |c: u32, half: u32| -> Option<PaceRange> {
        if !show || !words {
            return None;
        }
        Some(match explicit {
            Some((f, s)) if f != s => pace_range(f, s),
            _ => pace_range(c.saturating_sub(half), c + half),
        })
    };
    let at = |c: u32| {
        if show {
            words!(" @ {}", pace_text((c, c)))
        } else {
            String::new()
        }
    };
    let easy_target = || {
        if !show || !words {
            None
        } else {
            Some(match explicit {
                Some((f, s)) if f != s => pace_range(f, s),
                Some((f, _)) => pace_range(f.saturating_sub(10), f + 10),
                None => pace_range(paces.easy_fast, paces.easy_slow),
            })
        }
    };
    let (wu, cd) = wu_cd(level);
    let warm = |blocks: &mut Vec<ContentBlock>| {
        blocks.push(block(
            "warmup",
            wu,
            Some(dist_for(wu, paces.easy)),
            None,
            None,
            words!("{} min easy", wu / 60),
        ));
    };
    let cool = |blocks: &mut Vec<ContentBlock>| {
        blocks.push(block(
            "cooldown",
            cd,
            Some(dist_for(cd, paces.easy)),
            None,
            None,
            words!("{} min easy", cd / 60),
        ));
    };
    let mut blocks = Vec::new();
    let (name, description, workout_type, sub_type) = match &p.session {
        Session::Easy { amount, strides } => {
            let c = center(paces.easy);
            let (t, d) = amount_pair(*amount, c);
            blocks.push(block(
                "main",
                t,
                Some(d),
                None,
                easy_target(),
                "Easy, conversational running".into(),
            ));
            let mut name = words!("Easy Run {}", format_amount(*amount));
            let mut desc = "Relaxed aerobic running at a conversational pace; builds the base with little fatigue.".to_string();
            if *strides > 0 {
                let n = *strides;
                let fast = dist_for(20, paces.repetition);
                let jog = dist_for(60, paces.easy_slow);
                blocks.push(block(
                    "main",
                    n * 20 + (n - 1) * 60,
                    Some(n * fast + (n - 1) * jog),
                    Some(n),
                    None,
                    // `hard_in` recognises strides by this prefix, so it stays when measuring
                    if words {
                        format!("Strides: {n} x 20 s quick and relaxed, 60 s easy jog between")
                    } else {
                        "Strides".to_owned()
                    },
                ));
                name.push_str(" + Strides");
                desc.push_str(" Finish with short relaxed strides to keep leg speed and economy.");
            }
            (name, desc, "run", "easy-run")
        }
        Session::Recovery { amount } => {
            let c = center(paces.easy_slow);
            let (t, d) = amount_pair(*amount, c);
            let tg = if show && words {
                Some(pace_range(c, c + 20))
            } else {
                None
            };
            blocks.push(block(
                "main",
                t,
                Some(d),
                None,
                tg,
                "Very easy recovery running".into(),
            ));
            (
                words!("Recovery Run {}", format_amount(*amount)),
                "Short, very easy run to loosen up after the long run; slower than normal easy pace.".into(),
                "run",
                "recovery-run",
            )
        }
        Session::Long { amount } => {
            let c = center(paces.easy);
            let (t, d) = amount_pair(*amount, c);
            blocks.push(block(
                "main",
                t,
                Some(d),
                None,
                easy_target(),
                "Steady long run at easy pace".into(),
            ));
            (
                words!("Long Run {}", format_amount(*amount)),
                "The week's endurance session: steady and easy throughout, fuel and hydrate as on race day.".into(),
                "run",
                "long-run",
            )
        }
        Session::Tempo { amount } => {
            let c = center(paces.threshold);
            let (t, d) = amount_pair(*amount, c);
            warm(&mut blocks);
            blocks.push(block(
                "main",
                t,
                Some(d),
                None,
                target(c, 5),
                words!("{} steady at threshold{}", format_amount(*amount), at(c)),
            ));
            cool(&mut blocks);
            (
                words!("Tempo {}{}", format_amount(*amount), at(c)),
                words!(
                    "Comfortably hard, steady threshold running{} (a pace you could hold for about an hour); raises lactate threshold.",
                    at(c)
                ),
                "run",
                "tempo",
            )
        }
        Session::Cruise { reps, rep } => {
            let c = center(paces.threshold);
            let n = (*reps).max(1);
            let (t, d) = amount_pair(*rep, c);
            let jog = dist_for(60, paces.easy_slow);
            warm(&mut blocks);
            blocks.push(block(
                "main",
                n * t + (n - 1) * 60,
                Some(n * d + (n - 1) * jog),
                Some(n),
                target(c, 5),
                words!(
                    "{n} x {} at threshold{}, 1 min jog between",
                    format_amount(*rep),
                    at(c)
                ),
            ));
            cool(&mut blocks);
            (
                words!("Cruise Intervals {n} × {}{}", format_amount(*rep), at(c)),
                words!(
                    "Threshold repeats{} with short jogs: more time at threshold for the same strain.",
                    at(c)
                ),
                "run",
                "cruise-intervals",
            )
        }
        Session::Intervals { reps, rep } => {
            let c = center(paces.interval);
            let n = (*reps).max(1);
            let (t, d) = amount_pair(*rep, c);
            let jog = dist_for(t, paces.easy_slow);
            warm(&mut blocks);
            blocks.push(block(
                "main",
                n * t + (n - 1) * t,
                Some(n * d + (n - 1) * jog),
                Some(n),
                target(c, 3),
                words!(
                    "{n} x {} hard{}, equal-time jog between",
                    format_amount(*rep),
                    at(c)
                ),
            ));
            cool(&mut blocks);
            (
                words!("Intervals {n} × {}{}", format_amount(*rep), at(c)),
                words!(
                    "VO2max intervals{}: hard but controlled, recover with an easy jog as long as the rep.",
                    at(c)
                ),
                "run",
                "intervals",
            )
        }
        Session::Repetition { reps, rep } => {
            let c = center(paces.repetition);
            let n = (*reps).max(1);
            let (t, d) = amount_pair(*rep, c);
            let jog_t = time_for(d, paces.easy_slow);
            warm(&mut blocks);
            blocks.push(block(
                "main",
                n * t + (n - 1) * jog_t,
                Some(n * d + (n - 1) * d),
                Some(n),
                target(c, 3),
                words!(
                    "{n} x {} fast and relaxed{}, equal-distance jog between",
                    format_amount(*rep),
                    at(c)
                ),
            ));
            cool(&mut blocks);
            (
                words!("Repetitions {n} × {}{}", format_amount(*rep), at(c)),
                words!(
                    "Short fast repetitions{} with full recovery for speed and running economy.",
                    at(c)
                ),
                "run",
                "repetition",
            )
        }
        Session::Hills { reps, rep_s } => {
            let n = (*reps).max(1);
            let up = dist_for(*rep_s, paces.threshold);
            warm(&mut blocks);
            blocks.push(block(
                "main",
                n * rep_s + (n - 1) * 2 * rep_s,
                Some(n * up + (n - 1) * up),
                Some(n),
                None,
                words!(
                    "{n} x {} uphill at hard effort, easy jog back down",
                    format_amount(Amount::Seconds(*rep_s))
                ),
            ));
            cool(&mut blocks);
            (
                words!("Hill Repeats {n} × {}", format_amount(Amount::Seconds(*rep_s))),
                "Hill repeats build strength and economy at low injury risk: drive the arms, jog down easy.".into(),
                "run",
                "hills",
            )
        }
        Session::Fartlek { reps, rep_s } => {
            let n = (*reps).max(1);
            let c = center((paces.threshold + paces.interval) / 2);
            let hard = dist_for(*rep_s, c);
            let easy = dist_for(*rep_s, paces.easy);
            warm(&mut blocks);
            blocks.push(block(
                "main",
                n * rep_s + (n - 1) * rep_s,
                Some(n * hard + (n - 1) * easy),
                Some(n),
                target(c, 10),
                words!(
                    "{n} x {} brisk, same time easy between",
                    format_amount(Amount::Seconds(*rep_s))
                ),
            ));
            cool(&mut blocks);
            (
                words!("Fartlek {n} × {}", format_amount(Amount::Seconds(*rep_s))),
                "Speed play: brisk surges by feel with easy running between; a gentle introduction to faster running.".into(),
                "run",
                "fartlek",
            )
        }
        Session::MarathonPace { amount } => {
            let c = center(paces.marathon);
            let (t, d) = amount_pair(*amount, c);
            warm(&mut blocks);
            blocks.push(block(
                "main",
                t,
                Some(d),
                None,
                target(c, 5),
                words!("{} at marathon pace{}", format_amount(*amount), at(c)),
            ));
            cool(&mut blocks);
            (
                words!("Marathon Pace {}{}", format_amount(*amount), at(c)),
                words!(
                    "Steady running at goal marathon pace{}; practise fuelling and rhythm.",
                    at(c)
                ),
                "run",
                "marathon-pace",
            )
        }
        Session::Race { meters, label } => {
            let c = center(paces.race_pace(*meters));
            let (rw, rc) = match *meters {
                0..=10_999 => (900, 600),
                11_000..=30_000 => (600, 300),
                _ => (300, 0),
            };
            blocks.push(block(
                "warmup",
                rw,
                Some(dist_for(rw, paces.easy)),
                None,
                None,
                words!("{} min easy with a few strides", rw / 60),
            ));
            let t = time_for(*meters, c);
            blocks.push(block(
                "main",
                t,
                Some(*meters),
                None,
                target(c, 3),
                words!("{label} race"),
            ));
            if rc > 0 {
                blocks.push(block(
                    "cooldown",
                    rc,
                    Some(dist_for(rc, paces.easy)),
                    None,
                    None,
                    words!("{} min easy", rc / 60),
                ));
            }
            let predicted = if show {
                words!(" Goal pace {} (about {}).", pace_text((c, c)), clock(t))
            } else {
                String::new()
            };
            (
                words!("Race Day — {label}"),
                words!(
                    "Race day: start controlled, settle into goal effort, finish strong.{predicted}"
                ),
                "race",
                "race",
            )
        }
        Session::Cross { activity, amount } => {
            let (seconds, meters) = activity.measure(*amount);
            blocks.push(block(
                "main",
                seconds,
                meters,
                None,
                None,
                words!("{} at easy effort", activity.title()),
            ));
            (
                words!("{} {}", activity.title(), format_amount(*amount)),
                words!("{}", activity.description()),
                "cross-training",
                "cross-training",
            )
        }
    };
    Built {
        name,
        description,
        workout_type,
        sub_type,
        blocks,
    }
}

/// "1:31:35" or "19:57".
pub(crate) fn clock(total: u32) -> String {
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// The text after "Day: " on a draft line; [`crate::parse`] reads it back.
pub(crate) fn render(p: &Planned) -> String {
    let pace = p
        .pace
        .map(|pc| format!(" @ {}", pace_text(pc)))
        .unwrap_or_default();
    let a = |x: &Amount| format_amount(*x);
    match &p.session {
        Session::Easy { amount, strides } => {
            let s = if *strides > 0 {
                format!(" + {strides} x 20s strides")
            } else {
                String::new()
            };
            format!("Easy run {}{pace}{s}", a(amount))
        }
        Session::Recovery { amount } => format!("Recovery run {}{pace}", a(amount)),
        Session::Long { amount } => format!("Long run {}{pace}", a(amount)),
        Session::Tempo { amount } => format!("Tempo run {}{pace}", a(amount)),
        Session::Cruise { reps, rep } => format!("Cruise intervals {reps} x {}{pace}", a(rep)),
        Session::Intervals { reps, rep } => format!("Intervals {reps} x {}{pace}", a(rep)),
        Session::Repetition { reps, rep } => format!("Repetitions {reps} x {}{pace}", a(rep)),
        Session::Hills { reps, rep_s } => {
            format!("Hill repeats {reps} x {}", a(&Amount::Seconds(*rep_s)))
        }
        Session::Fartlek { reps, rep_s } => {
            format!("Fartlek {reps} x {}", a(&Amount::Seconds(*rep_s)))
        }
        Session::MarathonPace { amount } => format!("Marathon pace {}{pace}", a(amount)),
        Session::Race { label, .. } => format!("Race — {label}{pace}"),
        Session::Cross { activity, amount } => format!("{} {}", activity.title(), a(amount)),
    }
}
