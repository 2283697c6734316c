// reconcile --stream without servers (issue 13, step 10): which user data
// stream events wake a pass, the debounced wakeup, and the follower over a
// scripted socket: the signed subscription it sends, a refusal taken as a
// drop (a full pass requested, then a new subscription).
#include "reconcile/user_stream.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <tuple>

#include "exchange/binance_protocol.h"

namespace backstop::reconcile {
namespace {

using exchange::UserStreamEvent;
using nlohmann::json;

UserStreamEvent event(const std::string& text) { return *exchange::binance::parse_user_stream_event(text); }

UserStreamEvent report(const std::string& client_id, const std::string& x, std::int64_t time_ms,
                       const std::string& orig = "") {
  return event(R"({"subscriptionId":0,"event":{"e":"executionReport","E":)" + std::to_string(time_ms) +
               R"(,"s":"BTCUSDT","c":")" + client_id + R"(","C":")" + orig + R"(","S":"SELL","o":"MARKET","q":"0.5",
               "x":")" +
               x + R"(","X":"FILLED","i":9,"l":"0.5","z":"0.5","L":"93000","n":"0","N":"USDT","T":1,
               "t":4,"m":false}})");
}

UserStreamEvent position(std::int64_t time_ms) {
  return event(R"({"subscriptionId":0,"event":{"e":"outboundAccountPosition","E":)" + std::to_string(time_ms) +
               R"(,"u":1,"B":[{"a":"BTC","f":"0.5","l":"0"},{"a":"USDT","f":"46500","l":"0"}]}})");
}

TEST(UserStreamTrigger, FillsAndTransfersElsewhereWakeAPassBackstopsOwnExitsDoNot) {
  TriggerFilter filter("bs");
  // An exit of Backstop's: its reports and the balance change that follows them.
  EXPECT_FALSE(filter.reason(report("bs1-SL-93100", "NEW", 1000)));
  EXPECT_FALSE(filter.reason(report("bs1-SL-93100", "TRADE", 1001)));
  EXPECT_FALSE(filter.reason(position(1001)));
  // A sale in the exchange's app.
  const auto sold = filter.reason(report("web_abc", "TRADE", 5000));
  ASSERT_TRUE(sold);
  EXPECT_EQ(*sold, "a fill elsewhere: BTCUSDT SELL 0.5 (order 9)");
  EXPECT_TRUE(filter.reason(position(5000)));  // long after Backstop's last report
  // Orders elsewhere that did not fill move nothing by themselves.
  EXPECT_FALSE(filter.reason(report("web_def", "NEW", 6000)));
  EXPECT_FALSE(filter.reason(report("web_def", "CANCELED", 6001)));
  // A cancel of Backstop's order (an orphan's) is Backstop's, whatever the cancel's own id.
  EXPECT_FALSE(filter.reason(report("cancel-77", "CANCELED", 7000, "bs2-TP-99000")));
  EXPECT_FALSE(filter.reason(position(7500)));
  const auto withdrawal = filter.reason(
      event(R"({"subscriptionId":0,"event":{"e":"balanceUpdate","E":9000,"a":"BTC","d":"-0.25000000","T":9000}})"));
  ASSERT_TRUE(withdrawal);
  EXPECT_EQ(*withdrawal, "a withdrawal of -0.25 BTC");
  EXPECT_FALSE(filter.reason(event(R"({"subscriptionId":0,"event":{"e":"listStatus","E":1}})")));
}

TEST(UserStreamTrigger, TheWakeupRunsOnePassForEventsThatComeTogether) {
  PassWakeup wakeup(std::chrono::milliseconds(0));
  std::atomic<bool> stop{false};
  const auto now = std::chrono::steady_clock::now();
  // Nothing asked: the deadline ends the wait.
  EXPECT_FALSE(wakeup.wait_until(now + std::chrono::milliseconds(20), stop));
  wakeup.request(std::chrono::milliseconds(50), "first", true);
  wakeup.request(std::chrono::milliseconds(50), "second");
  wakeup.request(std::chrono::milliseconds(50), std::string(5'000'000, 'x'));  // a reason is cut at 200
  const auto wake = wakeup.wait_until(std::chrono::steady_clock::now() + std::chrono::hours(1), stop);
  ASSERT_TRUE(wake);
  EXPECT_EQ(wake->reasons, "first; second; " + std::string(200, 'x'));
  EXPECT_TRUE(wake->follow_up);  // an event asked
  EXPECT_FALSE(wakeup.wait_until(std::chrono::steady_clock::now() + std::chrono::milliseconds(20), stop));
  stop = true;
  EXPECT_FALSE(wakeup.wait_until(std::chrono::steady_clock::now() + std::chrono::hours(1), stop));
}

