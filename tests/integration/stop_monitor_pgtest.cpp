// stop-monitor against a real PostgreSQL and the exchange simulator: the seed's
// cases, exactly-once under races and crashes, unknown order status, guardrails.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <signal.h>
#include <thread>

#include "support/pg.h"
#include "support/process.h"
#include "support/pushgateway.h"
#include "support/sim.h"

namespace backstop::testing {
namespace {

using nlohmann::json;

class StopMonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db.migrate();
    sim.symbols(json::array({
        {{"symbol", "BTCUSDT"}, {"base", "BTC"}, {"quote", "USDT"}, {"price", "95000"}, {"stepSize", "0.00001"},
         {"minQty", "0.00001"}, {"minNotional", "5"}, {"tickSize", "0.01"}},
        {{"symbol", "ETHUSDT"}, {"base", "ETH"}, {"quote", "USDT"}, {"price", "3000"}, {"stepSize", "0.0001"},
         {"minQty", "0.0001"}, {"minNotional", "5"}, {"tickSize", "0.01"}},
    }));
  }

  ProcessResult monitor(std::vector<std::string> args = {}, Env extra = {}) const {
    std::vector<std::string> argv = {binary("stop-monitor"), "--database-url", db.url(), "--json"};
    argv.insert(argv.end(), args.begin(), args.end());
    Env env = sim.env();
    env.insert(env.end(), extra.begin(), extra.end());
    return run(argv, env);
  }

  static json summary(const ProcessResult& r) {
    const auto first_line = r.out.substr(0, r.out.find('\n'));
    if (!json::accept(first_line)) {
      ADD_FAILURE() << "no JSON summary; stdout: " << r.out << "\nstderr: " << r.err;
      return json::object();
    }
    return json::parse(first_line);
  }

  void operation(int id, int tenant, const char* symbol, const char* side, const char* quantity, const char* stop,
                 const char* target) const {
    db.exec("INSERT INTO operation (id, tenant_id, symbol, side, average_entry_price, quantity, stop_price, "
            "target_price) VALUES (" +
            std::to_string(id) + ", " + std::to_string(tenant) + ", '" + symbol + "', '" + side + "', " +
            (std::string(side) == "BUY" ? "95000" : "95000") + ", " + quantity + ", " + (stop ? stop : "NULL") + ", " +
            (target ? target : "NULL") + ")");
  }

  std::string events_of(int operation_id) const {
    return db.scalar("SELECT string_agg(event_type, ',' ORDER BY event_seq) FROM stop_events WHERE operation_id = " +
                     std::to_string(operation_id));
  }

  TestDatabase db;
  SimServer sim;
};

TEST_F(StopMonitorTest, AbsoluteStopPriceIsUsedAndTheExitIsRecorded) {
  operation(1, 1, "BTCUSDT", "BUY", "0.5", "93100", "98800");
  db.exec("UPDATE operation SET stop_loss_percent = 10 WHERE id = 1");  // 85,500: must be ignored
  sim.prices({{"BTCUSDT", "93000"}});
  const ProcessResult r = monitor();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(summary(r).at("executed"), 1);
  const json ledger = sim.ledger();
  ASSERT_EQ(ledger.size(), 1u);
  EXPECT_EQ(ledger[0].at("side"), "SELL");
  EXPECT_EQ(ledger[0].at("origQty"), "0.5");
  EXPECT_EQ(events_of(1), "STOP_TRIGGERED,EXECUTION_SUBMITTED,EXECUTED");
  EXPECT_EQ(db.scalar("SELECT status || ' ' || fill_price || ' ' || exchange_order_id || ' ' || trigger_kind || ' ' "
                      "|| side FROM stop_executions WHERE operation_id = 1"),
            "EXECUTED 93000.00000000 " + std::to_string(ledger[0].at("orderId").get<int>()) + " STOP_LOSS SELL");
  EXPECT_EQ(db.scalar("SELECT status FROM operation WHERE id = 1"), "CLOSED");
  EXPECT_EQ(db.count("SELECT count(*) FROM outbox WHERE operation_id = 1"), 3);
  EXPECT_EQ(db.scalar("SELECT execution_token FROM stop_events WHERE event_type = 'STOP_TRIGGERED'"), "op1-SL-93100");
  EXPECT_EQ(run({binary("migrate"), "--database-url", db.url(), "replay"}).exit_code, 0);
}

