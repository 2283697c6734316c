#include "metrics/run_metrics.h"

#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "metrics/build_info.h"
#include "net/http.h"
#include "runtime/exit_code.h"
#include "runtime/log.h"

namespace backstop::metrics {
namespace {

// A push that hangs must not hold the CronJob past its deadline.
constexpr std::chrono::milliseconds kPushTimeout{5000};
// Of the gateway's answer to a failed push, what the log and summary keep.
constexpr std::size_t kErrorBodyChars = 300;

bool plain(const std::string& value) {
  if (value.empty()) return false;
  for (const char c : value) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                            c == '_' || c == '~' || c == '-';
    if (!unreserved) return false;
  }
  return true;
}

std::string base64url(const std::string& bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const auto byte = [&](std::size_t at) { return static_cast<unsigned>(static_cast<unsigned char>(bytes[at])); };
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned n = (byte(i) << 16U) | (byte(i + 1) << 8U) | byte(i + 2);
    out += {kAlphabet[(n >> 18U) & 63U], kAlphabet[(n >> 12U) & 63U], kAlphabet[(n >> 6U) & 63U], kAlphabet[n & 63U]};
  }
  if (i + 1 == bytes.size()) {
    const unsigned n = byte(i) << 16U;
    out += {kAlphabet[(n >> 18U) & 63U], kAlphabet[(n >> 12U) & 63U]};
  } else if (i + 2 == bytes.size()) {
    const unsigned n = (byte(i) << 16U) | (byte(i + 1) << 8U);
    out += {kAlphabet[(n >> 18U) & 63U], kAlphabet[(n >> 12U) & 63U], kAlphabet[(n >> 6U) & 63U]};
  }
  return out;
}

std::string segment(const std::string& name, const std::string& value) {
  if (plain(value)) return "/" + name + "/" + value;
  // A single '=' is how the API spells an empty value (an empty segment would be collapsed).
  return "/" + name + "@base64/" + (value.empty() ? std::string("=") : base64url(value));
}

}  // namespace

PushTarget parse_pushgateway_url(const std::string& url) {
  static const std::regex pattern(R"(^http://([A-Za-z0-9._-]+|\[[0-9a-fA-F:]+\]):([0-9]{1,5})/?$)");
  std::smatch match;
  if (!std::regex_match(url, match, pattern)) {
    throw runtime::UsageError("invalid Pushgateway URL '" + url + "': expected http://host:port");
  }
  PushTarget target;
  target.base_url = "http://" + match[1].str() + ":" + match[2].str();
  return target;
}

std::string grouping_path(const std::string& job, const std::map<std::string, std::string>& labels) {
  std::string path = "/metrics" + segment("job", job);
  for (const auto& [name, value] : labels) path += segment(name, value);
  return path;
}

void PushRecord::add(const PushOutcome& outcome) {
  if (outcome.ok()) return;
  ++failures;
  last_error = outcome.error;
}

PushOutcome push_run_figures(const PushTarget& target, const std::string& prefix, const std::vector<RunFigure>& figures,
                             bool success, double run_seconds) {
  prometheus::Registry registry;
  std::map<std::string, prometheus::Family<prometheus::Gauge>*> families;
  auto gauge = [&](const std::string& name, const std::string& help) -> prometheus::Family<prometheus::Gauge>& {
    auto& family = families[name];
    if (family == nullptr) family = &prometheus::BuildGauge().Name(name).Help(help).Register(registry);
    return *family;
  };
  for (const RunFigure& f : figures) gauge(prefix + "_" + f.name, f.help).Add(f.labels).Set(f.value);
  gauge(prefix + "_last_run_duration_seconds", "Wall time of the last run").Add({}).Set(run_seconds);
  gauge(prefix + "_last_run_success", "1 if the last run succeeded, 0 if it failed").Add({}).Set(success ? 1 : 0);
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  gauge(prefix + "_last_run_timestamp_seconds", "When the last run finished").Add({}).Set(now);
  if (success) gauge(prefix + "_last_success_timestamp_seconds", "When a run last succeeded").Add({}).Set(now);
  register_build_info(registry);

  // Our own request rather than prometheus-cpp's Gateway: that one puts label
  // values into the path unencoded and lets libcurl copy a failed push's
  // answer to stdout.
  net::HttpRequest request{"POST",
                           grouping_path(target.job, target.labels),
                           {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}},
                           prometheus::TextSerializer().Serialize(registry.Collect())};
  PushOutcome outcome;
  try {
    const net::HttpResponse response = net::make_cpprest_transport(target.base_url, kPushTimeout)->send(request);
    outcome.status = response.status;
    if (response.status < 200 || response.status >= 300) {
      std::string body = response.body.substr(0, kErrorBodyChars);
      while (!body.empty() && (body.back() == '\n' || body.back() == ' ')) body.pop_back();
      outcome.error = "HTTP " + std::to_string(response.status) + ": " + body;
    }
  } catch (const std::exception& e) {
    outcome.error = e.what();
  }
  if (!outcome.ok()) {
    log::warn(
        "could not push run metrics to the Pushgateway; the run's work is unaffected",
        {{"gateway", target.base_url}, {"path", request.target}, {"status", outcome.status}, {"error", outcome.error}});
  }
  return outcome;
}

void add_push_fields(nlohmann::json& summary, const PushRecord* pushes) {
  if (pushes == nullptr) return;
  summary["metrics_push_failures"] = pushes->failures;
  if (!pushes->last_error.empty()) summary["metrics_push_error"] = pushes->last_error;
}

std::string push_text(const PushRecord* pushes) {
  if (pushes == nullptr || pushes->failures == 0) return "";
  return "metrics push failed (" + std::to_string(pushes->failures) + "x): " + pushes->last_error + "\n";
}

}  // namespace backstop::metrics
