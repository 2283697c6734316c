// trailing-stop against a real PostgreSQL and the exchange simulator: DOMAIN §4's
// worked examples end to end, each step exactly once, the rule per operation or
// per tenant, rows that cannot trail, and trailing-stop racing stop-monitor.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "store/event_store.h"
#include "support/pg.h"
#include "support/process.h"
#include "support/progress.h"
#include "support/pushgateway.h"
#include "support/sim.h"

namespace backstop::testing {
namespace {

using nlohmann::json;

class TrailingStopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db.migrate();
    sim.btc_eth_markets("50000");
  }

  ProcessResult trailing(std::vector<std::string> args = {}) const {
    std::vector<std::string> argv = {binary("trailing-stop"), "--database-url", db.url(), "--json"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, sim.env());
  }

  static json summary(const ProcessResult& r) {
    const auto first_line = r.out.substr(0, r.out.find('\n'));
    if (!json::accept(first_line)) {
      ADD_FAILURE() << "no JSON summary; stdout: " << r.out << "\nstderr: " << r.err;
      return json::object();
    }
    return json::parse(first_line);
  }

  // One pass at `price`; returns the operation's stop afterwards.
  std::string pass_at(const char* symbol, const std::string& price, int operation = 1) const {
    sim.prices({{symbol, price}});
    const ProcessResult r = trailing();
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return db.scalar("SELECT stop_price::numeric::text FROM operation WHERE id = " + std::to_string(operation));
  }

  void position(int id, int tenant, const char* symbol, const char* side, const char* entry, const char* stop,
                const char* mode = "'HAND_SPAN'") const {
    db.exec(
        "INSERT INTO operation (id, tenant_id, symbol, side, average_entry_price, quantity, stop_price, "
        "trailing_mode) VALUES (" +
        std::to_string(id) + ", " + std::to_string(tenant) + ", '" + symbol + "', '" + side + "', " + entry +
        ", 0.1, " + stop + ", " + mode + ")");
  }

  std::string adjustments(int operation) const {
    return db.scalar(
        "SELECT string_agg(execution_token || ':' || trim_scale(stop_price) || ':' || reason, ',' "
        "ORDER BY event_seq) FROM stop_events WHERE event_type = 'STOP_ADJUSTED' AND operation_id = " +
        std::to_string(operation));
  }

  TestDatabase db;
  SimServer sim;
};

