-- Orphan orders (issue 13, docs/design/account-truth.md §2.2 step 6): when an
-- account's open orders were last read (GET /api/v3/openOrders costs 80
-- weight, so a pass reads them every --orphan-check-interval, not every time),
-- and what a cancel of an orphan answered.
ALTER TABLE exchange_account ADD COLUMN orphans_checked_at timestamptz;
ALTER TABLE orphan_order ADD COLUMN side text;
ALTER TABLE orphan_order ADD COLUMN type text;
ALTER TABLE orphan_order ADD COLUMN orig_qty numeric(20,8);
ALTER TABLE orphan_order ADD COLUMN last_seen_at timestamptz;
