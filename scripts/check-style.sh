#!/usr/bin/env bash
# Style that holds by itself (run by ./dev test, so by CI; alone: ./dev check):
#   1. include direction (scripts/check-includes.py);
#   2. clang-format: every C++ file of the tree formatted (.clang-format);
#   3. clang-tidy on pkg/core and pkg/store (.clang-tidy), against build/'s
#      compile_commands.json.
# Each prints what is wrong and where; the script exits 1 when anything is.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source "$ROOT/scripts/lib.sh"
BUILD=${1:-build}
status=0

log "include direction"
python3 scripts/check-includes.py || status=1

log "clang-format"
mapfile -t files < <(git ls-files -- '*.h' '*.cpp' ':!:tests/k8s-schemas/**')
unformatted=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || unformatted+=("$f")
done
if ((${#unformatted[@]})); then
  printf 'not clang-formatted (run: clang-format -i FILE): %s\n' "${unformatted[@]}"
  status=1
else
  echo "clang-format: ${#files[@]} files formatted"
fi

log "clang-tidy on pkg/core and pkg/store"
[[ -f "$BUILD/compile_commands.json" ]] || { echo "no $BUILD/compile_commands.json: build first"; exit 1; }
mapfile -t tidy < <(git ls-files -- 'pkg/core/*.cpp' 'pkg/store/*.cpp')
# GCC-only warning flags in the compile commands mean nothing to clang.
if printf '%s\n' "${tidy[@]}" |
  xargs -P "${JOBS:-2}" -n 4 clang-tidy -p "$BUILD" --quiet --extra-arg=-Wno-unknown-warning-option 2>/dev/null |
  grep -E '(warning|error):' ; then
  status=1
else
  echo "clang-tidy: ${#tidy[@]} files clean"
fi
exit $status
