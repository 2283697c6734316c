#include "support/prometheus_server.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "support/process.h"

namespace backstop::testing {

PrometheusServer::PrometheusServer(const std::vector<std::string>& targets,
                                   const std::vector<std::string>& rule_files) {
  char pattern[] = "/tmp/backstop-prometheus.XXXXXX";
  dir_ = mkdtemp(pattern);
  std::ofstream config(dir_ + "/prometheus.yml");
  config << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n";
  for (const auto& f : rule_files) config << "  - " << f << "\n";
  // honor_labels: a Pushgateway's series keep the job and instance they were pushed with.
  config << "scrape_configs:\n  - job_name: backstop\n    honor_labels: true\n    static_configs:\n      - targets:\n";
  for (const auto& t : targets) config << "          - " << t << "\n";
  config.close();
  const int port = free_port();
  url_ = "http://127.0.0.1:" + std::to_string(port);
  process_ = std::make_unique<Process>(std::vector<std::string>{
      "/usr/bin/prometheus", "--config.file=" + dir_ + "/prometheus.yml", "--storage.tsdb.path=" + dir_ + "/data",
      "--web.listen-address=127.0.0.1:" + std::to_string(port)});
  http_ = net::make_cpprest_transport(url_, std::chrono::seconds(5));
  for (int i = 0; i < 600; ++i) {
    try {
      if (http_->send({"GET", "/-/ready", {}, ""}).status == 200) return;
    } catch (const net::TransportError&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("prometheus did not become ready on " + url_);
}

PrometheusServer::~PrometheusServer() {
  process_.reset();
  std::filesystem::remove_all(dir_);
}

nlohmann::json PrometheusServer::api(const std::string& path) const {
  return nlohmann::json::parse(http_->send({"GET", path, {}, ""}).body);
}

}  // namespace backstop::testing
