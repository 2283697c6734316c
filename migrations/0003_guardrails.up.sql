-- Risk guardrails (DOMAIN §5): per-tenant limits and kill switch, per-symbol circuit breakers.

CREATE TABLE tenant_config (
    tenant_id                    bigint PRIMARY KEY,
    trading_enabled              boolean NOT NULL DEFAULT true,   -- the kill switch
    max_slippage_pct             numeric(20,8) NOT NULL DEFAULT 5.0,
    slippage_pause_threshold_pct numeric(20,8) NOT NULL DEFAULT 10.0,
    max_executions_per_minute    integer NOT NULL DEFAULT 10,
    max_executions_per_hour      integer NOT NULL DEFAULT 100,
    paused_reason                text,
    paused_at                    timestamptz,
    updated_at                   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_config_slippage_check
        CHECK (max_slippage_pct > 0 AND slippage_pause_threshold_pct >= max_slippage_pct),
    CONSTRAINT tenant_config_rate_check
        CHECK (max_executions_per_minute > 0 AND max_executions_per_hour >= max_executions_per_minute)
);

CREATE TABLE circuit_breaker_state (
    symbol              text PRIMARY KEY,
    state               text NOT NULL DEFAULT 'CLOSED',
    failure_count       integer NOT NULL DEFAULT 0,
    failure_threshold   integer NOT NULL DEFAULT 3,
    retry_delay_seconds integer NOT NULL DEFAULT 300,
    opened_at           timestamptz,
    last_failure_at     timestamptz,
    last_error          text,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT circuit_breaker_state_state_check CHECK (state IN ('CLOSED', 'OPEN', 'HALF_OPEN')),
    CONSTRAINT circuit_breaker_state_threshold_check
        CHECK (failure_threshold > 0 AND retry_delay_seconds >= 0 AND failure_count >= 0)
);
CREATE INDEX idx_circuit_breaker_not_closed ON circuit_breaker_state (state, opened_at)
    WHERE state <> 'CLOSED';