TEST_F(StopMonitorTest, TriggerTableAtTheLevelAndBeyondOnBothSides) {
  operation(1, 1, "BTCUSDT", "BUY", "0.1", "93000", "97000");   // stop at the price
  operation(2, 1, "BTCUSDT", "BUY", "0.1", "92000", "93000");   // target at the price: take profit
  operation(3, 1, "BTCUSDT", "SELL", "0.1", "93000", "90000");  // short stop at the price
  operation(4, 1, "BTCUSDT", "SELL", "0.1", "94000", "93000");  // short target at the price
  operation(5, 1, "BTCUSDT", "BUY", "0.1", "92999.99", "93000.01");  // neither
  operation(6, 1, "BTCUSDT", "SELL", "0.1", "93000.01", "92999.99");  // neither
  sim.prices({{"BTCUSDT", "93000"}});
  const ProcessResult r = monitor();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(db.scalar("SELECT string_agg(operation_id || ':' || trigger_kind || ':' || side, ',' ORDER BY operation_id) "
                      "FROM stop_executions WHERE status = 'EXECUTED'"),
            "1:STOP_LOSS:SELL,2:TAKE_PROFIT:SELL,3:STOP_LOSS:BUY,4:TAKE_PROFIT:BUY");
  EXPECT_EQ(sim.ledger().size(), 4u);
  EXPECT_EQ(db.count("SELECT count(*) FROM operation WHERE status = 'ACTIVE'"), 2);
}

TEST_F(StopMonitorTest, OperationWithoutStopIsSkipped) {
  operation(1, 1, "BTCUSDT", "BUY", "0.5", nullptr, nullptr);
  sim.prices({{"BTCUSDT", "1"}});
  const ProcessResult r = monitor();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(summary(r).at("triggered"), 0);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events"), 0);
  EXPECT_TRUE(sim.ledger().empty());
}

TEST_F(StopMonitorTest, PercentStopIsTheFallbackWhenNoAbsoluteLevel) {
  db.exec("INSERT INTO operation (id, tenant_id, symbol, side, average_entry_price, quantity, stop_loss_percent) "
          "VALUES (1, 1, 'BTCUSDT', 'BUY', 95000, 0.5, 2)");  // 93,100
  sim.prices({{"BTCUSDT", "93100.01"}});
  ASSERT_EQ(monitor().exit_code, 0);
  EXPECT_TRUE(sim.ledger().empty());
  sim.prices({{"BTCUSDT", "93100"}});
  ASSERT_EQ(monitor().exit_code, 0);
  EXPECT_EQ(sim.ledger().size(), 1u);
  EXPECT_EQ(db.scalar("SELECT execution_token FROM stop_executions"), "op1-SL-93100");
}

TEST_F(StopMonitorTest, RunningAgainNeverExitsTwice) {
  operation(1, 1, "BTCUSDT", "BUY", "0.5", "93100", nullptr);
  sim.prices({{"BTCUSDT", "93000"}});
  ASSERT_EQ(monitor().exit_code, 0);
  db.exec("UPDATE operation SET status = 'ACTIVE' WHERE id = 1");  // even if something reopened the row
  const ProcessResult again = monitor();
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(summary(again).at("duplicates"), 1);
  EXPECT_NE(again.err.find("duplicate execution prevented"), std::string::npos);
  EXPECT_EQ(sim.ledger().size(), 1u);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events"), 3);
}

