-- AI Training (seed 003): routine templates (GOFA library + client-owned), per-client catalog and
-- settings, assessments, plans, queued routine instances, routine runs, AI Move child sessions
-- and single-use custom tokens. The tenant is the client (JWT `client_id`, default `org_id`).

-- Per-client settings; a client without a row uses the defaults.
create table ai_training_settings (
    client_id   text primary key,
    -- how often one routine instance may be deferred before `defer` answers 409
    defer_limit integer not null default 2 check (defer_limit between 0 and 100),
    updated_at  timestamptz not null default now()
);

create table ai_routine_templates (
    id               text primary key,
    -- null = GOFA library template (shared, read-only); else the owning client
    owner_client_id  text,
    name             text not null,
    description      text not null default '',
    goal             text not null check (goal in ('balance', 'strength', 'mobility', 'endurance')),
    intensity        text not null check (intensity in ('low', 'moderate', 'high')),
    duration_minutes integer not null check (duration_minutes between 5 and 120),
    -- equipment the routine needs; '{none}' = no equipment
    equipment        text[] not null default '{none}',
    -- ordered steps: [{"stepId", "exerciseId", "durationSeconds" | "reps", "guided"}]
    steps            jsonb not null,
    -- only published templates are used by the plan generator
    status           text not null default 'draft' check (status in ('draft', 'published')),
    published_at     timestamptz,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now()
);
create index ai_routine_templates_owner on ai_routine_templates (owner_client_id);

-- A client's choice of visible library templates. No rows for a client = every library
-- template is visible (the default catalog); after the first PATCH there is one row per
-- library template.
create table ai_training_catalog (
    client_id           text not null,
    routine_template_id text not null references ai_routine_templates (id),
    visible             boolean not null,
    updated_at          timestamptz not null default now(),
    primary key (client_id, routine_template_id)
);

create table ai_training_assessments (
    id          text primary key,
    client_id   text not null,
    user_id     text not null,
    type        text not null
                check (type in ('fallRisk', 'mskAssessment', 'cognitiveAssessment', 'preferences')),
    -- required for fallRisk (caps plan intensity), optional otherwise
    risk_tier   text check (risk_tier in ('low', 'moderate', 'high')),
    data        jsonb not null default '{}',
    -- sub of whoever recorded it (the user or an admin)
    recorded_by text not null,
    created_at  timestamptz not null default now()
);
create index ai_training_assessments_user on ai_training_assessments (client_id, user_id, type, created_at desc);

create table ai_training_plans (
    id                                 text primary key,
    client_id                          text not null,
    user_id                            text not null,
    -- 'replaced' once a newer plan becomes active
    status                             text not null check (status in ('active', 'replaced')),
    goal                               text not null,
    -- effective intensity (after the risk-tier cap)
    intensity                          text not null,
    -- what was asked for, before the cap
    requested_intensity                text not null,
    frequency                          integer not null,
    preferred_session_duration_minutes integer not null,
    equipment_availability             text[] not null default '{}',
    allow_duplicate_routine_templates  boolean not null default false,
    -- 'rules' (generator) or 'assignment' (an admin assigned one template)
    generation_source                  text not null,
    assessment_snapshot                jsonb not null,
    -- sub of the admin who assigned it; null when the user generated it
    assigned_by                        text,
    created_at                         timestamptz not null default now(),
    updated_at                         timestamptz not null default now()
);
create unique index ai_training_plans_one_active on ai_training_plans (client_id, user_id) where status = 'active';
create index ai_training_plans_user on ai_training_plans (client_id, user_id, created_at desc);

create table ai_routine_instances (
    id                    text primary key,
    plan_id               text not null references ai_training_plans (id),
    client_id             text not null,
    user_id               text not null,
    routine_template_id   text not null references ai_routine_templates (id),
    -- copies taken at creation, so later template edits do not change a queued routine
    routine_template_name text not null,
    duration_minutes      integer not null,
    steps                 jsonb not null,
    -- position in the user's queue (ascending); defer moves an instance past the last one
    queue_index           integer not null,
    status                text not null
                          check (status in ('queued', 'in-progress', 'completed', 'cancelled')),
    defer_count           integer not null default 0,
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    completed_at          timestamptz
);
create index ai_routine_instances_plan on ai_routine_instances (plan_id, queue_index);
create index ai_routine_instances_user on ai_routine_instances (client_id, user_id, status);

