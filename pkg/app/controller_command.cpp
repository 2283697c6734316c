#include "app/controller_command.h"

#include <httplib.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <thread>

#include "app/probe_server.h"
#include "controller/manager.h"
#include "kube/client.h"
#include "kube/config.h"
#include "kube/events.h"
#include "metrics/build_info.h"
#include "metrics/monitoring_collector.h"
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

}  // namespace

void ControllerCommand::add_to(CLI::App& app) {
  app.add_option("--kubeconfig", kubeconfig_,
                 "kubeconfig file (outside a cluster; default KUBECONFIG or ~/.kube/config)");
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
  app.add_option("--allowed-images", allowed_images_,
                 "images StopMonitors may run: repositories (any tag) or prefixes ending in /*, comma-separated "
                 "(default: any image; creating a StopMonitor then lets its author run any image with its Secrets)")
      ->delimiter(',');
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
  try {
    options.images = controller::ImagePolicy(allowed_images_);
  } catch (const std::invalid_argument& e) {
    throw runtime::UsageError(std::string("--allowed-images: ") + e.what());
  }
  if (options.images.unrestricted()) {
    log::warn("no --allowed-images: StopMonitors may run any image, with the Secrets they name",
              {{"hint", "set --allowed-images (chart: controller.allowedImages) to the images you trust"}});
  }

  const std::atomic<bool>& stop_requested = runtime::install_stop_signals();
  auto client = kube::make_client(config, std::chrono::seconds(request_timeout_s_));
  kube::EventRecorder events(*client, "backstop-controller", options.identity);

  auto registry = std::make_shared<prometheus::Registry>();
  controller::ControllerMetrics metrics(*registry);
  metrics::register_build_info(*registry);
  std::unique_ptr<metrics::DatabaseCollectable> database;
  if (!no_database_metrics_) database = std::make_unique<metrics::DatabaseCollectable>(common.database_url);

  controller::Manager manager(*client, options, metrics, &events);

  // /metrics and the probes are served by cpp-httplib, one HTTP server library
  // in the process (the Exposer of prometheus-cpp would bring civetweb): the
  // registry and the database gauges collected at each scrape, in the text format.
  // The database gauges come from the leader only: with two replicas both read
  // the same database, and a standby's copy would double every sum over them
  // (and its queries load the database for nothing). Collected per scrape, they
  // leave a standby's /metrics the moment it stops leading, so Prometheus ends
  // its series at once (a staleness marker), not five minutes later. The
  // controller's own metrics are served by both.
  httplib::Server metrics_server;
  metrics_server.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
    std::vector<prometheus::MetricFamily> families = registry->Collect();
    std::string standby_note;
    if (database && manager.leading()) {
      std::vector<prometheus::MetricFamily> gauges = database->Collect();
      families.insert(families.end(), std::make_move_iterator(gauges.begin()), std::make_move_iterator(gauges.end()));
    } else if (database) {
      standby_note =
          "# The database gauges (backstop_outbox_*, backstop_events_total, backstop_executions*, "
          "backstop_circuit_breaker_*, backstop_kill_switch_engaged, backstop_database_*) are served by the leader "
          "only: this controller is a standby (backstop_controller_leader 0).\n";
    }
    res.set_content(standby_note + prometheus::TextSerializer().Serialize(families),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
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
  // Both bound before either listens: a bind error then leaves no thread behind.
  const int bound_metrics = bind_server(metrics_server, metrics_bind_, "--metrics-bind-address");
  const int bound_health = bind_server(probes, health_bind_, "--health-probe-bind-address");
  std::thread metrics_thread([&] { metrics_server.listen_after_bind(); });
  std::thread probe_thread([&] { probes.listen_after_bind(); });

  log::info("controller starting", {{"api", config.server},
                                    {"config", config.source},
                                    {"identity", options.identity},
                                    {"lease", options.lease_namespace + "/" + options.lease_name},
                                    {"namespace", watch_namespace_.empty() ? std::string("(all)") : watch_namespace_},
                                    {"metrics_port", bound_metrics},
                                    {"health_port", bound_health}});
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
  metrics_server.stop();
  metrics_thread.join();
  return runtime::ExitCode::kOk;
}

}  // namespace backstop::app
