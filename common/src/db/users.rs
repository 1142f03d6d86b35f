use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::auth::Claims;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct UserRow {
    pub id: String,
    pub org_id: Option<String>,
    pub role: String,
    pub display_name: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub profile_image_url: Option<String>,
    pub assigned_coach_id: Option<String>,
    pub groups: Vec<String>,
    pub labels: Vec<String>,
    pub timezone: String,
    pub training_principle: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The app's push token: a credential of the user's device, never shown.
    #[serde(skip)]
    #[sqlx(default)]
    pub push_token: Option<String>,
}

/// Registers the user's push token (`Some`, with its platform) or forgets it (`None`).
/// `false` when the user has no row.
pub async fn set_push_token(
    db: impl PgExecutor<'_>,
    id: &str,
    token: Option<(&str, Option<&str>)>,
) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "update users set push_token = $2, push_platform = $3,
                push_token_at = case when $2::text is null then null else now() end, updated_at = now()
          where id = $1",
    )
    .bind(id)
    .bind(token.map(|(t, _)| t))
    .bind(token.and_then(|(_, p)| p))
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Just-in-time provisioning: the first request of a user creates its row from the claims.
/// Later tokens do not overwrite what an admin set.
pub async fn provision(db: impl PgExecutor<'_>, claims: &Claims) -> sqlx::Result<()> {
    sqlx::query(
        "insert into users (id, org_id, role, display_name, email) values ($1, $2, $3, $4, $5)
         on conflict (id) do nothing",
    )
    .bind(&claims.sub)
    .bind(&claims.org_id)
    .bind(claims.role.as_str())
    .bind(&claims.name)
    .bind(&claims.email)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get_user(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as("select * from users where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Fields of the admin user upsert; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct UserUpsert {
    pub org_id: String,
    pub role: String,
    pub display_name: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub profile_image_url: Option<String>,
    pub assigned_coach_id: Option<String>,
    pub groups: Option<Vec<String>>,
    pub labels: Option<Vec<String>>,
    pub timezone: Option<String>,
}

pub async fn upsert_user(
    db: impl PgExecutor<'_>,
    id: &str,
    u: &UserUpsert,
) -> sqlx::Result<UserRow> {
    sqlx::query_as(
        "insert into users (id, org_id, role, display_name, username, email, profile_image_url,
                            assigned_coach_id, groups, labels, timezone)
         values ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, '{}'), coalesce($10, '{}'), coalesce($11, 'UTC'))
         on conflict (id) do update set
             org_id = excluded.org_id, role = excluded.role,
             display_name = coalesce($4, users.display_name), username = coalesce($5, users.username),
             email = coalesce($6, users.email), profile_image_url = coalesce($7, users.profile_image_url),
             assigned_coach_id = coalesce($8, users.assigned_coach_id),
             groups = coalesce($9, users.groups), labels = coalesce($10, users.labels),
             timezone = coalesce($11, users.timezone), updated_at = now()
         returning *",
    )
    .bind(id)
    .bind(&u.org_id)
    .bind(&u.role)
    .bind(&u.display_name)
    .bind(&u.username)
    .bind(&u.email)
    .bind(&u.profile_image_url)
    .bind(&u.assigned_coach_id)
    .bind(&u.groups)
    .bind(&u.labels)
    .bind(&u.timezone)
    .fetch_one(db)
    .await
}

/// Athlete ids of an organization (all organizations when `org_id` is `None`), in a stable order.
pub async fn athlete_ids(
    db: impl PgExecutor<'_>,
    org_id: Option<&str>,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("select id from users where role = 'athlete' and ($1::text is null or org_id = $1) order by id")
        .bind(org_id)
        .fetch_all(db)
        .await
}

/// A coach's personal training principle (wins over the organization's).
pub async fn set_training_principle(
    db: impl PgExecutor<'_>,
    id: &str,
    principle: &str,
) -> sqlx::Result<bool> {
    let r =
        sqlx::query("update users set training_principle = $2, updated_at = now() where id = $1")
            .bind(id)
            .bind(principle)
            .execute(db)
            .await?;
    Ok(r.rows_affected() == 1)
}
