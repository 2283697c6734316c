// Checks a rendered chart (helm-render output) beyond the schemas: the CRD is
// the one in crds/, the PrometheusRule carries exactly the groups of the plain
// rules file (and writes them out for `promtool check rules`), the controller
// runs non-root with a read-only root filesystem, no capabilities and probes,
// RBAC names every resource and verb (no wildcards), the migration Job is a
// pre-install/pre-upgrade hook, the dashboard is JSON with the panels promised,
// a Deployment of more than one replica has a PodDisruptionBudget that leaves
// one running and a preferred anti-affinity across nodes (and one of one
// replica no PDB), the ClusterRoles aggregated into view/edit grant exactly
// read (view) and write (edit) on StopMonitors.
//   node check-chart.mjs RENDERED.yaml RULES.yaml CRD.yaml RULES_OUT.yaml
import { readFileSync, writeFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { parse, parseAllDocuments, stringify } from "yaml";

const [rendered, rulesFile, crdFile, rulesOut] = process.argv.slice(2);
const docs = parseAllDocuments(readFileSync(rendered, "utf8")).map((d) => d.toJS()).filter((o) => o);
const problems = [];
const expect = (ok, what) => {
  if (!ok) problems.push(what);
};
const byKind = (kind) => docs.filter((o) => o.kind === kind);

const crd = byKind("CustomResourceDefinition");
expect(crd.length === 1 && isDeepStrictEqual(crd[0], parse(readFileSync(crdFile, "utf8"))),
  "the chart's CRD is not the one in crds/ (copy crds/stopmonitors.backstop.dev.yaml to charts/backstop/crds/)");

const rules = byKind("PrometheusRule");
if (rules.length === 1) {
  expect(isDeepStrictEqual(rules[0].spec, parse(readFileSync(rulesFile, "utf8"))),
    "PrometheusRule spec differs from the rules file");
  writeFileSync(rulesOut, stringify(rules[0].spec));
} else {
  writeFileSync(rulesOut, "groups: []\n");
}

for (const d of byKind("Deployment")) {
  const pod = d.spec.template.spec;
  expect(pod.securityContext?.runAsNonRoot === true, `${d.metadata.name}: pod runAsNonRoot`);
  for (const c of pod.containers) {
    const sc = c.securityContext ?? {};
    expect(sc.readOnlyRootFilesystem === true, `${c.name}: readOnlyRootFilesystem`);
    expect(sc.allowPrivilegeEscalation === false, `${c.name}: allowPrivilegeEscalation false`);
    expect(isDeepStrictEqual(sc.capabilities?.drop, ["ALL"]), `${c.name}: capabilities drop ALL`);
    expect(c.livenessProbe?.httpGet?.path === "/healthz", `${c.name}: liveness probe /healthz`);
    expect(c.readinessProbe?.httpGet?.path === "/readyz", `${c.name}: readiness probe /readyz`);
    expect(c.resources?.requests && c.resources?.limits, `${c.name}: resources`);
  }
}
// Does a label selector's matchLabels select these labels?
const selects = (selector, labels) =>
  !!selector?.matchLabels && Object.keys(selector.matchLabels).length > 0 &&
  Object.entries(selector.matchLabels).every(([k, v]) => labels?.[k] === v);
for (const d of byKind("Deployment")) {
  const replicas = d.spec.replicas ?? 1;
  const podLabels = d.spec.template.metadata?.labels;
  const pdbs = byKind("PodDisruptionBudget").filter((p) => p.metadata.namespace === d.metadata.namespace &&
    selects(p.spec.selector, podLabels));
  if (replicas > 1) {
    expect(pdbs.length === 1, `${d.metadata.name}: ${replicas} replicas and ${pdbs.length} PodDisruptionBudgets (want 1)`);
    for (const p of pdbs) {
      expect(p.apiVersion === "policy/v1", `${p.metadata.name}: apiVersion ${p.apiVersion} (want policy/v1)`);
      const { minAvailable, maxUnavailable } = p.spec;
      expect(Number.isInteger(minAvailable) ? minAvailable >= 1 && minAvailable < replicas
        : Number.isInteger(maxUnavailable) && maxUnavailable >= 1 && maxUnavailable < replicas,
        `${p.metadata.name}: minAvailable ${minAvailable} / maxUnavailable ${maxUnavailable} must keep one of ${replicas} pods and allow one eviction`);
    }
    const preferred = d.spec.template.spec.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
    expect(preferred.some((t) => t.podAffinityTerm?.topologyKey === "kubernetes.io/hostname" &&
      selects(t.podAffinityTerm?.labelSelector, podLabels)),
      `${d.metadata.name}: ${replicas} replicas without a preferred podAntiAffinity on kubernetes.io/hostname selecting its own pods`);
  } else {
    expect(pdbs.length === 0, `${d.metadata.name}: one replica and a PodDisruptionBudget (it would block every drain)`);
  }
}
// ClusterRoles aggregated into the built-in roles: the one aggregated to view
// reads StopMonitors and writes nothing, the one aggregated to edit (and not
// view) writes them; what edit gets, with view's rules, is read and write.
const aggregation = "rbac.authorization.k8s.io/aggregate-to-";
const grants = (r) => new Set(r.rules.flatMap((rule) => rule.resources.flatMap((res) =>
  rule.verbs.map((v) => `${(rule.apiGroups ?? [""]).join(",")}/${res}:${v}`))));
const read = ["get", "list", "watch"].map((v) => `backstop.dev/stopmonitors:${v}`);
const write = ["create", "update", "patch", "delete"].map((v) => `backstop.dev/stopmonitors:${v}`);
const aggregatedTo = (role) => byKind("ClusterRole").filter((c) => c.metadata.labels?.[aggregation + role] === "true");
for (const r of byKind("ClusterRole").filter((c) => Object.keys(c.metadata.labels ?? {}).some((k) => k.startsWith(aggregation)))) {
  const granted = grants(r);
  expect([...granted].every((g) => g.startsWith("backstop.dev/stopmonitors")),
    `${r.metadata.name}: aggregated into built-in roles with more than StopMonitors: ${[...granted].join(" ")}`);
  expect(![...granted].some((g) => g.startsWith("backstop.dev/stopmonitors/status:") && !/:(get|list|watch)$/.test(g)),
    `${r.metadata.name}: status is the controller's to write`);
  if (r.metadata.labels[aggregation + "view"] === "true") {
    expect(read.every((g) => granted.has(g)), `${r.metadata.name}: aggregated to view without get/list/watch on stopmonitors`);
    expect(!write.some((g) => granted.has(g)), `${r.metadata.name}: aggregated to view with write verbs`);
  }
}
const edit = new Set(aggregatedTo("edit").flatMap((r) => [...grants(r)]));
if (edit.size > 0) {
  expect([...read, ...write].every((g) => edit.has(g)),
    `edit aggregates ${[...edit].join(" ")}: want get/list/watch/create/update/patch/delete on stopmonitors`);
  expect(aggregatedTo("view").length > 0, "StopMonitors aggregated to edit but not to view");
}
for (const r of [...byKind("ClusterRole"), ...byKind("Role")]) {
  for (const rule of r.rules) {
    expect(!rule.verbs.includes("*") && !rule.resources.includes("*") && !(rule.apiGroups ?? []).includes("*"),
      `${r.kind}/${r.metadata.name}: wildcard in ${JSON.stringify(rule)}`);
  }
}
for (const j of byKind("Job")) {
  const hooks = j.metadata.annotations?.["helm.sh/hook"] ?? "";
  expect(hooks.includes("pre-install") && hooks.includes("pre-upgrade"), `${j.metadata.name}: pre-install/pre-upgrade hook`);
  expect(j.spec.template.spec.containers[0].args.includes("up"), `${j.metadata.name}: runs migrate up`);
}
for (const cm of byKind("ConfigMap").filter((c) => c.metadata.name.endsWith("-dashboard"))) {
  const dashboard = JSON.parse(cm.data["backstop.json"]);
  const titles = dashboard.panels.map((p) => p.title).join(" | ");
  for (const want of ["Executions by status", "Slippage", "latency", "failure", "Outbox backlog", "Account sync"]) {
    expect(titles.toLowerCase().includes(want.toLowerCase()), `dashboard: a panel about ${want} (have: ${titles})`);
  }
  for (const p of dashboard.panels) expect(p.targets.every((t) => t.expr), `dashboard panel ${p.title}: empty query`);
}

const kinds = docs.map((o) => o.kind).join(", ");
if (problems.length) {
  for (const p of problems) console.log(`FAIL ${p}`);
  process.exit(1);
}
console.log(`ok   ${docs.length} objects (${kinds})`);
