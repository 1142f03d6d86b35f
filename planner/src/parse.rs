//! Step 2: reading a (possibly edited) draft back into workouts.

use std::collections::BTreeMap;

use chrono::Weekday;

use crate::engine::{Ctx, Phase, context, focus_for};
use crate::prompt::RaceDistance;
use crate::session::{Activity, Planned, Session};
use crate::text::{
    Amount, Tok, amount_at, day_name, format_amount, tokenize, weekday_from_word, word,
};
use crate::{Plan, PlanInput, WeekInfo};

#[derive(Default)]
struct WeekAcc {
    phase: Option<Phase>,
    focus: Option<String>,
    days: BTreeMap<usize, (Weekday, Planned)>,
}

enum Cur {
    Before,
    Week(u32),
    Ignored,
}

/// Strips markdown emphasis, headings and list bullets.
fn clean(raw: &str) -> String {
    let s = raw.replace("**", "").replace("__", "");
    let mut t = s.trim().trim_start_matches('#').trim();
    loop {
        let before = t;
        for b in ["- ", "* ", "• ", "+ ", "– ", "— "] {
            if let Some(r) = t.strip_prefix(b) {
                t = r.trim_start();
            }
        }
        // "1. " / "1) " numbering
        let digits = t.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0
            && let Some(r) = t[digits..]
                .strip_prefix(". ")
                .or_else(|| t[digits..].strip_prefix(") "))
        {
            t = r.trim_start();
        }
        if before == t {
            break;
        }
    }
    t.trim().to_string()
}

fn week_header(line: &str) -> Option<(u32, String)> {
    let lower = line.to_lowercase();
    let rest = lower.strip_prefix("week")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let rest = rest.trim_start();
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() {
        return None;
    }
    let n = digits.parse::<u32>().unwrap_or(u32::MAX);
    // Keep the original casing for the focus text.
    let offset = lower.len() - rest.len() + digits.len();
    Some((n, line.get(offset..).unwrap_or("").to_string()))
}

fn header_phase_focus(rest: &str) -> (Option<Phase>, Option<String>) {
    let (inside, after) = match (rest.find('('), rest.find(')')) {
        (Some(a), Some(b)) if a < b => (&rest[a + 1..b], &rest[b + 1..]),
        _ => ("", rest),
    };
    let phase_in = |s: &str| {
        tokenize(s).iter().find_map(|t| match t {
            Tok::Word(w) => Phase::from_word(w),
            _ => None,
        })
    };
    let phase = phase_in(inside).or_else(|| phase_in(after));
    let focus = after
        .trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ':' | '-' | '–' | '—'))
        .trim();
    (
        phase,
        if focus.is_empty() {
            None
        } else {
            Some(focus.to_string())
        },
    )
}

fn day_line(line: &str) -> Option<(Weekday, String)> {
    let w: String = line.chars().take_while(|c| c.is_alphabetic()).collect();
    let d = weekday_from_word(&w.to_lowercase())?;
    let rest = line[w.len()..].trim_start();
    let mut chars = rest.chars();
    match chars.next() {
        Some(':' | '-' | '–' | '—') => Some((d, chars.as_str().trim().to_string())),
        _ => None,
    }
}

fn is_prose(line: &str) -> bool {
    let l = line.to_lowercase();
    const PREFIXES: &[&str] = &[
        "phase",
        "weeks",
        "training principle",
        "principle",
        "note",
        "tip",
        "focus",
        "total",
        "race:",
        "runs per week",
        "paces",
        "predicted",
        "intensity",
        "goal",
        "summary",
        "key",
    ];
    PREFIXES.iter().any(|p| l.starts_with(p)) || l.ends_with(':')
}

