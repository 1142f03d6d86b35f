//! `ApiError` and the error body. Every non-2xx JSON response goes through here:
//! `{"status": "error", "code", "error", "details": [{"field", "message"}]}`.

use pacer_common::FieldError;
use salvo::http::{StatusCode, StatusError};
use salvo::prelude::*;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{1}")]
    Unauthorized(&'static str, String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Validation(String, Vec<FieldError>),
    #[error("{1}")]
    BadRequest(&'static str, String),
    #[error("{1}")]
    Conflict(&'static str, String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// PostgreSQL or Redis cannot be reached (down, restarting, out of connections): a 503 with
    /// `Retry-After`, which clients retry, rather than a 500.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A generation job failed (the seed's 500 "internal server error during AI generation").
    #[error("{0}")]
    GenerationFailed(String),
    #[error("internal error")]
    Internal(anyhow::Error),
}

/// Which backing service, if any, the failure `e` (or one of its causes) says is out of reach.
pub(crate) fn out_of_reach(e: &anyhow::Error) -> Option<&'static str> {
    e.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<sqlx::Error>() {
            pacer_common::db::is_unreachable(e).then_some("the database")
        } else if let Some(e) = cause.downcast_ref::<redis::RedisError>() {
            pacer_common::error::redis_unavailable(e).then_some("Redis")
        } else {
            None
        }
    })
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        match out_of_reach(&e) {
            Some(service) => {
                tracing::warn!(error = format!("{e:#}"), "{service} cannot be reached");
                Self::Unavailable(format!("{service} cannot be reached; retry shortly"))
            }
            None => Self::Internal(e),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        // a deadlock or serialization failure: the request lost a race with another; it
        // changed nothing (its transaction rolled back) and a retry succeeds
        let lost_race = e
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c == "40P01" || c == "40001");
        if lost_race {
            tracing::warn!(error = %e, "transaction lost a race with a concurrent one");
            return Self::Unavailable("a concurrent write conflicted; retry shortly".into());
        }
        anyhow::Error::from(e).into()
    }
}

impl From<pacer_common::Error> for ApiError {
    fn from(e: pacer_common::Error) -> Self {
        anyhow::Error::from(e).into()
    }
}

impl From<pacer_common::batch::BatchError> for ApiError {
    fn from(e: pacer_common::batch::BatchError) -> Self {
        anyhow::Error::from(e).into()
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
        anyhow::Error::from(e).into()
    }
}

impl ApiError {
    /// A 400 listing every invalid field; the sentence names the first one.
    pub fn validation(details: Vec<FieldError>) -> Self {
        let sentence = match details.first() {
            Some(first) if details.len() == 1 => format!("{}: {}", first.field, first.message),
            Some(first) => format!(
                "{}: {} (and {} more invalid fields)",
                first.field,
                first.message,
                details.len() - 1
            ),
            None => "invalid request".to_owned(),
        };
        Self::Validation(sentence, details)
    }

    pub fn field(field: &str, message: &str) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(..) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Validation(..) | Self::BadRequest(..) => StatusCode::BAD_REQUEST,
            Self::Conflict(..) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) | Self::GenerationFailed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(code, _) => code,
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Validation(..) => "validation_error",
            Self::BadRequest(code, _) => code,
            Self::Conflict(code, _) => code,
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::Unavailable(_) => "unavailable",
            Self::GenerationFailed(_) => "generation_failed",
            Self::Internal(_) => "internal_error",
        }
    }

    pub fn details(&self) -> &[FieldError] {
        match self {
            Self::Validation(_, d) => d,
            _ => &[],
        }
    }
}

pub fn error_body(code: &str, error: &str, details: &[FieldError]) -> serde_json::Value {
    json!({"status": "error", "code": code, "error": error, "details": details})
}

#[async_trait]
impl Writer for ApiError {
    async fn write(self, _req: &mut Request, _depot: &mut Depot, res: &mut Response) {
        if let Self::Internal(e) = &self {
            // the full cause chain once, here; the client gets an opaque message
            tracing::error!(error.cause_chain = ?e, error.message = %e, "request failed");
        }
        res.status_code(self.status());
        if matches!(self, Self::Unavailable(_)) {
            res.headers_mut().insert(
                salvo::http::header::RETRY_AFTER,
                salvo::http::HeaderValue::from_static("1"),
            );
        }
        if matches!(self, Self::PayloadTooLarge(_)) {
            // the unread rest of the body is still on the wire: this connection cannot be reused
            res.headers_mut().insert(
                salvo::http::header::CONNECTION,
                salvo::http::HeaderValue::from_static("close"),
            );
        }
        res.render(Json(error_body(
            self.code(),
            &self.to_string(),
            self.details(),
        )));
    }
}

/// Catcher goal: errors salvo produces itself (no route, wrong method, …) get the same body.
#[handler]
pub async fn json_errors(res: &mut Response, ctrl: &mut FlowCtrl) {
    let status = res.status_code.unwrap_or(StatusCode::NOT_FOUND);
    if !(status.is_client_error() || status.is_server_error()) {
        return;
    }
    if !(res.body.is_none() || res.body.is_error()) {
        return;
    }
    let brief = match &res.body {
        salvo::http::ResBody::Error(StatusError { brief, .. }) if !brief.is_empty() => {
            brief.clone()
        }
        _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal_error",
        _ => "bad_request",
    };
    res.render(Json(error_body(code, &brief, &[])));
    ctrl.skip_rest();
}
