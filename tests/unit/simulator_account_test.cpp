// The simulator's accounts (issue 13, account truth): balances free and
// locked, commissions as Binance charges them, one trade per fill, the
// account, myTrades, openOrders and cancel endpoints, orders "from the
// exchange's app", and a request-weight meter behind X-MBX-USED-WEIGHT-1M.
// Without sockets: Simulator::handle, as the exchange-sim binary serves it.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "exchange/binance_protocol.h"
#include "sim/simulator.h"

// The fixture is named Simulator so that the tests read Simulator.<Behaviour>
// (the names in docs/design/account-truth.md); inside it the engine is
// sim::Simulator.
namespace backstop::sim::account_test {
namespace {

using nlohmann::json;
using Params = std::vector<std::pair<std::string, std::string>>;
using exchange::Order;

Decimal D(const char* text) { return Decimal::parse(text); }

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class Simulator : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(admin("POST", "/admin/symbols",
                    R"([{"symbol":"BTCUSDT","base":"BTC","quote":"USDT","price":"95000","stepSize":"0.00001",
                         "minQty":"0.00001","tickSize":"0.01","minNotional":"5"}])")
                  .status,
              200);
  }

  SimResponse admin(const std::string& method, const std::string& path, const std::string& body = "",
                    const std::string& query = "") {
    SimRequest r;
    r.method = method;
    r.path = path;
    r.query = query;
    r.body = body;
    r.headers["content-type"] = "application/json";
    return engine.handle(r);
  }
  json admin_json(const std::string& method, const std::string& path, const std::string& body = "",
                  const std::string& query = "") {
    const SimResponse r = admin(method, path, body, query);
    EXPECT_EQ(r.status, 200) << path << ": " << r.body;
    return json::parse(r.body);
  }

  // A signed request of account `key` (secret "<key>-secret"), as BinanceClient sends it.
  SimResponse signed_call(const std::string& method, const std::string& path, const Params& params,
                          const std::string& key = "k") {
    std::string query;
    for (const auto& [name, value] : params) query += (query.empty() ? "" : "&") + name + "=" + value;
    query += std::string(query.empty() ? "" : "&") + "recvWindow=5000&timestamp=" + std::to_string(now_ms());
    SimRequest r;
    r.method = method;
    r.path = path;
    r.query = query + "&signature=" + exchange::binance::sign(key + "-secret", query);
    r.headers["x-mbx-apikey"] = key;
    return engine.handle(r);
  }
  json ok_json(const SimResponse& r) {
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body);
  }

  void account(const std::string& key, const std::string& balances_json, bool limited = true) {
    json body = json::parse(R"({"secret":"","balances":)" + balances_json + "}");
    body["apiKey"] = key;
    body["secret"] = key + "-secret";
    if (!limited) body.erase("balances");
    ASSERT_EQ(admin("POST", "/admin/accounts", body.dump()).status, 200);
  }
  void commission(const std::string& body) { ASSERT_EQ(admin("POST", "/admin/commission", body).status, 200); }

  SimResponse market(const std::string& side, const std::string& quantity, const std::string& key = "k") {
    return signed_call("POST", "/api/v3/order",
                       {{"symbol", "BTCUSDT"}, {"side", side}, {"type", "MARKET"}, {"quantity", quantity}}, key);
  }
  SimResponse limit(const std::string& side, const std::string& quantity, const std::string& price,
                    const std::string& client_id, const std::string& key = "k") {
    return signed_call("POST", "/api/v3/order",
                       {{"symbol", "BTCUSDT"},
                        {"side", side},
                        {"type", "LIMIT"},
                        {"timeInForce", "GTC"},
                        {"quantity", quantity},
                        {"price", price},
                        {"newClientOrderId", client_id}},
                       key);
  }

  // The account as BinanceClient reads it: through the production parser.
  exchange::Account read_account(const std::string& key = "k") {
    const SimResponse r = signed_call("GET", "/api/v3/account", {{"omitZeroBalances", "true"}}, key);
    EXPECT_EQ(r.status, 200) << r.body;
    return exchange::binance::parse_account(r.body);
  }
  std::vector<exchange::AccountTrade> read_trades(const Params& params, const std::string& key = "k") {
    const SimResponse r = signed_call("GET", "/api/v3/myTrades", params, key);
    EXPECT_EQ(r.status, 200) << r.body;
    return exchange::binance::parse_my_trades(r.body);
  }
  static int error_code(const SimResponse& r) { return json::parse(r.body).at("code").get<int>(); }
  static std::string error_message(const SimResponse& r) { return json::parse(r.body).at("msg").get<std::string>(); }
  static int weight(const SimResponse& r) { return std::stoi(r.headers.at("X-MBX-USED-WEIGHT-1M")); }

  sim::Simulator engine;
};

