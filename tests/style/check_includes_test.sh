#!/usr/bin/env bash
# The include checker must catch each rule it states (a check that cannot fail proves nothing).
set -uo pipefail
checker="$1"
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
failures=0
expect() {  # expect NAME pass|fail
  if python3 "$checker" "$tree" >"$tree/out" 2>&1; then got=pass; else got=fail; fi
  if [[ $got != "$2" ]]; then echo "FAIL $1: expected $2, got $got"; cat "$tree/out"; failures=$((failures + 1)); else echo "ok   $1"; fi
}
mkdir -p "$tree/pkg/core" "$tree/pkg/kube" "$tree/pkg/exchange" "$tree/pkg/store" "$tree/pkg/app"
printf '#include <string>\n#include "core/a.h"\n' >"$tree/pkg/core/a.h"
printf '#include "core/a.h"\n' >"$tree/pkg/store/s.h"
printf '#include "store/s.h"\n#include "kube/k.h"\n' >"$tree/pkg/app/x.h"
printf '#include <cpprest/http_client.h>\n' >"$tree/pkg/kube/k.h"
expect "a clean tree passes" pass
printf '#include <pqxx/pqxx>\n' >"$tree/pkg/core/b.h"
expect "pkg/core including a library fails" fail
rm "$tree/pkg/core/b.h"
printf '#include <unistd.h>\n' >"$tree/pkg/core/c.cpp"
expect "pkg/core including a POSIX header fails" fail
rm "$tree/pkg/core/c.cpp"
printf '#include "exchange/http.h"\n' >"$tree/pkg/kube/k.h"
expect "pkg/kube including pkg/exchange fails" fail
printf '\n' >"$tree/pkg/kube/k.h"
mkdir -p "$tree/pkg/alpha" "$tree/pkg/beta"
printf '#include "beta/b.h"\n' >"$tree/pkg/alpha/a.h"
printf '#include "core/a.h"\n' >"$tree/pkg/beta/b.h"
expect "rooms without a cycle pass" pass
printf '#include "alpha/a.h"\n' >>"$tree/pkg/beta/b.h"
expect "a cycle alpha -> beta -> alpha fails" fail
printf '#include "core/a.h"\n' >"$tree/pkg/beta/b.h"
mkdir -p "$tree/tests/kube"
printf '#include <httplib.h>\n#include "object_store.h"\n' >"$tree/tests/kube/api_server.cpp"
printf '#include "kube/client.h"\n' >"$tree/tests/kube/dump_desired.cpp"
expect "the API test server on its own (dump_desired.cpp exempt) passes" pass
printf '#include "kube/client.h"\n' >>"$tree/tests/kube/api_server.cpp"
expect "the API test server including pkg/kube fails" fail
exit $((failures > 0))
