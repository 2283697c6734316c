// exchange-sim: a Binance-spot-compatible exchange on 127.0.0.1 for paper
// trading, tests and benchmarks. See pkg/sim/simulator.h for what it does.
#include <httplib.h>
#include <sys/socket.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "runtime/cli.h"
#include "sim/simulator.h"
#include "ws_streams.h"

int main(int argc, char** argv) {
  CLI::App app{"Binance-spot-compatible exchange simulator", "exchange-sim"};
  std::string host = "127.0.0.1";
  int port = 0;
  std::string api_key = "backstop-paper", secret = "backstop-paper-secret";
  std::string port_file;
  app.add_option("--host", host, "listen address")->capture_default_str();
  app.add_option("--port", port, "listen port (0: any free port)")->capture_default_str();
  app.add_option("--port-file", port_file, "write the bound port to this file once listening");
  int ws_port = 0;
  std::string ws_port_file;
  app.add_option("--ws-port", ws_port, "WebSocket stream port (0: any free port)")->capture_default_str();
  app.add_option("--ws-port-file", ws_port_file, "write the bound WebSocket port to this file");
  app.add_option("--api-key", api_key, "API key of the default account")->capture_default_str();
  app.add_option("--api-secret", secret, "secret of the default account");
  int weight_limit = 0;
  app.add_option("--weight-limit", weight_limit,
                 "request weight per minute past which requests answer 429 -1003 (Binance: 6000; 0: count only)")
      ->capture_default_str();
  backstop::runtime::add_version_flag(app);
  CLI11_PARSE(app, argc, argv);

  backstop::sim::Simulator simulator;
  simulator.add_account(api_key, secret);
  simulator.set_weight_limit(weight_limit);

  // WebSocket streams (see ws_streams.h): every price change is published.
  backstop::sim::WsStreams streams;
  const int bound_ws = streams.start(host, ws_port, [&simulator](const std::string& request, std::int64_t id) {
    const backstop::sim::Simulator::WsApiReply reply = simulator.ws_api(request, id);
    return backstop::sim::WsStreams::ApiReply{reply.text, reply.subscribed_key};
  });
  if (bound_ws < 0) {
    std::cerr << "exchange-sim: cannot listen for WebSocket streams on " << host << ":" << ws_port << "\n";
    return 3;
  }
  std::int64_t trade_id = 0;
  std::mutex publish_mutex;
  simulator.set_price_listener([&](const std::string& symbol, backstop::core::Decimal last, backstop::core::Decimal bid,
                                   backstop::core::Decimal ask, std::int64_t time_ms) {
    std::string lower = symbol;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::lock_guard lock(publish_mutex);
    ++trade_id;
    const nlohmann::json trade = {
        {"e", "trade"},      {"E", time_ms}, {"s", symbol}, {"t", trade_id}, {"p", last.to_fixed_string()},
        {"q", "1.00000000"}, {"T", time_ms}, {"m", false},  {"M", true}};
    const nlohmann::json book = {{"u", trade_id},
                                 {"s", symbol},
                                 {"b", bid.to_fixed_string()},
                                 {"B", "1000.00000000"},
                                 {"a", ask.to_fixed_string()},
                                 {"A", "1000.00000000"}};
    streams.publish(lower, trade.dump(), book.dump());
  });
  simulator.set_account_listener(
      [&streams](const std::string& api_key, const std::string& event) { streams.publish_account(api_key, event); });
  if (!ws_port_file.empty()) {
    std::ofstream(ws_port_file + ".tmp") << bound_ws << "\n";
    std::rename((ws_port_file + ".tmp").c_str(), ws_port_file.c_str());
  }
  httplib::Server server;
  server.new_task_queue = [] { return new httplib::ThreadPool(16); };
  server.set_tcp_nodelay(true);  // as real HTTP servers do: no Nagle delay between header and body writes
  // Real exchanges accept bursts of connections; the backlog of 5 compiled into
  // Debian's libcpp-httplib drops the SYN of a sixth concurrent connect, which
  // the client retries a second later. Remember the listening socket so that
  // its backlog can be raised once it listens.
  int listening_socket = -1;
  server.set_socket_options([&listening_socket](int sock) {
    httplib::default_socket_options(sock);
    listening_socket = sock;
  });
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
    if (request.path == "/admin/user-stream") {
      // The user data stream's faults (ws_streams.h) and its live subscriptions.
      res.set_header("Content-Type", "application/json");
      if (req.method == "POST") {
        std::string action;
        try {
          action = nlohmann::json::parse(req.body).at("action").get<std::string>();
        } catch (const std::exception& e) {
          res.status = 400;
          res.body = nlohmann::json{{"code", -1}, {"msg", std::string("admin request failed: ") + e.what()}}.dump();
          return;
        }
        if (!streams.user_stream_fault(action)) {
          res.status = 400;
          res.body = nlohmann::json{{"code", -1},
                                    {"msg", "action must be disconnect, terminate, silence or resume; got " + action}}
                         .dump();
          return;
        }
      }
      res.body = nlohmann::json{{"subscriptions", streams.user_stream_subscriptions()}}.dump();
      return;
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
  if (listening_socket >= 0) ::listen(listening_socket, SOMAXCONN);
  if (!port_file.empty()) {
    std::ofstream(port_file + ".tmp") << bound << "\n";
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  std::cerr << "exchange-sim listening on http://" << host << ":" << bound << " and ws://" << host << ":" << bound_ws
            << "\n";
  static httplib::Server* running = &server;
  std::signal(SIGTERM, [](int) { running->stop(); });
  std::signal(SIGINT, [](int) { running->stop(); });
  server.listen_after_bind();
  streams.stop();
  return 0;
}
