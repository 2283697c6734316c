// BinanceClient over a scripted transport: what goes on the wire, how often,
// and what each answer means to the caller.
#include "exchange/binance_client.h"

#include <gtest/gtest.h>

#include <deque>

namespace backstop::exchange {
namespace {

// Answers requests from a script, in order, and records what was sent.
class ScriptedTransport : public net::HttpTransport {
 public:
  struct Step {
    int status = 200;
    std::string body;
    std::map<std::string, std::string> headers;
    bool drop = false;  // no answer: a timeout after sending
  };
  explicit ScriptedTransport(std::deque<Step>* script, std::vector<net::HttpRequest>* sent)
      : script_(script), sent_(sent) {}

  net::HttpResponse send(const net::HttpRequest& request) override {
    sent_->push_back(request);
    if (script_->empty()) throw net::TransportError("script exhausted", false);
    const Step step = script_->front();
    script_->pop_front();
    if (step.drop) throw net::TransportError("timeout", true);
    return net::HttpResponse{step.status, step.headers, step.body};
  }

 private:
  std::deque<ScriptedTransport::Step>* script_;
  std::vector<net::HttpRequest>* sent_;
};

const char* kFilled =
    R"({"symbol":"BTCUSDT","orderId":7,"clientOrderId":"bsX-1","side":"SELL","type":"MARKET","status":"FILLED",)"
    R"("origQty":"0.5","executedQty":"0.5","cummulativeQuoteQty":"46500"})";

class BinanceClientTest : public ::testing::Test {
 protected:
  BinanceClient make() {
    BinanceConfig config;
    config.base_url = "http://exchange.test";
    config.api_key = "key";
    config.api_secret = "secret";
    return BinanceClient(config, std::make_unique<ScriptedTransport>(&script, &sent), [this] { return now_ms; });
  }
  static OrderRequest order(const std::string& id) {
    return {"BTCUSDT", core::Side::kSell, core::Decimal::parse("0.5"), id};
  }
  std::deque<ScriptedTransport::Step> script;
  std::vector<net::HttpRequest> sent;
  std::int64_t now_ms = 1'700'000'000'000;
};

TEST_F(BinanceClientTest, RateLimitKeepsTheClientQuietForRetryAfter) {
  BinanceClient client = make();
  script.push_back({429, R"({"code":-1003,"msg":"Too much request weight used"})", {{"retry-after", "30"}}});
  auto first = client.place_market_order(order("bsA-1"));
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().error_class, ErrorClass::kRateLimited);
  EXPECT_EQ(sent.size(), 1u);
  // Within Retry-After nothing goes on the wire, neither orders nor queries.
  script.push_back({200, kFilled, {}});
  auto second = client.place_market_order(order("bsB-1"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().error_class, ErrorClass::kRateLimited);
  EXPECT_FALSE(client.query_order("BTCUSDT", "bsA-1").ok());
  EXPECT_EQ(sent.size(), 1u);
}

// A read budget (reconcile's --max-weight-per-minute): once the exchange
// reports the IP's weight this minute near it, reads are refused without going
// on the wire; orders have no budget.
TEST_F(BinanceClientTest, AReadBudgetRefusesReadsNotOrders) {
  BinanceConfig config;
  config.base_url = "http://exchange.test";
  config.api_key = "key";
  config.api_secret = "secret";
  config.read_weight_budget = 50;
  BinanceClient client(config, std::make_unique<ScriptedTransport>(&script, &sent), [this] { return now_ms; });
  const char* account =
      R"({"canTrade":true,"updateTime":1,"accountType":"SPOT","permissions":["SPOT"],"uid":7,"balances":[]})";
  script.push_back({200, account, {{"x-mbx-used-weight-1m", "25"}}});
  ASSERT_TRUE(client.account().ok());  // nothing reported yet: it goes
  script.push_back({200, account, {{"x-mbx-used-weight-1m", "45"}}});
  ASSERT_TRUE(client.account().ok());     // 25 + 20 <= 50
  const auto refused = client.account();  // 45 + 20 > 50
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().error_class, ErrorClass::kRateLimited);
  EXPECT_NE(refused.error().message.find("read budget of 50"), std::string::npos) << refused.error().message;
  EXPECT_EQ(sent.size(), 2u);
  script.push_back({200, kFilled, {{"x-mbx-used-weight-1m", "46"}}});
  EXPECT_TRUE(client.place_market_order(order("bsX-1")).ok());  // the exits keep the rest
  EXPECT_EQ(sent.size(), 3u);
  EXPECT_EQ(binance::request_weight("GET", "/api/v3/openOrders", {}), 80);
  EXPECT_EQ(binance::request_weight("GET", "/api/v3/openOrders", {{"symbol", "BTCUSDT"}}), 6);
  EXPECT_EQ(binance::request_weight("GET", "/api/v3/order", {{"symbol", "BTCUSDT"}}), 4);
  EXPECT_EQ(binance::request_weight("POST", "/api/v3/order", {{"symbol", "BTCUSDT"}}), 1);
}

TEST_F(BinanceClientTest, BanStopsAllCalls) {
  BinanceClient client = make();
  script.push_back(
      {418, R"({"code":-1003,"msg":"Way too much request weight used; IP banned"})", {{"retry-after", "600"}}});
  EXPECT_EQ(client.prices().error().error_class, ErrorClass::kBanned);
  EXPECT_EQ(client.place_market_order(order("bsA-1")).error().error_class, ErrorClass::kBanned);
  EXPECT_EQ(sent.size(), 1u);
}

TEST_F(BinanceClientTest, TimestampRejectionResyncsAndSendsTheOrderOnceMore) {
  BinanceClient client = make();
  script.push_back({400, R"({"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."})", {}});
  script.push_back({200, R"({"serverTime":1700000009000})", {}});
  script.push_back({200, kFilled, {}});
  const auto placed = client.place_market_order(order("bsA-1"));
  ASSERT_TRUE(placed.ok()) << placed.error().describe();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[1].target, "/api/v3/time");
  EXPECT_NE(sent[2].target.find("timestamp=1700000009000"), std::string::npos) << sent[2].target;
  EXPECT_EQ(client.clock_offset_ms(), 9000);
}

