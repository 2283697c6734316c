// The Kubernetes API test server (tests/kube) as a child process, a kubeconfig
// pointing at it, and the real kubectl against it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "support/process.h"

namespace backstop::testing {

// kubectl from PATH (the machine's real client).
std::string kubectl_path();

class KubeTestServer {
 public:
  // Starts the server on a free port in a fresh directory (state file, kubeconfig
  // with namespace "trading"); `extra` goes to its command line.
  explicit KubeTestServer(std::vector<std::string> extra = {});
  ~KubeTestServer();
  KubeTestServer(const KubeTestServer&) = delete;
  KubeTestServer& operator=(const KubeTestServer&) = delete;

  // SIGTERM, then the same port and state file again; returns once it serves.
  void restart();
  void stop();  // SIGTERM and wait

  [[nodiscard]] const std::string& dir() const { return dir_; }
  [[nodiscard]] std::string url() const;
  [[nodiscard]] std::string kubeconfig() const { return dir_ + "/kubeconfig"; }
  [[nodiscard]] int port() const { return port_; }

  ProcessResult kubectl(std::vector<std::string> args) const;
  ProcessResult apply(const std::string& manifest) const;  // kubectl apply -f of this text

 private:
  void start(const std::vector<std::string>& args);

  std::string dir_;
  std::vector<std::string> extra_;
  std::string scheme_ = "http";
  int port_ = 0;
  std::unique_ptr<Process> process_;
};

}  // namespace backstop::testing
