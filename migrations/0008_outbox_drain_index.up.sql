-- backstop:no-transaction
-- outbox-drain: each drainer takes one of 16 partitions of the operation id at
-- a time (a transaction-level advisory lock), so one operation's events are
-- published by one drainer at a time, in order; within a partition rows are
-- read in outbox_id order from this index.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_outbox_drain
    ON outbox ((operation_id % 16), outbox_id) WHERE published = false AND parked_at IS NULL;
-- Parked rows (past the retry limit): counted and alerted on.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_outbox_parked
    ON outbox (parked_at) WHERE published = false AND parked_at IS NOT NULL;
