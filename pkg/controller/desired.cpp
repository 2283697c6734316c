#include "controller/desired.h"

#include <algorithm>
#include <optional>
#include <type_traits>

namespace backstop::controller {
namespace {

constexpr int kStreamHealthPort = 8081;     // the stream container's /healthz and /readyz
constexpr int kReconcileHealthPort = 8082;  // the reconcile --stream container's

json env_from_secret(const std::string& variable, const std::string& name, const std::string& key) {
  return {{"name", variable}, {"valueFrom", {{"secretKeyRef", {{"name", name}, {"key", key}}}}}};
}

template <typename T>
std::string joined(const std::vector<T>& list) {
  std::string out;
  for (const auto& item : list) {
    if (!out.empty()) out += ",";
    if constexpr (std::is_same_v<T, std::string>) {
      out += item;
    } else {
      out += std::to_string(item);
    }
  }
  return out;
}

}  // namespace

Desired desired_objects(const StopMonitor& monitor) {
  const StopMonitorSpec& spec = monitor.spec;
  const std::string& name = monitor.name;
  const std::string& ns = monitor.namespace_name;
  const std::string image_ref = spec.image.repository + ":" + spec.image.tag;
  const json owner = {{"apiVersion", "backstop.dev/v1alpha1"},
                      {"kind", "StopMonitor"},
                      {"name", name},
                      {"uid", monitor.uid},
                      {"controller", true},
                      {"blockOwnerDeletion", true}};
  auto labels = [&](const std::string& component) {
    return json{{"app.kubernetes.io/name", "backstop"},
                {"app.kubernetes.io/instance", name},
                {"app.kubernetes.io/component", component},
                {"app.kubernetes.io/managed-by", "backstop-controller"}};
  };
  // Shared command-line: the monitor's shard and the common environment.
  std::vector<std::string> shard;
  if (!spec.tenants.empty()) shard.push_back("--tenant=" + joined(spec.tenants));
  if (!spec.symbols.empty()) shard.push_back("--symbol=" + joined(spec.symbols));
  json env = json::array({env_from_secret("BACKSTOP_DATABASE_URL", spec.database.name, spec.database.key),
                          {{"name", "BACKSTOP_LOG_FORMAT"}, {"value", "json"}},
                          {{"name", "BACKSTOP_METRICS_INSTANCE"}, {"value", ns + "/" + name}}});
  if (spec.pushgateway_url) env.push_back({{"name", "BACKSTOP_PUSHGATEWAY_URL"}, {"value", *spec.pushgateway_url}});
  const CredentialsSecretRef& credentials = spec.exchange.credentials_secret_ref;
  json exchange_env = {{{"name", "BACKSTOP_EXCHANGE_URL"}, {"value", spec.exchange.base_url}},
                       env_from_secret("BACKSTOP_EXCHANGE_API_KEY", credentials.name, credentials.api_key_key),
                       env_from_secret("BACKSTOP_EXCHANGE_API_SECRET", credentials.name, credentials.api_secret_key)};
  const json container_security = {{"runAsNonRoot", true},
                                   {"runAsUser", 10001},
                                   {"readOnlyRootFilesystem", true},
                                   {"allowPrivilegeEscalation", false},
                                   {"capabilities", {{"drop", {"ALL"}}}},
                                   {"seccompProfile", {{"type", "RuntimeDefault"}}}};
  auto container = [&](const std::string& binary, std::vector<std::string> args, json extra_env) {
    json e = env;
    for (auto& item : extra_env) e.push_back(item);
    // outbox-drain drains the whole outbox (it has no --tenant/--symbol: they
    // would end every run with a usage error) and writes nothing to dry-run;
    // reconcile takes the tenants but not the symbols (an account's balance
    // is compared with all its positions in an asset).
    if (binary == "reconcile") {
      // A named account is reconciled whole (all its tenants); the tenants
      // that name none are this monitor's.
      if (!spec.tenants.empty() && !spec.reconcile.account) args.push_back("--tenant=" + joined(spec.tenants));
      if (spec.dry_run) args.push_back("--dry-run");
    } else if (binary != "outbox-drain") {
      args.insert(args.end(), shard.begin(), shard.end());
      if (spec.dry_run) args.push_back("--dry-run");
    }
    return json{{"name", binary},
                {"image", image_ref},
                {"imagePullPolicy", spec.image.pull_policy},
                {"command", {"/usr/local/bin/" + binary}},
                {"args", args},
                {"env", e},
                {"securityContext", container_security},
                {"resources", {{"requests", {{"cpu", "50m"}, {"memory", "32Mi"}}}, {"limits", {{"memory", "128Mi"}}}}}};
  };
  auto cronjob = [&](const std::string& component, const std::string& schedule, const json& c, int deadline_seconds) {
    return json{{"apiVersion", "batch/v1"},
                {"kind", "CronJob"},
                {"metadata",
                 {{"name", name + "-" + component},
                  {"namespace", ns},
                  {"labels", labels(component)},
                  {"ownerReferences", {owner}}}},
                {"spec",
                 {{"schedule", schedule},
                  {"suspend", spec.suspend},
                  {"concurrencyPolicy", "Forbid"},
                  {"startingDeadlineSeconds", 30},
                  {"successfulJobsHistoryLimit", 3},
                  {"failedJobsHistoryLimit", 3},
                  {"jobTemplate",
                   {{"metadata", {{"labels", labels(component)}}},
                    {"spec",
                     {{"backoffLimit", 0},  // the next scheduled run is the retry; a pass is idempotent
                      {"activeDeadlineSeconds", deadline_seconds},
                      {"template",
                       {{"metadata", {{"labels", labels(component)}}},
                        {"spec",
                         {{"restartPolicy", "Never"},
                          {"automountServiceAccountToken", false},
                          {"securityContext", {{"runAsNonRoot", true}, {"fsGroup", 10001}}},
                          {"containers", {c}}}}}}}}}}}}};
  };

  Desired d;
  const std::string price_source = "--price-source=" + spec.exchange.price_source;
  d.cronjobs.push_back(
      cronjob("stop-monitor", spec.stop_monitor.schedule,
              container("stop-monitor",
                        {"--batch-size=" + std::to_string(spec.stop_monitor.batch_size),
                         "--orders-in-flight=" + std::to_string(spec.stop_monitor.orders_in_flight), price_source,
                         "--max-price-age-ms=" + std::to_string(spec.guardrails.max_price_age_ms)},
                        exchange_env),
              55));
  if (spec.trailing_stop.enabled) {
    d.cronjobs.push_back(cronjob("trailing-stop", spec.trailing_stop.schedule,
                                 container("trailing-stop", {price_source}, json::array({exchange_env[0]})), 55));
  } else {
    d.absent.push_back(name + "-trailing-stop");
  }
  std::vector<std::string> reconcile_args = {"--grace-ms=" + std::to_string(spec.reconcile.grace_seconds * 1000),
                                             "--max-closures-pct=" + std::to_string(spec.reconcile.max_closures_pct)};
  if (spec.reconcile.account) reconcile_args.push_back("--account=" + *spec.reconcile.account);
  if (spec.reconcile.cancel_orphans) reconcile_args.push_back("--cancel-orphans");
  if (spec.reconcile.enabled) {
    d.cronjobs.push_back(
        cronjob("reconcile", spec.reconcile.schedule, container("reconcile", reconcile_args, exchange_env), 55));
  } else {
    d.absent.push_back(name + "-reconcile");
  }
  if (spec.outbox_drain.enabled) {
    // parse_stop_monitor makes sure the broker Secret is there.
    d.cronjobs.push_back(
        cronjob("outbox-drain", spec.outbox_drain.schedule,
                container("outbox-drain",
                          {"--once", "--exchange=" + spec.outbox_drain.exchange,
                           "--max-retries=" + std::to_string(spec.outbox_drain.max_retries)},
                          json::array({env_from_secret("BACKSTOP_AMQP_URL", spec.rabbitmq->name, spec.rabbitmq->key)})),
                55));
  } else {
    d.absent.push_back(name + "-outbox-drain");
  }
  if (spec.stream.enabled) {
    json c = container("stop-monitor",
                       {"--stream", "--health-probe-bind-address=0.0.0.0:" + std::to_string(kStreamHealthPort)},
                       exchange_env);
    if (spec.stream.url) c["env"].push_back({{"name", "BACKSTOP_STREAM_URL"}, {"value", *spec.stream.url}});
    // Live: its claim and driver loops come round (a hung one is restarted);
    // ready: its last REST pass read prices (an unreachable exchange is shown,
    // not restarted). The process judges both (runtime/health.h).
    c["ports"] = json::array({{{"name", "health"}, {"containerPort", kStreamHealthPort}, {"protocol", "TCP"}}});
    c["livenessProbe"] = {{"httpGet", {{"path", "/healthz"}, {"port", "health"}}},
                          {"initialDelaySeconds", 10},
                          {"periodSeconds", 10},
                          {"timeoutSeconds", 5},
                          {"failureThreshold", 3}};
    c["readinessProbe"] = {{"httpGet", {{"path", "/readyz"}, {"port", "health"}}},
                           {"periodSeconds", 10},
                           {"timeoutSeconds", 5},
                           {"failureThreshold", 3}};
    json containers = json::array({c});
    if (spec.reconcile.enabled) {
      // The account's user data stream, in a process of its own (a fault of
      // one stream never stops the other): a sale elsewhere is reconciled
      // within a second, and a full pass runs every minute whatever the
      // stream does; the CronJob goes on too (two passes of one account take
      // turns on its row lock).
      std::vector<std::string> args = reconcile_args;
      args.insert(args.begin(), {"--stream", "--interval=60",
                                 "--health-probe-bind-address=0.0.0.0:" + std::to_string(kReconcileHealthPort)});
      json r = container("reconcile", args, exchange_env);
      if (spec.exchange.ws_api_url) {
        r["env"].push_back({{"name", "BACKSTOP_WS_API_URL"}, {"value", *spec.exchange.ws_api_url}});
      }
      r["ports"] = json::array({{{"name", "rc-health"}, {"containerPort", kReconcileHealthPort}, {"protocol", "TCP"}}});
      r["livenessProbe"] = c["livenessProbe"];
      r["livenessProbe"]["httpGet"]["port"] = "rc-health";
      r["readinessProbe"] = c["readinessProbe"];
      r["readinessProbe"]["httpGet"]["port"] = "rc-health";
      containers.push_back(std::move(r));
    }
    json pod = {{"automountServiceAccountToken", false},
                {"securityContext", {{"runAsNonRoot", true}, {"fsGroup", 10001}}},
                {"containers", containers}};
    json selector = {
        {"matchLabels", {{"app.kubernetes.io/instance", name}, {"app.kubernetes.io/component", "stream"}}}};
    json deployment_spec = {{"replicas", spec.suspend ? 0 : 1},
                            {"strategy", {{"type", "Recreate"}}},  // never two streams at once
                            {"selector", selector},
                            {"template", {{"metadata", {{"labels", labels("stream")}}}, {"spec", pod}}}};
    json metadata = {{"name", name + "-stream"},
                     {"namespace", ns},
                     {"labels", labels("stream")},
                     {"ownerReferences", json::array({owner})}};
    d.deployments.push_back(
        {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", metadata}, {"spec", deployment_spec}});
  } else {
    d.absent.push_back(name + "-stream");
  }
  return d;
}

std::vector<PushedRunMetrics> pushed_run_metrics(const StopMonitor& monitor) {
  std::vector<PushedRunMetrics> pushed;
  if (monitor.spec.suspend) return pushed;
  for (const json& cronjob : desired_objects(monitor).cronjobs) {
    const json& container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    std::string binary = container["name"];
    const json& args = container["args"];
    if (std::find(args.begin(), args.end(), "--dry-run") != args.end()) continue;
    std::optional<std::string> gateway;
    std::string instance;
    for (const json& variable : container["env"]) {
      if (variable["name"] == "BACKSTOP_PUSHGATEWAY_URL") gateway = variable["value"];
      if (variable["name"] == "BACKSTOP_METRICS_INSTANCE") instance = variable["value"];
    }
    if (!gateway) continue;
    std::replace(binary.begin(), binary.end(), '-', '_');
    pushed.push_back({"backstop_" + binary, instance});
  }
  return pushed;
}

}  // namespace backstop::controller
