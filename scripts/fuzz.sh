#!/usr/bin/env bash
# Fuzzes the exchange response parsers with clang's libFuzzer (+ ASan/UBSan).
#   ./dev fuzz [seconds]   default 600 (the documented 10-minute run)
# The corpus grows in build-fuzz/corpus (seeded from fuzz/corpus/binance);
# a crash writes its input to build-fuzz/ and the script fails.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/lib.sh"
seconds=${1:-600}
PACKAGES+=(clang libclang-rt-14-dev)
ensure_packages
out="$ROOT/build-fuzz"
mkdir -p "$out/corpus"
cp -n "$ROOT"/fuzz/corpus/binance/* "$out/corpus/" 2>/dev/null || true
log "building the fuzz target with clang"
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -D_TURN_OFF_PLATFORM_STRING -I "$ROOT/pkg" \
  "$ROOT/fuzz/binance_parsers_fuzz.cpp" "$ROOT/pkg/exchange/binance_protocol.cpp" "$ROOT/pkg/exchange/exchange.cpp" \
  "$ROOT/pkg/core/decimal.cpp" "$ROOT/pkg/core/operation.cpp" -lssl -lcrypto -o "$out/binance_parsers_fuzz"
log "fuzzing for $seconds s"
cd "$out"
./binance_parsers_fuzz -max_total_time="$seconds" -max_len=4096 -timeout=5 -print_final_stats=1 corpus 2>&1 | tail -25
