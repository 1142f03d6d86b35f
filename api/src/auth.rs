//! Bearer-token hoop: 401 for a missing, malformed, forged or expired token; the claims go in
//! the depot for handlers. A user seen for the first time is provisioned from its claims.

use pacer_common::auth::{AuthError, Claims, Role};
use salvo::http::header::AUTHORIZATION;
use salvo::prelude::*;

use crate::error::ApiError;
use crate::state::AppState;

#[handler]
pub async fn require_auth(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    match authenticate(req, depot).await {
        Ok(claims) => {
            depot.insert_typed(claims);
        }
        Err(e) => {
            e.write(req, depot, res).await;
            ctrl.skip_rest();
        }
    }
}

async fn authenticate(req: &Request, depot: &Depot) -> Result<Claims, ApiError> {
    let state = app_state(depot)?;
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("unauthorized", "missing bearer token".into()))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "unauthorized",
                "the Authorization header must be 'Bearer <token>'".into(),
            )
        })?;
    let claims = state.verifier.verify(token).map_err(|e| match e {
        AuthError::Token(e)
            if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) =>
        {
            ApiError::Unauthorized("token_expired", "the bearer token has expired".into())
        }
        _ => ApiError::Unauthorized("unauthorized", "invalid bearer token".into()),
    })?;
    if claims.sub.is_empty() || claims.org_id.is_empty() {
        return Err(ApiError::Unauthorized(
            "unauthorized",
            "the token must carry sub and org_id".into(),
        ));
    }
    provision(state, &claims).await?;
    Ok(claims)
}

async fn provision(state: &AppState, claims: &Claims) -> Result<(), ApiError> {
    let seen = state
        .seen_users
        .lock()
        .map(|s| s.contains(&claims.sub))
        .unwrap_or(false);
    if seen {
        return Ok(());
    }
    pacer_common::db::users::provision(&state.db, claims).await?;
    if let Ok(mut s) = state.seen_users.lock() {
        if s.len() > 100_000 {
            s.clear();
        }
        s.insert(claims.sub.clone());
    }
    Ok(())
}

pub fn app_state(depot: &Depot) -> Result<&AppState, ApiError> {
    depot
        .get_typed::<AppState>()
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("app state missing from depot")))
}

pub fn claims(depot: &Depot) -> Result<&Claims, ApiError> {
    depot
        .get_typed::<Claims>()
        .map_err(|_| ApiError::Unauthorized("unauthorized", "missing bearer token".into()))
}

/// 403 unless the caller has one of `roles`.
pub fn require_role(claims: &Claims, roles: &[Role]) -> Result<(), ApiError> {
    if roles.contains(&claims.role) {
        Ok(())
    } else {
        let names: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::Forbidden(format!(
            "this requires the role {}",
            names.join(" or ")
        )))
    }
}

/// Like `require_auth`, but a `customToken` query parameter (from `POST /api/auth/exchange-token`)
/// is accepted instead of the bearer token. The custom token is consumed by this request: a
/// second use, an expired or an unknown token is a 401. So is a session token (`Bearer cs_…`)
/// the custom token opened, until it expires. Used by the AI Training routes.
#[handler]
pub async fn require_auth_or_custom_token(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let result = match req.query::<String>("customToken").filter(|t| !t.is_empty()) {
        Some(token) => authenticate_custom_token(&token, depot).await,
        None => match session_token(req) {
            Some(token) => authenticate_session(&token, depot).await,
            None => authenticate(req, depot).await,
        },
    };
    match result {
        Ok(claims) => {
            depot.insert_typed(claims);
        }
        Err(e) => {
            e.write(req, depot, res).await;
            ctrl.skip_rest();
        }
    }
}

/// A bearer token naming a session a custom token opened (`cs_…`), not a JWT.
fn session_token(req: &Request) -> Option<String> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?
        .trim();
    token
        .starts_with(pacer_common::ai_training::SESSION_PREFIX)
        .then(|| token.to_owned())
}

async fn authenticate_session(token: &str, depot: &Depot) -> Result<Claims, ApiError> {
    let invalid = || {
        ApiError::Unauthorized(
            "invalid_session",
            "the session token is unknown or expired".into(),
        )
    };
    let state = app_state(depot)?;
    let stored = if token.len() > 200 {
        None
    } else {
        pacer_common::db::ai_training::login_session_claims(&state.db, token).await?
    };
    restore_claims(state, stored, invalid).await
}

async fn authenticate_custom_token(token: &str, depot: &Depot) -> Result<Claims, ApiError> {
    let invalid = || {
        ApiError::Unauthorized(
            "invalid_custom_token",
            "the custom token is unknown, expired or already used".into(),
        )
    };
    let state = app_state(depot)?;
    let stored = if token.len() > 200 {
        None
    } else {
        pacer_common::db::ai_training::consume_custom_token(&state.db, token).await?
    };
    restore_claims(state, stored, invalid).await
}

/// The claims a custom or session token stands for (`invalid` when there are none).
async fn restore_claims(
    state: &AppState,
    stored: Option<serde_json::Value>,
    invalid: impl Fn() -> ApiError,
) -> Result<Claims, ApiError> {
    let claims: Claims =
        serde_json::from_value(stored.ok_or_else(&invalid)?).map_err(|_| invalid())?;
    provision(state, &claims).await?;
    Ok(claims)
}
