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
    read_body(req, state).await?.ok_or_else(|| {
        ApiError::BadRequest(
            "malformed_json",
            "the request body is empty; send a JSON object".into(),
        )
    })
}

/// The JSON body of a route whose body is optional: `None` when it is empty or only
/// whitespace, however it was sent (`Content-Length: 0`, an empty chunked body, no body).
pub async fn read_optional_json(
    req: &mut Request,
    state: &AppState,
) -> Result<Option<Value>, ApiError> {
    read_body(req, state).await
}

async fn read_body(req: &mut Request, state: &AppState) -> Result<Option<Value>, ApiError> {
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
        return Ok(None);
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
    Ok(Some(value))
}

/// A path segment naming a record (organization, user, template…): 1 to 200 characters, as the
/// OpenAPI document's `maxLength` counts them (not bytes: a 70-character CJK user id is 210).
pub fn path_id(req: &Request, name: &str) -> Result<String, ApiError> {
    req.param::<String>(name)
        .filter(|s| !s.is_empty() && s.chars().count() <= 200)
        .ok_or_else(|| ApiError::field(name, "must be 1 to 200 characters"))
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
