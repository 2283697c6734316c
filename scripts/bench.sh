#!/usr/bin/env bash
# Benchmarks, each printed beside a baseline measured in the same run:
#   1. cold start of a binary with nothing to do vs `psql -c 'select 1'`
#   2. backfill throughput on N operations (default 1,000,000) vs one
#      `UPDATE ... FROM` doing the same arithmetic in SQL
#   3. Decimal money operations vs double (Google Benchmark)
#   4. P1: one stop-monitor pass (dry run) over 100,000 and 1,000,000 active
#      operations on 500 symbols with 0.1 % triggering; the 1M/100k ratio
#   5. P2: exits recorded per second against the simulator vs pgbench's
#      simple-update TPS with the same number of clients (4 processes sharded
#      by tenant, then the same 4 racing for every exit)
#   6. P4: stop-monitor --stream, price tick received -> STOP_TRIGGERED
#      committed, p50/p99 over 1,000 ticks that each cross one stop
#   7. trailing-stop: one pass over 1,000,000 active Hand-Span operations
#      (P1's book) by how many actually move: 0, ~1,000, ~10,000, ~100,000;
#      beside it, the first pass that computes every wake price
#   8. P3: outbox-drain messages/s into a local RabbitMQ with confirms vs a
#      plain rabbitmq-c loop publishing the same payloads with confirms
#   9. P6: controller cold start over 1,000 StopMonitors (until every one is
#      Ready) and its RSS, vs one thread making the same API writes with no
#      reads, watches or decisions (the API test server as the API)
#  10. reconcile: one `reconcile --account` process per account over 100
#      accounts x 100 ACTIVE longs (5 symbols), first pass, quiet pass and
#      after drift on 10 accounts: time per account, calls and weight per
#      account; beside it, the same signed REST calls from a bare client
# Usage: ./dev bench [--operations N] [--only 1,2,3,4,5,6,7,8,9,10] [--monitors N]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/lib.sh"
operations=1000000
monitors=1000
only=1,2,3,4,5,6,7,8,9,10
while (($#)); do
  case "$1" in
    --operations) operations=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --monitors) monitors=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

ensure_packages
BUILD_TYPE=Release build_tree build-release -DBACKSTOP_TESTS=OFF
BIN="$ROOT/build-release/bin"
pg_start 58432
PSQL=(psql -X -q -v ON_ERROR_STOP=1)

want() { [[ ",$only," == *",$1,"* ]]; }
SIM_PID=
KUBE_PID=
CONTROLLER_PID=
cleanup() {
  [[ -n "$SIM_PID" ]] && kill "$SIM_PID" 2>/dev/null || true
  [[ -n "$CONTROLLER_PID" ]] && kill "$CONTROLLER_PID" 2>/dev/null || true
  [[ -n "$KUBE_PID" ]] && kill "$KUBE_PID" 2>/dev/null || true
  rabbit_stop
  pg_stop
}
trap cleanup EXIT

if want 1; then
echo
echo "## 1. Cold start (binary with nothing to do) vs psql baseline"
createdb bench_idle
"$BIN/migrate" --database-url "dbname=bench_idle" up >/dev/null 2>&1
"$BIN/cmdbench" --runs 50 --label "psql -c 'select 1' (baseline)" -- psql -X -d bench_idle -c 'select 1'
"$BIN/cmdbench" --runs 50 --label "backfill (nothing to do)" -- "$BIN/backfill" --database-url dbname=bench_idle --log-level warn
"$BIN/cmdbench" --runs 50 --label "migrate up (nothing to do)" -- "$BIN/migrate" --database-url dbname=bench_idle --log-level warn up
echo "goal: < 50 ms and < 30 MB RSS"
fi

