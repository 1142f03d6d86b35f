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
    if let Some(p) = requested.and_then(non_empty) {
        return Ok((p, Source::Request));
    }
    let mut stored = stored_many(db, &[(coach_id.to_owned(), org_id.to_owned())]).await?;
    let (personal, org) = stored.pop().unwrap_or_default();
    Ok(choose(None, personal.as_deref(), org.as_deref()))
}

/// The first non-empty of: the request's, the coach's personal, the organization's principle,
/// else the default.
pub fn choose(
    requested: Option<&str>,
    personal: Option<&str>,
    org: Option<&str>,
) -> (String, Source) {
    [
        (requested, Source::Request),
        (personal, Source::Personal),
        (org, Source::Org),
    ]
    .into_iter()
    .find_map(|(p, source)| Some((p.and_then(non_empty)?, source)))
    .unwrap_or_else(|| (DEFAULT_PRINCIPLE.to_owned(), Source::Default))
}

fn non_empty(p: &str) -> Option<String> {
    Some(p.trim()).filter(|p| !p.is_empty()).map(str::to_owned)
}

/// The stored (personal, organization) principles of many (coach, organization) pairs in one
/// round trip, in order: this runs for every generation job.
pub async fn stored_many(
    db: impl sqlx::PgExecutor<'_>,
    pairs: &[(String, String)],
) -> sqlx::Result<Vec<(Option<String>, Option<String>)>> {
    let coaches: Vec<&str> = pairs.iter().map(|(c, _)| c.as_str()).collect();
    let orgs: Vec<&str> = pairs.iter().map(|(_, o)| o.as_str()).collect();
    sqlx::query_as(
        "select u.training_principle, o.training_principle
           from unnest($1::text[], $2::text[]) with ordinality as t(coach_id, org_id, ord)
           left join users u on u.id = t.coach_id
           left join orgs o on o.id = t.org_id
          order by t.ord",
    )
    .bind(&coaches)
    .bind(&orgs)
    .fetch_all(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_non_empty_principle_wins() {
        assert_eq!(
            choose(Some(" r "), Some("p"), Some("o")),
            ("r".to_owned(), Source::Request)
        );
        assert_eq!(
            choose(Some("  "), Some("p"), Some("o")),
            ("p".to_owned(), Source::Personal)
        );
        assert_eq!(choose(None, None, Some("o")), ("o".to_owned(), Source::Org));
        assert_eq!(choose(None, Some(""), None).1, Source::Default);
    }
}
