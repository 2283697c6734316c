#!/usr/bin/env bash
# Renders charts/backstop with helm-render (Go text/template + sprig, values
# read and validated against values.schema.json as Helm 3 does; built from
# Debian's packages, Helm itself is not installable here) and checks each
# rendering: every object against the official schemas (kubernetes-models,
# @kubernetes-models/prometheus-operator), check-chart.mjs, and
# `promtool check rules` on the rules as the PrometheusRule carries them.
#   default      default values, a cluster serving monitoring.coreos.com/v1
#   no-operator  default values, a cluster without the Prometheus Operator
#   namespaced   values-namespaced.yaml
# Then values that values.schema.json must refuse before anything renders, and NOTES.txt.
#   tests/chart/check.sh BUILD_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$1/chart"
mkdir -p "$out"
"$root/tests/helm-render/build.sh" "$out"
schemas="$root/tests/k8s-schemas"
render() {  # render NAME [helm-render args...]
  local name=$1
  shift
  "$out/helm-render" "$@" -notes "$out/$name-NOTES.txt" -name backstop -namespace backstop-system \
    "$root/charts/backstop" > "$out/$name.yaml"
}
fail() {
  echo "FAIL $*" >&2
  exit 1
}
for variant in default no-operator namespaced; do
  case $variant in
    default) render default -api-versions monitoring.coreos.com/v1 ;;
    no-operator) render no-operator ;;
    namespaced) render namespaced -f "$root/tests/chart/values-namespaced.yaml" ;;
  esac
  echo "== $variant: $(grep -c '^kind:' "$out/$variant.yaml") objects"
  node "$schemas/validate.mjs" "$out/$variant.yaml"
  node "$schemas/check-chart.mjs" "$out/$variant.yaml" "$root/charts/backstop/rules/backstop-alerts.yaml" \
    "$root/crds/stopmonitors.backstop.dev.yaml" "$out/$variant-rules.yaml"
  promtool check rules "$out/$variant-rules.yaml"
done
has_kind() { grep -q "^kind: $2\$" "$out/$1.yaml"; }

# Operator objects only where the cluster serves monitoring.coreos.com/v1
# (.Capabilities.APIVersions), even with serviceMonitor/prometheusRule enabled.
has_kind default ServiceMonitor || fail "default (operator present): no ServiceMonitor"
has_kind default PrometheusRule || fail "default (operator present): no PrometheusRule"
! grep -q 'monitoring.coreos.com' "$out/no-operator.yaml" || fail "no-operator: a monitoring.coreos.com object without its CRDs"
has_kind no-operator Deployment || fail "no-operator: no controller Deployment"

# Two controller replicas: a PodDisruptionBudget (check-chart.mjs checks that
# it selects the controller's pods and leaves one running, and the
# anti-affinity); one replica: none (it would block every drain).
has_kind default PodDisruptionBudget || fail "default (2 replicas): no PodDisruptionBudget"
! has_kind namespaced PodDisruptionBudget || fail "namespaced (1 replica): a PodDisruptionBudget"
grep -q 'podAntiAffinity:' "$out/default.yaml" || fail "default (2 replicas): no podAntiAffinity"

# Desks manage their StopMonitors through the built-in view/edit roles
# (check-chart.mjs checks the aggregated ClusterRoles' labels and verbs).
for role in view edit; do
  grep -q "^  name: backstop-stopmonitors-$role\$" "$out/default.yaml" || fail "default: no ClusterRole backstop-stopmonitors-$role"
done
! grep -q 'aggregate-to-' "$out/namespaced.yaml" || fail "namespaced (rbac.aggregateToDefaultRoles false): an aggregated ClusterRole"

# The namespaced variant: a Role in the watched namespace, no ClusterRole, no operator objects.
# (`! grep` alone would not stop the script: set -e ignores a negated command.)
has_kind namespaced Role || fail "namespaced: no Role"
! has_kind namespaced ClusterRole || fail "namespaced: a ClusterRole"
! grep -q 'monitoring.coreos.com' "$out/namespaced.yaml" || fail "namespaced: a monitoring.coreos.com object"
grep -q -- '--namespace=trading' "$out/namespaced.yaml" || fail "namespaced: no --namespace=trading"
grep -q -- '--no-database-metrics' "$out/namespaced.yaml" || fail "namespaced: no --no-database-metrics"
grep -q 'image: ghcr.io/backstop/backstop:0.1.0-test' "$out/namespaced.yaml" || fail "namespaced: not the pinned image tag"
# StopMonitors run only trusted images: the chart's own by default, or the list given.
grep -qx -- '            - --allowed-images=ghcr.io/backstop/backstop' "$out/default.yaml" ||
  fail "default: the controller does not restrict StopMonitors to the chart's image (--allowed-images)"
