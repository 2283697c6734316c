// exchange-sim: a Binance-spot-compatible exchange on 127.0.0.1 for paper
// trading, tests and benchmarks. See pkg/sim/simulator.h for what it does.
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>
#include <thread>

#include "sim/simulator.h"

int main(int argc, char** argv) {
  CLI::App app{"Binance-spot-compatible exchange simulator", "exchange-sim"};
  std::string host = "127.0.0.1";
  int port = 0;
  std::string api_key = "backstop-paper", secret = "backstop-paper-secret";
  std::string port_file;
  app.add_option("--host", host, "listen address")->capture_default_str();
  app.add_option("--port", port, "listen port (0: any free port)")->capture_default_str();
  app.add_option("--port-file", port_file, "write the bound port to this file once listening");
  app.add_option("--api-key", api_key, "API key of the default account")->capture_default_str();
  app.add_option("--api-secret", secret, "secret of the default account");
  CLI11_PARSE(app, argc, argv);

  backstop::sim::Simulator simulator;
  simulator.add_account(api_key, secret);
  httplib::Server server;
  server.new_task_queue = [] { return new httplib::ThreadPool(16); };
  auto handler = [&](const httplib::Request& req, httplib::Response& res) {
    backstop::sim::SimRequest request;
    request.method = req.method;
    request.path = req.path;
    const auto q = req.target.find('?');
    request.query = q == std::string::npos ? "" : req.target.substr(q + 1);
    request.body = req.body;
    for (const auto& [name, value] : req.headers) {
      std::string lower = name;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      request.headers[lower] = value;
    }
    const backstop::sim::SimResponse response = simulator.handle(request);
    if (response.delay.count() > 0) std::this_thread::sleep_for(response.delay);
    if (response.drop_connection) {
      // Executed but never answered: hold the connection past any client timeout.
      std::this_thread::sleep_for(std::chrono::seconds(30));
      res.status = 504;
      return;
    }
    res.status = response.status;
    for (const auto& [name, value] : response.headers) {
      if (name != "Content-Type") res.set_header(name, value);
    }
    res.set_content(response.body, "application/json;charset=UTF-8");
  };
  server.Get(R"(/.*)", handler);
  server.Post(R"(/.*)", handler);
  server.Delete(R"(/.*)", handler);
  const int bound = port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
  if (bound < 0) {
    std::cerr << "exchange-sim: cannot listen on " << host << ":" << port << "\n";
    return 3;
  }
  if (!port_file.empty()) {
    std::ofstream(port_file + ".tmp") << bound << "\n";
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  std::cerr << "exchange-sim listening on http://" << host << ":" << bound << "\n";
  static httplib::Server* running = &server;
  std::signal(SIGTERM, [](int) { running->stop(); });
  std::signal(SIGINT, [](int) { running->stop(); });
  server.listen_after_bind();
  return 0;
}
