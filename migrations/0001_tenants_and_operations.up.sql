-- Tenants and positions ("operations").
--
-- Adopts an existing `operation` table (a trading monolith's) without data loss:
-- only the columns it lacks are added (PostgreSQL 11+ makes constant defaults
-- metadata-only, so no table rewrite), and each added column is recorded in
-- backstop_adopted_column so that the down migration removes exactly what this
-- migration added and nothing of the monolith's. A monolith that keys tenants
-- as client_id and symbols as symbol_id keeps working: a trigger fills
-- tenant_id/symbol for rows it writes.

CREATE TABLE backstop_adopted_column (
    table_name  text NOT NULL,
    column_name text NOT NULL,  -- '*' = the whole table was created by Backstop
    PRIMARY KEY (table_name, column_name)
);

CREATE FUNCTION backstop_create_table_if_missing(tbl text, definition text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass(tbl) IS NULL THEN
        EXECUTE format('CREATE TABLE %I (%s)', tbl, definition);
        INSERT INTO backstop_adopted_column VALUES (tbl, '*');
    END IF;
END $$;

CREATE FUNCTION backstop_add_column(tbl text, col text, definition text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = tbl AND column_name = col) THEN
        EXECUTE format('ALTER TABLE %I ADD COLUMN %I %s', tbl, col, definition);
        INSERT INTO backstop_adopted_column VALUES (tbl, col);
    END IF;
END $$;

SELECT backstop_create_table_if_missing('tenant', 'id bigint PRIMARY KEY');
SELECT backstop_add_column('tenant', 'name', $$text NOT NULL DEFAULT ''$$);
SELECT backstop_add_column('tenant', 'created_at', 'timestamptz NOT NULL DEFAULT now()');

SELECT backstop_create_table_if_missing('operation', 'id bigserial PRIMARY KEY');
SELECT backstop_add_column('operation', 'tenant_id', 'bigint');
SELECT backstop_add_column('operation', 'symbol', 'text');
SELECT backstop_add_column('operation', 'side', 'text');
SELECT backstop_add_column('operation', 'status', $$text NOT NULL DEFAULT 'ACTIVE'$$);
SELECT backstop_add_column('operation', 'average_entry_price', 'numeric(20,8)');
SELECT backstop_add_column('operation', 'quantity', 'numeric(20,8)');
SELECT backstop_add_column('operation', 'stop_price', 'numeric(20,8)');
SELECT backstop_add_column('operation', 'target_price', 'numeric(20,8)');
SELECT backstop_add_column('operation', 'stop_loss_percent', 'numeric(20,8)');
SELECT backstop_add_column('operation', 'stop_gain_percent', 'numeric(20,8)');
SELECT backstop_add_column('operation', 'stop_execution_token', 'varchar(64)');
SELECT backstop_add_column('operation', 'last_stop_check_at', 'timestamptz');
SELECT backstop_add_column('operation', 'stop_check_count', 'integer NOT NULL DEFAULT 0');
SELECT backstop_add_column('operation', 'closed_at', 'timestamptz');
SELECT backstop_add_column('operation', 'close_reason', 'text');
SELECT backstop_add_column('operation', 'created_at', 'timestamptz NOT NULL DEFAULT now()');
SELECT backstop_add_column('operation', 'updated_at', 'timestamptz NOT NULL DEFAULT now()');

COMMENT ON COLUMN operation.stop_price IS 'Absolute stop-loss level (FIXED; never recomputed from a percentage)';
COMMENT ON COLUMN operation.target_price IS 'Absolute take-profit level';
COMMENT ON COLUMN operation.stop_loss_percent IS '[DEPRECATED] use stop_price; kept for reference and backfill';
COMMENT ON COLUMN operation.stop_gain_percent IS '[DEPRECATED] use target_price; kept for reference and backfill';

-- NOT VALID: checked for every new or updated row without scanning (or
-- rejecting) legacy rows of an adopted table; `migrate verify` reports them.
ALTER TABLE operation ADD CONSTRAINT backstop_operation_side_check
    CHECK (side IN ('BUY', 'SELL')) NOT VALID;
ALTER TABLE operation ADD CONSTRAINT backstop_operation_levels_positive_check
    CHECK (stop_price > 0 AND target_price > 0 AND quantity > 0 AND average_entry_price > 0) NOT VALID;
DO $$
BEGIN
    -- A table Backstop just created is empty: validating is instant.
    IF EXISTS (SELECT 1 FROM backstop_adopted_column WHERE table_name = 'operation' AND column_name = '*') THEN
        ALTER TABLE operation VALIDATE CONSTRAINT backstop_operation_side_check;
        ALTER TABLE operation VALIDATE CONSTRAINT backstop_operation_levels_positive_check;
    END IF;
END $$;

-- The monolith bridge (only when adopting a table keyed by client_id / symbol_id).
DO $$
DECLARE
    has_client boolean := EXISTS (SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'operation' AND column_name = 'client_id');
    has_symbol_id boolean := EXISTS (SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'operation' AND column_name = 'symbol_id')
        AND EXISTS (SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'symbol' AND column_name = 'name');
    body text := '';
BEGIN
    IF has_client THEN
        UPDATE operation SET tenant_id = client_id WHERE tenant_id IS NULL;
        body := body || 'NEW.tenant_id := COALESCE(NEW.tenant_id, NEW.client_id); ';
    END IF;
    IF has_symbol_id THEN
        UPDATE operation o SET symbol = s.name FROM symbol s WHERE o.symbol_id = s.id AND o.symbol IS NULL;
        body := body || 'IF NEW.symbol IS NULL THEN SELECT name INTO NEW.symbol FROM symbol WHERE id = NEW.symbol_id; END IF; ';
    END IF;
    IF body <> '' THEN
        EXECUTE 'CREATE FUNCTION backstop_operation_bridge() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN '
            || body || 'RETURN NEW; END $f$';
        CREATE TRIGGER backstop_operation_bridge BEFORE INSERT OR UPDATE ON operation
            FOR EACH ROW EXECUTE FUNCTION backstop_operation_bridge();
    END IF;
    INSERT INTO tenant (id)
        SELECT DISTINCT tenant_id FROM operation WHERE tenant_id IS NOT NULL
        ON CONFLICT (id) DO NOTHING;
END $$;
