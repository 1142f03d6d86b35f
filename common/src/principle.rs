//! Training principle resolution: request override (non-empty) > the coach's personal principle >
//! the organization's > the built-in default.

use sqlx::PgPool;

use crate::db::{orgs, users};

/// Used when neither the request, the coach nor the organization has a principle.
pub const DEFAULT_PRINCIPLE: &str = "Polarized training with an 80/20 easy-hard split: most running easy and \
conversational, at most two quality sessions a week, gradual progression with regular cut-back weeks.";

/// Where the resolved principle came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Request,
    Personal,
    Org,
    Default,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Personal => "personal",
            Self::Org => "org",
            Self::Default => "default",
        }
    }
}

pub async fn resolve(
    db: &PgPool,
    requested: Option<&str>,
    coach_id: &str,
    org_id: &str,
) -> sqlx::Result<(String, Source)> {
    let non_empty = |p: Option<String>| p.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty());
    if let Some(p) = non_empty(requested.map(str::to_owned)) {
        return Ok((p, Source::Request));
    }
    if let Some(p) = non_empty(
        users::get_user(db, coach_id)
            .await?
            .and_then(|u| u.training_principle),
    ) {
        return Ok((p, Source::Personal));
    }
    if let Some(p) = non_empty(
        orgs::get_org(db, org_id)
            .await?
            .and_then(|o| o.training_principle),
    ) {
        return Ok((p, Source::Org));
    }
    Ok((DEFAULT_PRINCIPLE.to_owned(), Source::Default))
}
