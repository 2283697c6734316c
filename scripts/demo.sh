#!/usr/bin/env bash
# The main job on an embedded default: a private PostgreSQL on 127.0.0.1 and the
# exchange simulator with an account holding what the book bought. Migrations,
# a demo book with legacy percentage stops, backfill (dry run, real run, re-run),
# reconcile, then a price path that hits stops and targets while trailing-stop
# and stop-monitor run a pass per step (one position's stop trails up and is
# then hit; a manual sale is reconciled before its stop sells what is left);
# finally the event log,
# the executions, the simulator's ledger, a replay check and verify.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/lib.sh"

ensure_packages
build_tree build
BIN="$ROOT/build/bin"
SIM_PID=
cleanup() {
  [[ -n "$SIM_PID" ]] && kill "$SIM_PID" 2>/dev/null || true
  pg_stop
}
trap cleanup EXIT
pg_start 55432
createdb backstop_demo
export BACKSTOP_DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/backstop_demo"
export BACKSTOP_LOG_FORMAT=text BACKSTOP_LOG_LEVEL=warn
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
"$BIN/backfill" --batch-size 4 | tail -1 || true

log "operations after backfill"
"${PSQL[@]}" -c "SELECT id, tenant_id AS tenant, symbol, side, status, average_entry_price AS entry,
  stop_loss_percent AS stop_pct, stop_price, stop_gain_percent AS gain_pct, target_price
  FROM operation ORDER BY id"

log "starting the exchange simulator (paper mode)"
port_file=$(mktemp /tmp/backstop-sim.XXXXXX)
rm -f "$port_file"
"$BIN/exchange-sim" --port-file "$port_file" --api-key demo-key --api-secret demo-secret 2>/dev/null &
SIM_PID=$!
for _ in $(seq 100); do [[ -s "$port_file" ]] && break; sleep 0.05; done
SIM="http://127.0.0.1:$(cat "$port_file")"
export BACKSTOP_EXCHANGE_URL=$SIM BACKSTOP_EXCHANGE_API_KEY=demo-key BACKSTOP_EXCHANGE_API_SECRET=demo-secret
curl -fsS -H 'Content-Type: application/json' -X POST "$SIM/admin/symbols" -d '[
  {"symbol":"BTCUSDT","base":"BTC","quote":"USDT","price":"95000","stepSize":"0.00001","minQty":"0.00001","minNotional":"5","tickSize":"0.01"},
  {"symbol":"ETHUSDT","base":"ETH","quote":"USDT","price":"3000","stepSize":"0.0001","minQty":"0.0001","minNotional":"5","tickSize":"0.01"},
  {"symbol":"SOLUSDT","base":"SOL","quote":"USDT","price":"187.42","stepSize":"0.001","minQty":"0.001","minNotional":"5","tickSize":"0.01"},
  {"symbol":"BNBUSDT","base":"BNB","quote":"USDT","price":"612.3","stepSize":"0.001","minQty":"0.001","minNotional":"5","tickSize":"0.1"},
  {"symbol":"XRPUSDT","base":"XRP","quote":"USDT","price":"0.61","stepSize":"1","minQty":"1","minNotional":"5","tickSize":"0.0001"},
  {"symbol":"DOGEUSDT","base":"DOGE","quote":"USDT","price":"0.15","stepSize":"1","minQty":"1","minNotional":"5","tickSize":"0.00001"},
  {"symbol":"LTCUSDT","base":"LTC","quote":"USDT","price":"80","stepSize":"0.001","minQty":"0.001","minNotional":"5","tickSize":"0.01"},
  {"symbol":"DOTUSDT","base":"DOT","quote":"USDT","price":"7.1","stepSize":"0.01","minQty":"0.01","minNotional":"5","tickSize":"0.001"}]' >/dev/null
