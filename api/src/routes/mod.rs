//! The router. Everything under `/api` requires a bearer token.

use salvo::catcher::Catcher;
use salvo::prelude::*;
use serde_json::Value;

use crate::auth::require_auth;
use crate::error::{ApiError, json_errors};
use crate::state::AppState;

mod admin;
mod ai_coach;
mod ai_training;
mod analytics;
mod health;
pub mod jobs;

pub fn service(state: AppState) -> Service {
    let api = Router::with_path("api").hoop(require_auth).push(
        Router::with_path("v1")
            .push(jobs::router())
            .push(admin::router())
            .push(ai_coach::router())
            .push(analytics::router()),
    );
    let router = Router::new()
        .hoop(salvo::affix_state::inject(state))
        .hoop(crate::guard::reject_nul)
        .push(health::router())
        // AI Training authenticates on its own (it also accepts single-use custom tokens)
        .push(ai_training::router())
        .push(api);
    // the OpenAPI document and Swagger UI, outside the auth hoop
    let (doc, ui) = crate::openapi::routers(&router);
    let router = router.push(doc).push(ui);
    Service::new(router).catcher(Catcher::new(json_errors))
}

/// Reads a JSON body within the configured size limit: 413 when larger, 400 when malformed.
pub async fn read_json(req: &mut Request, state: &AppState) -> Result<Value, ApiError> {
    let max = state.config.max_body_bytes;
    if let Some(len) = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > max
    {
        return Err(ApiError::PayloadTooLarge(max));
    }
    let bytes = match req.payload_with_max_size(max).await {
        Ok(b) => b.clone(),
        Err(salvo::http::ParseError::PayloadTooLarge) => {
            return Err(ApiError::PayloadTooLarge(max));
        }
        Err(e) => {
            return Err(ApiError::BadRequest(
                "bad_request",
                format!("cannot read the request body: {e}"),
            ));
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "malformed_json",
            "the request body is empty; send a JSON object".into(),
        ));
    }
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::BadRequest(
            "malformed_json",
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    let invalid = crate::guard::body_errors(&value);
    if !invalid.is_empty() {
        return Err(ApiError::validation(invalid));
    }
    Ok(value)
}

/// A query parameter parsed as `T`; absent = `None`, unparsable = 400 naming it.
pub fn query_param<T: std::str::FromStr>(req: &Request, name: &str) -> Result<Option<T>, ApiError> {
    match req.query::<String>(name) {
        None => Ok(None),
        Some(raw) if raw.is_empty() => Ok(None),
        Some(raw) => raw
            .parse::<T>()
            .map(Some)
            .map_err(|_| ApiError::field(name, "has an invalid value")),
    }
}