if want 2; then
echo
echo "## 2. Backfill throughput on $operations operations vs a single UPDATE ... FROM"
createdb bench_src
"$BIN/migrate" --database-url dbname=bench_src up >/dev/null 2>&1
"${PSQL[@]}" -d bench_src -c "
  INSERT INTO tenant (id) SELECT generate_series(1, 100);
  INSERT INTO operation (tenant_id, symbol, side, average_entry_price, quantity, stop_loss_percent, stop_gain_percent)
  SELECT 1 + i % 100, 'SYM' || (i % 500), CASE WHEN i % 2 = 0 THEN 'BUY' ELSE 'SELL' END,
         round((100 + (i % 10000) * 1.37)::numeric, 8), 1,
         round((0.5 + (i % 40) * 0.125)::numeric, 8), round((1 + (i % 30) * 0.25)::numeric, 8)
  FROM generate_series(1, $operations) AS i;" -c "VACUUM ANALYZE operation"
"${PSQL[@]}" -d postgres -c "CREATE DATABASE bench_backfill TEMPLATE bench_src" -c "CREATE DATABASE bench_sql TEMPLATE bench_src"
start=$(date +%s.%N)
"$BIN/backfill" --database-url dbname=bench_backfill --batch-size 5000 --log-level warn >/tmp/backstop-bench-backfill.txt
end=$(date +%s.%N)
backfill_s=$(echo "$end - $start" | bc -l)
start=$(date +%s.%N)
"${PSQL[@]}" -d bench_sql -c "
  UPDATE operation o SET
    stop_price = CASE o.side WHEN 'BUY' THEN v.entry * (1 - v.sl / 100) ELSE v.entry * (1 + v.sl / 100) END,
    target_price = CASE o.side WHEN 'BUY' THEN v.entry * (1 + v.sg / 100) ELSE v.entry * (1 - v.sg / 100) END
  FROM (SELECT id, average_entry_price AS entry, stop_loss_percent AS sl, stop_gain_percent AS sg
        FROM operation WHERE status = 'ACTIVE') v
  WHERE o.id = v.id"
end=$(date +%s.%N)
sql_s=$(echo "$end - $start" | bc -l)
same=$(psql -X -At -d bench_backfill -c "SELECT md5(string_agg(id || ':' || stop_price || ':' || target_price, ',' ORDER BY id)) FROM operation")
base=$(psql -X -At -d bench_sql -c "SELECT md5(string_agg(id || ':' || stop_price || ':' || target_price, ',' ORDER BY id)) FROM operation")
events=$(psql -X -At -d bench_backfill -c "SELECT count(*) FROM stop_events")
printf "%-46s %8.2f s  %10.0f rows/s\n" "UPDATE ... FROM, levels only (baseline)" "$sql_s" "$(echo "$operations / $sql_s" | bc -l)"
printf "%-46s %8.2f s  %10.0f rows/s  (ratio %.2f)\n" "backfill: levels + genesis events + outbox" "$backfill_s" \
  "$(echo "$operations / $backfill_s" | bc -l)" "$(echo "$sql_s / $backfill_s" | bc -l)"
echo "genesis events written: $events; levels identical to the SQL baseline: $([[ "$same" == "$base" ]] && echo yes || echo NO)"
tail -1 /tmp/backstop-bench-backfill.txt
fi

if want 3; then
echo
echo "## 3. Decimal vs double (ns per operation)"
"$BIN/decimal_bench" --benchmark_min_time=0.2 2>/dev/null | grep -E "^BM_"
fi

if want 4 || want 5 || want 6 || want 7; then
  port_file=$(mktemp /tmp/backstop-bench-sim.XXXXXX); rm -f "$port_file"
  "$BIN/exchange-sim" --port-file "$port_file" --ws-port-file "$port_file.ws" --api-key bench --api-secret bench-secret 2>/dev/null &
  SIM_PID=$!
  for _ in $(seq 100); do [[ -s "$port_file" ]] && break; sleep 0.05; done
  SIM="http://127.0.0.1:$(cat "$port_file")"
  export BACKSTOP_STREAM_URL="ws://127.0.0.1:$(cat "$port_file.ws")"
  symbols=$(for s in $(seq 0 499); do printf '{"symbol":"SYM%d","price":"%d","stepSize":"0.001","minQty":"0.001","tickSize":"0.0001"},' "$s" $((100 + s)); done)
  curl -fsS -H 'Content-Type: application/json' -X POST "$SIM/admin/symbols" -d "[${symbols%,}]" >/dev/null
  export BACKSTOP_EXCHANGE_URL=$SIM BACKSTOP_EXCHANGE_API_KEY=bench BACKSTOP_EXCHANGE_API_SECRET=bench-secret