TEST_F(StopMonitorTest, DryRunWritesAndSendsNothing) {
  operation(1, 1, "BTCUSDT", "BUY", "0.5", "93100", nullptr);
  sim.prices({{"BTCUSDT", "93000"}});
  const ProcessResult r = run({binary("stop-monitor"), "--database-url", db.url(), "--json", "--dry-run"},
                              {{"BACKSTOP_EXCHANGE_URL", sim.url()}, {"BACKSTOP_LOG_FORMAT", "json"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(summary(r).at("triggered"), 1);
  EXPECT_EQ(summary(r).at("triggers")[0].at("outcome"), "dry-run");
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events"), 0);
  EXPECT_EQ(db.count("SELECT count(*) FROM monitor_checkpoint"), 0);
  EXPECT_TRUE(sim.ledger().empty());
}

TEST_F(StopMonitorTest, ExchangeRejectionIsAFailedEventWithTheFullError) {
  sim.post("/admin/accounts", {{"apiKey", SimServer::kApiKey}, {"secret", SimServer::kApiSecret},
                               {"balances", {{"BTC", "0.1"}, {"USDT", "0"}}}});
  operation(1, 1, "BTCUSDT", "BUY", "0.5", "93100", nullptr);
  sim.prices({{"BTCUSDT", "93000"}});
  const ProcessResult r = monitor();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(events_of(1), "STOP_TRIGGERED,EXECUTION_SUBMITTED,FAILED");
  EXPECT_EQ(db.scalar("SELECT error_message FROM stop_executions WHERE operation_id = 1"),
            "order rejected: terminal HTTP 400 code -2010: Account has insufficient balance for requested action.");
  EXPECT_EQ(db.scalar("SELECT status FROM operation WHERE id = 1"), "ACTIVE");
  EXPECT_TRUE(sim.ledger().empty());
}

TEST_F(StopMonitorTest, TimeoutAfterExecutionIsResolvedByQueryNotBySendingAgain) {
  operation(1, 1, "BTCUSDT", "BUY", "0.5", "93100", nullptr);
  sim.prices({{"BTCUSDT", "93000"}});
  sim.faults({{"timeoutAfterExecute", 1}});
  const ProcessResult r = monitor({"--timeout-ms", "500"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(summary(r).at("executed"), 1);
  EXPECT_EQ(sim.ledger().size(), 1u) << r.err;
  EXPECT_EQ(events_of(1), "STOP_TRIGGERED,EXECUTION_SUBMITTED,EXECUTED");
}

TEST_F(StopMonitorTest, ServerErrorAfterExecutionAndMalformedAnswerAreResolvedByQuery) {
  operation(1, 1, "BTCUSDT", "BUY", "0.5", "93100", nullptr);
  operation(2, 1, "ETHUSDT", "SELL", "2", "2900", nullptr);
  sim.prices({{"BTCUSDT", "93000"}, {"ETHUSDT", "3000"}});
  sim.faults({{"error5xxAfterExecute", 1}, {"malformed", 1}});
  const ProcessResult r = monitor();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(sim.ledger().size(), 2u);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_executions WHERE status = 'EXECUTED'"), 2);
  EXPECT_NE(r.err.find("order status unknown"), std::string::npos);
}

TEST_F(StopMonitorTest, OrderThatNeverArrivedIsSentOnTheNextPassWithTheSameId) {
  operation(1, 1, "BTCUSDT", "BUY", "0.5", "93100", nullptr);
  sim.prices({{"BTCUSDT", "93000"}});
  sim.faults({{"error5xxBeforeExecute", 1}});
  const ProcessResult first = monitor();
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(summary(first).at("pending"), 1);
  EXPECT_TRUE(sim.ledger().empty());
  EXPECT_EQ(db.scalar("SELECT status FROM stop_executions"), "SUBMITTED");
  const ProcessResult second = monitor();
  ASSERT_EQ(second.exit_code, 0) << second.err;
  const json ledger = sim.ledger();
  ASSERT_EQ(ledger.size(), 1u);
  EXPECT_EQ(db.scalar("SELECT status FROM stop_executions"), "EXECUTED");
  EXPECT_EQ(db.scalar("SELECT payload->>'client_order_id' FROM stop_events WHERE event_type = 'EXECUTION_SUBMITTED'"),
            ledger[0].at("clientOrderId").get<std::string>());
}

TEST_F(StopMonitorTest, KilledAtEachStepThenReRunExitsExactlyOnce) {
  for (const char* point : {"stop_monitor.after_trigger", "stop_monitor.after_submit",
                            "stop_monitor.after_exchange_answer"}) {
    SCOPED_TRACE(point);
    const std::string name(point);
    const int base = name.ends_with("trigger") ? 10 : (name.ends_with("submit") ? 20 : 30);
    for (int i = 0; i < 3; ++i) operation(base + i, 1, "BTCUSDT", "BUY", "0.1", "93100", nullptr);
    sim.prices({{"BTCUSDT", "93000"}});
    const std::size_t orders_before = sim.ledger().size();
    const ProcessResult crashed = monitor({}, {{"BACKSTOP_FAULT_POINT", std::string(point) + ":2"}});
    EXPECT_EQ(crashed.signal, SIGABRT) << crashed.err;
    const ProcessResult rerun = monitor();
    ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
    EXPECT_EQ(sim.ledger().size() - orders_before, 3u);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(db.count("SELECT count(*) FROM stop_events WHERE event_type IN ('EXECUTED', 'FAILED') "
                         "AND operation_id = " + std::to_string(base + i)),
                1);
    }
  }
  // Every order in the ledger has a distinct client id: nothing was sent twice.
  const json ledger = sim.ledger();
  std::set<std::string> ids;
  for (const auto& o : ledger) ids.insert(o.at("clientOrderId").get<std::string>());
  EXPECT_EQ(ids.size(), ledger.size());
  EXPECT_EQ(run({binary("migrate"), "--database-url", db.url(), "replay"}).exit_code, 0);
}

TEST_F(StopMonitorTest, SixteenCronProcessesAndAStreamExecuteTenThousandTriggersExactlyOnce) {
  constexpr int kOperations = 10000;
  db.exec("INSERT INTO tenant_config (tenant_id, max_executions_per_minute, max_executions_per_hour) "
          "SELECT t, 1000000, 1000000 FROM generate_series(1, 20) t;"
          "INSERT INTO operation (tenant_id, symbol, side, average_entry_price, quantity, stop_price) "
          "SELECT 1 + i % 20, CASE WHEN i % 2 = 0 THEN 'BTCUSDT' ELSE 'ETHUSDT' END, 'BUY', 100000, 0.01, "
          "CASE WHEN i % 2 = 0 THEN 93500 ELSE 3010 END "
          "FROM generate_series(1, " + std::to_string(kOperations) + ") i");
  sim.prices({{"BTCUSDT", "95000"}, {"ETHUSDT", "3100"}});
  Process stream({binary("stop-monitor"), "--database-url", db.url(), "--json", "--stream", "--interval", "1"},
                 sim.env());
  ASSERT_TRUE(stream.wait_for_stderr("price stream open"));  // subscribed
  sim.prices({{"BTCUSDT", "93000"}, {"ETHUSDT", "3000"}});       // every stop crossed at once
  std::vector<std::unique_ptr<Process>> crons;
  for (int i = 0; i < 16; ++i) {
    crons.push_back(std::make_unique<Process>(
        std::vector<std::string>{binary("stop-monitor"), "--database-url", db.url(), "--json"}, sim.env()));
  }
  std::int64_t executed = 0, duplicates = 0;
  for (auto& p : crons) {
    const ProcessResult r = p->wait(std::chrono::seconds(600));
    ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 2000);
    executed += summary(r).at("executed").get<std::int64_t>();
    duplicates += summary(r).at("duplicates").get<std::int64_t>();
  }
  // Whatever is left is the stream's to finish (slow under ASan): this test is about exactly once, not speed.
  for (int i = 0; i < 3000 && db.count("SELECT count(*) FROM operation WHERE status = 'ACTIVE'") > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stream.kill(SIGTERM);
  const ProcessResult streamed = stream.wait(std::chrono::seconds(120));
  ASSERT_EQ(streamed.exit_code, 0) << streamed.err.substr(0, 2000);
  executed += summary(streamed).at("executed").get<std::int64_t>();
  EXPECT_EQ(executed, kOperations);
  EXPECT_GT(duplicates, 0);  // they really raced
  const json ledger = sim.ledger();
  EXPECT_EQ(ledger.size(), static_cast<std::size_t>(kOperations));  // exactly one order per position
  std::set<std::string> client_ids;
  for (const auto& o : ledger) client_ids.insert(o.at("clientOrderId").get<std::string>());
  EXPECT_EQ(client_ids.size(), static_cast<std::size_t>(kOperations));
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events WHERE event_type = 'EXECUTED'"), kOperations);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events WHERE event_type = 'STOP_TRIGGERED'"), kOperations);
  EXPECT_EQ(db.count("SELECT count(*) FROM operation WHERE status = 'CLOSED'"), kOperations);
}

TEST_F(StopMonitorTest, KillSwitchBlocksAndTheExitGoesOutWhenItIsLifted) {
  db.exec("INSERT INTO tenant_config (tenant_id, trading_enabled) VALUES (1, false)");
  operation(1, 1, "BTCUSDT", "BUY", "0.5", "93100", nullptr);
  sim.prices({{"BTCUSDT", "93000"}});
  ProcessResult r = monitor();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(summary(r).at("blocked").at("KILL_SWITCH"), 1);
  EXPECT_EQ(events_of(1), "STOP_TRIGGERED,BLOCKED");
  EXPECT_EQ(db.scalar("SELECT reason FROM stop_events WHERE event_type = 'BLOCKED'"), "KILL_SWITCH");
  r = monitor();  // still blocked: retried, not recorded again
  EXPECT_EQ(events_of(1), "STOP_TRIGGERED,BLOCKED");
  EXPECT_TRUE(sim.ledger().empty());
  db.exec("UPDATE tenant_config SET trading_enabled = true");
  r = monitor();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(events_of(1), "STOP_TRIGGERED,BLOCKED,EXECUTION_SUBMITTED,EXECUTED");
  EXPECT_EQ(sim.ledger().size(), 1u);
}

TEST_F(StopMonitorTest, RateLimitPerTenantHoldsTheRestForLater) {
  db.exec("INSERT INTO tenant_config (tenant_id, max_executions_per_minute, max_executions_per_hour) VALUES (1, 2, 100)");
  for (int i = 1; i <= 5; ++i) operation(i, 1, "BTCUSDT", "BUY", "0.1", "93100", nullptr);
  operation(6, 2, "BTCUSDT", "BUY", "0.1", "93100", nullptr);  // another tenant is not affected
  sim.prices({{"BTCUSDT", "93000"}});
  const ProcessResult r = monitor();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(summary(r).at("executed"), 3);
  EXPECT_EQ(summary(r).at("blocked").at("RATE_LIMIT_MINUTE"), 3);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_executions WHERE status = 'BLOCKED' AND tenant_id = 1"), 3);
  EXPECT_EQ(sim.ledger().size(), 3u);
}

TEST_F(StopMonitorTest, CircuitBreakerOpensAfterThreeExchangeFailures) {
  for (int i = 1; i <= 3; ++i) operation(i, 1, "BTCUSDT", "BUY", "0.1", "93100", nullptr);
  sim.prices({{"BTCUSDT", "93000"}});
  sim.faults({{"error5xxBeforeExecute", 3}});
  ProcessResult r = monitor();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(db.scalar("SELECT state || ' ' || failure_count FROM circuit_breaker_state WHERE symbol = 'BTCUSDT'"),
            "OPEN 3");
  EXPECT_EQ(summary(r).at("pending"), 3);  // never reached the exchange: submitted, not placed
  EXPECT_TRUE(sim.ledger().empty());

  // While it is OPEN nothing goes out: a new exit is blocked by the guardrails,
  // and the three submissions the exchange says it never got are held as well.
  operation(4, 1, "BTCUSDT", "BUY", "0.1", "93100", nullptr);
  r = monitor();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(summary(r).at("blocked").at("CIRCUIT_OPEN"), 4);
  EXPECT_EQ(events_of(1), "STOP_TRIGGERED,EXECUTION_SUBMITTED,BLOCKED");
  EXPECT_EQ(events_of(4), "STOP_TRIGGERED,BLOCKED");
  EXPECT_TRUE(sim.ledger().empty());

  // After the retry delay one trial goes out alone; its success closes the
  // breaker and the rest follow in the same pass.
  db.exec("UPDATE circuit_breaker_state SET opened_at = now() - interval '301 seconds'");
  r = monitor();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(db.scalar("SELECT state || ' ' || failure_count FROM circuit_breaker_state WHERE symbol = 'BTCUSDT'"),
            "CLOSED 0");
  const json ledger = sim.ledger();
  ASSERT_EQ(ledger.size(), 4u);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_executions WHERE status = 'EXECUTED'"), 4);
  // The resubmissions reuse their first client ids: the exchange never had them.
  std::set<std::string> ids;
  for (const auto& o : ledger) ids.insert(o.at("clientOrderId").get<std::string>());
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events e WHERE e.event_type = 'EXECUTION_SUBMITTED' "
                     "AND e.payload->>'client_order_id' NOT IN (SELECT payload->>'client_order_id' FROM stop_events "
                     "WHERE event_type = 'EXECUTION_SUBMITTED' AND execution_token = e.execution_token "
                     "ORDER BY event_seq LIMIT 1)"),
            0);
}

