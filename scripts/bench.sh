#!/usr/bin/env bash
# Benchmarks, each printed beside a baseline measured in the same run:
#   1. cold start of a binary with nothing to do vs `psql -c 'select 1'`
#   2. backfill throughput on N operations (default 1,000,000) vs one
#      `UPDATE ... FROM` doing the same arithmetic in SQL
#   3. Decimal money operations vs double (Google Benchmark)
# Usage: ./dev bench [--operations N]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/lib.sh"
operations=1000000
while (($#)); do
  case "$1" in
    --operations) operations=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

ensure_packages
BUILD_TYPE=Release build_tree build-release -DBACKSTOP_TESTS=OFF
BIN="$ROOT/build-release/bin"
trap pg_stop EXIT
pg_start 58432
PSQL=(psql -X -q -v ON_ERROR_STOP=1)

echo
echo "## 1. Cold start (binary with nothing to do) vs psql baseline"
createdb bench_idle
"$BIN/migrate" --database-url "dbname=bench_idle" up >/dev/null 2>&1
"$BIN/cmdbench" --runs 50 --label "psql -c 'select 1' (baseline)" -- psql -X -d bench_idle -c 'select 1'
"$BIN/cmdbench" --runs 50 --label "backfill (nothing to do)" -- "$BIN/backfill" --database-url dbname=bench_idle --log-level warn
"$BIN/cmdbench" --runs 50 --label "migrate up (nothing to do)" -- "$BIN/migrate" --database-url dbname=bench_idle --log-level warn up
echo "goal: < 50 ms and < 30 MB RSS"

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

echo
echo "## 3. Decimal vs double (ns per operation)"
"$BIN/decimal_bench" --benchmark_min_time=0.2 2>/dev/null | grep -E "^BM_"
