-- A small demo book: three desks, positions with the deprecated percentage
-- stops of the legacy system, a few already absolute, and some bad rows.
INSERT INTO tenant (id, name) VALUES (1, 'alpha-desk'), (2, 'beta-desk'), (3, 'gamma-desk');

INSERT INTO tenant_config (tenant_id, max_slippage_pct, max_executions_per_minute)
VALUES (1, 5.0, 10), (2, 3.0, 20), (3, 5.0, 10);

INSERT INTO operation (tenant_id, symbol, side, status, average_entry_price, quantity,
                       stop_price, target_price, stop_loss_percent, stop_gain_percent) VALUES
  -- the seed's example: BUY at 95,000 with a 2 % stop -> 93,100
  (1, 'BTCUSDT', 'BUY',  'ACTIVE', 95000,      0.01000000, NULL, NULL, 2,    4),
  (1, 'ETHUSDT', 'SELL', 'ACTIVE', 3000,       0.50000000, NULL, NULL, 3.5,  7),
  (1, 'SOLUSDT', 'BUY',  'ACTIVE', 187.42,     12,         NULL, NULL, 1.25, NULL),
  (2, 'BTCUSDT', 'SELL', 'ACTIVE', 96250.5,    0.02500000, NULL, NULL, 1.5,  3),
  (2, 'ETHUSDT', 'BUY',  'ACTIVE', 3120.75,    1.2,        3050, 3300, NULL, NULL),
  (2, 'BNBUSDT', 'BUY',  'ACTIVE', 612.3,      4,          NULL, 650,  2,    NULL),
  (3, 'XRPUSDT', 'SELL', 'ACTIVE', 0.61234567, 5000,       NULL, NULL, 5,    10),
  (3, 'ADAUSDT', 'BUY',  'CLOSED', 0.45,       1000,       NULL, NULL, 2,    4),
  -- bad rows: reported with their id and reason, never written
  (3, 'DOGEUSDT', 'BUY', 'ACTIVE', 0.15,       10000,      0.16, NULL, NULL, NULL),  -- stop above entry
  (3, 'LTCUSDT', 'BUY',  'ACTIVE', NULL,       3,          NULL, NULL, 2,    NULL),  -- no entry price
  (2, 'DOTUSDT', 'SELL', 'ACTIVE', 7.1,        20,         NULL, NULL, NULL, NULL);  -- nothing configured

-- A long that trails with Hand-Span (DOMAIN §4): entry 80, stop 78, so one
-- span is 2; trailing-stop moves the stop to break-even at 82, to 84 at 86.
INSERT INTO operation (tenant_id, symbol, side, status, average_entry_price, quantity,
                       stop_price, target_price, trailing_mode) VALUES
  (1, 'LTCUSDT', 'BUY', 'ACTIVE', 80, 3, 78, 95, 'HAND_SPAN');
