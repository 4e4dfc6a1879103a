-- The audit chain (fiscus/ledger/chain.py): each row's writer chain, its place in it and its hashes; the policy
-- version that decided the call; policy events chained beside the cost events; and each chain's newest link.
-- Rows already stored are chained by the ledger right after this migration, under the chain "pre-audit".
ALTER TABLE cost_events ADD COLUMN policy_version TEXT;
ALTER TABLE cost_events ADD COLUMN chain TEXT;
ALTER TABLE cost_events ADD COLUMN seq BIGINT;
ALTER TABLE cost_events ADD COLUMN prev_hash TEXT;
ALTER TABLE cost_events ADD COLUMN hash TEXT;
CREATE UNIQUE INDEX cost_events_chain_seq ON cost_events (chain, seq);
CREATE TABLE policy_events (
    id TEXT PRIMARY KEY,
    ts TIMESTAMPTZ NOT NULL,
    kind TEXT NOT NULL,
    version TEXT NOT NULL,
    source TEXT,
    host TEXT NOT NULL,
    chain TEXT,
    seq BIGINT,
    prev_hash TEXT,
    hash TEXT
);
CREATE UNIQUE INDEX policy_events_chain_seq ON policy_events (chain, seq);
CREATE INDEX policy_events_ts ON policy_events (ts);
CREATE TABLE ledger_chains (
    chain TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
