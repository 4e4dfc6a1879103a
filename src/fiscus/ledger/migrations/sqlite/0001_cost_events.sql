-- The cost ledger. Timestamps are integer microseconds since the epoch (UTC); money columns are exact
-- decimal strings (see fiscus/ledger/sqlite.py for why), summed with Decimal by the ledger.
CREATE TABLE cost_events (
    id TEXT PRIMARY KEY,
    ts INTEGER NOT NULL,
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
    user TEXT,
    environment TEXT,
    api_key TEXT,
    outcome TEXT,
    input_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cache_write_5m_tokens INTEGER NOT NULL,
    cache_write_1h_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    usage_estimated INTEGER NOT NULL,
    input_usd TEXT NOT NULL,
    cache_read_usd TEXT NOT NULL,
    cache_write_5m_usd TEXT NOT NULL,
    cache_write_1h_usd TEXT NOT NULL,
    output_usd TEXT NOT NULL,
    fallback_price INTEGER NOT NULL,
    latency_ms INTEGER,
    batch INTEGER NOT NULL,
    streamed INTEGER NOT NULL,
    error TEXT,
    decision TEXT,
    tags TEXT
);
-- Reports filter by time, and chargeback most often by team or agent. Each index costs about a tenth of the
-- insert rate here (bench/ledger_ingest.py), so the single-host ledger keeps only these three.
CREATE INDEX cost_events_ts ON cost_events (ts);
CREATE INDEX cost_events_team_ts ON cost_events (team, ts);
CREATE INDEX cost_events_agent_ts ON cost_events (agent, ts);
