//! Input PostgreSQL cannot store or give back, refused with a 400 up front instead of failing in
//! the database: NUL characters (not allowed in `text` or `jsonb`), and JSON numbers beyond
//! ±1e300 (`jsonb` stores them, but writes numbers near the `f64` limit back in a form that no
//! longer reads as an `f64`).

use pacer_common::FieldError;
use salvo::prelude::*;
use serde_json::Value;

use crate::error::ApiError;

/// Hoop: 400 when the path, or the query string of an `/api` route, carries a NUL (`%00`).
/// (Health and metrics read no query parameters.)
#[handler]
pub async fn reject_nul(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let has_nul = |s: &str| s.contains('\0') || s.to_ascii_lowercase().contains("%00");
    let uri = req.uri();
    let field = if has_nul(uri.path()) {
        Some("path")
    } else if uri.path().starts_with("/api/") && uri.query().is_some_and(has_nul) {
        Some("query")
    } else {
        None
    };
    if let Some(field) = field {
        ApiError::field(field, "must not contain NUL characters")
            .write(req, depot, res)
            .await;
        ctrl.skip_rest();
    }
}

/// The largest magnitude accepted for a JSON number.
pub const MAX_NUMBER: f64 = 1e300;

/// Every string (value or key) of a JSON body that contains a NUL, and every number beyond
/// ±[`MAX_NUMBER`], as field errors.
pub fn body_errors(value: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    walk(value, "", &mut out);
    out
}

fn walk(value: &Value, at: &str, out: &mut Vec<FieldError>) {
    let name = |at: &str| {
        if at.is_empty() {
            "body".to_owned()
        } else {
            at.to_owned()
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => {
            out.push(FieldError::new(name(at), "must not contain NUL characters"));
        }
        Value::Number(n)
            if n.as_f64()
                .is_none_or(|f| !f.is_finite() || f.abs() > MAX_NUMBER) =>
        {
            out.push(FieldError::new(
                name(at),
                "must be a number between -1e300 and 1e300",
            ));
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{at}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                let key = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                if k.contains('\0') {
                    out.push(FieldError::new(
                        name(at),
                        "keys must not contain NUL characters",
                    ));
                    continue;
                }
                walk(v, &key, out);
            }
        }
        _ => {}
    }
}