TEST_F(Simulator, BuyChargesBaseCommission) {
  // Without BNB, Binance takes the commission from what the order receives: a
  // BUY's base asset. A position entered with 0.1 BTC holds 0.0999.
  account("k", R"({"USDT":"10000"})");
  commission(R"({"apiKey":"k","takerRate":"0.001","makerRate":"0.001"})");
  const json order = ok_json(market("BUY", "0.1"));
  ASSERT_EQ(order.at("fills").size(), 1u);
  EXPECT_EQ(order["fills"][0].at("commission"), "0.00010000");
  EXPECT_EQ(order["fills"][0].at("commissionAsset"), "BTC");
  const exchange::Account a = read_account();
  EXPECT_EQ(a.free("BTC"), D("0.0999"));
  EXPECT_EQ(a.free("USDT"), D("500"));  // 10000 - 0.1 x 95000
  EXPECT_EQ(a.taker_rate, D("0.001"));
  const auto trades = read_trades({{"symbol", "BTCUSDT"}});
  ASSERT_EQ(trades.size(), 1u);
  EXPECT_TRUE(trades[0].is_buyer);
  EXPECT_FALSE(trades[0].is_maker);
  EXPECT_EQ(trades[0].qty, D("0.1"));
  EXPECT_EQ(trades[0].price, D("95000"));
  EXPECT_EQ(trades[0].quote_qty, D("9500"));
  EXPECT_EQ(trades[0].commission, D("0.0001"));
  EXPECT_EQ(trades[0].commission_asset, "BTC");
  EXPECT_EQ(trades[0].id, order["fills"][0].at("tradeId").get<std::int64_t>());
  EXPECT_EQ(trades[0].order_id, order.at("orderId").get<std::int64_t>());
}

TEST_F(Simulator, SellChargesTheQuoteAssetOrBnbWhenThereIsEnough) {
  account("k", R"({"BTC":"0.3","BNB":"0.02"})");
  commission(R"({"apiKey":"k","takerRate":"0.001","makerRate":"0.001","payInBnb":true,"bnbPrice":"500"})");
  // 0.1 x 95000 = 9500 USDT, commission 9.5 USDT = 0.019 BNB at 500.
  const json first = ok_json(market("SELL", "0.1"));
  EXPECT_EQ(first["fills"][0].at("commissionAsset"), "BNB");
  EXPECT_EQ(first["fills"][0].at("commission"), "0.01900000");
  // 0.001 BNB left: the next commission falls back to the received asset, whole.
  const json second = ok_json(market("SELL", "0.1"));
  EXPECT_EQ(second["fills"][0].at("commissionAsset"), "USDT");
  EXPECT_EQ(second["fills"][0].at("commission"), "9.50000000");
  const exchange::Account a = read_account();
  EXPECT_EQ(a.free("BTC"), D("0.1"));
  EXPECT_EQ(a.free("BNB"), D("0.001"));
  EXPECT_EQ(a.free("USDT"), D("18990.5"));  // 9500 + 9500 - 9.5
}

TEST_F(Simulator, SellingMoreThanFreeIsRefusedOnABalanceLimitedAccount) {
  account("k", R"({"BTC":"0.05"})");
  const SimResponse refused = market("SELL", "0.1");
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(error_code(refused), -2010);
  EXPECT_EQ(error_message(refused), "Account has insufficient balance for requested action.");
  EXPECT_EQ(read_account().free("BTC"), D("0.05"));  // nothing moved
  EXPECT_TRUE(engine.ledger().empty());
  EXPECT_TRUE(read_trades({{"symbol", "BTCUSDT"}}).empty());
}