create table ai_routine_runs (
    id                     text primary key,
    client_id              text not null,
    user_id                text not null,
    routine_instance_id    text not null references ai_routine_instances (id),
    plan_id                text not null,
    routine_template_id    text not null,
    routine_template_name  text not null,
    status                 text not null
                           check (status in ('created', 'in-progress', 'completed', 'abandoned')),
    started_from           text not null,
    -- [{"sequenceIndex", "stepId", "exerciseId", "guided", "targetDurationSeconds", "targetReps",
    --   "status": pending|completed|skipped, "aiMoveSessionId", "durationSeconds",
    --   "caloriesBurned", "repsCompleted", "score"}]
    steps                  jsonb not null,
    -- summary, recomputed from `steps` on every change (kept in columns for reports)
    completed_exercises    integer not null default 0,
    total_exercises        integer not null,
    completion_rate        double precision not null default 0,
    total_duration_seconds integer not null default 0,
    total_calories_burned  double precision not null default 0,
    created_at             timestamptz not null default now(),
    started_at             timestamptz,
    finished_at            timestamptz,
    updated_at             timestamptz not null default now()
);
create index ai_routine_runs_user on ai_routine_runs (client_id, user_id, created_at desc);
create index ai_routine_runs_client on ai_routine_runs (client_id, created_at desc);
-- at most one open run per routine instance
create unique index ai_routine_runs_open on ai_routine_runs (routine_instance_id) where status in ('created', 'in-progress');

-- Results of AI Move child sessions (AI Move owns the per-exercise record; this is what it reports).
create table ai_move_sessions (
    id               text primary key,
    client_id        text not null,
    user_id          text not null,
    -- metadata linking the session to a routine run step (null for standalone sessions)
    routine_run_id   text,
    sequence_index   integer,
    exercise_id      text,
    completed        boolean not null default false,
    duration_seconds integer not null default 0,
    calories_burned  double precision not null default 0,
    reps_completed   integer,
    score            double precision,
    metadata         jsonb not null default '{}',
    created_at       timestamptz not null default now()
);
create index ai_move_sessions_run on ai_move_sessions (routine_run_id, sequence_index, created_at desc);

-- Single-use custom tokens (POST /api/auth/exchange-token). Only the SHA-256 of the token is kept.
create table ai_training_custom_tokens (
    token_hash bytea primary key,
    user_id    text not null,
    -- the bearer claims the token was exchanged for; restored when the token is used
    claims     jsonb not null,
    expires_at timestamptz not null,
    used_at    timestamptz,
    created_at timestamptz not null default now()
);

-- GOFA library starter set.
insert into ai_routine_templates (id, owner_client_id, name, description, goal, intensity, duration_minutes, equipment, steps, status, published_at) values
('gofa-balance-seated-starter', null, 'Seated Balance Starter', 'Gentle seated weight shifts and reaches.', 'balance', 'low', 10, '{chair}',
 '[{"stepId":"s1","exerciseId":"seated-weight-shift","durationSeconds":60,"guided":true},{"stepId":"s2","exerciseId":"seated-reach","reps":8,"guided":true},{"stepId":"s3","exerciseId":"seated-march","durationSeconds":90,"guided":false}]', 'published', now()),
('gofa-balance-builder-a', null, 'Balance Builder A', 'Supported standing balance with a chair.', 'balance', 'low', 15, '{chair}',
 '[{"stepId":"s1","exerciseId":"march-basic","durationSeconds":60,"guided":true},{"stepId":"s2","exerciseId":"sit-to-stand","reps":8,"guided":false},{"stepId":"s3","exerciseId":"heel-raise-supported","reps":10,"guided":false},{"stepId":"s4","exerciseId":"tandem-stand-supported","durationSeconds":30,"guided":true}]', 'published', now()),
