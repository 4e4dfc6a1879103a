-- What each session (case) achieved, attached after its calls; the latest record of a session is its outcome.
CREATE TABLE session_outcomes (
    id TEXT PRIMARY KEY,
    ts TIMESTAMPTZ NOT NULL,
    session TEXT NOT NULL,
    outcome TEXT NOT NULL,
    source TEXT NOT NULL,
    agent TEXT,
    workflow TEXT,
    task_class TEXT
);
CREATE INDEX session_outcomes_session ON session_outcomes (session, ts);