// Binance checks the quantity a SELL asks for against free, not what a
// partial fill would take: the simulator accepted 0.1 on 0.05 held when the
// partial-fill fault would fill only part of it.
TEST_F(Simulator, AMarketSellBeyondFreeIsRefusedEvenWhenItWouldFillOnlyPartly) {
  account("k", R"({"BTC":"0.05"})");
  ASSERT_EQ(admin("POST", "/admin/faults", R"({"partialFill":1})").status, 200);
  const SimResponse refused = market("SELL", "0.1");
  EXPECT_EQ(error_code(refused), -2010) << refused.body;
  EXPECT_EQ(read_account().free("BTC"), D("0.05"));
}

TEST_F(Simulator, AnAccountNeverGivenBalancesIsAPaperAccountThatSpendsLikeAnyOther) {
  // Existing tests sell from accounts without balances: such an account holds
  // a billion of every asset, reports it, and its orders move it.
  account("k", "{}", false);
  EXPECT_EQ(read_account().free("BTC"), D("1000000000"));
  ok_json(market("SELL", "0.1"));
  const exchange::Account a = read_account();
  EXPECT_EQ(a.free("BTC"), D("999999999.9"));
  EXPECT_EQ(a.free("USDT"), D("1000009500"));
}

TEST_F(Simulator, AccountAnswerOmitsZeroBalancesOnlyWhenAsked) {
  account("k", R"({"BTC":"1","ETH":"0"})");
  admin_json("POST", "/admin/accounts", R"({"apiKey":"k","secret":"k-secret","uid":4242,"accountType":"MARGIN"})");
  const exchange::Account omitted = read_account();
  EXPECT_EQ(omitted.balances.count("ETH"), 0u);
  EXPECT_EQ(omitted.uid, 4242);
  EXPECT_EQ(omitted.account_type, "MARGIN");
  const exchange::Account all =
      exchange::binance::parse_account(ok_json(signed_call("GET", "/api/v3/account", {})).dump());
  EXPECT_EQ(all.balances.count("ETH"), 1u);
  EXPECT_EQ(all.free("BTC"), D("1"));  // the balances survived the second /admin/accounts
}

TEST_F(Simulator, MyTradesFromId) {
  account("k", R"({"USDT":"100000"})");
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(ok_json(market("BUY", "0.1"))["fills"][0].at("tradeId").get<std::int64_t>());
  ASSERT_LT(ids[0], ids[1]);
  ASSERT_LT(ids[1], ids[2]);
  const auto from_second = read_trades({{"symbol", "BTCUSDT"}, {"fromId", std::to_string(ids[1])}});
  ASSERT_EQ(from_second.size(), 2u);
  EXPECT_EQ(from_second[0].id, ids[1]);  // >= fromId, oldest first
  EXPECT_EQ(from_second[1].id, ids[2]);
  const auto one = read_trades({{"symbol", "BTCUSDT"}, {"fromId", std::to_string(ids[0])}, {"limit", "1"}});
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].id, ids[0]);
  // Without fromId: the most recent `limit`, oldest first.
  const auto recent = read_trades({{"symbol", "BTCUSDT"}, {"limit", "2"}});
  ASSERT_EQ(recent.size(), 2u);
  EXPECT_EQ(recent[0].id, ids[1]);
  EXPECT_TRUE(read_trades({{"symbol", "BTCUSDT"}, {"fromId", std::to_string(ids[2] + 1)}}).empty());
  // Another account's trades are not this one's.
  account("other", R"({"USDT":"0"})");
  EXPECT_TRUE(read_trades({{"symbol", "BTCUSDT"}}, "other").empty());
}

