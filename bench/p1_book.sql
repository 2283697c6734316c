-- P1 book: :n ACTIVE operations over 500 symbols (SYM0..SYM499, price 100 + s),
-- half long, half short; one in a thousand has its stop crossed at those prices.
INSERT INTO tenant (id) SELECT generate_series(1, 100) ON CONFLICT DO NOTHING;
INSERT INTO operation (tenant_id, symbol, side, average_entry_price, quantity, stop_price, target_price)
SELECT 1 + i % 100, 'SYM' || (i % 500),
       CASE WHEN i % 2 = 0 THEN 'BUY' ELSE 'SELL' END,
       100 + i % 500, 1,
       CASE WHEN i % 1000 = 0 THEN  -- crossed: a long's stop above the price, a short's below
              CASE WHEN i % 2 = 0 THEN (100 + i % 500) * 1.01 ELSE (100 + i % 500) * 0.99 END
            WHEN i % 2 = 0 THEN (100 + i % 500) * (0.80 + (i % 97) * 0.001)
            ELSE (100 + i % 500) * (1.20 - (i % 97) * 0.001) END,
       CASE WHEN i % 2 = 0 THEN (100 + i % 500) * (1.30 + (i % 89) * 0.001)
            ELSE (100 + i % 500) * (0.70 - (i % 89) * 0.001) END
FROM generate_series(1, :n) AS i;
VACUUM ANALYZE operation;
