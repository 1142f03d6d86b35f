//! The six read endpoints of seed 004. Limits, caches and bucket rules are the seed's;
//! `docs/analytics.md` says how each number is computed.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use pacer_common::analytics::format_pace;
use pacer_common::auth::{Claims, Role};
use pacer_common::db::analytics::{self as db, DayAgg, MetricsRow, RosterFilter, Zone};
use pacer_common::db::users::UserRow;
use salvo::prelude::*;
use serde_json::{Value, json};

use super::common::*;
use super::plans::plan_view;
use crate::auth::{app_state, claims, require_role};
use crate::error::ApiError;
use crate::schemas as s;
use crate::state::AppState;

const PROFILE_TTL: u64 = 900;
const V2_TTL: u64 = 300;
const ROSTER_TTL: u64 = 600;

/// Goals still ahead and plans active or scheduled, per athlete.
async fn goals_and_plans(
    state: &AppState,
    users: &[&UserRow],
) -> Result<(HashMap<String, Vec<Value>>, HashMap<String, Vec<Value>>), ApiError> {
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let today: HashMap<&str, NaiveDate> = users
        .iter()
        .map(|u| {
            (
                u.id.as_str(),
                Utc::now().with_timezone(&user_tz(u)).date_naive(),
            )
        })
        .collect();
    let mut goals: HashMap<String, Vec<Value>> = HashMap::new();
    for g in db::list_goals(&state.db, &ids).await? {
        if today
            .get(g.athlete_id.as_str())
            .is_some_and(|t| g.race_date >= *t)
        {
            goals.entry(g.athlete_id.clone()).or_default().push(json!({
                "race_name": g.race_name,
                "race_date": g.race_date,
                "goal_time": g.goal_time,
            }));
        }
    }
    let mut plans: HashMap<String, Vec<Value>> = HashMap::new();
    for p in db::list_plans(&state.db, &ids).await? {
        if p.status == "active" || p.status == "scheduled" {
            let t = today
                .get(p.athlete_id.as_str())
                .copied()
                .unwrap_or_default();
            let mut v = plan_view(&p, t);
            if let Some(o) = v.as_object_mut() {
                o.remove("start_date");
            }
            plans.entry(p.athlete_id.clone()).or_default().push(v);
        }
    }
    Ok((goals, plans))
}

fn flags(m: Option<&MetricsRow>) -> Value {
    m.map(|m| m.flags.0.clone()).unwrap_or_else(|| json!([]))
}

