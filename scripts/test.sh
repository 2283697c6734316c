#!/usr/bin/env bash
# Every test: installs what is missing, builds the normal and the ASan+UBSan
# trees, starts a private PostgreSQL on 127.0.0.1 and runs all tests in both.
#   ./dev test              everything
#   ./dev test --fast       the normal build only (no sanitizer pass)
#   ./dev test -R regex     only matching tests (passed to ctest)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/lib.sh"

sanitize=1
ctest_args=()
for arg in "$@"; do
  case "$arg" in
    --fast) sanitize=0 ;;
    *) ctest_args+=("$arg") ;;
  esac
done

ensure_packages
# The official Kubernetes schemas (npm kubernetes-models) for tests/k8s-schemas.
if ! command -v npm >/dev/null; then
  log "installing Debian's nodejs and npm"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm
fi
if [[ ! -d "$ROOT/tests/k8s-schemas/node_modules" ]]; then
  log "npm ci in tests/k8s-schemas"
  (cd "$ROOT/tests/k8s-schemas" && npm ci --no-audit --no-fund --loglevel=error)
fi
build_tree build
((sanitize)) && build_tree build-asan -DBACKSTOP_SANITIZE=ON -DBACKSTOP_BENCH=OFF

trap pg_stop EXIT
PG_FSYNC=off pg_start 56432

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for tree in build $( ((sanitize)) && echo build-asan); do
  log "ctest in $tree"
  (cd "$ROOT/$tree" && ctest --output-on-failure -j"$JOBS" --timeout 600 "${ctest_args[@]}") || status=1
done
if ((status)); then log "TESTS FAILED"; else log "all tests passed"; fi
exit $status
