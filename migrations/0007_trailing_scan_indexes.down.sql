-- backstop:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS idx_operation_trail_unarmed_tenant;
DROP INDEX CONCURRENTLY IF EXISTS idx_operation_trail_unarmed_own;
DROP INDEX CONCURRENTLY IF EXISTS idx_operation_trail_wake;
