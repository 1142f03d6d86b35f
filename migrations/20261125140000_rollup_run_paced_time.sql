-- Moving time of the day's runs that have a distance: the numerator of average pace. A run
-- without one (a treadmill run with no footpod) counts for volume and adherence, not for
-- pace, which it slowed (1 h without distance + 10 km in 50 min read as 8:00/km, not 5:00).
-- Rows written before are rebuilt by the athlete's next recompute, which reads them only
-- after rebuilding them.
alter table daily_rollups add column run_paced_time integer not null default 0;
