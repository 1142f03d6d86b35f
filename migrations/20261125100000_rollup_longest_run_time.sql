-- Longest single run of the day by moving time, seconds (run types only; 0 without a run). The
-- snapshot's long_run_overreach flags a run over 150 min from 64 km a week (Daniels' cap,
-- training-science.md §1.6 / §5.3); longest_run keeps only the distance. It may be another run
-- than the longest by distance. Rows written before this migration hold 0 until the athlete's
-- next recompute_stats rebuilds them (every upload, and the daily rollover pass).
alter table daily_rollups add column longest_run_time integer not null default 0;
