-- backstop:destroys-data-in operation, tenant_config
DROP TRIGGER tenant_trailing_changed ON tenant_config;
DROP FUNCTION tenant_trailing_changed();
DROP TRIGGER operation_trail_inputs_changed ON operation;
DROP FUNCTION operation_trail_inputs_changed();
ALTER TABLE tenant_config DROP COLUMN trailing_slippage_buffer_pct;
ALTER TABLE tenant_config DROP COLUMN trailing_fee_pct;
ALTER TABLE tenant_config DROP COLUMN trailing_offset;
ALTER TABLE tenant_config DROP COLUMN trailing_mode;
ALTER TABLE operation DROP COLUMN trail_error;
ALTER TABLE operation DROP COLUMN trail_wake_price;
ALTER TABLE operation DROP COLUMN initial_stop_price;
ALTER TABLE operation DROP COLUMN trailing_activation_price;
ALTER TABLE operation DROP COLUMN trailing_offset;
ALTER TABLE operation DROP COLUMN trailing_mode;