/// Reads "M:SS" (optionally "M:SS-M:SS") and a unit right after an '@'.
fn read_pace(s: &str) -> Option<((u32, u32), usize)> {
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() && b[i] == ' ' {
        i += 1;
    }
    let one = |i: &mut usize| -> Option<u32> {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        let m: u32 = b[start..*i].iter().collect::<String>().parse().ok()?;
        if b.get(*i) != Some(&':') {
            return None;
        }
        *i += 1;
        let s0 = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        if *i - s0 != 2 {
            return None;
        }
        let sec: u32 = b[s0..*i].iter().collect::<String>().parse().ok()?;
        Some(m * 60 + sec)
    };
    let first = one(&mut i)?;
    let mut second = first;
    let mut j = i;
    while j < b.len() && b[j] == ' ' {
        j += 1;
    }
    if j < b.len() && matches!(b[j], '-' | '–' | '—') {
        let mut k = j + 1;
        while k < b.len() && b[k] == ' ' {
            k += 1;
        }
        if let Some(x) = one(&mut k) {
            second = x;
            i = k;
        }
    }
    let tail: String = b[i..].iter().collect::<String>().to_lowercase();
    let mut per_mile = false;
    for (unit, mile) in [
        ("/km", false),
        (" /km", false),
        ("/mi", true),
        (" /mi", true),
        (" per km", false),
        (" per mile", true),
        (" min/km", false),
    ] {
        if tail.starts_with(unit) {
            i += unit.chars().count();
            per_mile = mile;
            if mile && tail.get(unit.len()..).is_some_and(|t| t.starts_with("le")) {
                i += 2;
            }
            break;
        }
    }
    let conv = |x: u32| {
        if per_mile {
            (f64::from(x) / 1.609_344).round() as u32
        } else {
            x
        }
    };
    let (a, c) = (conv(first), conv(second));
    Some(((a.min(c), a.max(c)), i))
}

struct Parsed {
    planned: Option<Planned>,
    defaulted: Option<String>,
    /// Amounts and repetition counts no session could have ("0 km", "999 x 400m"), left out.
    implausible: Vec<String>,
    /// No known session was named: the amount was read as an easy run.
    guessed: bool,
}

/// Bounds of one session's amounts: beyond them a number is a typo, not a workout.
const MAX_SESSION_METERS: u32 = 300_000;
const MAX_SESSION_SECONDS: u32 = 48 * 3600;
const MAX_REPS: f64 = 50.0;

/// Tokens as the draft wrote them, near enough: "0 km", "999 x 800 m".
fn written(toks: &[Tok]) -> String {
    let mut out = String::new();
    for t in toks {
        match t {
            Tok::Num(n) => out.push_str(&format!(" {n}")),
            Tok::Word(w) => out.push_str(&format!(" {w}")),
            Tok::Sym(c) => out.push(*c),
        }
    }
    out.trim().to_owned()
}

fn plausible(a: Amount) -> bool {
    match a {
        Amount::Meters(m) => (1..=MAX_SESSION_METERS).contains(&m),
        Amount::Seconds(s) => (1..=MAX_SESSION_SECONDS).contains(&s),
    }
}

