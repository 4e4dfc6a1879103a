-- What each call would have cost ungoverned (requested model, no placement, no trimming, no cache hit) and the
-- saving per lever, as NUMERIC; NULL for refused work and for rows written before this migration.
ALTER TABLE cost_events ADD COLUMN ungoverned_usd NUMERIC;
ALTER TABLE cost_events ADD COLUMN saved_cache_usd NUMERIC;
ALTER TABLE cost_events ADD COLUMN saved_route_usd NUMERIC;
ALTER TABLE cost_events ADD COLUMN saved_context_usd NUMERIC;
ALTER TABLE cost_events ADD COLUMN saved_summary_usd NUMERIC;
ALTER TABLE cost_events ADD COLUMN saved_response_cache_usd NUMERIC;
ALTER TABLE cost_events ADD COLUMN saved_batch_usd NUMERIC;