/// `GET /api/v1/analytics/athlete_profile?user_id=…[&refresh=true]`.
#[endpoint(
    tags("analytics"),
    summary = "An athlete's profile: metrics, current goals and plans (cached 15 min)",
    security(("bearer" = [])),
    parameters(
        ("user_id" = String, Query, min_length = 1, max_length = 200, description = "The athlete (the caller, a coach of its organization, or an admin)"),
        ("refresh" = Option<bool>, Query, description = "Bypass the cache (default false)"),
    ),
    responses(
        (status_code = 200, description = "The profile", body = s::AthleteProfileEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 500, 503)
)]
pub async fn athlete_profile(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = app_state(depot)?.clone();
    let claims = claims(depot)?.clone();
    let mut invalid = Invalid::default();
    let user_id = invalid.or(
        str_param(req, "user_id")
            .and_then(|id| id.ok_or_else(|| ApiError::field("user_id", "is required"))),
        String::new(),
    )?;
    let refresh = invalid.or(bool_param(req, "refresh"), false)?;
    invalid.finish()?;
    let user = target_user(&state, &claims, Some(user_id)).await?;
    let key = profile_key(&state, &user.id).await;
    if !refresh && let Some(cached) = cache_get(&state, &key).await {
        ok(res, cached);
        return Ok(());
    }
    let metrics = db::metrics_for(&state.db, std::slice::from_ref(&user.id)).await?;
    let m = metrics.first();
    let (goals, plans) = goals_and_plans(&state, &[&user]).await?;
    let today = Utc::now().with_timezone(&user_tz(&user)).date_naive();
    let history =
        db::health_between(&state.db, &user.id, today - Duration::days(29), today).await?;
    let series = |f: &dyn Fn(&db::HealthIn) -> Option<f64>| -> Vec<Value> {
        history
            .iter()
            .filter_map(|h| f(h).map(|v| json!({"date": h.day, "value": v})))
            .collect()
    };
    let data = json!({
        "user_id": user.id,
        "display_name": user.display_name,
        "profile_image_url": user.profile_image_url,
        "metrics": {
            "running_analytics": {
                "weekly_distance_km": m.map(|m| round1(m.weekly_distance_km)),
                "avg_pace_per_km": m.and_then(|m| m.avg_pace_s_per_km).and_then(format_pace),
            },
            "fitness": {
                "current": {
                    "vo2_max": opt_round1(m.and_then(|m| m.vo2_max)),
                    "hrv_avg": opt_round1(m.and_then(|m| m.hrv_avg)),
                    "recovery_score": opt_round1(m.and_then(|m| m.recovery_score)),
                    "vo2_max_history": series(&|h| h.vo2_max),
                    "hrv_history": series(&|h| h.hrv_rmssd),
                    "recovery_score_history": series(&|h| h.recovery_score),
                },
                "seven_days_ago": {
                    "vo2_max": opt_round1(m.and_then(|m| m.vo2_max_prev)),
                    "hrv_avg": opt_round1(m.and_then(|m| m.hrv_avg_prev)),
                    "recovery_score": opt_round1(m.and_then(|m| m.recovery_score_prev)),
                },
            },
            "training": {
                "current_week_load": m.map(|m| round1(m.current_week_load)),
                "four_week_avg_load": m.map(|m| round1(m.four_week_avg_load)),
                "ctl": m.map(|m| round1(m.ctl)),
                "atl": m.map(|m| round1(m.atl)),
                "acwr": m.and_then(|m| m.acwr).map(|a| pacer_common::analytics::round(a, 2)),
            },
            "attention_signals": {"flags": flags(m)},
            "last_updated": m.map(|m| m.last_updated),
        },
        "current_goals": {"races": goals.get(&user.id).cloned().unwrap_or_default()},
        "current_plans": plans.get(&user.id).cloned().unwrap_or_default(),
    });
    cache_put(&state, &key, &data, PROFILE_TTL).await;
    ok(res, data);
    Ok(())
}

/// `GET /api/v1/analytics/fitness_stats?days=30` (1..=365).
#[endpoint(
    tags("analytics"),
    summary = "Totals over the last `days` days",
    security(("bearer" = [])),
    parameters(
        ("days" = Option<i64>, Query, minimum = 1, maximum = 365, description = "Window in days (default 30)"),
        ("user_id" = Option<String>, Query, max_length = 200, description = "The athlete (default the caller; a coach: its organization's users; an admin: anyone)"),
    ),
    responses(
        (status_code = 200, description = "The totals", body = s::FitnessStatsEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 500, 503)
)]
pub async fn fitness_stats(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = app_state(depot)?.clone();
    let claims = claims(depot)?.clone();
    let mut invalid = Invalid::default();
    let days = invalid
        .or(int_param(req, "days", 1, 365), None)?
        .unwrap_or(30);
    let user_id = invalid.or(str_param(req, "user_id"), None)?;
    invalid.finish()?;
    let user = target_user(&state, &claims, user_id).await?;
    let t = db::fitness_totals(&state.db, &user.id, Utc::now() - Duration::days(days)).await?;
    #[allow(clippy::cast_precision_loss)]
    let pace = pacer_common::analytics::avg_pace(t.run_moving_time as f64, t.run_distance)
        .and_then(format_pace);
    let mut data = json!({
        "days": days,
        "total_activities": t.total_activities,
        "total_distance": round1(t.total_distance),
        "total_duration": t.total_duration,
        "avg_pace": pace,
    });
    if let Some(hr) = t.avg_heart_rate {
        data["avg_heart_rate"] = json!(hr.round());
    }
    ok(res, data);
    Ok(())
}

/// Sums day aggregates into bucket points (bucket start → totals).
fn fold(days: &[DayAgg], gran: Gran, buckets: &[NaiveDate]) -> Vec<DayAgg> {
    let mut out: Vec<DayAgg> = buckets
        .iter()
        .map(|d| DayAgg {
            day: *d,
            ..DayAgg::default()
        })
        .collect();
    let index: HashMap<NaiveDate, usize> =
        buckets.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    for d in days {
        if let Some(&i) = index.get(&gran.start(d.day)) {
            let b = &mut out[i];
            b.activities += d.activities;
            b.distance += d.distance;
            b.moving_time += d.moving_time;
            b.training_load += d.training_load;
            b.calories += d.calories;
            b.z1 += d.z1;
            b.z2 += d.z2;
            b.z3 += d.z3;
            b.z4 += d.z4;
            b.z5 += d.z5;
        }
    }
    out
}