/// Reads the text after "Day:"; `None` means unreadable.
fn parse_session(text: &str, ctx: &Ctx) -> Option<Parsed> {
    // Drop parenthesised remarks: "(predicted 1:31:35)".
    let mut s = String::new();
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => s.push(c),
            _ => {}
        }
    }
    // Pull out "@ pace".
    let mut pace = None;
    if let Some(at) = s.find('@') {
        let after = &s[at + 1..];
        if let Some((p, used)) = read_pace(after) {
            pace = Some(p);
            let used_bytes: usize = after.chars().take(used).map(char::len_utf8).sum();
            s = format!("{} {}", &s[..at], &after[used_bytes..]);
        } else {
            s = format!("{} {}", &s[..at], after);
        }
    }
    let toks = tokenize(&s);
    let words: Vec<&str> = toks.iter().filter_map(|t| word(Some(t))).collect();
    let has = |w: &str| words.contains(&w);
    let has_prefix = |p: &str| words.iter().any(|w| w.starts_with(p));
    let first = words.first().copied().unwrap_or("");
    if first == "rest" || first == "off" || (first == "day" && words.get(1) == Some(&"off")) {
        return Some(Parsed {
            planned: None,
            defaulted: None,
            implausible: Vec::new(),
            guessed: false,
        });
    }
    // Reps ("6 x 800m") and plain amounts.
    let mut reps: Option<(u32, Amount)> = None;
    let mut plain: Vec<Amount> = Vec::new();
    let mut implausible = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if let (Some(Tok::Num(n)), Some("x")) = (toks.get(i), word(toks.get(i + 1)))
            && let Some((a, next)) = amount_at(&toks, i + 2)
        {
            if reps.is_none() {
                if !(1.0..=MAX_REPS).contains(n) || n.fract() != 0.0 || !plausible(a) {
                    implausible.push(written(&toks[i..next]));
                } else {
                    reps = Some((*n as u32, a));
                }
            }
            i = next;
            continue;
        }
        if let Some((a, next)) = amount_at(&toks, i) {
            if plausible(a) {
                plain.push(a);
            } else {
                implausible.push(written(&toks[i..next]));
            }
            i = next;
            continue;
        }
        i += 1;
    }
    let mut defaulted = None;
    let mut guessed = false;
    let mut main = |default: Amount| -> Amount {
        match plain.first() {
            Some(a) => *a,
            None => {
                defaulted = Some(format_amount(default));
                default
            }
        }
    };
    let secs_of = |a: Amount, pace: u32| match a {
        Amount::Seconds(s) => s,
        Amount::Meters(m) => ((u64::from(m) * u64::from(pace) + 500) / 1000) as u32,
    };
    let p = &ctx.paces;
    let race_word = words.iter().enumerate().any(|(k, w)| {
        (*w == "race" || *w == "racing")
            && !matches!(words.get(k + 1), Some(&"pace" | &"effort" | &"simulation"))
    });
    let session = if let Some(activity) = aerobic_cross(&words) {
        Session::Cross {
            activity,
            amount: main(Amount::Seconds(1800)),
        }
    } else if race_word {
        let named = (0..toks.len()).find_map(|k| race_name(&toks, k));
        let (meters, label) = match (named, plain.first()) {
            (Some(r), _) => (r.meters(), r.label().to_string()),
            (None, Some(Amount::Meters(m))) => (*m, format_amount(Amount::Meters(*m))),
            _ => {
                let r = ctx.race.unwrap_or(RaceDistance::FiveK);
                (r.meters(), r.label().to_string())
            }
        };
        Session::Race { meters, label }
    } else if has("long") {
        Session::Long {
            amount: main(Amount::Seconds(3600)),
        }
    } else if (has("marathon") && (has("pace") || has("tempo"))) || has("mp") {
        Session::MarathonPace {
            amount: main(Amount::Seconds(1800)),
        }
    } else if has_prefix("cruise") || ((has("tempo") || has("threshold")) && reps.is_some()) {
        let (n, rep) = reps.unwrap_or((3, Amount::Meters(1600)));
        Session::Cruise { reps: n, rep }
    } else if has_prefix("interval") || has_prefix("vo2") || has("track") {
        let (n, rep) = reps.unwrap_or_else(|| {
            defaulted = Some("5 x 800m".into());
            (5, Amount::Meters(800))
        });
        Session::Intervals { reps: n, rep }
    } else if has("tempo") || has("threshold") {
        Session::Tempo {
            amount: main(Amount::Seconds(1200)),
        }
    } else if has_prefix("repetition") || has("reps") || has("sprints") {
        let (n, rep) = reps.unwrap_or_else(|| {
            defaulted = Some("8 x 200m".into());
            (8, Amount::Meters(200))
        });
        Session::Repetition { reps: n, rep }
    } else if has_prefix("hill") {
        let (n, rep) = reps.unwrap_or_else(|| {
            defaulted = Some("8 x 60s".into());
            (8, Amount::Seconds(60))
        });
        Session::Hills {
            reps: n,
            rep_s: secs_of(rep, p.threshold).max(10),
        }
    } else if has("fartlek") {
        let (n, rep) = reps.unwrap_or_else(|| {
            defaulted = Some("6 x 2 min".into());
            (6, Amount::Seconds(120))
        });
        Session::Fartlek {
            reps: n,
            rep_s: secs_of(rep, p.threshold).max(10),
        }
    } else if has("recovery") {
        Session::Recovery {
            amount: main(Amount::Seconds(1800)),
        }
    } else if has("easy")
        || has("aerobic")
        || has("jog")
        || has("run")
        || has("shakeout")
        || has_prefix("stride")
        || has("steady")
    {
        let strides = if has_prefix("stride") {
            reps.map(|(n, _)| n).unwrap_or(6)
        } else {
            0
        };
        Session::Easy {
            amount: main(Amount::Seconds(2400)),
            strides,
        }
    } else if let Some(activity) = other_activity(&words) {
        Session::Cross {
            activity,
            amount: main(Amount::Seconds(1800)),
        }
    } else if let Some((n, rep)) = reps {
        match rep {
            Amount::Meters(m) if m <= 400 => Session::Repetition { reps: n, rep },
            _ => Session::Intervals { reps: n, rep },
        }
    } else if let Some(a) = plain.first() {
        // "Saturday: 10 km" is a run; "Saturday: Zumba 45 min" may not be
        guessed = words.iter().any(|w| !UNIT_WORDS.contains(w));
        Session::Easy {
            amount: *a,
            strides: 0,
        }
    } else {
        return None;
    };
    Some(Parsed {
        planned: Some(Planned { session, pace }),
        defaulted,
        implausible,
        guessed,
    })
}

