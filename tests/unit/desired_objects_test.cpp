// What a StopMonitor owns: the CronJobs (and the --stream Deployment) it
// should have, with the safety settings every one of them needs.
#include <gtest/gtest.h>

#include "controller/desired.h"

namespace backstop::controller {
namespace {

json monitor() {
  return json::parse(R"({
    "apiVersion": "backstop.dev/v1alpha1", "kind": "StopMonitor",
    "metadata": {"name": "desk-a", "namespace": "trading", "uid": "0e6f9f7c-1111-4222-8333-944455556666", "generation": 3},
    "spec": {"tenants": [1, 2], "suspend": false, "dryRun": false,
             "stopMonitor": {"schedule": "* * * * *", "batchSize": 64, "ordersInFlight": 8},
             "trailingStop": {"enabled": true, "schedule": "*/2 * * * *"},
             "outboxDrain": {"enabled": true, "schedule": "* * * * *", "exchange": "stop_events", "maxRetries": 10},
             "exchange": {"baseURL": "https://api.binance.com", "priceSource": "last",
                          "credentialsSecretRef": {"name": "desk-a-binance", "apiKeyKey": "api-key", "apiSecretKey": "api-secret"}},
             "database": {"secretRef": {"name": "backstop-postgres", "key": "url"}},
             "rabbitmq": {"secretRef": {"name": "backstop-rabbitmq", "key": "url"}},
             "image": {"repository": "ghcr.io/backstop/backstop", "tag": "1.2.3", "pullPolicy": "IfNotPresent"}}
  })");
}

const json* find_env(const json& container, const std::string& name) {
  for (const auto& e : container["env"]) {
    if (e["name"] == name) return &e;
  }
  return nullptr;
}

TEST(DesiredObjects, FourCronJobsWithTheSafetySettings) {
  const Desired d = desired_objects(parse_stop_monitor(monitor()));
  ASSERT_EQ(d.cronjobs.size(), 4u);
  EXPECT_TRUE(d.deployments.empty());
  EXPECT_EQ(d.absent, std::vector<std::string>{"desk-a-stream"});
  std::vector<std::string> names;
  for (const json& cj : d.cronjobs) {
    names.push_back(cj["metadata"]["name"]);
    EXPECT_EQ(cj["metadata"]["namespace"], "trading");
    EXPECT_EQ(cj["metadata"]["ownerReferences"][0]["uid"], "0e6f9f7c-1111-4222-8333-944455556666");
    EXPECT_EQ(cj["metadata"]["ownerReferences"][0]["controller"], true);
    EXPECT_EQ(cj["metadata"]["labels"]["app.kubernetes.io/instance"], "desk-a");
    EXPECT_EQ(cj["spec"]["concurrencyPolicy"], "Forbid");
    EXPECT_GT(cj["spec"]["startingDeadlineSeconds"].get<int>(), 0);
    EXPECT_EQ(cj["spec"]["jobTemplate"]["spec"]["backoffLimit"], 0);
    EXPECT_LT(cj["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"].get<int>(),
              60);  // done before the next minute
    const json& pod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    EXPECT_EQ(pod["restartPolicy"], "Never");
    const json& c = pod["containers"][0];
    EXPECT_EQ(c["image"], "ghcr.io/backstop/backstop:1.2.3");
    EXPECT_EQ(c["securityContext"]["runAsNonRoot"], true);
    EXPECT_EQ(c["securityContext"]["readOnlyRootFilesystem"], true);
    EXPECT_EQ(c["securityContext"]["allowPrivilegeEscalation"], false);
    EXPECT_EQ(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    ASSERT_NE(find_env(c, "BACKSTOP_DATABASE_URL"), nullptr);
    EXPECT_EQ((*find_env(c, "BACKSTOP_DATABASE_URL"))["valueFrom"]["secretKeyRef"]["name"], "backstop-postgres");
    // The shard: only its tenants; outbox-drain has no shard (it drains the whole outbox).
    if (c["name"] == "outbox-drain") {
      EXPECT_EQ(c["args"].dump().find("--tenant"), std::string::npos) << c["args"].dump();
    } else {
      EXPECT_NE(c["args"].dump().find("--tenant=1,2"), std::string::npos) << c["args"].dump();
    }
    // Never a secret value in the object.
    EXPECT_EQ(cj.dump().find("api-secret\":\""), std::string::npos);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"desk-a-stop-monitor", "desk-a-trailing-stop", "desk-a-reconcile",
                                             "desk-a-outbox-drain"}));
  const json& stop = d.cronjobs[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ((*find_env(stop, "BACKSTOP_EXCHANGE_API_SECRET"))["valueFrom"]["secretKeyRef"],
            json({{"name", "desk-a-binance"}, {"key", "api-secret"}}));
  EXPECT_EQ(d.cronjobs[1]["spec"]["schedule"], "*/2 * * * *");
  // Issue 13: reconcile reads the account (the exchange Secret), takes the
  // tenants but never --symbol (the binary has no such flag), and its settings.
  const json& reconcile = d.cronjobs[2]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(reconcile["command"][0], "/usr/local/bin/reconcile");
  EXPECT_EQ(reconcile["args"], json({"--grace-ms=30000", "--max-closures-pct=50", "--tenant=1,2"}));
  EXPECT_EQ((*find_env(reconcile, "BACKSTOP_EXCHANGE_API_KEY"))["valueFrom"]["secretKeyRef"]["name"], "desk-a-binance");
  EXPECT_EQ(d.cronjobs[2]["spec"]["schedule"], "*/2 * * * *");
  const json& drain = d.cronjobs[3]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(drain["args"][0], "--once");
  EXPECT_EQ((*find_env(drain, "BACKSTOP_AMQP_URL"))["valueFrom"]["secretKeyRef"]["name"], "backstop-rabbitmq");
  EXPECT_EQ(find_env(drain, "BACKSTOP_EXCHANGE_API_SECRET"), nullptr);  // least privilege
}

TEST(DesiredObjects, SuspendDryRunDisabledComponentsAndStream) {
  json m = monitor();
  m["spec"]["suspend"] = true;
  m["spec"]["dryRun"] = true;
  m["spec"]["trailingStop"]["enabled"] = false;
  m["spec"]["outboxDrain"]["enabled"] = false;
  m["spec"]["reconcile"] = {{"enabled", false}};
  m["spec"]["stream"] = {{"enabled", true}, {"url", "wss://stream.binance.com:9443"}};
  const Desired d = desired_objects(parse_stop_monitor(m));
  ASSERT_EQ(d.cronjobs.size(), 1u);
  EXPECT_EQ(d.cronjobs[0]["spec"]["suspend"], true);
  EXPECT_NE(d.cronjobs[0].dump().find("--dry-run"), std::string::npos);
  EXPECT_EQ(d.absent, (std::vector<std::string>{"desk-a-trailing-stop", "desk-a-reconcile", "desk-a-outbox-drain"}));
  ASSERT_EQ(d.deployments.size(), 1u);
  EXPECT_EQ(d.deployments[0]["metadata"]["name"], "desk-a-stream");
  EXPECT_EQ(d.deployments[0]["spec"]["replicas"], 0);  // suspended
  EXPECT_NE(d.deployments[0].dump().find("--stream"), std::string::npos);
  // Issue 12, item 6: the stream is probed: live while its loops come round,
  // ready while its REST passes read prices, on the port the process serves.
  const json& c = d.deployments[0]["spec"]["template"]["spec"]["containers"][0];
  EXPECT_NE(c["args"].dump().find("\"--health-probe-bind-address=0.0.0.0:8081\""), std::string::npos) << c["args"];
  EXPECT_EQ(c["ports"][0]["name"], "health");
  EXPECT_EQ(c["ports"][0]["containerPort"], 8081);
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"], "/healthz");
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["port"], "health");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"], "/readyz");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["port"], "health");
}

