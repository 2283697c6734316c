// The HTTP endpoints Kubernetes probes: /healthz (liveness) and /readyz
// (readiness), answered from a runtime::Health on a thread of their own.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "runtime/health.h"

namespace httplib {
class Server;
}

namespace backstop::app {

// Binds `server` to `bind` (HOST:PORT, port 0: any) and returns the bound
// port; runtime::UsageError naming `flag` when it cannot.
int bind_server(httplib::Server& server, const std::string& bind, const char* flag);

class ProbeServer {
 public:
  // Bound here (a bad address is a usage error before any work starts),
  // served until destroyed.
  ProbeServer(const std::string& bind, const char* flag, const runtime::Health& health);
  ~ProbeServer();
  ProbeServer(const ProbeServer&) = delete;
  ProbeServer& operator=(const ProbeServer&) = delete;
  [[nodiscard]] int port() const { return port_; }

 private:
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace backstop::app
