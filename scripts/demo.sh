#!/usr/bin/env bash
# The main job on an embedded default: a private PostgreSQL on 127.0.0.1, the
# migrations, a demo book with percentage stops, then backfill (dry run, real
# run, re-run) and what it produced: the operations, the event log, the outbox,
# a projection replay check and a schema verify.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/lib.sh"

ensure_packages
build_tree build
BIN="$ROOT/build/bin"
trap pg_stop EXIT
pg_start 55432
createdb backstop_demo
export BACKSTOP_DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/backstop_demo"
export BACKSTOP_LOG_FORMAT=text
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -d backstop_demo)

log "migrate plan / up / status"
"$BIN/migrate" plan
"$BIN/migrate" up
"$BIN/migrate" status

log "loading the demo book (demo/book.sql)"
"${PSQL[@]}" -f "$ROOT/demo/book.sql"

log "backfill --dry-run (writes nothing)"
"$BIN/backfill" --dry-run --batch-size 4 || true
log "backfill (exit 1: some rows are invalid and were reported, not written)"
"$BIN/backfill" --batch-size 4 || echo "backfill exit code: $?"
log "backfill again (resumable: nothing left to do but the bad rows)"
"$BIN/backfill" --batch-size 4 --json | sed -n '1,12p' || true

log "operations after backfill"
"${PSQL[@]}" -c "SELECT id, tenant_id AS tenant, symbol, side, status, average_entry_price AS entry,
  stop_loss_percent AS stop_pct, stop_price, stop_gain_percent AS gain_pct, target_price
  FROM operation ORDER BY id"
log "event log (stop_events)"
"${PSQL[@]}" -c "SELECT event_seq AS seq, event_type, operation_id AS op, tenant_id AS tenant, symbol, source,
  execution_token AS token, stop_price, target_price FROM stop_events ORDER BY event_seq"
log "outbox (to be published to RabbitMQ by outbox-drain)"
"${PSQL[@]}" -c "SELECT outbox_id, routing_key, published, payload->>'stop_price' AS stop FROM outbox ORDER BY outbox_id"
log "projection replay check and schema verify"
"$BIN/migrate" replay
"$BIN/migrate" verify
