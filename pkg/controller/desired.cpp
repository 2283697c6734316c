#include "controller/desired.h"

namespace backstop::controller {
namespace {

json env_from_secret(const std::string& variable, const json& ref, const std::string& default_key) {
  return {{"name", variable},
          {"valueFrom", {{"secretKeyRef", {{"name", ref.at("name")}, {"key", ref.value("key", default_key)}}}}}};
}

std::string joined(const json& list) {
  std::string out;
  for (const auto& item : list) {
    if (!out.empty()) out += ",";
    out += item.is_string() ? item.get<std::string>() : item.dump();
  }
  return out;
}

}  // namespace

Desired desired_objects(const json& monitor) {
  const json& meta = monitor.at("metadata");
  const json& spec = monitor.at("spec");
  const std::string name = meta.at("name");
  const std::string ns = meta.value("namespace", "default");
  if (!meta.contains("uid")) throw InvalidSpec("the StopMonitor has no uid yet (not created by the API server)");
  if (!spec.contains("exchange") || !spec["exchange"].contains("credentialsSecretRef")) {
    throw InvalidSpec("spec.exchange.credentialsSecretRef is required");
  }
  if (!spec.contains("database") || !spec["database"].contains("secretRef")) {
    throw InvalidSpec("spec.database.secretRef is required");
  }
  const bool suspend = spec.value("suspend", false);
  const bool dry_run = spec.value("dryRun", false);
  const json image = spec.value("image", json::object());
  const std::string image_ref =
      image.value("repository", "ghcr.io/backstop/backstop") + ":" + image.value("tag", "latest");
  const json owner = {{"apiVersion", "backstop.dev/v1alpha1"}, {"kind", "StopMonitor"},     {"name", name},
                      {"uid", meta.at("uid")},               {"controller", true},          {"blockOwnerDeletion", true}};
  auto labels = [&](const std::string& component) {
    return json{{"app.kubernetes.io/name", "backstop"},
                {"app.kubernetes.io/instance", name},
                {"app.kubernetes.io/component", component},
                {"app.kubernetes.io/managed-by", "backstop-controller"}};
  };
  // Shared command-line: the monitor's shard and the common environment.
  std::vector<std::string> shard;
  if (spec.contains("tenants") && !spec["tenants"].empty()) shard.push_back("--tenant=" + joined(spec["tenants"]));
  if (spec.contains("symbols") && !spec["symbols"].empty()) shard.push_back("--symbol=" + joined(spec["symbols"]));
  json env = json::array({env_from_secret("BACKSTOP_DATABASE_URL", spec["database"]["secretRef"], "url"),
                          {{"name", "BACKSTOP_LOG_FORMAT"}, {"value", "json"}},
                          {{"name", "BACKSTOP_METRICS_INSTANCE"}, {"value", ns + "/" + name}}});
  if (spec.contains("pushgatewayURL")) env.push_back({{"name", "BACKSTOP_PUSHGATEWAY_URL"}, {"value", spec["pushgatewayURL"]}});
  const json& exchange = spec["exchange"];
  json exchange_env = {{{"name", "BACKSTOP_EXCHANGE_URL"}, {"value", exchange.value("baseURL", "https://api.binance.com")}},
                       {{"name", "BACKSTOP_EXCHANGE_API_KEY"},
                        {"valueFrom", {{"secretKeyRef", {{"name", exchange["credentialsSecretRef"]["name"]},
                                                         {"key", exchange["credentialsSecretRef"].value("apiKeyKey", "api-key")}}}}}},
                       {{"name", "BACKSTOP_EXCHANGE_API_SECRET"},
                        {"valueFrom", {{"secretKeyRef", {{"name", exchange["credentialsSecretRef"]["name"]},
                                                         {"key", exchange["credentialsSecretRef"].value("apiSecretKey", "api-secret")}}}}}}};
  const json container_security = {{"runAsNonRoot", true},
                                   {"runAsUser", 10001},
                                   {"readOnlyRootFilesystem", true},
                                   {"allowPrivilegeEscalation", false},
                                   {"capabilities", {{"drop", {"ALL"}}}},
                                   {"seccompProfile", {{"type", "RuntimeDefault"}}}};
  auto container = [&](const std::string& binary, std::vector<std::string> args, json extra_env) {
    json e = env;
    for (auto& item : extra_env) e.push_back(item);
    args.insert(args.end(), shard.begin(), shard.end());
    if (dry_run && binary != "outbox-drain") args.push_back("--dry-run");
    return json{{"name", binary},
                {"image", image_ref},
                {"imagePullPolicy", image.value("pullPolicy", "IfNotPresent")},
                {"command", {"/usr/local/bin/" + binary}},
                {"args", args},
                {"env", e},
                {"securityContext", container_security},
                {"resources", {{"requests", {{"cpu", "50m"}, {"memory", "32Mi"}}}, {"limits", {{"memory", "128Mi"}}}}}};
  };
  auto cronjob = [&](const std::string& component, const std::string& schedule, const json& c, int deadline_seconds) {
    return json{
        {"apiVersion", "batch/v1"},
        {"kind", "CronJob"},
        {"metadata", {{"name", name + "-" + component}, {"namespace", ns}, {"labels", labels(component)},
                      {"ownerReferences", {owner}}}},
        {"spec",
         {{"schedule", schedule},
          {"suspend", suspend},
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
                {"spec", {{"restartPolicy", "Never"},
                          {"automountServiceAccountToken", false},
                          {"securityContext", {{"runAsNonRoot", true}, {"fsGroup", 10001}}},
                          {"containers", {c}}}}}}}}}}}}};
  };

  Desired d;
  const json sm = spec.value("stopMonitor", json::object());
  d.cronjobs.push_back(cronjob("stop-monitor", sm.value("schedule", "* * * * *"),
                               container("stop-monitor",
                                         {"--batch-size=" + std::to_string(sm.value("batchSize", 64)),
                                          "--orders-in-flight=" + std::to_string(sm.value("ordersInFlight", 8)),
                                          "--price-source=" + exchange.value("priceSource", "last"),
                                          "--max-price-age-ms=" +
                                              std::to_string(spec.value("guardrails", json::object()).value("maxPriceAgeMs", 30000))},
                                         exchange_env),
                               55));
  const json trailing = spec.value("trailingStop", json::object());
  if (trailing.value("enabled", true)) {
    d.cronjobs.push_back(cronjob("trailing-stop", trailing.value("schedule", "* * * * *"),
                                 container("trailing-stop", {"--price-source=" + exchange.value("priceSource", "last")},
                                           json::array({exchange_env[0]})),
                                 55));
  } else {
    d.absent.push_back(name + "-trailing-stop");
  }
  const json outbox = spec.value("outboxDrain", json::object());
  if (outbox.value("enabled", false)) {
    if (!spec.contains("rabbitmq")) throw InvalidSpec("outboxDrain.enabled needs spec.rabbitmq (the broker Secret)");
    d.cronjobs.push_back(cronjob("outbox-drain", outbox.value("schedule", "* * * * *"),
                                 container("outbox-drain",
                                           {"--once", "--exchange=" + outbox.value("exchange", "stop_events"),
                                            "--max-retries=" + std::to_string(outbox.value("maxRetries", 10))},
                                           json::array({env_from_secret("BACKSTOP_AMQP_URL",
                                                                        spec["rabbitmq"]["secretRef"], "url")})),
                                 55));
  } else {
    d.absent.push_back(name + "-outbox-drain");
  }
  const json stream = spec.value("stream", json::object());
  if (stream.value("enabled", false)) {
    json c = container("stop-monitor", {"--stream"}, exchange_env);
    if (stream.contains("url")) c["env"].push_back({{"name", "BACKSTOP_STREAM_URL"}, {"value", stream["url"]}});
    json pod = {{"automountServiceAccountToken", false},
                {"securityContext", {{"runAsNonRoot", true}, {"fsGroup", 10001}}},
                {"containers", json::array({c})}};
    json selector = {{"matchLabels", {{"app.kubernetes.io/instance", name}, {"app.kubernetes.io/component", "stream"}}}};
    json deployment_spec = {{"replicas", suspend ? 0 : 1},
                            {"strategy", {{"type", "Recreate"}}},  // never two streams at once
                            {"selector", selector},
                            {"template", {{"metadata", {{"labels", labels("stream")}}}, {"spec", pod}}}};
    json metadata = {{"name", name + "-stream"}, {"namespace", ns}, {"labels", labels("stream")},
                     {"ownerReferences", json::array({owner})}};
    d.deployments.push_back(
        {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", metadata}, {"spec", deployment_spec}});
  } else {
    d.absent.push_back(name + "-stream");
  }
  return d;
}

}  // namespace backstop::controller