TEST_F(Simulator, MyTradesRefusesTheCombinationsBinanceRefuses) {
  account("k", R"({"USDT":"100000"})");
  const json order = ok_json(market("BUY", "0.1"));
  const std::string order_id = std::to_string(order.at("orderId").get<std::int64_t>());
  const std::string now = std::to_string(now_ms());
  const std::string day_ago = std::to_string(now_ms() - 86'400'000 - 1000);
  struct Case {
    Params params;
    int code;
  } refused[] = {
      {{{"fromId", "1"}}, -1102},  // symbol is mandatory
      {{{"symbol", "DOGEUSDT"}}, -1121},
      {{{"symbol", "BTCUSDT"}, {"fromId", "1"}, {"startTime", now}}, -1128},
      {{{"symbol", "BTCUSDT"}, {"fromId", "1"}, {"endTime", now}}, -1128},
      {{{"symbol", "BTCUSDT"}, {"orderId", order_id}, {"startTime", now}}, -1128},
      {{{"symbol", "BTCUSDT"}, {"orderId", order_id}, {"endTime", now}}, -1128},
      {{{"symbol", "BTCUSDT"}, {"startTime", day_ago}, {"endTime", now}}, -1127},  // more than 24 hours
  };
  for (const auto& c : refused) {
    const SimResponse r = signed_call("GET", "/api/v3/myTrades", c.params);
    SCOPED_TRACE(r.body);
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(error_code(r), c.code);
  }
  EXPECT_EQ(error_message(
                signed_call("GET", "/api/v3/myTrades", {{"symbol", "BTCUSDT"}, {"fromId", "1"}, {"startTime", now}})),
            "Combination of optional parameters invalid.");
  // The supported ones.
  EXPECT_EQ(read_trades({{"symbol", "BTCUSDT"}, {"orderId", order_id}}).size(), 1u);
  EXPECT_EQ(read_trades({{"symbol", "BTCUSDT"}, {"orderId", order_id}, {"fromId", "1"}}).size(), 1u);
  EXPECT_EQ(read_trades({{"symbol", "BTCUSDT"}, {"startTime", std::to_string(now_ms() - 60000)}}).size(), 1u);
  EXPECT_EQ(read_trades({{"symbol", "BTCUSDT"}, {"endTime", std::to_string(now_ms() - 60000)}}).size(), 0u);
  EXPECT_EQ(read_trades({{"symbol", "BTCUSDT"}, {"orderId", "999999"}}).size(), 0u);
}

TEST_F(Simulator, WeightHeaderCountsEndpoints) {
  account("k", R"({"USDT":"100000"})");
  int used = weight(admin("GET", "/api/v3/time"));  // unsigned, weight 1
  EXPECT_EQ(used, 1);
  auto expect_step = [&](const SimResponse& r, int step, const char* what) {
    SCOPED_TRACE(what);
    EXPECT_EQ(weight(r), used + step) << r.body;
    used = weight(r);
  };
  expect_step(signed_call("GET", "/api/v3/account", {}), 20, "account");
  expect_step(signed_call("GET", "/api/v3/myTrades", {{"symbol", "BTCUSDT"}}), 20, "myTrades");
  expect_step(signed_call("GET", "/api/v3/myTrades", {{"symbol", "BTCUSDT"}, {"orderId", "1"}}), 5,
              "myTrades with orderId");
  expect_step(signed_call("GET", "/api/v3/openOrders", {{"symbol", "BTCUSDT"}}), 6, "openOrders of a symbol");
  expect_step(signed_call("GET", "/api/v3/openOrders", {}), 80, "openOrders of every symbol");
  expect_step(market("BUY", "0.1"), 1, "order");
  expect_step(admin("GET", "/api/v3/exchangeInfo"), 20, "exchangeInfo");
  const json meter = admin_json("GET", "/admin/weight");
  EXPECT_EQ(meter.at("usedWeight1m"), used);
  EXPECT_EQ(meter.at("requests").at("/api/v3/account"), 1);
  EXPECT_EQ(meter.at("requests").at("/api/v3/myTrades"), 2);
}

TEST_F(Simulator, PassingTheWeightLimitAnswers429WithRetryAfter) {
  account("k", R"({"USDT":"100000"})");
  admin_json("POST", "/admin/weight", R"({"limit":50})");
  EXPECT_EQ(signed_call("GET", "/api/v3/account", {}).status, 200);  // 20
  EXPECT_EQ(signed_call("GET", "/api/v3/account", {}).status, 200);  // 40
  const SimResponse limited = signed_call("GET", "/api/v3/account", {});
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(error_code(limited), -1003);
  EXPECT_GE(std::stoi(limited.headers.at("Retry-After")), 1);
  EXPECT_EQ(admin("GET", "/api/v3/time").status, 200);  // 41: what fits still goes through
}

