// Run metrics of the controller-made jobs: each CronJob the controller makes
// for a StopMonitor, run as Kubernetes would run it (its command, arguments and
// environment, the Secrets' keys filled in) against a real Pushgateway, must
// arrive under instance "<namespace>/<name>"; a push that fails must leave a
// --json run's stdout one JSON line, be counted there and logged on stderr,
// and leave the exit code to the trading work.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "controller/desired.h"
#include "support/pg.h"
#include "support/process.h"
#include "support/pushgateway.h"
#include "support/rabbit.h"
#include "support/sim.h"

namespace backstop::testing {
namespace {

using nlohmann::json;

class RunMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db.migrate();
    sim.btc_eth_markets("95000", "");
    sim.prices({{"BTCUSDT", "95000"}});
  }

  // A StopMonitor trading/desk-a with all three CronJobs, pushing to `pushgateway_url`.
  json stop_monitor(const std::string& pushgateway_url) const {
    return {
        {"apiVersion", "backstop.dev/v1alpha1"},
        {"kind", "StopMonitor"},
        {"metadata", {{"name", "desk-a"}, {"namespace", "trading"}, {"uid", "00000000-0000-4000-8000-00000000000a"}}},
        {"spec",
         {{"tenants", {1, 2}},
          {"trailingStop", {{"enabled", true}}},
          {"outboxDrain", {{"enabled", true}}},
          {"exchange", {{"baseURL", sim.url()}, {"credentialsSecretRef", {{"name", "desk-a-binance"}}}}},
          {"database", {{"secretRef", {{"name", "backstop-postgres"}}}}},
          {"rabbitmq", {{"secretRef", {{"name", "backstop-rabbitmq"}}}}},
          {"pushgatewayURL", pushgateway_url}}}};
  }

  // The controller's CronJob for `component`, run once: its container's
  // command and arguments, its environment with each Secret key's value as
  // this test's servers have it; `more` arguments after the controller's.
  ProcessResult run_cronjob(const json& monitor, const std::string& component,
                            const std::vector<std::string>& more = {}) const {
    const controller::Desired desired = controller::desired_objects(controller::parse_stop_monitor(monitor));
    for (const json& cronjob : desired.cronjobs) {
      if (cronjob["metadata"]["labels"]["app.kubernetes.io/component"] != component) continue;
      const json& container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
      const std::string command = container["command"][0];
      std::vector<std::string> argv = {binary(command.substr(command.rfind('/') + 1))};
      for (const json& arg : container["args"]) argv.push_back(arg);
      argv.insert(argv.end(), more.begin(), more.end());
      Env env;
      for (const json& variable : container["env"]) {
        const std::string name = variable["name"];
        if (variable.contains("value")) {
          env.emplace_back(name, variable["value"]);
        } else {
          env.emplace_back(name, secret(variable["valueFrom"]["secretKeyRef"]["name"],
                                        variable["valueFrom"]["secretKeyRef"]["key"]));
        }
      }
      return run(argv, env);
    }
    ADD_FAILURE() << "no CronJob " << component;
    return {};
  }

  std::string secret(const std::string& name, const std::string& key) const {
    const Env exchange = sim.env();
    auto of = [&](const std::string& variable) {
      for (const auto& [n, v] : exchange) {
        if (n == variable) return v;
      }
      return std::string();
    };
    if (name == "backstop-postgres") return db.url();
    if (name == "backstop-rabbitmq") return rabbit.url();
    if (name == "desk-a-binance" && key == "api-key") return of("BACKSTOP_EXCHANGE_API_KEY");
    if (name == "desk-a-binance" && key == "api-secret") return of("BACKSTOP_EXCHANGE_API_SECRET");
    ADD_FAILURE() << "unexpected Secret key " << name << "/" << key;
    return "";
  }

  TestDatabase db;
  SimServer sim;
  RabbitNode rabbit;
};

constexpr const char* kJobs[][2] = {{"stop-monitor", "backstop_stop_monitor"},
                                    {"trailing-stop", "backstop_trailing_stop"},
                                    {"outbox-drain", "backstop_outbox_drain"}};

TEST_F(RunMetricsTest, ControllerMadeCronJobsPushUnderTheirNamespaceAndName) {
  const Pushgateway gateway;
  const json monitor = stop_monitor(gateway.url());
  for (const auto& [component, job] : kJobs) {
    const ProcessResult r = run_cronjob(monitor, component);
    ASSERT_EQ(r.exit_code, 0) << component << "\n" << r.out << "\n" << r.err.substr(0, 3000);
    EXPECT_EQ(r.err.find("could not push run metrics"), std::string::npos) << component << "\n" << r.err;
    const std::string metrics = gateway.metrics();
    for (const std::string series : {"_last_run_success", "_last_success_timestamp_seconds"}) {
      const std::string line = std::string(job) + series + "{instance=\"trading/desk-a\",job=\"" + job + "\"} ";
      EXPECT_NE(metrics.find(line), std::string::npos) << line << "\n" << metrics.substr(0, 4000);
    }
    EXPECT_NE(metrics.find(std::string(job) + "_last_run_success{instance=\"trading/desk-a\",job=\"" + job + "\"} 1"),
              std::string::npos)
        << metrics.substr(0, 4000);
  }
}

