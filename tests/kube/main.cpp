// kube-api-test-server: the Kubernetes API test server's process (what it
// serves and where it is more lenient than a real API server: api_server.h).
// Serves 127.0.0.1 over HTTP, or HTTPS with --tls-cert and --tls-key (as every
// real API server); SIGTERM ends open watches and stops it.
//
//   kube-api-test-server [--port N] [--port-file FILE] [--state-file FILE]
//                        [--tls-cert PEM --tls-key PEM]
//
// KUBE_TEST_SERVER_LOG set: every request logged to stderr with its status.
#include <httplib.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "api_server.h"

int main(int argc, char** argv) {
  int port = 0;
  std::string port_file;
  std::string state_file;
  std::string tls_cert;
  std::string tls_key;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--port") port = std::stoi(argv[i + 1]);
    if (flag == "--port-file") port_file = argv[i + 1];
    if (flag == "--state-file") state_file = argv[i + 1];
    if (flag == "--tls-cert") tls_cert = argv[i + 1];
    if (flag == "--tls-key") tls_key = argv[i + 1];
  }
  backstop::testing::ApiServer api;
  if (!state_file.empty()) api.persist_to(state_file);
  std::unique_ptr<httplib::Server> https;
  if (!tls_cert.empty()) {
    https = std::make_unique<httplib::SSLServer>(tls_cert.c_str(), tls_key.c_str());
    if (!https->is_valid()) {
      std::cerr << "kube-api-test-server: cannot use the certificate " << tls_cert << " / key " << tls_key << "\n";
      return 3;
    }
  }
  httplib::Server plain;
  httplib::Server& server = https ? *https : plain;
  const bool log_requests = std::getenv("KUBE_TEST_SERVER_LOG") != nullptr;
  auto handler = [&](const httplib::Request& req, httplib::Response& res) {
    api.handle(req, res);
    if (log_requests) std::cerr << req.method << " " << req.target << " -> " << res.status << "\n";
  };
  server.Get(R"(/.*)", handler);
  server.Post(R"(/.*)", handler);
  server.Put(R"(/.*)", handler);
  server.Patch(R"(/.*)", handler);
  server.Delete(R"(/.*)", handler);
  server.set_tcp_nodelay(true);  // before binding (the listening socket carries it); as Go's net/http does
  const int bound =
      port == 0 ? server.bind_to_any_port("127.0.0.1") : (server.bind_to_port("127.0.0.1", port) ? port : -1);
  if (bound < 0) {
    std::cerr << "kube-api-test-server: cannot listen on port " << port << "\n";
    return 3;
  }
  if (!port_file.empty()) {
    std::ofstream(port_file + ".tmp") << bound << "\n";
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  std::cerr << "kube-api-test-server listening on " << (https ? "https" : "http") << "://127.0.0.1:" << bound << "\n";
  // Every connection holds a pool thread while it is kept alive, and kubectl opens
  // a dozen at once for discovery: a small pool turns a burst of kubectl calls
  // into waits. Plenty of threads.
  server.new_task_queue = [] { return new httplib::ThreadPool(256); };
  server.set_keep_alive_max_count(1000);  // closing after 5 requests races a client reusing the connection
  static httplib::Server* running = &server;
  static backstop::testing::ApiServer* state = &api;
  std::signal(SIGTERM, [](int) {
    state->stop_watches();
    running->stop();
  });
  server.listen_after_bind();
  return 0;
}