grep -qx -- '            - --allowed-images=ghcr.io/backstop/backstop,registry.example.com/trading/\*' "$out/namespaced.yaml" ||
  fail "namespaced: --allowed-images is not controller.allowedImages"

# values.schema.json: values Helm must refuse before rendering, with an error
# naming the path (Helm's "- path: description" lines).
refused() {  # refused WHAT 'expected error line' <<< values
  local what=$1 want=$2
  cat > "$out/refused.yaml"
  if "$out/helm-render" -f "$out/refused.yaml" "$root/charts/backstop" > "$out/refused.out" 2> "$out/refused.err"; then
    fail "values with $what rendered (want: refused with '$want')"
  fi
  grep -qF -- "$want" "$out/refused.err" || fail "values with $what: refused without '$want': $(cat "$out/refused.err")"
  [[ ! -s $out/refused.out ]] || fail "values with $what: refused but printed objects"
  echo "ok   refused $what: $want"
}
refused 'a top-level typo (controler:)' '- (root): Additional property controler is not allowed' <<'V'
controler:
  replicas: 3
V
refused 'a nested typo (controller.replica)' '- controller: Additional property replica is not allowed' <<'V'
controller:
  replica: 3
V
refused 'an allowed image with a digest' '- controller.allowedImages.0: Does not match pattern' <<'V'
controller:
  allowedImages: ["ghcr.io/backstop/backstop@sha256:0123"]
V
refused 'replicas: two' '- controller.replicas: Invalid type. Expected: integer, given: string' <<'V'
controller:
  replicas: two
V
refused 'replicas: 0' '- controller.replicas: Must be greater than or equal to 1' <<'V'
controller:
  replicas: 0
V
refused 'an unquoted numeric image tag' '- image.tag: Invalid type. Expected: string, given: number' <<'V'
image:
  tag: 1.10
V
refused 'an unknown log level' '- controller.logLevel: controller.logLevel must be one of the following' <<'V'
controller:
  logLevel: verbose
V
refused 'a typo in metrics.serviceMonitor' '- metrics.serviceMonitor: Additional property enable is not allowed' <<'V'
metrics:
  serviceMonitor:
    enable: false
V
refused 'a PodDisruptionBudget keeping every replica' 'controller.podDisruptionBudget.minAvailable (2) must be below controller.replicas (2)' <<'V'
controller:
  podDisruptionBudget:
    minAvailable: 2
V
refused 'a key deleted with null' '- controller: replicas is required' <<'V'
controller:
  replicas: null
V

# NOTES.txt (rendered by helm install/upgrade): what was installed, how to
# check it, that creating StopMonitors is privileged, the CRD upgrade step.
notes="$out/default-NOTES.txt"
for want in 'kubectl get stopmonitors' 'logs -l app.kubernetes.io/instance=backstop,app.kubernetes.io/component=controller' 'backstop-system' 'privileged' 'Secret' \
  'kubectl apply --server-side --force-conflicts -f' 'helm show crds' 'helm upgrade' 'aggregate'; do
  grep -qF -- "$want" "$notes" || fail "NOTES.txt: no '$want'"
done
grep -qF 'no ServiceMonitor or PrometheusRule: this cluster does not serve monitoring.coreos.com/v1' "$out/no-operator-NOTES.txt" \
  || fail "NOTES.txt without the operator: does not say the ServiceMonitor/PrometheusRule were skipped"
! grep -qF 'no ServiceMonitor or PrometheusRule' "$notes" || fail "NOTES.txt with the operator: says they were skipped"
grep -qF 'ServiceMonitor backstop-controller' "$notes" || fail "NOTES.txt with the operator: no ServiceMonitor listed"
echo "chart ok"
