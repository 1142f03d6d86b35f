//! Analytics (seed 004) end to end: ingestion, the debounced recompute, the batch, the six
//! read endpoints, caches, limits and permissions.

use std::time::Duration;

use chrono::{Datelike, Utc};
use pacer_tests::{TestApp, eventually, types};
use serde_json::{Value, json};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

async fn athlete(app: &TestApp, id: &str, org: &str, tz: &str, extra: Value) -> anyhow::Result<()> {
    let mut body = json!({"org_id": org, "role": "athlete", "timezone": tz, "display_name": id});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (status, res) = app
        .put(&app.admin(), &format!("/api/v1/admin/users/{id}"), &body)
        .await?;
    anyhow::ensure!(status == 200, "user upsert failed: {status} {res}");
    Ok(())
}

fn run(external_id: &str, start: &str, distance: f64, moving: i64) -> Value {
    json!({"external_id": external_id, "sport_type": "Run", "start_date": start,
           "distance": distance, "moving_time": moving, "elapsed_time": moving})
}

/// Waits until no recompute_stats job of the athlete is queued or running and one succeeded;
/// fails at once (with the job's error) when one failed.
async fn settled(app: &TestApp, user: &str) -> anyhow::Result<()> {
    eventually(WAIT, "recompute_stats to settle", || async {
        let (live, done, failed): (i64, i64, Option<String>) = sqlx::query_as(
            "select count(*) filter (where state in ('queued', 'running')),
                    count(*) filter (where state = 'succeeded'),
                    string_agg(error, '; ') filter (where state = 'failed')
               from jobs where kind = 'recompute_stats' and input->>'user_id' = $1",
        )
        .bind(user)
        .fetch_one(&app.db)
        .await?;
        if let Some(e) = failed {
            anyhow::bail!("recompute_stats failed: {e}");
        }
        Ok((live == 0 && done > 0).then_some(()))
    })
    .await
}

fn point<'a>(points: &'a Value, date: &str) -> &'a Value {
    points
        .as_array()
        .and_then(|a| a.iter().find(|p| p["date"] == date))
        .unwrap_or(&Value::Null)
}

