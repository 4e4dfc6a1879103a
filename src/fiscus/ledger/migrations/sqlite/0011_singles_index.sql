-- The calls outside sessions in the session rollup (session ''), read by the per-case queries without the rows
-- of the sessions around them.
CREATE INDEX session_rollup_singles ON session_rollup (bucket) WHERE session = '';
