-- backstop:destroys-data-in operation, tenant
-- Removes what 0001 added: the tables it created, or, on an adopted table, only
-- the columns it added (the monolith's own columns and rows stay).
DO $$
DECLARE
    r record;
BEGIN
    DROP TRIGGER IF EXISTS backstop_operation_bridge ON operation;
    DROP FUNCTION IF EXISTS backstop_operation_bridge();
    ALTER TABLE operation DROP CONSTRAINT IF EXISTS backstop_operation_side_check;
    ALTER TABLE operation DROP CONSTRAINT IF EXISTS backstop_operation_levels_positive_check;
    FOR r IN SELECT table_name FROM backstop_adopted_column WHERE column_name = '*' LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', r.table_name);
    END LOOP;
    FOR r IN SELECT a.table_name, a.column_name FROM backstop_adopted_column a
             WHERE a.column_name <> '*'
               AND NOT EXISTS (SELECT 1 FROM backstop_adopted_column w
                               WHERE w.table_name = a.table_name AND w.column_name = '*') LOOP
        EXECUTE format('ALTER TABLE %I DROP COLUMN IF EXISTS %I', r.table_name, r.column_name);
    END LOOP;
END $$;
DROP FUNCTION backstop_add_column(text, text, text);
DROP FUNCTION backstop_create_table_if_missing(text, text);
DROP TABLE backstop_adopted_column;