// A burst of requests costs one pass per gap, however many there are.
TEST(UserStreamTrigger, PassesTheWakeupStartsAreAtLeastTheGapApart) {
  PassWakeup wakeup(std::chrono::milliseconds(300));
  std::atomic<bool> stop{false};
  wakeup.request(std::chrono::milliseconds(0), "a");
  ASSERT_TRUE(wakeup.wait_until(std::chrono::steady_clock::now() + std::chrono::hours(1), stop));
  const auto first = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) wakeup.request(std::chrono::milliseconds(0), "burst");
  const auto wake = wakeup.wait_until(std::chrono::steady_clock::now() + std::chrono::hours(1), stop);
  ASSERT_TRUE(wake);
  EXPECT_GE(std::chrono::steady_clock::now() - first, std::chrono::milliseconds(290));
  EXPECT_FALSE(wake->follow_up);
}

// A reason is cut at a character, never inside one: the --json summary that
// carries it must stay valid UTF-8 (an asset name the exchange lists in Chinese).
TEST(UserStreamTrigger, AReasonIsCutAtACharacterBoundary) {
  const std::string name = std::string(198, 'X') + "\u5e01\u5b89";  // 198 + 3 + 3 bytes
  EXPECT_EQ(cut(name, 200), std::string(198, 'X'));
  EXPECT_EQ(cut(name, 201), std::string(198, 'X') + "\u5e01");
  EXPECT_EQ(cut("short", 200), "short");
  PassWakeup wakeup(std::chrono::milliseconds(0));
  std::atomic<bool> stop{false};
  wakeup.request(std::chrono::milliseconds(0), "a deposit of 1 " + name);
  const auto wake = wakeup.wait_until(std::chrono::steady_clock::now() + std::chrono::hours(1), stop);
  ASSERT_TRUE(wake);
  const json summary = {{"trigger", wake->reasons}};
  EXPECT_NO_THROW((void)summary.dump());
}