fi

# median of the passes' own "seconds" (snapshot + scan + decisions), in ms
pass_ms() {
  local db=$1 runs=$2
  for _ in $(seq "$runs"); do
    "$BIN/stop-monitor" --database-url "dbname=$db" --dry-run --json --log-level warn | head -1 |
      sed -E 's/.*"seconds":([0-9.e-]+).*/\1/'
  done | sort -g | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)] * 1000}'
}

if want 4; then
echo
echo "## 4. P1: one stop-monitor pass (dry run), 500 symbols, 0.1 % of operations crossed"
declare -A p1
for n in 100000 1000000; do
  createdb "p1_$n"
  "$BIN/migrate" --database-url "dbname=p1_$n" up >/dev/null 2>&1
  "${PSQL[@]}" -d "p1_$n" -v n="$n" -f "$ROOT/bench/p1_book.sql" >/dev/null
  triggered=$("$BIN/stop-monitor" --database-url "dbname=p1_$n" --dry-run --json --log-level warn | head -1 |
    sed -E 's/.*"triggered":([0-9]+).*/\1/')
  pass_ms "p1_$n" 3 >/dev/null  # warm the cache
  p1[$n]=$(pass_ms "p1_$n" 15)
  printf "%-46s %8s ms  (%s triggered)\n" "pass over $n active operations" "${p1[$n]}" "$triggered"
done
printf "%-46s %8.2f  (goal < 2; goal < 50 ms at 1M)\n" "ratio 1M / 100k" "$(echo "${p1[1000000]} / ${p1[100000]}" | bc -l)"
fi

if want 5; then
echo
echo "## 5. P2: exits recorded per second (simulator, zero latency) vs pgbench simple-update, 4 clients"
exits=10000
p2_book() {  # a fresh database with $exits crossed stops over 100 tenants and 500 symbols
  dropdb --if-exists "$1" >/dev/null 2>&1; createdb "$1"
  "$BIN/migrate" --database-url "dbname=$1" up >/dev/null 2>&1
  "${PSQL[@]}" -d "$1" -c "INSERT INTO tenant_config (tenant_id, max_executions_per_minute, max_executions_per_hour)
    SELECT t, 1000000, 1000000 FROM generate_series(1, 100) t" \
    -c "INSERT INTO operation (tenant_id, symbol, side, average_entry_price, quantity, stop_price)
    SELECT 1 + i % 100, 'SYM' || (i % 500), 'BUY', 200 + i % 500, 1, (100 + i % 500) * 1.01 FROM generate_series(1, $exits) i"
}
# $1 database, $2 "sharded" (each process owns a quarter of the tenants, the way
# StopMonitors scale) or "racing" (all four see every exit and race for it)
p2_run() {
  local start end pids=() c
  start=$(date +%s.%N)
  for c in 0 1 2 3; do
    if [[ $2 == sharded ]]; then
      "$BIN/stop-monitor" --database-url "dbname=$1" --log-level warn --tenant "$(seq -s, $((c + 1)) 4 100)" >/dev/null &
    else
      "$BIN/stop-monitor" --database-url "dbname=$1" --log-level warn >/dev/null &
    fi
    pids+=($!)
  done
  wait "${pids[@]}"
  end=$(date +%s.%N)
  local executed
  executed=$(psql -X -At -d "$1" -c "SELECT count(*) FROM stop_executions WHERE status = 'EXECUTED'")
  echo "$executed $(echo "$executed / ($end - $start)" | bc -l)"
}
ledger_orders() { curl -fsS "$SIM/admin/ledger" | { grep -o '"orderId"' || true; } | wc -l; }
createdb p2_pgbench
pgbench -i -q -s 10 p2_pgbench >/dev/null 2>&1
tps=$(pgbench -N -c 4 -j 2 -T 10 p2_pgbench 2>/dev/null | sed -nE 's/^tps = ([0-9.]+).*/\1/p' | tail -1)
printf "%-46s %10.0f TPS\n" "pgbench -N, 4 clients (baseline)" "$tps"
orders_before=$(ledger_orders)
p2_book p2; read -r executed rate < <(p2_run p2 sharded)
orders=$(( $(ledger_orders) - orders_before ))
printf "%-46s %10.0f exits/s  (%s exits, %s orders; ratio %.2f, goal >= 0.5)\n" \
  "stop-monitor, 4 processes, tenant shards" "$rate" "$executed" "$orders" "$(echo "$rate / $tps" | bc -l)"
