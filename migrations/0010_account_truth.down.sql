-- backstop:destroys-data-in operation, tenant_config, exchange_account, account_trade, account_trade_cursor, account_balance_seen, sync_pending, orphan_order
DROP TRIGGER stop_events_reconcile_guard ON stop_events;
DROP FUNCTION stop_events_reconcile_guard();
-- The narrower checks come back NOT VALID: reconcile's events stay in the
-- append-only log (they cannot be deleted), and new ones are refused.
ALTER TABLE stop_events DROP CONSTRAINT stop_events_source_check;
ALTER TABLE stop_events ADD CONSTRAINT stop_events_source_check
    CHECK (source IN ('cron', 'stream', 'manual', 'backfill', 'trailing')) NOT VALID;
ALTER TABLE stop_events DROP CONSTRAINT stop_events_type_check;
ALTER TABLE stop_events ADD CONSTRAINT stop_events_type_check CHECK (event_type IN ('STOP_TRIGGERED',
    'EXECUTION_SUBMITTED', 'EXECUTED', 'FAILED', 'BLOCKED', 'STOP_ADJUSTED', 'STOP_CONFIGURED')) NOT VALID;
DROP TABLE orphan_order;
DROP TABLE sync_pending;
DROP TABLE account_balance_seen;
DROP TABLE account_trade_cursor;
DROP TABLE account_trade;
DROP TABLE exchange_account;
ALTER TABLE tenant_config DROP COLUMN exchange_account;
ALTER TABLE operation DROP CONSTRAINT operation_sync_status_check;
ALTER TABLE operation DROP COLUMN original_quantity;
ALTER TABLE operation DROP COLUMN held_quantity;
ALTER TABLE operation DROP COLUMN sync_error;
ALTER TABLE operation DROP COLUMN last_synced_at;
ALTER TABLE operation DROP COLUMN sync_status;
