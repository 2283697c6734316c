-- backstop:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS idx_stop_events_reconcile_once;