('gofa-balance-builder-b', null, 'Balance Builder B', 'Progressed standing balance with a chair nearby.', 'balance', 'moderate', 20, '{chair}',
 '[{"stepId":"s1","exerciseId":"march-basic","durationSeconds":90,"guided":true},{"stepId":"s2","exerciseId":"single-leg-stand-supported","durationSeconds":30,"guided":false},{"stepId":"s3","exerciseId":"side-step","reps":12,"guided":false},{"stepId":"s4","exerciseId":"tandem-walk","reps":10,"guided":false},{"stepId":"s5","exerciseId":"standing-breathing","durationSeconds":60,"guided":true}]', 'published', now()),
('gofa-balance-flow', null, 'Balance Flow', 'Free-standing balance flow, no equipment.', 'balance', 'moderate', 15, '{none}',
 '[{"stepId":"s1","exerciseId":"march-basic","durationSeconds":60,"guided":true},{"stepId":"s2","exerciseId":"weight-shift-standing","durationSeconds":60,"guided":false},{"stepId":"s3","exerciseId":"clock-reach","reps":8,"guided":false},{"stepId":"s4","exerciseId":"heel-toe-walk","reps":10,"guided":false}]', 'published', now()),
('gofa-balance-band', null, 'Banded Balance', 'Balance and hip strength with a resistance band.', 'balance', 'moderate', 20, '{resistance-band}',
 '[{"stepId":"s1","exerciseId":"banded-side-step","reps":12,"guided":false},{"stepId":"s2","exerciseId":"banded-hip-abduction","reps":10,"guided":false},{"stepId":"s3","exerciseId":"single-leg-stand","durationSeconds":30,"guided":false},{"stepId":"s4","exerciseId":"standing-breathing","durationSeconds":60,"guided":true}]', 'published', now()),
('gofa-balance-challenge', null, 'Balance Challenge', 'Dynamic balance for confident movers.', 'balance', 'high', 25, '{none}',
 '[{"stepId":"s1","exerciseId":"high-knee-march","durationSeconds":90,"guided":false},{"stepId":"s2","exerciseId":"single-leg-reach","reps":8,"guided":false},{"stepId":"s3","exerciseId":"lateral-hop","reps":10,"guided":false},{"stepId":"s4","exerciseId":"lunge-hold","durationSeconds":30,"guided":false},{"stepId":"s5","exerciseId":"cool-down-stretch","durationSeconds":120,"guided":true}]', 'published', now()),
('gofa-strength-seated-band', null, 'Seated Band Strength', 'Upper and lower body strength from a chair.', 'strength', 'low', 15, '{chair,resistance-band}',
 '[{"stepId":"s1","exerciseId":"seated-band-row","reps":10,"guided":false},{"stepId":"s2","exerciseId":"seated-leg-press-band","reps":10,"guided":false},{"stepId":"s3","exerciseId":"seated-chest-press-band","reps":10,"guided":false},{"stepId":"s4","exerciseId":"seated-breathing","durationSeconds":60,"guided":true}]', 'published', now()),
('gofa-strength-chair', null, 'Chair Strength Basics', 'Sit-to-stands and supported squats.', 'strength', 'low', 10, '{chair}',
 '[{"stepId":"s1","exerciseId":"sit-to-stand","reps":8,"guided":false},{"stepId":"s2","exerciseId":"wall-push-up","reps":8,"guided":false},{"stepId":"s3","exerciseId":"heel-raise-supported","reps":10,"guided":false}]', 'published', now()),
('gofa-strength-bodyweight', null, 'Bodyweight Strength', 'Squats, push-ups and bridges, no equipment.', 'strength', 'moderate', 20, '{none}',
 '[{"stepId":"s1","exerciseId":"squat","reps":12,"guided":false},{"stepId":"s2","exerciseId":"incline-push-up","reps":10,"guided":false},{"stepId":"s3","exerciseId":"glute-bridge","reps":12,"guided":false},{"stepId":"s4","exerciseId":"bird-dog","reps":8,"guided":false},{"stepId":"s5","exerciseId":"cool-down-stretch","durationSeconds":90,"guided":true}]', 'published', now()),
('gofa-strength-band-circuit', null, 'Band Strength Circuit', 'Full-body resistance band circuit.', 'strength', 'moderate', 25, '{resistance-band}',
 '[{"stepId":"s1","exerciseId":"band-squat","reps":12,"guided":false},{"stepId":"s2","exerciseId":"band-row","reps":12,"guided":false},{"stepId":"s3","exerciseId":"band-overhead-press","reps":10,"guided":false},{"stepId":"s4","exerciseId":"band-deadlift","reps":10,"guided":false}]', 'published', now()),
