// BinanceClient's account calls (issue 13) against a real exchange-sim process
// over HTTP: the production client and parsers, unchanged, reading balances,
// trades and open orders and cancelling. No PostgreSQL needed.
#include <gtest/gtest.h>

#include "exchange/binance_client.h"
#include "support/sim.h"

namespace backstop::exchange {
namespace {

using testing::SimServer;

Decimal D(const char* text) { return Decimal::parse(text); }

class BinanceClientAgainstSim : public ::testing::Test {
 protected:
  void SetUp() override {
    sim.btc_eth_markets("95000");
    sim.post("/admin/accounts",
             {{"apiKey", SimServer::kApiKey}, {"secret", SimServer::kApiSecret}, {"balances", {{"USDT", "100000"}}}});
  }
  BinanceClient client() {
    BinanceConfig config;
    config.base_url = sim.url();
    config.api_key = SimServer::kApiKey;
    config.api_secret = SimServer::kApiSecret;
    return BinanceClient(config, net::make_cpprest_transport(config.base_url, config.timeout));
  }
  static OrderRequest buy(const std::string& id) { return {"BTCUSDT", core::Side::kBuy, D("0.1"), id}; }
  SimServer sim;
};

TEST_F(BinanceClientAgainstSim, AccountShowsTheBaseAssetCommissionOfAnEntry) {
  sim.post("/admin/commission", {{"apiKey", SimServer::kApiKey}, {"takerRate", "0.001"}, {"makerRate", "0.001"}});
  BinanceClient exchange = client();
  ASSERT_TRUE(exchange.place_market_order(buy("entry-1")).ok());
  const auto account = exchange.account();
  ASSERT_TRUE(account.ok()) << account.error().describe();
  EXPECT_EQ(account.value().account_type, "SPOT");
  EXPECT_EQ(account.value().free("BTC"), D("0.0999"));  // 0.1 bought, 0.0001 taken as commission
  EXPECT_EQ(account.value().free("USDT"), D("90500"));
  EXPECT_EQ(account.value().taker_rate, D("0.001"));
  EXPECT_EQ(exchange.used_weight(), 21);  // the order (1) and the account (20)
}

TEST_F(BinanceClientAgainstSim, MyTradesFromAnIdReturnsThatTradeAndTheLaterOnes) {
  BinanceClient exchange = client();
  for (const char* id : {"e-1", "e-2", "e-3"}) ASSERT_TRUE(exchange.place_market_order(buy(id)).ok());
  const auto all = exchange.my_trades("BTCUSDT", TradesQuery{});
  ASSERT_TRUE(all.ok()) << all.error().describe();
  ASSERT_EQ(all.value().size(), 3u);
  TradesQuery from_second;
  from_second.from_id = all.value()[1].id;
  const auto later = exchange.my_trades("BTCUSDT", from_second);
  ASSERT_TRUE(later.ok()) << later.error().describe();
  ASSERT_EQ(later.value().size(), 2u);
  EXPECT_EQ(later.value()[0].id, all.value()[1].id);
  EXPECT_EQ(later.value()[1].id, all.value()[2].id);
  EXPECT_TRUE(later.value()[0].is_buyer);
  // Both at once: Binance refuses the combination, a terminal error.
  TradesQuery both = from_second;
  both.start_time_ms = 1;
  const auto refused = exchange.my_trades("BTCUSDT", both);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, -1128);
  EXPECT_EQ(refused.error().error_class, ErrorClass::kTerminal);
}

TEST_F(BinanceClientAgainstSim, OpenOrderFromTheAppIsListedThenCancelledOnce) {
  sim.post("/admin/accounts",
           {{"apiKey", SimServer::kApiKey}, {"secret", SimServer::kApiSecret}, {"balances", {{"BTC", "0.5"}}}});
  sim.post("/admin/orders", {{"apiKey", SimServer::kApiKey},
                             {"symbol", "BTCUSDT"},
                             {"side", "SELL"},
                             {"type", "LIMIT"},
                             {"quantity", "0.2"},
                             {"price", "99000"},
                             {"clientOrderId", "bs0123456789abcdef-1"}});
  BinanceClient exchange = client();
  const auto open = exchange.open_orders(std::string("BTCUSDT"));
  ASSERT_TRUE(open.ok()) << open.error().describe();
  ASSERT_EQ(open.value().size(), 1u);
  EXPECT_EQ(open.value()[0].order.client_order_id, "bs0123456789abcdef-1");
  EXPECT_EQ(open.value()[0].price, D("99000"));
  const auto everywhere = exchange.open_orders(std::nullopt);
  ASSERT_TRUE(everywhere.ok());
  EXPECT_EQ(everywhere.value().size(), 1u);
  EXPECT_EQ(exchange.account().value().balances.at("BTC").locked, D("0.2"));

  const auto cancelled = exchange.cancel_order("BTCUSDT", "bs0123456789abcdef-1");
  ASSERT_TRUE(cancelled.ok()) << cancelled.error().describe();
  ASSERT_TRUE(cancelled.value().has_value());
  EXPECT_EQ(cancelled.value()->status, OrderStatus::kCanceled);
  EXPECT_EQ(exchange.account().value().free("BTC"), D("0.5"));
  EXPECT_TRUE(exchange.open_orders(std::string("BTCUSDT")).value().empty());
  // Gone already (-2011): not an error, nothing open.
  const auto again = exchange.cancel_order("BTCUSDT", "bs0123456789abcdef-1");
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_FALSE(again.value().has_value());
}

TEST_F(BinanceClientAgainstSim, SellBeyondFreeIsRefusedWithInsufficientBalance) {
  BinanceClient exchange = client();
  const auto refused = exchange.place_market_order({"BTCUSDT", core::Side::kSell, D("0.1"), "exit-1"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, -2010);
  EXPECT_EQ(refused.error().message, "Account has insufficient balance for requested action.");
}

TEST_F(BinanceClientAgainstSim, WeightLimitMakesTheClientWaitForRetryAfter) {
  sim.post("/admin/weight", {{"limit", 30}});
  BinanceClient exchange = client();
  ASSERT_TRUE(exchange.account().ok());
  const auto limited = exchange.account();
  ASSERT_FALSE(limited.ok());
  EXPECT_EQ(limited.error().error_class, ErrorClass::kRateLimited);
  EXPECT_EQ(limited.error().code, -1003);
  ASSERT_TRUE(limited.error().retry_after.has_value());
  // Within Retry-After the client does not call at all.
  const int before = sim.get("/admin/weight").at("requests").value("/api/v3/account", 0);
  EXPECT_EQ(exchange.open_orders(std::string("BTCUSDT")).error().error_class, ErrorClass::kRateLimited);
  EXPECT_EQ(sim.get("/admin/weight").at("requests").value("/api/v3/openOrders", 0), 0);
  EXPECT_EQ(before, 1);
}

TEST_F(BinanceClientAgainstSim, MalformedAccountAnswersAreErrorsNamingTheFieldNeverBalances) {
  BinanceClient exchange = client();
  struct Case {
    const char* kind;
    const char* fragment;
  } cases[] = {
      {"truncated", "malformed JSON in account"},
      {"bad-decimal", "account.balances[0].free: invalid decimal \"1.2.3\""},
      {"missing-balances", "account: missing field \"balances\""},
      {"duplicate-asset", "account.balances[1].asset: \"USDT\" appears twice"},
      {"negative", "account.balances[0].free: negative -0.00000001"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.kind);
    sim.faults({{"malformedAccount", 1}, {"malformedAccountKind", c.kind}});
    const auto broken = exchange.account();
    ASSERT_FALSE(broken.ok());
    EXPECT_EQ(broken.error().error_class, ErrorClass::kRetryable);  // a read: asking again is safe
    EXPECT_NE(broken.error().message.find(c.fragment), std::string::npos) << broken.error().message;
    const auto next = exchange.account();  // one answer broken, the next one whole
    ASSERT_TRUE(next.ok()) << next.error().describe();
    EXPECT_EQ(next.value().free("USDT"), D("100000"));
  }
}

}  // namespace
}  // namespace backstop::exchange
