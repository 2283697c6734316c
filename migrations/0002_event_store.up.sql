-- The append-only event store, its execution projection and the outbox (DOMAIN §3, §6).

CREATE TABLE stop_events (
    event_seq         bigserial PRIMARY KEY,
    event_id          uuid NOT NULL DEFAULT gen_random_uuid(),
    operation_id      bigint NOT NULL,
    tenant_id         bigint NOT NULL,
    symbol            text NOT NULL,
    event_type        text NOT NULL,
    source            text NOT NULL,
    -- Deterministic per protective exit (operation + kind + level), adjustment
    -- step or genesis: never a clock value, so two processes that see the same
    -- trigger produce the same token and the unique index below lets one win.
    execution_token   varchar(64) NOT NULL,
    trigger_kind      text,
    side              text,
    trigger_price     numeric(20,8),
    stop_price        numeric(20,8),
    target_price      numeric(20,8),
    quantity          numeric(20,8),
    fill_price        numeric(20,8),
    slippage_pct      numeric(20,8),
    exchange_order_id text,
    reason            text,
    error_message     text,  -- full text, never truncated
    payload           jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Commit-safe watermark for readers that resume from a checkpoint: read only
    -- transaction_id < pg_snapshot_xmin(pg_current_snapshot()).
    transaction_id    xid8 NOT NULL DEFAULT pg_current_xact_id(),
    CONSTRAINT stop_events_event_id_key UNIQUE (event_id),
    CONSTRAINT stop_events_type_check CHECK (event_type IN ('STOP_TRIGGERED', 'EXECUTION_SUBMITTED',
        'EXECUTED', 'FAILED', 'BLOCKED', 'STOP_ADJUSTED', 'STOP_CONFIGURED')),
    CONSTRAINT stop_events_source_check CHECK (source IN ('cron', 'stream', 'manual', 'backfill', 'trailing')),
    CONSTRAINT stop_events_trigger_kind_check CHECK (trigger_kind IN ('STOP_LOSS', 'TAKE_PROFIT')),
    CONSTRAINT stop_events_side_check CHECK (side IN ('BUY', 'SELL')),
    CONSTRAINT stop_events_token_check CHECK (execution_token <> ''),
    CONSTRAINT stop_events_payload_check CHECK (jsonb_typeof(payload) = 'object')
);

-- One claim per exit, one terminal success per exit, one event per adjustment
-- step, one genesis per operation. The loser of a race gets a unique violation.
CREATE UNIQUE INDEX idx_stop_events_token_once ON stop_events (execution_token, event_type)
    WHERE event_type IN ('STOP_TRIGGERED', 'EXECUTED', 'STOP_ADJUSTED', 'STOP_CONFIGURED');
CREATE INDEX idx_stop_events_op_seq ON stop_events (operation_id, event_seq);
CREATE INDEX idx_stop_events_tenant ON stop_events (tenant_id, occurred_at);
CREATE INDEX idx_stop_events_type ON stop_events (event_type, occurred_at);
CREATE INDEX idx_stop_events_source ON stop_events (source, occurred_at);
CREATE INDEX idx_stop_events_symbol ON stop_events (symbol, occurred_at);
CREATE INDEX idx_stop_events_xid ON stop_events (transaction_id, event_seq);

-- The audit trail is append-only, enforced by the database itself.
CREATE FUNCTION stop_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'stop_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Record a new event instead of changing or removing an old one.';
END $$;
CREATE TRIGGER stop_events_no_update_delete BEFORE UPDATE OR DELETE ON stop_events
    FOR EACH ROW EXECUTE FUNCTION stop_events_append_only();
CREATE TRIGGER stop_events_no_truncate BEFORE TRUNCATE ON stop_events
    FOR EACH STATEMENT EXECUTE FUNCTION stop_events_append_only();

-- Projection: one row per protective exit, rebuilt from stop_events alone.
CREATE TABLE stop_executions (
    execution_token   varchar(64) PRIMARY KEY,
    operation_id      bigint NOT NULL,
    tenant_id         bigint NOT NULL,
    symbol            text NOT NULL,
    trigger_kind      text,
    side              text,
    status            text NOT NULL,
    source            text NOT NULL,
    trigger_price     numeric(20,8),
    quantity          numeric(20,8),
    fill_price        numeric(20,8),
    slippage_pct      numeric(20,8),
    exchange_order_id text,
    error_message     text,
    blocked_reason    text,
    triggered_at      timestamptz,
    blocked_at        timestamptz,
    submitted_at      timestamptz,
    executed_at       timestamptz,
    failed_at         timestamptz,
    retry_count       integer NOT NULL DEFAULT 0,
    last_event_seq    bigint NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stop_executions_status_check
        CHECK (status IN ('TRIGGERED', 'BLOCKED', 'SUBMITTED', 'EXECUTED', 'FAILED'))
);
CREATE INDEX idx_stop_exec_op_status ON stop_executions (operation_id, status);
CREATE INDEX idx_stop_exec_status_triggered ON stop_executions (status, triggered_at);
CREATE INDEX idx_stop_exec_tenant ON stop_executions (tenant_id, triggered_at);

-- Transactional outbox: written in the same transaction as its event.
CREATE TABLE outbox (
    outbox_id       bigserial PRIMARY KEY,
    event_id        uuid NOT NULL REFERENCES stop_events (event_id),
    event_seq       bigint NOT NULL,
    operation_id    bigint NOT NULL,
    exchange        text NOT NULL DEFAULT 'stop_events',
    routing_key     text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    published       boolean NOT NULL DEFAULT false,
    published_at    timestamptz,
    retry_count     integer NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz,
    parked_at       timestamptz,  -- past the retry limit: kept, alerted on, never deleted
    transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
    CONSTRAINT outbox_event_id_key UNIQUE (event_id)
);
CREATE INDEX idx_outbox_unpublished ON outbox (created_at) WHERE published = false;
CREATE INDEX idx_outbox_pending ON outbox (operation_id, outbox_id)
    WHERE published = false AND parked_at IS NULL;
