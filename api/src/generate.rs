//! `pacer-api generate`: realistic synthetic athletes with a history of activities and daily
//! health metrics, written straight to PostgreSQL in multi-row `unnest` batches. The same seed
//! gives the same data; re-running adds nothing (rows are keyed by ids derived from the org and
//! the seed: users by name, activities by athlete and `external_id`; inserts skip existing rows).

use std::time::Instant;

use anyhow::Context;
use chrono::{Duration, TimeZone, Utc};
use pacer_common::analytics::load::{
    DEFAULT_HR_MAX, DEFAULT_HR_REST, DEFAULT_THRESHOLD_PACE, activity_load, default_lthr,
};
use pacer_common::analytics::zones::{hr_zone, pace_zone};
use pacer_common::db::analytics::{ActivityIn, HealthIn, insert_activities_bulk, upsert_health};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use pacer_api::config::GenerateArgs;

const FIRST: [&str; 16] = [
    "Alex", "Sam", "Jordan", "Taylor", "Morgan", "Riley", "Casey", "Jamie", "Avery", "Quinn",
    "Harper", "Rowan", "Emery", "Kai", "Noa", "Sasha",
];
const LAST: [&str; 12] = [
    "Runner", "Miles", "Stride", "Pace", "Hill", "Brook", "Fields", "Lake", "Stone", "Rivers",
    "Woods", "Vale",
];
const ZONES: [&str; 6] = [
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Tokyo",
];
const GROUPS: [&str; 4] = ["Marathon Block A", "5K Squad", "Trail Crew", "Beginners"];
const LABELS: [&str; 4] = ["5k-focus", "marathon", "injury-watch", "masters"];
const BATCH: usize = 5_000;

