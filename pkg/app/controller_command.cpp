#include "app/controller_command.h"

#include <httplib.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <thread>

#include "controller/manager.h"
#include "kube/client.h"
#include "kube/config.h"
#include "kube/events.h"
#include "monitor/monitoring_collector.h"
#include "runtime/log.h"
#include "runtime/stop.h"

extern char** environ;

namespace backstop::app {
namespace {

std::map<std::string, std::string> environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

std::pair<std::string, int> host_port(const std::string& bind, const char* flag) {
  const auto colon = bind.rfind(':');
  try {
    if (colon == std::string::npos) throw std::invalid_argument("no port");
    return {bind.substr(0, colon).empty() ? "0.0.0.0" : bind.substr(0, colon), std::stoi(bind.substr(colon + 1))};
  } catch (const std::exception&) {
    throw runtime::UsageError(std::string(flag) + ": expected HOST:PORT, got '" + bind + "'");
  }
}

}  // namespace

void ControllerCommand::add_to(CLI::App& app) {
  app.add_option("--kubeconfig", kubeconfig_, "kubeconfig file (outside a cluster; default KUBECONFIG or ~/.kube/config)");
  app.add_option("--context", context_, "kubeconfig context (default: its current-context)");
  app.add_option("--namespace", watch_namespace_, "reconcile StopMonitors of this namespace only (default: all)")
      ->envname("BACKSTOP_WATCH_NAMESPACE");
  app.add_option("--lease-namespace", lease_namespace_,
                 "namespace of the leader-election Lease (default: POD_NAMESPACE, else the config's namespace)")
      ->envname("POD_NAMESPACE");
  app.add_option("--lease-name", lease_name_, "name of the leader-election Lease")->capture_default_str();
  app.add_option("--identity", identity_, "this controller in the Lease (default: POD_NAME, else host and pid)")
      ->envname("POD_NAME");
  app.add_option("--metrics-bind-address", metrics_bind_, "where /metrics is served (HOST:PORT; port 0: any)")
      ->capture_default_str();
  app.add_option("--health-probe-bind-address", health_bind_, "where /healthz and /readyz are served (HOST:PORT)")
      ->capture_default_str();
  app.add_option("--ports-file", ports_file_, "write the bound ports here (metrics=N, health=N) once listening");
  app.add_flag("--no-database-metrics", no_database_metrics_,
               "do not export the database-derived gauges (outbox, breakers, executions, kill switches)");
  app.add_option("--workers", workers_, "reconciles run in parallel")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--lease-duration", lease_duration_s_, "seconds a standby waits before taking an unrenewed lease")
      ->check(CLI::Range(2, 3600))
      ->capture_default_str();
  app.add_option("--renew-deadline-ms", renew_deadline_ms_, "the leader stops if it could not renew for this long")
      ->check(CLI::Range(100, 3600000))
      ->capture_default_str();
  app.add_option("--retry-period-ms", retry_period_ms_, "interval of lease acquire / renew attempts")
      ->check(CLI::Range(50, 600000))
      ->capture_default_str();
  app.add_option("--resync", resync_s_, "seconds between full relists (every StopMonitor reconciled again)")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  app.add_option("--watch-window", watch_window_s_, "timeoutSeconds of each watch request")
      ->check(CLI::Range(1, 600))
      ->capture_default_str();
  app.add_option("--request-timeout", request_timeout_s_, "seconds before an API request is given up")
      ->check(CLI::Range(1, 600))
      ->capture_default_str();
}

runtime::ExitCode ControllerCommand::run(const runtime::CommonOptions& common) {
  auto env = environment();
  kube::KubeConfig config;
  try {
    if (!kubeconfig_.empty()) {
      config = kube::from_kubeconfig(kubeconfig_, context_);
    } else if (!context_.empty()) {
      env.erase("KUBERNETES_SERVICE_HOST");  // a context names a kubeconfig entry
      const auto kc = env.count("KUBECONFIG") != 0 ? env["KUBECONFIG"] : env["HOME"] + "/.kube/config";
      config = kube::from_kubeconfig(kc.substr(0, kc.find(':')), context_);
    } else {
      config = kube::load(env);
    }
  } catch (const kube::ConfigError& e) {
    throw runtime::UsageError(e.what());
  }
  if (renew_deadline_ms_ >= lease_duration_s_ * 1000) {
    throw runtime::UsageError("--renew-deadline-ms must be shorter than --lease-duration");
  }
  controller::ManagerOptions options;
  options.identity = identity_;
  if (options.identity.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    options.identity = std::string(host) + "_" + std::to_string(getpid());
  }
  options.lease_namespace = lease_namespace_.empty() ? config.namespace_name : lease_namespace_;
  options.lease_name = lease_name_;
  options.lease_duration = std::chrono::seconds(lease_duration_s_);
  options.renew_deadline = std::chrono::milliseconds(renew_deadline_ms_);
  options.retry_period = std::chrono::milliseconds(retry_period_ms_);
  options.watch_namespace = watch_namespace_;
  options.workers = workers_;
  options.resync = std::chrono::seconds(resync_s_);
  options.watch_window = std::chrono::seconds(watch_window_s_);

  const std::atomic<bool>& stop_requested = runtime::install_stop_signals();
  auto client = kube::make_client(config, std::chrono::seconds(request_timeout_s_));
  kube::EventRecorder events(*client, "backstop-controller", options.identity);

  auto registry = std::make_shared<prometheus::Registry>();
  controller::ControllerMetrics metrics(*registry);
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(metrics_bind_);
  } catch (const std::exception& e) {
    throw runtime::UsageError("--metrics-bind-address " + metrics_bind_ + ": cannot listen: " + e.what());
  }
  exposer->RegisterCollectable(registry);
  std::shared_ptr<monitor::DatabaseCollectable> database;
  if (!no_database_metrics_) {
    database = std::make_shared<monitor::DatabaseCollectable>(common.database_url);
    exposer->RegisterCollectable(database);
  }

