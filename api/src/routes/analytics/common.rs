//! Helpers shared by the analytics routes: the `ok` envelope, who may see whom, Redis caches
//! with versioned keys, and parameter parsing.

use chrono::{Datelike, NaiveDate};
use pacer_common::auth::{Claims, Role};
use pacer_common::db::users::{UserRow, get_user};
use redis::AsyncCommands;
use salvo::prelude::*;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::AppState;

/// `{"status": "ok", "data": …}`, the seed's success envelope.
pub fn ok(res: &mut Response, data: Value) {
    res.render(Json(json!({"status": "ok", "data": data})));
}

/// Admins see anyone, coaches the users of their organization, everyone else only themselves.
pub fn can_access(claims: &Claims, user: &UserRow) -> bool {
    match claims.role {
        Role::Admin => true,
        Role::Coach => {
            user.id == claims.sub || user.org_id.as_deref() == Some(claims.org_id.as_str())
        }
        _ => user.id == claims.sub,
    }
}

/// The user a request is about (`user_id`, default the caller): 404 unknown, 403 not allowed.
pub async fn target_user(
    state: &AppState,
    claims: &Claims,
    user_id: Option<String>,
) -> Result<UserRow, ApiError> {
    let id = user_id.unwrap_or_else(|| claims.sub.clone());
    let user = get_user(&state.db, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))?;
    if !can_access(claims, &user) {
        return Err(ApiError::Forbidden(
            "you may not access this athlete's data".into(),
        ));
    }
    Ok(user)
}

/// The query's invalid fields, gathered so a 400 lists every one at once (the error body's
/// contract) instead of the first a handler happens to parse.
#[derive(Default)]
pub struct Invalid(Vec<pacer_common::FieldError>);

impl Invalid {
    /// The parsed value, or `fallback` with the field errors kept for [`Invalid::finish`];
    /// an error other than a field error is returned at once.
    pub fn or<T>(&mut self, parsed: Result<T, ApiError>, fallback: T) -> Result<T, ApiError> {
        match parsed {
            Ok(v) => Ok(v),
            Err(ApiError::Validation(_, details)) => {
                self.0.extend(details);
                Ok(fallback)
            }
            Err(e) => Err(e),
        }
    }

    pub fn push(&mut self, field: &str, message: &str) {
        self.0.push(pacer_common::FieldError::new(field, message));
    }

    /// A 400 naming every invalid field, if any.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.0))
        }
    }
}

/// A string query parameter (empty = absent), at most 200 characters.
pub fn str_param(req: &Request, name: &str) -> Result<Option<String>, ApiError> {
    match req.query::<String>(name) {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) if s.chars().count() > 200 => {
            Err(ApiError::field(name, "must be at most 200 characters"))
        }
        Some(s) => Ok(Some(s)),
    }
}

/// `true`/`1` or `false`/`0`; anything else is a 400.
pub fn bool_param(req: &Request, name: &str) -> Result<bool, ApiError> {
    match str_param(req, name)?.as_deref() {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(_) => Err(ApiError::field(name, "must be true, false, 1 or 0")),
    }
}

pub fn int_param(req: &Request, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
    let Some(raw) = str_param(req, name)? else {
        return Ok(None);
    };
    match raw.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        Ok(_) => Err(ApiError::field(
            name,
            &format!("must be between {min} and {max}"),
        )),
        Err(_) => Err(ApiError::field(name, "must be an integer")),
    }
}

pub fn date_param(req: &Request, name: &str) -> Result<Option<NaiveDate>, ApiError> {
    let Some(raw) = str_param(req, name)? else {
        return Ok(None);
    };
    pacer_common::validate::iso_date(&raw)
        .map(Some)
        .ok_or_else(|| ApiError::field(name, pacer_common::validate::ISO_DATE))
}

pub fn parse_tz(field: &str, raw: &str) -> Result<chrono_tz::Tz, ApiError> {
    raw.parse::<chrono_tz::Tz>()
        .map_err(|_| ApiError::field(field, "must be an IANA time zone such as Europe/London"))
}

/// The athlete's zone, UTC when the stored value is unusable.
pub fn user_tz(user: &UserRow) -> chrono_tz::Tz {
    user.timezone.parse().unwrap_or(chrono_tz::UTC)
}

/// Bucket sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gran {
    Day,
    Week,
    Month,
}

impl Gran {
    pub fn start(self, d: NaiveDate) -> NaiveDate {
        match self {
            Self::Day => d,
            Self::Week => pacer_common::analytics::snapshot::week_start(d),
            Self::Month => d.with_day(1).unwrap_or(d),
        }
    }

    /// Bucket starts covering `from..=to`, oldest first.
    pub fn buckets(self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        let mut out = Vec::new();
        let mut cur = self.start(from);
        while cur <= to {
            out.push(cur);
            let next = match self {
                Self::Day => cur.succ_opt(),
                Self::Week => cur.checked_add_days(chrono::Days::new(7)),
                Self::Month => cur.checked_add_months(chrono::Months::new(1)),
            };
            match next {
                Some(n) => cur = n,
                None => break,
            }
        }
        out
    }
}

// ---- Redis cache ----

/// A cached JSON value; a Redis failure counts as a miss (logged).
pub async fn cache_get(state: &AppState, key: &str) -> Option<Value> {
    let mut conn = state.redis.clone();
    match conn.get::<_, Option<String>>(key).await {
        Ok(Some(s)) => serde_json::from_str(&s).ok(),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(key, error = %e, "cache read failed");
            None
        }
    }
}

pub async fn cache_put(state: &AppState, key: &str, value: &Value, ttl_secs: u64) {
    let mut conn = state.redis.clone();
    if let Err(e) = conn
        .set_ex::<_, _, ()>(key, value.to_string(), ttl_secs)
        .await
    {
        tracing::warn!(key, error = %e, "cache write failed");
    }
}

/// A version counter (0 when absent) that invalidation bumps; cache keys embed it.
pub async fn version(state: &AppState, name: &str) -> i64 {
    let mut conn = state.redis.clone();
    conn.get::<_, Option<i64>>(state.keys.cache(name))
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
}

/// The athlete's cached profile under the athlete's current version: a read that loaded the
/// database before an invalidation and writes the cache after it lands under the old version,
/// which no later read looks up (deleting an unversioned key left a window for such a write).
pub async fn profile_key(state: &AppState, athlete_id: &str) -> String {
    let ver = version(state, &format!("athlete_version:{athlete_id}")).await;
    state
        .keys
        .cache(&format!("athlete_profile:{athlete_id}:v{ver}"))
}

/// After a goal or plan change: the athlete's profile and the org's rosters are stale.
pub async fn invalidate_athlete(state: &AppState, user: &UserRow) {
    let mut conn = state.redis.clone();
    let mut pipe = redis::pipe();
    pipe.incr(state.keys.cache(&format!("athlete_version:{}", user.id)), 1);
    if let Some(org) = &user.org_id {
        pipe.incr(state.keys.cache(&format!("roster_version:{org}")), 1);
    }
    if let Err(e) = pipe.query_async::<()>(&mut conn).await {
        tracing::warn!(user = %user.id, error = %e, "cache invalidation failed");
    }
}

pub fn round1(x: f64) -> f64 {
    pacer_common::analytics::round(x, 1)
}

pub fn opt_round1(x: Option<f64>) -> Option<f64> {
    x.map(round1)
}