('gofa-strength-power', null, 'Power Strength', 'Faster strength work for high capacity.', 'strength', 'high', 30, '{chair,resistance-band}',
 '[{"stepId":"s1","exerciseId":"fast-sit-to-stand","reps":12,"guided":false},{"stepId":"s2","exerciseId":"band-woodchop","reps":10,"guided":false},{"stepId":"s3","exerciseId":"step-up","reps":12,"guided":false},{"stepId":"s4","exerciseId":"band-row","reps":15,"guided":false},{"stepId":"s5","exerciseId":"cool-down-stretch","durationSeconds":120,"guided":true}]', 'published', now()),
('gofa-mobility-morning', null, 'Morning Mobility', 'Wake-up joint circles and stretches.', 'mobility', 'low', 10, '{none}',
 '[{"stepId":"s1","exerciseId":"neck-rolls","durationSeconds":45,"guided":true},{"stepId":"s2","exerciseId":"shoulder-circles","durationSeconds":45,"guided":true},{"stepId":"s3","exerciseId":"ankle-circles","durationSeconds":60,"guided":true}]', 'published', now()),
('gofa-mobility-chair-stretch', null, 'Chair Stretch', 'Seated stretches for hips, back and shoulders.', 'mobility', 'low', 15, '{chair}',
 '[{"stepId":"s1","exerciseId":"seated-cat-cow","reps":8,"guided":true},{"stepId":"s2","exerciseId":"seated-hamstring-stretch","durationSeconds":60,"guided":true},{"stepId":"s3","exerciseId":"seated-twist","reps":8,"guided":true},{"stepId":"s4","exerciseId":"seated-breathing","durationSeconds":60,"guided":true}]', 'published', now()),
('gofa-mobility-full-body', null, 'Full-Body Mobility', 'Standing mobility flow.', 'mobility', 'moderate', 20, '{none}',
 '[{"stepId":"s1","exerciseId":"hip-circles","durationSeconds":60,"guided":true},{"stepId":"s2","exerciseId":"standing-cat-cow","reps":10,"guided":true},{"stepId":"s3","exerciseId":"lunge-stretch","durationSeconds":60,"guided":false},{"stepId":"s4","exerciseId":"thoracic-rotation","reps":10,"guided":false},{"stepId":"s5","exerciseId":"cool-down-stretch","durationSeconds":90,"guided":true}]', 'published', now()),
('gofa-endurance-seated-cardio', null, 'Seated Cardio', 'Seated marching and arm work to raise the heart rate.', 'endurance', 'low', 15, '{chair}',
 '[{"stepId":"s1","exerciseId":"seated-march","durationSeconds":120,"guided":false},{"stepId":"s2","exerciseId":"seated-arm-punches","durationSeconds":60,"guided":false},{"stepId":"s3","exerciseId":"seated-march","durationSeconds":120,"guided":false},{"stepId":"s4","exerciseId":"seated-breathing","durationSeconds":60,"guided":true}]', 'published', now()),
('gofa-endurance-walk-intervals', null, 'Walking Intervals', 'Indoor walking intervals.', 'endurance', 'moderate', 20, '{none}',
 '[{"stepId":"s1","exerciseId":"march-basic","durationSeconds":180,"guided":false},{"stepId":"s2","exerciseId":"brisk-march","durationSeconds":120,"guided":false},{"stepId":"s3","exerciseId":"march-basic","durationSeconds":180,"guided":false},{"stepId":"s4","exerciseId":"brisk-march","durationSeconds":120,"guided":false}]', 'published', now()),
('gofa-endurance-step-cardio', null, 'Step Cardio', 'Continuous step-ups and jacks for high capacity.', 'endurance', 'high', 30, '{none}',
 '[{"stepId":"s1","exerciseId":"step-jack","durationSeconds":180,"guided":false},{"stepId":"s2","exerciseId":"high-knee-march","durationSeconds":180,"guided":false},{"stepId":"s3","exerciseId":"fast-feet","durationSeconds":120,"guided":false},{"stepId":"s4","exerciseId":"cool-down-stretch","durationSeconds":120,"guided":true}]', 'published', now());
