-- The sessions a plan instance plans, on the athlete's local calendar days: what the adherence
-- signals `missed_sessions` and `no_data` compare the athlete's runs with (training-science.md
-- §5.3). Sent with the plan (`sessions`) and replaced whole when sent again.
create table planned_sessions (
    plan_instance_id text not null references plan_instances (id) on delete cascade,
    seq              integer not null,
    athlete_id       text not null,
    day              date not null,
    duration_s       integer not null check (duration_s > 0),
    distance_m       double precision,
    name             text,
    primary key (plan_instance_id, seq)
);
create index planned_sessions_athlete_day on planned_sessions (athlete_id, day);
