-- backstop:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS idx_operation_tenant_status;
DROP INDEX CONCURRENTLY IF EXISTS idx_operation_percent_only;
DROP INDEX CONCURRENTLY IF EXISTS idx_operation_active_target;
DROP INDEX CONCURRENTLY IF EXISTS idx_operation_active_stop;
