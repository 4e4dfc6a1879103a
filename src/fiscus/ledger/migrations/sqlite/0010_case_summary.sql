-- Case summaries (fiscus/ledger/case_summary.py): one row per session with its calls, tokens, cost, first and
-- last call, its attribution and call label (mixed = 1 when its calls differ in either) and its latest recorded
-- outcome, kept by every append and outcome record. Cases, case ranks and the forecast's runs read a session
-- wholly inside a report's window from here. calls = 0: an outcome recorded before any call. The cost is also
-- kept as integer limbs (fiscus/ledger/limbs.py), summed natively.
CREATE TABLE case_summary (
    session TEXT PRIMARY KEY,
    calls INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    first_ts INTEGER NOT NULL,
    last_ts INTEGER NOT NULL,
    organization TEXT NOT NULL,
    team TEXT NOT NULL,
    agent TEXT NOT NULL,
    workflow TEXT NOT NULL,
    task_class TEXT NOT NULL,
    tenant TEXT NOT NULL,
    "user" TEXT NOT NULL,
    environment TEXT NOT NULL,
    api_key TEXT NOT NULL,
    label TEXT NOT NULL,
    mixed INTEGER NOT NULL,
    recorded TEXT NOT NULL DEFAULT '',
    recorded_ts INTEGER NOT NULL DEFAULT 0,
    recorded_id TEXT NOT NULL DEFAULT '',
    cost_usd TEXT NOT NULL,
    cost_usd_hi INTEGER NOT NULL DEFAULT 0,
    cost_usd_lo INTEGER NOT NULL DEFAULT 0,
    exact INTEGER NOT NULL DEFAULT 1
);
INSERT INTO case_summary (session, calls, tokens, first_ts, last_ts, organization, team, agent, workflow,
    task_class, tenant, "user", environment, api_key, label, mixed, cost_usd)
SELECT session, COUNT(*), SUM(input_tokens + cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens + output_tokens),
    MIN(ts), MAX(ts), MIN(COALESCE(organization, '')), MIN(COALESCE(team, '')), MIN(COALESCE(agent, '')), MIN(COALESCE(workflow, '')), MIN(COALESCE(task_class, '')), MIN(COALESCE(tenant, '')), MIN(COALESCE("user", '')), MIN(COALESCE(environment, '')), MIN(COALESCE(api_key, '')), COALESCE(MIN(outcome), ''),
    MIN(COALESCE(organization, '')) <> MAX(COALESCE(organization, '')) OR MIN(COALESCE(team, '')) <> MAX(COALESCE(team, '')) OR MIN(COALESCE(agent, '')) <> MAX(COALESCE(agent, '')) OR MIN(COALESCE(workflow, '')) <> MAX(COALESCE(workflow, '')) OR MIN(COALESCE(task_class, '')) <> MAX(COALESCE(task_class, '')) OR MIN(COALESCE(tenant, '')) <> MAX(COALESCE(tenant, '')) OR MIN(COALESCE("user", '')) <> MAX(COALESCE("user", '')) OR MIN(COALESCE(environment, '')) <> MAX(COALESCE(environment, '')) OR MIN(COALESCE(api_key, '')) <> MAX(COALESCE(api_key, '')) OR COALESCE(MIN(outcome) <> MAX(outcome), 0),
    fiscus_cost_sum(input_usd, cache_read_usd, cache_write_5m_usd, cache_write_1h_usd, output_usd, tools_usd)
FROM cost_events WHERE session IS NOT NULL GROUP BY session;
UPDATE case_summary SET cost_usd_hi = COALESCE(fiscus_limb(cost_usd, 0), 0),
    cost_usd_lo = COALESCE(fiscus_limb(cost_usd, 1), 0), exact = fiscus_limb(cost_usd, 0) IS NOT NULL;
INSERT INTO case_summary (session, calls, tokens, first_ts, last_ts, organization, team, agent, workflow,
    task_class, tenant, "user", environment, api_key, label, mixed, cost_usd, recorded, recorded_ts, recorded_id)
SELECT session, 0, 0, 0, 0, '', '', '', '', '', '', '', '', '', '', 0, '0', outcome, ts, id
FROM (SELECT session, outcome, ts, id, ROW_NUMBER() OVER (PARTITION BY session ORDER BY ts DESC, id DESC) AS rn
      FROM session_outcomes) WHERE rn = 1
ON CONFLICT (session) DO UPDATE SET recorded = excluded.recorded, recorded_ts = excluded.recorded_ts,
    recorded_id = excluded.recorded_id;
-- A report's window: the sessions starting in it, the longest session (how far before a bound a session that
-- crosses it can start), and the sessions whose calls differ, which are read from the session rollup instead.
CREATE INDEX case_summary_first ON case_summary (first_ts);
CREATE INDEX case_summary_span ON case_summary ((last_ts - first_ts));
CREATE INDEX case_summary_mixed ON case_summary (first_ts) WHERE mixed = 1;