// What the controller tells the alerts to expect at the Pushgateway: the
// groupings the CronJobs push, under the instance they are given.
TEST(DesiredObjects, PushedRunMetricsAreTheCronJobsThatPush) {
  json m = monitor();
  EXPECT_TRUE(pushed_run_metrics(parse_stop_monitor(m)).empty());  // no pushgatewayURL: nothing pushed
  m["spec"]["pushgatewayURL"] = "http://pushgateway.monitoring:9091";
  auto jobs = [](const std::vector<PushedRunMetrics>& pushed) {
    std::vector<std::string> out;
    for (const auto& p : pushed) out.push_back(p.job + " " + p.instance);
    return out;
  };
  EXPECT_EQ(jobs(pushed_run_metrics(parse_stop_monitor(m))),
            (std::vector<std::string>{"backstop_stop_monitor trading/desk-a", "backstop_trailing_stop trading/desk-a",
                                      "backstop_reconcile trading/desk-a", "backstop_outbox_drain trading/desk-a"}));
  m["spec"]["dryRun"] = true;  // the price binaries push nothing in a dry run; outbox-drain has none
  EXPECT_EQ(jobs(pushed_run_metrics(parse_stop_monitor(m))),
            (std::vector<std::string>{"backstop_outbox_drain trading/desk-a"}));
  m["spec"]["suspend"] = true;
  EXPECT_TRUE(pushed_run_metrics(parse_stop_monitor(m)).empty());
}