TEST_F(Simulator, AdminOrderFromTheExchangesAppMovesTheBalanceWithoutASignature) {
  account("k", R"({"BTC":"1"})");
  const json order =
      admin_json("POST", "/admin/orders", R"({"apiKey":"k","symbol":"BTCUSDT","side":"SELL","type":"MARKET",
                                             "quantity":"0.5"})");
  EXPECT_EQ(order.at("status"), "FILLED");
  EXPECT_EQ(order.at("clientOrderId").get<std::string>().rfind("bs", 0), std::string::npos);  // not Backstop's
  EXPECT_EQ(read_account().free("BTC"), D("0.5"));
  const auto trades = read_trades({{"symbol", "BTCUSDT"}});
  ASSERT_EQ(trades.size(), 1u);
  EXPECT_FALSE(trades[0].is_buyer);
  const json listed = admin_json("GET", "/admin/trades", "", "apiKey=k");
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].at("origin"), "app");
  // Short: the same refusal as the API's, nothing moved.
  const SimResponse short_sell = admin("POST", "/admin/orders",
                                       R"({"apiKey":"k","symbol":"BTCUSDT","side":"SELL","type":"MARKET",
                                           "quantity":"0.6"})");
  EXPECT_EQ(short_sell.status, 400);
  EXPECT_EQ(error_code(short_sell), -2010);
  EXPECT_EQ(read_account().free("BTC"), D("0.5"));
}

TEST_F(Simulator, BalanceUpdatesDepositAndWithdrawWithinFree) {
  account("k", R"({"BTC":"1"})");
  admin_json("POST", "/admin/balance-updates", R"({"apiKey":"k","asset":"BTC","delta":"0.25"})");
  admin_json("POST", "/admin/balance-updates", R"({"apiKey":"k","asset":"BTC","delta":"-1"})");
  EXPECT_EQ(read_account().free("BTC"), D("0.25"));
  const SimResponse refused = admin("POST", "/admin/balance-updates", R"({"apiKey":"k","asset":"BTC","delta":"-0.3"})");
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.body.find("free BTC 0.25"), std::string::npos) << refused.body;
  EXPECT_EQ(read_account().free("BTC"), D("0.25"));
}

TEST_F(Simulator, LimitOrderLocksAndCancels) {
  account("k", R"({"BTC":"0.1"})");
  const json placed = ok_json(limit("SELL", "0.1", "96000", "bs-orphan-1"));
  EXPECT_EQ(placed.at("status"), "NEW");
  EXPECT_EQ(placed.at("type"), "LIMIT");
  EXPECT_EQ(placed.at("price"), "96000.00000000");
  EXPECT_TRUE(placed.at("fills").empty());
  exchange::Account a = read_account();
  EXPECT_EQ(a.free("BTC"), D("0"));
  EXPECT_EQ(a.balances.at("BTC").locked, D("0.1"));
  // What is locked cannot be sold again.
  const SimResponse refused = market("SELL", "0.05");
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(error_code(refused), -2010);
  // Listed as open, for its symbol and for all.
  const auto open = exchange::binance::parse_open_orders(
      ok_json(signed_call("GET", "/api/v3/openOrders", {{"symbol", "BTCUSDT"}})).dump());
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].order.client_order_id, "bs-orphan-1");
  EXPECT_EQ(open[0].side, core::Side::kSell);
  EXPECT_EQ(open[0].price, D("96000"));
  EXPECT_EQ(ok_json(signed_call("GET", "/api/v3/openOrders", {})).size(), 1u);
  EXPECT_EQ(error_code(signed_call("GET", "/api/v3/openOrders", {{"symbol", "DOGEUSDT"}})), -1121);
  // Cancelled: the lock goes back to free, nothing is open any more.
  const Order cancelled = exchange::binance::parse_cancel(
      ok_json(signed_call("DELETE", "/api/v3/order", {{"symbol", "BTCUSDT"}, {"origClientOrderId", "bs-orphan-1"}}))
          .dump());
  EXPECT_EQ(cancelled.status, exchange::OrderStatus::kCanceled);
  EXPECT_EQ(cancelled.client_order_id, "bs-orphan-1");
  a = read_account();
  EXPECT_EQ(a.free("BTC"), D("0.1"));
  EXPECT_EQ(a.balances.at("BTC").locked, D("0"));
  EXPECT_TRUE(ok_json(signed_call("GET", "/api/v3/openOrders", {{"symbol", "BTCUSDT"}})).empty());
  // A second cancel, or one of an order that never was: -2011.
  for (const char* id : {"bs-orphan-1", "never-placed"}) {
    const SimResponse again =
        signed_call("DELETE", "/api/v3/order", {{"symbol", "BTCUSDT"}, {"origClientOrderId", id}});
    EXPECT_EQ(again.status, 400);
    EXPECT_EQ(error_code(again), -2011);
    EXPECT_EQ(error_message(again), "Unknown order sent.");
  }
  EXPECT_EQ(error_code(signed_call("DELETE", "/api/v3/order", {{"symbol", "BTCUSDT"}})), -1102);
  // Nothing traded.
  EXPECT_TRUE(read_trades({{"symbol", "BTCUSDT"}}).empty());
}

