//! `POST /api/v1/activities` and `POST /api/v1/health_metrics`: one item or a batch (≤ 1,000).
//! Every item is validated on its own; valid ones are stored (idempotent upserts), invalid ones
//! come back with their index and field errors. 400 only when nothing is valid. Each athlete
//! touched gets one debounced `recompute_stats`.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use pacer_common::FieldError;
use pacer_common::analytics::is_run;
use pacer_common::analytics::load::{
    DEFAULT_HR_MAX, DEFAULT_HR_REST, DEFAULT_THRESHOLD_PACE, activity_load, default_lthr,
};
use pacer_common::analytics::zones::{Sample, hr_zone, pace_zone, time_in_zone};
use pacer_common::auth::{Claims, Role};
use pacer_common::db::analytics::{self as db, ActivityIn, HealthIn};
use pacer_common::db::users::{UserRow, get_user};
use pacer_common::validate::FieldReader;
use salvo::prelude::*;
use serde_json::{Value, json};

use super::common::{can_access, ok};
use crate::auth::{app_state, claims};
use crate::error::ApiError;
use crate::routes::read_json;
use crate::schemas as s;
use crate::state::AppState;

pub const MAX_BATCH: usize = 1000;

/// The items of a body: one object, `{"<list_key>": [...]}`, or a bare array.
fn items<'a>(
    body: &'a Value,
    list_key: &str,
) -> Result<(Vec<&'a Value>, Option<&'a Value>), ApiError> {
    let (list, top) = match body {
        Value::Array(a) => (a.iter().collect::<Vec<_>>(), None),
        Value::Object(o) => match o.get(list_key) {
            Some(Value::Array(a)) => (a.iter().collect(), o.get("athlete_id")),
            Some(_) => return Err(ApiError::field(list_key, "must be an array")),
            None => (vec![body], None),
        },
        _ => return Err(ApiError::field("body", "must be a JSON object or array")),
    };
    if list.is_empty() {
        return Err(ApiError::field(list_key, "must hold at least one item"));
    }
    if list.len() > MAX_BATCH {
        return Err(ApiError::field(
            list_key,
            &format!("must hold at most {MAX_BATCH} items"),
        ));
    }
    Ok((list, top))
}

/// The athlete an item is for: its `athlete_id`, the batch's, or the caller.
fn athlete_of(r: &mut FieldReader<'_>, top: Option<&Value>, claims: &Claims) -> Option<String> {
    let own = r.opt_str("athlete_id", 200).filter(|s| !s.is_empty());
    let id = own.or_else(|| top.and_then(Value::as_str).map(str::to_owned));
    match id {
        Some(id) => Some(id),
        None if claims.role == Role::Athlete => Some(claims.sub.clone()),
        None => {
            r.error("athlete_id", "is required when a coach or admin uploads");
            None
        }
    }
}

/// Loads every athlete named and checks the caller may write for each: the whole request is
/// refused (nothing stored) when one is unknown (404) or not the caller's (403).
async fn authorize_athletes(
    state: &AppState,
    claims: &Claims,
    ids: &BTreeSet<String>,
) -> Result<HashMap<String, UserRow>, ApiError> {
    let mut out = HashMap::new();
    for id in ids {
        let user = get_user(&state.db, id).await?;
        let user = match user {
            Some(u) if can_access(claims, &u) => u,
            Some(_) => {
                return Err(ApiError::Forbidden(format!(
                    "you may not upload data for athlete {id}"
                )));
            }
            // as the reads answer (`target_user`)
            None => return Err(ApiError::NotFound(format!("athlete {id} not found"))),
        };
        if claims.role == Role::Coach && user.id != claims.sub && user.role != "athlete" {
            return Err(ApiError::Forbidden(format!("{id} is not an athlete")));
        }
        out.insert(id.clone(), user);
    }
    Ok(out)
}

/// 400 listing every item's errors (fields named `activities[3].distance`) when nothing is valid.
fn all_invalid(list_key: &str, errors: &[(usize, Vec<FieldError>)]) -> ApiError {
    let details = errors
        .iter()
        .flat_map(|(i, errs)| {
            errs.iter().map(move |e| {
                FieldError::new(format!("{list_key}[{i}].{}", e.field), e.message.clone())
            })
        })
        .collect();
    ApiError::validation(details)
}

