-- AI Coach: the organization's workout library (used by workout_preference prefer_existing /
-- strict_existing).
create table workouts (
    id                         uuid primary key,
    org_id                     text not null,
    workout_name               text not null,
    workout_description        text not null default '',
    workout_type               text not null default 'run',
    -- matched against the planner's sub-type (easy-run, tempo, intervals, long-run, ...)
    workout_sub_type           text not null,
    target_duration_in_seconds integer not null,
    target_distance_in_meters  integer not null default 0,
    content_blocks             jsonb not null default '[]',
    created_by                 text not null,
    created_at                 timestamptz not null default now(),
    updated_at                 timestamptz not null default now()
);
create index workouts_org_sub_type on workouts (org_id, workout_sub_type);