TEST_F(BinanceClientTest, OrderWithoutAnAnswerIsStatusUnknownAndNotResent) {
  BinanceClient client = make();
  script.push_back({0, "", {}, true});
  const auto placed = client.place_market_order(order("bsA-1"));
  ASSERT_FALSE(placed.ok());
  EXPECT_EQ(placed.error().error_class, ErrorClass::kStatusUnknown);
  EXPECT_EQ(sent.size(), 1u);
}

TEST_F(BinanceClientTest, SeveralOrdersAtOnceAnswerInRequestOrderEachSentOnce) {
  BinanceClient client = make();
  script.push_back({200, kFilled, {}});
  script.push_back({400, R"({"code":-2010,"msg":"Account has insufficient balance for requested action."})", {}});
  script.push_back({0, "", {}, true});
  const auto answers = client.place_market_orders({order("bsA-1"), order("bsB-1"), order("bsC-1")});
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_TRUE(answers[0].ok());
  EXPECT_EQ(answers[1].error().error_class, ErrorClass::kRetryable);
  EXPECT_EQ(answers[2].error().error_class, ErrorClass::kStatusUnknown);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_NE(sent[0].target.find("newClientOrderId=bsA-1"), std::string::npos);
  EXPECT_NE(sent[1].target.find("newClientOrderId=bsB-1"), std::string::npos);
  EXPECT_NE(sent[2].target.find("newClientOrderId=bsC-1"), std::string::npos);
  for (const auto& r : sent) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.headers.at("X-MBX-APIKEY"), "key");
    EXPECT_NE(r.target.find("&signature="), std::string::npos);
  }
}

}  // namespace
}  // namespace backstop::exchange

// Account truth (issue 13): the account calls on the wire and their answers' meaning.
namespace backstop::exchange {
namespace {

TEST_F(BinanceClientTest, AccountIsASignedReadWithoutZeroBalances) {
  BinanceClient client = make();
  script.push_back({200,
                    R"({"canTrade":true,"updateTime":1,"accountType":"SPOT","permissions":["SPOT"],"uid":7,
                        "balances":[{"asset":"BTC","free":"0.5","locked":"0.1"}]})",
                    {}});
  const auto account = client.account();
  ASSERT_TRUE(account.ok()) << account.error().describe();
  EXPECT_EQ(account.value().free("BTC"), Decimal::parse("0.5"));
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].method, "GET");
  EXPECT_EQ(sent[0].target.rfind("/api/v3/account?omitZeroBalances=true&recvWindow=5000&timestamp=", 0), 0u)
      << sent[0].target;
  EXPECT_NE(sent[0].target.find("&signature="), std::string::npos);
}

TEST_F(BinanceClientTest, MalformedAccountIsARetryableErrorNamingTheField) {
  BinanceClient client = make();
  script.push_back({200,
                    R"({"canTrade":true,"updateTime":1,"accountType":"SPOT","permissions":[],
                        "balances":[{"asset":"BTC","free":"lots","locked":"0"}]})",
                    {}});
  const auto account = client.account();
  ASSERT_FALSE(account.ok());
  EXPECT_EQ(account.error().error_class, ErrorClass::kRetryable);
  EXPECT_NE(account.error().message.find("account.balances[0].free"), std::string::npos) << account.error().message;
}

TEST_F(BinanceClientTest, MyTradesAsksFromAnIdWithTheLimit) {
  BinanceClient client = make();
  script.push_back({200, "[]", {}});
  TradesQuery query;
  query.from_id = 42;
  ASSERT_TRUE(client.my_trades("BTCUSDT", query).ok());
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].target.rfind("/api/v3/myTrades?symbol=BTCUSDT&fromId=42&limit=1000&", 0), 0u) << sent[0].target;
}

TEST_F(BinanceClientTest, CancelOfAnOrderNotOpenIsNotAnError) {
  BinanceClient client = make();
  script.push_back({400, R"({"code":-2011,"msg":"Unknown order sent."})", {}});
  const auto cancelled = client.cancel_order("BTCUSDT", "bsX-1");
  ASSERT_TRUE(cancelled.ok()) << cancelled.error().describe();
  EXPECT_FALSE(cancelled.value().has_value());
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].method, "DELETE");
  EXPECT_EQ(sent[0].target.rfind("/api/v3/order?symbol=BTCUSDT&origClientOrderId=bsX-1&", 0), 0u) << sent[0].target;
}

TEST_F(BinanceClientTest, CancelWithoutAnAnswerIsStatusUnknown) {
  // The cancel may have been done: read openOrders, do not assume either way.
  BinanceClient client = make();
  script.push_back({0, "", {}, true});
  script.push_back({503, "<html>Service Unavailable</html>", {}});
  EXPECT_EQ(client.cancel_order("BTCUSDT", "bsX-1").error().error_class, ErrorClass::kStatusUnknown);
  EXPECT_EQ(client.cancel_order("BTCUSDT", "bsX-1").error().error_class, ErrorClass::kStatusUnknown);
  EXPECT_EQ(sent.size(), 2u);
}

}  // namespace
}  // namespace backstop::exchange
