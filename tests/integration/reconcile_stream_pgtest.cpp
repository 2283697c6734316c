// reconcile --stream against a real PostgreSQL and the exchange simulator's
// WebSocket API (issue 13, step 10): a fill made elsewhere reaches the process
// over the user data stream and is reconciled by the pass it wakes, not by the
// next --interval pass; a stream that drops is resubscribed and a full pass
// runs at once; a stream that is silent or never connects leaves the
// --interval passes running.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/pg.h"
#include "support/process.h"
#include "support/progress.h"
#include "support/sim.h"

namespace backstop::testing {
namespace {

using nlohmann::json;

class ReconcileStreamPg : public ::testing::Test {
 protected:
  void SetUp() override {
    db.migrate();
    sim.btc_eth_markets("95000");
    sim.post("/admin/accounts",
             {{"apiKey", SimServer::kApiKey}, {"secret", SimServer::kApiSecret}, {"balances", {{"USDT", "1000000"}}}});
  }
  void by_hand(const char* side, const char* quantity) const {
    sim.post("/admin/orders", {{"apiKey", SimServer::kApiKey},
                               {"symbol", "BTCUSDT"},
                               {"side", side},
                               {"type", "MARKET"},
                               {"quantity", quantity}});
  }
  void operation(int id, const char* quantity) const {
    db.exec(
        "INSERT INTO operation (id, tenant_id, symbol, side, average_entry_price, quantity, stop_price, "
        "created_at) VALUES (" +
        std::to_string(id) + ", 1, 'BTCUSDT', 'BUY', 95000, " + quantity + ", 93100, now() - interval '1 minute')");
  }
  // reconcile --stream, its user data stream on the simulator's WebSocket API
  // (or `ws_api_url`), its --interval passes every `interval` seconds.
  std::unique_ptr<Process> stream(const std::string& interval, std::string ws_api_url = {},
                                  std::vector<std::string> more = {}) const {
    Env env = sim.env();
    env.push_back({"BACKSTOP_WS_API_URL", ws_api_url.empty() ? sim.ws_url() + "/ws-api/v3" : ws_api_url});
    std::vector<std::string> argv = {binary("reconcile"), "--database-url", db.url(), "--json",
                                     "--stream",          "--interval",     interval};
    argv.insert(argv.end(), more.begin(), more.end());
    return std::make_unique<Process>(argv, env);
  }
  // The test's position (1 BTC bought by hand, operation 1 of 1), then
  // `stream(...)` started: once it logged `ready` (subscribed, by default) and
  // its start pass found the operation in sync.
  std::unique_ptr<Process> following(const std::string& interval, std::string ws_api_url = {},
                                     std::vector<std::string> more = {},
                                     const std::string& ready = "user data stream subscribed") const {
    by_hand("BUY", "1");
    operation(1, "1");
    auto process = stream(interval, std::move(ws_api_url), std::move(more));
    EXPECT_TRUE(process->wait_for_stderr(ready));
    EXPECT_TRUE(reaches("1.00000000 IN_SYNC"));
    return process;
  }
  // Waits until operation 1 shows `expected` (quantity and sync status), as
  // long as events are appended or passes recorded.
  ::testing::AssertionResult reaches(const std::string& expected) const {
    return wait_until({.done = [&] { return quantity() == expected; },
                       .progress = [&] { return db.scalar("SELECT count(*) FROM stop_events") + passes_recorded(); },
                       .state = [&] { return quantity(); }});
  }
  // SIGTERM, then what the process printed and how it ended.
  static ProcessResult stop(Process& process) {
    process.kill(SIGTERM);
    return process.wait();
  }
  // Every pass summary the process printed, in order.
  static std::vector<json> passes(const ProcessResult& r) {
    std::vector<json> out;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
      if (json::accept(line)) out.push_back(json::parse(line));
    }
    return out;
  }
  std::string quantity() const {
    return db.scalar("SELECT quantity || ' ' || sync_status FROM operation WHERE id = 1");
  }
  int subscriptions() const { return sim.get("/admin/user-stream").at("subscriptions").get<int>(); }
  std::string passes_recorded() const {
    return db.scalar("SELECT coalesce(max(last_reconciled_at)::text, '-') FROM exchange_account");
  }

  TestDatabase db;
  SimServer sim;
};

// A manual sell in the exchange's app reaches reconcile over the user data
// stream: with --interval at an hour, only the pass the stream woke can have
// reduced the operation, and its summary names the fill.
TEST_F(ReconcileStreamPg, AFillElsewhereIsReconciledByThePassTheStreamWakes) {
  auto process = following("3600");
  ASSERT_FALSE(HasFailure());  // subscribed (or ready) and the start pass done
  // The pass the subscription asks for follows the start pass at once; past
  // it and the minimum gap, the figure below is the latency of a quiet account
  // (informative only: nothing here depends on the time).
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const auto sold_at = std::chrono::steady_clock::now();
  by_hand("SELL", "0.4");
  ASSERT_TRUE(reaches("0.60000000 REDUCED"));
  const auto latency =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - sold_at).count();
  RecordProperty("fill_to_reconciled_ms", static_cast<int>(latency));
  std::cerr << "manual sell reconciled " << latency << " ms after it filled (debounce 200 ms)\n";
  EXPECT_EQ(db.scalar("SELECT reason FROM stop_events WHERE event_type = 'POSITION_RECONCILED'"), "FOREIGN_SELL");