template <typename F>
bool eventually(F done) {
  for (int i = 0; i < 3000; ++i) {  // a progress wait: 30 s only when nothing happens at all
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// A socket whose server side the test plays: what the client sent, and the
// handlers to answer with.
class ScriptedSocket : public net::WebSocket {
 public:
  struct Server {
    std::mutex mutex;
    std::vector<std::string> urls, sent;
    Handlers handlers;
    int opens = 0;

    // Once the client has sent `count` frames: frame `i` of them (as JSON)
    // and the handlers to answer it with.
    std::optional<std::pair<json, Handlers>> frame(std::size_t i, std::size_t count) {
      if (!eventually([&] {
            std::lock_guard lock(mutex);
            return sent.size() >= count;
          })) {
        return std::nullopt;
      }
      std::lock_guard lock(mutex);
      return std::pair{json::parse(sent[i]), handlers};
    }
  };
  explicit ScriptedSocket(Server& server) : server_(server) {}
  void open(const std::string& url, Handlers handlers) override {
    std::lock_guard lock(server_.mutex);
    server_.urls.push_back(url);
    server_.handlers = std::move(handlers);
    ++server_.opens;
  }
  void send(const std::string& text) override {
    std::lock_guard lock(server_.mutex);
    server_.sent.push_back(text);
  }
  void close() override {}

 private:
  Server& server_;
};

// The client of key "key" (secret "secret") at ws://sim/ws-api/v3 over `server`,
// its clock stopped at 1700000000000.
std::unique_ptr<exchange::UserDataStream> scripted_stream(ScriptedSocket::Server& server) {
  exchange::UserStreamConfig config;
  config.ws_api_url = "ws://sim/ws-api/v3";
  config.api_key = "key";
  config.api_secret = "secret";
  config.now_ms = [] { return std::int64_t{1700000000000}; };
  return exchange::make_binance_user_stream(config, std::make_unique<ScriptedSocket>(server));
}

TEST(UserStreamFollower, SubscribesSignedAndResubscribesWithAFullPassWhenRefused) {
  ScriptedSocket::Server server;
  auto stream = scripted_stream(server);
  PassWakeup wakeup(std::chrono::milliseconds(0));
  FollowOptions options;
  options.backoff_min = std::chrono::milliseconds(10);
  UserStreamFollower follower(*stream, wakeup, options);
  follower.start();
  auto first = server.frame(0, 1);
  ASSERT_TRUE(first);
  auto [request, handlers] = *first;
  {
    std::lock_guard lock(server.mutex);
    EXPECT_EQ(server.sent.size(), 1u);
    EXPECT_EQ(server.urls.at(0), "ws://sim/ws-api/v3");
  }
  EXPECT_EQ(request.at("method"), "userDataStream.subscribe.signature");
  const json& params = request.at("params");
  EXPECT_EQ(params.at("apiKey"), "key");
  EXPECT_EQ(params.at("timestamp"), "1700000000000");
  EXPECT_EQ(params.at("signature"),
            exchange::binance::sign("secret", "apiKey=key&recvWindow=5000&timestamp=1700000000000"));
  const std::string id = request.at("id").get<std::string>();

  // Refused: a drop like any other; a full pass at once, then a new subscription.
  handlers.on_message(
      json{{"id", id}, {"status", 401}, {"error", {{"code", -2015}, {"msg", "Invalid API-key"}}}}.dump());
  std::atomic<bool> stop{false};
  const auto reasons = wakeup.wait_until(std::chrono::steady_clock::now() + std::chrono::seconds(30), stop);
  ASSERT_TRUE(reasons);
  EXPECT_NE(reasons->reasons.find("subscription refused: status 401, -2015 Invalid API-key"), std::string::npos)
      << reasons->reasons;
  auto second = server.frame(1, 2);
  ASSERT_TRUE(second);
  std::tie(request, handlers) = *second;
  handlers.on_message(json{{"id", request.at("id")}, {"status", 200}, {"result", {{"subscriptionId", 0}}}}.dump());
  ASSERT_TRUE(eventually([&] { return follower.stats().subscribed; }));
  // The same answer again is nothing new; another subscription's events are not this account's.
  handlers.on_message(json{{"id", request.at("id")}, {"status", 200}, {"result", {{"subscriptionId", 0}}}}.dump());
  handlers.on_message(R"({"subscriptionId":7,"event":{"e":"balanceUpdate","E":1,"a":"BTC","d":"1","T":1}})");
  handlers.on_message(R"({"subscriptionId":7,"event":{"e":"eventStreamTerminated","E":2}})");
  // A fill elsewhere wakes a pass; a malformed frame does too (what it said is unknown).
  handlers.on_message(R"({"subscriptionId":0,"event":{"e":"executionReport","E":1,"s":"BTCUSDT","c":"web","C":"",
      "S":"SELL","o":"MARKET","q":"1","x":"TRADE","X":"FILLED","i":3,"l":"1","z":"1","L":"1","n":"0","N":"USDT",
      "T":1,"t":8,"m":false}})");
  const auto woken = wakeup.wait_until(std::chrono::steady_clock::now() + std::chrono::seconds(30), stop);
  ASSERT_TRUE(woken);
  EXPECT_NE(woken->reasons.find("a fill elsewhere: BTCUSDT SELL 1"), std::string::npos) << woken->reasons;
  EXPECT_EQ(woken->reasons.find("deposit"), std::string::npos) << woken->reasons;
  handlers.on_message(R"({"subscriptionId":0,"event":{"e":"balanceUpdate","E":1,"a":"BTC","d":"x","T":1}})");
  const auto malformed = wakeup.wait_until(std::chrono::steady_clock::now() + std::chrono::seconds(30), stop);
  ASSERT_TRUE(malformed);
  EXPECT_EQ(malformed->reasons, "malformed user data stream frame");
  const UserStreamFollower::Stats stats = follower.stats();
  EXPECT_EQ(stats.subscriptions, 1);
  EXPECT_EQ(stats.downs, 1);
  EXPECT_EQ(stats.triggers, 1);
  EXPECT_EQ(stats.malformed, 1);
  // eventStreamTerminated: down again.
  handlers.on_message(R"({"subscriptionId":0,"event":{"e":"eventStreamTerminated","E":2}})");
  ASSERT_TRUE(eventually([&] { return follower.stats().downs == 2; }));
  EXPECT_EQ(follower.stats().last_down, "eventStreamTerminated");
  follower.stop();
}

// A connection that died without closing answers no ping: it is replaced.
TEST(UserStreamFollower, AnUnansweredPingReplacesTheConnection) {
  ScriptedSocket::Server server;
  auto stream = scripted_stream(server);
  PassWakeup wakeup(std::chrono::milliseconds(0));
  FollowOptions options;
  options.backoff_min = std::chrono::milliseconds(10);
  options.ping_interval = std::chrono::milliseconds(20);
  options.answer_timeout = std::chrono::milliseconds(200);
  UserStreamFollower follower(*stream, wakeup, options);
  follower.start();
  const auto subscribe = server.frame(0, 1);
  ASSERT_TRUE(subscribe);
  const net::WebSocket::Handlers handlers = subscribe->second;
  handlers.on_message(
      json{{"id", subscribe->first.at("id")}, {"status", 200}, {"result", {{"subscriptionId", 0}}}}.dump());
  const auto ping = server.frame(1, 2);  // the first ping; answered
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->first.at("method"), "ping");
  handlers.on_message(json{{"id", ping->first.at("id")}, {"status", 200}, {"result", json::object()}}.dump());
  ASSERT_TRUE(server.frame(2, 3));  // the next ping, never answered
  ASSERT_TRUE(eventually([&] { return follower.stats().downs == 1; }));
  EXPECT_EQ(follower.stats().last_down, "no answer to a ping within 200 ms");
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(server.mutex);
    return server.opens == 2;  // subscribed again
  }));
  follower.stop();
}

}  // namespace
}  // namespace backstop::reconcile