orders_before=$(ledger_orders)
p2_book p2_race; read -r executed rate < <(p2_run p2_race racing)
orders=$(( $(ledger_orders) - orders_before ))
printf "%-46s %10.0f exits/s  (%s exits, %s orders; ratio %.2f)\n" \
  "stop-monitor, 4 processes racing for every exit" "$rate" "$executed" "$orders" "$(echo "$rate / $tps" | bc -l)"
fi

if want 6; then
echo
echo "## 6. P4: --stream, tick received -> STOP_TRIGGERED committed (1,000 ticks, one stop crossed per tick)"
createdb p4
"$BIN/migrate" --database-url dbname=p4 up >/dev/null 2>&1
"${PSQL[@]}" -d p4 -c "INSERT INTO tenant_config (tenant_id, max_executions_per_minute, max_executions_per_hour)
  VALUES (1, 1000000, 1000000)" \
  -c "INSERT INTO operation (tenant_id, symbol, side, average_entry_price, quantity, stop_price)
  SELECT 1, 'SYM7', 'BUY', 200, 1, 106 - i * 0.001 FROM generate_series(0, 999) i"
curl -fsS -H 'Content-Type: application/json' -X POST "$SIM/admin/prices" -d '{"SYM7":"107"}' >/dev/null
"$BIN/stop-monitor" --database-url dbname=p4 --stream --json --interval 60 --log-level warn >/tmp/backstop-p4.json &
stream_pid=$!
sleep 1
# The simulator replays the path itself (one tick every 5 ms), so that nothing
# of the harness competes with the monitor for the CPU while it is measured.
steps=$(for i in $(seq 0 999); do m=$((106000 - i)); printf '{"SYM7":"%d.%03d"},' $((m / 1000)) $((m % 1000)); done)
curl -fsS -H 'Content-Type: application/json' -X POST "$SIM/admin/price-path" \
  -d "{\"intervalMs\":5,\"steps\":[${steps%,}]}" >/dev/null
until curl -fsS "$SIM/admin/price-path" | grep -q '"remaining":0'; do sleep 0.2; done
sleep 1
kill -TERM "$stream_pid"; wait "$stream_pid" || true
latency=$(sed -nE 's/.*"claim_latency_us":\{"count":([0-9]+),"max":([0-9]+),"p50":([0-9]+),"p99":([0-9]+)\}.*/\1 \3 \4 \2/p' /tmp/backstop-p4.json)
read -r count p50 p99 max <<<"$latency"
# The floor, measured in the same run: one client's one-row INSERT, committed
# synchronously (pgbench, per-transaction latencies), its p50 and p99.
"${PSQL[@]}" -d p4 -c "CREATE TABLE p4_floor (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())"
echo "INSERT INTO p4_floor DEFAULT VALUES;" >/tmp/backstop-p4-floor.sql
rm -f /tmp/backstop-p4-floor.log*
(cd /tmp && pgbench -n -c 1 -j 1 -t 2000 -f /tmp/backstop-p4-floor.sql -l --log-prefix=backstop-p4-floor.log p4 >/dev/null 2>&1)
read -r floor_p50 floor_p99 <<<"$(cat /tmp/backstop-p4-floor.log* | awk '{print $3}' | sort -n |
  awk '{v[NR]=$1} END {print v[int(NR*0.5)], v[int(NR*0.99)]}')"
