//! Training principle resolution: request override (non-empty) > the coach's personal principle >
//! the organization's > the built-in default.

use sqlx::PgPool;

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
    // both candidates in one round trip: this runs for every generation job
    let (personal, org): (Option<String>, Option<String>) = sqlx::query_as(
        "select (select training_principle from users where id = $1),
                (select training_principle from orgs where id = $2)",
    )
    .bind(coach_id)
    .bind(org_id)
    .fetch_one(db)
    .await?;
    if let Some(p) = non_empty(personal) {
        return Ok((p, Source::Personal));
    }
    if let Some(p) = non_empty(org) {
        return Ok((p, Source::Org));
    }
    Ok((DEFAULT_PRINCIPLE.to_owned(), Source::Default))
}
