#!/usr/bin/env bash
# tests/image/check.py catches what it claims to: the Dockerfile with
# cpp-httplib taken out of both stages (the build stage as it was before
# issue 12, item 2, and its runtime library) must fail with both named.
#   tests/image/check_catches_test.sh DOCKERFILE BUILD_DIR OUT_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$3"
mutant="$3/Dockerfile.without-httplib"
sed -e 's/ libcpp-httplib-dev//' -e 's/ libcpp-httplib0\.11//' "$1" >"$mutant"
if out=$(python3 "$here/check.py" --dockerfile "$mutant" --build-dir "$2" 2>&1); then
  echo "$out"; echo "FAIL: check.py passed a Dockerfile without cpp-httplib"; exit 1
fi
for expected in "build stage lacks libcpp-httplib-dev" "runtime stage lacks libcpp-httplib0.11"; do
  grep -qF "$expected" <<<"$out" || { echo "$out"; echo "FAIL: expected \"$expected\""; exit 1; }
  echo "caught: $expected"
done