/// The zone of a read: `timezone` (IANA) wins, then legacy `timezone_offset_minutes`
/// (east of UTC), then `default`.
fn zone_params(req: &Request, default: &str) -> Result<(Zone, String), ApiError> {
    if let Some(name) = str_param(req, "timezone")? {
        let tz = parse_tz("timezone", &name)?;
        return Ok((Zone::Iana(tz.name().to_owned()), tz.name().to_owned()));
    }
    if let Some(off) = int_param(req, "timezone_offset_minutes", -840, 840)? {
        let off = i32::try_from(off).unwrap_or(0);
        return Ok((Zone::Offset(off), format!("{off:+}min")));
    }
    let tz = parse_tz("timezone", default)?;
    Ok((Zone::Iana(tz.name().to_owned()), tz.name().to_owned()))
}

fn local_date(ts: DateTime<Utc>, zone: &Zone) -> NaiveDate {
    match zone {
        Zone::Iana(n) => n
            .parse::<chrono_tz::Tz>()
            .map(|tz| ts.with_timezone(&tz).date_naive())
            .unwrap_or_else(|_| ts.date_naive()),
        Zone::Offset(m) => (ts + Duration::minutes(i64::from(*m))).date_naive(),
    }
}

/// `GET /api/v1/analytics/running_stats?from_timestamp&to_timestamp&range_type[&metric_type][&timezone|&timezone_offset_minutes]`.
#[endpoint(
    tags("analytics"),
    summary = "Running totals per bucket between two timestamps",
    security(("bearer" = [])),
    parameters(
        ("from_timestamp" = i64, Query, minimum = 0, maximum = 32503680000i64, description = "Start (Unix seconds)"),
        ("to_timestamp" = i64, Query, minimum = 0, maximum = 32503680000i64, description = "End (Unix seconds): within 365 days of `from_timestamp`, at most 7 days in the future"),
        ("range_type" = s::RangeType, Query, description = "daily: one point a day; weekly: 7 days from `from_timestamp`; monthly: one point a week; yearly: one point a month"),
        ("metric_type" = Option<s::MetricType>, Query, description = "Accepted for compatibility (default distance); every metric is returned"),
        ("timezone" = Option<String>, Query, max_length = 200, description = "IANA time zone for the day boundaries, e.g. Europe/London"),
        ("timezone_offset_minutes" = Option<i64>, Query, minimum = -840, maximum = 840, description = "Legacy: minutes east of UTC (`timezone` wins)"),
        ("user_id" = Option<String>, Query, max_length = 200, description = "The athlete (default the caller; a coach: its organization's users; an admin: anyone)"),
    ),
    responses(
        (status_code = 200, description = "One point per bucket, oldest first", body = s::RunningStatsEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 500, 503)
)]
pub async fn running_stats(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = app_state(depot)?.clone();
    let claims = claims(depot)?.clone();
    let mut invalid = Invalid::default();
    // a malformed stamp is reported once, as itself, and left out of the range checks
    let stamp = |invalid: &mut Invalid, name: &str| -> Result<Option<i64>, ApiError> {
        match int_param(req, name, 0, 32_503_680_000) {
            Ok(None) => {
                invalid.push(name, "is required (Unix seconds)");
                Ok(None)
            }
            parsed => invalid.or(parsed, None),
        }
    };
    let from = stamp(&mut invalid, "from_timestamp")?;
    let to = stamp(&mut invalid, "to_timestamp")?;
    let range = invalid.or(str_param(req, "range_type"), None)?;
    match range.as_deref() {
        Some("daily" | "weekly" | "monthly" | "yearly") => {}
        Some(_) => invalid.push(
            "range_type",
            "must be one of daily, weekly, monthly, yearly",
        ),
        None => invalid.push(
            "range_type",
            "is required (daily, weekly, monthly or yearly)",
        ),
    }
    let metric = invalid
        .or(str_param(req, "metric_type"), None)?
        .unwrap_or_else(|| "distance".into());
    if !["distance", "duration", "training_load"].contains(&metric.as_str()) {
        invalid.push(
            "metric_type",
            "must be one of distance, duration, training_load",
        );
    }
    if let (Some(f), Some(t)) = (from, to) {
        if t < f {
            invalid.push("to_timestamp", "must not be before from_timestamp");
        } else if t - f > 365 * 86_400 {
            invalid.push("to_timestamp", "must be within 365 days of from_timestamp");
        }
        if t > Utc::now().timestamp() + 7 * 86_400 {
            invalid.push("to_timestamp", "must not be more than 7 days in the future");
        }
    }
    // the zone parameters are checked here; the athlete's own zone is the default below
    invalid.or(zone_params(req, "UTC").map(|_| ()), ())?;
    let user_id = invalid.or(str_param(req, "user_id"), None)?;
    invalid.finish()?;
    let (Some(from), Some(to), Some(range)) = (from, to, range) else {
        return Err(ApiError::field("from_timestamp", "is required"));
    };
    let user = target_user(&state, &claims, user_id).await?;
    let (zone, _) = zone_params(req, &user.timezone)?;
    let ts = |s: i64| {
        DateTime::from_timestamp(s, 0)
            .ok_or_else(|| ApiError::field("from_timestamp", "is out of range"))
    };
    let from_day = local_date(ts(from)?, &zone);
    let to_day = local_date(ts(to)?, &zone);
    let (lo, hi, gran) = match range.as_str() {
        "daily" => (from_day, to_day, Gran::Day),
        "weekly" => (from_day, from_day + Duration::days(6), Gran::Day),
        "monthly" => (from_day, to_day, Gran::Week),
        _ => (from_day, to_day, Gran::Month),
    };
    let days = db::day_aggregates(&state.db, &user.id, &zone, lo, hi, true).await?;
    let points: Vec<Value> = fold(&days, gran, &gran.buckets(lo, hi))
        .iter()
        .map(|b| {
            json!({
                "date": b.day,
                "distance": round1(b.distance),
                "duration": b.moving_time,
                "nexrex_training_load": round1(b.training_load),
                "runs": b.activities,
                "calories": round1(b.calories),
                "pace_z1_time": b.z1,
                "pace_z2_time": b.z2,
                "pace_z3_time": b.z3,
                "pace_z4_time": b.z4,
                "pace_z5_time": b.z5,
            })
        })
        .collect();
    ok(res, Value::Array(points));
    Ok(())
}