fn error_list(errors: &[(usize, Vec<FieldError>)]) -> Vec<Value> {
    errors
        .iter()
        .map(|(i, e)| json!({"index": i, "errors": e}))
        .collect()
}

/// Enqueues the debounced recompute of each athlete (in id order) in the upload's transaction:
/// data stored is always followed by a recompute. Returns the new job ids by athlete.
async fn enqueue(
    tx: &mut sqlx::PgConnection,
    state: &AppState,
    athletes: &HashMap<String, UserRow>,
    touched: &BTreeSet<String>,
) -> Result<Value, ApiError> {
    let mut jobs = serde_json::Map::new();
    for id in touched {
        let org = athletes.get(id).and_then(|u| u.org_id.as_deref());
        let job =
            db::enqueue_recompute(&mut *tx, id, org, state.config.common.max_attempts).await?;
        jobs.insert(id.clone(), json!(job));
    }
    Ok(Value::Object(jobs))
}

/// `POST /api/v1/activities`.
#[endpoint(
    tags("analytics"),
    summary = "Upload activities: one, a batch of up to 1,000, or a bare array",
    description = "Every item is validated on its own: valid ones are stored (an upsert per athlete and `external_id`), invalid ones come back in `errors` with their index. 400 only when no item is valid; 403/404 (nothing stored) when an item names an athlete the caller may not write for. Each athlete touched gets one debounced `recompute_stats` job.",
    security(("bearer" = [])),
    request_body = s::ActivityBatch,
    responses(
        (status_code = 200, description = "Stored (some items may be rejected)", body = s::ActivityIngestEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 413, 500, 503)
)]
pub async fn activities(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = app_state(depot)?.clone();
    let claims = claims(depot)?.clone();
    let body = read_json(req, &state).await?;
    let (list, top) = items(&body, "activities")?;

    // pass 1: validate every item (the athlete's zone is needed only as a default)
    let mut parsed: Vec<(usize, String, ParsedActivity)> = Vec::new();
    let mut errors: Vec<(usize, Vec<FieldError>)> = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let mut r = match FieldReader::new(item) {
            Ok(r) => r,
            Err(e) => {
                errors.push((i, e));
                continue;
            }
        };
        let athlete = athlete_of(&mut r, top, &claims);
        let a = parse_activity(&mut r);
        match (r.finish(), athlete, a) {
            (Ok(()), Some(athlete), Some(a)) => parsed.push((i, athlete, a)),
            (Err(e), _, _) => errors.push((i, e)),
            _ => errors.push((i, vec![FieldError::new("body", "is invalid")])),
        }
    }
    if parsed.is_empty() {
        return Err(all_invalid("activities", &errors));
    }
    let ids: BTreeSet<String> = parsed.iter().map(|(_, a, _)| a.clone()).collect();
    let athletes = authorize_athletes(&state, &claims, &ids).await?;

    // pass 2: store the valid ones in one transaction, in key order (two uploads touching the
    // same rows in opposite orders would deadlock), answering in the request's order
    let mut order: Vec<&(usize, String, ParsedActivity)> = parsed.iter().collect();
    order.sort_by(|a, b| (&a.1, &a.2.external_id).cmp(&(&b.1, &b.2.external_id)));
    let mut results = Vec::with_capacity(parsed.len());
    let mut tx = state.db.begin().await?;
    for (i, athlete, a) in order {
        let tz = a
            .timezone
            .clone()
            .or_else(|| athletes.get(athlete).map(|u| u.timezone.clone()))
            .unwrap_or_else(|| "UTC".into());
        let row = a.to_row(athlete, tz);
        let (id, created) = db::upsert_activity(&mut *tx, &row).await?;
        results.push((
            *i,
            json!({
                "index": i,
                "id": id,
                "athlete_id": athlete,
                "external_id": row.external_id,
                "status": if created { "created" } else { "updated" },
                "training_load": super::common::round1(row.training_load),
            }),
        ));
    }
    let recompute = enqueue(&mut tx, &state, &athletes, &ids).await?;
    tx.commit().await?;
    results.sort_by_key(|(i, _)| *i);
    let results: Vec<Value> = results.into_iter().map(|(_, v)| v).collect();
    ok(
        res,
        json!({
            "accepted": results.len(),
            "rejected": errors.len(),
            "results": results,
            "errors": error_list(&errors),
            "recompute_jobs": recompute,
        }),
    );
    Ok(())
}

