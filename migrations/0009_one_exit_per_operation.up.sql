-- backstop:no-transaction
-- One protective exit per position (issue 10, defect 1; DOMAIN §3 "One exit per
-- position"). Tokens keyed on the level let two monitors claim one position at
-- two levels when trailing moved the stop between their scans. The event log
-- itself now allows one STOP_TRIGGERED per operation: the second claim, at any
-- level, loses on this index (INSERT ... ON CONFLICT DO NOTHING: "duplicate
-- execution prevented"), whichever process, pass or stream makes it. Built
-- CONCURRENTLY so appends go on meanwhile; a database that already holds two
-- claims for one operation (written by an older version) fails here with the
-- operation id, and must be looked at by a person before it is migrated.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx_stop_events_one_exit
    ON stop_events (operation_id) WHERE event_type = 'STOP_TRIGGERED';

-- An exit's events, read by the monitors to resume it (core::fold_exit): every
-- batch reads them for its tokens.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_stop_events_token_seq ON stop_events (execution_token, event_seq);

-- A stop never moves once an exit is claimed. trailing-stop locks the row and
-- re-checks under the lock (a claim holds the row FOR SHARE while it commits);
-- this trigger refuses what any other writer would append after a claim.
CREATE OR REPLACE FUNCTION stop_events_no_adjust_after_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM stop_events WHERE operation_id = NEW.operation_id AND event_type = 'STOP_TRIGGERED') THEN
        RAISE EXCEPTION 'operation % has a claimed exit: its stop cannot move (STOP_ADJUSTED %)',
            NEW.operation_id, NEW.execution_token
            USING ERRCODE = 'check_violation',
                  HINT = 'An operation''s levels are frozen from its STOP_TRIGGERED on.';
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS stop_events_adjust_after_claim ON stop_events;
CREATE TRIGGER stop_events_adjust_after_claim BEFORE INSERT ON stop_events
    FOR EACH ROW WHEN (NEW.event_type = 'STOP_ADJUSTED') EXECUTE FUNCTION stop_events_no_adjust_after_claim();

-- A circuit breaker's HALF_OPEN trial whose process died never reports: it is
-- granted again after another retry delay (core::breaker_allows), from here.
ALTER TABLE circuit_breaker_state ADD COLUMN IF NOT EXISTS trial_started_at timestamptz;
