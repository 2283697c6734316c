// `controller`: reconciles StopMonitor resources into CronJobs (and the
// optional --stream Deployment), with leader election, Prometheus metrics on
// /metrics and the probes /healthz and /readyz.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "runtime/cli.h"
#include "runtime/exit_code.h"

namespace backstop::app {

class ControllerCommand {
 public:
  void add_to(CLI::App& app);
  runtime::ExitCode run(const runtime::CommonOptions& common);

 private:
  std::string kubeconfig_;
  std::string context_;
  std::string watch_namespace_;
  std::string lease_namespace_;
  std::string lease_name_ = "backstop-controller";
  std::string identity_;
  std::string metrics_bind_ = "0.0.0.0:8080";
  std::string health_bind_ = "0.0.0.0:8081";
  std::string ports_file_;
  std::vector<std::string> allowed_images_;
  bool no_database_metrics_ = false;
  int workers_ = 4;
  int lease_duration_s_ = 15;
  int renew_deadline_ms_ = 10000;
  int retry_period_ms_ = 2000;
  int resync_s_ = 600;
  int watch_window_s_ = 300;
  int request_timeout_s_ = 30;
};

}  // namespace backstop::app
