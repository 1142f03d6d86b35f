use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct OrgRow {
    pub id: String,
    pub name: String,
    pub features: Vec<String>,
    pub training_principle: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl OrgRow {
    pub fn has_feature(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }
}

pub async fn get_org(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<OrgRow>> {
    sqlx::query_as("select * from orgs where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Whether anything knows the organization: its row, or a user of it (users may name an org
/// before an admin creates it).
pub async fn org_known(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists(select 1 from orgs where id = $1) or exists(select 1 from users where org_id = $1)",
    )
    .bind(id)
    .fetch_one(db)
    .await
}

/// Creates or updates an organization. A field given as `None` keeps its value (a new
/// organization gets an empty name, no features, no principle): an update naming only its
/// features must not wipe the principle coaches set through the AI Coach route.
/// `training_principle` is `Some(None)` to clear it.
pub async fn upsert_org(
    db: impl PgExecutor<'_>,
    id: &str,
    name: Option<&str>,
    features: Option<&[String]>,
    training_principle: Option<Option<&str>>,
) -> sqlx::Result<OrgRow> {
    sqlx::query_as(
        "insert into orgs (id, name, features, training_principle)
         values ($1, coalesce($2, ''), coalesce($3, '{}'::text[]), $4)
         on conflict (id) do update set name = coalesce($2, orgs.name),
             features = coalesce($3, orgs.features),
             training_principle = case when $5 then $4 else orgs.training_principle end,
             updated_at = now()
         returning *",
    )
    .bind(id)
    .bind(name)
    .bind(features)
    .bind(training_principle.flatten())
    .bind(training_principle.is_some())
    .fetch_one(db)
    .await
}

pub async fn set_training_principle(
    db: impl PgExecutor<'_>,
    id: &str,
    principle: &str,
) -> sqlx::Result<bool> {
    let r =
        sqlx::query("update orgs set training_principle = $2, updated_at = now() where id = $1")
            .bind(id)
            .bind(principle)
            .execute(db)
            .await?;
    Ok(r.rows_affected() == 1)
}
