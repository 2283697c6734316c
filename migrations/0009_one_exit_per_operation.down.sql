-- backstop:no-transaction
ALTER TABLE circuit_breaker_state DROP COLUMN IF EXISTS trial_started_at;
DROP TRIGGER IF EXISTS stop_events_adjust_after_claim ON stop_events;
DROP FUNCTION IF EXISTS stop_events_no_adjust_after_claim();
DROP INDEX CONCURRENTLY IF EXISTS idx_stop_events_token_seq;
DROP INDEX CONCURRENTLY IF EXISTS idx_stop_events_one_exit;