/// `from`/`to` (YYYY-MM-DD, ≤ 400 days apart) for the v2 endpoints.
fn date_range(req: &Request) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let mut errors = Vec::new();
    let mut get = |name: &str| match date_param(req, name) {
        Ok(Some(d)) => Some(d),
        Ok(None) => {
            errors.push(pacer_common::FieldError::new(
                name,
                "is required (YYYY-MM-DD)",
            ));
            None
        }
        Err(ApiError::Validation(_, d)) => {
            errors.extend(d);
            None
        }
        Err(_) => None,
    };
    let from = get("from");
    let to = get("to");
    if let (Some(f), Some(t)) = (from, to) {
        if t < f {
            errors.push(pacer_common::FieldError::new(
                "to",
                "must not be before from",
            ));
        } else if (t - f).num_days() > 400 {
            errors.push(pacer_common::FieldError::new(
                "to",
                "must be within 400 days of from",
            ));
        }
    }
    match (from, to) {
        (Some(f), Some(t)) if errors.is_empty() => Ok((f, t)),
        _ => Err(ApiError::validation(errors)),
    }
}

/// `GET /api/v1/analytics/activity_stats?from&to[&timezone=UTC][&granularity=day|month][&refresh]`.
#[endpoint(
    tags("analytics"),
    summary = "Activity totals per day or month (cached 5 min)",
    security(("bearer" = [])),
    parameters(
        ("from" = chrono::NaiveDate, Query, description = "First day (YYYY-MM-DD)"),
        ("to" = chrono::NaiveDate, Query, description = "Last day (YYYY-MM-DD), at most 400 days after `from`"),
        ("timezone" = Option<String>, Query, max_length = 200, description = "IANA time zone for the day boundaries (default UTC), e.g. Europe/London"),
        ("granularity" = Option<s::DayOrMonth>, Query, description = "Bucket size (default day)"),
        ("refresh" = Option<bool>, Query, description = "Bypass the cache (default false)"),
        ("user_id" = Option<String>, Query, max_length = 200, description = "The athlete (default the caller; a coach: its organization's users; an admin: anyone)"),
    ),
    responses(
        (status_code = 200, description = "Buckets and totals", body = s::ActivityStatsEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 500, 503)
)]
pub async fn activity_stats(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = app_state(depot)?.clone();
    let claims = claims(depot)?.clone();
    let mut invalid = Invalid::default();
    let (from, to) = invalid.or(date_range(req), Default::default())?;
    let gran = match invalid.or(str_param(req, "granularity"), None)?.as_deref() {
        None | Some("day") => Gran::Day,
        Some("month") => Gran::Month,
        Some(_) => {
            invalid.push("granularity", "must be day or month");
            Gran::Day
        }
    };
    let tz_name = invalid
        .or(str_param(req, "timezone"), None)?
        .unwrap_or_else(|| "UTC".into());
    let tz = invalid.or(parse_tz("timezone", &tz_name), chrono_tz::UTC)?;
    let refresh = invalid.or(bool_param(req, "refresh"), false)?;
    let user_id = invalid.or(str_param(req, "user_id"), None)?;
    invalid.finish()?;
    let user = target_user(&state, &claims, user_id).await?;
    let ver = version(&state, &format!("athlete_version:{}", user.id)).await;
    let key = state.keys.cache(&format!(
        "activity_stats:{}:v{ver}:{from}:{to}:{}:{gran:?}",
        user.id,
        tz.name()
    ));
    if !refresh && let Some(cached) = cache_get(&state, &key).await {
        ok(res, cached);
        return Ok(());
    }
    let zone = Zone::Iana(tz.name().to_owned());
    let days = db::day_aggregates(&state.db, &user.id, &zone, from, to, false).await?;
    let buckets = fold(&days, gran, &gran.buckets(from, to));
    let view = |b: &DayAgg| {
        json!({
            "date": b.day,
            "activities": b.activities,
            "distance": round1(b.distance),
            "duration": b.moving_time,
            "training_load": round1(b.training_load),
            "calories": round1(b.calories),
            "pace_z1_time": b.z1,
            "pace_z2_time": b.z2,
            "pace_z3_time": b.z3,
            "pace_z4_time": b.z4,
            "pace_z5_time": b.z5,
        })
    };
    let mut sum = DayAgg::default();
    for b in &buckets {
        sum.activities += b.activities;
        sum.distance += b.distance;
        sum.moving_time += b.moving_time;
        sum.training_load += b.training_load;
        sum.calories += b.calories;
        sum.z1 += b.z1;
        sum.z2 += b.z2;
        sum.z3 += b.z3;
        sum.z4 += b.z4;
        sum.z5 += b.z5;
    }
    let mut totals = view(&sum);
    if let Some(o) = totals.as_object_mut() {
        o.remove("date");
    }
    let data = json!({
        "from": from,
        "to": to,
        "timezone": tz.name(),
        "granularity": if gran == Gran::Day { "day" } else { "month" },
        "buckets": buckets.iter().map(view).collect::<Vec<_>>(),
        "totals": totals,
    });
    cache_put(&state, &key, &data, V2_TTL).await;
    ok(res, data);
    Ok(())
}