/// Words an amount is written with ("10 km", "1 hr 15 min", "6 x 800 m").
const UNIT_WORDS: [&str; 19] = [
    "k", "km", "kms", "m", "mi", "mile", "miles", "h", "hr", "hrs", "hour", "hours", "min", "mins",
    "minute", "minutes", "s", "sec", "x",
];

/// An aerobic activity other than running: named, it decides the day ("Bike 45 min easy").
fn aerobic_cross(words: &[&str]) -> Option<Activity> {
    let has = |ws: &[&str]| words.iter().any(|w| ws.contains(w));
    if has(&["bike", "biking", "cycling", "cycle", "spin", "spinning"]) {
        Some(Activity::Bike)
    } else if has(&["swim", "swimming", "pool"]) {
        Some(Activity::Swim)
    } else if has(&["elliptical"]) {
        Some(Activity::Elliptical)
    } else if has(&["rowing", "rower", "erg"]) {
        Some(Activity::Rowing)
    } else if words.iter().any(|w| w.starts_with("cross")) {
        Some(Activity::CrossTraining)
    } else {
        None
    }
}

/// A day without running: only when no running session is named, since "Easy run + core" or
/// "Run/walk 20 min" are runs.
fn other_activity(words: &[&str]) -> Option<Activity> {
    let has = |ws: &[&str]| words.iter().any(|w| ws.contains(w));
    if has(&[
        "strength", "weights", "gym", "lifting", "core", "circuit", "circuits",
    ]) {
        Some(Activity::Strength)
    } else if has(&["yoga"]) {
        Some(Activity::Yoga)
    } else if has(&["pilates"]) {
        Some(Activity::Pilates)
    } else if has(&["mobility", "stretching", "stretch", "flexibility"]) {
        Some(Activity::Mobility)
    } else if has(&["hike", "hiking"]) {
        Some(Activity::Hike)
    } else if has(&["walk", "walking"]) {
        Some(Activity::Walk)
    } else {
        None
    }
}

