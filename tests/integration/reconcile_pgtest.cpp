// reconcile against a real PostgreSQL and the exchange simulator (issue 13):
// what an account does outside Backstop (a manual sell in the exchange's app,
// a fee in the base asset, a withdrawal) reaches the operations as events,
// and the exits that follow sell only what is held.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/decimal.h"
#include "support/pg.h"
#include "support/process.h"
#include "support/sim.h"

namespace backstop::testing {
namespace {

using nlohmann::json;

class ReconcileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db.migrate();
    sim.btc_eth_markets("95000");
    account({{"USDT", "1000000"}});
  }

  void account(const json& balances, const json& more = json::object()) const {
    json body = {{"apiKey", SimServer::kApiKey}, {"secret", SimServer::kApiSecret}, {"balances", balances}};
    body.update(more);
    sim.post("/admin/accounts", body);
  }
  // An order placed in the exchange's app: not Backstop's.
  void by_hand(const char* side, const char* quantity, const char* symbol = "BTCUSDT") const {
    sim.post("/admin/orders", {{"apiKey", SimServer::kApiKey},
                               {"symbol", symbol},
                               {"side", side},
                               {"type", "MARKET"},
                               {"quantity", quantity}});
  }
  // A long entered a minute ago (its entry's fills are before the read).
  void operation(int id, const char* quantity, const char* stop = "93100", int tenant = 1,
                 const char* symbol = "BTCUSDT") const {
    db.exec(
        "INSERT INTO operation (id, tenant_id, symbol, side, average_entry_price, quantity, stop_price, "
        "created_at) VALUES (" +
        std::to_string(id) + ", " + std::to_string(tenant) + ", '" + symbol + "', 'BUY', 95000, " + quantity + ", " +
        stop + ", now() - interval '1 minute')");
  }

  ProcessResult reconcile(std::vector<std::string> args = {}, Env extra = {}) const {
    std::vector<std::string> argv = {binary("reconcile"), "--database-url", db.url(), "--json"};
    argv.insert(argv.end(), args.begin(), args.end());
    Env env = sim.env();
    env.insert(env.end(), extra.begin(), extra.end());
    return run(argv, env);
  }
  ProcessResult monitor() const {
    return run({binary("stop-monitor"), "--database-url", db.url(), "--json"}, sim.env());
  }
  static json summary(const ProcessResult& r) {
    const auto first_line = r.out.substr(0, r.out.find('\n'));
    if (!json::accept(first_line)) {
      ADD_FAILURE() << "no JSON summary; stdout: " << r.out << "\nstderr: " << r.err.substr(0, 3000);
      return json::object();
    }
    return json::parse(first_line);
  }
  std::string events_of(int id) const {
    return db.scalar(
        "SELECT coalesce(string_agg(event_type, ',' ORDER BY event_seq), '') FROM stop_events "
        "WHERE operation_id = " +
        std::to_string(id));
  }
  // Backstop's orders at the exchange (client ids "bs…"), not those placed by hand.
  std::vector<json> backstop_orders() const {
    std::vector<json> out;
    for (const json& o : sim.ledger()) {
      if (o.at("clientOrderId").get<std::string>().rfind("bs", 0) == 0) out.push_back(o);
    }
    return out;
  }
  // What the database holds that a pass could change.
  std::string snapshot() const {
    return db.scalar(
               "SELECT coalesce(string_agg(id || ' ' || status || ' ' || quantity || ' ' || sync_status || ' ' || "
               "coalesce(last_synced_at::text, '-'), ';' ORDER BY id), '') FROM operation") +
           "|" + db.scalar("SELECT count(*) FROM stop_events") + "|" + db.scalar("SELECT count(*) FROM account_trade") +
           "|" + db.scalar("SELECT count(*) FROM sync_pending") + "|" +
           db.scalar("SELECT count(*) FROM account_balance_seen");
  }

  TestDatabase db;
  SimServer sim;
};

// Issue 13: a manual half sell in the exchange's app → the next reconcile
// reduces the operation, with the trade as evidence; the stop then exits only
// the rest; the ledger sums to the original quantity.
TEST_F(ReconcileTest, ManualHalfSellReducesThenStopExitsRest) {
  by_hand("BUY", "1");
  operation(1, "1");
  by_hand("SELL", "0.5");
  const ProcessResult r = reconcile();
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  const json s = summary(r);
  EXPECT_EQ(s.at("reduced"), 1) << r.out;
  EXPECT_EQ(db.scalar("SELECT quantity || ' ' || original_quantity || ' ' || sync_status || ' ' || status "
                      "FROM operation WHERE id = 1"),
            "0.50000000 1.00000000 REDUCED ACTIVE");
  EXPECT_EQ(events_of(1), "POSITION_RECONCILED");
  const json payload =
      json::parse(db.scalar("SELECT payload FROM stop_events WHERE event_type = 'POSITION_RECONCILED'"));
  const json trades = sim.get(std::string("/admin/trades?apiKey=") + SimServer::kApiKey);
  ASSERT_FALSE(trades.empty());
  const std::int64_t manual_sell = trades.back().at("id").get<std::int64_t>();
  EXPECT_EQ(payload.at("trade_ids"), json::array({manual_sell})) << payload.dump();
  EXPECT_EQ(payload.at("reduced_by"), "0.5");
  EXPECT_EQ(db.scalar("SELECT reason || ' ' || quantity || ' ' || source FROM stop_events "
                      "WHERE event_type = 'POSITION_RECONCILED'"),
            "FOREIGN_SELL 0.50000000 reconcile");
  EXPECT_EQ(
      db.scalar("SELECT attributed_operation_id FROM account_trade WHERE trade_id = " + std::to_string(manual_sell)),
      "1");

  // The trade explains the reduction once: a second pass changes nothing.
  const ProcessResult again = reconcile();
  ASSERT_EQ(again.exit_code, 0) << again.err.substr(0, 3000);
  EXPECT_EQ(summary(again).at("in_sync"), 1) << again.out;
  EXPECT_EQ(events_of(1), "POSITION_RECONCILED");

  sim.prices({{"BTCUSDT", "93000"}});
  const ProcessResult exit = monitor();
  ASSERT_EQ(exit.exit_code, 0) << exit.err.substr(0, 3000);
  const auto sold = backstop_orders();
  ASSERT_EQ(sold.size(), 1u);
  EXPECT_EQ(sold[0].at("origQty"), "0.5");
  EXPECT_EQ(sold[0].at("status"), "FILLED");
  EXPECT_EQ(events_of(1), "POSITION_RECONCILED,STOP_TRIGGERED,EXECUTION_SUBMITTED,EXECUTED");
  // The ledger: what reconcile took off plus what the exit sold is what was bought.
  EXPECT_EQ(db.scalar("SELECT sum(x) FROM (SELECT (payload->>'reduced_by')::numeric x FROM stop_events "
                      "WHERE event_type = 'POSITION_RECONCILED' UNION ALL SELECT quantity FROM stop_events "
                      "WHERE event_type = 'EXECUTED') l"),
            "1.00000000");
  EXPECT_EQ(run({binary("migrate"), "--database-url", db.url(), "replay"}).exit_code, 0);
}

