//! The organization workout library (AI Coach).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use sqlx::types::Json;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct WorkoutRow {
    pub id: Uuid,
    pub org_id: String,
    pub workout_name: String,
    pub workout_description: String,
    pub workout_type: String,
    pub workout_sub_type: String,
    pub target_duration_in_seconds: i32,
    pub target_distance_in_meters: i32,
    pub content_blocks: Json<Value>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The writable fields of a library workout.
#[derive(Debug, Clone)]
pub struct WorkoutFields {
    pub workout_name: String,
    pub workout_description: String,
    pub workout_type: String,
    pub workout_sub_type: String,
    pub target_duration_in_seconds: i32,
    pub target_distance_in_meters: i32,
    pub content_blocks: Value,
}

pub async fn list(db: impl PgExecutor<'_>, org_id: &str) -> sqlx::Result<Vec<WorkoutRow>> {
    sqlx::query_as("select * from workouts where org_id = $1 order by workout_sub_type, target_duration_in_seconds, id")
        .bind(org_id)
        .fetch_all(db)
        .await
}

pub async fn get(
    db: impl PgExecutor<'_>,
    org_id: &str,
    id: Uuid,
) -> sqlx::Result<Option<WorkoutRow>> {
    sqlx::query_as("select * from workouts where org_id = $1 and id = $2")
        .bind(org_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    org_id: &str,
    created_by: &str,
    w: &WorkoutFields,
) -> sqlx::Result<WorkoutRow> {
    sqlx::query_as(
        "insert into workouts (id, org_id, workout_name, workout_description, workout_type, workout_sub_type,
                               target_duration_in_seconds, target_distance_in_meters, content_blocks, created_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) returning *",
    )
    .bind(Uuid::now_v7())
    .bind(org_id)
    .bind(&w.workout_name)
    .bind(&w.workout_description)
    .bind(&w.workout_type)
    .bind(&w.workout_sub_type)
    .bind(w.target_duration_in_seconds)
    .bind(w.target_distance_in_meters)
    .bind(Json(&w.content_blocks))
    .bind(created_by)
    .fetch_one(db)
    .await
}

pub async fn update(
    db: impl PgExecutor<'_>,
    org_id: &str,
    id: Uuid,
    w: &WorkoutFields,
) -> sqlx::Result<Option<WorkoutRow>> {
    sqlx::query_as(
        "update workouts set workout_name = $3, workout_description = $4, workout_type = $5, workout_sub_type = $6,
                target_duration_in_seconds = $7, target_distance_in_meters = $8, content_blocks = $9, updated_at = now()
          where org_id = $1 and id = $2 returning *",
    )
    .bind(org_id)
    .bind(id)
    .bind(&w.workout_name)
    .bind(&w.workout_description)
    .bind(&w.workout_type)
    .bind(&w.workout_sub_type)
    .bind(w.target_duration_in_seconds)
    .bind(w.target_distance_in_meters)
    .bind(Json(&w.content_blocks))
    .fetch_optional(db)
    .await
}

pub async fn delete(db: impl PgExecutor<'_>, org_id: &str, id: Uuid) -> sqlx::Result<bool> {
    let r = sqlx::query("delete from workouts where org_id = $1 and id = $2")
        .bind(org_id)
        .bind(id)
        .execute(db)
        .await?;
    Ok(r.rows_affected() == 1)
}