struct ParsedActivity {
    external_id: String,
    sport_type: String,
    start_date: DateTime<Utc>,
    timezone: Option<String>,
    distance: f64,
    moving_time: i32,
    elapsed_time: i32,
    average_heartrate: Option<f64>,
    max_heartrate: Option<f64>,
    calories: Option<f64>,
    pace_zones: Option<[i32; 5]>,
    hr_zones: Option<[i32; 5]>,
    laps: Vec<(f64, f64, Option<f64>)>,
}

impl ParsedActivity {
    /// Adds load and zone times: given zones win, else laps, else the whole activity at its
    /// average (approximate, §4.3).
    fn to_row(&self, athlete: &str, timezone: String) -> ActivityIn {
        let moving = f64::from(self.moving_time);
        let run = is_run(&self.sport_type);
        let (load, method) = activity_load(moving, self.distance, self.average_heartrate, run);
        let pace_samples: Vec<Sample> = if self.laps.is_empty() {
            vec![(
                moving,
                (self.distance > 0.0).then(|| moving / (self.distance / 1000.0)),
            )]
        } else {
            self.laps
                .iter()
                .map(|(d, t, _)| (*t, (*d > 0.0).then(|| t / (d / 1000.0))))
                .collect()
        };
        let hr_samples: Vec<Sample> = if self.laps.iter().any(|l| l.2.is_some()) {
            self.laps.iter().map(|(_, t, hr)| (*t, *hr)).collect()
        } else {
            vec![(moving, self.average_heartrate)]
        };
        let to_i32 = |z: [f64; 5]| z.map(|s| s.round().clamp(0.0, f64::from(i32::MAX)) as i32);
        // pace zones are a run's only: a ride's "pace" is no running intensity, even when the
        // device sends zone times for it
        let pace_zone_seconds = match self.pace_zones {
            _ if !run => [0; 5],
            Some(given) => given,
            None => to_i32(time_in_zone(&pace_samples, |p| {
                pace_zone(p, DEFAULT_THRESHOLD_PACE)
            })),
        };
        let lthr = default_lthr(DEFAULT_HR_REST, DEFAULT_HR_MAX);
        let hr_zone_seconds = self
            .hr_zones
            .unwrap_or_else(|| to_i32(time_in_zone(&hr_samples, |hr| hr_zone(hr, lthr))));
        ActivityIn {
            athlete_id: athlete.to_owned(),
            external_id: self.external_id.clone(),
            sport_type: self.sport_type.clone(),
            start_date: self.start_date,
            timezone,
            distance: self.distance,
            moving_time: self.moving_time,
            elapsed_time: self.elapsed_time,
            average_heartrate: self.average_heartrate,
            max_heartrate: self.max_heartrate,
            calories: self.calories,
            training_load: load,
            load_method: method.as_str().to_owned(),
            pace_zone_seconds,
            hr_zone_seconds,
        }
    }
}

/// Strava gives `timezone` as "(GMT-08:00) America/Los_Angeles"; plain IANA names work too.
fn iana_part(raw: &str) -> &str {
    raw.rsplit_once(") ").map_or(raw, |(_, name)| name).trim()
}

/// Seconds in Z1..Z5, each within a week, like the activity's times.
fn zone_array(r: &mut FieldReader<'_>, field: &str) -> Option<[i32; 5]> {
    let raw = r.raw(field)?;
    let parsed: Option<Vec<i32>> = raw.as_array().and_then(|a| {
        a.iter()
            .map(|v| {
                v.as_i64()
                    .filter(|n| (0..=WEEK).contains(n))
                    .and_then(|n| i32::try_from(n).ok())
            })
            .collect()
    });
    match parsed.and_then(|v| <[i32; 5]>::try_from(v).ok()) {
        Some(z) => Some(z),
        None => {
            r.error(
                field,
                "must be an array of 5 integers from 0 to 604800 (seconds in Z1..Z5)",
            );
            None
        }
    }
}

/// The longest activity time accepted, in seconds.
const WEEK: i64 = 7 * 86_400;

