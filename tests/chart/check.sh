#!/usr/bin/env bash
# Renders charts/backstop with helm-render (Go text/template + sprig, built from
# Debian's packages; Helm itself is not installable here) with the default
# values and with values-namespaced.yaml, then checks each rendering: every
# object against the official schemas (kubernetes-models,
# @kubernetes-models/prometheus-operator), check-chart.mjs, and
# `promtool check rules` on the rules as the PrometheusRule carries them.
#   tests/chart/check.sh BUILD_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$1/chart"
mkdir -p "$out"
"$root/tests/helm-render/build.sh" "$out"
schemas="$root/tests/k8s-schemas"
for variant in default namespaced; do
  args=()
  [[ $variant == namespaced ]] && args=(-f "$root/tests/chart/values-namespaced.yaml")
  "$out/helm-render" "${args[@]}" -name backstop -namespace backstop-system "$root/charts/backstop" > "$out/$variant.yaml"
  echo "== $variant: $(grep -c '^kind:' "$out/$variant.yaml") objects"
  node "$schemas/validate.mjs" "$out/$variant.yaml"
  node "$schemas/check-chart.mjs" "$out/$variant.yaml" "$root/charts/backstop/rules/backstop-alerts.yaml" \
    "$root/crds/stopmonitors.backstop.dev.yaml" "$out/$variant-rules.yaml"
  promtool check rules "$out/$variant-rules.yaml"
done
# The namespaced variant: a Role in the watched namespace, no operator objects.
grep -q '^kind: Role$' "$out/namespaced.yaml"
! grep -q '^kind: ClusterRole$' "$out/namespaced.yaml"
! grep -q 'monitoring.coreos.com' "$out/namespaced.yaml"
grep -q -- '--namespace=trading' "$out/namespaced.yaml"
grep -q -- '--no-database-metrics' "$out/namespaced.yaml"
grep -q 'image: ghcr.io/backstop/backstop:0.1.0-test' "$out/namespaced.yaml"
echo "chart ok"
