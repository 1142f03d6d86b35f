-- Analytics: per-activity load and zone times, richer daily rollups, health metrics, race goals,
-- plan instances, the per-athlete metrics snapshot, batch children and the recompute debounce.

alter table activities
    -- training load of this activity (docs/analytics.md: HRSS when average HR is known, else rTSS-like)
    add column training_load double precision not null default 0,
    -- 'hrss' | 'rtss' | 'none': which formula produced training_load
    add column load_method   text not null default 'none',
    -- seconds in pace zones Z1..Z5 (given by the client, or derived from laps / the average pace)
    add column pace_zone_seconds integer[] not null default '{0,0,0,0,0}',
    -- seconds in heart-rate zones Z1..Z5 (given, or derived from laps / the average HR; zeros without HR)
    add column hr_zone_seconds   integer[] not null default '{0,0,0,0,0}',
    add column updated_at timestamptz not null default now();

alter table daily_rollups
    -- elapsed seconds (moving_time is the "duration" the read endpoints report)
    add column elapsed_time   integer not null default 0,
    add column training_load  double precision not null default 0,
    -- run-type activities only (Run, TrailRun, VirtualRun): what weekly distance and pace use
    add column run_distance    double precision not null default 0,
    add column run_moving_time integer not null default 0,
    -- longest single run of the day, metres (long-run share signal)
    add column longest_run     double precision not null default 0,
    add column pace_zone_seconds integer[] not null default '{0,0,0,0,0}',
    add column hr_zone_seconds   integer[] not null default '{0,0,0,0,0}';

-- Daily wellness values per athlete and local day; a later upload fills or replaces fields it carries.
create table health_metrics (
    athlete_id     text not null,
    day            date not null,
    resting_hr     double precision,
    -- rMSSD in milliseconds
    hrv_rmssd      double precision,
    vo2_max        double precision,
    -- 0..100 as reported by the device; when absent the snapshot computes one (docs/analytics.md)
    recovery_score double precision,
    updated_at     timestamptz not null default now(),
    primary key (athlete_id, day)
);

create table athlete_goals (
    id          text primary key,
    athlete_id  text not null,
    race_name   text not null,
    race_date   date not null,
    -- H:MM:SS as entered
    goal_time   text,
    -- race distance in metres
    distance    double precision,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);
create index athlete_goals_athlete on athlete_goals (athlete_id, race_date);

create table plan_instances (
    id          text primary key,
    athlete_id  text not null,
    name        text not null,
    status      text not null check (status in ('scheduled', 'active', 'completed', 'cancelled')),
    start_date  date not null,
    total_weeks integer not null check (total_weeks between 1 and 104),
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);
create index plan_instances_athlete on plan_instances (athlete_id, start_date);

-- One row per athlete, rewritten by recompute_stats; what athlete_profile and the coach roster read.
create table athlete_metrics (
    athlete_id          text primary key,
    -- run distance of the current ISO week (athlete's zone), km
    weekly_distance_km  double precision not null default 0,
    -- distance-weighted pace of the current ISO week's runs, seconds per km (null: no runs)
    avg_pace_s_per_km   double precision,
    current_week_load   double precision not null default 0,
    -- mean of the 4 most recent completed ISO weeks' loads (missing weeks count as 0)
    four_week_avg_load  double precision not null default 0,
    ctl                 double precision not null default 0,
    atl                 double precision not null default 0,
    -- EWMA acute:chronic ratio; null during the first 28 days or when chronic load is 0
    acwr                double precision,
    vo2_max             double precision,
    vo2_max_prev        double precision,
    hrv_avg             double precision,
    hrv_avg_prev        double precision,
    recovery_score      double precision,
    recovery_score_prev double precision,
    -- [{"code", "severity", "message"}]
    flags               jsonb not null default '[]',
    -- local date the snapshot describes
    as_of               date not null,
    last_updated        timestamptz not null default now()
);

-- recompute_batch children point at their batch
alter table jobs add column parent_id uuid;
create index jobs_parent on jobs (parent_id) where parent_id is not null;

-- Debounce: at most one not-yet-started system recompute per athlete. attempts = 0 keeps a job
-- handed back for a retry (state 'queued' again) out of the index, so the retry never conflicts.
create unique index jobs_recompute_debounce on jobs ((input->>'user_id'))
    where kind = 'recompute_stats' and state = 'queued' and attempts = 0 and owner_id = 'system:analytics';