fn dates(points: &Value) -> Vec<String> {
    points
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["date"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn analytics_running_stats_buckets_by_the_requested_zone_across_midnight_and_dst()
-> anyhow::Result<()> {
    // Arrange: America/Chicago switches to CDT on 2025-03-09 at 02:00 local (08:00 UTC)
    let mut app = TestApp::new().await?;
    app.start().await?;
    athlete(&app, "usr_chi", "org_demo", "America/Chicago", json!({})).await?;
    let token = app.token("usr_chi", "athlete", "org_demo");
    let mut c = run("c", "2025-03-10T05:30:00Z", 8000.0, 2400);
    c["pace_zone_seconds"] = json!([100, 200, 300, 400, 500]);
    c["average_heartrate"] = json!(170.5);
    c["moving_time"] = json!(3600);
    let body = json!({"activities": [
        run("a", "2025-03-08T05:30:00Z", 5000.0, 1800),  // Fri 7 Mar 23:30 CST
        run("b", "2025-03-09T07:30:00Z", 10000.0, 3000), // Sun 9 Mar 01:30 CST
        c,                                                // Mon 10 Mar 00:30 CDT (Sun 23:30 at a fixed −6 h)
        {"external_id": "d", "sport_type": "Ride", "start_date": "2025-03-08T18:00:00Z", "distance": 30000, "moving_time": 3600},
    ]});

    // Act
    let (status, ingest) = app.post(&token, "/api/v1/activities", &body).await?;
    let q = |range: &str, from: i64, to: i64, zone: &str| {
        format!(
            "/api/v1/analytics/running_stats?from_timestamp={from}&to_timestamp={to}&range_type={range}&{zone}"
        )
    };
    // 2025-03-07 00:00 CST .. 2025-03-10 23:59 CDT
    let (s1, daily) = app
        .get(
            &token,
            &q(
                "daily",
                1_741_327_200,
                1_741_669_140,
                "timezone=America/Chicago",
            ),
        )
        .await?;
    let (s2, fixed) = app
        .get(
            &token,
            &q(
                "daily",
                1_741_327_200,
                1_741_669_140,
                "timezone_offset_minutes=-360",
            ),
        )
        .await?;
    let (s3, utc) = app
        .get(
            &token,
            &q("daily", 1_741_327_200, 1_741_669_140, "timezone=UTC"),
        )
        .await?;
    // Mon 2025-03-03 00:00 CST
    let (s4, weekly) = app
        .get(
            &token,
            &q(
                "weekly",
                1_740_981_600,
                1_741_500_000,
                "timezone=America/Chicago",
            ),
        )
        .await?;
    // 2025-03-01 .. 2025-03-31 local
    let (s5, monthly) = app
        .get(
            &token,
            &q(
                "monthly",
                1_740_808_800,
                1_743_483_540,
                "timezone=America/Chicago",
            ),
        )
        .await?;
    // 2025-01-01 .. 2025-12-31 local
    let (s6, yearly) = app
        .get(
            &token,
            &q(
                "yearly",
                1_735_711_200,
                1_767_247_140,
                "timezone=America/Chicago",
            ),
        )
        .await?;

    // Assert
    assert_eq!(status, 200, "{ingest}");
    assert_eq!(ingest["data"]["accepted"], 4, "{ingest}");
    assert_eq!([s1, s2, s3, s4, s5, s6], [200; 6]);
    let d = &daily["data"];
    assert_eq!(daily["status"], "ok");
    assert_eq!(
        dates(d),
        ["2025-03-07", "2025-03-08", "2025-03-09", "2025-03-10"]
    );
    let a = point(d, "2025-03-07");
    assert_eq!(
        (
            a["distance"].as_f64(),
            a["duration"].as_i64(),
            a["runs"].as_i64()
        ),
        (Some(5000.0), Some(1800), Some(1)),
        "23:30 local stays on the local day: {d}"
    );
    // 6:00/km against a 5:00/km threshold is Z2; rTSS = 100 × 0.5 h × (300/360)² = 34.7
    assert_eq!(a["pace_z2_time"], 1800);
    assert_eq!(a["nexrex_training_load"], 34.7);
    assert_eq!(
        point(d, "2025-03-08")["runs"],
        0,
        "the ride is not a run; empty days are zeros"
    );
    assert_eq!(point(d, "2025-03-08")["distance"], 0.0);
    let b = point(d, "2025-03-09");
    assert_eq!(
        (b["runs"].as_i64(), b["pace_z4_time"].as_i64()),
        (Some(1), Some(3000))
    );
    assert_eq!(b["nexrex_training_load"], 83.3);
    let cc = point(d, "2025-03-10");
    assert_eq!(
        cc["runs"], 1,
        "after the DST change 05:30Z is 00:30 local: {d}"
    );
    assert_eq!(
        [
            &cc["pace_z1_time"],
            &cc["pace_z2_time"],
            &cc["pace_z3_time"],
            &cc["pace_z4_time"],
            &cc["pace_z5_time"]
        ],
        [100, 200, 300, 400, 500]
    );
    assert_eq!(
        cc["nexrex_training_load"], 100.0,
        "one hour at LTHR is 100 HRSS"
    );
    assert_eq!(
        point(&fixed["data"], "2025-03-09")["runs"],
        2,
        "a fixed −6 h offset has no DST"
    );
    assert_eq!(
        point(&utc["data"], "2025-03-08")["runs"],
        1,
        "in UTC the Friday-night run is on Saturday"
    );
    assert_eq!(
        dates(&weekly["data"]),
        [
            "2025-03-03",
            "2025-03-04",
            "2025-03-05",
            "2025-03-06",
            "2025-03-07",
            "2025-03-08",
            "2025-03-09"
        ]
    );
    assert_eq!(
        dates(&monthly["data"]),
        [
            "2025-02-24",
            "2025-03-03",
            "2025-03-10",
            "2025-03-17",
            "2025-03-24",
            "2025-03-31"
        ]
    );
    assert_eq!(point(&monthly["data"], "2025-03-03")["runs"], 2);
    assert_eq!(point(&monthly["data"], "2025-03-03")["distance"], 15000.0);
    assert_eq!(point(&monthly["data"], "2025-03-10")["runs"], 1);
    let y = &yearly["data"];
    assert_eq!(y.as_array().map(Vec::len), Some(12));
    assert_eq!(point(y, "2025-03-01")["runs"], 3);
    assert_eq!(point(y, "2025-03-01")["distance"], 23000.0);
    assert_eq!(point(y, "2025-03-01")["duration"], 1800 + 3000 + 3600);
    Ok(())
}

#[tokio::test]
async fn analytics_snapshot_matches_hand_computed_load_pace_fitness_and_flags() -> anyhow::Result<()>
{
    // Arrange: zone UTC; weeks are ISO weeks before the current one
    let mut app = TestApp::new().await?;
    app.start().await?;
    athlete(
        &app,
        "usr_snap",
        "org_demo",
        "UTC",
        json!({"assigned_coach_id": "usr_coach"}),
    )
    .await?;
    athlete(&app, "usr_l25", "org_demo", "UTC", json!({})).await?;
    let token = app.token("usr_snap", "athlete", "org_demo");
    let today = Utc::now().date_naive();
    let monday = today - chrono::Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let at = |weeks_back: i64, day: i64, hour: u32| {
        let d = monday - chrono::Duration::weeks(weeks_back) + chrono::Duration::days(day);
        format!("{d}T{hour:02}:00:30Z")
    };
    // 1 h at 5:00/km = 100; loads by week: −4: 100, −3: 0, −2: 200, −1: 266.67, current: 375
    let acts = json!([
        run("w4", &at(4, 0, 6), 12000.0, 3600),
        run("w2a", &at(2, 0, 6), 12000.0, 3600),
        run("w2b", &at(2, 1, 6), 12000.0, 3600),
        run("w1", &at(1, 0, 6), 32000.0, 9600),
        run("w0", &at(0, 0, 0), 45000.0, 13500),
    ]);
    let mut health = Vec::new();
    for i in 0..14 {
        let mut h = json!({"date": (today - chrono::Duration::days(i)).to_string(), "resting_hr": 50,
                           "hrv_rmssd": if i < 7 { 60 } else { 50 }});
        if i == 2 {
            h["vo2_max"] = json!(52.0);
        }
        if i == 10 {
            h["vo2_max"] = json!(50.0);
        }
        if i == 0 {
            h["recovery_score"] = json!(80);
        }
        if i == 7 {
            h["recovery_score"] = json!(70);
        }
        health.push(h);
    }
    let start = (today - chrono::Duration::days(35)).to_string();
    let race = (today + chrono::Duration::days(60)).to_string();
    // L25: four runs in the last days, paces weighted by distance
    let l25_token = app.token("usr_l25", "athlete", "org_demo");
    let now = Utc::now();
    let ago = |h: i64| (now - chrono::Duration::hours(h)).to_rfc3339();
    let mut l25 = vec![
        run("l1", &ago(30), 10000.0, 3000),
        run("l2", &ago(50), 8000.0, 2640),
        run("l3", &ago(70), 21100.0, 7385),
        run("l4", &ago(90), 5000.0, 1350),
    ];
    l25[0]["average_heartrate"] = json!(150);
    l25[1]["average_heartrate"] = json!(160);

    // Act
    let (s1, _) = app.post(&token, "/api/v1/activities", &acts).await?;
    let (s2, _) = app
        .post(
            &token,
            "/api/v1/health_metrics",
            &json!({"health_metrics": health}),
        )
        .await?;
    let (s3, goal) = app.post(&token, "/api/v1/athletes/usr_snap/goals",
        &json!({"race_name": "Spring Marathon", "race_date": race, "goal_time": "3:05:00", "distance": 42195})).await?;
    let (s4, plan) = app.post(&app.coach(), "/api/v1/athletes/usr_snap/plans",
        &json!({"name": "Marathon Block A", "status": "active", "start_date": start, "total_weeks": 16})).await?;
    let (s5, _) = app
        .post(&l25_token, "/api/v1/activities", &json!(l25))
        .await?;
    settled(&app, "usr_snap").await?;
    let (_, profile) = app
        .get(
            &token,
            "/api/v1/analytics/athlete_profile?user_id=usr_snap&refresh=true",
        )
        .await?;
    let (_, roster) = app
        .get(
            &app.coach(),
            "/api/v1/analytics/coach_athletes_metrics?search=usr_snap&no_cache=1",
        )
        .await?;
    let (_, fitness) = app
        .get(&l25_token, "/api/v1/analytics/fitness_stats?days=7")
        .await?;
    let (_, fitness_none) = app
        .get(&token, "/api/v1/analytics/fitness_stats?days=1")
        .await?;

    // Assert
    assert_eq!(
        [s1, s2, s3, s4, s5],
        [200, 200, 201, 201, 200],
        "{goal} {plan}"
    );
    let m = &profile["data"]["metrics"];
    assert_eq!(
        m["running_analytics"]["weekly_distance_km"], 45.0,
        "{profile}"
    );
    assert_eq!(m["running_analytics"]["avg_pace_per_km"], "5:00");
    assert_eq!(m["training"]["current_week_load"], 375.0);
    assert_eq!(
        m["training"]["four_week_avg_load"], 141.7,
        "(100 + 0 + 200 + 266.67) / 4"
    );
    assert_eq!(m["fitness"]["current"]["vo2_max"], 52.0);
    assert_eq!(m["fitness"]["current"]["hrv_avg"], 60.0);
    assert_eq!(m["fitness"]["current"]["recovery_score"], 80.0);
    let codes: Vec<&str> = m["attention_signals"]["flags"]
        .as_array()
        .map(|f| f.iter().filter_map(|x| x["code"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        codes.contains(&"volume_spike"),
        "32 km → 45 km is +40.6 %: {codes:?}"
    );
    assert_eq!(
        profile["data"]["current_goals"]["races"][0]["goal_time"],
        "3:05:00"
    );
    assert_eq!(
        profile["data"]["current_plans"][0]["current_week"], 6,
        "started 35 days ago"
    );
    assert_eq!(profile["data"]["current_plans"][0]["total_weeks"], 16);
    let a = &roster["data"]["athletes"][0];
    assert_eq!(a["user_id"], "usr_snap", "{roster}");
    let cur = &a["metrics"]["fitness"]["current"];
    assert_eq!(
        (cur["hrv_avg"].as_f64(), cur["hrv_avg_prev"].as_f64()),
        (Some(60.0), Some(50.0))
    );
    assert_eq!(
        (cur["vo2_max"].as_f64(), cur["vo2_max_prev"].as_f64()),
        (Some(52.0), Some(50.0))
    );
    assert_eq!(
        (
            cur["recovery_score"].as_f64(),
            cur["recovery_score_prev"].as_f64()
        ),
        (Some(80.0), Some(70.0))
    );
    assert!(a["metrics"]["last_updated"].is_string());
    assert_eq!(
        a["current_goals"]["races"][0]["race_name"],
        "Spring Marathon"
    );
    let f = &fitness["data"];
    assert_eq!(f["total_activities"], 4, "{fitness}");
    assert_eq!(f["total_distance"], 44100.0);
    assert_eq!(f["total_duration"], 14375);
    assert_eq!(
        f["avg_pace"], "5:26",
        "L25: distance-weighted, not the mean of paces"
    );
    assert_eq!(
        f["avg_heart_rate"], 155.0,
        "(150×3000 + 160×2640) / 5640 = 154.7"
    );
    assert!(
        fitness_none["data"].get("avg_heart_rate").is_none(),
        "absent without HR data"
    );
    Ok(())
}

#[tokio::test]
async fn analytics_caches_serve_old_values_until_refresh_or_recompute() -> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.start().await?;
    athlete(&app, "usr_cache", "org_demo", "Europe/London", json!({})).await?;
    let token = app.token("usr_cache", "athlete", "org_demo");
    app.post(
        &token,
        "/api/v1/activities",
        &json!(run("x1", "2025-04-02T07:00:00Z", 10000.0, 3000)),
    )
    .await?;
    app.post(
        &token,
        "/api/v1/health_metrics",
        &json!({"date": "2025-04-02", "resting_hr": 50}),
    )
    .await?;
    settled(&app, "usr_cache").await?;
    let stats = "/api/v1/analytics/activity_stats?from=2025-04-01&to=2025-04-30&granularity=month&timezone=Europe/London";
    let health = "/api/v1/analytics/health_metrics?from=2025-03-31&to=2025-04-13&granularity=week";
    let profile = "/api/v1/analytics/athlete_profile?user_id=usr_cache";
    let (_, s_before) = app.get(&token, stats).await?;
    let (_, h_before) = app.get(&token, health).await?;
    let (_, p_before) = app.get(&token, profile).await?;

    // change the database behind the caches
    sqlx::query("update activities set distance = 12000 where external_id = 'x1'")
        .execute(&app.db)
        .await?;
    sqlx::query("update health_metrics set resting_hr = 60")
        .execute(&app.db)
        .await?;
    sqlx::query("update athlete_metrics set weekly_distance_km = 99")
        .execute(&app.db)
        .await?;
    let (_, s_cached) = app.get(&token, stats).await?;
    let (_, h_cached) = app.get(&token, health).await?;
    let (_, p_cached) = app.get(&token, profile).await?;
    let (_, s_fresh) = app.get(&token, &format!("{stats}&refresh=true")).await?;
    let (_, h_fresh) = app.get(&token, &format!("{health}&refresh=true")).await?;
    let (_, p_fresh) = app.get(&token, &format!("{profile}&refresh=true")).await?;

    assert_eq!(
        s_before["data"]["buckets"][0]["distance"], 10000.0,
        "{s_before}"
    );
    assert_eq!(s_before["data"]["buckets"][0]["date"], "2025-04-01");
    assert_eq!(
        s_cached["data"]["buckets"][0]["distance"], 10000.0,
        "served from the cache"
    );
    assert_eq!(
        s_fresh["data"]["buckets"][0]["distance"], 12000.0,
        "refresh=true reads PostgreSQL"
    );
    assert_eq!(h_before["data"]["points"][0]["date"], "2025-03-31");
    assert_eq!(
        h_before["data"]["points"][0]["resting_hr"], 50.0,
        "{h_before}"
    );
    assert_eq!(h_cached["data"]["points"][0]["resting_hr"], 50.0);
    assert_eq!(h_fresh["data"]["points"][0]["resting_hr"], 60.0);
    assert_eq!(p_cached["data"], p_before["data"]);
    assert_eq!(
        p_fresh["data"]["metrics"]["running_analytics"]["weekly_distance_km"],
        99.0
    );

    // a recompute (triggered by an upload) invalidates without refresh
    sqlx::query("update activities set distance = 15000 where external_id = 'x1'")
        .execute(&app.db)
        .await?;
    app.post(
        &token,
        "/api/v1/activities",
        &json!(run("x2", "2025-05-02T07:00:00Z", 1000.0, 300)),
    )
    .await?;
    let after = eventually(
        WAIT,
        "the cache to be invalidated by recompute_stats",
        || async {
            let (_, s) = app.get(&token, stats).await?;
            Ok((s["data"]["buckets"][0]["distance"] == 15000.0).then_some(s))
        },
    )
    .await?;
    assert_eq!(after["data"]["totals"]["activities"], 1);
    Ok(())
}

#[tokio::test]
async fn analytics_ingestion_is_idempotent_and_reports_invalid_items_by_index() -> anyhow::Result<()>
{
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    athlete(&app, "usr_ing", "org_demo", "UTC", json!({})).await?;
    athlete(&app, "usr_other_org", "org_other", "UTC", json!({})).await?;
    let token = app.token("usr_ing", "athlete", "org_demo");
    let batch = json!([
        run("s1", "2025-04-01T06:00:00Z", 5000.0, 1500),
        {"external_id": "s2", "sport_type": "Run", "distance": "far", "moving_time": -1},
        {"external_id": 123456, "sport_type": "Run", "start_date": "2025-04-03T06:00:00+02:00",
         "timezone": "(GMT+01:00) Europe/Paris", "distance": 8000, "moving_time": 2400},
    ]);

    let (s1, first) = app.post(&token, "/api/v1/activities", &batch).await?;
    let (s2, again) = app.post(&token, "/api/v1/activities", &batch).await?;
    let count: i64 =
        sqlx::query_scalar("select count(*) from activities where athlete_id = 'usr_ing'")
            .fetch_one(&app.db)
            .await?;
    let (s3, none_valid) = app
        .post(&token, "/api/v1/activities", &json!([{"external_id": "z"}]))
        .await?;
    let too_many: Vec<Value> = (0..1001)
        .map(|i| run(&format!("m{i}"), "2025-04-01T06:00:00Z", 1.0, 1))
        .collect();
    let (s4, _) = app
        .post(
            &token,
            "/api/v1/activities",
            &json!({"activities": too_many}),
        )
        .await?;
    let (s5, bad_json) = app
        .request(
            reqwest::Method::POST,
            Some(&token),
            "/api/v1/activities",
            None,
        )
        .await?;
    let (s6, _) = app.post(&token, "/api/v1/activities", &json!({"athlete_id": "usr_other_org", "activities": [run("o", "2025-04-01T06:00:00Z", 1.0, 1)]})).await?;
    let (s7, _) = app
        .post(
            &app.coach(),
            "/api/v1/activities",
            &json!([run("c", "2025-04-01T06:00:00Z", 1.0, 1)]),
        )
        .await?;
    let (s8, coach_ok) = app.post(&app.coach(), "/api/v1/activities", &json!({"athlete_id": "usr_ing", "activities": [run("c", "2025-04-01T06:00:00Z", 1000.0, 300)]})).await?;
    let (s9, hm_bad) = app
        .post(
            &token,
            "/api/v1/health_metrics",
            &json!({"date": "2025-13-01", "resting_hr": 500}),
        )
        .await?;
    let (s10, _) = app
        .post(
            &token,
            "/api/v1/health_metrics",
            &json!({"date": "2025-04-01", "resting_hr": 50}),
        )
        .await?;
    let (s11, _) = app
        .post(
            &token,
            "/api/v1/health_metrics",
            &json!({"date": "2025-04-01", "hrv_rmssd": 70}),
        )
        .await?;
    let (s14, timeless) = app
        .post(
            &token,
            "/api/v1/activities",
            &json!([run("t", "2025-04-01T06:00:00Z", 10000.0, 0)]),
        )
        .await?;
    let timeless_fields: Vec<&str> = timeless["details"]
        .as_array()
        .map(|e| e.iter().filter_map(|x| x["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        (s14, timeless_fields),
        (400, vec!["activities[0].moving_time"]),
        "{timeless}"
    );
    let mut fractional = run("x", "2025-04-01T06:00:00Z", 1000.0, 300);
    fractional["external_id"] = json!(1.5);
    let (s12, fractional_id) = app.post(&token, "/api/v1/activities", &fractional).await?;
    let (s13, future_day) = app
        .post(
            &token,
            "/api/v1/health_metrics",
            &json!({"date": "2099-01-01", "resting_hr": 50}),
        )
        .await?;
    for (status, body, field) in [
        (s12, &fractional_id, "activities[0].external_id"),
        (s13, &future_day, "health_metrics[0].date"),
    ] {
        assert_eq!(
            (status, body["details"][0]["field"].as_str()),
            (400, Some(field)),
            "{body}"
        );
    }
    let merged: (Option<f64>, Option<f64>) = sqlx::query_as(
        "select resting_hr, hrv_rmssd from health_metrics where athlete_id = 'usr_ing'",
    )
    .fetch_one(&app.db)
    .await?;

    assert_eq!(s1, 200, "{first}");
    let d = &first["data"];
    assert_eq!(
        (d["accepted"].as_i64(), d["rejected"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(d["results"][0]["index"], 0);
    assert_eq!(d["results"][1]["index"], 2);
    assert_eq!(d["results"][1]["external_id"], "123456");
    assert_eq!(d["results"][0]["status"], "created");
    assert_eq!(d["errors"][0]["index"], 1);
    let fields: Vec<&str> = d["errors"][0]["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|x| x["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["start_date", "distance", "moving_time"], "{first}");
    assert_eq!(s2, 200);
    assert_eq!(again["data"]["results"][0]["status"], "updated");
    assert_eq!(count, 2, "a re-upload replaces, never duplicates");
    assert_eq!(s3, 400);
    assert_eq!(none_valid["status"], "error");
    assert_eq!(none_valid["code"], "validation_error");
    assert!(
        none_valid["details"]
            .as_array()
            .is_some_and(|d| d.iter().any(|e| e["field"] == "activities[0].start_date")),
        "{none_valid}"
    );
    assert_eq!(s4, 400, "more than 1,000 items");
    assert_eq!(s5, 400, "{bad_json}");
    assert_eq!(s6, 403, "an athlete uploads only for itself");
    assert_eq!(s7, 400, "a coach must name the athlete");
    assert_eq!(s8, 200, "{coach_ok}");
    assert_eq!(s9, 400);
    let hm_fields: Vec<&str> = hm_bad["details"]
        .as_array()
        .map(|e| e.iter().filter_map(|x| x["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        hm_fields,
        ["health_metrics[0].date", "health_metrics[0].resting_hr"]
    );
    assert_eq!([s10, s11], [200, 200]);
    assert_eq!(
        merged,
        (Some(50.0), Some(70.0)),
        "a later upload keeps fields it leaves out"
    );
    Ok(())
}

#[tokio::test]
async fn analytics_a_burst_of_300_uploads_enqueues_only_a_handful_of_recomputes()
-> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.start().await?;
    athlete(&app, "usr_burst", "org_demo", "UTC", json!({})).await?;
    let token = app.token("usr_burst", "athlete", "org_demo");

    let mut tasks = Vec::new();
    let app = std::sync::Arc::new(app);
    for t in 0..6 {
        let (app, token) = (app.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let n = t * 50 + i;
                let (s, b) = app
                    .post(
                        &token,
                        "/api/v1/activities",
                        &run(&format!("b{n}"), "2025-04-01T06:00:00Z", 1000.0, 300),
                    )
                    .await?;
                anyhow::ensure!(s == 200, "{b}");
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    settled(&app, "usr_burst").await?;
    let jobs: i64 = sqlx::query_scalar("select count(*) from jobs where kind = 'recompute_stats'")
        .fetch_one(&app.db)
        .await?;
    let runs: i64 = sqlx::query_scalar(
        "select coalesce(sum(runs), 0)::int8 from daily_rollups where athlete_id = 'usr_burst'",
    )
    .fetch_one(&app.db)
    .await?;

    assert!(
        (1..=30).contains(&jobs),
        "300 uploads gave {jobs} recompute jobs"
    );
    assert_eq!(runs, 300, "the last recompute saw every upload");
    Ok(())
}

#[tokio::test]
async fn analytics_batch_recompute_reports_progress_to_100_and_its_children_run_on_workers()
-> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.start().await?;
    app.start_worker(&[])?;
    for i in 0..6 {
        athlete(&app, &format!("usr_b{i}"), "org_demo", "UTC", json!({})).await?;
    }
    athlete(&app, "usr_elsewhere", "org_other", "UTC", json!({})).await?;
    for i in 0..6 {
        sqlx::query("insert into activities (id, athlete_id, external_id, sport_type, start_date, distance, moving_time, training_load)
                     values (gen_random_uuid(), $1, 'x', 'Run', now() - interval '1 day', 10000, 3000, 90)")
            .bind(format!("usr_b{i}"))
            .execute(&app.db)
            .await?;
    }

    let (s_athlete, _) = app
        .post(
            &app.token("usr_b0", "athlete", "org_demo"),
            "/api/v1/admin/analytics/recompute",
            &json!({}),
        )
        .await?;
    let (s_foreign, _) = app
        .post(
            &app.coach(),
            "/api/v1/admin/analytics/recompute",
            &json!({"org_id": "org_other"}),
        )
        .await?;
    let coach = app.coach();
    let (status, started) = app
        .post(
            &coach,
            "/api/v1/admin/analytics/recompute",
            &json!({"org_id": "org_demo"}),
        )
        .await?;
    let id = uuid::Uuid::parse_str(started["data"]["job_id"].as_str().unwrap_or_default())?;
    let events = app.events(&coach, id, None, None).await?;
    let job = app.wait_state(&coach, id, "succeeded", WAIT).await?;
    let children: Vec<(String, String)> =
        sqlx::query_as("select input->>'user_id', state from jobs where parent_id = $1 order by 1")
            .bind(id)
            .fetch_all(&app.db)
            .await?;
    let snapshots: i64 = sqlx::query_scalar("select count(*) from athlete_metrics")
        .fetch_one(&app.db)
        .await?;

    assert_eq!(s_athlete, 403);
    assert_eq!(s_foreign, 403);
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["status"], "ok");
    let pcts: Vec<i64> = events
        .iter()
        .filter_map(|(_, e)| e["progress"].as_i64())
        .collect();
    assert_eq!(pcts.first(), Some(&0), "{pcts:?}");
    assert_eq!(pcts.last(), Some(&100), "{pcts:?}");
    assert!(pcts.windows(2).all(|w| w[0] <= w[1]), "{pcts:?}");
    assert_eq!(types(&events).last().map(String::as_str), Some("done"));
    assert_eq!(job["result"]["athletes"], 6, "{job}");
    assert_eq!(children.len(), 6, "only the org's athletes");
    assert!(
        children.iter().all(|(_, s)| s == "succeeded"),
        "{children:?}"
    );
    assert_eq!(snapshots, 6);
    Ok(())
}

#[tokio::test]
async fn analytics_recompute_takes_an_absent_or_null_body_and_refuses_other_non_objects()
-> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    let coach = app.coach();
    let path = "/api/v1/admin/analytics/recompute";

    let (s_null, with_null) = app.post(&coach, path, &Value::Null).await?;
    let (s_none, without) = app
        .request(reqwest::Method::POST, Some(&coach), path, None)
        .await?;
    let (s_list, list) = app.post(&coach, path, &json!([])).await?;
    let (s_text, _) = app.post(&coach, path, &json!("org_demo")).await?;
    let (s_typo, typo) = app
        .post(&app.admin(), path, &json!({"org_id": "org_dmeo"}))
        .await?;
    let (s_num, num) = app.post(&app.admin(), path, &json!({"org_id": 5})).await?;
    let inputs: Vec<Option<String>> = sqlx::query_scalar(
        "select input->>'org_id' from jobs where kind = 'recompute_batch' order by created_at",
    )
    .fetch_all(&app.db)
    .await?;

    assert_eq!(s_null, 202, "{with_null}");
    assert_eq!(s_none, 202, "{without}");
    assert_eq!(s_list, 400, "{list}");
    assert_eq!(list["status"], "error", "{list}");
    assert_eq!(s_text, 400);
    assert_eq!(
        (s_typo, &typo["code"]),
        (404, &json!("not_found")),
        "{typo}"
    );
    // the body's fields are named as sent, not as the Jobs API's `input.…`
    assert_eq!(
        (s_num, &num["details"][0]["field"]),
        (400, &json!("org_id")),
        "{num}"
    );
    // both accepted batches default to the coach's organization; the refusals recorded nothing
    assert_eq!(
        inputs,
        [Some("org_demo".to_owned()), Some("org_demo".to_owned())]
    );
    Ok(())
}

#[tokio::test]
async fn analytics_roster_filters_paginates_and_caches_per_coach_and_org() -> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    athlete(&app, "usr_r1", "org_demo", "UTC", json!({"display_name": "Alice", "assigned_coach_id": "usr_coach", "groups": ["Marathon Block A"], "email": "alice@example.com"})).await?;
    athlete(
        &app,
        "usr_r2",
        "org_demo",
        "UTC",
        json!({"display_name": "Bob", "assigned_coach_id": "usr_coach2", "username": "bobby"}),
    )
    .await?;
    athlete(
        &app,
        "usr_r3",
        "org_demo",
        "UTC",
        json!({"display_name": "Carol", "groups": ["5K Squad"]}),
    )
    .await?;
    let coach = app.coach();
    let coach2 = app.token("usr_coach2", "coach", "org_demo");
    let path = "/api/v1/analytics/coach_athletes_metrics";
    let names = |v: &Value| -> Vec<String> {
        v["data"]["athletes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["display_name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };

    let (s, all) = app.get(&coach, path).await?;
    let (_, mine) = app
        .get(&coach, &format!("{path}?filter_by_coach=1"))
        .await?;
    let (_, group) = app
        .get(&coach, &format!("{path}?group_id=5K%20Squad"))
        .await?;
    let (_, unassigned) = app
        .get(&coach, &format!("{path}?unassigned_only=1"))
        .await?;
    let (_, search) = app.get(&coach, &format!("{path}?search=BOBB")).await?;
    let (_, by_email) = app.get(&coach, &format!("{path}?search=alice@")).await?;
    let (_, page2) = app
        .get(&coach, &format!("{path}?per_page=1&page=2"))
        .await?;
    sqlx::query("update users set display_name = 'Alicia' where id = 'usr_r1'")
        .execute(&app.db)
        .await?;
    let (_, cached) = app.get(&coach, path).await?;
    let (_, other_coach) = app.get(&coach2, path).await?;
    let (_, bypass) = app.get(&coach, &format!("{path}?no_cache=1")).await?;

    assert_eq!(s, 200, "{all}");
    assert_eq!(names(&all), ["Alice", "Bob", "Carol"]);
    assert_eq!(all["data"]["total_count"], 3);
    assert_eq!(all["data"]["metadata"]["per_page"], 200, "default per_page");
    assert_eq!(
        all["data"]["athletes"][0]["groups"],
        json!(["Marathon Block A"])
    );
    assert_eq!(all["data"]["athletes"][0]["attention_signals"], Value::Null);
    assert_eq!(
        all["data"]["athletes"][0]["metrics"]["attention_signals"]["flags"],
        json!([])
    );
    assert_eq!(names(&mine), ["Alice"]);
    assert_eq!(names(&group), ["Carol"]);
    assert_eq!(names(&unassigned), ["Bob"]);
    assert_eq!(names(&search), ["Bob"]);
    assert_eq!(names(&by_email), ["Alice"]);
    assert_eq!(names(&page2), ["Bob"]);
    assert_eq!(
        page2["data"]["pagination"],
        json!({"total": 3, "page": 2, "per_page": 1, "total_pages": 3, "has_next": true, "has_prev": true})
    );
    assert_eq!(page2["data"]["metadata"], page2["data"]["pagination"]);
    assert_eq!(
        names(&cached),
        ["Alice", "Bob", "Carol"],
        "coach 1 is served its cached roster"
    );
    assert_eq!(
        names(&other_coach),
        ["Alicia", "Bob", "Carol"],
        "coach 2 has its own cache entry"
    );
    assert_eq!(names(&bypass), ["Alicia", "Bob", "Carol"]);
    Ok(())
}

#[tokio::test]
async fn analytics_limits_and_permissions_give_their_documented_status_codes() -> anyhow::Result<()>
{
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    athlete(&app, "usr_p1", "org_demo", "UTC", json!({})).await?;
    athlete(&app, "usr_p2", "org_demo", "UTC", json!({})).await?;
    athlete(&app, "usr_px", "org_other", "UTC", json!({})).await?;
    let me = app.token("usr_p1", "athlete", "org_demo");
    let coach = app.coach();
    let now = Utc::now().timestamp();
    let rs = |from: i64, to: i64, extra: &str| {
        format!(
            "/api/v1/analytics/running_stats?from_timestamp={from}&to_timestamp={to}&range_type=daily{extra}"
        )
    };
    let cases: Vec<(String, String, u16, Option<&str>)> = vec![
        (me.clone(), rs(now - 86_400, now, ""), 200, None),
        (
            me.clone(),
            "/api/v1/analytics/running_stats?range_type=daily".into(),
            400,
            Some("from_timestamp"),
        ),
        (
            me.clone(),
            rs(now - 366 * 86_400, now, ""),
            400,
            Some("to_timestamp"),
        ),
        (me.clone(), rs(now - 365 * 86_400, now, ""), 200, None),
        (
            me.clone(),
            rs(now, now + 8 * 86_400, ""),
            400,
            Some("to_timestamp"),
        ),
        (me.clone(), rs(now, now - 10, ""), 400, Some("to_timestamp")),
        (
            me.clone(),
            rs(now - 10, now, "&range_type=hourly").replace("range_type=daily&", ""),
            400,
            Some("range_type"),
        ),
        (
            me.clone(),
            rs(now - 10, now, "&metric_type=speed"),
            400,
            Some("metric_type"),
        ),
        (
            me.clone(),
            rs(now - 10, now, "&timezone=Mars/Olympus"),
            400,
            Some("timezone"),
        ),
        (
            me.clone(),
            rs(now - 10, now, "&timezone_offset_minutes=900"),
            400,
            Some("timezone_offset_minutes"),
        ),
        (
            me.clone(),
            "/api/v1/analytics/fitness_stats?days=366".into(),
            400,
            Some("days"),
        ),
        (
            me.clone(),
            "/api/v1/analytics/fitness_stats?days=0".into(),
            400,
            Some("days"),
        ),
        (
            me.clone(),
            "/api/v1/analytics/fitness_stats?days=365".into(),
            200,
            None,
        ),
        (
            me.clone(),
            "/api/v1/analytics/fitness_stats?user_id=usr_p2".into(),
            403,
            None,
        ),
        (
            coach.clone(),
            "/api/v1/analytics/fitness_stats?user_id=usr_p2".into(),
            200,
            None,
        ),
        (
            coach.clone(),
            "/api/v1/analytics/fitness_stats?user_id=usr_px".into(),
            403,
            None,
        ),
        (
            me.clone(),
            "/api/v1/analytics/activity_stats?from=2025-01-01&to=2026-02-06".into(),
            400,
            Some("to"),
        ),
        (
            me.clone(),
            "/api/v1/analytics/activity_stats?from=2025-01-01&to=2026-02-05".into(),
            200,
            None,
        ),
        (
            me.clone(),
            "/api/v1/analytics/activity_stats?from=2025-01-01".into(),
            400,
            Some("to"),
        ),
        (
            me.clone(),
            "/api/v1/analytics/activity_stats?from=2025-01-01&to=2025-01-31&granularity=week"
                .into(),
            400,
            Some("granularity"),
        ),
        (
            me.clone(),
            "/api/v1/analytics/activity_stats?from=2025-01-01&to=2025-01-31&timezone=Nowhere"
                .into(),
            400,
            Some("timezone"),
        ),
        (
            me.clone(),
            "/api/v1/analytics/health_metrics?from=2025-01-01&to=2025-01-31&granularity=year"
                .into(),
            400,
            Some("granularity"),
        ),
        (
            me.clone(),
            "/api/v1/analytics/health_metrics?from=2025-01-01&to=2025-01-31&refresh=maybe".into(),
            400,
            Some("refresh"),
        ),
        (
            me.clone(),
            "/api/v1/analytics/health_metrics?from=2025-01-01&to=2025-01-31&granularity=week"
                .into(),
            200,
            None,
        ),
        (
            me.clone(),
            "/api/v1/analytics/athlete_profile".into(),
            400,
            Some("user_id"),
        ),
        (
            me.clone(),
            "/api/v1/analytics/athlete_profile?user_id=usr_p1".into(),
            200,
            None,
        ),
        (
            me.clone(),
            "/api/v1/analytics/athlete_profile?user_id=usr_p2".into(),
            403,
            None,
        ),
        (
            coach.clone(),
            "/api/v1/analytics/athlete_profile?user_id=usr_p2".into(),
            200,
            None,
        ),
        (
            coach.clone(),
            "/api/v1/analytics/athlete_profile?user_id=usr_px".into(),
            403,
            None,
        ),
        (
            app.admin(),
            "/api/v1/analytics/athlete_profile?user_id=usr_px".into(),
            200,
            None,
        ),
        (
            app.admin(),
            "/api/v1/analytics/athlete_profile?user_id=usr_nobody".into(),
            404,
            None,
        ),
        (
            me.clone(),
            "/api/v1/analytics/coach_athletes_metrics".into(),
            403,
            None,
        ),
        (
            coach.clone(),
            "/api/v1/analytics/coach_athletes_metrics?org_id=org_other".into(),
            403,
            None,
        ),
        (
            app.admin(),
            "/api/v1/analytics/coach_athletes_metrics?org_id=org_other".into(),
            200,
            None,
        ),
        (
            coach.clone(),
            "/api/v1/analytics/coach_athletes_metrics?per_page=201".into(),
            400,
            Some("per_page"),
        ),
        (
            coach.clone(),
            "/api/v1/analytics/coach_athletes_metrics?page=0".into(),
            400,
            Some("page"),
        ),
        (
            coach.clone(),
            "/api/v1/analytics/coach_athletes_metrics?group_id=g&unassigned_only=1".into(),
            400,
            Some("group_id"),
        ),
        (
            me.clone(),
            "/api/v1/athletes/usr_p2/goals".into(),
            403,
            None,
        ),
        (
            coach.clone(),
            "/api/v1/athletes/usr_p2/plans".into(),
            200,
            None,
        ),
    ];
    for (token, path, want, field) in &cases {
        let (status, body) = app.get(token, path).await?;
        assert_eq!(status, *want, "{path}: {body}");
        if *want >= 400 {
            assert_eq!(body["status"], "error", "{path}: {body}");
            assert!(
                body["code"].is_string() && body["error"].is_string(),
                "{path}: {body}"
            );
        } else {
            assert_eq!(body["status"], "ok", "{path}: {body}");
        }
        if let Some(f) = field {
            assert!(
                body["details"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|e| e["field"] == *f)),
                "{path} names {f}: {body}"
            );
        }
    }
    let (unauth, _) = app
        .request(
            reqwest::Method::GET,
            None,
            "/api/v1/analytics/fitness_stats",
            None,
        )
        .await?;
    assert_eq!(unauth, 401);
    let (bad_goal, body) = app
        .post(
            &me,
            "/api/v1/athletes/usr_p1/goals",
            &json!({"race_name": "", "race_date": "soon", "goal_time": "3h"}),
        )
        .await?;
    assert_eq!(bad_goal, 400);
    assert_eq!(body["details"].as_array().map(Vec::len), Some(3), "{body}");
    let (bad_plan, _) = app
        .post(
            &coach,
            "/api/v1/athletes/usr_p1/plans",
            &json!({"name": "x", "start_date": "2025-01-06", "total_weeks": 0, "status": "paused"}),
        )
        .await?;
    assert_eq!(bad_plan, 400);
    let (missing, _) = app
        .request(
            reqwest::Method::PATCH,
            Some(&coach),
            "/api/v1/athletes/usr_p1/plans/pi_nope",
            Some(&json!({"status": "active"})),
        )
        .await?;
    assert_eq!(missing, 404);
    // uploads answer as the reads do: an unknown athlete 404, another's 403; nothing stored
    let upload = |athlete: &str| json!({"athlete_id": athlete, "activities": [run("perm", "2025-04-02T07:00:00Z", 5000.0, 1500)]});
    for (token, athlete, want) in [
        (&coach, "usr_ghost", 404),
        (&coach, "usr_px", 403),
        (&me, "usr_ghost", 404),
        (&me, "usr_p2", 403),
    ] {
        for path in ["/api/v1/activities", "/api/v1/health_metrics"] {
            let body = if path.ends_with("activities") {
                upload(athlete)
            } else {
                json!({"athlete_id": athlete, "date": "2025-04-02", "resting_hr": 50})
            };
            let (status, res) = app.post(token, path, &body).await?;
            assert_eq!(status, want, "{path} for {athlete}: {res}");
            assert_eq!(res["status"], "error", "{res}");
        }
    }
    let (stored,): (i64,) = sqlx::query_as(
        "select (select count(*) from activities) + (select count(*) from health_metrics)",
    )
    .fetch_one(&app.db)
    .await?;
    assert_eq!(stored, 0);
    Ok(())
}

#[tokio::test]
async fn analytics_cancelling_a_batch_cancels_its_waiting_children() -> anyhow::Result<()> {
    // Arrange: one worker slot, so the batch holds it and its children stay queued
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    app.start_worker(&[("PACER_CONCURRENCY", "1")])?;
    for i in 0..4 {
        athlete(&app, &format!("usr_c{i}"), "org_demo", "UTC", json!({})).await?;
    }
    let admin = app.admin();
    let (_, started) = app
        .post(
            &admin,
            "/api/v1/admin/analytics/recompute",
            &json!({"org_id": "org_demo"}),
        )
        .await?;
    let id = uuid::Uuid::parse_str(started["data"]["job_id"].as_str().unwrap_or_default())?;
    app.wait_state(&admin, id, "running", WAIT).await?;
    eventually(WAIT, "the children to exist", || async {
        let n: i64 = sqlx::query_scalar("select count(*) from jobs where parent_id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await?;
        Ok((n == 4).then_some(()))
    })
    .await?;
    let children: Vec<uuid::Uuid> =
        sqlx::query_scalar("select id from jobs where parent_id = $1 order by id")
            .bind(id)
            .fetch_all(&app.db)
            .await?;
    // the first child was taken over from a dead worker: its log holds 3 events its row never saw
    let keys = pacer_common::keys::Keys::new(app.prefix.clone());
    let mut redis = app.redis().await?;
    for n in 1..=3 {
        let _: String = redis::cmd("XADD")
            .arg(keys.event_log(children[0]))
            .arg(format!("{n}-0"))
            .arg("d")
            .arg(json!({"type": "progress", "percentage": n}).to_string())
            .query_async(&mut redis)
            .await?;
    }

    // Act
    let (status, _) = app.delete(&admin, &format!("/api/v1/jobs/{id}")).await?;
    let batch = eventually(WAIT, "the batch to end", || async {
        let job = app.job(&admin, id).await?;
        Ok((job["state"] == "cancelled").then_some(job))
    })
    .await?;
    let states = eventually(WAIT, "every child to be cancelled", || async {
        let s: Vec<String> = sqlx::query_scalar("select state from jobs where parent_id = $1")
            .bind(id)
            .fetch_all(&app.db)
            .await?;
        Ok(s.iter().all(|s| s == "cancelled").then_some(s))
    })
    .await?;
    let snapshots: i64 = sqlx::query_scalar("select count(*) from athlete_metrics")
        .fetch_one(&app.db)
        .await?;
    // the cancel appends each child's final events, so live SSE followers see them at once
    let logged = eventually(WAIT, "the other children's final events", || async {
        let mut logged = Vec::new();
        for child in &children[1..] {
            let log: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                .arg(keys.event_log(*child))
                .arg("-")
                .arg("+")
                .query_async(&mut redis.clone())
                .await?;
            logged.push(log.ids.iter().map(|e| e.id.clone()).collect::<Vec<_>>());
        }
        Ok(logged.iter().all(|l| l.len() == 2).then_some(logged))
    })
    .await?;
    let taken_over = app.events(&admin, children[0], None, None).await?;
    let ids: Vec<u64> = taken_over.iter().map(|(n, _)| *n).collect();

    // Assert
    assert_eq!(status, 202);
    assert_eq!(batch["state"], "cancelled");
    assert_eq!(states.len(), 4);
    assert_eq!(snapshots, 0, "no child of the cancelled batch ran");
    assert!(logged.iter().all(|l| l == &["1-0", "2-0"]), "{logged:?}");
    // numbered after the events the row had not seen, and the stream still ends with `done`
    assert_eq!(ids, [1, 2, 3, 4, 5], "{taken_over:?}");
    assert_eq!(
        types(&taken_over)[3..],
        ["error".to_owned(), "done".to_owned()],
        "{taken_over:?}"
    );
    assert_eq!(taken_over[3].1["error"], "cancelled");
    Ok(())
}

#[tokio::test]
async fn analytics_a_recompute_waiting_to_start_absorbs_the_next_until_it_is_claimed()
-> anyhow::Result<()> {
    use pacer_common::db::analytics::enqueue_recompute;
    use pacer_common::db::jobs::Reported;
    use pacer_common::db::jobs::{claim_many, requeue_for_retry};
    // Arrange
    let app = TestApp::new().await?;
    pacer_common::db::MIGRATOR.run(&app.db).await?;
    let org = Some("org_demo");

    // Act: two requests for one athlete and one for another; then the first job starts, is
    // handed back for a retry, and two more requests come
    let first = enqueue_recompute(&app.db, "usr_deb", org, 3).await?;
    let absorbed = enqueue_recompute(&app.db, "usr_deb", org, 3).await?;
    let other = enqueue_recompute(&app.db, "usr_other", org, 3).await?;
    let id = first.ok_or_else(|| anyhow::anyhow!("the first request was debounced"))?;
    let claimed = claim_many(&app.db, &[id], "w1", 30.0, uuid::Uuid::new_v4()).await?;
    requeue_for_retry(&app.db, id, "w1", "retrying", &Reported::default(), None).await?;
    let after_start = enqueue_recompute(&app.db, "usr_deb", org, 3).await?;
    let absorbed_again = enqueue_recompute(&app.db, "usr_deb", org, 3).await?;

    // Assert: a started job (even one waiting for its retry) no longer absorbs requests
    assert!(absorbed.is_none());
    assert!(other.is_some());
    assert_eq!(claimed.len(), 1);
    assert!(after_start.is_some_and(|n| n != id));
    assert!(absorbed_again.is_none());
    Ok(())
}

#[tokio::test]
async fn analytics_a_snapshot_left_behind_by_the_date_is_recomputed_without_an_upload()
-> anyhow::Result<()> {
    // Arrange: two athletes with a computed snapshot each
    let mut app = TestApp::new().await?;
    app.set("PACER_ROLLOVER_INTERVAL_SECS", "1");
    app.start().await?;
    let now = Utc::now().to_rfc3339();
    for (id, tz) in [("usr_behind", "Pacific/Kiritimati"), ("usr_current", "UTC")] {
        athlete(&app, id, "org_demo", tz, json!({})).await?;
        let token = app.token(id, "athlete", "org_demo");
        let (status, body) = app
            .post(&token, "/api/v1/activities", &run("r1", &now, 8000.0, 2400))
            .await?;
        anyhow::ensure!(status == 200, "upload: {status} {body}");
        settled(&app, id).await?;
    }
    let snapshot = |id: &'static str| {
        let db = app.db.clone();
        async move {
            sqlx::query_as::<_, (f64, chrono::NaiveDate)>(
                "select weekly_distance_km, as_of from athlete_metrics where athlete_id = $1",
            )
            .bind(id)
            .fetch_one(&db)
            .await
        }
    };
    let (computed, today) = snapshot("usr_behind").await?;

    // Act: one snapshot now describes yesterday (as after midnight in its zone), the other
    // today; both hold a value no recompute would write
    sqlx::query(
        "update athlete_metrics set weekly_distance_km = 99,
                as_of = case athlete_id when 'usr_behind' then as_of - 1 else as_of end",
    )
    .execute(&app.db)
    .await?;

    // Assert: the one behind is recomputed for today by a job nobody submitted; the current
    // one, seen by the same passes, is left alone
    eventually(WAIT, "the rollover to recompute usr_behind", || async {
        let snap = snapshot("usr_behind").await?;
        Ok((snap.1 == today).then_some(snap))
    })
    .await
    .map(|(km, _)| assert_eq!(km, computed))?;
    let jobs: Vec<(String, i64)> = sqlx::query_as(
        "select input->>'user_id', count(*) from jobs
          where kind = 'recompute_stats' and owner_id = 'system:analytics'
          group by 1 order by 1",
    )
    .fetch_all(&app.db)
    .await?;
    assert!(
        matches!(&jobs[..], [(b, n), (c, 1)] if b == "usr_behind" && *n >= 2 && c == "usr_current"),
        "{jobs:?}"
    );
    assert_eq!(snapshot("usr_current").await?.0, 99.0);
    Ok(())
}

#[tokio::test]
async fn analytics_a_bad_query_lists_every_invalid_field_at_once() -> anyhow::Result<()> {
    // Arrange
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    athlete(&app, "usr_q", "org_demo", "UTC", json!({})).await?;
    let me = app.token("usr_q", "athlete", "org_demo");
    let coach = app.coach();
    let now = Utc::now().timestamp();
    let cases = [
        (&me, "/api/v1/analytics/athlete_profile?refresh=maybe".to_owned(), vec!["user_id", "refresh"]),
        (&me, "/api/v1/analytics/fitness_stats?days=0&user_id=".to_owned() + &"u".repeat(201), vec!["days", "user_id"]),
        (
            &me,
            format!("/api/v1/analytics/running_stats?from_timestamp={now}&to_timestamp={now}&range_type=x&timezone=Mars/Olympus"),
            vec!["range_type", "timezone"],
        ),
        // a malformed stamp is named once, and the other one is not blamed for it
        (
            &me,
            format!("/api/v1/analytics/running_stats?from_timestamp=abc&to_timestamp={now}&range_type=daily"),
            vec!["from_timestamp"],
        ),
        (
            &me,
            format!("/api/v1/analytics/running_stats?from_timestamp={}&to_timestamp=yesterday&range_type=daily", now - 86_400),
            vec!["to_timestamp"],
        ),
        (
            &me,
            "/api/v1/analytics/activity_stats?from=2025-13-01&to=2025-04-30&granularity=week&timezone=Bad/Zone&refresh=2".to_owned(),
            vec!["from", "granularity", "timezone", "refresh"],
        ),
        (
            &me,
            "/api/v1/analytics/health_metrics?to=2025-04-30&granularity=year".to_owned(),
            vec!["from", "granularity"],
        ),
        (
            &me,
            "/api/v1/analytics/health_metrics?from=-001-01-01&to=%2B10000-01-01".to_owned(),
            vec!["from", "to"],
        ),
        (
            &coach,
            "/api/v1/analytics/coach_athletes_metrics?filter_by_coach=yes&group_id=g&unassigned_only=1&page=0&per_page=500&no_cache=x".to_owned(),
            vec!["filter_by_coach", "group_id", "unassigned_only", "page", "per_page", "no_cache"],
        ),
    ];

    for (token, path, expected) in cases {
        // Act
        let (status, body) = app.get(token, &path).await?;

        // Assert: one 400 names them all
        let fields: Vec<&str> = body["details"]
            .as_array()
            .map(|d| d.iter().filter_map(|e| e["field"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!((status, fields), (400, expected), "{path}: {body}");
    }
    Ok(())
}

/// A run without a distance (a treadmill run with no footpod) counts for volume but not for
/// pace: 30 min without distance and 10 km in 50 min average 5:00/km, not 8:00.
#[tokio::test]
async fn analytics_a_run_without_distance_does_not_slow_the_average_pace() -> anyhow::Result<()> {
    // Arrange
    let mut app = TestApp::new().await?;
    app.start().await?;
    athlete(&app, "usr_tm", "org_demo", "UTC", json!({})).await?;
    let token = app.token("usr_tm", "athlete", "org_demo");
    let at = |minutes_ago: i64| {
        (Utc::now() - chrono::Duration::minutes(minutes_ago))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let runs = json!([
        run("tm1", &at(2), 0.0, 1800),
        run("road1", &at(1), 10000.0, 3000)
    ]);

    // Act
    let (status, body) = app.post(&token, "/api/v1/activities", &runs).await?;
    assert_eq!(status, 200, "{body}");
    settled(&app, "usr_tm").await?;
    let (_, profile) = app
        .get(&token, "/api/v1/analytics/athlete_profile?user_id=usr_tm")
        .await?;
    let (_, fitness) = app
        .get(&token, "/api/v1/analytics/fitness_stats?days=7")
        .await?;

    // Assert
    let running = &profile["data"]["metrics"]["running_analytics"];
    assert_eq!(running["avg_pace_per_km"], "5:00", "{profile}");
    assert_eq!(fitness["data"]["avg_pace"], "5:00", "{fitness}");
    assert_eq!(fitness["data"]["total_duration"], 4800, "{fitness}");
    Ok(())
}

#[tokio::test]
async fn analytics_a_ride_without_heart_rate_gets_no_running_pace_load_nor_pace_zones()
-> anyhow::Result<()> {
    // Arrange: the device sends pace zone times for the ride too
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    athlete(&app, "usr_ride", "org_demo", "UTC", json!({})).await?;
    let token = app.token("usr_ride", "athlete", "org_demo");
    let mut ride = run("ride1", "2025-04-02T07:00:00Z", 40000.0, 3600);
    ride["sport_type"] = json!("Ride");
    ride["pace_zone_seconds"] = json!([0, 0, 0, 0, 3600]);
    ride["hr_zone_seconds"] = json!([0, 3600, 0, 0, 0]);

    // Act
    let (status, body) = app
        .post(
            &token,
            "/api/v1/activities",
            &json!([run("run1", "2025-04-03T07:00:00Z", 12000.0, 3600), ride]),
        )
        .await?;

    // Assert: the run scores as a run at threshold; the ride's speed is not a running pace
    assert_eq!(status, 200, "{body}");
    let loads: Vec<f64> = body["data"]["results"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|x| x["training_load"].as_f64())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(loads, [100.0, 0.0], "{body}");
    // a ride's time counts in no pace zone (intensity_drift reads them); its heart rate zones stay
    let (pace, hr): (Vec<i32>, Vec<i32>) = sqlx::query_as(
        "select pace_zone_seconds, hr_zone_seconds from activities where external_id = 'ride1'",
    )
    .fetch_one(&app.db)
    .await?;
    assert_eq!(pace, [0, 0, 0, 0, 0]);
    assert_eq!(hr, [0, 3600, 0, 0, 0]);
    Ok(())
}

#[tokio::test]
async fn analytics_the_recompute_an_upload_answers_with_can_be_followed_by_who_sees_the_athlete()
-> anyhow::Result<()> {
    // Arrange: no worker, so the recompute stays queued
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    athlete(&app, "usr_v", "org_demo", "UTC", json!({})).await?;
    let me = app.token("usr_v", "athlete", "org_demo");
    let (s, up) = app
        .post(
            &me,
            "/api/v1/activities",
            &run("v1", "2025-04-02T07:00:00Z", 5000.0, 1500),
        )
        .await?;
    assert_eq!(s, 200, "{up}");
    let job = up["data"]["recompute_jobs"]["usr_v"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = format!("/api/v1/jobs/{job}");

    // Act
    let mut seen = Vec::new();
    for token in [
        me.clone(),
        app.token("usr_c", "coach", "org_demo"),
        app.token("usr_x", "coach", "org_other"),
        app.token("usr_w", "athlete", "org_demo"),
    ] {
        seen.push(app.get(&token, &path).await?.0);
    }
    let (cancel, body) = app.delete(&me, &path).await?;

    // Assert: the athlete and the org's coaches read it; others do not; only creators cancel
    assert_eq!(seen, [200, 200, 404, 404]);
    assert_eq!(
        (cancel, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn analytics_snapshot_flags_a_run_over_150_minutes_from_64_km_and_two_days_of_acute_hrv_drop()
-> anyhow::Result<()> {
    // Arrange: two athletes (UTC), 4 × 14 km in the last days plus a long day; 60 baseline days
    // of rMSSD alternating 55 / 67 ms (ln mean 4.11, SD 0.10, bound 3.91) and 60 ms recently
    let mut app = TestApp::new().await?;
    app.start().await?;
    athlete(&app, "usr_lr_over", "org_demo", "UTC", json!({})).await?;
    athlete(&app, "usr_lr_cap", "org_demo", "UTC", json!({})).await?;
    let today = Utc::now().date_naive();
    let at = |days_back: i64, hour: u32| {
        format!(
            "{}T{hour:02}:00:00Z",
            today - chrono::Duration::days(days_back)
        )
    };
    let base = |p: &str| {
        (1..=4)
            .map(|i| run(&format!("{p}{i}"), &at(i + 1, 6), 14000.0, 4200))
            .collect::<Vec<_>>()
    };
    // over: on day −1 a fast 16 km (longest by distance, 19 % of 84 km) and a 12 km trail run
    // of 2:35:00 (longest by time)
    let mut over = base("o");
    over.push(run("o_long", &at(1, 6), 16000.0, 5400));
    over.push(run("o_trail", &at(1, 15), 12000.0, 9300));
    // cap: a 16 km long run of exactly 2:30:00 (22 % of 72 km) and a 3 h ride, which is no run
    let mut cap = base("c");
    cap.push(run("c_long", &at(1, 6), 16000.0, 9000));
    let mut ride = run("c_ride", &at(1, 15), 60000.0, 10800);
    ride["sport_type"] = json!("Ride");
    cap.push(ride);
    let health = |low: &[i64]| {
        let items: Vec<Value> = (0..67)
            .map(|i| {
                let ms = if low.contains(&i) {
                    40
                } else if i < 7 {
                    60
                } else if i % 2 == 0 {
                    55
                } else {
                    67
                };
                json!({"date": (today - chrono::Duration::days(i)).to_string(), "hrv_rmssd": ms})
            })
            .collect();
        json!({ "health_metrics": items })
    };
    let over_token = app.token("usr_lr_over", "athlete", "org_demo");
    let cap_token = app.token("usr_lr_cap", "athlete", "org_demo");

    // Act
    let mut statuses = Vec::new();
    for (token, acts, low) in [
        (&over_token, &over, &[2, 3][..]),
        (&cap_token, &cap, &[3][..]),
    ] {
        statuses.push(app.post(token, "/api/v1/activities", &json!(acts)).await?.0);
        statuses.push(
            app.post(token, "/api/v1/health_metrics", &health(low))
                .await?
                .0,
        );
    }
    settled(&app, "usr_lr_over").await?;
    settled(&app, "usr_lr_cap").await?;
    let mut flags = Vec::new();
    for (token, user) in [(&over_token, "usr_lr_over"), (&cap_token, "usr_lr_cap")] {
        let (_, profile) = app
            .get(
                token,
                &format!("/api/v1/analytics/athlete_profile?user_id={user}&refresh=true"),
            )
            .await?;
        flags.push(profile["data"]["metrics"]["attention_signals"]["flags"].clone());
    }
    let long_day: (f64, i32, i32) = sqlx::query_as(
        "select longest_run, longest_run_time, run_moving_time from daily_rollups
          where athlete_id = 'usr_lr_over' and day = $1",
    )
    .bind(today - chrono::Duration::days(1))
    .fetch_one(&app.db)
    .await?;

    // Assert
    assert_eq!(statuses, [200, 200, 200, 200]);
    assert_eq!(
        long_day,
        (16000.0, 9300, 14700),
        "the longest run by distance and by time are kept apart"
    );
    let find = |f: &Value, code: &str| {
        f.as_array()
            .and_then(|a| a.iter().find(|x| x["code"] == code))
            .cloned()
    };
    let lr = find(&flags[0], "long_run_overreach").unwrap_or_default();
    assert!(
        lr["message"]
            .as_str()
            .is_some_and(|m| m.contains("2:35:00")),
        "a run over 150 min at 84 km: {}",
        flags[0]
    );
    let drop = find(&flags[0], "hrv_acute_drop").unwrap_or_default();
    assert_eq!(drop["severity"], "warning", "{}", flags[0]);
    assert!(
        drop["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!(
                "{} to {}",
                today - chrono::Duration::days(3),
                today - chrono::Duration::days(2)
            ))),
        "{drop}"
    );
    assert!(
        find(&flags[1], "long_run_overreach").is_none(),
        "exactly 150 min, and a ride is no run: {}",
        flags[1]
    );
    assert!(
        find(&flags[1], "hrv_acute_drop").is_none(),
        "one low day is no drop: {}",
        flags[1]
    );
    Ok(())
}

/// A recompute writes the athlete's snapshot while it still holds the athlete's lock (taken
/// for the rollup rebuild): two recomputes of one athlete are then serialised whole, and an
/// older one cannot overwrite the snapshot of a newer one. A trigger refuses a snapshot
/// written without the lock.
#[tokio::test]
async fn analytics_a_snapshot_is_written_under_the_athletes_recompute_lock() -> anyhow::Result<()> {
    // Arrange
    let mut app = TestApp::new().await?;
    app.start().await?;
    athlete(&app, "usr_lock", "org_demo", "UTC", json!({})).await?;
    sqlx::raw_sql(
        "create function pacer_test_needs_lock() returns trigger language plpgsql as $$
         declare k bigint := hashtextextended('pacer:rollups:' || new.athlete_id, 0);
         begin
           if not exists (select 1 from pg_locks
                           where locktype = 'advisory' and pid = pg_backend_pid() and granted
                             and ((classid::bigint << 32) | objid::bigint) = k) then
             raise exception 'snapshot of % written without its recompute lock', new.athlete_id;
           end if;
           return new;
         end $$;
         create trigger needs_lock before insert or update on athlete_metrics
           for each row execute function pacer_test_needs_lock();",
    )
    .execute(&app.db)
    .await?;
    let token = app.token("usr_lock", "athlete", "org_demo");

    // Act
    let (status, body) = app
        .post(
            &token,
            "/api/v1/activities",
            &json!([run("lock1", "2025-04-03T07:00:00Z", 10000.0, 3000)]),
        )
        .await?;

    // Assert
    assert_eq!(status, 200, "{body}");
    settled(&app, "usr_lock").await?;
    let written: i64 =
        sqlx::query_scalar("select count(*) from athlete_metrics where athlete_id = 'usr_lock'")
            .fetch_one(&app.db)
            .await?;
    assert_eq!(written, 1);
    Ok(())
}

#[tokio::test]
async fn analytics_a_batch_recompute_refuses_an_invalid_idempotency_key() -> anyhow::Result<()> {
    // Arrange
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    let long = "k".repeat(201);

    for key in [long.as_str(), "a\tb", "   "] {
        // Act
        let res = app
            .http
            .post(format!("{}/api/v1/admin/analytics/recompute", app.base()))
            .bearer_auth(app.admin())
            .header("Idempotency-Key", key)
            .json(&json!({"org_id": "org_demo"}))
            .send()
            .await?;
        let status = res.status().as_u16();
        let body: Value = res.json().await?;

        // Assert: the documented error body, and no batch started without the key
        assert_eq!(
            (status, body["details"][0]["field"].as_str()),
            (400, Some("Idempotency-Key")),
            "{key:?}: {body}"
        );
    }
    let jobs: i64 = sqlx::query_scalar("select count(*) from jobs")
        .fetch_one(&app.db)
        .await?;
    assert_eq!(jobs, 0);
    Ok(())
}

/// Thousands of long activities on one day overflow `int4` daily sums: the rollup saturates
/// instead of failing the athlete's every recompute; a zone time over a week is refused.
#[tokio::test]
async fn analytics_a_day_of_huge_sums_still_recomputes_and_zone_times_are_bounded()
-> anyhow::Result<()> {
    // Arrange: 3,600 week-long runs on one day (more than int4 holds in seconds)
    let mut app = TestApp::new().await?;
    app.start().await?;
    athlete(&app, "usr_big", "org_demo", "UTC", json!({})).await?;
    let token = app.token("usr_big", "athlete", "org_demo");
    let mut too_long = run("big0", "2025-04-03T07:00:00Z", 10000.0, 3000);
    too_long["pace_zone_seconds"] = json!([604_801, 0, 0, 0, 0]);
    let (status, body) = app
        .post(&token, "/api/v1/activities", &json!([too_long]))
        .await?;
    assert_eq!(status, 400, "{body}");
    sqlx::query(
        "insert into activities (id, athlete_id, external_id, sport_type, start_date, distance,
                                 moving_time, elapsed_time, pace_zone_seconds)
         select gen_random_uuid(), 'usr_big', 'bulk' || g, 'Run', '2025-04-03T07:00:00Z', 1000,
                604800, 604800, array[604800, 0, 0, 0, 0]
           from generate_series(1, 3600) g",
    )
    .execute(&app.db)
    .await?;

    // Act: an upload queues the athlete's recompute
    let (status, body) = app
        .post(
            &token,
            "/api/v1/activities",
            &json!([run("big1", "2025-04-03T09:00:00Z", 10000.0, 3000)]),
        )
        .await?;

    // Assert
    assert_eq!(status, 200, "{body}");
    settled(&app, "usr_big").await?;
    let (moving, z1): (i32, i32) = sqlx::query_as(
        "select moving_time, pace_zone_seconds[1] from daily_rollups
          where athlete_id = 'usr_big' and day = '2025-04-03'",
    )
    .fetch_one(&app.db)
    .await?;
    assert_eq!((moving, z1), (i32::MAX, i32::MAX));
    Ok(())
}

/// A batch waits for its children in a `stats` slot. With every slot held by a batch (here the
/// only one), no child could run, nor any recompute queued behind them: a batch that sees no
/// child finish for a while runs its queued children itself, one after the other (it used to
/// run one per ~2.5 s, so 40 children held an upload's recompute for over 100 s).
#[tokio::test]
async fn analytics_a_batch_holding_the_only_slot_runs_its_children_and_frees_it()
-> anyhow::Result<()> {
    // Arrange: one stats slot in all, a batch of 40 athletes
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    app.start_worker(&[("PACER_CONCURRENCY", "1")])?;
    for i in 0..40 {
        athlete(&app, &format!("usr_s{i}"), "org_demo", "UTC", json!({})).await?;
    }
    athlete(&app, "usr_up", "org_other", "UTC", json!({})).await?;
    let coach = app.coach();
    let (status, started) = app
        .post(
            &coach,
            "/api/v1/admin/analytics/recompute",
            &json!({"org_id": "org_demo"}),
        )
        .await?;
    assert_eq!(status, 202, "{started}");
    let id = uuid::Uuid::parse_str(started["data"]["job_id"].as_str().unwrap_or_default())?;
    app.wait_state(&coach, id, "running", WAIT).await?;

    // Act: an upload's recompute queued behind the batch
    let (s, up) = app
        .post(
            &app.token("usr_up", "athlete", "org_other"),
            "/api/v1/activities",
            &run("up1", "2025-04-02T07:00:00Z", 5000.0, 1500),
        )
        .await?;
    assert_eq!(s, 200, "{up}");

    // Assert
    settled(&app, "usr_up").await?;
    let job = app.wait_state(&coach, id, "succeeded", WAIT).await?;
    assert_eq!(
        (&job["result"]["athletes"], &job["result"]["succeeded"]),
        (&json!(40), &json!(40)),
        "{job}"
    );
    let children: Vec<(String, i32)> =
        sqlx::query_as("select state, attempts from jobs where parent_id = $1")
            .bind(id)
            .fetch_all(&app.db)
            .await?;
    assert!(
        children.iter().all(|(s, a)| s == "succeeded" && *a == 1),
        "{children:?}"
    );
    Ok(())
}

/// Two uploads of the same activities in opposite orders, at once, both succeed: rows are
/// written in key order, so neither waits on the other in a cycle (PostgreSQL would abort one
/// as a deadlock).
#[tokio::test]
async fn analytics_concurrent_uploads_in_opposite_orders_both_succeed() -> anyhow::Result<()> {
    // Arrange
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    athlete(&app, "usr_dl", "org_demo", "UTC", json!({})).await?;
    let token = app.token("usr_dl", "athlete", "org_demo");
    let forward: Vec<Value> = (0..300)
        .map(|i| run(&format!("dl{i:03}"), "2025-04-03T07:00:00Z", 5000.0, 1500))
        .collect();
    let backward: Vec<Value> = forward.iter().rev().cloned().collect();
    let (forward, backward) = (json!(forward), json!(backward));

    // Act: rounds of both at once
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (a, b) = tokio::join!(
            app.post(&token, "/api/v1/activities", &forward),
            app.post(&token, "/api/v1/activities", &backward),
        );
        let ((sa, ba), (sb, bb)) = (a?, b?);
        assert_eq!(
            ba["data"]["results"][0]["external_id"], "dl000",
            "results in request order"
        );
        assert_eq!(bb["data"]["results"][0]["external_id"], "dl299");
        statuses.extend([sa, sb]);
    }

    // Assert
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let rows: i64 =
        sqlx::query_scalar("select count(*) from activities where athlete_id = 'usr_dl'")
            .fetch_one(&app.db)
            .await?;
    assert_eq!(rows, 300);
    Ok(())
}

/// A profile read that loaded the database before a recompute and writes the cache after the
/// recompute's invalidation must not be served afterwards: the cache key carries the athlete's
/// version, which the invalidation bumps.
#[tokio::test]
async fn analytics_a_late_profile_cache_write_is_not_served_after_a_recompute() -> anyhow::Result<()>
{
    // Arrange: a cached profile, and the key it was cached under
    let mut app = TestApp::new().await?;
    app.start().await?;
    athlete(&app, "usr_late", "org_demo", "UTC", json!({})).await?;
    let token = app.token("usr_late", "athlete", "org_demo");
    let profile = "/api/v1/analytics/athlete_profile?user_id=usr_late";
    let (status, _) = app.get(&token, profile).await?;
    assert_eq!(status, 200);
    let mut redis = app.redis().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:cache:athlete_profile:usr_late*", app.prefix))
        .query_async(&mut redis)
        .await?;
    assert_eq!(keys.len(), 1, "{keys:?}");

    // Act: a recompute invalidates; then the slow read's stale write lands on the key it knew
    let (status, body) = app
        .post(
            &token,
            "/api/v1/activities",
            &json!([run("late1", "2025-04-03T07:00:00Z", 10000.0, 3000)]),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    settled(&app, "usr_late").await?;
    let stale = json!({"user_id": "usr_late", "stale": true});
    let _: () = redis::cmd("SET")
        .arg(&keys[0])
        .arg(stale.to_string())
        .query_async(&mut redis)
        .await?;

    // Assert
    let (status, body) = app.get(&token, profile).await?;
    assert_eq!(status, 200);
    assert!(body["data"]["stale"].is_null(), "{body}");
    Ok(())
}

/// Cancelling a batch that is not running (queued for a retry, or its worker dead) cancels its
/// queued children at once too; the batch itself would only do it when running.
#[tokio::test]
async fn analytics_cancelling_a_batch_that_is_not_running_cancels_its_children()
-> anyhow::Result<()> {
    // Arrange: a queued batch (no worker) with two queued children
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    let coach = app.coach();
    let (status, started) = app
        .post(
            &coach,
            "/api/v1/admin/analytics/recompute",
            &json!({"org_id": "org_demo"}),
        )
        .await?;
    assert_eq!(status, 202, "{started}");
    let id = uuid::Uuid::parse_str(started["data"]["job_id"].as_str().unwrap_or_default())?;
    sqlx::query(
        "insert into jobs (id, kind, queue, owner_id, org_id, input, max_attempts, parent_id)
         select gen_random_uuid(), 'recompute_stats', 'stats', owner_id, org_id,
                jsonb_build_object('user_id', 'usr_c' || g), 3, id
           from jobs, generate_series(1, 2) g where id = $1",
    )
    .bind(id)
    .execute(&app.db)
    .await?;

    // Act
    let (status, body) = app.delete(&coach, &format!("/api/v1/jobs/{id}")).await?;

    // Assert
    assert_eq!(
        (status, &body["data"]["state"]),
        (200, &json!("cancelled")),
        "{body}"
    );
    let states: Vec<String> = sqlx::query_scalar("select state from jobs where parent_id = $1")
        .bind(id)
        .fetch_all(&app.db)
        .await?;
    assert_eq!(states, ["cancelled", "cancelled"]);
    Ok(())
}

/// A batch's later attempt (after a retry or a restart) goes on from the progress it had
/// reported: its progress never goes back to 0.
#[tokio::test]
async fn analytics_a_batch_resumed_by_a_later_attempt_keeps_its_progress() -> anyhow::Result<()> {
    // Arrange: a batch at 50 % (two of four children done), as a later attempt finds it
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    let coach = app.coach();
    let (status, started) = app
        .post(
            &coach,
            "/api/v1/admin/analytics/recompute",
            &json!({"org_id": "org_demo"}),
        )
        .await?;
    assert_eq!(status, 202, "{started}");
    let id = uuid::Uuid::parse_str(started["data"]["job_id"].as_str().unwrap_or_default())?;
    sqlx::query("update jobs set progress = 50, attempts = 1 where id = $1")
        .bind(id)
        .execute(&app.db)
        .await?;
    sqlx::query(
        "insert into jobs (id, kind, queue, owner_id, org_id, input, max_attempts, parent_id, state, finished_at)
         select gen_random_uuid(), 'recompute_stats', 'stats', owner_id, org_id,
                jsonb_build_object('user_id', 'usr_r' || g), 3, id,
                case when g <= 2 then 'succeeded' else 'queued' end,
                case when g <= 2 then now() end
           from jobs, generate_series(1, 4) g where id = $1",
    )
    .bind(id)
    .execute(&app.db)
    .await?;

    // Act
    app.start_worker(&[])?;
    app.wait_state(&coach, id, "succeeded", WAIT).await?;

    // Assert
    let events = app.events(&coach, id, None, None).await?;
    let pcts: Vec<i64> = events
        .iter()
        .filter_map(|(_, e)| e["progress"].as_i64())
        .collect();
    assert!(pcts.iter().all(|p| *p >= 50), "{pcts:?}");
    assert_eq!(pcts.last(), Some(&100), "{pcts:?}");
    Ok(())
}

/// An athlete who moves to another zone gets the days re-cut at once: the zone change queues
/// the athlete's recompute.
#[tokio::test]
async fn analytics_a_new_time_zone_recomputes_the_athletes_days() -> anyhow::Result<()> {
    // Arrange: a run at 23:30 UTC, on 3 April in UTC
    let mut app = TestApp::new().await?;
    app.start().await?;
    athlete(&app, "usr_tz", "org_demo", "UTC", json!({})).await?;
    let token = app.token("usr_tz", "athlete", "org_demo");
    let (status, body) = app
        .post(
            &token,
            "/api/v1/activities",
            &json!([run("tz1", "2025-04-03T23:30:00Z", 10000.0, 3000)]),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    settled(&app, "usr_tz").await?;
    let day = || async {
        let d: chrono::NaiveDate =
            sqlx::query_scalar("select day from daily_rollups where athlete_id = 'usr_tz'")
                .fetch_one(&app.db)
                .await?;
        anyhow::Ok(d.to_string())
    };
    assert_eq!(day().await?, "2025-04-03");

    // Act: the athlete moves to Tokyo (UTC+9)
    athlete(&app, "usr_tz", "org_demo", "Asia/Tokyo", json!({})).await?;

    // Assert
    eventually(WAIT, "the run's day in the new zone", || async {
        Ok((day().await? == "2025-04-04").then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn analytics_plan_sessions_raise_missed_sessions_and_no_data_until_the_plan_is_cancelled()
-> anyhow::Result<()> {
    // Arrange: two athletes in UTC; one ran one of its three planned sessions, the other
    // recorded nothing at all
    let mut app = TestApp::new().await?;
    app.start().await?;
    let coach = app.coach();
    let today = Utc::now().date_naive();
    let day = |n: i64| (today - chrono::Duration::days(n)).to_string();
    let session = |n: i64, secs: i64| {
        json!({"date": day(n), "target_duration_in_seconds": secs, "workout_name": "Easy run",
               "week": 1, "workout_type": "run"})
    };
    athlete(&app, "usr_adh1", "org_demo", "UTC", json!({})).await?;
    athlete(&app, "usr_adh2", "org_demo", "UTC", json!({})).await?;
    let token = app.token("usr_adh1", "athlete", "org_demo");
    let ran = format!("{}T12:00:00Z", day(5));
    let (s, body) = app
        .post(&token, "/api/v1/activities", &run("a1", &ran, 8000.0, 2400))
        .await?;
    anyhow::ensure!(s == 200, "upload: {s} {body}");
    let flags = |user: &'static str| {
        let app = &app;
        async move {
            settled(app, user).await?;
            let (s, body) = app
                .get(
                    &app.coach(),
                    &format!("/api/v1/analytics/athlete_profile?user_id={user}&refresh=true"),
                )
                .await?;
            anyhow::ensure!(s == 200, "profile: {s} {body}");
            Ok::<_, anyhow::Error>(
                body["data"]["metrics"]["attention_signals"]["flags"]
                    .as_array()
                    .map(|f| {
                        f.iter()
                            .map(|x| {
                                let code = x["code"].as_str().unwrap_or_default();
                                (
                                    code.to_owned(),
                                    x["message"].as_str().unwrap_or_default().to_owned(),
                                )
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default(),
            )
        }
    };
    let has = |f: &[(String, String)], code: &str| f.iter().any(|(c, _)| c == code);

    // Act: plans with sessions (extra workout fields, as in a generated plan's content, are
    // ignored); a session today is not judged yet
    let (s1, plan1) = app
        .post(&coach, "/api/v1/athletes/usr_adh1/plans",
            &json!({"name": "10K block", "status": "active", "start_date": day(6), "total_weeks": 4,
                    "sessions": [session(5, 2400), session(3, 2400), session(1, 3600), session(0, 3600)]}))
        .await?;
    let (s2, plan2) = app
        .post(
            &coach,
            "/api/v1/athletes/usr_adh2/plans",
            &json!({"name": "Base", "status": "active", "start_date": day(6), "total_weeks": 4,
                    "sessions": [session(6, 1800), session(4, 1800), session(2, 1800)]}),
        )
        .await?;
    let missed = flags("usr_adh1").await?;
    let no_data = flags("usr_adh2").await?;
    let (_, listed) = app.get(&coach, "/api/v1/athletes/usr_adh1/plans").await?;
    // cancelling the plan takes its sessions out of the signals
    let plan2_id = plan2["data"]["plan_instance_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (s3, _) = app
        .request(
            reqwest::Method::PATCH,
            Some(&coach),
            &format!("/api/v1/athletes/usr_adh2/plans/{plan2_id}"),
            Some(&json!({"status": "cancelled"})),
        )
        .await?;
    let cancelled = flags("usr_adh2").await?;
    // sessions replaced by the ones actually run: nothing missed
    let plan1_id = plan1["data"]["plan_instance_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (s4, replaced) = app
        .request(
            reqwest::Method::PUT,
            Some(&coach),
            &format!("/api/v1/athletes/usr_adh1/plans/{plan1_id}"),
            Some(&json!({"sessions": [session(5, 2400)]})),
        )
        .await?;
    let kept = flags("usr_adh1").await?;

    // Assert
    assert_eq!(
        [s1, s2, s3, s4],
        [201, 201, 200, 200],
        "{plan1} {plan2} {replaced}"
    );
    let m = missed.iter().find(|(c, _)| c == "missed_sessions");
    assert!(
        m.is_some_and(|(_, msg)| msg.starts_with("2 of 3") && msg.contains("29 %")),
        "40 of 140 planned minutes, two sessions without a run: {missed:?}"
    );
    assert!(!has(&missed, "no_data"), "{missed:?}");
    assert!(
        has(&no_data, "no_data") && !has(&no_data, "missed_sessions"),
        "{no_data:?}"
    );
    assert!(
        !has(&cancelled, "no_data"),
        "a cancelled plan's sessions do not count: {cancelled:?}"
    );
    assert!(!has(&kept, "missed_sessions"), "{kept:?}");
    let sessions = &listed["data"]["plans"][0]["sessions"];
    assert_eq!(sessions.as_array().map(Vec::len), Some(4), "{listed}");
    assert_eq!(
        sessions[0],
        json!({"date": day(5), "target_duration_in_seconds": 2400,
               "target_distance_in_meters": null, "workout_name": "Easy run"})
    );
    assert_eq!(
        replaced["data"]["sessions"].as_array().map(Vec::len),
        Some(1)
    );
    Ok(())
}

#[tokio::test]
async fn analytics_invalid_plan_sessions_are_all_named_and_nothing_is_stored() -> anyhow::Result<()>
{
    // Arrange
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    let coach = app.coach();
    athlete(&app, "usr_ps", "org_demo", "UTC", json!({})).await?;
    let (s, plan) = app
        .post(
            &coach,
            "/api/v1/athletes/usr_ps/plans",
            &json!({"name": "Base", "start_date": "2025-01-06", "total_weeks": 4,
                    "sessions": [{"date": "2025-01-07", "target_duration_in_seconds": 1800}]}),
        )
        .await?;
    anyhow::ensure!(s == 201, "{s} {plan}");
    let id = plan["data"]["plan_instance_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let stored = || async {
        let (_, body) = app.get(&coach, "/api/v1/athletes/usr_ps/plans").await?;
        Ok::<_, anyhow::Error>(body["data"]["plans"].clone())
    };
    let before = stored().await?;
    let bad = json!([
        {"target_duration_in_seconds": 1800},
        {"date": "2025-01-08", "target_duration_in_seconds": 0},
        "tuesday",
        {"date": "08/01/2025", "target_duration_in_seconds": 1800, "target_distance_in_meters": -1},
    ]);

    // Act
    let (create, created) = app
        .post(
            &coach,
            "/api/v1/athletes/usr_ps/plans",
            &json!({"name": "Next", "start_date": "2025-02-03", "total_weeks": 4, "sessions": bad}),
        )
        .await?;
    let (update, updated) = app
        .request(
            reqwest::Method::PATCH,
            Some(&coach),
            &format!("/api/v1/athletes/usr_ps/plans/{id}"),
            Some(&json!({"name": "Renamed", "sessions": bad})),
        )
        .await?;
    let (not_list, _) = app
        .request(
            reqwest::Method::PATCH,
            Some(&coach),
            &format!("/api/v1/athletes/usr_ps/plans/{id}"),
            Some(&json!({"sessions": {"date": "2025-01-08"}})),
        )
        .await?;
    let too_many: Vec<Value> = (0..1457)
        .map(|_| json!({"date": "2025-01-08", "target_duration_in_seconds": 60}))
        .collect();
    let (over, _) = app
        .request(
            reqwest::Method::PATCH,
            Some(&coach),
            &format!("/api/v1/athletes/usr_ps/plans/{id}"),
            Some(&json!({"sessions": too_many})),
        )
        .await?;

    // Assert
    assert_eq!(
        [create, update, not_list, over],
        [400, 400, 400, 400],
        "{created} {updated}"
    );
    let fields = |b: &Value| -> Vec<String> {
        b["details"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    for f in [
        "sessions[0].date",
        "sessions[1].target_duration_in_seconds",
        "sessions[2]",
        "sessions[3].date",
        "sessions[3].target_distance_in_meters",
    ] {
        assert!(fields(&created).iter().any(|x| x == f), "{f}: {created}");
        assert!(fields(&updated).iter().any(|x| x == f), "{f}: {updated}");
    }
    assert_eq!(stored().await?, before, "nothing changed");
    Ok(())
}

#[tokio::test]
async fn analytics_a_generated_plan_becomes_the_plan_instances_sessions() -> anyhow::Result<()> {
    // Arrange: a coach's generate_plan jobs, one with start_date (dated workouts) and one
    // without; the worker starts only after a first look at an unfinished job
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    athlete(&app, "usr_gen", "org_demo", "UTC", json!({})).await?;
    let coach = app.coach();
    let draft = "Week 1 (base, 15 km): Aerobic foundation\n- Tuesday: Easy run 30 min\n- Thursday: Easy run 30 min\n- Sunday: Long run 6 km\n\
                 Week 2 (base, 16 km): Aerobic foundation\n- Tuesday: Easy run 35 min\n- Thursday: Tempo run 20 min\n- Sunday: Long run 7 km\n";
    let input =
        json!({"weeks": 2, "level": "beginner", "org_id": "org_demo", "refined_draft": draft});
    let mut dated = input.clone();
    dated["start_date"] = json!("2025-05-06");
    let dated = app.submit(&coach, "generate_plan", dated).await?;
    let undated = app.submit(&coach, "generate_plan", input).await?;
    let draft_job = app
        .submit(
            &coach,
            "generate_draft",
            json!({"weeks": 2, "level": "beginner", "org_id": "org_demo"}),
        )
        .await?;
    let plan = |from_job: Uuid, start: &str| {
        json!({"name": "From the coach", "status": "active", "start_date": start, "total_weeks": 2,
               "from_job": from_job})
    };
    let path = "/api/v1/athletes/usr_gen/plans";
    let (unfinished, unfinished_body) = app.post(&coach, path, &plan(dated, "2025-05-06")).await?;
    app.start_worker(&[])?;
    let job = app.wait_state(&coach, dated, "succeeded", WAIT).await?;
    app.wait_state(&coach, undated, "succeeded", WAIT).await?;

    // Act
    let (s1, from_dated) = app.post(&coach, path, &plan(dated, "2025-05-06")).await?;
    // four weeks later, on the same weekday: the undated plan's days fall as the planner's would
    let (s2, from_undated) = app.post(&coach, path, &plan(undated, "2025-06-03")).await?;
    let athlete_token = app.token("usr_gen", "athlete", "org_demo");
    let (not_theirs, _) = app
        .post(&athlete_token, path, &plan(dated, "2025-05-06"))
        .await?;
    let (wrong_kind, wrong_kind_body) = app
        .post(&coach, path, &plan(draft_job, "2025-05-06"))
        .await?;
    let mut both = plan(dated, "2025-05-06");
    both["sessions"] = json!([]);
    let (both_given, _) = app.post(&coach, path, &both).await?;
    let (_, listed) = app.get(&coach, path).await?;

    // Assert
    assert_eq!(
        (unfinished, unfinished_body["code"].as_str()),
        (409, Some("job_not_succeeded")),
        "{unfinished_body}"
    );
    assert_eq!([s1, s2], [201, 201], "{from_dated} {from_undated}");
    let content = job["result"]["content"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let sessions = from_dated["data"]["sessions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(content.len(), 6, "{job}");
    assert_eq!(sessions.len(), 6, "{from_dated}");
    for (w, s) in content.iter().zip(&sessions) {
        assert_eq!(s["date"], w["date"], "{s} {w}");
        assert_eq!(
            s["target_duration_in_seconds"],
            w["target_duration_in_seconds"]
        );
        assert_eq!(s["workout_name"], w["workout_name"]);
    }
    let shifted: Vec<String> = sessions
        .iter()
        .filter_map(|s| s["date"].as_str())
        .filter_map(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .map(|d| (d + chrono::Duration::days(28)).to_string())
        .collect();
    let derived: Vec<String> = from_undated["data"]["sessions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["date"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(derived, shifted, "{from_undated}");
    assert_eq!(
        not_theirs, 404,
        "another user's job does not exist for the athlete"
    );
    assert_eq!(wrong_kind, 400, "{wrong_kind_body}");
    assert_eq!(both_given, 400);
    assert_eq!(
        listed["data"]["plans"].as_array().map(Vec::len),
        Some(2),
        "only the two accepted plans were stored: {listed}"
    );
    Ok(())
}

#[tokio::test]
async fn analytics_a_recompute_key_whose_job_is_pruned_mid_request_records_a_new_job()
-> anyhow::Result<()> {
    // Arrange: a finished keyed batch, and a trigger that plays the retention pruner at the
    // worst moment: right after each insert statement on jobs, so between the insert's
    // conflict on the key and the lookup of the job holding it
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    app.org("org_demo", &[]).await?;
    let coach = app.coach();
    let post = || {
        app.http
            .post(format!("{}/api/v1/admin/analytics/recompute", app.base()))
            .bearer_auth(&coach)
            .header("Idempotency-Key", "nightly-1")
            .json(&json!({"org_id": "org_demo"}))
            .send()
    };
    let first: Value = post().await?.json().await?;
    let first_id = first["data"]["job_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    sqlx::query("update jobs set state = 'succeeded', finished_at = now() where id = $1::uuid")
        .bind(&first_id)
        .execute(&app.db)
        .await?;
    sqlx::raw_sql(
        "create function prune_finished() returns trigger language plpgsql as $$
         begin delete from jobs where finished_at is not null and idempotency_key is not null; return null; end $$;
         create trigger prune_after_insert after insert on jobs
            for each statement execute function prune_finished();",
    )
    .execute(&app.db)
    .await?;

    // Act
    let res = post().await?;
    let status = res.status().as_u16();
    let second: Value = res.json().await?;

    // Assert: the key is free again once its job is gone: a new job, not a 404
    assert_eq!(status, 202, "{second}");
    let second_id = second["data"]["job_id"].as_str().unwrap_or_default();
    assert_ne!(second_id, first_id);
    let keyed: Vec<(String,)> =
        sqlx::query_as("select id::text from jobs where idempotency_key = 'nightly-1'")
            .fetch_all(&app.db)
            .await?;
    assert_eq!(keyed, [(second_id.to_owned(),)]);
    Ok(())
}

#[tokio::test]
async fn analytics_a_registered_push_token_shows_in_the_roster_and_is_never_returned()
-> anyhow::Result<()> {
    // Arrange: the coach's roster read once, so it is cached before the token arrives
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    athlete(&app, "usr_push", "org_demo", "UTC", json!({})).await?;
    let token = app.token("usr_push", "athlete", "org_demo");
    let coach = app.coach();
    let roster = || async {
        let (_, b) = app
            .get(
                &coach,
                "/api/v1/analytics/coach_athletes_metrics?search=usr_push",
            )
            .await?;
        Ok::<_, anyhow::Error>(b["data"]["athletes"][0]["has_push_token"].clone())
    };
    let before = roster().await?;
    let path = "/api/v1/me/push_token";

    // Act
    let (s1, registered) = app
        .put(
            &token,
            path,
            &json!({"token": "fcm:abc123", "platform": "android"}),
        )
        .await?;
    let after = roster().await?;
    let (s2, refused) = app
        .put(&token, path, &json!({"token": "  ", "platform": "pager"}))
        .await?;
    let kept = roster().await?;
    let (_, shown) = app
        .get(&app.admin(), "/api/v1/admin/users/usr_push")
        .await?;
    let (s3, forgotten) = app.delete(&token, path).await?;
    let gone = roster().await?;

    // Assert
    assert_eq!(before, json!(false));
    assert_eq!(
        [s1, s2, s3],
        [200, 400, 200],
        "{registered} {refused} {forgotten}"
    );
    assert_eq!(
        registered["data"],
        json!({"has_push_token": true, "platform": "android"})
    );
    assert_eq!(after, json!(true), "the cached roster was invalidated");
    let fields: Vec<&str> = refused["details"]
        .as_array()
        .map(|d| d.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["token", "platform"], "{refused}");
    assert_eq!(kept, json!(true), "a refused request changes nothing");
    assert!(
        shown["data"]["id"] == "usr_push" && !shown.to_string().contains("abc123"),
        "the token is never returned: {shown}"
    );
    assert_eq!(forgotten["data"]["has_push_token"], false);
    assert_eq!(gone, json!(false));
    Ok(())
}

#[tokio::test]
async fn analytics_a_users_new_name_and_image_show_in_the_cached_profile_and_roster()
-> anyhow::Result<()> {
    // Arrange: both views read once, so both are cached
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    athlete(&app, "usr_renamed", "org_demo", "UTC", json!({})).await?;
    let coach = app.coach();
    let profile = "/api/v1/analytics/athlete_profile?user_id=usr_renamed";
    let roster = "/api/v1/analytics/coach_athletes_metrics";
    let (s1, before) = app.get(&coach, profile).await?;
    let (s2, roster_before) = app.get(&coach, roster).await?;
    assert_eq!((s1, s2), (200, 200), "{before} {roster_before}");
    assert_eq!(before["data"]["display_name"], "usr_renamed");

    // Act: the coach renames the athlete and gives an image (no time zone change)
    let (status, res) = app
        .put(
            &coach,
            "/api/v1/admin/users/usr_renamed",
            &json!({"org_id": "org_demo", "role": "athlete", "timezone": "UTC",
                    "display_name": "Rebecca", "profile_image_url": "https://cdn.example.com/r.jpg"}),
        )
        .await?;
    assert_eq!(status, 200, "{res}");

    // Assert: neither cached view keeps the old name
    let (_, after) = app.get(&coach, profile).await?;
    assert_eq!(after["data"]["display_name"], "Rebecca", "{after}");
    assert_eq!(
        after["data"]["profile_image_url"], "https://cdn.example.com/r.jpg",
        "{after}"
    );
    let (_, roster_after) = app.get(&coach, roster).await?;
    let names: Vec<&str> = roster_after["data"]["athletes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["display_name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(names.contains(&"Rebecca"), "{roster_after}");
    assert!(!names.contains(&"usr_renamed"), "{roster_after}");
    // names sort as a reader expects, whatever their case
    athlete(
        &app,
        "usr_lower",
        "org_demo",
        "UTC",
        json!({"display_name": "alex"}),
    )
    .await?;
    let (_, sorted) = app.get(&coach, roster).await?;
    let names: Vec<&str> = sorted["data"]["athletes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["display_name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, ["alex", "Rebecca"], "{sorted}");
    Ok(())
}
