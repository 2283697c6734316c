// Run metrics of a batch binary: a CronJob exits before any scrape, so when a
// Pushgateway URL is configured the run's figures are pushed with
// prometheus-cpp's push client (POST: a failed run keeps the previous
// last-success timestamp). A push failure is logged, never fails the run.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace backstop::metrics {

struct PushTarget {
  std::string host;
  std::string port;
  std::string job = "backstop_stop_monitor";
  std::map<std::string, std::string> labels;  // grouping labels, e.g. the monitor's shard
};

// "http://host:port" → target; throws runtime::UsageError naming the problem.
PushTarget parse_pushgateway_url(const std::string& url);

// One gauge of a run: <prefix>_<name>{labels} = value.
struct RunFigure {
  std::string name;
  std::string help;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Pushes `figures` and <prefix>_last_run_{duration_seconds,success,timestamp_seconds}
// (and _last_success_timestamp_seconds after a success) to target.job.
// Returns the HTTP status (200 on success) or -1 when the gateway was unreachable.
int push_run_figures(const PushTarget& target, const std::string& prefix, const std::vector<RunFigure>& figures,
                     bool success, double run_seconds);

}  // namespace backstop::metrics