curl -fsS -H 'Content-Type: application/json' -X POST "$SIM/admin/faults" -d '{"slippagePct":"0.02"}' >/dev/null
# The account holds what the book's longs bought (and quote for the shorts to buy back).
curl -fsS -H 'Content-Type: application/json' -X POST "$SIM/admin/accounts" -d '{"apiKey":"demo-key",
  "secret":"demo-secret","uid":4242,"balances":{"USDT":"1000000","BTC":"0.01","SOL":"12","ETH":"1.2","BNB":"4",
  "LTC":"6","DOGE":"10000"}}' >/dev/null
log "reconcile: the account holds what the operations say (all IN_SYNC)"
"$BIN/reconcile" --entry-margin-ms 0 | tail -1 || echo "reconcile exit code: $?"
"${PSQL[@]}" -c "UPDATE tenant_config SET trading_enabled = false WHERE tenant_id = 3"

while IFS='|' read -r step prices note; do
  [[ "$step" =~ ^# || -z "$step" ]] && continue
  if [[ "$step" == 5 ]]; then "${PSQL[@]}" -c "UPDATE tenant_config SET trading_enabled = true WHERE tenant_id = 3"; fi
  if [[ "$step" == 9 ]]; then
    log "the trader sells 5 of op 3's 12 SOL by hand in the exchange's app; reconcile follows the account"
    curl -fsS -H 'Content-Type: application/json' -X POST "$SIM/admin/orders" \
      -d '{"apiKey":"demo-key","symbol":"SOLUSDT","side":"SELL","type":"MARKET","quantity":"5"}' >/dev/null
    "$BIN/reconcile" --entry-margin-ms 0 || echo "reconcile exit code: $?"
  fi
  log "price step $step: $note"
  curl -fsS -H 'Content-Type: application/json' -X POST "$SIM/admin/prices" -d "$prices" >/dev/null
  "$BIN/trailing-stop" | tail -1 || echo "trailing-stop exit code: $?"
  "$BIN/stop-monitor" || echo "stop-monitor exit code: $?"
done <"$ROOT/demo/price_path.txt"

log "the trailed position (op 12): its stop moves, then the exit"
"${PSQL[@]}" -c "SELECT event_seq AS seq, event_type, execution_token AS token, trigger_price AS price,
  stop_price AS new_stop, reason, payload->>'step' AS step, fill_price FROM stop_events
  WHERE operation_id = 12 ORDER BY event_seq"
log "op 3: reduced by the sale made elsewhere, then its stop sells only the 7 SOL held"
"${PSQL[@]}" -c "SELECT event_seq AS seq, event_type, reason, quantity, payload->>'reduced_by' AS reduced_by,
  payload->>'trade_ids' AS trade_ids FROM stop_events WHERE operation_id = 3 ORDER BY event_seq"
"${PSQL[@]}" -c "SELECT id, status, quantity, original_quantity, sync_status FROM operation WHERE id = 3"
log "event log (stop_events)"
"${PSQL[@]}" -c "SELECT event_seq AS seq, event_type, operation_id AS op, tenant_id AS tenant, symbol, source,
  execution_token AS token, coalesce(trigger_price, stop_price) AS price, fill_price, slippage_pct AS slip,
  exchange_order_id AS order_id, reason FROM stop_events ORDER BY event_seq"
log "executions (stop_executions projection)"
"${PSQL[@]}" -c "SELECT operation_id AS op, trigger_kind, side, status, trigger_price, fill_price, slippage_pct,
  blocked_reason, round(extract(epoch FROM executed_at - triggered_at) * 1000) AS trigger_to_fill_ms
  FROM stop_executions ORDER BY operation_id"
log "orders the simulated exchange accepted (its ledger)"
curl -fsS "$SIM/admin/ledger"; echo
log "outbox backlog (what outbox-drain would publish to RabbitMQ; the demo runs no broker)"
"${PSQL[@]}" -c "SELECT count(*) AS rows, min(created_at) AS oldest FROM outbox WHERE NOT published"
log "projection replay check and schema verify"
"$BIN/migrate" replay
"$BIN/migrate" verify