printf "%-46s p50 %.2f ms  p99 %.2f ms  (2,000 transactions; baseline)\n" \
  "one-row INSERT + COMMIT, one client (floor)" "$(echo "$floor_p50/1000" | bc -l)" "$(echo "$floor_p99/1000" | bc -l)"
printf "%-46s p50 %.2f ms  p99 %.2f ms  max %.2f ms  (%s ticks that triggered)\n" \
  "tick -> STOP_TRIGGERED committed" "$(echo "$p50/1000" | bc -l)" "$(echo "$p99/1000" | bc -l)" "$(echo "$max/1000" | bc -l)" "$count"
printf "%-46s %.2f  (goal <= 3)\n" "P4 = p99 tick -> claim / p99 floor" "$(echo "$p99 / $floor_p99" | bc -l)"
fi

if want 7; then
echo
echo "## 7. trailing-stop: one pass over 1,000,000 active operations (Hand-Span, 500 symbols) by how many move"
dropdb --if-exists trail >/dev/null 2>&1; createdb trail
"$BIN/migrate" --database-url dbname=trail up >/dev/null 2>&1
"${PSQL[@]}" -d trail -v n=1000000 -f "$ROOT/bench/p1_book.sql" >/dev/null
"${PSQL[@]}" -d trail -c "INSERT INTO tenant_config (tenant_id, trailing_mode) SELECT t, 'HAND_SPAN' FROM generate_series(1, 100) t" >/dev/null
# prices: every symbol at 100 + s, except the first $1 symbols: 25 % in their
# operations' favour (even symbols hold longs: up; odd ones shorts: down); the
# pass reports how many were due and moved
trail_prices() {
  local json="{"
  for s in $(seq 0 499); do
    local cents=$(( (100 + s) * 100 ))
    if ((s < $1)); then
      if ((s % 2 == 0)); then cents=$(( (100 + s) * 125 )); else cents=$(( (100 + s) * 75 )); fi
    fi
    json+="\"SYM$s\":\"$((cents / 100)).$(printf '%02d' $((cents % 100)))\","
  done
  curl -fsS -H 'Content-Type: application/json' -X POST "$SIM/admin/prices" -d "${json%,}}" >/dev/null
}
trail_pass() {  # prints "seconds adjusted due"
  "$BIN/trailing-stop" --database-url dbname=trail --json --log-level error | head -1 |
    sed -E 's/.*"adjusted":([0-9]+).*"due":([0-9]+).*"seconds":([0-9.e-]+).*/\3 \1 \2/'
}
trail_prices 0
read -r first_s first_adj first_due <<<"$(trail_pass)"
"${PSQL[@]}" -d trail -c "VACUUM ANALYZE operation" >/dev/null
printf "%-46s %8.2f s   (%s wake prices computed and written)\n" "first pass: every wake price" "$first_s" "$first_due"
for m in 0 1 5 50; do
  trail_prices "$m"
  read -r secs adj due <<<"$(trail_pass)"
  printf "%-46s %8.1f ms  (%s due, %s STOP_ADJUSTED)\n" "pass, $m symbols 25 % in favour" "$(echo "$secs * 1000" | bc -l)" "$due" "$adj"
  "${PSQL[@]}" -d trail -c "UPDATE operation SET stop_price = initial_stop_price WHERE initial_stop_price IS NOT NULL" >/dev/null
  trail_pass >/dev/null  # re-arm the rows set back, at base prices
done
trail_prices 0
p1_same=$(for _ in 1 2 3; do "$BIN/stop-monitor" --database-url dbname=trail --dry-run --json --log-level warn | head -1 |
  sed -E 's/.*"seconds":([0-9.e-]+).*/\1/'; done | sort -g | sed -n 2p)
printf "%-46s %8.1f ms  (the same table after those updates, not vacuumed; P1 reference)\n" "stop-monitor dry-run pass (P1)" "$(echo "$p1_same * 1000" | bc -l)"
fi

