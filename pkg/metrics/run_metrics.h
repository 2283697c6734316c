// Run metrics of a batch binary: a CronJob exits before any scrape, so when a
// Pushgateway URL is configured the run's figures are pushed (POST: a failed
// run keeps the previous last-success timestamp). A grouping label value the
// URL path cannot carry as is (the controller's instance "<namespace>/<name>",
// an empty value) travels base64url-encoded, as the Pushgateway's API asks.
// A failed push is logged on stderr and reported in the run summary, never on
// stdout (a --json run prints one line) and it never changes the exit code.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

namespace backstop::metrics {

struct PushTarget {
  std::string base_url;  // http://host:port
  std::string job = "backstop_stop_monitor";
  std::map<std::string, std::string> labels;  // grouping labels, e.g. instance: the monitor's shard
};

// "http://host:port" → target; throws runtime::UsageError naming the problem.
PushTarget parse_pushgateway_url(const std::string& url);

// The path of a grouping: /metrics/job/<job>{/<label>/<value>}, where a job or
// value that is empty or holds anything but [A-Za-z0-9._~-] is written
// <label>@base64/<base64url, unpadded> (an empty one as "@base64/=").
[[nodiscard]] std::string grouping_path(const std::string& job, const std::map<std::string, std::string>& labels);

// One gauge of a run: <prefix>_<name>{labels} = value.
struct RunFigure {
  std::string name;
  std::string help;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// What became of one push.
struct PushOutcome {
  int status = 0;     // the gateway's HTTP status; 0: no answer
  std::string error;  // empty after a 2xx; else "HTTP 400: <body>" or why there was no answer
  [[nodiscard]] bool ok() const { return error.empty(); }
};

// The pushes of one process so far, as its run summary reports them.
struct PushRecord {
  std::int64_t failures = 0;
  std::string last_error;
  void add(const PushOutcome& outcome);
};

// Pushes `figures` and <prefix>_last_run_{duration_seconds,success,timestamp_seconds}
// (and _last_success_timestamp_seconds after a success), with
// backstop_build_info (metrics/build_info.h), to target.job. A
// failure is logged (warning, with the status and the gateway's answer).
[[nodiscard]] PushOutcome push_run_figures(const PushTarget& target, const std::string& prefix,
                                           const std::vector<RunFigure>& figures, bool success, double run_seconds);

// The summary's push fields, present only when the run pushes:
// metrics_push_failures (0 when every push went through) and
// metrics_push_error (the last failure).
void add_push_fields(nlohmann::json& summary, const PushRecord* pushes);
// The same as a line of the text summary ("" when no push failed).
[[nodiscard]] std::string push_text(const PushRecord* pushes);

}  // namespace backstop::metrics
