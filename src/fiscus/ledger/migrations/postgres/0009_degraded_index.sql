-- The calls a budget degraded (tags.degraded = budget), which reports count apart from savings: few rows, found
-- by this partial index instead of reading every event's tags (no rollup keeps tags).
CREATE INDEX cost_events_degraded_ts ON cost_events (ts) WHERE (tags ->> 'degraded') = 'budget';