fn race_name(toks: &[Tok], k: usize) -> Option<RaceDistance> {
    let w = word(toks.get(k));
    match (toks.get(k), w) {
        (_, Some("half" | "hm" | "halfmarathon")) => Some(RaceDistance::HalfMarathon),
        (_, Some("marathon")) => {
            if k > 0 && word(toks.get(k - 1)) == Some("half") {
                Some(RaceDistance::HalfMarathon)
            } else {
                Some(RaceDistance::Marathon)
            }
        }
        (Some(Tok::Num(n)), _) if matches!(word(toks.get(k + 1)), Some("k" | "km")) => match *n {
            x if (x - 5.0).abs() < 1e-9 => Some(RaceDistance::FiveK),
            x if (x - 10.0).abs() < 1e-9 => Some(RaceDistance::TenK),
            x if (x - 21.1).abs() < 0.05 => Some(RaceDistance::HalfMarathon),
            x if (x - 42.2).abs() < 0.05 => Some(RaceDistance::Marathon),
            _ => None,
        },
        _ => None,
    }
}

/// The draft's text per week: each week header line with the lines under it, up to the next
/// week header. Lets a model be given one week at a time.
pub fn draft_sections(refined_draft: &str) -> BTreeMap<u32, String> {
    let mut out: BTreeMap<u32, String> = BTreeMap::new();
    let mut current: Option<u32> = None;
    for line in refined_draft.lines() {
        if let Some((n, _)) = week_header(&clean(line)) {
            current = Some(n);
        }
        if let Some(n) = current {
            let section = out.entry(n).or_default();
            section.push_str(line);
            section.push('\n');
        }
    }
    out
}

/// The highest week number among the draft's week headers (`Week 12: …`), if it has any.
/// Lets the API reject a generate-plan request whose `weeks` does not match its draft.
pub fn draft_weeks(refined_draft: &str) -> Option<u32> {
    refined_draft
        .lines()
        .filter_map(|l| week_header(&clean(l)))
        .map(|(n, _)| n)
        .max()
}

/// The workout sources a request may choose (seed 000 `workout_preference`).
const SOURCES: [&str; 3] = ["ai_generate", "prefer_existing", "strict_existing"];

/// The draft with a line naming its workout source, before its first week: the seed gives
/// `workout_preference` to the draft request only, so the draft text carries it (visible and
/// editable by the coach) to the plan step. `ai_generate`, the default, adds nothing.
pub fn with_workout_source(draft: String, preference: &str) -> String {
    let what = match preference {
        "prefer_existing" => "library workouts where one matches, new ones otherwise",
        "strict_existing" => "library workouts only",
        _ => return draft,
    };
    let line = format!("Workout source: {preference} ({what})");
    let mut out = String::with_capacity(draft.len() + line.len() + 2);
    let mut placed = false;
    for l in draft.split_inclusive('\n') {
        if !placed && week_header(&clean(l)).is_some() {
            out.push_str(&line);
            out.push_str("\n\n");
            placed = true;
        }
        out.push_str(l);
    }
    if !placed {
        if !out.is_empty() {
            out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
        }
        out.push_str(&line);
    }
    out
}

/// The workout source a (refined) draft names on a `Workout source:` line, if any.
pub fn workout_source(refined_draft: &str) -> Option<&'static str> {
    refined_draft.lines().find_map(|l| {
        let line = clean(l).to_lowercase();
        let rest = line.strip_prefix("workout source:")?;
        SOURCES
            .into_iter()
            .filter_map(|s| rest.find(s).map(|at| (at, s)))
            .min()
            .map(|(_, s)| s)
    })
}

