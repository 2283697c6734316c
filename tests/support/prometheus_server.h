// A real Prometheus server on a free 127.0.0.1 port for a test: scrapes the
// given targets every second and evaluates the given rule files every second.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "net/http.h"
#include "support/process.h"

namespace backstop::testing {

class PrometheusServer {
 public:
  // `targets`: host:port to scrape (job "backstop", honor_labels: a Pushgateway among them keeps the
  // pushed job and instance); `rule_files`: paths.
  PrometheusServer(const std::vector<std::string>& targets, const std::vector<std::string>& rule_files);
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  [[nodiscard]] const std::string& url() const { return url_; }
  // GET `path` of its HTTP API, parsed (e.g. /api/v1/alerts).
  [[nodiscard]] nlohmann::json api(const std::string& path) const;

 private:
  std::string dir_;
  std::string url_;
  std::unique_ptr<Process> process_;
  std::unique_ptr<net::HttpTransport> http_;
};

}  // namespace backstop::testing
