-- Trailing stops (DOMAIN §4): the rule per operation or per tenant, and the
-- wake price that lets a trailing-stop pass read only the operations whose next
-- step the market reached.
--
-- operation.trailing_mode NULL follows the tenant's default
-- (tenant_config.trailing_mode, NULL: no trailing); 'NONE' turns trailing off
-- for one operation whatever the tenant says.
ALTER TABLE operation ADD COLUMN trailing_mode text;
ALTER TABLE operation ADD COLUMN trailing_offset numeric(20,8);
ALTER TABLE operation ADD COLUMN trailing_activation_price numeric(20,8);
-- Hand-Span's span is |entry - initial stop|: the stop before the first
-- adjustment (NULL until then: the stop in force is the initial one).
ALTER TABLE operation ADD COLUMN initial_stop_price numeric(20,8);
-- Kept by trailing-stop (core::wake_price): a long's stop cannot move below this
-- price, a short's above it. NULL: not computed yet (new row, or an input changed).
ALTER TABLE operation ADD COLUMN trail_wake_price numeric(20,8);
-- Why this operation cannot trail (e.g. a Hand-Span long whose stop is above
-- its entry); cleared when the stop or the rule changes.
ALTER TABLE operation ADD COLUMN trail_error text;

COMMENT ON COLUMN operation.trailing_mode IS 'HAND_SPAN, PERCENT, ABSOLUTE, NONE (off), NULL (the tenant''s default)';
COMMENT ON COLUMN operation.trailing_offset IS 'PERCENT: percent of the price; ABSOLUTE: price distance';
COMMENT ON COLUMN operation.trailing_activation_price IS 'Offset modes: no trailing before the price reaches this level';
COMMENT ON COLUMN operation.initial_stop_price IS 'The stop before trailing first moved it (Hand-Span''s span)';
COMMENT ON COLUMN operation.trail_wake_price IS 'Maintained by trailing-stop: the price at which the stop may next move';

-- NOT VALID: no scan under this migration's lock (every existing row is NULL);
-- 0007 validates them without blocking writes.
ALTER TABLE operation ADD CONSTRAINT operation_trailing_mode_check
    CHECK (trailing_mode IN ('HAND_SPAN', 'PERCENT', 'ABSOLUTE', 'NONE')) NOT VALID;
ALTER TABLE operation ADD CONSTRAINT operation_trailing_offset_check
    CHECK (trailing_offset > 0 AND trailing_activation_price > 0) NOT VALID;

ALTER TABLE tenant_config ADD COLUMN trailing_mode text
    CONSTRAINT tenant_config_trailing_mode_check CHECK (trailing_mode IN ('HAND_SPAN', 'PERCENT', 'ABSOLUTE'));
ALTER TABLE tenant_config ADD COLUMN trailing_offset numeric(20,8)
    CONSTRAINT tenant_config_trailing_offset_check CHECK (trailing_offset > 0);
-- Hand-Span's break-even covers these costs (percent of the entry).
ALTER TABLE tenant_config ADD COLUMN trailing_fee_pct numeric(20,8) NOT NULL DEFAULT 0.10;
ALTER TABLE tenant_config ADD COLUMN trailing_slippage_buffer_pct numeric(20,8) NOT NULL DEFAULT 0.05;
ALTER TABLE tenant_config ADD CONSTRAINT tenant_config_trailing_costs_check
    CHECK (trailing_fee_pct >= 0 AND trailing_slippage_buffer_pct >= 0);

-- A wake price is only as good as its inputs: when the stop, the entry or the
-- rule changes and the same statement does not set a new wake price, the row
-- goes back to "not computed" (trailing-stop recomputes it on its next pass).
-- trailing-stop's own adjustment changes the stop first (event store), then
-- sets the new wake price in a second statement of the same transaction.
CREATE FUNCTION operation_trail_inputs_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.trail_wake_price IS NOT DISTINCT FROM OLD.trail_wake_price
       AND (NEW.stop_price IS DISTINCT FROM OLD.stop_price
            OR NEW.average_entry_price IS DISTINCT FROM OLD.average_entry_price
            OR NEW.side IS DISTINCT FROM OLD.side
            OR NEW.trailing_mode IS DISTINCT FROM OLD.trailing_mode
            OR NEW.trailing_offset IS DISTINCT FROM OLD.trailing_offset
            OR NEW.trailing_activation_price IS DISTINCT FROM OLD.trailing_activation_price
            OR NEW.initial_stop_price IS DISTINCT FROM OLD.initial_stop_price) THEN
        NEW.trail_wake_price := NULL;
        NEW.trail_error := NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER operation_trail_inputs_changed
    BEFORE UPDATE OF stop_price, average_entry_price, side, trailing_mode, trailing_offset,
                     trailing_activation_price, initial_stop_price ON operation
    FOR EACH ROW EXECUTE FUNCTION operation_trail_inputs_changed();

-- A tenant's default rule or costs changed: its ACTIVE operations recompute.
CREATE FUNCTION tenant_trailing_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT'
       OR NEW.trailing_mode IS DISTINCT FROM OLD.trailing_mode
       OR NEW.trailing_offset IS DISTINCT FROM OLD.trailing_offset
       OR NEW.trailing_fee_pct IS DISTINCT FROM OLD.trailing_fee_pct
       OR NEW.trailing_slippage_buffer_pct IS DISTINCT FROM OLD.trailing_slippage_buffer_pct THEN
        UPDATE operation SET trail_wake_price = NULL, trail_error = NULL
        WHERE tenant_id = NEW.tenant_id AND status = 'ACTIVE'
          AND (trail_wake_price IS NOT NULL OR trail_error IS NOT NULL);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER tenant_trailing_changed
    AFTER INSERT OR UPDATE OF trailing_mode, trailing_offset, trailing_fee_pct, trailing_slippage_buffer_pct
    ON tenant_config FOR EACH ROW EXECUTE FUNCTION tenant_trailing_changed();