// Sold entirely elsewhere: the operation is closed without an exit, and the
// stop crossing afterwards sends nothing.
TEST_F(ReconcileTest, SoldElsewhereClosesAndStopSendsNothing) {
  by_hand("BUY", "1");
  operation(1, "1");
  by_hand("SELL", "1");
  const ProcessResult r = reconcile();
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  EXPECT_EQ(summary(r).at("closed"), 1) << r.out;
  EXPECT_EQ(events_of(1), "POSITION_CLOSED_EXTERNALLY");
  EXPECT_EQ(db.scalar("SELECT status || ' ' || close_reason || ' ' || sync_status FROM operation WHERE id = 1"),
            "CLOSED CLOSED_ELSEWHERE CLOSED_ELSEWHERE");
  sim.prices({{"BTCUSDT", "93000"}});
  const ProcessResult exit = monitor();
  ASSERT_EQ(exit.exit_code, 0) << exit.err.substr(0, 3000);
  EXPECT_EQ(summary(exit).at("triggered"), 0) << exit.out;
  EXPECT_TRUE(backstop_orders().empty());
  EXPECT_EQ(events_of(1), "POSITION_CLOSED_EXTERNALLY");
  EXPECT_EQ(run({binary("migrate"), "--database-url", db.url(), "replay"}).exit_code, 0);
}

// The entry's commission was charged in BTC: the operation follows what is held.
TEST_F(ReconcileTest, BaseAssetFeeReducesOperation) {
  sim.post("/admin/commission", {{"apiKey", SimServer::kApiKey}, {"takerRate", "0.001"}, {"makerRate", "0.001"}});
  by_hand("BUY", "0.5");
  operation(1, "0.5");
  const ProcessResult r = reconcile();
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  EXPECT_EQ(summary(r).at("reduced"), 1) << r.out;
  EXPECT_EQ(db.scalar("SELECT quantity || ' ' || sync_status FROM operation WHERE id = 1"), "0.49950000 REDUCED");
  EXPECT_EQ(db.scalar("SELECT reason FROM stop_events WHERE event_type = 'POSITION_RECONCILED'"), "BASE_FEE");
}

// Nothing moved outside Backstop: every operation is in sync, nothing is
// appended, and a pass whose balances did not move reads no trades.
TEST_F(ReconcileTest, QuietAccountIsInSyncAndReadsNoTradesTwice) {
  by_hand("BUY", "1.5");
  operation(1, "1");
  operation(2, "0.5");
  const ProcessResult first = reconcile();
  ASSERT_EQ(first.exit_code, 0) << first.err.substr(0, 3000);
  EXPECT_EQ(summary(first).at("in_sync"), 2) << first.out;
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events"), 0);
  EXPECT_EQ(db.scalar("SELECT string_agg(sync_status, ',' ORDER BY id) FROM operation"), "IN_SYNC,IN_SYNC");
  const ProcessResult second = reconcile();
  ASSERT_EQ(second.exit_code, 0) << second.err.substr(0, 3000);
  const json s = summary(second);
  EXPECT_EQ(s.at("in_sync"), 2) << second.out;
  EXPECT_EQ(s.at("trades_read"), 0) << second.out;
  EXPECT_EQ(s.at("requests"), 2) << second.out;  // exchangeInfo and the account
}

