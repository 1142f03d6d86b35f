-- Core tables: organizations, users (provisioned just in time from JWT claims) and jobs.

create table orgs (
    id                 text primary key,
    name               text not null default '',
    -- feature flags: 'coach_agent' gates AI Coach, 'ai_training' gates AI Training
    features           text[] not null default '{}',
    training_principle text,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now()
);

create table users (
    id                 text primary key,
    -- no foreign key: tokens come from an external identity provider and may name an org
    -- before an admin has created it
    org_id             text,
    role               text not null check (role in ('athlete', 'coach', 'client_admin', 'admin')),
    display_name       text,
    username           text,
    email              text,
    profile_image_url  text,
    assigned_coach_id  text,
    groups             text[] not null default '{}',
    labels             text[] not null default '{}',
    -- IANA zone used for the athlete's daily rollups
    timezone           text not null default 'UTC',
    -- a coach's personal training principle (wins over the org's)
    training_principle text,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now()
);
create index users_org on users (org_id);

create table jobs (
    id               uuid primary key,
    -- wire contract: kinds are never renamed
    kind             text not null,
    queue            text not null,
    state            text not null default 'queued'
                     check (state in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    owner_id         text not null,
    org_id           text,
    input            jsonb not null,
    result           jsonb,
    error            text,
    progress         smallint not null default 0,
    message          text,
    -- attempts started so far (a retry or a take-over after a crash counts)
    attempts         integer not null default 0,
    max_attempts     integer not null,
    -- number of the last event appended to the job's event log (SSE ids are 1..event_seq)
    event_seq        bigint not null default 0,
    cancel_requested boolean not null default false,
    idempotency_key  text,
    -- LLM token usage, when the job called a model
    usage            jsonb,
    -- apalis task id of the latest push to Redis; null = not (or no longer) in Redis
    task_id          text,
    dispatched_at    timestamptz,
    worker           text,
    heartbeat_at     timestamptz,
    created_at       timestamptz not null default now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz not null default now()
);
create unique index jobs_owner_idempotency on jobs (owner_id, idempotency_key) where idempotency_key is not null;
create index jobs_owner_created on jobs (owner_id, created_at desc);
create index jobs_created on jobs (created_at desc);
-- the dispatcher's work list: accepted jobs not yet pushed to Redis
create index jobs_undispatched on jobs (queue, created_at) where state = 'queued' and dispatched_at is null;
-- the reconciler's work list
create index jobs_live on jobs (queue, heartbeat_at) where state in ('queued', 'running');

-- Activities as recorded by a watch or an app (field names follow Strava's activity object).
create table activities (
    id                 uuid primary key,
    athlete_id         text not null,
    external_id        text not null,
    sport_type         text not null,
    start_date         timestamptz not null,
    timezone           text not null default 'UTC',
    distance           double precision not null default 0,
    moving_time        integer not null default 0,
    elapsed_time       integer not null default 0,
    average_heartrate  double precision,
    max_heartrate      double precision,
    calories           double precision,
    created_at         timestamptz not null default now(),
    unique (athlete_id, external_id)
);
create index activities_athlete_start on activities (athlete_id, start_date);

-- Per athlete and local calendar day (in the athlete's time zone), rebuilt by recompute_stats.
create table daily_rollups (
    athlete_id   text not null,
    day          date not null,
    runs         integer not null,
    distance     double precision not null,
    moving_time  integer not null,
    calories     double precision not null,
    primary key (athlete_id, day)
);
