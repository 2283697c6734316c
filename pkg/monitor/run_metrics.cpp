#include "monitor/run_metrics.h"

#include <prometheus/gateway.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>
#include <regex>

#include "runtime/exit_code.h"
#include "runtime/log.h"

namespace backstop::monitor {

PushTarget parse_pushgateway_url(const std::string& url) {
  static const std::regex pattern(R"(^http://([A-Za-z0-9._-]+|\[[0-9a-fA-F:]+\]):([0-9]{1,5})/?$)");
  std::smatch match;
  if (!std::regex_match(url, match, pattern)) {
    throw runtime::UsageError("invalid Pushgateway URL '" + url + "': expected http://host:port");
  }
  PushTarget target;
  target.host = "http://" + match[1].str();
  target.port = match[2].str();
  return target;
}

int push_run_metrics(const PushTarget& target, const PassSummary& pass, bool success, double run_seconds) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& triggered = prometheus::BuildGauge()
                        .Name("backstop_stop_monitor_last_run_triggers")
                        .Help("Stops and targets found crossed in the last run")
                        .Register(*registry);
  triggered.Add({}).Set(static_cast<double>(pass.triggered));
  auto& executions = prometheus::BuildGauge()
                         .Name("backstop_stop_monitor_last_run_executions")
                         .Help("Exits of the last run by outcome")
                         .Register(*registry);
  executions.Add({{"outcome", "executed"}}).Set(static_cast<double>(pass.executed));
  executions.Add({{"outcome", "failed"}}).Set(static_cast<double>(pass.failed));
  executions.Add({{"outcome", "pending"}}).Set(static_cast<double>(pass.pending));
  executions.Add({{"outcome", "duplicate"}}).Set(static_cast<double>(pass.duplicates));
  auto& blocked = prometheus::BuildGauge()
                      .Name("backstop_stop_monitor_last_run_blocked")
                      .Help("Exits held back by a guardrail in the last run, by reason")
                      .Register(*registry);
  for (const auto& [reason, n] : pass.blocked) blocked.Add({{"reason", reason}}).Set(static_cast<double>(n));
  auto& duration = prometheus::BuildGauge()
                       .Name("backstop_stop_monitor_last_run_duration_seconds")
                       .Help("Wall time of the last run")
                       .Register(*registry);
  duration.Add({}).Set(run_seconds);
  auto& outcome = prometheus::BuildGauge()
                      .Name("backstop_stop_monitor_last_run_success")
                      .Help("1 if the last run succeeded, 0 if it failed")
                      .Register(*registry);
  outcome.Add({}).Set(success ? 1 : 0);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto& last_run = prometheus::BuildGauge()
                       .Name("backstop_stop_monitor_last_run_timestamp_seconds")
                       .Help("When the last run finished")
                       .Register(*registry);
  last_run.Add({}).Set(now);
  if (success) {
    prometheus::BuildGauge()
        .Name("backstop_stop_monitor_last_success_timestamp_seconds")
        .Help("When a run last succeeded")
        .Register(*registry)
        .Add({})
        .Set(now);
  }
  prometheus::Gateway gateway(target.host, target.port, target.job, target.labels);
  gateway.RegisterCollectable(registry);
  const int status = gateway.PushAdd();
  if (status < 200 || status >= 300) {
    log::warn("could not push run metrics to the Pushgateway",
              {{"gateway", target.host + ":" + target.port}, {"status", status}});
  }
  return status;
}

}  // namespace backstop::monitor
