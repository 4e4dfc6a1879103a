-- The cost ledger. Money is NUMERIC (exact, any scale); timestamps are timestamptz (stored UTC).
CREATE TABLE cost_events (
    id TEXT PRIMARY KEY,
    ts TIMESTAMPTZ NOT NULL,
    provider TEXT NOT NULL,
    requested_model TEXT NOT NULL,
    served_model TEXT NOT NULL,
    model_tier TEXT,
    status TEXT NOT NULL,
    organization TEXT,
    team TEXT,
    agent TEXT,
    workflow TEXT,
    task_class TEXT,
    session TEXT,
    parent_session TEXT,
    tenant TEXT,
    "user" TEXT,
    environment TEXT,
    api_key TEXT,
    outcome TEXT,
    input_tokens BIGINT NOT NULL,
    cache_read_tokens BIGINT NOT NULL,
    cache_write_5m_tokens BIGINT NOT NULL,
    cache_write_1h_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    usage_estimated BOOLEAN NOT NULL,
    input_usd NUMERIC NOT NULL,
    cache_read_usd NUMERIC NOT NULL,
    cache_write_5m_usd NUMERIC NOT NULL,
    cache_write_1h_usd NUMERIC NOT NULL,
    output_usd NUMERIC NOT NULL,
    fallback_price BOOLEAN NOT NULL,
    latency_ms INTEGER,
    batch BOOLEAN NOT NULL,
    streamed BOOLEAN NOT NULL,
    error TEXT,
    decision TEXT,
    tags JSONB
);
-- Reports filter by time and group by who pays; these are the dimensions chargeback reads most.
CREATE INDEX cost_events_ts ON cost_events (ts);
CREATE INDEX cost_events_team_ts ON cost_events (team, ts);
CREATE INDEX cost_events_agent_ts ON cost_events (agent, ts);
CREATE INDEX cost_events_tenant_ts ON cost_events (tenant, ts);
CREATE INDEX cost_events_session ON cost_events (session);