  const ProcessResult r = stop(*process);
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  const std::vector<json> summaries = passes(r);
  ASSERT_GE(summaries.size(), 2u) << r.out;
  EXPECT_EQ(summaries[0].at("trigger"), "start");
  json woken;
  for (const json& s : summaries) {
    if (s.at("trigger").get<std::string>().find("a fill elsewhere: BTCUSDT SELL 0.4") != std::string::npos) woken = s;
  }
  ASSERT_FALSE(woken.is_null()) << r.out;
  EXPECT_EQ(woken.at("reduced"), 1) << woken.dump();
  EXPECT_EQ(woken.at("user_stream").at("subscribed"), true) << woken.dump();
  EXPECT_GE(woken.at("user_stream").at("triggers").get<int>(), 1) << woken.dump();
}

// The stream drops while a sale elsewhere goes unreported: the follower
// resubscribes and runs a full pass at once, which finds the sale; a deposit
// after the resubscription wakes a pass again.
TEST_F(ReconcileStreamPg, AStreamThatDropsIsResubscribedAndAFullPassFindsWhatItMissed) {
  auto process = following("3600");
  ASSERT_FALSE(HasFailure());                               // subscribed (or ready) and the start pass done
  sim.post("/admin/user-stream", {{"action", "silence"}});  // the sale's events are lost
  by_hand("SELL", "0.25");
  sim.post("/admin/user-stream", {{"action", "resume"}});
  EXPECT_EQ(quantity(), "1.00000000 IN_SYNC");  // nothing told reconcile yet
  sim.post("/admin/user-stream", {{"action", "disconnect"}});
  ASSERT_TRUE(reaches("0.75000000 REDUCED"));
  ASSERT_TRUE(wait_until({.done = [&] { return subscriptions() == 1; },
                          .state = [&] { return "subscriptions " + std::to_string(subscriptions()); }}));
  // Resubscribed: a deposit wakes a pass (in sync: a deposit never raises a position).
  const std::string before = passes_recorded();
  sim.post("/admin/balance-updates", {{"apiKey", SimServer::kApiKey}, {"asset", "BTC"}, {"delta", "0.1"}});
  ASSERT_TRUE(
      wait_until({.done = [&] { return passes_recorded() != before; }, .state = [&] { return passes_recorded(); }}));

  const ProcessResult r = stop(*process);
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  const std::vector<json> summaries = passes(r);
  ASSERT_GE(summaries.size(), 3u) << r.out;
  bool down_pass = false, deposit_pass = false;
  for (const json& s : summaries) {
    const std::string trigger = s.at("trigger").get<std::string>();
    if (trigger.find("user data stream down") != std::string::npos && s.at("reduced") == 1) down_pass = true;
    if (trigger.find("a deposit of 0.1 BTC") != std::string::npos) deposit_pass = true;
  }
  EXPECT_TRUE(down_pass) << r.out;
  EXPECT_TRUE(deposit_pass) << r.out;
  const json& last = summaries.back().at("user_stream");
  EXPECT_GE(last.at("subscriptions").get<int>(), 2) << last.dump();
  EXPECT_GE(last.at("downs").get<int>(), 1) << last.dump();
  EXPECT_EQ(quantity(), "0.75000000 REDUCED");  // in sync since, and the sync status keeps what happened
}

// A stream that is silent (its connection dead without closing) or that never
// connects changes nothing about the --interval passes: the sale is found by
// the next of them.
TEST_F(ReconcileStreamPg, ASilentStreamLeavesTheIntervalPassesRunning) {
  auto process = following("1");
  ASSERT_FALSE(HasFailure());  // subscribed (or ready) and the start pass done
  sim.post("/admin/user-stream", {{"action", "silence"}});
  by_hand("SELL", "0.5");
  ASSERT_TRUE(reaches("0.50000000 REDUCED"));
  const ProcessResult r = stop(*process);
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  bool by_interval = false;
  for (const json& s : passes(r)) {
    if (s.at("reduced") == 1) by_interval = s.at("trigger") == "interval";
  }
  EXPECT_TRUE(by_interval) << r.out;
}