TEST_F(Simulator, RestingLimitSellFillsAtItsPriceAsMakerWhenThePriceCrosses) {
  account("k", R"({"BTC":"0.1"})");
  commission(R"({"apiKey":"k","takerRate":"0.001","makerRate":"0.0005"})");
  ok_json(limit("SELL", "0.1", "96000", "app-tp"));
  engine.set_price("BTCUSDT", D("95900"));  // not reached
  EXPECT_EQ(read_account().balances.at("BTC").locked, D("0.1"));
  engine.set_price("BTCUSDT", D("96100"));  // crossed
  const exchange::Account a = read_account();
  EXPECT_EQ(a.balances.count("BTC"), 0u);  // nothing left, free or locked
  EXPECT_EQ(a.free("USDT"), D("9595.2"));  // 0.1 x 96000 = 9600, maker 0.05 % = 4.8 USDT
  const auto trades = read_trades({{"symbol", "BTCUSDT"}});
  ASSERT_EQ(trades.size(), 1u);
  EXPECT_TRUE(trades[0].is_maker);
  EXPECT_EQ(trades[0].price, D("96000"));
  EXPECT_EQ(trades[0].commission, D("4.8"));
  const json queried =
      ok_json(signed_call("GET", "/api/v3/order", {{"symbol", "BTCUSDT"}, {"origClientOrderId", "app-tp"}}));
  EXPECT_EQ(queried.at("status"), "FILLED");
  EXPECT_EQ(queried.at("executedQty"), "0.10000000");
  EXPECT_EQ(
      error_code(signed_call("DELETE", "/api/v3/order", {{"symbol", "BTCUSDT"}, {"origClientOrderId", "app-tp"}})),
      -2011);
}

TEST_F(Simulator, LimitBuyLocksTheQuoteAndALimitTheBookCrossesFillsAtOnce) {
  account("k", R"({"USDT":"10000"})");
  ok_json(limit("BUY", "0.1", "94000", "dip"));
  exchange::Account a = read_account();
  EXPECT_EQ(a.free("USDT"), D("600"));
  EXPECT_EQ(a.balances.at("USDT").locked, D("9400"));
  // A second buy beyond what is free is refused.
  EXPECT_EQ(error_code(limit("BUY", "0.01", "94000", "dip-2")), -2010);
  // A limit above the ask takes the ask, at once (a taker).
  account("t", R"({"USDT":"10000"})");
  const json taker = ok_json(limit("BUY", "0.1", "99000", "now", "t"));
  EXPECT_EQ(taker.at("status"), "FILLED");
  EXPECT_EQ(taker["fills"][0].at("price"), "95000.00000000");
  engine.set_price("BTCUSDT", D("93999"));
  a = read_account();
  EXPECT_EQ(a.free("BTC"), D("0.1"));
  EXPECT_EQ(a.free("USDT"), D("600"));
  EXPECT_EQ(a.balances.at("USDT").locked, D("0"));
}