fn parse_activity(r: &mut FieldReader<'_>) -> Option<ParsedActivity> {
    let external_id = match r.raw("external_id").or_else(|| r.raw("id")) {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 200 => {
            Some(s.trim().to_owned())
        }
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Some(_) => {
            r.error(
                "external_id",
                "must be a non-empty string or integer (at most 200 characters)",
            );
            None
        }
        None => {
            r.error("external_id", "is required");
            None
        }
    };
    let sport_type = if r.raw("sport_type").is_some() {
        r.required_str("sport_type", 1, 50)
    } else if r.raw("type").is_some() {
        r.required_str("type", 1, 50)
    } else {
        r.required_str("sport_type", 1, 50)
    };
    let start_date = match r.required_str("start_date", 1, 64) {
        Some(s) => match DateTime::parse_from_rfc3339(&s) {
            Ok(d) if d.timestamp() <= Utc::now().timestamp() + 2 * 86_400 => {
                Some(d.with_timezone(&Utc))
            }
            Ok(_) => {
                r.error("start_date", "must not be more than 2 days in the future");
                None
            }
            Err(_) => {
                r.error(
                    "start_date",
                    "must be an RFC 3339 timestamp with an offset, e.g. 2025-04-07T06:30:00Z",
                );
                None
            }
        },
        None => None,
    };
    let timezone = r.opt_str("timezone", 100).and_then(|raw| {
        let name = iana_part(&raw).to_owned();
        if name.parse::<chrono_tz::Tz>().is_ok() {
            Some(name)
        } else {
            r.error(
                "timezone",
                "must be an IANA time zone such as Europe/London",
            );
            None
        }
    });
    let distance = r.opt_number("distance", 0.0, 1_000_000.0);
    if r.raw("distance").is_none() {
        r.error("distance", "is required (metres)");
    }
    let moving_time = r.required_int("moving_time", 0, WEEK);
    let elapsed_time = r.opt_int("elapsed_time", 0, WEEK);
    // a distance covered in no time would be an infinitely fast pace in every average
    if moving_time == Some(0) && distance.is_some_and(|d| d > 0.0) {
        r.error(
            "moving_time",
            "must be above 0 for an activity with a distance",
        );
    }
    let average_heartrate = r.opt_number("average_heartrate", 20.0, 260.0);
    let max_heartrate = r.opt_number("max_heartrate", 20.0, 260.0);
    let calories = r.opt_number("calories", 0.0, 50_000.0);
    let pace_zones = zone_array(r, "pace_zone_seconds");
    let hr_zones = zone_array(r, "hr_zone_seconds");
    let mut laps = Vec::new();
    if let Some(raw) = r.raw("laps") {
        match raw.as_array() {
            Some(a) if a.len() <= 1000 => {
                for (i, lap) in a.iter().enumerate() {
                    let d = lap
                        .get("distance")
                        .and_then(Value::as_f64)
                        .filter(|d| *d >= 0.0);
                    let t = lap
                        .get("moving_time")
                        .and_then(Value::as_f64)
                        .filter(|t| *t >= 0.0);
                    let hr = lap.get("average_heartrate").and_then(Value::as_f64);
                    match (d, t) {
                        (Some(d), Some(t)) => laps.push((d, t, hr)),
                        _ => r.error(
                            &format!("laps[{i}]"),
                            "needs distance and moving_time (non-negative numbers)",
                        ),
                    }
                }
            }
            _ => r.error("laps", "must be an array of at most 1000 laps"),
        }
    }
    if r.has_errors() {
        return None;
    }
    let moving_time = i32::try_from(moving_time?).ok()?;
    Some(ParsedActivity {
        external_id: external_id?,
        sport_type: sport_type?,
        start_date: start_date?,
        timezone,
        distance: distance?,
        moving_time,
        elapsed_time: elapsed_time
            .and_then(|e| i32::try_from(e).ok())
            .unwrap_or(moving_time),
        average_heartrate,
        max_heartrate,
        calories,
        pace_zones,
        hr_zones,
        laps,
    })
}