TEST_F(ReconcileStreamPg, AStreamThatNeverConnectsLeavesTheIntervalPassesRunning) {
  auto process =
      following("1", "ws://127.0.0.1:" + std::to_string(free_port()) + "/ws-api/v3", {}, "user data stream down");
  ASSERT_FALSE(HasFailure());  // subscribed (or ready) and the start pass done
  by_hand("SELL", "0.5");
  ASSERT_TRUE(reaches("0.50000000 REDUCED"));
  const ProcessResult r = stop(*process);
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  const std::vector<json> summaries = passes(r);
  ASSERT_FALSE(summaries.empty());
  EXPECT_EQ(summaries.back().at("user_stream").at("subscribed"), false) << r.out;
  EXPECT_EQ(summaries.back().at("user_stream").at("subscriptions"), 0) << r.out;
}

// A connection that goes silent without closing (the sim drops its events and
// answers) is found by its ping and replaced; once the exchange speaks again
// a fill elsewhere wakes a pass as before.
TEST_F(ReconcileStreamPg, ASilentStreamIsFoundByItsPingAndReplaced) {
  auto process = following("3600", {}, {"--stream-ping-interval-ms", "300"});
  ASSERT_FALSE(HasFailure());  // subscribed (or ready) and the start pass done
  sim.post("/admin/user-stream", {{"action", "silence"}});
  ASSERT_TRUE(process->wait_for_stderr("no answer to a ping"));
  sim.post("/admin/user-stream", {{"action", "resume"}});
  // Subscribed again (an attempt made while silent waits out its answer timeout first).
  ASSERT_TRUE(wait_until({.done = [&] { return subscriptions() == 1; },
                          .state = [&] { return "subscriptions " + std::to_string(subscriptions()); }}));
  by_hand("SELL", "0.2");
  ASSERT_TRUE(reaches("0.80000000 REDUCED"));
  const ProcessResult r = stop(*process);
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  const std::vector<json> summaries = passes(r);
  ASSERT_FALSE(summaries.empty());
  bool woken = false;
  for (const json& s : summaries) {
    if (s.at("trigger").get<std::string>().find("a fill elsewhere") != std::string::npos) woken = true;
  }
  EXPECT_TRUE(woken) << r.out;
  EXPECT_GE(summaries.back().at("user_stream").at("downs").get<int>(), 1) << r.out;
}

// Only Binance's (and its testnet's) WebSocket API is known from the REST URL:
// for any other exchange --stream must be told, never fall back to Binance's.
TEST_F(ReconcileStreamPg, TheWebSocketApiOfAnotherExchangeMustBeNamed) {
  const ProcessResult r =
      run({binary("reconcile"), "--database-url", db.url(), "--stream", "--interval", "1"}, sim.env());
  EXPECT_EQ(r.exit_code, 2) << r.err.substr(0, 3000);
  EXPECT_NE(r.err.find("--ws-api-url"), std::string::npos) << r.err.substr(0, 3000);
}

// Another bot trading on the account makes a fill every 250 ms: the passes the
// stream wakes start at least --stream-min-gap-ms apart, so the account's
// request weight is not spent on one pass per fill (the exits share it).
TEST_F(ReconcileStreamPg, ABurstOfFillsElsewhereCostsOnePassAGap) {
  auto process = following("3600", {}, {"--stream-min-gap-ms", "1000"});
  ASSERT_FALSE(HasFailure());  // subscribed (or ready) and the start pass done
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    by_hand(i % 2 == 0 ? "BUY" : "SELL", "0.001");
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the last pass and its follow-up
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const ProcessResult r = stop(*process);
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  const std::vector<json> summaries = passes(r);
  ASSERT_GE(summaries.size(), 2u) << r.out;
  const auto woken = static_cast<double>(summaries.size() - 1);  // all but the start pass
  EXPECT_LE(woken, seconds / 1.0 + 3) << seconds << " s, " << r.out.substr(0, 3000);
  EXPECT_GE(summaries.back().at("user_stream").at("triggers").get<int>(), 20) << r.out.substr(0, 3000);
}

// An asset name of more than 200 bytes in Chinese: the reason is cut at a
// character, and the --json summary carrying it is printed, not a failed run.
TEST_F(ReconcileStreamPg, AnEventsTextIsCutAtACharacterAndThePassGoesOn) {
  auto process = following("3600");
  ASSERT_FALSE(HasFailure());  // subscribed (or ready) and the start pass done
  const std::string asset = std::string(184, 'X') + "\u5e01\u5b89\u4eba\u751f";
  sim.post("/admin/balance-updates", {{"apiKey", SimServer::kApiKey}, {"asset", asset}, {"delta", "1"}});
  by_hand("SELL", "0.5");
  ASSERT_TRUE(reaches("0.50000000 REDUCED"));
  const ProcessResult r = stop(*process);
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  bool deposit = false;
  for (const json& s : passes(r)) {
    if (s.at("trigger").get<std::string>().find("a deposit of 1 XXX") != std::string::npos) deposit = true;
  }
  EXPECT_TRUE(deposit) << r.out.substr(0, 3000);
}

}  // namespace
}  // namespace backstop::testing