if want 8; then
echo
echo "## 8. P3: outbox-drain into a local RabbitMQ (persistent, confirms) vs a plain rabbitmq-c loop, same payloads"
p3_rows=200000
p3_batch=${P3_BATCH:-500}
rabbit_start 58672
dropdb --if-exists p3 >/dev/null 2>&1; createdb p3
"$BIN/migrate" --database-url dbname=p3 up >/dev/null 2>&1
"${PSQL[@]}" -d p3 -c "INSERT INTO operation (tenant_id, symbol, side, average_entry_price, quantity, stop_loss_percent, stop_gain_percent)
  SELECT 1 + i % 100, 'SYM' || (i % 500), 'BUY', 100 + i % 500, 1, 2, 4 FROM generate_series(1, $p3_rows) i" >/dev/null
"$BIN/backfill" --database-url dbname=p3 --log-level error >/dev/null  # one genesis event + outbox row each
"${PSQL[@]}" -d p3 -c "VACUUM ANALYZE outbox" >/dev/null
"${PSQL[@]}" -d p3 -At -F $'\t' -c "SELECT routing_key, payload::text FROM outbox ORDER BY outbox_id" >/tmp/backstop-p3.tsv
"$BIN/amqp_baseline" "$AMQP_URL" stop_events /tmp/backstop-p3.tsv "$p3_batch" --declare-queue audit
read -r base_n base_s <<<"$("$BIN/amqp_baseline" "$AMQP_URL" stop_events /tmp/backstop-p3.tsv "$p3_batch")"
"$BIN/amqp_baseline" "$AMQP_URL" stop_events /tmp/backstop-p3.tsv "$p3_batch" --declare-queue audit  # purge
drained=$("$BIN/outbox-drain" --database-url dbname=p3 --amqp-url "$AMQP_URL" --once --json --batch-size "$p3_batch" --log-level error)
ours_n=$(sed -E 's/.*"published":([0-9]+).*/\1/' <<<"$drained")
ours_s=$(sed -E 's/.*"seconds":([0-9.e-]+).*/\1/' <<<"$drained")
ours=$(echo "$ours_n / $ours_s" | bc -l); base=$(echo "$base_n / $base_s" | bc -l)
printf "%-46s %8.0f msg/s  (%s rows published and marked, %.2f s)\n" "outbox-drain --once, batches of $p3_batch" "$ours" "$ours_n" "$ours_s"
printf "%-46s %8.0f msg/s  (%s messages, %.2f s)\n" "plain rabbitmq-c loop, confirms per $p3_batch (baseline)" "$base" "$base_n" "$base_s"
printf "%-46s %8.2f  (goal >= 0.5 and >= 20,000 msg/s)\n" "ratio" "$(echo "$ours / $base" | bc -l)"
rabbit_stop
fi

if want 9; then
echo
echo "## 9. P6: controller cold start over $monitors StopMonitors vs the same API writes from one thread"
p6=$(mktemp -d)
"$BIN/kube-api-test-server" --port-file "$p6/port" 2>"$p6/server.log" &
KUBE_PID=$!
for _ in $(seq 100); do [[ -s "$p6/port" ]] && break; sleep 0.05; done
api="http://127.0.0.1:$(cat "$p6/port")"
cat >"$p6/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: b, cluster: {server: "$api"}}]
users: [{name: b, user: {}}]
contexts: [{name: b, context: {cluster: b, user: b, namespace: trading}}]
current-context: b
KC
kc=(kubectl --kubeconfig "$p6/kubeconfig")
export KUBECACHEDIR="$p6/cache"
"${kc[@]}" apply -f "$ROOT/crds/stopmonitors.backstop.dev.yaml" >/dev/null
printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n---\n' trading baseline >"$p6/ns.yaml"
"${kc[@]}" apply -f "$p6/ns.yaml" >/dev/null
"${kc[@]}" apply -f "$ROOT/crds/examples/secrets-desk-a.yaml" >/dev/null  # what every desk-N names
for ns in trading baseline; do
  for i in $(seq -w 1 "$monitors"); do
    sed -e "s/name: desk-a$/name: desk-$i/" -e "s/namespace: trading/namespace: $ns/" \
      "$ROOT/crds/examples/stopmonitor-desk-a.yaml"
    echo "---"
  done >"$p6/$ns.yaml"
  "${kc[@]}" create -f "$p6/$ns.yaml" >/dev/null
