// A running exchange-sim process for a test, with its admin endpoints.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "net/http.h"
#include "support/process.h"

namespace backstop::testing {

class SimServer {
 public:
  SimServer();
  ~SimServer();
  [[nodiscard]] const std::string& url() const { return url_; }
  [[nodiscard]] const std::string& ws_url() const { return ws_url_; }
  static constexpr const char* kApiKey = "test-key";
  static constexpr const char* kApiSecret = "test-secret";

  nlohmann::json get(const std::string& path) const;
  void post(const std::string& path, const nlohmann::json& body) const;
  // [{"symbol":"BTCUSDT","price":"95000",...}] with the simulator's defaults for the rest.
  void symbols(const nlohmann::json& list) const { post("/admin/symbols", list); }
  void prices(const nlohmann::json& by_symbol) const { post("/admin/prices", by_symbol); }
  void faults(const nlohmann::json& faults) const { post("/admin/faults", faults); }
  [[nodiscard]] nlohmann::json ledger() const { return get("/admin/ledger"); }
  // The markets most tests trade: BTCUSDT at `btc` (lot 0.00001) and, unless
  // empty, ETHUSDT at `eth` (lot 0.0001); both tick 0.01, minimum notional 5.
  void btc_eth_markets(const std::string& btc, const std::string& eth = "3000") const;

  // Environment for a stop-monitor talking to this simulator.
  [[nodiscard]] Env env() const;

 private:
  std::unique_ptr<Process> process_;
  std::unique_ptr<net::HttpTransport> http_;
  std::string url_;
  std::string ws_url_;
  std::string port_file_;
  std::string ws_port_file_;
};

}  // namespace backstop::testing
