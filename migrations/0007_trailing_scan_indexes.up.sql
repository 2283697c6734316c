-- backstop:no-transaction
-- The trailing-stop scan (built CONCURRENTLY, as 0004): for one symbol and
-- price p a pass reads the rows whose wake price p reached (BUY: wake <= p,
-- SELL: wake >= p), and the rows not computed yet, never every active row.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_operation_trail_wake
    ON operation (symbol, side, trail_wake_price) WHERE status = 'ACTIVE' AND trail_wake_price IS NOT NULL;
-- Not computed yet, with a rule of their own ...
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_operation_trail_unarmed_own
    ON operation (id) WHERE status = 'ACTIVE' AND trail_wake_price IS NULL AND trail_error IS NULL
    AND stop_price IS NOT NULL AND trailing_mode IN ('HAND_SPAN', 'PERCENT', 'ABSOLUTE');
-- ... or following their tenant's default (read for tenants that have one).
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_operation_trail_unarmed_tenant
    ON operation (tenant_id) WHERE status = 'ACTIVE' AND trail_wake_price IS NULL AND trail_error IS NULL
    AND stop_price IS NOT NULL AND trailing_mode IS NULL;
-- Every existing row has NULLs there: the check passes, and VALIDATE takes a
-- lock that lets reads and writes go on.
ALTER TABLE operation VALIDATE CONSTRAINT operation_trailing_mode_check;
ALTER TABLE operation VALIDATE CONSTRAINT operation_trailing_offset_check;
