#include "support/kube_server.h"

#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace backstop::testing {

std::string kubectl_path() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin");
  for (std::string d; std::getline(dirs, d, ':');) {
    if (std::filesystem::exists(d + "/kubectl")) return d + "/kubectl";
  }
  return "kubectl-not-found-on-PATH";
}

KubeTestServer::KubeTestServer(std::vector<std::string> extra) : extra_(std::move(extra)) {
  char pattern[] = "/tmp/backstop-kube.XXXXXX";
  dir_ = mkdtemp(pattern);
  if (std::find(extra_.begin(), extra_.end(), "--tls-cert") != extra_.end()) scheme_ = "https";
  start({"--port-file", dir_ + "/port"});
  // Until it has written its port (or died): a loaded machine starts it slowly.
  while (process_->running() && !std::filesystem::exists(dir_ + "/port")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::ifstream(dir_ + "/port") >> port_;
  if (port_ == 0) throw std::runtime_error("the Kubernetes API test server did not start");
  std::ofstream(kubeconfig()) << "apiVersion: v1\nkind: Config\n"
                                 "clusters: [{name: t, cluster: {server: \""
                              << url()
                              << "\"}}]\nusers: [{name: t, user: {}}]\n"
                                 "contexts: [{name: t, context: {cluster: t, user: t, namespace: trading}}]\n"
                                 "current-context: t\n";
}

KubeTestServer::~KubeTestServer() {
  process_.reset();
  std::filesystem::remove_all(dir_);
}

void KubeTestServer::start(const std::vector<std::string>& args) {
  std::vector<std::string> command = {binary("kube-api-test-server"), "--state-file", dir_ + "/state.json"};
  command.insert(command.end(), args.begin(), args.end());
  command.insert(command.end(), extra_.begin(), extra_.end());
  process_ = std::make_unique<Process>(command);
}

void KubeTestServer::stop() {
  if (!process_) return;
  process_->kill(SIGTERM);
  process_->wait();
  process_.reset();
}

void KubeTestServer::restart() {
  stop();
  start({"--port", std::to_string(port_)});
  while (process_->running()) {
    if (kubectl({"get", "--raw", "/version"}).exit_code == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("the restarted Kubernetes API test server does not answer");
}

std::string KubeTestServer::url() const { return scheme_ + "://127.0.0.1:" + std::to_string(port_); }

ProcessResult KubeTestServer::kubectl(std::vector<std::string> args) const {
  args.insert(args.begin(), {kubectl_path(), "--kubeconfig", kubeconfig()});
  return run(args, {{"HOME", dir_}, {"KUBECACHEDIR", dir_ + "/cache"}});
}

ProcessResult KubeTestServer::apply(const std::string& manifest) const {
  static int n = 0;
  const std::string file = dir_ + "/manifest-" + std::to_string(++n) + ".yaml";
  std::ofstream(file) << manifest;
  return kubectl({"apply", "-f", file});
}

}  // namespace backstop::testing
