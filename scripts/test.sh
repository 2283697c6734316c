#!/usr/bin/env bash
# Every test: installs what is missing, builds the normal and the ASan+UBSan
# trees, starts a private PostgreSQL on 127.0.0.1 and runs all tests in both.
#   ./dev test              everything (what CI runs)
#   ./dev test --fast       the inner loop: the normal build only, no sanitizer pass
#   ./dev test -R regex     only matching tests (passed to ctest)
# Expected time on two cores (measured): a first run about 40 minutes (Debian
# packages, two cold builds of about 12 minutes each, then the tests); later
# runs rebuild only what changed (ccache) and take 15 to 20 minutes, of which
# the tests are about 5 minutes normal and 7 under ASan. --fast: about 6 minutes
# after a small change. Each phase below prints the time elapsed so far.
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
started=$SECONDS
phase() { log "[$(printf '%02d:%02d' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)))] $*"; }
phase "build/ (normal build; cold about 12 minutes on two cores)"
build_tree build
phase "style: include direction, clang-format, clang-tidy"
style=0
"$ROOT/scripts/check-style.sh" build || style=1
if ((sanitize)); then
  phase "build-asan/ (ASan + UBSan; cold about 12 minutes)"
  build_tree build-asan -DBACKSTOP_SANITIZE=ON -DBACKSTOP_BENCH=OFF
fi

trap pg_stop EXIT
PG_FSYNC=off pg_start 56432

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=$style
for tree in build $( ((sanitize)) && echo build-asan); do
  phase "ctest in $tree ($(cd "$ROOT/$tree" && ctest -N | sed -nE 's/^Total Tests: //p') tests; each line is one finished)"
  (cd "$ROOT/$tree" && ctest --output-on-failure -j"$JOBS" --timeout 600 "${ctest_args[@]}") || status=1
done
if ((status)); then phase "TESTS FAILED"; else phase "all tests passed"; fi
exit $status