// Each run says which build ran it: backstop_build_info{version, commit} = 1
// beside its figures, the version the binary's --version prints.
TEST_F(RunMetricsTest, EveryRunPushesTheBuildInfo) {
  const Pushgateway gateway;
  const json monitor = stop_monitor(gateway.url());
  for (const auto& [component, job] : kJobs) {
    const ProcessResult version = run({binary(component), "--version"});
    ASSERT_EQ(version.exit_code, 0) << component << "\n" << version.err;
    std::smatch printed;  // "<binary> <version> (commit <hash>)" or "<binary> <version>"
    ASSERT_TRUE(std::regex_search(version.out, printed, std::regex("^[a-z-]+ ([0-9][^ \n]*)( \\(commit ([0-9a-f]+))?")))
        << version.out;
    const ProcessResult r = run_cronjob(monitor, component);
    ASSERT_EQ(r.exit_code, 0) << component << "\n" << r.err.substr(0, 3000);
    std::string labels = printed[3].matched ? "commit=\"" + printed[3].str() + "\"," : "";
    labels += "instance=\"trading/desk-a\",job=\"" + std::string(job) + "\",version=\"" + printed[1].str() + "\"";
    const std::string line = "backstop_build_info{" + labels + "} 1";
    EXPECT_NE(gateway.metrics().find(line), std::string::npos) << line << "\n" << gateway.metrics().substr(0, 4000);
  }
}

// A failed run replaces the run's figures but keeps the last success (the
// push is a POST, which replaces only the metrics it sends; a PUT would drop
// the group's last-success timestamp, and the alert would then see a
// StopMonitor that never succeeded).
TEST_F(RunMetricsTest, AFailedRunKeepsTheLastSuccessTimestamp) {
  const Pushgateway gateway;
  ASSERT_EQ(run_cronjob(stop_monitor(gateway.url()), "stop-monitor").exit_code, 0);
  json unreachable_exchange = stop_monitor(gateway.url());
  unreachable_exchange["spec"]["exchange"]["baseURL"] = "http://127.0.0.1:" + std::to_string(free_port());
  const ProcessResult failed = run_cronjob(unreachable_exchange, "stop-monitor");
  EXPECT_EQ(failed.exit_code, 3) << failed.err.substr(0, 2000);
  const std::string metrics = gateway.metrics();
  const std::string group = "{instance=\"trading/desk-a\",job=\"backstop_stop_monitor\"} ";
  EXPECT_NE(metrics.find("backstop_stop_monitor_last_run_success" + group + "0"), std::string::npos)
      << metrics.substr(0, 4000);
  EXPECT_NE(metrics.find("backstop_stop_monitor_last_success_timestamp_seconds" + group), std::string::npos)
      << metrics.substr(0, 4000);
}

// A gateway that answers every push with an error and a body (the exchange
// simulator: 404 and a JSON message), and one that is not there at all.
TEST_F(RunMetricsTest, AFailedPushKeepsStdoutOneJsonLineIsCountedAndLeavesTheExitCode) {
  const std::string refusing = "http://127.0.0.1:" + std::to_string(free_port());
  for (const std::string& gateway : {sim.url(), refusing}) {
    const json monitor = stop_monitor(gateway);
    for (const auto& names : kJobs) {
      const std::string component = names[0];
      const ProcessResult r = run_cronjob(monitor, component, {"--json"});
      const std::string context = component + " pushing to " + gateway;
      EXPECT_EQ(r.exit_code, 0) << context << "\n" << r.err.substr(0, 3000);
      // Exactly one line on stdout, and it is the run's JSON summary.
      ASSERT_FALSE(r.out.empty()) << context;
      EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << context << "\nstdout: " << r.out;
      ASSERT_TRUE(json::accept(r.out)) << context << "\nstdout: " << r.out;
      const json summary = json::parse(r.out);
      EXPECT_EQ(summary.value("metrics_push_failures", -1), 1) << context << "\n" << summary.dump();
      const std::string error = summary.value("metrics_push_error", "");
      if (gateway == sim.url()) {
        EXPECT_EQ(error.rfind("HTTP 404: ", 0), 0u) << context << "\n" << error;
      } else {
        EXPECT_FALSE(error.empty()) << context;
      }
      // Logged on stderr with the status.
      EXPECT_NE(r.err.find("could not push run metrics to the Pushgateway"), std::string::npos) << context << "\n"
                                                                                                << r.err;
      EXPECT_NE(r.err.find(gateway == sim.url() ? "\"status\":404" : "\"status\":0"), std::string::npos)
          << context << "\n"
          << r.err;
    }
  }
}

}  // namespace
}  // namespace backstop::testing