  controller::Manager manager(*client, options, metrics, &events);
  httplib::Server probes;
  probes.Get("/healthz", [&](const httplib::Request&, httplib::Response& res) {
    const bool ok = manager.healthy();
    res.status = ok ? 200 : 500;
    res.set_content(ok ? "ok\n" : "the election loop is stuck\n", "text/plain");
  });
  probes.Get("/readyz", [&](const httplib::Request&, httplib::Response& res) {
    const bool ok = manager.ready();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? "ok\n" : "not ready: the API server has not answered recently or the caches are not synced\n",
                    "text/plain");
  });
  const auto [health_host, health_port] = host_port(health_bind_, "--health-probe-bind-address");
  const int bound_health =
      health_port == 0 ? probes.bind_to_any_port(health_host) : (probes.bind_to_port(health_host, health_port) ? health_port : -1);
  if (bound_health < 0) throw runtime::UsageError("--health-probe-bind-address " + health_bind_ + ": cannot listen");
  std::thread probe_thread([&] { probes.listen_after_bind(); });

  const auto metrics_ports = exposer->GetListeningPorts();
  const int bound_metrics = metrics_ports.empty() ? -1 : metrics_ports.front();
  log::info("controller starting",
            {{"api", config.server}, {"config", config.source}, {"identity", options.identity},
             {"lease", options.lease_namespace + "/" + options.lease_name},
             {"namespace", watch_namespace_.empty() ? std::string("(all)") : watch_namespace_},
             {"metrics_port", bound_metrics}, {"health_port", bound_health}});
  if (!ports_file_.empty()) {
    std::ofstream(ports_file_ + ".tmp") << "metrics=" << bound_metrics << "\nhealth=" << bound_health << "\n";
    std::rename((ports_file_ + ".tmp").c_str(), ports_file_.c_str());
  }

  std::jthread loop([&](std::stop_token stop) { manager.run(stop); });
  while (!stop_requested) runtime::sleep_unless_stopped(std::chrono::seconds(1));
  log::info("stopping: releasing the lease", {{"identity", options.identity}});
  loop.request_stop();
  loop.join();
  probes.stop();
  probe_thread.join();
  return runtime::ExitCode::kOk;
}

}  // namespace backstop::app
