#include "support/sim.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace backstop::testing {

SimServer::SimServer() {
  static int counter = 0;
  port_file_ = (std::filesystem::temp_directory_path() /
                ("backstop-sim-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + ".port"))
                   .string();
  ws_port_file_ = port_file_ + ".ws";
  std::filesystem::remove(port_file_);
  std::filesystem::remove(ws_port_file_);
  process_ = std::make_unique<Process>(std::vector<std::string>{binary("exchange-sim"), "--port-file", port_file_,
                                                                "--ws-port-file", ws_port_file_, "--api-key", kApiKey,
                                                                "--api-secret", kApiSecret});
  // Until it has written both ports (or died): a loaded machine starts it slowly.
  while (process_->running() && !(std::filesystem::exists(port_file_) && std::filesystem::exists(ws_port_file_))) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::ifstream in(port_file_), ws_in(ws_port_file_);
  int port = 0, ws_port = 0;
  if (!(in >> port) || !(ws_in >> ws_port)) throw std::runtime_error("exchange-sim did not start");
  url_ = "http://127.0.0.1:" + std::to_string(port);
  ws_url_ = "ws://127.0.0.1:" + std::to_string(ws_port);
  http_ = net::make_cpprest_transport(url_, std::chrono::seconds(10));
}

SimServer::~SimServer() {
  process_->kill(SIGTERM);
  std::filesystem::remove(port_file_);
  std::filesystem::remove(ws_port_file_);
}

nlohmann::json SimServer::get(const std::string& path) const {
  const auto response = http_->send({"GET", path, {}, ""});
  if (response.status != 200) throw std::runtime_error("GET " + path + ": " + response.body);
  return nlohmann::json::parse(response.body);
}

void SimServer::post(const std::string& path, const nlohmann::json& body) const {
  const auto response = http_->send({"POST", path, {{"Content-Type", "application/json"}}, body.dump()});
  if (response.status != 200) throw std::runtime_error("POST " + path + ": " + response.body);
}

Env SimServer::env() const {
  return {{"BACKSTOP_EXCHANGE_URL", url_},
          {"BACKSTOP_STREAM_URL", ws_url_},
          {"BACKSTOP_EXCHANGE_API_KEY", kApiKey},
          {"BACKSTOP_EXCHANGE_API_SECRET", kApiSecret},
          {"BACKSTOP_LOG_FORMAT", "json"}};
}

void SimServer::btc_eth_markets(const std::string& btc, const std::string& eth) const {
  auto market = [](const char* base, const std::string& price, const char* lot) {
    return nlohmann::json{{"symbol", std::string(base) + "USDT"},
                          {"base", base},
                          {"quote", "USDT"},
                          {"price", price},
                          {"stepSize", lot},
                          {"minQty", lot},
                          {"minNotional", "5"},
                          {"tickSize", "0.01"}};
  };
  nlohmann::json list = nlohmann::json::array({market("BTC", btc, "0.00001")});
  if (!eth.empty()) list.push_back(market("ETH", eth, "0.0001"));
  symbols(list);
}

}  // namespace backstop::testing