/// `GET /api/v1/analytics/health_metrics?from&to[&granularity=day|week|month][&refresh]`.
#[endpoint(
    tags("analytics"),
    summary = "Health metrics per day, week or month (cached 5 min)",
    security(("bearer" = [])),
    parameters(
        ("from" = chrono::NaiveDate, Query, description = "First day (YYYY-MM-DD)"),
        ("to" = chrono::NaiveDate, Query, description = "Last day (YYYY-MM-DD), at most 400 days after `from`"),
        ("granularity" = Option<s::DayWeekOrMonth>, Query, description = "Bucket size (default day); a bucket averages its days"),
        ("refresh" = Option<bool>, Query, description = "Bypass the cache (default false)"),
        ("user_id" = Option<String>, Query, max_length = 200, description = "The athlete (default the caller; a coach: its organization's users; an admin: anyone)"),
    ),
    responses(
        (status_code = 200, description = "One point per bucket", body = s::HealthMetricsSeriesEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 500, 503)
)]
pub async fn health_metrics(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = app_state(depot)?.clone();
    let claims = claims(depot)?.clone();
    let mut invalid = Invalid::default();
    let (from, to) = invalid.or(date_range(req), Default::default())?;
    let gran = match invalid.or(str_param(req, "granularity"), None)?.as_deref() {
        None | Some("day") => Gran::Day,
        Some("week") => Gran::Week,
        Some("month") => Gran::Month,
        Some(_) => {
            invalid.push("granularity", "must be day, week or month");
            Gran::Day
        }
    };
    let refresh = invalid.or(bool_param(req, "refresh"), false)?;
    let user_id = invalid.or(str_param(req, "user_id"), None)?;
    invalid.finish()?;
    let user = target_user(&state, &claims, user_id).await?;
    let ver = version(&state, &format!("athlete_version:{}", user.id)).await;
    let key = state.keys.cache(&format!(
        "health_metrics:{}:v{ver}:{from}:{to}:{gran:?}",
        user.id
    ));
    if !refresh && let Some(cached) = cache_get(&state, &key).await {
        ok(res, cached);
        return Ok(());
    }
    let rows = db::health_between(&state.db, &user.id, from, to).await?;
    let starts = gran.buckets(from, to);
    let mut acc: HashMap<NaiveDate, [(f64, u32); 4]> = HashMap::new();
    for r in &rows {
        let e = acc.entry(gran.start(r.day)).or_default();
        for (slot, v) in e
            .iter_mut()
            .zip([r.resting_hr, r.hrv_rmssd, r.vo2_max, r.recovery_score])
        {
            if let Some(v) = v {
                slot.0 += v;
                slot.1 += 1;
            }
        }
    }
    let avg = |s: (f64, u32)| (s.1 > 0).then(|| round1(s.0 / f64::from(s.1)));
    let points: Vec<Value> = starts
        .iter()
        .map(|d| {
            let a = acc.get(d).copied().unwrap_or_default();
            json!({
                "date": d,
                "resting_hr": avg(a[0]),
                "hrv_rmssd": avg(a[1]),
                "vo2_max": avg(a[2]),
                "recovery_score": avg(a[3]),
            })
        })
        .collect();
    let data = json!({
        "from": from,
        "to": to,
        "granularity": match gran { Gran::Day => "day", Gran::Week => "week", Gran::Month => "month" },
        "points": points,
    });
    cache_put(&state, &key, &data, V2_TTL).await;
    ok(res, data);
    Ok(())
}