pub async fn run(args: &GenerateArgs, database_url: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let db = pacer_common::db::connect(database_url, 4)
        .await
        .context("DATABASE_URL")?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let org = &args.org;
    sqlx::query("insert into orgs (id, name) values ($1, $1) on conflict (id) do nothing")
        .bind(org)
        .execute(&db)
        .await?;

    let coaches: Vec<String> = (1..=args.coaches)
        .map(|i| format!("{org}_coach_{i:03}"))
        .collect();
    let mut users: Vec<GenUser> = Vec::new();
    for (i, c) in coaches.iter().enumerate() {
        users.push(GenUser {
            id: c.clone(),
            role: "coach",
            name: format!("Coach {}", LAST[i % LAST.len()]),
            username: format!("coach{}", i + 1),
            email: format!("{c}@example.com"),
            tz: ZONES[i % ZONES.len()].into(),
            coach: None,
            groups: Vec::new(),
            labels: Vec::new(),
        });
    }
    let today = args.until.unwrap_or_else(|| Utc::now().date_naive());
    let first_day = today - Duration::days(i64::from(args.days) - 1);
    let mut activities: Vec<(Uuid, ActivityIn)> = Vec::with_capacity(BATCH);
    let mut health: Vec<HealthIn> = Vec::with_capacity(BATCH);
    let (mut n_act, mut n_health) = (0u64, 0usize);

    for a in 1..=args.athletes {
        let id = format!("{org}_ath_{a:05}");
        let first = FIRST[rng.random_range(0..FIRST.len())];
        let last = LAST[rng.random_range(0..LAST.len())];
        let tz_name = ZONES[rng.random_range(0..ZONES.len())];
        let tz: chrono_tz::Tz = tz_name.parse().unwrap_or(chrono_tz::UTC);
        let groups = if rng.random_bool(0.7) {
            vec![GROUPS[rng.random_range(0..GROUPS.len())].to_owned()]
        } else {
            Vec::new()
        };
        let labels = if rng.random_bool(0.4) {
            vec![LABELS[rng.random_range(0..LABELS.len())].to_owned()]
        } else {
            Vec::new()
        };
        users.push(GenUser {
            id: id.clone(),
            role: "athlete",
            name: format!("{first} {last}"),
            username: format!("{}.{}{a}", first.to_lowercase(), last.to_lowercase()),
            email: format!(
                "{}.{}{a}@example.com",
                first.to_lowercase(),
                last.to_lowercase()
            ),
            tz: tz_name.into(),
            coach: Some(coaches[rng.random_range(0..coaches.len())].clone()),
            groups,
            labels,
        });

        // the athlete's profile: volume, pace, physiology
        let runs_per_week: f64 = rng.random_range(2.0..4.5);
        let easy_pace: f64 = rng.random_range(300.0..440.0);
        let has_hr = rng.random_bool(0.8);
        let rhr0: f64 = rng.random_range(44.0..66.0);
        let hrv0: f64 = rng.random_range(35.0..95.0);
        let vo2_0: f64 = rng.random_range(38.0..62.0);
        let mut day = first_day;
        let mut n = 0u32;
        while day <= today {
            n += 1;
            let sunday = day.format("%u").to_string() == "7";
            if rng.random_bool((runs_per_week / 7.0).min(1.0)) {
                let km: f64 = if sunday {
                    rng.random_range(14.0..28.0)
                } else {
                    rng.random_range(5.0..12.0)
                };
                let pace = easy_pace * rng.random_range(0.85..1.08);
                let moving = (km * pace).round();
                let hour = rng.random_range(5..20);
                let local = day
                    .and_hms_opt(hour, rng.random_range(0..60), 0)
                    .unwrap_or_default();
                let start = tz
                    .from_local_datetime(&local)
                    .earliest()
                    .map(|t| t.with_timezone(&Utc));
                if let Some(start) = start {
                    let avg_hr = has_hr.then(|| rng.random_range(128.0..168.0_f64).round());
                    let (load, method) = activity_load(moving, km * 1000.0, avg_hr, true);
                    let mut pz = [0i32; 5];
                    pz[pace_zone(pace, DEFAULT_THRESHOLD_PACE)] = moving as i32;
                    let mut hz = [0i32; 5];
                    if let Some(hr) = avg_hr {
                        hz[hr_zone(hr, default_lthr(DEFAULT_HR_REST, DEFAULT_HR_MAX))] =
                            moving as i32;
                    }
                    let act = ActivityIn {
                        athlete_id: id.clone(),
                        external_id: format!("gen-{}-{day}", args.seed),
                        sport_type: if rng.random_bool(0.1) {
                            "TrailRun".into()
                        } else {
                            "Run".into()
                        },
                        start_date: start,
                        timezone: tz_name.into(),
                        distance: (km * 1000.0).round(),
                        moving_time: moving as i32,
                        elapsed_time: (moving * rng.random_range(1.0..1.15)).round() as i32,
                        average_heartrate: avg_hr,
                        max_heartrate: avg_hr
                            .map(|h| (h + rng.random_range(8.0..20.0_f64)).round()),
                        calories: Some((km * rng.random_range(60.0..80.0)).round()),
                        training_load: load,
                        load_method: method.as_str().into(),
                        pace_zone_seconds: pz,
                        hr_zone_seconds: hz,
                    };
                    // a fresh id: the row's key is (athlete, external_id), so the same seed in another
                    // organization (or a re-run) never collides on it
                    activities.push((Uuid::now_v7(), act));
                }
            }
            if rng.random_bool(0.9) {
                let trend = f64::from(n) / f64::from(args.days);
                health.push(HealthIn {
                    athlete_id: id.clone(),
                    day,
                    resting_hr: Some((rhr0 + rng.random_range(-2.5..2.5) - trend).round()),
                    hrv_rmssd: Some((hrv0 * rng.random_range(0.85..1.15)).round()),
                    vo2_max: Some(((vo2_0 + trend * 2.0) * 10.0).round() / 10.0),
                    recovery_score: None,
                });
            }
            if activities.len() >= BATCH {
                n_act += insert_activities_bulk(&db, &activities).await?;
                activities.clear();
            }
            if health.len() >= BATCH {
                n_health += upsert_health(&db, &health).await?.len();
                health.clear();
            }
            day = match day.succ_opt() {
                Some(d) => d,
                None => break,
            };
        }
    }
    n_act += insert_activities_bulk(&db, &activities).await?;
    n_health += upsert_health(&db, &health).await?.len();
    insert_users(&db, org, &users).await?;
    println!(
        "generated org {org}: {} coaches, {} athletes, {n_act} new activities, {n_health} health days ({} to {today}) in {:.1} s",
        coaches.len(),
        args.athletes,
        first_day,
        started.elapsed().as_secs_f64()
    );
    println!(
        "next: POST /api/v1/admin/analytics/recompute {{\"org_id\": \"{org}\"}} to build the snapshots"
    );
    Ok(())
}

struct GenUser {
    id: String,
    role: &'static str,
    name: String,
    username: String,
    email: String,
    tz: String,
    coach: Option<String>,
    groups: Vec<String>,
    labels: Vec<String>,
}

async fn insert_users(db: &sqlx::PgPool, org: &str, users: &[GenUser]) -> anyhow::Result<()> {
    for chunk in users.chunks(BATCH) {
        // text[][] cannot be unnested row by row, so groups and labels travel as joined text
        sqlx::query(
            "insert into users (id, org_id, role, display_name, username, email, timezone, assigned_coach_id, groups, labels)
             select id, $1, role, name, username, email, tz, coach,
                    coalesce(string_to_array(nullif(g, ''), '|'), '{}'), coalesce(string_to_array(nullif(l, ''), '|'), '{}')
               from unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
                    as t(id, role, name, username, email, tz, coach, g, l)
             on conflict (id) do nothing",
        )
        .bind(org)
        .bind(chunk.iter().map(|u| u.id.clone()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|u| u.role.to_owned()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|u| u.name.clone()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|u| u.username.clone()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|u| u.email.clone()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|u| u.tz.clone()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|u| u.coach.clone()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|u| u.groups.join("|")).collect::<Vec<_>>())
        .bind(chunk.iter().map(|u| u.labels.join("|")).collect::<Vec<_>>())
        .execute(db)
        .await?;
    }
    Ok(())
}