std::string trimmed(std::string text) {  // numeric text without trailing zeros
  if (text.find('.') == std::string::npos) return text;
  while (!text.empty() && text.back() == '0') text.pop_back();
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

TEST_F(TrailingStopTest, WorkedExampleLongTrailsUpAndIsThenHitOnce) {
  position(1, 1, "BTCUSDT", "BUY", "50000", "49000");
  EXPECT_EQ(trimmed(pass_at("BTCUSDT", "50500")), "49000");  // not one span yet
  EXPECT_EQ(trimmed(pass_at("BTCUSDT", "51000")), "50075");  // break-even with 0.15 % costs
  EXPECT_EQ(trimmed(pass_at("BTCUSDT", "51000")), "50075");  // a re-run moves nothing
  EXPECT_EQ(trimmed(pass_at("BTCUSDT", "52000")), "51000");
  EXPECT_EQ(trimmed(pass_at("BTCUSDT", "54000")), "53000");
  EXPECT_EQ(trimmed(pass_at("BTCUSDT", "53500")), "53000");  // retrace: never loosens
  EXPECT_EQ(adjustments(1), "op1-HS-1:50075:BREAK_EVEN,op1-HS-2:51000:TRAILING,op1-HS-4:53000:TRAILING");
  EXPECT_EQ(db.scalar("SELECT initial_stop_price::numeric::text || ' ' || trail_wake_price::numeric::text "
                      "FROM operation WHERE id = 1"),
            "49000.00000000 55000.00000000");
  // Every adjustment went to the outbox with its routing key and payload.
  EXPECT_EQ(db.count("SELECT count(*) FROM outbox WHERE routing_key = 'stop.stop_adjusted.1.BTCUSDT' "
                     "AND payload->>'stop_price' IS NOT NULL AND payload->'data'->>'mode' = 'HAND_SPAN'"),
            3);

  // The price falls through the trailed stop: stop-monitor exits at 53,000's level, once.
  sim.prices({{"BTCUSDT", "52900"}});
  const ProcessResult monitor = run({binary("stop-monitor"), "--database-url", db.url(), "--json"}, sim.env());
  ASSERT_EQ(monitor.exit_code, 0) << monitor.err;
  ASSERT_EQ(sim.ledger().size(), 1u);
  EXPECT_EQ(db.scalar("SELECT execution_token FROM stop_executions WHERE operation_id = 1 AND status = 'EXECUTED'"),
            "op1-SL-53000");
  EXPECT_EQ(db.scalar("SELECT status FROM operation WHERE id = 1"), "CLOSED");
  // A closed operation is never adjusted, even if the price would move it.
  pass_at("BTCUSDT", "60000");
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events WHERE event_type = 'STOP_ADJUSTED'"), 3);
  EXPECT_EQ(run({binary("migrate"), "--database-url", db.url(), "replay"}).exit_code, 0);
}

// Issue 12, item 9: the first pass over a large book (every wake price
// computed) shows rows done of the total as JSON log lines on stderr; stdout's
// --json summary is unchanged.
TEST_F(TrailingStopTest, AFirstPassOverALargeBookShowsItsProgress) {
  db.exec(
      "INSERT INTO operation (id, tenant_id, symbol, side, average_entry_price, quantity, stop_price, trailing_mode) "
      "SELECT g, 1, 'BTCUSDT', 'BUY', 50000, 0.1, 49000, 'HAND_SPAN' FROM generate_series(1, 2000) g");
  Env env = sim.env();
  env.emplace_back("BACKSTOP_LOG_FORMAT", "json");
  env.emplace_back("BACKSTOP_PROGRESS_EVERY_MS", "0");  // a line after every batch
  const ProcessResult r =
      run({binary("trailing-stop"), "--database-url", db.url(), "--json", "--batch-size", "500"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json total = json::parse(r.out.substr(0, r.out.find('\n')));  // stdout: the summary alone
  EXPECT_EQ(total.at("due"), 2000) << r.out;
  const std::vector<json> lines = json_log_lines(r.err, "progress");
  ASSERT_GE(lines.size(), 4u) << r.err;
  EXPECT_EQ(lines.front()["work"], "trailing-stop");
  EXPECT_EQ(lines.front()["total"], 2000);
  EXPECT_EQ(lines.front()["done"], 500);
  EXPECT_EQ(lines.back()["msg"], "progress: done");
  EXPECT_EQ(lines.back()["done"], 2000);
  // A second pass has nothing due: no progress at all.
  const ProcessResult again =
      run({binary("trailing-stop"), "--database-url", db.url(), "--json", "--batch-size", "500"}, env);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.err.find("\"progress"), std::string::npos) << again.err;
}

TEST_F(TrailingStopTest, WorkedExampleShortFollowsTheTenantDefault) {
  db.exec("INSERT INTO tenant_config (tenant_id, trailing_mode) VALUES (2, 'HAND_SPAN')");
  position(1, 2, "ETHUSDT", "SELL", "3000", "3100", "NULL");
  position(2, 3, "ETHUSDT", "SELL", "3000", "3100", "NULL");  // tenant 3 does not trail
  EXPECT_EQ(trimmed(pass_at("ETHUSDT", "2900")), "2995.50673989");
  EXPECT_EQ(trimmed(pass_at("ETHUSDT", "2800")), "2900");
  EXPECT_EQ(trimmed(pass_at("ETHUSDT", "2700")), "2800");
  EXPECT_EQ(trimmed(db.scalar("SELECT stop_price::text FROM operation WHERE id = 2")), "3100");
  // The tenant switches trailing off: its operations are recomputed, nothing moves.
  db.exec("UPDATE tenant_config SET trailing_mode = NULL WHERE tenant_id = 2");
  EXPECT_EQ(trimmed(pass_at("ETHUSDT", "2500")), "2800");
}

TEST_F(TrailingStopTest, GapOverSeveralSpansJumpsStraightToTheLevel) {
  position(1, 1, "BTCUSDT", "BUY", "50000", "49000");
  EXPECT_EQ(trimmed(pass_at("BTCUSDT", "57500")), "56000");
  EXPECT_EQ(adjustments(1), "op1-HS-7:56000:TRAILING");
}

TEST_F(TrailingStopTest, ManualTighterStopIsKeptAndTrailingResumesBeyondIt) {
  position(1, 1, "BTCUSDT", "BUY", "50000", "49000");
  EXPECT_EQ(trimmed(pass_at("BTCUSDT", "51000")), "50075");
  {
    // A trader tightens the stop by hand: a STOP_CONFIGURED event, as any manual change.
    auto connection = db.connect();
    pqxx::work tx(*connection);
    core::Event e;
    e.operation_id = core::OperationId{1};
    e.tenant_id = core::TenantId{1};
    e.symbol = "BTCUSDT";
    e.type = core::EventType::kStopConfigured;
    e.source = core::EventSource::kManual;
    e.execution_token = "op1-manual-1";
    e.stop_price = core::Decimal::parse("52500");
    store::EventStore::append(tx, {e});
    tx.commit();
  }
  EXPECT_EQ(db.scalar("SELECT coalesce(trail_wake_price::text, 'none') FROM operation WHERE id = 1"), "none");
  EXPECT_EQ(trimmed(pass_at("BTCUSDT", "53500")), "52500");  // steps 2 and 3 would loosen it
  EXPECT_EQ(trimmed(db.scalar("SELECT trail_wake_price::text FROM operation WHERE id = 1")), "54000");
  EXPECT_EQ(trimmed(pass_at("BTCUSDT", "54000")), "53000");
  EXPECT_EQ(adjustments(1), "op1-HS-1:50075:BREAK_EVEN,op1-HS-4:53000:TRAILING");
}

TEST_F(TrailingStopTest, PercentOffsetWithActivationPrice) {
  position(1, 1, "BTCUSDT", "BUY", "100", "95", "'PERCENT'");
  db.exec("UPDATE operation SET trailing_offset = 5, trailing_activation_price = 110 WHERE id = 1");
  EXPECT_EQ(trimmed(pass_at("BTCUSDT", "105")), "95");  // not activated yet
  EXPECT_EQ(trimmed(pass_at("BTCUSDT", "110")), "104.5");
  EXPECT_EQ(trimmed(pass_at("BTCUSDT", "120")), "114");
  EXPECT_EQ(trimmed(pass_at("BTCUSDT", "115")), "114");
  EXPECT_EQ(adjustments(1), "op1-TR-104.5:104.5:TRAILING,op1-TR-114:114:TRAILING");
}

TEST_F(TrailingStopTest, TenantFilterAndRunMetrics) {
  position(1, 1, "BTCUSDT", "BUY", "50000", "49000");
  position(2, 2, "BTCUSDT", "BUY", "50000", "49000");
  const Pushgateway gateway;
  sim.prices({{"BTCUSDT", "52000"}});
  const ProcessResult r = trailing({"--tenant", "2", "--pushgateway-url", gateway.url(), "--metrics-instance", "t2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(adjustments(1), "");  // another shard's
  EXPECT_EQ(adjustments(2), "op2-HS-2:51000:TRAILING");
  const std::string metrics = gateway.metrics();
  for (const std::string line :
       {"backstop_trailing_stop_last_run_operations{instance=\"t2\",job=\"backstop_trailing_stop\",outcome="
        "\"adjusted\"} 1",
        "backstop_trailing_stop_last_run_due{instance=\"t2\",job=\"backstop_trailing_stop\"} 1",
        "backstop_trailing_stop_last_run_success{instance=\"t2\",job=\"backstop_trailing_stop\"} 1"}) {
    EXPECT_NE(metrics.find(line), std::string::npos) << line << "\n" << metrics.substr(0, 3000);
  }
}

TEST_F(TrailingStopTest, DryRunWritesNothing) {
  position(1, 1, "BTCUSDT", "BUY", "50000", "49000");
  sim.prices({{"BTCUSDT", "52000"}});
  const ProcessResult r = trailing({"--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json s = summary(r);
  EXPECT_EQ(s.at("adjusted"), 1);
  EXPECT_EQ(s.at("adjustments")[0].at("new_stop"), "51000");
  EXPECT_EQ(s.at("adjustments")[0].at("outcome"), "dry-run");
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events"), 0);
  EXPECT_EQ(db.scalar("SELECT stop_price::numeric::text || coalesce(trail_wake_price::text, '/none') "
                      "FROM operation WHERE id = 1"),
            "49000.00000000/none");
}

TEST_F(TrailingStopTest, RowsThatCannotTrailAreReportedOnceAndKeptOutOfLaterPasses) {
  position(1, 1, "BTCUSDT", "BUY", "50000", "51000");                // Hand-Span long with the stop above the entry
  position(2, 1, "BTCUSDT", "BUY", "50000", "49000", "'ABSOLUTE'");  // no offset anywhere
  position(3, 1, "BTCUSDT", "BUY", "50000", "49000");                // fine
  sim.prices({{"BTCUSDT", "52000"}});
  const ProcessResult r = trailing();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json s = summary(r);
  EXPECT_EQ(s.at("invalid"), 2);
  EXPECT_EQ(s.at("adjusted"), 1);
  EXPECT_NE(db.scalar("SELECT trail_error FROM operation WHERE id = 1").find("initial stop below the entry of a long"),
            std::string::npos);
  EXPECT_EQ(db.scalar("SELECT trail_error FROM operation WHERE id = 2"),
            "ABSOLUTE trailing needs an offset (trailing_offset)");
  const ProcessResult again = trailing();
  EXPECT_EQ(summary(again).at("due"), 0);                              // not read again until something changes
  db.exec("UPDATE operation SET trailing_offset = 500 WHERE id = 2");  // fixed: trails on the next pass
  EXPECT_EQ(trimmed(pass_at("BTCUSDT", "52000", 2)), "51500");
}

TEST_F(TrailingStopTest, AnOperationWithAnExitInFlightIsLeftAlone) {
  position(1, 1, "BTCUSDT", "BUY", "50000", "49000");
  {
    auto connection = db.connect();
    pqxx::work tx(*connection);
    core::Event e;
    e.operation_id = core::OperationId{1};
    e.tenant_id = core::TenantId{1};
    e.symbol = "BTCUSDT";
    e.type = core::EventType::kStopTriggered;
    e.source = core::EventSource::kCron;
    e.execution_token = "op1-SL-49000";
    e.trigger_kind = core::TriggerKind::kStopLoss;
    e.side = core::Side::kSell;
    e.trigger_price = core::Decimal::parse("48900");
    store::EventStore::append(tx, {e});
    tx.commit();
  }
  sim.prices({{"BTCUSDT", "52000"}});
  const ProcessResult r = trailing();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(summary(r).at("in_flight"), 1);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events WHERE event_type = 'STOP_ADJUSTED'"), 0);
}

TEST_F(TrailingStopTest, StreamModeMovesTheStopOnTicks) {
  position(1, 1, "BTCUSDT", "BUY", "50000", "49000");
  sim.prices({{"BTCUSDT", "50000"}});
  // Full passes only every 60 s: after the first one, ticks do the work.
  Process stream({binary("trailing-stop"), "--database-url", db.url(), "--json", "--stream", "--interval", "60"},
                 sim.env());
  ASSERT_TRUE(stream.wait_for_stderr("price stream open"));
  ASSERT_TRUE(wait_until({.done = [&] {
    return !db.scalar(
                  "SELECT coalesce(trail_wake_price::text, '') FROM "
                  "operation")
                .empty();
  }}));
  sim.prices({{"BTCUSDT", "52100"}});
  EXPECT_TRUE(wait_until({.done = [&] {
    return db.count(
               "SELECT count(*) FROM stop_events WHERE event_type = "
               "'STOP_ADJUSTED'") > 0;
  }}));
  stream.kill(SIGTERM);
  const ProcessResult r = stream.wait();
  EXPECT_EQ(r.exit_code, 0) << r.err.substr(0, 2000);
  EXPECT_EQ(adjustments(1), "op1-HS-2:51000:TRAILING");
  EXPECT_EQ(summary(r).at("adjusted"), 1);
}

TEST_F(TrailingStopTest, RacingStopMonitorNeverAdjustsAClosedOperationNorLosesAnExit) {
  constexpr int kOperations = 200;
  // The price falls fast: a monitor slowed down (a loaded machine, ASan) meets it far past the levels, which
  // the slippage guardrails (5 % block, 10 % pause) would rightly hold. This test is about the race.
  db.exec(
      "INSERT INTO tenant_config (tenant_id, max_executions_per_minute, max_executions_per_hour, trailing_mode, "
      "max_slippage_pct, slippage_pause_threshold_pct) VALUES (1, 100000, 100000, 'HAND_SPAN', 90, 99);"
      "INSERT INTO operation (tenant_id, symbol, side, average_entry_price, quantity, stop_price) "
      "SELECT 1, 'BTCUSDT', 'BUY', 50000, 0.01, 49000 + i * 4 FROM generate_series(0, " +
      std::to_string(kOperations - 1) + ") i");
  sim.prices({{"BTCUSDT", "50000"}});
  // Up in small steps (every operation trails several times), then down through every stop.
  json steps = json::array();
  for (int p = 50000; p <= 56000; p += 20) steps.push_back({{"BTCUSDT", std::to_string(p)}});
  for (int p = 56000; p >= 44000; p -= 40) steps.push_back({{"BTCUSDT", std::to_string(p)}});
  sim.post("/admin/price-path", {{"intervalMs", 8}, {"steps", steps}});
  Process trail({binary("trailing-stop"), "--database-url", db.url(), "--json", "--continuous", "--interval", "0.01",
                 "--batch-size", "50"},
                sim.env());
  Process trail2({binary("trailing-stop"), "--database-url", db.url(), "--json", "--continuous", "--interval", "0.013"},
                 sim.env());
  Process monitor({binary("stop-monitor"), "--database-url", db.url(), "--json", "--continuous", "--interval", "0.01"},
                  sim.env());
  // Wait on progress, not a total time: give up only when nothing has moved
  // for a minute, with the state printed.
  EXPECT_TRUE(wait_until({.done =
                              [&] {
                                return sim.get("/admin/price-path").at("remaining").get<int>() == 0 &&
                                       db.count("SELECT count(*) FROM operation WHERE status = 'ACTIVE'") == 0;
                              },
                          .progress =
                              [&] {
                                return db.scalar("SELECT count(*) FROM stop_events") + "/" +
                                       sim.get("/admin/price-path").at("remaining").dump();
                              },
                          .state =
                              [&] {
                                return db.scalar(
                                    "SELECT string_agg(status || ' ' || coalesce(blocked_reason, '') || ' ' || n, "
                                    "', ') FROM (SELECT status, blocked_reason, count(*) n FROM stop_executions "
                                    "GROUP BY 1, 2) x");
                              }}));
  for (Process* p : {&trail, &trail2, &monitor}) p->kill(SIGTERM);
  for (Process* p : {&trail, &trail2, &monitor}) {
    const ProcessResult r = p->wait();
    EXPECT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  }
  // Every exit happened, once.
  EXPECT_EQ(db.count("SELECT count(*) FROM operation WHERE status = 'CLOSED'"), kOperations);
  EXPECT_EQ(sim.ledger().size(), static_cast<std::size_t>(kOperations));
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events WHERE event_type = 'EXECUTED'"), kOperations);
  // Trailing did work ... (how much depends on how fast this machine is while
  // the price path runs at its own pace: a loaded machine trails less, which
  // is not what this test judges).
  EXPECT_GT(db.count("SELECT count(*) FROM stop_events WHERE event_type = 'STOP_ADJUSTED'"), 0);
  // ... and never once an operation's exit had committed.
  EXPECT_EQ(
      db.count("SELECT count(*) FROM stop_events a JOIN stop_events x ON x.operation_id = a.operation_id "
               "AND x.event_type = 'EXECUTED' WHERE a.event_type = 'STOP_ADJUSTED' AND a.event_seq > x.event_seq"),
      0);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events a JOIN stop_events x ON x.operation_id = a.operation_id "
                     "AND x.event_type = 'EXECUTION_SUBMITTED' "
                     "WHERE a.event_type = 'STOP_ADJUSTED' AND a.event_seq > x.event_seq"),
            0);
  // Exits went out at trailed levels, above every initial stop (the highest is 49796).
  EXPECT_GT(db.count("SELECT count(*) FROM stop_executions WHERE status = 'EXECUTED' AND fill_price > 49796"), 0);
  EXPECT_EQ(run({binary("migrate"), "--database-url", db.url(), "replay"}).exit_code, 0);
}

}  // namespace
}  // namespace backstop::testing
