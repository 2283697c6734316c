-- Account truth (issue 13, docs/design/account-truth.md §4): what reconcile
-- learns from the exchange account, on the operation and in its own tables,
-- and the four events it appends.
--
-- sync_status: UNCHECKED until a reconcile pass looked; IN_SYNC, REDUCED (the
-- quantity followed a sell made elsewhere or a base-asset fee), CLOSED_ELSEWHERE
-- (closed without an exit), SHORT (the account holds less and no trade says
-- why: flagged, exits capped at the balance), NOT_RECONCILED (a short, which a
-- spot account cannot hold).
ALTER TABLE operation ADD COLUMN sync_status text NOT NULL DEFAULT 'UNCHECKED';
ALTER TABLE operation ADD COLUMN last_synced_at timestamptz;
ALTER TABLE operation ADD COLUMN sync_error text;                    -- full text, never truncated
ALTER TABLE operation ADD COLUMN held_quantity numeric(20,8);        -- SHORT: what the account covers
ALTER TABLE operation ADD COLUMN original_quantity numeric(20,8);    -- before the first reduction
COMMENT ON COLUMN operation.sync_status IS 'UNCHECKED, IN_SYNC, REDUCED, CLOSED_ELSEWHERE, SHORT, NOT_RECONCILED';
COMMENT ON COLUMN operation.original_quantity IS 'The quantity before reconcile first lowered it (NULL: never lowered)';
-- NOT VALID: no scan under this migration's lock (every existing row has the default).
ALTER TABLE operation ADD CONSTRAINT operation_sync_status_check
    CHECK (sync_status IN ('UNCHECKED', 'IN_SYNC', 'REDUCED', 'CLOSED_ELSEWHERE', 'SHORT', 'NOT_RECONCILED')) NOT VALID;

-- Which exchange account a tenant's positions are held in (several desks may share one).
ALTER TABLE tenant_config ADD COLUMN exchange_account text;

CREATE TABLE exchange_account (
    account            text PRIMARY KEY,
    uid                bigint,          -- the exchange's; a Secret pointing at another account is refused
    account_type       text,
    last_reconciled_at timestamptz,
    last_success_at    timestamptz,
    last_error         text
);

-- The account's trades reconcile has read (myTrades), and which operation one explained.
CREATE TABLE account_trade (
    account                 text NOT NULL,
    symbol                  text NOT NULL,
    trade_id                bigint NOT NULL,
    order_id                bigint NOT NULL,
    is_buyer                boolean NOT NULL,
    price                   numeric(20,8) NOT NULL,
    qty                     numeric(20,8) NOT NULL,
    quote_qty               numeric(20,8) NOT NULL,
    commission              numeric(20,8) NOT NULL,
    commission_asset        text NOT NULL,
    traded_at               timestamptz NOT NULL,
    ours                    boolean NOT NULL,   -- the order was one of Backstop's exits
    attributed_operation_id bigint,             -- the operation it explained (used once)
    PRIMARY KEY (account, symbol, trade_id)
);
CREATE TABLE account_trade_cursor (
    account       text NOT NULL,
    symbol        text NOT NULL,
    last_trade_id bigint NOT NULL,
    PRIMARY KEY (account, symbol)
);
-- The balances of the last pass: an asset that did not move needs no myTrades.
CREATE TABLE account_balance_seen (
    account text NOT NULL,
    asset   text NOT NULL,
    free    numeric(20,8) NOT NULL,
    locked  numeric(20,8) NOT NULL,
    seen_at timestamptz NOT NULL,
    PRIMARY KEY (account, asset)
);
-- A shortfall seen once, decided when seen again (core::PendingDrift).
CREATE TABLE sync_pending (
    operation_id  bigint PRIMARY KEY REFERENCES operation (id) ON DELETE CASCADE,
    outcome       text NOT NULL CHECK (outcome IN ('SHORT', 'CLOSED_ELSEWHERE')),
    held          numeric(20,8) NOT NULL,
    first_seen_at timestamptz NOT NULL,
    seen          integer NOT NULL CHECK (seen >= 1),
    evidence      jsonb
);
-- Open orders with Backstop's client id prefix that no live exit owns.
CREATE TABLE orphan_order (
    account         text NOT NULL,
    symbol          text NOT NULL,
    order_id        bigint NOT NULL,
    client_order_id text NOT NULL,
    first_seen_at   timestamptz NOT NULL,
    cancelled_at    timestamptz,
    last_error      text,
    PRIMARY KEY (account, symbol, order_id)
);

-- The events reconcile appends, and its source. Widened NOT VALID (every
-- existing row satisfies the wider check); 0011 validates them without
-- blocking writes.
ALTER TABLE stop_events DROP CONSTRAINT stop_events_type_check;
ALTER TABLE stop_events ADD CONSTRAINT stop_events_type_check CHECK (event_type IN ('STOP_TRIGGERED',
    'EXECUTION_SUBMITTED', 'EXECUTED', 'FAILED', 'BLOCKED', 'STOP_ADJUSTED', 'STOP_CONFIGURED',
    'POSITION_RECONCILED', 'POSITION_CLOSED_EXTERNALLY', 'POSITION_OUT_OF_SYNC', 'POSITION_IN_SYNC')) NOT VALID;
ALTER TABLE stop_events DROP CONSTRAINT stop_events_source_check;
ALTER TABLE stop_events ADD CONSTRAINT stop_events_source_check
    CHECK (source IN ('cron', 'stream', 'manual', 'backfill', 'trailing', 'reconcile')) NOT VALID;

-- R1: reconcile never writes an operation whose exit is in flight (it may be
-- selling right now), and only lowers a quantity (R4). The decision already
-- says so (core::reconcile_account); the database refuses what any writer
-- would append otherwise.
CREATE FUNCTION stop_events_reconcile_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    current_quantity numeric;
BEGIN
    IF EXISTS (SELECT 1 FROM stop_executions WHERE operation_id = NEW.operation_id
               AND status IN ('TRIGGERED', 'BLOCKED', 'SUBMITTED')) THEN
        RAISE EXCEPTION 'operation % has an exit in flight: reconcile cannot write it (%)',
            NEW.operation_id, NEW.event_type
            USING ERRCODE = 'check_violation',
                  HINT = 'Reconcile again once the exit has ended.';
    END IF;
    IF NEW.event_type = 'POSITION_RECONCILED' THEN
        SELECT quantity INTO current_quantity FROM operation WHERE id = NEW.operation_id;
        IF NEW.quantity IS NULL OR NEW.quantity < 0 OR NEW.quantity >= current_quantity THEN
            RAISE EXCEPTION 'operation %: POSITION_RECONCILED to % from %: reconcile only lowers a quantity',
                NEW.operation_id, NEW.quantity, current_quantity
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER stop_events_reconcile_guard BEFORE INSERT ON stop_events
    FOR EACH ROW WHEN (NEW.event_type IN ('POSITION_RECONCILED', 'POSITION_CLOSED_EXTERNALLY',
                                          'POSITION_OUT_OF_SYNC', 'POSITION_IN_SYNC'))
    EXECUTE FUNCTION stop_events_reconcile_guard();