pub fn build_plan(input: &PlanInput, refined_draft: &str) -> Plan {
    let ctx = context(input);
    let mut warnings = Vec::new();
    let mut weeks: BTreeMap<u32, WeekAcc> = BTreeMap::new();
    let mut cur = Cur::Before;
    for (i, raw) in refined_draft.lines().enumerate() {
        let n = i + 1;
        let line = clean(raw);
        if !line.chars().any(char::is_alphanumeric) {
            continue;
        }
        if let Some((w, rest)) = week_header(&line) {
            if w == 0 || w > ctx.weeks {
                warnings.push(format!(
                    "line {n}: week {w} is outside the plan's {} weeks; ignored",
                    ctx.weeks
                ));
                cur = Cur::Ignored;
                continue;
            }
            let (phase, focus) = header_phase_focus(&rest);
            let acc = weeks.entry(w).or_default();
            if phase.is_some() {
                acc.phase = phase;
            }
            if focus.is_some() {
                acc.focus = focus;
            }
            cur = Cur::Week(w);
            continue;
        }
        if let Some((day, rest)) = day_line(&line) {
            let w = match cur {
                Cur::Week(w) => w,
                Cur::Ignored => continue,
                Cur::Before => {
                    warnings.push(format!(
                        "line {n}: day line before any week header; ignored: \"{}\"",
                        raw.trim()
                    ));
                    continue;
                }
            };
            let Some(parsed) = parse_session(&rest, &ctx) else {
                warnings.push(format!("line {n}: could not read \"{}\"", raw.trim()));
                continue;
            };
            if !parsed.implausible.is_empty() {
                let then = parsed
                    .defaulted
                    .as_ref()
                    .map_or("left out".to_owned(), |d| format!("assumed {d}"));
                warnings.push(format!(
                    "line {n}: {} in \"{}\" is not a session's amount (1 s to 48 h, up to 300 km, 1 to 50 repetitions); {then}",
                    parsed.implausible.join(", "),
                    raw.trim()
                ));
            } else if let Some(d) = parsed.defaulted {
                warnings.push(format!(
                    "line {n}: no distance or duration in \"{}\"; assumed {d}",
                    raw.trim()
                ));
            }
            if parsed.guessed {
                warnings.push(format!(
                    "line {n}: \"{}\" names no session this planner knows; read as an easy run",
                    raw.trim()
                ));
            }
            let acc = weeks.entry(w).or_default();
            let idx = ctx.day_index(day);
            match parsed.planned {
                None => {
                    acc.days.remove(&idx);
                }
                Some(p) => {
                    if ctx.excluded.contains(&day) {
                        warnings.push(format!(
                            "line {n}: {} was excluded in the request; kept as written",
                            day_name(day)
                        ));
                    }
                    if acc.days.insert(idx, (day, p)).is_some() {
                        warnings.push(format!(
                            "line {n}: {} of week {w} appears twice; this line replaces the earlier one",
                            day_name(day)
                        ));
                    }
                }
            }
            continue;
        }
        if is_prose(&line) {
            continue;
        }
        if matches!(cur, Cur::Week(_)) {
            warnings.push(format!("line {n}: could not read \"{}\"", raw.trim()));
        }
    }
    let mut workouts = Vec::new();
    let mut weekly_info = BTreeMap::new();
    for w in 1..=ctx.weeks {
        let acc = weeks.get(&w);
        if acc.is_none() {
            warnings.push(format!(
                "week {w}: not found in the draft; no workouts for it"
            ));
        }
        let phase = acc.and_then(|a| a.phase).unwrap_or_else(|| ctx.phase_of(w));
        let race_week = ctx.race.is_some() && w == ctx.weeks;
        let focus = acc
            .and_then(|a| a.focus.clone())
            .unwrap_or_else(|| focus_for(&ctx, phase, false, race_week));
        let mut meters: u64 = 0;
        if let Some(a) = acc {
            for (day, p) in a.days.values() {
                let wo = ctx.to_workout(w, phase.as_str(), *day, p);
                // the week's running distance: a swim's metres are not
                if wo.workout_type != "cross-training" {
                    meters += u64::from(wo.target_distance_in_meters);
                }
                workouts.push(wo);
            }
        }
        weekly_info.insert(
            w,
            WeekInfo {
                phase: phase.as_str().to_string(),
                focus,
                total_distance_km: ((meters as f64) / 100.0).round() / 10.0,
            },
        );
    }
    Plan {
        workouts,
        weekly_info,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_markup() {
        assert_eq!(
            clean("- **Thursday:** Tempo run 40 min"),
            "Thursday: Tempo run 40 min"
        );
        assert_eq!(clean("* Monday: Rest"), "Monday: Rest");
        assert_eq!(clean("## Week 3: Build"), "Week 3: Build");
        assert_eq!(clean("1. Tuesday: Easy 8 km"), "Tuesday: Easy 8 km");
    }

    #[test]
    fn reads_paces() {
        assert_eq!(read_pace(" 4:20/km").map(|x| x.0), Some((260, 260)));
        assert_eq!(read_pace(" 5:23-6:03/km").map(|x| x.0), Some((323, 363)));
        assert_eq!(read_pace(" 7:00/mi").map(|x| x.0), Some((261, 261)));
        assert_eq!(read_pace(" conversational pace"), None);
    }

    #[test]
    fn draft_sections_split_at_week_headers() {
        let s = draft_sections("Title\nWeek 1: a\n- Mon: Easy 5 km\nWeek 2: b\n- Tue: Rest");
        assert_eq!(s.len(), 2);
        assert_eq!(
            s.get(&1).map(String::as_str),
            Some("Week 1: a\n- Mon: Easy 5 km\n")
        );
        assert_eq!(
            s.get(&2).map(String::as_str),
            Some("Week 2: b\n- Tue: Rest\n")
        );
    }

    #[test]
    fn draft_weeks_reads_the_last_header() {
        assert_eq!(
            draft_weeks("Title\n**Week 1:** base\n- Mon: Easy 5 km\nWeek 12 (taper): x"),
            Some(12)
        );
        assert_eq!(draft_weeks("no headers here"), None);
    }

    #[test]
    fn headers() {
        let (n, rest) =
            week_header("Week 3 (build, 40 km): Threshold work").unwrap_or((0, String::new()));
        assert_eq!(n, 3);
        let (p, f) = header_phase_focus(&rest);
        assert_eq!(p, Some(Phase::Build));
        assert_eq!(f.as_deref(), Some("Threshold work"));
        assert_eq!(week_header("Weeks 1-3: base"), None);
        let (n, rest) = week_header("Week 12:").unwrap_or((0, String::new()));
        assert_eq!((n, header_phase_focus(&rest)), (12, (None, None)));
    }

    #[test]
    fn the_workout_source_line_goes_before_the_first_week_and_is_read_back() {
        let draft = "**4-Week Plan**\n\nIntro.\n\nWeek 1: Base\nMonday: Easy 5 km\n";
        let with = with_workout_source(draft.to_owned(), "strict_existing");
        assert_eq!(
            with,
            "**4-Week Plan**\n\nIntro.\n\nWorkout source: strict_existing (library workouts only)\n\nWeek 1: Base\nMonday: Easy 5 km\n"
        );
        assert_eq!(workout_source(&with), Some("strict_existing"));
        assert_eq!(draft_weeks(&with), Some(1));
        assert_eq!(with_workout_source(draft.to_owned(), "ai_generate"), draft);
        assert_eq!(workout_source(draft), None);
        // edited by the coach, in markup
        assert_eq!(
            workout_source("- **Workout source:** Prefer_Existing please"),
            Some("prefer_existing")
        );
        assert_eq!(
            with_workout_source("no weeks".to_owned(), "prefer_existing"),
            "no weeks\n\nWorkout source: prefer_existing (library workouts where one matches, new ones otherwise)"
        );
    }
}