// What no trade explains (a withdrawal) is acted on only when seen twice at
// least the grace apart: flagged SHORT, never closed or reduced; the exit is
// capped at what is held; a deposit brings it back in sync.
TEST_F(ReconcileTest, UnexplainedShortAppliedOnlyWhenSeenTwice) {
  by_hand("BUY", "1");
  operation(1, "1");
  sim.post("/admin/balance-updates", {{"apiKey", SimServer::kApiKey}, {"asset", "BTC"}, {"delta", "-0.3"}});
  const ProcessResult first = reconcile({"--grace-ms", "60000"});
  ASSERT_EQ(first.exit_code, 0) << first.err.substr(0, 3000);
  EXPECT_EQ(summary(first).at("pending"), 1) << first.out;
  const ProcessResult second = reconcile({"--grace-ms", "60000"});
  ASSERT_EQ(second.exit_code, 0) << second.err.substr(0, 3000);
  EXPECT_EQ(summary(second).at("pending"), 1) << second.out;  // seen twice, but within the grace
  EXPECT_EQ(events_of(1), "");
  EXPECT_EQ(db.scalar("SELECT outcome || ' ' || held || ' ' || seen FROM sync_pending"), "SHORT 0.70000000 2");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const ProcessResult third = reconcile({"--grace-ms", "250"});
  ASSERT_EQ(third.exit_code, 0) << third.err.substr(0, 3000);
  EXPECT_EQ(summary(third).at("short"), 1) << third.out;
  EXPECT_EQ(events_of(1), "POSITION_OUT_OF_SYNC");
  EXPECT_EQ(db.scalar("SELECT quantity || ' ' || sync_status || ' ' || held_quantity FROM operation WHERE id = 1"),
            "1.00000000 SHORT 0.70000000");
  EXPECT_NE(db.scalar("SELECT sync_error FROM operation WHERE id = 1").find("holds 0.7 BTC"), std::string::npos);
  EXPECT_EQ(db.count("SELECT count(*) FROM sync_pending"), 0);
  // Still short: no second event.
  EXPECT_EQ(reconcile({"--grace-ms", "0"}).exit_code, 0);
  EXPECT_EQ(events_of(1), "POSITION_OUT_OF_SYNC");

  sim.post("/admin/balance-updates", {{"apiKey", SimServer::kApiKey}, {"asset", "BTC"}, {"delta", "0.3"}});
  const ProcessResult back = reconcile();
  ASSERT_EQ(back.exit_code, 0) << back.err.substr(0, 3000);
  EXPECT_EQ(events_of(1), "POSITION_OUT_OF_SYNC,POSITION_IN_SYNC");
  EXPECT_EQ(db.scalar("SELECT sync_status || ' ' || coalesce(held_quantity::text, '-') FROM operation WHERE id = 1"),
            "IN_SYNC -");
}

