-- backstop:no-transaction
-- Indexes on `operation`, which may be a large adopted table: built CONCURRENTLY
-- so reads and writes go on meanwhile (seed 001's 0018). A failed concurrent
-- build leaves an INVALID index that IF NOT EXISTS would keep: `migrate verify`
-- reports it and `migrate repair` drops it before the next `up`.
--
-- The trigger scan: for one symbol and price p, a stop-monitor pass reads only
-- the rows whose level is crossed (BUY: stop_price >= p, target_price <= p;
-- SELL: the reverse), a range on (symbol, side, level), never every active row.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_operation_active_stop
    ON operation (symbol, side, stop_price) WHERE status = 'ACTIVE' AND stop_price IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_operation_active_target
    ON operation (symbol, side, target_price) WHERE status = 'ACTIVE' AND target_price IS NOT NULL;
-- Rows that still rely on the deprecated percentages (backfill and the monitor's fallback).
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_operation_percent_only
    ON operation (id) WHERE status = 'ACTIVE'
    AND ((stop_price IS NULL AND stop_loss_percent IS NOT NULL)
      OR (target_price IS NULL AND stop_gain_percent IS NOT NULL));
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_operation_tenant_status
    ON operation (tenant_id, status);
