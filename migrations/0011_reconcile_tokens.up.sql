-- backstop:no-transaction
-- One reconcile event per token (issue 13, §4.2): two reconcile runs that race
-- on an operation produce one POSITION_RECONCILED / POSITION_CLOSED_EXTERNALLY
-- (the row lock, then this index). Built CONCURRENTLY so appends go on.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx_stop_events_reconcile_once
    ON stop_events (execution_token, event_type)
    WHERE event_type IN ('POSITION_RECONCILED', 'POSITION_CLOSED_EXTERNALLY');

-- 0010's widened checks and the sync status check, validated without blocking writes.
ALTER TABLE stop_events VALIDATE CONSTRAINT stop_events_type_check;
ALTER TABLE stop_events VALIDATE CONSTRAINT stop_events_source_check;
ALTER TABLE operation VALIDATE CONSTRAINT operation_sync_status_check;
