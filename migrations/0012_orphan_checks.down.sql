-- backstop:destroys-data-in exchange_account, orphan_order
ALTER TABLE orphan_order DROP COLUMN last_seen_at;
ALTER TABLE orphan_order DROP COLUMN orig_qty;
ALTER TABLE orphan_order DROP COLUMN type;
ALTER TABLE orphan_order DROP COLUMN side;
ALTER TABLE exchange_account DROP COLUMN orphans_checked_at;
