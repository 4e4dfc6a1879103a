-- Session rollups (fiscus/ledger/sessions.py): per hour, each session's calls, tokens, first call and cost, kept
-- by every append; cases, the weekly review and the forecast read whole hours from here. Existing events are
-- rolled up here, once. Calls outside any session sit under session ''. The cost is also kept as integer limbs
-- (fiscus/ledger/limbs.py), summed natively.
CREATE TABLE session_rollup (
    bucket INTEGER NOT NULL,
    session TEXT NOT NULL,
    organization TEXT NOT NULL,
    team TEXT NOT NULL,
    agent TEXT NOT NULL,
    workflow TEXT NOT NULL,
    task_class TEXT NOT NULL,
    tenant TEXT NOT NULL,
    "user" TEXT NOT NULL,
    environment TEXT NOT NULL,
    api_key TEXT NOT NULL,
    outcome TEXT NOT NULL,
    requests INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    first_ts INTEGER NOT NULL,
    cost_usd TEXT NOT NULL,
    cost_usd_hi INTEGER NOT NULL DEFAULT 0,
    cost_usd_lo INTEGER NOT NULL DEFAULT 0,
    exact INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (bucket, session, organization, team, agent, workflow, task_class, tenant, "user", environment, api_key, outcome)
);
INSERT INTO session_rollup (bucket, session, organization, team, agent, workflow, task_class, tenant, "user",
    environment, api_key, outcome, requests, tokens, first_ts, cost_usd)
SELECT ts - ts % 3600000000, COALESCE(session, ''), COALESCE(organization, ''), COALESCE(team, ''), COALESCE(agent, ''), COALESCE(workflow, ''), COALESCE(task_class, ''), COALESCE(tenant, ''), COALESCE("user", ''), COALESCE(environment, ''), COALESCE(api_key, ''), COALESCE(outcome, ''), COUNT(*),
    SUM(input_tokens + cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens + output_tokens),
    MIN(ts), fiscus_cost_sum(input_usd, cache_read_usd, cache_write_5m_usd, cache_write_1h_usd, output_usd, tools_usd)
FROM cost_events
GROUP BY ts - ts % 3600000000, COALESCE(session, ''), COALESCE(organization, ''), COALESCE(team, ''), COALESCE(agent, ''), COALESCE(workflow, ''), COALESCE(task_class, ''), COALESCE(tenant, ''), COALESCE("user", ''), COALESCE(environment, ''), COALESCE(api_key, ''), COALESCE(outcome, '');
UPDATE session_rollup SET cost_usd_hi = COALESCE(fiscus_limb(cost_usd, 0), 0),
    cost_usd_lo = COALESCE(fiscus_limb(cost_usd, 1), 0), exact = fiscus_limb(cost_usd, 0) IS NOT NULL;
-- The calls outside any session, each a run of its own for the forecast, found without reading the rest.
CREATE INDEX cost_events_single_calls ON cost_events (ts) WHERE session IS NULL;
