#include "metrics/run_metrics.h"

#include <prometheus/gateway.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>
#include <map>
#include <regex>

#include "runtime/exit_code.h"
#include "runtime/log.h"

namespace backstop::metrics {

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

int push_run_figures(const PushTarget& target, const std::string& prefix, const std::vector<RunFigure>& figures,
                     bool success, double run_seconds) {
  auto registry = std::make_shared<prometheus::Registry>();
  std::map<std::string, prometheus::Family<prometheus::Gauge>*> families;
  auto gauge = [&](const std::string& name, const std::string& help) -> prometheus::Family<prometheus::Gauge>& {
    auto& family = families[name];
    if (family == nullptr) family = &prometheus::BuildGauge().Name(name).Help(help).Register(*registry);
    return *family;
  };
  for (const RunFigure& f : figures) gauge(prefix + "_" + f.name, f.help).Add(f.labels).Set(f.value);
  gauge(prefix + "_last_run_duration_seconds", "Wall time of the last run").Add({}).Set(run_seconds);
  gauge(prefix + "_last_run_success", "1 if the last run succeeded, 0 if it failed").Add({}).Set(success ? 1 : 0);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  gauge(prefix + "_last_run_timestamp_seconds", "When the last run finished").Add({}).Set(now);
  if (success) gauge(prefix + "_last_success_timestamp_seconds", "When a run last succeeded").Add({}).Set(now);
  prometheus::Gateway gateway(target.host, target.port, target.job, target.labels);
  gateway.RegisterCollectable(registry);
  const int status = gateway.PushAdd();
  if (status < 200 || status >= 300) {
    log::warn("could not push run metrics to the Pushgateway",
              {{"gateway", target.host + ":" + target.port}, {"status", status}});
  }
  return status;
}

}  // namespace backstop::metrics