// The exit's order is on the wire (held 2 s, its sender timed out): the exit
// is in flight (SUBMITTED). Reconcile reads the account before the order
// fills and after it: the operation is left alone both times (no drift, no
// write, R1); once the exit is resolved, its fill is Backstop's own and
// explains nothing.
TEST_F(ReconcileTest, ReadBetweenOrderAndFillIsNotDriftAndSkipsTheExit) {
  by_hand("BUY", "1");
  operation(1, "1");
  operation(2, "0.2", "2900", 1, "ETHUSDT");
  by_hand("BUY", "0.2", "ETHUSDT");
  sim.prices({{"BTCUSDT", "93000"}});
  sim.faults({{"deliverLate", 1}, {"deliverLateByMs", 2000}});
  const ProcessResult sent =
      run({binary("stop-monitor"), "--database-url", db.url(), "--json", "--timeout-ms", "500"}, sim.env());
  ASSERT_TRUE(sent.exit_code == 0 || sent.exit_code == 1) << sent.err.substr(0, 3000);
  ASSERT_EQ(db.scalar("SELECT status FROM stop_executions WHERE operation_id = 1"), "SUBMITTED");
  const std::string before = db.scalar("SELECT sync_status || ' ' || quantity FROM operation WHERE id = 1");
  auto filled = [&] {
    const auto orders = backstop_orders();
    return !orders.empty() && orders[0].at("status") == "FILLED";
  };
  const ProcessResult early = reconcile({"--grace-ms", "0"});
  ASSERT_EQ(early.exit_code, 0) << early.err.substr(0, 3000);
  EXPECT_EQ(summary(early).at("in_flight"), 1) << early.out;
  for (int i = 0; i < 200 && !filled(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(filled()) << sim.ledger().dump();
  for (int pass = 0; pass < 2; ++pass) {
    const ProcessResult r = reconcile({"--grace-ms", "0"});
    ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
    EXPECT_EQ(summary(r).at("in_flight"), 1) << r.out;
  }
  EXPECT_EQ(events_of(1), "STOP_TRIGGERED,EXECUTION_SUBMITTED");
  EXPECT_EQ(db.scalar("SELECT sync_status || ' ' || quantity FROM operation WHERE id = 1"), before);
  EXPECT_EQ(db.scalar("SELECT sync_status FROM operation WHERE id = 2"), "IN_SYNC");

  // The exit is resolved by its query; the position is closed by its exit.
  for (int i = 0; i < 40 && db.scalar("SELECT status FROM operation WHERE id = 1") != "CLOSED"; ++i) {
    const ProcessResult m =
        run({binary("stop-monitor"), "--database-url", db.url(), "--json", "--recv-window-ms", "1000",
             "--exchange-processing-ms", "0", "--max-clock-offset-ms", "0", "--send-deadline-ms", "1000"},
            sim.env());
    ASSERT_TRUE(m.exit_code == 0 || m.exit_code == 1) << m.err.substr(0, 3000);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(events_of(1), "STOP_TRIGGERED,EXECUTION_SUBMITTED,EXECUTED");
  ASSERT_EQ(backstop_orders().size(), 1u);
  // A new long of BTC bought by hand, then 0.1 of it withdrawn: the shortfall
  // is unexplained (pending). The exit's sell since the entry is Backstop's
  // own and never evidence of a sale elsewhere.
  by_hand("BUY", "0.4");
  operation(3, "0.4");
  sim.post("/admin/balance-updates", {{"apiKey", SimServer::kApiKey}, {"asset", "BTC"}, {"delta", "-0.1"}});
  const ProcessResult r = reconcile({"--grace-ms", "60000"});
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  EXPECT_EQ(summary(r).at("pending"), 1) << r.out;
  EXPECT_EQ(summary(r).at("reduced"), 0) << r.out;
  EXPECT_EQ(events_of(3), "");
  EXPECT_EQ(db.scalar("SELECT outcome || ' ' || held FROM sync_pending WHERE operation_id = 3"), "SHORT 0.30000000");
}

// Reconcile runs beside stop-monitor (two of each, started together) while a
// stop is crossed right after a manual half sell. Whatever the interleaving:
// each sync event is appended once, no reconcile write is refused (it never
// writes an operation whose exit is in flight), Backstop sells at most what
// the account holds, and the ledger sums to what was bought.
TEST_F(ReconcileTest, RacingMonitorsAndReconcilesSellOnlyWhatIsHeld) {
  for (int round = 1; round <= 6; ++round) {
    sim.prices({{"BTCUSDT", "95000"}});
    by_hand("BUY", "1");
    operation(round, "1");
    by_hand("SELL", "0.5");
    sim.prices({{"BTCUSDT", "93000"}});
    std::vector<std::unique_ptr<Process>> running;
    for (int i = 0; i < 2; ++i) {
      Env env = sim.env();
      running.push_back(std::make_unique<Process>(
          std::vector<std::string>{binary("reconcile"), "--database-url", db.url(), "--json", "--grace-ms", "0"}, env));
      running.push_back(std::make_unique<Process>(
          std::vector<std::string>{binary("stop-monitor"), "--database-url", db.url(), "--json"}, env));
    }
    for (auto& p : running) {
      const ProcessResult r = p->wait();
      EXPECT_EQ(r.exit_code, 0) << "round " << round << "\n" << r.err.substr(0, 3000);
    }
    // Later passes finish what the race left (an exit waiting, a reduction to apply).
    for (int i = 0; i < 40 && db.scalar("SELECT status FROM operation WHERE id = " + std::to_string(round)) != "CLOSED";
         ++i) {
      ASSERT_EQ(reconcile({"--grace-ms", "0"}).exit_code, 0);
      const ProcessResult m = monitor();
      ASSERT_TRUE(m.exit_code == 0 || m.exit_code == 1) << m.err.substr(0, 3000);
    }
    const std::string id = std::to_string(round);
    ASSERT_EQ(db.scalar("SELECT status FROM operation WHERE id = " + id), "CLOSED") << events_of(round);
    // What Backstop sold for it: never more than the 0.5 held.
    EXPECT_EQ(db.scalar("SELECT coalesce(sum(quantity), 0) FROM stop_events WHERE event_type = 'EXECUTED' "
                        "AND operation_id = " +
                        id),
              "0.50000000")
        << events_of(round);
    EXPECT_EQ(
        db.count("SELECT count(*) FROM stop_events WHERE operation_id = " + id + " AND event_type LIKE 'POSITION_%'"),
        db.count("SELECT count(DISTINCT execution_token) FROM stop_events WHERE operation_id = " + id +
                 " AND event_type LIKE 'POSITION_%'"));
    // original = reduced elsewhere + sold by the exit + recorded not held.
    EXPECT_EQ(db.scalar("SELECT sum(x) FROM (SELECT (payload->>'reduced_by')::numeric x FROM stop_events "
                        "WHERE event_type = 'POSITION_RECONCILED' AND operation_id = " +
                        id +
                        " UNION ALL SELECT quantity + coalesce((payload->>'not_held')::numeric, 0) FROM stop_events "
                        "WHERE event_type = 'EXECUTED' AND operation_id = " +
                        id + ") l"),
              "1.00000000")
        << events_of(round);
  }
  core::Decimal sold;
  for (const json& o : backstop_orders()) sold = sold + core::Decimal::parse(o.at("executedQty").get<std::string>());
  EXPECT_EQ(sold.to_string(), "3");  // 6 rounds x 0.5
  EXPECT_EQ(run({binary("migrate"), "--database-url", db.url(), "replay"}).exit_code, 0);
}

// The exit sold half (a partial fill, EXPIRED) and then failed for good (the
// exchange refused the rest, -1013): the operation stays ACTIVE with its
// recorded quantity while the account holds the half the exit left. That is
// no drift: reconcile compares what the failed exit left, and the half it
// sold (Backstop's own trade) explains nothing.
TEST_F(ReconcileTest, FailedExitsPartialFillIsNotDrift) {
  by_hand("BUY", "1");
  operation(1, "1");
  sim.prices({{"BTCUSDT", "93000"}});
  // The monitor dies on the first answer (a partial fill, EXPIRED); the next
  // one finds that order, and the exchange refuses the rest for good.
  sim.faults({{"partialFill", 1}});
  Env crash = sim.env();
  crash.push_back({"BACKSTOP_FAULT_POINT", "stop_monitor.after_exchange_answer"});
  const ProcessResult died = run({binary("stop-monitor"), "--database-url", db.url(), "--json"}, crash);
  ASSERT_NE(died.exit_code, 0) << died.err.substr(0, 3000);
  sim.faults({{"reject", 1}});
  const ProcessResult m = monitor();
  ASSERT_TRUE(m.exit_code == 0 || m.exit_code == 1) << m.err.substr(0, 3000);
  ASSERT_EQ(db.scalar("SELECT status FROM stop_executions WHERE operation_id = 1"), "FAILED") << events_of(1);
  ASSERT_EQ(db.scalar("SELECT status || ' ' || quantity FROM operation WHERE id = 1"), "ACTIVE 1.00000000");
  for (int pass = 0; pass < 2; ++pass) {
    const ProcessResult r = reconcile({"--grace-ms", "0"});
    ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
    EXPECT_EQ(summary(r).at("in_sync"), 1) << r.out;
  }
  EXPECT_EQ(db.scalar("SELECT sync_status FROM operation WHERE id = 1"), "IN_SYNC");
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events WHERE event_type LIKE 'POSITION_%'"), 0);
  // A hand sell of what is left closes it, by the trade.
  by_hand("SELL", "0.5");
  const ProcessResult r = reconcile({"--grace-ms", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  EXPECT_EQ(summary(r).at("closed"), 1) << r.out;
  EXPECT_EQ(db.scalar("SELECT reason || ' ' || (payload->>'reduced_by') FROM stop_events "
                      "WHERE event_type = 'POSITION_CLOSED_EXTERNALLY'"),
            "FOREIGN_SELL 0.5");
}

// A resting order with Backstop's client id prefix that no exit owns (left
// by another version, or placed by hand with such an id): found, recorded and
// listed, never cancelled without --cancel-orphans; with it, cancelled by its
// client id. Orders without the prefix are the trader's and never touched.
TEST_F(ReconcileTest, OrphanListedAndCancelledOnlyWithTheFlag) {
  by_hand("BUY", "1");
  operation(1, "0.5");
  auto limit = [&](const char* client_id) {
    sim.post("/admin/orders", {{"apiKey", SimServer::kApiKey},
                               {"symbol", "BTCUSDT"},
                               {"side", "SELL"},
                               {"type", "LIMIT"},
                               {"quantity", "0.2"},
                               {"price", "99000"},
                               {"clientOrderId", client_id}});
  };
  limit("bs0123456789abcdef0123456789abcd-1");
  limit("my-take-profit");
  auto status_of = [&](const std::string& client_id) {
    for (const json& o : sim.ledger()) {
      if (o.at("clientOrderId") == client_id) return o.at("status").get<std::string>();
    }
    return std::string("absent");
  };
  const ProcessResult first = reconcile();
  ASSERT_EQ(first.exit_code, 0) << first.err.substr(0, 3000);
  const json s = summary(first);
  EXPECT_EQ(s.at("in_sync"), 1) << first.out;  // what the orders lock is still held
  ASSERT_EQ(s.at("orphans").size(), 1u) << first.out;
  EXPECT_EQ(s.at("orphans")[0].at("client_order_id"), "bs0123456789abcdef0123456789abcd-1");
  EXPECT_EQ(status_of("bs0123456789abcdef0123456789abcd-1"), "NEW");
  EXPECT_EQ(db.scalar("SELECT client_order_id || ' ' || side || ' ' || type || ' ' || orig_qty || ' ' || "
                      "(cancelled_at IS NULL) FROM orphan_order"),
            "bs0123456789abcdef0123456789abcd-1 SELL LIMIT 0.20000000 true");
  const ProcessResult listed =
      run({binary("reconcile"), "--database-url", db.url(), "--json", "--list-orphans"}, sim.env());
  ASSERT_EQ(listed.exit_code, 0) << listed.err.substr(0, 3000);
  EXPECT_EQ(json::parse(listed.out).at("orphans").size(), 1u) << listed.out;
  // Within --orphan-check-interval-s the open orders are not read again.
  const ProcessResult quiet = reconcile();
  ASSERT_EQ(quiet.exit_code, 0);
  EXPECT_EQ(summary(quiet).at("orphans_checked"), false) << quiet.out;
  EXPECT_EQ(summary(quiet).at("requests"), 2) << quiet.out;

  const ProcessResult cancel = reconcile({"--cancel-orphans"});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err.substr(0, 3000);
  EXPECT_EQ(summary(cancel).at("orphans_cancelled"), 1) << cancel.out;
  EXPECT_EQ(status_of("bs0123456789abcdef0123456789abcd-1"), "CANCELED");
  EXPECT_EQ(status_of("my-take-profit"), "NEW");
  EXPECT_EQ(db.count("SELECT count(*) FROM orphan_order WHERE cancelled_at IS NOT NULL"), 1);
  const ProcessResult after = reconcile({"--cancel-orphans"});
  ASSERT_EQ(after.exit_code, 0) << after.err.substr(0, 3000);
  EXPECT_TRUE(summary(after).at("orphans").empty()) << after.out;
  EXPECT_EQ(db.count("SELECT count(*) FROM orphan_order"), 1);  // the cancelled one is kept as the record
}

// An open order whose client id is an attempt of an exit in flight is that
// exit's, never an orphan: not reported, not cancelled. (Backstop's market
// orders are open only for a moment; a resting order stands in for one here.)
TEST_F(ReconcileTest, AnExitsOwnOpenOrderIsNoOrphan) {
  by_hand("BUY", "1");
  operation(1, "1");
  sim.prices({{"BTCUSDT", "93000"}});
  sim.faults({{"deliverLate", 1}, {"deliverLateByMs", 3000}});
  const ProcessResult sent =
      run({binary("stop-monitor"), "--database-url", db.url(), "--json", "--timeout-ms", "300"}, sim.env());
  ASSERT_TRUE(sent.exit_code == 0 || sent.exit_code == 1) << sent.err.substr(0, 3000);
  ASSERT_EQ(db.scalar("SELECT status FROM stop_executions"), "SUBMITTED");
  const std::string attempt =
      db.scalar("SELECT payload->>'client_order_id' FROM stop_events WHERE event_type = 'EXECUTION_SUBMITTED'");
  sim.post("/admin/orders", {{"apiKey", SimServer::kApiKey},
                             {"symbol", "BTCUSDT"},
                             {"side", "SELL"},
                             {"type", "LIMIT"},
                             {"quantity", "0.1"},
                             {"price", "99000"},
                             {"clientOrderId", attempt}});
  const ProcessResult r = reconcile({"--cancel-orphans"});
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  EXPECT_TRUE(summary(r).at("orphans").empty()) << r.out;
  EXPECT_EQ(summary(r).at("in_flight"), 1) << r.out;
  EXPECT_EQ(db.count("SELECT count(*) FROM orphan_order"), 0);
}

// Review of the binary (D2): an exit's partial fill whose order no event
// names (the monitor died on the answer; the rest waited BLOCKED while
// exchangeInfo failed) is still Backstop's own: the exchange says whose order
// it was (its client id), so it never explains another position's shortfall.
TEST_F(ReconcileTest, AnExitsFillNoEventNamesIsNeverEvidence) {
  by_hand("BUY", "2");
  operation(1, "1", "93100");  // exits
  operation(2, "1", "80000");  // stays
  ASSERT_EQ(reconcile({"--grace-ms", "60000"}).exit_code, 0);
  sim.prices({{"BTCUSDT", "93000"}});
  sim.faults({{"partialFill", 1}});
  Env crash = sim.env();
  crash.push_back({"BACKSTOP_FAULT_POINT", "stop_monitor.after_exchange_answer"});
  ASSERT_NE(run({binary("stop-monitor"), "--database-url", db.url(), "--json"}, crash).exit_code, 0);
  sim.faults({{"failPath", "/api/v3/exchangeInfo"}, {"failCount", 50}, {"failStatus", 503}});
  ASSERT_TRUE(monitor().exit_code <= 1);
  sim.faults(json::object());
  for (int i = 0; i < 60 && db.scalar("SELECT status FROM stop_executions") != "EXECUTED"; ++i) {
    ASSERT_TRUE(monitor().exit_code <= 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(db.scalar("SELECT status FROM stop_executions"), "EXECUTED") << events_of(1);
  sim.post("/admin/balance-updates", {{"apiKey", SimServer::kApiKey}, {"asset", "BTC"}, {"delta", "-0.3"}});
  const ProcessResult r = reconcile({"--grace-ms", "60000"});
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  EXPECT_EQ(summary(r).at("reduced"), 0) << r.out;
  EXPECT_EQ(summary(r).at("pending"), 1) << r.out;
  EXPECT_EQ(events_of(2), "");
  EXPECT_EQ(db.count("SELECT count(*) FROM account_trade WHERE NOT is_buyer AND NOT ours"), 0);
}

// Review (D9): an account's only position whose asset is gone, with no trade
// saying why, is closed on the second sighting (the mass-closure guard counts
// from two positions on).
TEST_F(ReconcileTest, ALonePositionWhoseAssetIsGoneIsClosedWhenSeenTwice) {
  by_hand("BUY", "1");
  operation(1, "1");
  sim.post("/admin/balance-updates", {{"apiKey", SimServer::kApiKey}, {"asset", "BTC"}, {"delta", "-1"}});
  const ProcessResult first = reconcile({"--grace-ms", "0"});
  ASSERT_EQ(first.exit_code, 0) << first.err.substr(0, 3000);
  EXPECT_EQ(summary(first).at("pending"), 1) << first.out;
  const ProcessResult second = reconcile({"--grace-ms", "0"});
  ASSERT_EQ(second.exit_code, 0) << second.err.substr(0, 3000);
  EXPECT_EQ(summary(second).at("closed"), 1) << second.out;
  EXPECT_EQ(db.scalar("SELECT status || ' ' || close_reason FROM operation"), "CLOSED CLOSED_ELSEWHERE");
  EXPECT_EQ(db.scalar("SELECT reason FROM stop_events WHERE event_type = 'POSITION_CLOSED_EXTERNALLY'"),
            "BALANCE_GONE");
}

// Review (D5): a symbol whose account has no trade yet (its holdings came by
// deposit) is read once; a later pass with nothing moved reads no trades.
TEST_F(ReconcileTest, ASymbolWithoutTradesIsNotReadAgainWhenNothingMoved) {
  account({{"USDT", "1000"}, {"BTC", "1"}});  // deposited, never traded here
  operation(1, "1");
  const ProcessResult first = reconcile();
  ASSERT_EQ(first.exit_code, 0) << first.err.substr(0, 3000);
  EXPECT_EQ(summary(first).at("in_sync"), 1) << first.out;
  EXPECT_EQ(db.scalar("SELECT last_trade_id FROM account_trade_cursor"), "-1");
  const ProcessResult second = reconcile();
  ASSERT_EQ(second.exit_code, 0) << second.err.substr(0, 3000);
  EXPECT_EQ(summary(second).at("requests"), 2) << second.out;  // exchangeInfo and the account
}

// Three positions whose asset is all gone, no trade saying why (the Secret
// now reaches another account, or everything was withdrawn): more than
// --max-closures-pct would close, so none is closed; all are flagged SHORT.
TEST_F(ReconcileTest, MassClosureHeldBack) {
  by_hand("BUY", "0.3");
  for (int id = 1; id <= 3; ++id) operation(id, "0.1");
  sim.post("/admin/balance-updates", {{"apiKey", SimServer::kApiKey}, {"asset", "BTC"}, {"delta", "-0.3"}});
  ASSERT_EQ(reconcile({"--grace-ms", "0"}).exit_code, 0);
  const ProcessResult r = reconcile({"--grace-ms", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  const json s = summary(r);
  EXPECT_EQ(s.at("closed"), 0) << r.out;
  EXPECT_EQ(s.at("held_back"), 3) << r.out;
  EXPECT_EQ(db.scalar("SELECT string_agg(status || ' ' || sync_status, ',' ORDER BY id) FROM operation"),
            "ACTIVE SHORT,ACTIVE SHORT,ACTIVE SHORT");
  EXPECT_NE(db.scalar("SELECT sync_error FROM operation WHERE id = 1").find("--max-closures-pct"), std::string::npos);
  // With the guard lifted the same evidence, seen twice again, closes them.
  for (int pass = 0; pass < 2; ++pass) {
    const ProcessResult lifted = reconcile({"--grace-ms", "0", "--max-closures-pct", "100"});
    ASSERT_EQ(lifted.exit_code, 0) << lifted.err.substr(0, 3000);
  }
  EXPECT_EQ(db.scalar("SELECT string_agg(status || ' ' || close_reason, ',' ORDER BY id) FROM operation"),
            "CLOSED CLOSED_ELSEWHERE,CLOSED CLOSED_ELSEWHERE,CLOSED CLOSED_ELSEWHERE");
  EXPECT_EQ(db.scalar("SELECT string_agg(DISTINCT reason, ',') FROM stop_events "
                      "WHERE event_type = 'POSITION_CLOSED_EXTERNALLY'"),
            "BALANCE_GONE");
}

// Tenants name their account: --account reconciles only theirs; the tenants
// without one are the default pass's.
TEST_F(ReconcileTest, AccountScopesTheTenants) {
  by_hand("BUY", "1");
  operation(1, "1", "93100", 1);
  operation(2, "5", "93100", 2);  // tenant 2 trades on another account: this one does not hold its 5 BTC
  db.exec("INSERT INTO tenant_config (tenant_id, exchange_account) VALUES (2, 'desk-b')");
  const ProcessResult r = reconcile({"--grace-ms", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  EXPECT_EQ(summary(r).at("operations"), 1) << r.out;
  EXPECT_EQ(db.scalar("SELECT string_agg(sync_status, ',' ORDER BY id) FROM operation"), "IN_SYNC,UNCHECKED");
  EXPECT_EQ(db.scalar("SELECT string_agg(account, ',') FROM exchange_account"), "(default)");
  // --account takes the account's tenants whole.
  const ProcessResult sharded = reconcile({"--account", "desk-b", "--tenant", "2"});
  EXPECT_EQ(sharded.exit_code, 2) << sharded.err.substr(0, 2000);
  EXPECT_NE(sharded.err.find("--tenant"), std::string::npos) << sharded.err.substr(0, 2000);
  const ProcessResult badly_named = reconcile({"--account", "desk b"});
  EXPECT_EQ(badly_named.exit_code, 2) << badly_named.err.substr(0, 2000);
  // Tenant 2's own pass: its 5 BTC are not held on this account (pending, then short).
  ASSERT_EQ(reconcile({"--account", "desk-b", "--grace-ms", "0"}).exit_code, 0);
  ASSERT_EQ(reconcile({"--account", "desk-b", "--grace-ms", "0"}).exit_code, 0);
  EXPECT_EQ(db.scalar("SELECT string_agg(sync_status, ',' ORDER BY id) FROM operation"), "IN_SYNC,SHORT");
}

// The account must be the one the positions were reconciled against before.
TEST_F(ReconcileTest, UidChangeAndMarginAccountAreRefused) {
  by_hand("BUY", "1");
  operation(1, "1");
  account({{"USDT", "1000000"}}, {{"uid", 111}});
  ASSERT_EQ(reconcile().exit_code, 0);
  EXPECT_EQ(db.scalar("SELECT uid FROM exchange_account"), "111");
  account({}, {{"uid", 222}});
  by_hand("SELL", "1");  // would close the position, were this the same account
  const std::string before = snapshot();
  const ProcessResult other = reconcile();
  EXPECT_EQ(other.exit_code, 2) << other.err.substr(0, 3000);
  EXPECT_NE(other.err.find("uid 222"), std::string::npos) << other.err.substr(0, 3000);
  EXPECT_EQ(snapshot(), before);
  EXPECT_NE(db.scalar("SELECT last_error FROM exchange_account").find("uid 111"), std::string::npos);

  account({}, {{"uid", 111}, {"accountType", "MARGIN"}});
  const ProcessResult margin = reconcile();
  EXPECT_EQ(margin.exit_code, 2) << margin.err.substr(0, 3000);
  EXPECT_NE(margin.err.find("MARGIN"), std::string::npos) << margin.err.substr(0, 3000);
  EXPECT_EQ(snapshot(), before);
}

// The exchange cannot be reached, limits or bans the client, or a gateway
// answers for it: exit 3 and nothing in the database changed.
TEST_F(ReconcileTest, ExchangeUnreachableExitsThreeAndChangesNothing) {
  by_hand("BUY", "1");
  operation(1, "1");
  by_hand("SELL", "0.5");
  const std::string before = snapshot();
  for (const json& fault : {json{{"failPath", "/api/v3/account"}, {"failCount", 1}, {"failStatus", 503}},
                            json{{"failPath", "/api/v3/myTrades"}, {"failCount", 1}, {"failStatus", 502}},
                            json{{"rateLimit", 1}}, json{{"ban", 1}}}) {
    sim.faults(fault);
    const ProcessResult r = reconcile();
    EXPECT_EQ(r.exit_code, 3) << fault.dump() << "\n" << r.err.substr(0, 3000);
    EXPECT_EQ(snapshot(), before) << fault.dump();
    sim.faults(json::object());
  }
  // Credentials the exchange refuses are configuration (exit 2), not an outage.
  const ProcessResult refused = reconcile({}, {{"BACKSTOP_EXCHANGE_API_SECRET", "not-the-secret"}});
  EXPECT_EQ(refused.exit_code, 2) << refused.err.substr(0, 3000);
  EXPECT_NE(refused.err.find("-1022"), std::string::npos) << refused.err.substr(0, 3000);
  EXPECT_EQ(snapshot(), before);
  db.exec("DELETE FROM exchange_account");  // the refusal is kept there for the operator
  Env nowhere = {{"BACKSTOP_EXCHANGE_URL", "http://127.0.0.1:" + std::to_string(free_port())}};
  const ProcessResult down = reconcile({"--timeout-ms", "1000"}, nowhere);
  EXPECT_EQ(down.exit_code, 3) << down.err.substr(0, 3000);
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(db.count("SELECT count(*) FROM exchange_account"), 0);
  // And the pass after goes through.
  ASSERT_EQ(reconcile().exit_code, 0);
  EXPECT_EQ(events_of(1), "POSITION_RECONCILED");
}

// A position lives for days, and Binance reads trades by time at most 24
// hours at once (the simulator takes a start time alone as its next 24
// hours): the first read of a symbol starts from the most recent trades, so a
// sale made days after an old entry is found and explains the reduction.
TEST_F(ReconcileTest, ASaleDaysAfterAnOldEntryIsFound) {
  by_hand("BUY", "1");
  operation(1, "1");
  db.exec("UPDATE operation SET created_at = now() - interval '3 days' WHERE id = 1");
  by_hand("SELL", "0.5");
  const ProcessResult r = reconcile();
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  EXPECT_EQ(summary(r).at("reduced"), 1) << r.out;
  EXPECT_EQ(db.scalar("SELECT quantity || ' ' || sync_status FROM operation WHERE id = 1"), "0.50000000 REDUCED");
  EXPECT_EQ(db.scalar("SELECT reason FROM stop_events WHERE event_type = 'POSITION_RECONCILED'"), "FOREIGN_SELL");
  // The cursor is the newest trade: the next read goes on by id.
  EXPECT_EQ(
      db.scalar("SELECT last_trade_id FROM account_trade_cursor WHERE symbol = 'BTCUSDT'"),
      std::to_string(
          sim.get(std::string("/admin/trades?apiKey=") + SimServer::kApiKey).back().at("id").get<std::int64_t>()));
}

// Reconcile's reads yield to the exits: once the exchange reports that the IP
// (every process behind it) has used --max-weight-per-minute this minute, the
// pass starts no more reads, ends with exit 3 and writes nothing; the exits,
// which have no such budget, still go out. Without a budget it goes through.
TEST_F(ReconcileTest, AWeightBudgetSpentByOthersEndsThePassWithNothingWritten) {
  by_hand("BUY", "1");
  operation(1, "1");
  by_hand("SELL", "0.5");
  for (int i = 0; i < 10; ++i) (void)sim.get("/api/v3/exchangeInfo");  // another process's 200 weight
  const std::string before = snapshot();
  const ProcessResult yielded = reconcile({"--max-weight-per-minute", "230"});
  EXPECT_EQ(yielded.exit_code, 3) << yielded.err.substr(0, 3000);
  EXPECT_NE(yielded.err.find("would pass the read budget of 230"), std::string::npos) << yielded.err.substr(0, 3000);
  EXPECT_EQ(snapshot(), before);
  const json weight = sim.get("/admin/weight");
  EXPECT_FALSE(weight.at("requests").contains("/api/v3/account")) << weight.dump();  // never asked

  sim.prices({{"BTCUSDT", "93000"}});
  const ProcessResult exit = monitor();  // the exits keep the rest of the minute
  ASSERT_EQ(exit.exit_code, 0) << exit.err.substr(0, 3000);
  ASSERT_EQ(backstop_orders().size(), 1u);
  EXPECT_EQ(backstop_orders()[0].at("status"), "FILLED");

  const ProcessResult unbudgeted = reconcile({"--max-weight-per-minute", "0"});
  EXPECT_EQ(unbudgeted.exit_code, 0) << unbudgeted.err.substr(0, 3000);
}

// A malformed account answer is a clear error naming what is wrong, kept on
// the account; no operation changes.
TEST_F(ReconcileTest, MalformedAccountIsAClearErrorAndChangesNothing) {
  by_hand("BUY", "1");
  operation(1, "1");
  by_hand("SELL", "0.5");
  const std::string before = snapshot();
  for (const char* kind : {"bad-decimal", "duplicate-asset", "negative", "missing-balances", "truncated"}) {
    sim.faults({{"malformedAccount", 1}, {"malformedAccountKind", kind}});
    const ProcessResult r = reconcile();
    EXPECT_EQ(r.exit_code, 1) << kind << "\n" << r.err.substr(0, 3000);
    EXPECT_NE(summary(r).value("error", "").find("account"), std::string::npos) << kind << " " << r.out;
    EXPECT_EQ(snapshot(), before) << kind;
    EXPECT_FALSE(db.scalar("SELECT coalesce(last_error, '') FROM exchange_account").empty()) << kind;
  }
  ASSERT_EQ(reconcile().exit_code, 0);
  EXPECT_EQ(db.scalar("SELECT coalesce(last_error, 'none') FROM exchange_account"), "none");
}

}  // namespace
}  // namespace backstop::testing
