// The exchange simulator without sockets: Simulator::handle maps one request
// to one response exactly as the exchange-sim binary serves it.
#include "sim/simulator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "exchange/binance_protocol.h"

namespace backstop::sim {
namespace {

using nlohmann::json;

SimResponse call(Simulator& sim, const std::string& method, const std::string& path, const std::string& body = "") {
  SimRequest r;
  r.method = method;
  r.path = path;
  r.body = body;
  r.headers["content-type"] = "application/json";
  return sim.handle(r);
}

std::string last_price(Simulator& sim, const std::string& symbol) {
  SimRequest r;
  r.method = "GET";
  r.path = "/api/v3/ticker/price";
  r.query = "symbol=" + symbol;
  return json::parse(sim.handle(r).body).at("price").get<std::string>();
}

SimResponse market_sell(Simulator& sim, const std::string& client_id) {
  SimRequest r;
  r.method = "POST";
  r.path = "/api/v3/order";
  const std::string unsigned_query = "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.1&newClientOrderId=" + client_id +
                                     "&recvWindow=5000&timestamp=" +
                                     std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                        std::chrono::system_clock::now().time_since_epoch())
                                                        .count());
  r.query = unsigned_query + "&signature=" + exchange::binance::sign("s3cret", unsigned_query);
  r.headers["x-mbx-apikey"] = "k";
  return sim.handle(r);
}

class SimulatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(
        call(sim, "POST", "/admin/symbols", R"([{"symbol":"BTCUSDT","price":"95000","stepSize":"0.001"}])").status,
        200);
    ASSERT_EQ(call(sim, "POST", "/admin/accounts", R"({"apiKey":"k","secret":"s3cret"})").status, 200);
  }
  Simulator sim;
};

TEST_F(SimulatorTest, PricePathIsReplayedStepByStepAtItsInterval) {
  const auto start = std::chrono::steady_clock::now();
  const SimResponse accepted =
      call(sim, "POST", "/admin/price-path",
           R"({"intervalMs":20,"steps":[{"BTCUSDT":"94000"},{"BTCUSDT":"93000"},{"BTCUSDT":"92500.5"}]})");
  ASSERT_EQ(accepted.status, 200) << accepted.body;
  EXPECT_EQ(json::parse(accepted.body).at("steps"), 3);
  while (json::parse(call(sim, "GET", "/admin/price-path").body).at("remaining").get<int>() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE(std::chrono::steady_clock::now() - start,
            std::chrono::milliseconds(40));  // two intervals between three steps
  EXPECT_EQ(last_price(sim, "BTCUSDT"), "92500.50000000");
}

TEST_F(SimulatorTest, PricePathWithAnUnknownSymbolIsRefusedWhole) {
  const SimResponse refused =
      call(sim, "POST", "/admin/price-path", R"({"intervalMs":1,"steps":[{"BTCUSDT":"1"},{"DOGEUSDT":"1"}]})");
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.body.find("unknown symbol DOGEUSDT"), std::string::npos) << refused.body;
  EXPECT_EQ(last_price(sim, "BTCUSDT"), "95000.00000000");
}

TEST_F(SimulatorTest, FilledOrderDoesNotBlockItsClientIdAsBinanceDoes) {
  // Binance refuses a duplicate client id only while the first order is open;
  // a market order fills at once, so the same id places a second order. This is
  // why Backstop never resends an order without asking for it first.
  ASSERT_EQ(market_sell(sim, "bs-dup").status, 200);
  EXPECT_EQ(market_sell(sim, "bs-dup").status, 200);
  EXPECT_EQ(sim.ledger().size(), 2u);
}

}  // namespace
}  // namespace backstop::sim