done
read -r base_n base_s <<<"$("$BIN/kube_write_baseline" "$api" baseline)"
start=$(date +%s.%N)
"$BIN/controller" --kubeconfig "$p6/kubeconfig" --namespace trading --lease-namespace trading \
  --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 127.0.0.1:0 --ports-file "$p6/ports" \
  --no-database-metrics --log-level warn 2>"$p6/controller.log" &
CONTROLLER_PID=$!
for _ in $(seq 100); do [[ -s "$p6/ports" ]] && break; sleep 0.02; done
metrics="http://127.0.0.1:$(sed -n 's/^metrics=//p' "$p6/ports")/metrics"
ready=0
for _ in $(seq 6000); do
  ready=$(curl -s "$metrics" | sed -n 's/^backstop_controller_stopmonitors_ready \([0-9.e+]*\)$/\1/p')
  [[ "${ready%.*}" == "$monitors" ]] && break
  sleep 0.05
done
end=$(date +%s.%N)
ours_s=$(echo "$end - $start" | bc -l)
sleep 2  # steady state
rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$CONTROLLER_PID/status")
hwm_kb=$(awk '/^VmHWM/ {print $2}' "/proc/$CONTROLLER_PID/status")
cronjobs=$("${kc[@]}" get cronjobs -n trading -o name | wc -l)
printf "%-46s %8.2f s  (%s StopMonitors, 4 CronJob creates + 1 status update each)\n" \
  "one thread, writes only (baseline)" "$base_s" "$base_n"
printf "%-46s %8.2f s  (ready: %s, CronJobs: %s; ratio %.2f)\n" "controller cold start to all Ready" "$ours_s" \
  "${ready%.*}" "$cronjobs" "$(echo "$base_s / $ours_s" | bc -l)"
printf "%-46s %8.1f MB RSS now, %.1f MB peak\n" "controller memory" "$(echo "$rss_kb / 1024" | bc -l)" \
  "$(echo "$hwm_kb / 1024" | bc -l)"
kill "$CONTROLLER_PID"; wait "$CONTROLLER_PID" 2>/dev/null || true; CONTROLLER_PID=
kill "$KUBE_PID"; wait "$KUBE_PID" 2>/dev/null || true; KUBE_PID=
rm -rf "$p6"
fi

if want 10; then
echo
echo "## 10. reconcile: 100 accounts x 100 ACTIVE longs (5 symbols), one process per account, vs the bare REST calls"
r10=$(mktemp -d)
createdb recon
"$BIN/migrate" --database-url dbname=recon --log-level warn up >/dev/null
"$BIN/exchange-sim" --port-file "$r10/port" 2>"$r10/sim.log" &
SIM_PID=$!
for _ in $(seq 100); do [[ -s "$r10/port" ]] && break; sleep 0.05; done
sim="http://127.0.0.1:$(cat "$r10/port")"
post() { curl -fsS -H 'Content-Type: application/json' -X POST "$sim$1" -d "$2" >/dev/null; }
post /admin/symbols '[{"symbol":"RA0USDT","base":"RA0","price":"100","stepSize":"0.001","minQty":"0.001"},
  {"symbol":"RA1USDT","base":"RA1","price":"100","stepSize":"0.001","minQty":"0.001"},
  {"symbol":"RA2USDT","base":"RA2","price":"100","stepSize":"0.001","minQty":"0.001"},
  {"symbol":"RA3USDT","base":"RA3","price":"100","stepSize":"0.001","minQty":"0.001"},
  {"symbol":"RA4USDT","base":"RA4","price":"100","stepSize":"0.001","minQty":"0.001"}]'
