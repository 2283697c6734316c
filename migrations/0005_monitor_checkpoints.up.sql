-- What a stop-monitor pass checked, per symbol, written once per pass instead
-- of once per active operation: an operation was last checked at the later of
-- its own last_stop_check_at (set when it triggered) and its symbol's checkpoint.
CREATE TABLE monitor_checkpoint (
    symbol          text PRIMARY KEY,
    last_checked_at timestamptz NOT NULL,
    last_price      numeric(20,8),
    passes          bigint NOT NULL DEFAULT 0
);

CREATE VIEW operation_check_status AS
SELECT o.id AS operation_id,
       greatest(o.last_stop_check_at, c.last_checked_at) AS last_checked_at,
       o.stop_check_count + coalesce(c.passes, 0) AS checks_upper_bound,
       c.last_price
FROM operation o
LEFT JOIN monitor_checkpoint c ON c.symbol = o.symbol;