TEST_F(Simulator, LimitOrderParametersAreCheckedAsBinanceChecksThem) {
  account("k", R"({"BTC":"1"})");
  EXPECT_EQ(error_code(signed_call(
                "POST", "/api/v3/order",
                {{"symbol", "BTCUSDT"}, {"side", "SELL"}, {"type", "LIMIT"}, {"quantity", "0.1"}, {"price", "96000"}})),
            -1102);  // timeInForce
  EXPECT_EQ(
      error_code(signed_call(
          "POST", "/api/v3/order",
          {{"symbol", "BTCUSDT"}, {"side", "SELL"}, {"type", "LIMIT"}, {"timeInForce", "GTC"}, {"quantity", "0.1"}})),
      -1102);                                                               // price
  EXPECT_EQ(error_code(limit("SELL", "0.1", "96000.001", "tick")), -1013);  // PRICE_FILTER
  EXPECT_EQ(
      error_code(signed_call(
          "POST", "/api/v3/order",
          {{"symbol", "BTCUSDT"}, {"side", "SELL"}, {"type", "MARKET"}, {"quantity", "0.1"}, {"price", "96000"}})),
      -1106);
  EXPECT_EQ(
      error_code(signed_call("POST", "/api/v3/order",
                             {{"symbol", "BTCUSDT"}, {"side", "SELL"}, {"type", "STOP_LOSS"}, {"quantity", "0.1"}})),
      -1116);
  EXPECT_EQ(read_account().free("BTC"), D("1"));
}

// The user data stream (issue 13, step 10): what an order placed in the app, a
// fill, a cancel and a deposit report, in the order they happen, each event
// readable by the production parser (wrapped as the WebSocket API sends it).
TEST_F(Simulator, UserDataStreamReportsEveryChangeOfTheAccountInOrder) {
  account("k", R"({"BTC":"1","USDT":"100000"})");
  account("other", R"({"BTC":"1"})");
  std::vector<exchange::UserStreamEvent> events;
  std::vector<std::string> keys;
  engine.set_account_listener([&](const std::string& key, const std::string& event) {
    keys.push_back(key);
    const auto parsed = exchange::binance::parse_user_stream_event(R"({"subscriptionId":0,"event":)" + event + "}");
    ASSERT_TRUE(parsed.has_value()) << event;
    events.push_back(*parsed);
  });
  ASSERT_EQ(admin("POST", "/admin/orders",
                  R"({"apiKey":"k","symbol":"BTCUSDT","side":"SELL","type":"MARKET","quantity":"0.25"})")
                .status,
            200);
  using Kind = exchange::UserStreamEvent::Kind;
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kind, Kind::kExecutionReport);
  EXPECT_EQ(events[0].execution.execution_type, "NEW");
  EXPECT_EQ(events[1].execution.execution_type, "TRADE");
  EXPECT_EQ(events[1].execution.order_status, exchange::OrderStatus::kFilled);
  EXPECT_EQ(events[1].execution.last_qty, D("0.25"));
  EXPECT_EQ(events[1].execution.last_price, D("95000"));
  EXPECT_GT(events[1].execution.trade_id, 0);
  EXPECT_EQ(events[1].execution.client_order_id.rfind("app", 0), 0u);  // not Backstop's
  EXPECT_EQ(events[2].kind, Kind::kAccountPosition);
  EXPECT_EQ(events[2].balances.at("BTC").free, D("0.75"));
  EXPECT_EQ(events[2].balances.at("USDT").free, D("123750"));
  EXPECT_EQ(keys, (std::vector<std::string>{"k", "k", "k"}));

  // A resting order locks, its cancel releases: NEW + position, CANCELED + position.
  events.clear();
  ASSERT_EQ(limit("SELL", "0.5", "99000", "bsX-1").status, 200);
  ASSERT_EQ(signed_call("DELETE", "/api/v3/order", {{"symbol", "BTCUSDT"}, {"origClientOrderId", "bsX-1"}}).status,
            200);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[1].balances.at("BTC").locked, D("0.5"));
  EXPECT_EQ(events[2].execution.execution_type, "CANCELED");
  EXPECT_EQ(events[2].execution.orig_client_order_id, "bsX-1");
  EXPECT_EQ(events[3].balances.at("BTC").locked, D("0"));
  EXPECT_EQ(events[3].balances.at("BTC").free, D("0.75"));

  // A deposit: balanceUpdate, then the position; another account's events are its own.
  events.clear();
  keys.clear();
  ASSERT_EQ(admin("POST", "/admin/balance-updates", R"({"apiKey":"other","asset":"BTC","delta":"-0.1"})").status, 200);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, Kind::kBalanceUpdate);
  EXPECT_EQ(events[0].delta, D("-0.1"));
  EXPECT_EQ(events[1].balances.at("BTC").free, D("0.9"));
  EXPECT_EQ(keys, (std::vector<std::string>{"other", "other"}));

  // A resting order the price reaches fills as the maker.
  events.clear();
  ASSERT_EQ(limit("SELL", "0.1", "96000", "bsX-2").status, 200);
  engine.set_price("BTCUSDT", D("96500"));
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[2].execution.execution_type, "TRADE");
  EXPECT_TRUE(events[2].execution.is_maker);
  EXPECT_EQ(events[3].balances.at("BTC").free, D("0.65"));
}

