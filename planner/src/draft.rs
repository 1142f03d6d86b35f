//! Step 1: the readable draft. Every line a coach may edit is in the
//! grammar that [`crate::build_plan`] reads (see README "Draft format").

use crate::engine::{Ctx, Phase, WeekPlan, context, generate};
use crate::session::{clock, measure, pace_text};
use crate::text::day_name;
use crate::vdot::format_pace;
use crate::{Draft, Level, PlanInput};

fn cap_level(l: Level) -> &'static str {
    match l {
        Level::Beginner => "Beginner",
        Level::Intermediate => "Intermediate",
        Level::Advanced => "Advanced",
    }
}

fn phase_blurb(p: Phase) -> &'static str {
    match p {
        Phase::Base => "Base: aerobic foundation, easy running, strides and light hills",
        Phase::Build => "Build: early quality while volume grows",
        Phase::Peak => "Peak: race-specific quality at the highest volume",
        Phase::Taper => "Taper: volume drops, intensity stays, arrive fresh",
    }
}

/// Rounds metres to 0.1 km for display (e.g. 29950 -> "30.0").
fn km_text(m: u32) -> String {
    let tenths = (m + 50) / 100;
    format!("{}.{}", tenths / 10, tenths % 10)
}

pub fn write_draft(input: &PlanInput) -> Draft {
    let ctx = context(input);
    let weeks = generate(&ctx);
    let title = match ctx.race {
        Some(r) => format!(
            "{}-Week {} Plan — {}",
            ctx.weeks,
            r.label(),
            cap_level(ctx.level)
        ),
        None => format!("{}-Week Running Plan — {}", ctx.weeks, cap_level(ctx.level)),
    };
    let mut out: Vec<String> = vec![title.clone(), String::new()];
    let principle = input.training_principle.trim();
    if !principle.is_empty() {
        out.push(format!("Training principle: {principle}"));
    }
    header_lines(&ctx, &mut out);
    out.push(String::new());
    let mut phase_no = 0;
    let mut said: Vec<String> = Vec::new();
    for (i, w) in weeks.iter().enumerate() {
        if i == 0 || weeks[i - 1].phase != w.phase {
            phase_no += 1;
            let end = weeks[i..].iter().take_while(|x| x.phase == w.phase).count() + i;
            let range = if end == i + 1 {
                format!("Week {}", i + 1)
            } else {
                format!("Weeks {}-{}", i + 1, end)
            };
            out.push(format!(
                "Phase {phase_no} ({range}): {}",
                phase_blurb(w.phase)
            ));
        }
        week_lines(&ctx, w, &mut out, &mut said);
        out.push(String::new());
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    Draft {
        title,
        text: out.join("\n") + "\n",
    }
}

fn header_lines(ctx: &Ctx, out: &mut Vec<String>) {
    if let Some(r) = ctx.race {
        let when = ctx
            .date_for(ctx.weeks, ctx.race_day)
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        out.push(format!(
            "Race: {} on {} of week {}{when}",
            r.label(),
            day_name(ctx.race_day),
            ctx.weeks
        ));
    }
    let days: Vec<&str> = ctx.allowed.iter().map(|d| day_name(*d)).collect();
    let mut runs = format!(
        "Runs per week: {}; long run on {}",
        ctx.days_per_week,
        day_name(ctx.long_day)
    );
    if !ctx.excluded.is_empty() {
        let ex: Vec<&str> = ctx.excluded.iter().map(|d| day_name(*d)).collect();
        runs.push_str(&format!("; no running on {}", ex.join(", ")));
    }
    if days.len() < 7 {
        runs.push_str(&format!(" (available: {})", days.join(", ")));
    }
    out.push(runs);
    let p = &ctx.paces;
    if p.from_race {
        out.push(format!(
            "Paces from the recent race (VDOT {:.1}): easy {}, marathon {}, threshold {}, interval {}, repetition {}",
            p.vdot,
            pace_text((p.easy_fast, p.easy_slow)),
            pace_text((p.marathon, p.marathon)),
            pace_text((p.threshold, p.threshold)),
            pace_text((p.interval, p.interval)),
            pace_text((p.repetition, p.repetition)),
        ));
        if let Some(r) = ctx.race {
            let t = crate::vdot::predict_time_s(p.vdot, f64::from(r.meters()));
            let secs = if t.is_finite() {
                t.round().clamp(0.0, 1.0e6) as u32
            } else {
                0
            };
            out.push(format!("Predicted {}: {}", r.label(), clock(secs)));
        }
    } else {
        out.push(format!(
            "Paces: run by effort (no recent race given); times and distances assume easy running at about {}/km",
            format_pace(f64::from(p.easy))
        ));
    }
    out.push(format!(
        "Intensity: at least {}% of running time easy; at most 2 quality sessions and 1 long run a week",
        ctx.easy_share
    ));
    for n in &ctx.notes {
        out.push(format!("Note: {n}"));
    }
}

fn week_lines(ctx: &Ctx, w: &WeekPlan, out: &mut Vec<String>, said: &mut Vec<String>) {
    let total: u32 = w
        .days
        .iter()
        .map(|(_, p)| measure(p, &ctx.paces, ctx.level).distance())
        .sum();
    out.push(format!(
        "Week {} ({}, {} km): {}",
        w.week,
        w.phase.as_str(),
        km_text(total),
        w.focus
    ));
    for d in &ctx.order {
        let line = match w.days.iter().find(|(x, _)| x == d) {
            Some((_, p)) => crate::session::render(p),
            None if ctx.excluded.contains(d) => "Rest (no running)".to_string(),
            None => "Rest".to_string(),
        };
        out.push(format!("- {}: {line}", day_name(*d)));
    }
    // Each note once, in the first week it applies to.
    for n in &w.notes {
        if !said.contains(n) {
            out.push(n.clone());
            said.push(n.clone());
        }
    }
}
