// A real Prometheus Pushgateway on a free 127.0.0.1 port for a test.
#pragma once

#include <memory>
#include <string>

#include "net/http.h"
#include "support/process.h"

namespace backstop::testing {

class Pushgateway {
 public:
  Pushgateway();  // started and ready
  [[nodiscard]] const std::string& url() const { return url_; }
  [[nodiscard]] std::string metrics() const;  // its /metrics page

 private:
  std::string url_;
  std::unique_ptr<Process> process_;
  std::unique_ptr<net::HttpTransport> http_;
};

}  // namespace backstop::testing