TEST_F(StopMonitorTest, RateLimitedOrderWaitsForRetryAfterWithoutTrippingTheBreaker) {
  operation(1, 1, "BTCUSDT", "BUY", "0.5", "93100", nullptr);
  sim.prices({{"BTCUSDT", "93000"}});
  operation(2, 1, "BTCUSDT", "BUY", "0.5", "93100", nullptr);
  sim.faults({{"orderRateLimit", 1}});  // the first order: 429 -1015 with Retry-After: 1
  ProcessResult r = monitor({"--json"}, {{"BACKSTOP_ORDERS_IN_FLIGHT", "1"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(summary(r).at("pending"), 2) << r.out;  // the second one was not even sent: quiet for Retry-After
  EXPECT_TRUE(sim.ledger().empty());
  EXPECT_EQ(db.count("SELECT count(*) FROM circuit_breaker_state WHERE failure_count > 0"), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  r = monitor();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(sim.ledger().size(), 2u);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_executions WHERE status = 'EXECUTED'"), 2);
}

TEST_F(StopMonitorTest, StalePriceIsNotActedOn) {
  operation(1, 1, "BTCUSDT", "BUY", "0.5", "93100", nullptr);
  sim.prices({{"BTCUSDT", "93000"}});
  sim.faults({{"latencyMs", 120}});
  const ProcessResult r = monitor({"--max-price-age-ms", "50"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(summary(r).at("blocked").at("STALE_PRICE"), 1);
  EXPECT_TRUE(sim.ledger().empty());
}

TEST_F(StopMonitorTest, PartialFillExitsTheRemainderWithTheNextClientId) {
  operation(1, 1, "BTCUSDT", "BUY", "0.5", "93100", nullptr);
  sim.prices({{"BTCUSDT", "93000"}});
  sim.faults({{"partialFill", 1}});
  const ProcessResult r = monitor();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json ledger = sim.ledger();
  ASSERT_EQ(ledger.size(), 2u);
  EXPECT_EQ(ledger[0].at("status"), "EXPIRED");
  EXPECT_EQ(ledger[0].at("executedQty"), "0.25");
  EXPECT_EQ(ledger[1].at("origQty"), "0.25");
  EXPECT_NE(ledger[0].at("clientOrderId"), ledger[1].at("clientOrderId"));
  EXPECT_EQ(db.scalar("SELECT quantity::text FROM stop_events WHERE event_type = 'EXECUTED'"), "0.50000000");
  EXPECT_EQ(events_of(1), "STOP_TRIGGERED,EXECUTION_SUBMITTED,EXECUTION_SUBMITTED,EXECUTED");
}

TEST_F(StopMonitorTest, SlippageBeyondThePauseThresholdPausesTheTenant) {
  operation(1, 1, "BTCUSDT", "BUY", "0.5", "93100", nullptr);
  operation(2, 1, "ETHUSDT", "BUY", "1", "2990", nullptr);
  sim.prices({{"BTCUSDT", "93000"}});
  sim.faults({{"slippagePct", "4.9"}});  // within the 5 % price guardrail, past nothing
  ASSERT_EQ(monitor().exit_code, 0);
  EXPECT_EQ(db.scalar("SELECT (paused_at IS NULL)::text FROM tenant_config WHERE tenant_id = 1"), "true");
  db.exec("UPDATE tenant_config SET max_slippage_pct = 4, slippage_pause_threshold_pct = 4.5 WHERE tenant_id = 1");
  sim.prices({{"ETHUSDT", "2980"}});
  ASSERT_EQ(monitor().exit_code, 0);
  EXPECT_EQ(db.scalar("SELECT (paused_at IS NOT NULL)::text || ' ' || (paused_reason LIKE 'fill slippage 4.9 %')::text "
                      "FROM tenant_config WHERE tenant_id = 1"),
            "true true");
}

TEST_F(StopMonitorTest, RunMetricsArePushedToARealPushgateway) {
  const Pushgateway gateway;
  const std::string& url = gateway.url();
  db.exec("INSERT INTO tenant_config (tenant_id, trading_enabled) VALUES (2, false)");
  operation(1, 1, "BTCUSDT", "BUY", "0.5", "93100", nullptr);
  operation(2, 2, "BTCUSDT", "BUY", "0.5", "93100", nullptr);
  sim.prices({{"BTCUSDT", "93000"}});
  const ProcessResult r = monitor({"--pushgateway-url", url, "--metrics-instance", "shard-a"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string metrics = gateway.metrics();
  auto has = [&](const std::string& line) {
    EXPECT_NE(metrics.find(line), std::string::npos) << line << "\n" << metrics.substr(0, 3000);
  };
  has("backstop_stop_monitor_last_run_triggers{instance=\"shard-a\",job=\"backstop_stop_monitor\"} 2");
  has("backstop_stop_monitor_last_run_executions{instance=\"shard-a\",job=\"backstop_stop_monitor\",outcome=\"executed\"} 1");
  has("backstop_stop_monitor_last_run_blocked{instance=\"shard-a\",job=\"backstop_stop_monitor\",reason=\"KILL_SWITCH\"} 1");
  has("backstop_stop_monitor_last_run_success{instance=\"shard-a\",job=\"backstop_stop_monitor\"} 1");
  has("backstop_stop_monitor_last_success_timestamp_seconds{instance=\"shard-a\",job=\"backstop_stop_monitor\"}");
}

}  // namespace
}  // namespace backstop::testing

namespace backstop::testing {
namespace {

// The ws port file is written after the HTTP one; both exist once the sim is up.
TEST_F(StopMonitorTest, StreamAndCronRacingOnTheSameTicksExitEachPositionOnce) {
  constexpr int kOperations = 300;
  db.exec("INSERT INTO tenant_config (tenant_id, max_executions_per_minute, max_executions_per_hour) "
          "VALUES (1, 100000, 100000);"
          "INSERT INTO operation (tenant_id, symbol, side, average_entry_price, quantity, stop_price) "
          "SELECT 1, 'BTCUSDT', 'BUY', 95000, 0.01, 94000 - i FROM generate_series(0, " +
          std::to_string(kOperations - 1) + ") i");
  sim.prices({{"BTCUSDT", "95000"}});
  Process stream({binary("stop-monitor"), "--database-url", db.url(), "--json", "--stream", "--interval", "0.2"},
                 sim.env());
  ASSERT_TRUE(stream.wait_for_stderr("price stream open"));  // subscribed
  std::vector<std::unique_ptr<Process>> crons;
  for (int step = 0; step < kOperations; step += 30) {
    sim.prices({{"BTCUSDT", std::to_string(94000 - step - 29)}});  // crosses 30 more stops
    crons.push_back(std::make_unique<Process>(
        std::vector<std::string>{binary("stop-monitor"), "--database-url", db.url(), "--json"}, sim.env()));
  }
  for (auto& cron : crons) EXPECT_EQ(cron->wait().exit_code, 0);
  for (int i = 0; i < 100 && db.count("SELECT count(*) FROM stop_executions WHERE status = 'EXECUTED'") < kOperations;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stream.kill(SIGTERM);
  const ProcessResult streamed = stream.wait();
  EXPECT_EQ(streamed.exit_code, 0) << streamed.err.substr(0, 2000);
  EXPECT_EQ(sim.ledger().size(), static_cast<std::size_t>(kOperations));
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events WHERE event_type = 'EXECUTED'"), kOperations);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events WHERE event_type = 'STOP_TRIGGERED'"), kOperations);
  EXPECT_GT(db.count("SELECT count(*) FROM stop_events WHERE event_type = 'STOP_TRIGGERED' AND source = 'stream'"), 0);
  const json summary = json::parse(streamed.out.substr(0, streamed.out.find('\n')));
  EXPECT_GT(summary.at("claim_latency_us").at("count").get<int>(), 0);
}

}  // namespace
}  // namespace backstop::testing