TEST(DesiredObjects, ReconcileSettingsReachTheCronJob) {
  json m = monitor();
  m["spec"]["symbols"] = {"BTCUSDT"};
  m["spec"]["dryRun"] = true;
  m["spec"]["reconcile"] = {{"account", "desk-a/binance-main"},
                            {"graceSeconds", 120},
                            {"cancelOrphans", true},
                            {"maxClosuresPct", 20},
                            {"schedule", "*/5 * * * *"}};
  const Desired d = desired_objects(parse_stop_monitor(m));
  const json* reconcile = nullptr;
  for (const json& cj : d.cronjobs) {
    if (cj["metadata"]["name"] == "desk-a-reconcile") reconcile = &cj;
  }
  ASSERT_NE(reconcile, nullptr);
  EXPECT_EQ((*reconcile)["spec"]["schedule"], "*/5 * * * *");
  EXPECT_EQ((*reconcile)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"],
            json({"--grace-ms=120000", "--max-closures-pct=20", "--account=desk-a/binance-main", "--cancel-orphans",
                  "--dry-run"}));  // a named account is reconciled whole: no --tenant
  m["spec"]["reconcile"]["account"] = "two words";
  try {
    (void)parse_stop_monitor(m);
    FAIL();
  } catch (const InvalidSpec& e) {
    EXPECT_NE(std::string(e.what()).find("spec.reconcile.account"), std::string::npos) << e.what();
  }
  m["spec"]["reconcile"]["account"] = "ok";
  m["spec"]["reconcile"]["maxClosuresPct"] = 101;
  EXPECT_THROW((void)parse_stop_monitor(m), InvalidSpec);
}

// Issue 13, step 10: with the stream and reconcile on, the stream's pod runs
// reconcile --stream beside stop-monitor --stream, in a container (a process)
// of its own, probed on its own port, with the reconcile settings and the
// WebSocket API URL; without reconcile, no such container.
TEST(DesiredObjects, StreamHasReconcileContainer) {
  json m = monitor();
  m["spec"]["stream"] = {{"enabled", true}};
  m["spec"]["exchange"]["wsApiURL"] = "wss://ws-api.testnet.binance.vision/ws-api/v3";
  m["spec"]["reconcile"] = {{"graceSeconds", 45}};
  Desired d = desired_objects(parse_stop_monitor(m));
  ASSERT_EQ(d.deployments.size(), 1u);
  const json& containers = d.deployments[0]["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(containers.size(), 2u);
  const json& r = containers[1];
  EXPECT_EQ(r["name"], "reconcile");
  EXPECT_EQ(r["command"], json({"/usr/local/bin/reconcile"}));
  EXPECT_EQ(r["args"], json({"--stream", "--interval=60", "--health-probe-bind-address=0.0.0.0:8082",
                             "--grace-ms=45000", "--max-closures-pct=50", "--tenant=1,2"}));
  const json* url = find_env(r, "BACKSTOP_WS_API_URL");
  ASSERT_NE(url, nullptr);
  EXPECT_EQ((*url)["value"], "wss://ws-api.testnet.binance.vision/ws-api/v3");
  ASSERT_NE(find_env(r, "BACKSTOP_EXCHANGE_API_SECRET"), nullptr);
  EXPECT_EQ(r["ports"][0]["containerPort"], 8082);
  EXPECT_LE(r["ports"][0]["name"].get<std::string>().size(), 15u);  // an IANA service name
  EXPECT_EQ(r["livenessProbe"]["httpGet"]["port"], r["ports"][0]["name"]);
  EXPECT_EQ(r["readinessProbe"]["httpGet"]["port"], r["ports"][0]["name"]);
  EXPECT_EQ(containers[0]["livenessProbe"]["httpGet"]["port"], "health");  // stop-monitor's own
  EXPECT_EQ(parse_stop_monitor(m).spec.exchange.ws_api_url, "wss://ws-api.testnet.binance.vision/ws-api/v3");

  m["spec"]["reconcile"]["enabled"] = false;
  d = desired_objects(parse_stop_monitor(m));
  EXPECT_EQ(d.deployments[0]["spec"]["template"]["spec"]["containers"].size(), 1u);
}

TEST(DesiredObjects, InvalidSpecsSayWhat) {
  json m = monitor();
  m["spec"].erase("rabbitmq");
  try {
    (void)parse_stop_monitor(m);
    FAIL();
  } catch (const InvalidSpec& e) {
    EXPECT_NE(std::string(e.what()).find("spec.rabbitmq"), std::string::npos);
  }
  m = monitor();
  m["spec"]["exchange"].erase("credentialsSecretRef");
  EXPECT_THROW((void)parse_stop_monitor(m), InvalidSpec);
}

}  // namespace
}  // namespace backstop::controller
