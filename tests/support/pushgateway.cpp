#include "support/pushgateway.h"

#include <stdexcept>
#include <thread>

#include "support/process.h"

namespace backstop::testing {

Pushgateway::Pushgateway() {
  const int port = free_port();
  url_ = "http://127.0.0.1:" + std::to_string(port);
  process_ = std::make_unique<Process>(std::vector<std::string>{
      "/usr/bin/prometheus-pushgateway", "--web.listen-address=127.0.0.1:" + std::to_string(port)});
  http_ = net::make_cpprest_transport(url_, std::chrono::seconds(2));
  for (int i = 0; i < 200; ++i) {
    try {
      if (http_->send({"GET", "/-/ready", {}, ""}).status == 200) return;
    } catch (const net::TransportError&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  throw std::runtime_error("pushgateway did not start on " + url_);
}

std::string Pushgateway::metrics() const { return http_->send({"GET", "/metrics", {}, ""}).body; }

}  // namespace backstop::testing
