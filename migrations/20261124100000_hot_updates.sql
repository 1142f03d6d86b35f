-- HOT-friendly jobs: a dispatch mark, a claim, a lease refresh and a hand-back change no
-- indexed column (nor a column an index predicate reads), so PostgreSQL writes their new row
-- version on the same page without new index entries. Only the terminal write, which takes a
-- job off the live list, adds index entries. BENCHMARKS.md "What changed" 25.

-- Debounce of system recomputes: the key is set only on those jobs and cleared when they
-- leave the queue for the first time, so the index no longer reads `state` and `attempts`.
alter table jobs add column debounce_key text;
update jobs set debounce_key = input->>'user_id'
 where kind = 'recompute_stats' and state = 'queued' and attempts = 0 and owner_id = 'system:analytics';
drop index jobs_recompute_debounce;
create unique index jobs_recompute_debounce on jobs (debounce_key) where debounce_key is not null;

-- One list of live jobs, for the dispatcher (live and not pushed yet: at most the high-water
-- mark plus the running jobs come before the first one) and the reconciler.
drop index jobs_undispatched;
drop index jobs_live;
create index jobs_live on jobs (queue, created_at) where finished_at is null;
alter table jobs add constraint jobs_live_unfinished
    check ((finished_at is null) = (state in ('queued', 'running')));

-- room on each page for the updated versions of its rows
alter table jobs set (fillfactor = 50);
