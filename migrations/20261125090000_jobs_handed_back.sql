-- Attempts a worker handed back at shutdown (SIGTERM past the grace period). They stay counted
-- in `attempts`, but they are the operator's doing, not the job's: the attempt limit is checked
-- against `attempts - handed_back`, so rolling deploys cannot use up a long job's attempts.
alter table jobs add column handed_back integer not null default 0;