// userDataStream.subscribe.signature is signed and timed as REST requests are.
TEST_F(Simulator, WebSocketApiSubscriptionIsSignedAndTimed) {
  account("k", R"({"BTC":"1"})");
  auto request = [&](const std::string& secret, std::int64_t timestamp, const std::string& key = "k") {
    return exchange::binance::ws_api_signed_request(
        "r1", "userDataStream.subscribe.signature",
        {{"apiKey", key}, {"recvWindow", "5000"}, {"timestamp", std::to_string(timestamp)}}, secret);
  };
  auto answer = [](const sim::Simulator::WsApiReply& reply) {
    const auto parsed = exchange::binance::parse_ws_api_answer(reply.text);
    EXPECT_TRUE(parsed.has_value()) << reply.text;
    return parsed.value_or(exchange::binance::WsApiAnswer{});
  };
  const auto ok = engine.ws_api(request("k-secret", now_ms()), 7);
  EXPECT_EQ(ok.subscribed_key, "k");
  EXPECT_EQ(answer(ok).status, 200);
  EXPECT_EQ(answer(ok).id, "r1");
  EXPECT_EQ(answer(ok).subscription_id, 7);

  const auto bad_signature = engine.ws_api(request("wrong", now_ms()), 8);
  EXPECT_TRUE(bad_signature.subscribed_key.empty());
  EXPECT_EQ(answer(bad_signature).status, 400);
  EXPECT_EQ(answer(bad_signature).error.code, -1022);
  EXPECT_EQ(answer(engine.ws_api(request("k-secret", now_ms(), "nobody"), 8)).error.code, -2015);
  EXPECT_EQ(answer(engine.ws_api(request("k-secret", now_ms() - 6000), 8)).error.code, -1021);  // outside recvWindow
  EXPECT_EQ(answer(engine.ws_api(request("k-secret", now_ms() + 2000), 8)).error.code, -1021);  // from the future
  const auto not_json = engine.ws_api("{oops", 8);
  EXPECT_EQ(answer(not_json).status, 400);
  EXPECT_EQ(answer(not_json).id, "");
  EXPECT_EQ(answer(engine.ws_api(R"({"id":5,"method":"userDataStream.start","params":{}})", 8)).status, 400);
  EXPECT_EQ(answer(engine.ws_api(R"({"id":5,"method":"ping"})", 8)).status, 200);
  EXPECT_EQ(answer(engine.ws_api(R"({"id":6,"method":"ping","params":{"x":1}})", 8)).error.code, -1104);
  // As Binance: a parameter it does not know, an id that is no integer, string or null.
  const std::string extra = exchange::binance::ws_api_signed_request(
      "r2", "userDataStream.subscribe.signature",
      {{"apiKey", "k"}, {"foo", "bar"}, {"timestamp", std::to_string(now_ms())}}, "k-secret");
  EXPECT_EQ(answer(engine.ws_api(extra, 8)).error.code, -1104);
  const auto object_id = engine.ws_api(R"({"id":{"a":1},"method":"ping"})", 8);
  EXPECT_EQ(answer(object_id).status, 400);
  EXPECT_EQ(answer(object_id).id, "");
}

}  // namespace
}  // namespace backstop::sim::account_test