for a in $(seq 0 99); do
  post /admin/accounts "{\"apiKey\":\"k$a\",\"secret\":\"s$a\",\"uid\":$((1000 + a)),
    \"balances\":{\"USDT\":\"1000000\",\"RA0\":\"20\",\"RA1\":\"20\",\"RA2\":\"20\",\"RA3\":\"20\",\"RA4\":\"20\"}}"
done
"${PSQL[@]}" -d recon -c "INSERT INTO tenant_config (tenant_id, exchange_account)
  SELECT a, 'acct' || a FROM generate_series(0, 99) a;
  INSERT INTO operation (tenant_id, symbol, side, average_entry_price, quantity, stop_price, created_at)
  SELECT a, 'RA' || (i % 5) || 'USDT', 'BUY', 100, 1, 90, now() - interval '1 minute'
  FROM generate_series(0, 99) a, generate_series(0, 99) i"
# One pass of every account, as 100 CronJobs would run them: time per process, calls, weight.
pass() {
  local label=$1; shift
  local times="$r10/times.$label" calls=0 n=0
  : >"$times"
  for a in "$@"; do
    local s e out
    s=$(date +%s%N)
    out=$(BACKSTOP_EXCHANGE_API_KEY=k$a BACKSTOP_EXCHANGE_API_SECRET=s$a "$BIN/reconcile" --database-url dbname=recon \
      --exchange-url "$sim" --account "acct$a" --json --log-level error --grace-ms 0 --max-weight-per-minute 0)
    e=$(date +%s%N)
    echo "$(((e - s) / 1000)) $out" >>"$times"
  done
  python3 - "$times" "$label" <<'PY'
import json, sys
rows = [l.split(" ", 1) for l in open(sys.argv[1]) if l.strip()]
ms = sorted(int(r[0]) / 1000 for r in rows)
runs = [json.loads(r[1]) for r in rows]
req = sum(r["requests"] for r in runs) / len(runs)
drift = sum(r["reduced"] + r["closed"] for r in runs)
p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
print(f"{sys.argv[2]:<46} {len(ms):4d} accounts  p50 {ms[len(ms)//2]:7.1f} ms  p99 {p99:7.1f} ms"
      f"  max {ms[-1]:7.1f} ms  calls/account {req:5.2f}  reductions {drift}")
PY
}
weight() { curl -fsS "$sim/admin/weight" | python3 -c 'import json,sys; print(json.load(sys.stdin)["usedWeight1m"])'; }
"$BIN/cmdbench" --runs 50 --label "bare client: exchangeInfo + account" -- "$BIN/reconcile_baseline" "$sim" k0 s0
"$BIN/cmdbench" --runs 50 --label "bare client: + myTrades of 5 symbols" -- "$BIN/reconcile_baseline" "$sim" k0 s0 \
  RA0USDT RA1USDT RA2USDT RA3USDT RA4USDT
sleep 61  # a fresh weight minute
pass "reconcile, first pass (cursors empty)" $(seq 0 99)
echo "weight used in the last minute after the first passes: $(weight)"
"$BIN/cmdbench" --runs 50 --label "reconcile --account acct0 (quiet)" -- env BACKSTOP_EXCHANGE_API_KEY=k0 \
  BACKSTOP_EXCHANGE_API_SECRET=s0 "$BIN/reconcile" --database-url dbname=recon --exchange-url "$sim" --account acct0 \
  --log-level error --max-weight-per-minute 0
sleep 61
pass "reconcile, quiet pass" $(seq 0 99)
echo "weight used in the last minute after the quiet passes: $(weight)"
for a in $(seq 0 9); do
  post /admin/orders "{\"apiKey\":\"k$a\",\"symbol\":\"RA0USDT\",\"side\":\"SELL\",\"type\":\"MARKET\",\"quantity\":\"3\"}"
done
pass "reconcile after a manual sale (10 accounts)" $(seq 0 9)
kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true; SIM_PID=
fi
