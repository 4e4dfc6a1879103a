-- Monthly spend rollups (grain 'm', the bucket the UTC month's first instant): whole months of a window are
-- read from here, so an all-time or quarter query reads a few rows per month instead of one per day.
-- Money is summed natively from integer limbs (fiscus/ledger/limbs.py: hi micro-dollars + lo atto-dollars);
-- a row whose amounts have more than 18 decimals is marked inexact (exact = 0) and read from its text.
-- Existing rows get their limbs, then the months from their daily rows; appends keep all of it.
ALTER TABLE spend_rollup ADD COLUMN input_usd_hi INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN input_usd_lo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN cache_read_usd_hi INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN cache_read_usd_lo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN cache_write_usd_hi INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN cache_write_usd_lo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN output_usd_hi INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN output_usd_lo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN tools_usd_hi INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN tools_usd_lo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN ungoverned_usd_hi INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN ungoverned_usd_lo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN saved_cache_usd_hi INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN saved_cache_usd_lo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN saved_route_usd_hi INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN saved_route_usd_lo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN saved_context_usd_hi INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN saved_context_usd_lo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN saved_summary_usd_hi INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN saved_summary_usd_lo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN saved_response_cache_usd_hi INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN saved_response_cache_usd_lo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN saved_batch_usd_hi INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN saved_batch_usd_lo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_rollup ADD COLUMN exact INTEGER NOT NULL DEFAULT 1;
UPDATE spend_rollup SET
    input_usd_hi = COALESCE(fiscus_limb(input_usd, 0), 0), input_usd_lo = COALESCE(fiscus_limb(input_usd, 1), 0),
    cache_read_usd_hi = COALESCE(fiscus_limb(cache_read_usd, 0), 0), cache_read_usd_lo = COALESCE(fiscus_limb(cache_read_usd, 1), 0),
    cache_write_usd_hi = COALESCE(fiscus_limb(cache_write_usd, 0), 0), cache_write_usd_lo = COALESCE(fiscus_limb(cache_write_usd, 1), 0),
    output_usd_hi = COALESCE(fiscus_limb(output_usd, 0), 0), output_usd_lo = COALESCE(fiscus_limb(output_usd, 1), 0),
    tools_usd_hi = COALESCE(fiscus_limb(tools_usd, 0), 0), tools_usd_lo = COALESCE(fiscus_limb(tools_usd, 1), 0),
    ungoverned_usd_hi = COALESCE(fiscus_limb(ungoverned_usd, 0), 0), ungoverned_usd_lo = COALESCE(fiscus_limb(ungoverned_usd, 1), 0),
    saved_cache_usd_hi = COALESCE(fiscus_limb(saved_cache_usd, 0), 0), saved_cache_usd_lo = COALESCE(fiscus_limb(saved_cache_usd, 1), 0),
    saved_route_usd_hi = COALESCE(fiscus_limb(saved_route_usd, 0), 0), saved_route_usd_lo = COALESCE(fiscus_limb(saved_route_usd, 1), 0),
    saved_context_usd_hi = COALESCE(fiscus_limb(saved_context_usd, 0), 0), saved_context_usd_lo = COALESCE(fiscus_limb(saved_context_usd, 1), 0),
    saved_summary_usd_hi = COALESCE(fiscus_limb(saved_summary_usd, 0), 0), saved_summary_usd_lo = COALESCE(fiscus_limb(saved_summary_usd, 1), 0),
    saved_response_cache_usd_hi = COALESCE(fiscus_limb(saved_response_cache_usd, 0), 0), saved_response_cache_usd_lo = COALESCE(fiscus_limb(saved_response_cache_usd, 1), 0),
    saved_batch_usd_hi = COALESCE(fiscus_limb(saved_batch_usd, 0), 0), saved_batch_usd_lo = COALESCE(fiscus_limb(saved_batch_usd, 1), 0),
    exact = (fiscus_limb(input_usd, 0) IS NOT NULL AND fiscus_limb(cache_read_usd, 0) IS NOT NULL AND fiscus_limb(cache_write_usd, 0) IS NOT NULL AND fiscus_limb(output_usd, 0) IS NOT NULL AND fiscus_limb(tools_usd, 0) IS NOT NULL AND fiscus_limb(ungoverned_usd, 0) IS NOT NULL AND fiscus_limb(saved_cache_usd, 0) IS NOT NULL AND fiscus_limb(saved_route_usd, 0) IS NOT NULL AND fiscus_limb(saved_context_usd, 0) IS NOT NULL AND fiscus_limb(saved_summary_usd, 0) IS NOT NULL AND fiscus_limb(saved_response_cache_usd, 0) IS NOT NULL AND fiscus_limb(saved_batch_usd, 0) IS NOT NULL);
INSERT INTO spend_rollup (grain, bucket, organization, team, agent, workflow, task_class, tenant, environment, api_key, outcome, provider, served_model, requested_model, status, requests, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, estimated_events, fallback_price_events, input_usd, cache_read_usd, cache_write_usd, output_usd, tools_usd, ungoverned_usd, saved_cache_usd, saved_route_usd, saved_context_usd, saved_summary_usd, saved_response_cache_usd, saved_batch_usd, input_usd_hi, input_usd_lo, cache_read_usd_hi, cache_read_usd_lo, cache_write_usd_hi, cache_write_usd_lo, output_usd_hi, output_usd_lo, tools_usd_hi, tools_usd_lo, ungoverned_usd_hi, ungoverned_usd_lo, saved_cache_usd_hi, saved_cache_usd_lo, saved_route_usd_hi, saved_route_usd_lo, saved_context_usd_hi, saved_context_usd_lo, saved_summary_usd_hi, saved_summary_usd_lo, saved_response_cache_usd_hi, saved_response_cache_usd_lo, saved_batch_usd_hi, saved_batch_usd_lo, exact)
SELECT 'm', CAST(strftime('%s', bucket / 1000000, 'unixepoch', 'start of month') AS INTEGER) * 1000000, organization, team, agent, workflow, task_class, tenant, environment, api_key, outcome, provider, served_model, requested_model, status, SUM(requests), SUM(input_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(output_tokens), SUM(reasoning_tokens), SUM(estimated_events), SUM(fallback_price_events), fiscus_decimal_sum(input_usd), fiscus_decimal_sum(cache_read_usd), fiscus_decimal_sum(cache_write_usd), fiscus_decimal_sum(output_usd), fiscus_decimal_sum(tools_usd), fiscus_decimal_sum(ungoverned_usd), fiscus_decimal_sum(saved_cache_usd), fiscus_decimal_sum(saved_route_usd), fiscus_decimal_sum(saved_context_usd), fiscus_decimal_sum(saved_summary_usd), fiscus_decimal_sum(saved_response_cache_usd), fiscus_decimal_sum(saved_batch_usd), SUM(input_usd_hi) + SUM(input_usd_lo) / 1000000000000, SUM(input_usd_lo) % 1000000000000, SUM(cache_read_usd_hi) + SUM(cache_read_usd_lo) / 1000000000000, SUM(cache_read_usd_lo) % 1000000000000, SUM(cache_write_usd_hi) + SUM(cache_write_usd_lo) / 1000000000000, SUM(cache_write_usd_lo) % 1000000000000, SUM(output_usd_hi) + SUM(output_usd_lo) / 1000000000000, SUM(output_usd_lo) % 1000000000000, SUM(tools_usd_hi) + SUM(tools_usd_lo) / 1000000000000, SUM(tools_usd_lo) % 1000000000000, SUM(ungoverned_usd_hi) + SUM(ungoverned_usd_lo) / 1000000000000, SUM(ungoverned_usd_lo) % 1000000000000, SUM(saved_cache_usd_hi) + SUM(saved_cache_usd_lo) / 1000000000000, SUM(saved_cache_usd_lo) % 1000000000000, SUM(saved_route_usd_hi) + SUM(saved_route_usd_lo) / 1000000000000, SUM(saved_route_usd_lo) % 1000000000000, SUM(saved_context_usd_hi) + SUM(saved_context_usd_lo) / 1000000000000, SUM(saved_context_usd_lo) % 1000000000000, SUM(saved_summary_usd_hi) + SUM(saved_summary_usd_lo) / 1000000000000, SUM(saved_summary_usd_lo) % 1000000000000, SUM(saved_response_cache_usd_hi) + SUM(saved_response_cache_usd_lo) / 1000000000000, SUM(saved_response_cache_usd_lo) % 1000000000000, SUM(saved_batch_usd_hi) + SUM(saved_batch_usd_lo) / 1000000000000, SUM(saved_batch_usd_lo) % 1000000000000, MIN(exact)
FROM spend_rollup WHERE grain = 'd'
GROUP BY CAST(strftime('%s', bucket / 1000000, 'unixepoch', 'start of month') AS INTEGER) * 1000000, organization, team, agent, workflow, task_class, tenant, environment, api_key, outcome, provider, served_model, requested_model, status;