fn flag_param(req: &Request, name: &str) -> Result<bool, ApiError> {
    match str_param(req, name)?.as_deref() {
        None | Some("0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(_) => Err(ApiError::field(name, "must be \"1\" or \"0\"")),
    }
}

/// `GET /api/v1/analytics/coach_athletes_metrics` (coach or admin).
#[endpoint(
    tags("analytics"),
    summary = "A coach's roster with each athlete's metrics, goals and plans (coach or admin; cached 10 min)",
    security(("bearer" = [])),
    parameters(
        ("org_id" = Option<String>, Query, max_length = 200, description = "The organization (default the caller's; a coach: only its own)"),
        ("filter_by_coach" = Option<s::BoolFlag>, Query, description = "Only athletes assigned to the caller"),
        ("group_id" = Option<String>, Query, max_length = 200, description = "Only athletes in this group (not with `unassigned_only`)"),
        ("unassigned_only" = Option<s::BoolFlag>, Query, description = "Only athletes in no group (not with `group_id`)"),
        ("search" = Option<String>, Query, max_length = 200, description = "Matches name, username or email"),
        ("page" = Option<i64>, Query, minimum = 1, maximum = 1000000, description = "Page number (default 1)"),
        ("per_page" = Option<i64>, Query, minimum = 1, maximum = 200, description = "Page size (default 200)"),
        ("no_cache" = Option<s::BoolFlag>, Query, description = "Bypass the cache"),
    ),
    responses(
        (status_code = 200, description = "A page of athletes", body = s::CoachAthletesMetricsEnvelope),
    ),
    status_codes(200, 400, 401, 403, 500, 503)
)]
pub async fn coach_athletes_metrics(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = app_state(depot)?.clone();
    let claims: Claims = claims(depot)?.clone();
    require_role(&claims, &[Role::Coach, Role::Admin])?;
    let mut invalid = Invalid::default();
    let org_id = invalid
        .or(str_param(req, "org_id"), None)?
        .unwrap_or_else(|| claims.org_id.clone());
    let by_coach = invalid.or(flag_param(req, "filter_by_coach"), false)?;
    let group_id = invalid.or(str_param(req, "group_id"), None)?;
    let unassigned = invalid.or(flag_param(req, "unassigned_only"), false)?;
    if group_id.is_some() && unassigned {
        invalid.push("group_id", "cannot be combined with unassigned_only");
        invalid.push("unassigned_only", "cannot be combined with group_id");
    }
    let search = invalid
        .or(str_param(req, "search"), None)?
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let page = invalid
        .or(int_param(req, "page", 1, 1_000_000), None)?
        .unwrap_or(1);
    let per_page = invalid
        .or(int_param(req, "per_page", 1, 200), None)?
        .unwrap_or(200);
    let no_cache = invalid.or(flag_param(req, "no_cache"), false)?;
    invalid.finish()?;
    if claims.role != Role::Admin && org_id != claims.org_id {
        return Err(ApiError::Forbidden(
            "a coach may only list its own organization".into(),
        ));
    }

    let ver = version(&state, &format!("roster_version:{org_id}")).await;
    let params = json!([by_coach, group_id, unassigned, search, page, per_page]);
    let key = state
        .keys
        .cache(&format!("roster:{org_id}:v{ver}:{}:{params}", claims.sub));
    if !no_cache && let Some(cached) = cache_get(&state, &key).await {
        ok(res, cached);
        return Ok(());
    }
    let filter = RosterFilter {
        org_id: org_id.clone(),
        assigned_coach_id: by_coach.then(|| claims.sub.clone()),
        group_id,
        unassigned_only: unassigned,
        search,
        limit: per_page,
        offset: (page - 1).saturating_mul(per_page),
    };
    let (users, total) = db::roster(&state.db, &filter).await?;
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let metrics: HashMap<String, MetricsRow> = db::metrics_for(&state.db, &ids)
        .await?
        .into_iter()
        .map(|m| (m.athlete_id.clone(), m))
        .collect();
    let refs: Vec<&UserRow> = users.iter().collect();
    let (goals, plans) = goals_and_plans(&state, &refs).await?;
    let athletes: Vec<Value> = users
        .iter()
        .map(|u| {
            let m = metrics.get(&u.id);
            let races: Vec<Value> = goals
                .get(&u.id)
                .map(|g| {
                    g.iter()
                        .map(|r| json!({"race_name": r["race_name"], "race_date": r["race_date"]}))
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "user_id": u.id,
                "username": u.username,
                "display_name": u.display_name,
                "profile_image": u.profile_image_url,
                "email": u.email,
                "assigned_coach_id": u.assigned_coach_id,
                "groups": u.groups,
                "labels": u.labels,
                "current_plans": plans.get(&u.id).cloned().unwrap_or_default(),
                "current_goals": {"races": races},
                "has_push_token": u.push_token.is_some(),
                "metrics": {
                    "running_analytics": {"weekly_distance_km": m.map(|m| round1(m.weekly_distance_km))},
                    "fitness": {"current": {
                        "vo2_max": opt_round1(m.and_then(|m| m.vo2_max)),
                        "hrv_avg": opt_round1(m.and_then(|m| m.hrv_avg)),
                        "recovery_score": opt_round1(m.and_then(|m| m.recovery_score)),
                        "hrv_avg_prev": opt_round1(m.and_then(|m| m.hrv_avg_prev)),
                        "recovery_score_prev": opt_round1(m.and_then(|m| m.recovery_score_prev)),
                        "vo2_max_prev": opt_round1(m.and_then(|m| m.vo2_max_prev)),
                    }},
                    "training": {"current_week_load": m.map(|m| round1(m.current_week_load))},
                    "attention_signals": {"flags": flags(m)},
                    "last_updated": m.map(|m| m.last_updated),
                },
            })
        })
        .collect();
    let total_pages = if total == 0 {
        0
    } else {
        (total + per_page - 1) / per_page
    };
    let pagination = json!({
        "total": total,
        "page": page,
        "per_page": per_page,
        "total_pages": total_pages,
        "has_next": page < total_pages,
        "has_prev": page > 1,
    });
    let data = json!({
        "athletes": athletes,
        "total_count": total,
        "metadata": pagination,
        "pagination": pagination,
    });
    cache_put(&state, &key, &data, ROSTER_TTL).await;
    ok(res, data);
    Ok(())
}