/// `POST /api/v1/health_metrics`: `{"date", "resting_hr", "hrv_rmssd", "vo2_max",
/// "recovery_score"}`, one or `{"health_metrics": [...]}` or an array. Upsert per athlete and
/// day; a field an upload leaves out keeps its stored value.
#[endpoint(
    tags("analytics"),
    summary = "Upload daily health metrics: one, a batch of up to 1,000, or a bare array",
    description = "An upsert per athlete and day: a field an upload leaves out keeps its stored value. Invalid items come back in `errors` with their index; 400 only when no item is valid.",
    security(("bearer" = [])),
    request_body = s::HealthMetricBatch,
    responses(
        (status_code = 200, description = "Stored (some items may be rejected)", body = s::HealthMetricIngestEnvelope),
    ),
    status_codes(200, 400, 401, 403, 404, 413, 500, 503)
)]
pub async fn health_metrics(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let state = app_state(depot)?.clone();
    let claims = claims(depot)?.clone();
    let body = read_json(req, &state).await?;
    let (list, top) = items(&body, "health_metrics")?;
    let mut parsed: Vec<(usize, HealthIn)> = Vec::new();
    let mut errors: Vec<(usize, Vec<FieldError>)> = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let mut r = match FieldReader::new(item) {
            Ok(r) => r,
            Err(e) => {
                errors.push((i, e));
                continue;
            }
        };
        let athlete = athlete_of(&mut r, top, &claims);
        let day = if r.raw("date").is_some() {
            r.opt_date("date")
        } else {
            None
        };
        if r.raw("date").is_none() {
            r.error("date", "is required (YYYY-MM-DD)");
        }
        // as an activity's start: a day of any zone, at most 2 days ahead of UTC
        let latest = (Utc::now() + chrono::Duration::days(2)).date_naive();
        let day = match day {
            Some(d) if d > latest => {
                r.error("date", "must not be more than 2 days in the future");
                None
            }
            d => d,
        };
        let resting_hr = r.opt_number("resting_hr", 20.0, 200.0);
        let hrv_rmssd = r.opt_number("hrv_rmssd", 1.0, 500.0);
        let vo2_max = r.opt_number("vo2_max", 10.0, 100.0);
        let recovery_score = r.opt_number("recovery_score", 0.0, 100.0);
        if ["resting_hr", "hrv_rmssd", "vo2_max", "recovery_score"]
            .iter()
            .all(|f| r.raw(f).is_none())
        {
            r.error(
                "body",
                "needs at least one of resting_hr, hrv_rmssd, vo2_max, recovery_score",
            );
        }
        match (r.finish(), athlete, day) {
            (Ok(()), Some(athlete_id), Some(day)) => parsed.push((
                i,
                HealthIn {
                    athlete_id,
                    day,
                    resting_hr,
                    hrv_rmssd,
                    vo2_max,
                    recovery_score,
                },
            )),
            (Err(e), _, _) => errors.push((i, e)),
            _ => errors.push((i, vec![FieldError::new("body", "is invalid")])),
        }
    }
    if parsed.is_empty() {
        return Err(all_invalid("health_metrics", &errors));
    }
    let ids: BTreeSet<String> = parsed.iter().map(|(_, h)| h.athlete_id.clone()).collect();
    let athletes = authorize_athletes(&state, &claims, &ids).await?;
    // in key order, as activities are
    let mut order: Vec<&(usize, HealthIn)> = parsed.iter().collect();
    order.sort_by(|a, b| (&a.1.athlete_id, a.1.day).cmp(&(&b.1.athlete_id, b.1.day)));
    let mut results = Vec::with_capacity(parsed.len());
    let mut tx = state.db.begin().await?;
    for (i, h) in order {
        let created = db::upsert_health(&mut *tx, std::slice::from_ref(h))
            .await?
            .first()
            .copied()
            .unwrap_or(false);
        results.push((
            *i,
            json!({
                "index": i,
                "athlete_id": h.athlete_id,
                "date": h.day,
                "status": if created { "created" } else { "updated" },
            }),
        ));
    }
    let recompute = enqueue(&mut tx, &state, &athletes, &ids).await?;
    tx.commit().await?;
    results.sort_by_key(|(i, _)| *i);
    let results: Vec<Value> = results.into_iter().map(|(_, v)| v).collect();
    ok(
        res,
        json!({
            "accepted": results.len(),
            "rejected": errors.len(),
            "results": results,
            "errors": error_list(&errors),
            "recompute_jobs": recompute,
        }),
    );
    Ok(())
}
