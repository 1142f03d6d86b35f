//! How long the rules planner takes per call (a benchmark binary, not a test): every rules
//! `generate_draft` job runs `write_draft` once, every `generate_plan` job `build_plan` once.
//!
//!     cargo run --release -p pacer-planner --example speed [-- calls]

use std::hint::black_box;
use std::time::Instant;

use pacer_planner::{Level, PlanInput, RaceResult, build_plan, write_draft};

fn input(weeks: u32, level: Level, race: bool) -> PlanInput {
    PlanInput {
        weeks,
        level,
        start_date: chrono::NaiveDate::from_ymd_opt(2026, 1, 5),
        training_principle: "Daniels".to_owned(),
        additional_prompt: None,
        recent_race: race.then_some(RaceResult {
            distance_m: 10_000.0,
            time_s: 2_700.0,
        }),
    }
}

fn main() {
    let calls: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000);
    let cases = [
        (
            "1 week, beginner (the benchmark's job)",
            input(1, Level::Beginner, false),
        ),
        (
            "12 weeks, intermediate, recent 10K",
            input(12, Level::Intermediate, true),
        ),
        (
            "52 weeks, advanced, recent 10K",
            input(52, Level::Advanced, true),
        ),
    ];
    println!("| input | write_draft µs/call | build_plan µs/call |");
    println!("|---|---|---|");
    for (label, plan) in &cases {
        let draft = write_draft(plan).text;
        let per_call = |f: &dyn Fn()| {
            f(); // warm-up
            let t = Instant::now();
            for _ in 0..calls {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / f64::from(calls)
        };
        let write = per_call(&|| {
            black_box(write_draft(black_box(plan)));
        });
        let build = per_call(&|| {
            black_box(build_plan(black_box(plan), black_box(&draft)));
        });
        println!("| {label} | {write:.1} | {build:.1} |");
    }
}
