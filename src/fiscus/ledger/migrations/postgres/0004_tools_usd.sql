-- Server-side tool fees (web searches and the like), a money part of their own; earlier rows had none.
ALTER TABLE cost_events ADD COLUMN tools_usd NUMERIC NOT NULL DEFAULT 0;
