-- backstop:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS idx_outbox_parked;
DROP INDEX CONCURRENTLY IF EXISTS idx_outbox_drain;
