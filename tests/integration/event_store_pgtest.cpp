// The event store against a real PostgreSQL: append-only enforcement, atomic
// append of event + projection + outbox, token uniqueness under races, history
// with NULLs, and a projection rebuild that equals the live rows.
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "store/event_store.h"
#include "support/pg.h"
#include "support/process.h"

namespace backstop::testing {
namespace {

using core::Decimal;
using core::Event;
using core::EventType;
using store::EventStore;

Decimal D(const char* text) { return Decimal::parse(text); }

class EventStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db.migrate();
    db.exec(
        "INSERT INTO tenant (id) VALUES (1);"
        "INSERT INTO operation (id, tenant_id, symbol, side, average_entry_price, quantity, stop_price, "
        "target_price) VALUES (7, 1, 'BTCUSDT', 'BUY', 95000, 0.01, 93100, 98800), "
        "(8, 1, 'ETHUSDT', 'SELL', 3000, 1, 3100, 2800)");
    connection = db.connect();
  }

  static Event make(EventType type, std::int64_t operation = 7, const char* token = "op7-STOP_LOSS-93100") {
    Event e;
    e.operation_id = core::OperationId{operation};
    e.tenant_id = core::TenantId{1};
    e.symbol = operation == 7 ? "BTCUSDT" : "ETHUSDT";
    e.type = type;
    e.source = core::EventSource::kCron;
    e.execution_token = token;
    return e;
  }

  store::AppendResult append(std::vector<Event> events) {
    pqxx::work tx(*connection);
    store::AppendResult r = EventStore::append(tx, std::move(events));
    tx.commit();
    return r;
  }

  // A stop-loss exit that ends in EXECUTED.
  void executed_life(std::int64_t operation, const char* token) {
    Event t = make(EventType::kStopTriggered, operation, token);
    t.trigger_kind = core::TriggerKind::kStopLoss;
    t.side = core::Side::kSell;
    t.trigger_price = D("93050");
    t.quantity = D("0.01");
    append({t});
    append({make(EventType::kExecutionSubmitted, operation, token)});
    Event x = make(EventType::kExecuted, operation, token);
    x.fill_price = D("93000.5");
    x.slippage_pct = D("0.05319721");
    x.exchange_order_id = "28457";
    append({x});
  }

  TestDatabase db;
  std::unique_ptr<pqxx::connection> connection;
};

TEST_F(EventStoreTest, StopEventsRefusesUpdateDeleteAndTruncate) {
  Event e = make(EventType::kStopConfigured, 7, "genesis-7");
  e.stop_price = D("93100");
  append({e});
  for (const char* sql :
       {"UPDATE stop_events SET stop_price = 1", "DELETE FROM stop_events", "TRUNCATE stop_events CASCADE"}) {
    SCOPED_TRACE(sql);
    try {
      db.exec(sql);
      FAIL() << "allowed: " << sql;
    } catch (const pqxx::sql_error& error) {
      EXPECT_NE(std::string(error.what()).find("stop_events is append-only"), std::string::npos) << error.what();
    }
  }
  EXPECT_EQ(db.scalar("SELECT stop_price::text FROM stop_events"), "93100.00000000");
}

TEST_F(EventStoreTest, AppendWritesEventProjectionAndOutboxTogether) {
  executed_life(7, "op7-STOP_LOSS-93100");
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events WHERE operation_id = 7"), 3);
  EXPECT_EQ(db.count("SELECT count(*) FROM outbox"), 3);
  EXPECT_EQ(db.scalar("SELECT string_agg(routing_key, ',' ORDER BY outbox_id) FROM outbox"),
            "stop.stop_triggered.1.BTCUSDT,stop.execution_submitted.1.BTCUSDT,stop.executed.1.BTCUSDT");
  EXPECT_EQ(db.count("SELECT count(*) FROM outbox o JOIN stop_events e USING (event_id) "
                     "WHERE o.payload->>'event_id' = e.event_id::text AND o.event_seq = e.event_seq "
                     "AND o.payload->>'event_type' = e.event_type AND NOT o.published"),
            3);
  EXPECT_EQ(db.scalar("SELECT payload->>'fill_price' FROM outbox WHERE routing_key LIKE 'stop.executed.%'"),
            "93000.50000000");
  EXPECT_EQ(db.scalar("SELECT status || ' ' || fill_price || ' ' || slippage_pct || ' ' || exchange_order_id "
                      "|| ' ' || retry_count FROM stop_executions WHERE execution_token = 'op7-STOP_LOSS-93100'"),
            "EXECUTED 93000.50000000 0.05319721 28457 0");
  EXPECT_EQ(db.scalar("SELECT (executed_at >= submitted_at AND submitted_at >= triggered_at)::text "
                      "FROM stop_executions"),
            "true");
  EXPECT_EQ(db.scalar("SELECT status || (closed_at IS NOT NULL)::text FROM operation WHERE id = 7"), "CLOSEDtrue");
  EXPECT_EQ(db.scalar("SELECT status FROM operation WHERE id = 8"), "ACTIVE");
}

TEST_F(EventStoreTest, HistoryReadsEventsInOrderWithNullsAsEmpty) {
  executed_life(7, "op7-STOP_LOSS-93100");
  pqxx::read_transaction tx(*connection);
  const auto history = EventStore::history(tx, core::OperationId{7});
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[0].type, EventType::kStopTriggered);
  EXPECT_EQ(history[1].type, EventType::kExecutionSubmitted);
  EXPECT_EQ(history[2].type, EventType::kExecuted);
  EXPECT_LT(history[0].seq, history[1].seq);
  EXPECT_EQ(history[0].trigger_price, D("93050"));
  EXPECT_FALSE(history[1].trigger_price.has_value());  // NULL column
  EXPECT_FALSE(history[1].exchange_order_id.has_value());
  EXPECT_EQ(history[2].exchange_order_id, "28457");
  EXPECT_EQ(history[0].event_id.size(), 36u);
  EXPECT_TRUE(EventStore::history(tx, core::OperationId{8}).empty());
}

TEST_F(EventStoreTest, SecondClaimOfATokenLosesAndWritesNothing) {
  const auto first = append({make(EventType::kStopTriggered)});
  EXPECT_EQ(first.appended.size(), 1u);
  const auto second = append({make(EventType::kStopTriggered)});
  EXPECT_TRUE(second.appended.empty());
  ASSERT_EQ(second.duplicates.size(), 1u);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events"), 1);
  EXPECT_EQ(db.count("SELECT count(*) FROM outbox"), 1);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_executions"), 1);
}

TEST_F(EventStoreTest, ConcurrentClaimsHaveExactlyOneWinner) {
  constexpr int kClaimants = 8;
  std::atomic<int> winners{0}, losers{0}, ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClaimants; ++i) {
    threads.emplace_back([&] {
      auto own = db.connect();
      ++ready;
      while (ready < kClaimants) std::this_thread::yield();
      pqxx::work tx(*own);
      const auto r = EventStore::append(tx, {make(EventType::kStopTriggered)});
      tx.commit();
      winners += static_cast<int>(r.appended.size());
      losers += static_cast<int>(r.duplicates.size());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(winners, 1);
  EXPECT_EQ(losers, kClaimants - 1);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events"), 1);
  EXPECT_EQ(db.count("SELECT count(*) FROM outbox"), 1);
}

TEST_F(EventStoreTest, ImpossibleTransitionIsRefusedAndLeavesNothing) {
  pqxx::work tx(*connection);
  EXPECT_THROW((void)EventStore::append(tx, {make(EventType::kExecuted)}), core::ProjectionError);
  tx.abort();
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events"), 0);
  EXPECT_EQ(db.count("SELECT count(*) FROM outbox"), 0);
  pqxx::work again(*connection);
  Event bad = make(EventType::kStopTriggered);
  bad.execution_token = "";
  EXPECT_THROW((void)EventStore::append(again, {bad}), std::invalid_argument);
}

TEST_F(EventStoreTest, FullErrorTextIsKeptUntruncated) {
  append({make(EventType::kStopTriggered)});
  append({make(EventType::kExecutionSubmitted)});
  Event failed = make(EventType::kFailed);
  failed.error_message =
      "binance -2010 Account has insufficient balance for requested action. " + std::string(10000, '!');
  append({failed});
  EXPECT_EQ(db.count("SELECT length(error_message) FROM stop_executions"),
            static_cast<std::int64_t>(failed.error_message->size()));
  EXPECT_EQ(db.count("SELECT length(payload->>'error_message') FROM outbox WHERE routing_key LIKE 'stop.failed.%'"),
            static_cast<std::int64_t>(failed.error_message->size()));
}

TEST_F(EventStoreTest, ReplayRebuildsIdenticalProjectionsAndRepairsTampering) {
  executed_life(7, "op7-STOP_LOSS-93100");
  // Operation 8: configured, blocked, retried twice, failed.
  Event configured = make(EventType::kStopConfigured, 8, "genesis-8");
  configured.stop_price = D("3100");
  configured.target_price = D("2800");
  Event adjusted = make(EventType::kStopAdjusted, 8, "op8-trail-1");
  adjusted.stop_price = D("3000.5");
  append({configured, adjusted});
  append({make(EventType::kStopTriggered, 8, "op8-STOP_LOSS-3000.5")});
  Event blocked = make(EventType::kBlocked, 8, "op8-STOP_LOSS-3000.5");
  blocked.reason = "CIRCUIT_BREAKER_OPEN";
  append({blocked});
  append({make(EventType::kExecutionSubmitted, 8, "op8-STOP_LOSS-3000.5")});
  append({make(EventType::kExecutionSubmitted, 8, "op8-STOP_LOSS-3000.5")});
  Event failed = make(EventType::kFailed, 8, "op8-STOP_LOSS-3000.5");
  failed.error_message = "timeout";
  append({failed});

  auto identical = store::EventStore::replay(*connection, false);
  EXPECT_TRUE(identical.differences.empty()) << identical.differences.front();
  EXPECT_EQ(identical.events, 10);
  EXPECT_EQ(identical.executions, 2);
  EXPECT_EQ(db.scalar("SELECT retry_count FROM stop_executions WHERE operation_id = 8"), "1");

  // Tamper with the projections outside the event store.
  db.exec(
      "UPDATE stop_executions SET status = 'EXECUTED' WHERE operation_id = 8;"
      "UPDATE operation SET stop_price = 1 WHERE id = 8;"
      "INSERT INTO stop_executions (execution_token, operation_id, tenant_id, symbol, status, source, "
      "last_event_seq) VALUES ('ghost', 9, 1, 'X', 'FAILED', 'cron', 0)");
  const ProcessResult check = run({binary("migrate"), "--database-url", db.url(), "--json", "replay"});
  EXPECT_EQ(check.exit_code, 1) << check.err;
  const auto report = nlohmann::json::parse(check.out);
  EXPECT_EQ(report.at("differences").size(), 3u) << check.out;
  EXPECT_EQ(report.at("rewritten"), false);
  EXPECT_EQ(db.scalar("SELECT status FROM stop_executions WHERE operation_id = 8"), "EXECUTED");  // untouched

  const ProcessResult rewrite = run({binary("migrate"), "--database-url", db.url(), "--json", "replay", "--rewrite"});
  EXPECT_EQ(rewrite.exit_code, 0) << rewrite.err;
  EXPECT_EQ(db.scalar("SELECT status FROM stop_executions WHERE operation_id = 8"), "FAILED");
  EXPECT_EQ(db.scalar("SELECT stop_price::text FROM operation WHERE id = 8"), "3000.50000000");
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_executions WHERE execution_token = 'ghost'"), 0);
  EXPECT_TRUE(store::EventStore::replay(*connection, false).differences.empty());
}

// Issue 13: reconcile's events. The database refuses them while the
// operation's exit is in flight (R1), and a POSITION_RECONCILED that does not
// lower the quantity (R4); otherwise the quantity follows (the original kept),
// POSITION_CLOSED_EXTERNALLY closes it, and replay agrees.
TEST_F(EventStoreTest, ReconcileEventsAreRefusedWhileAnExitIsInFlightAndOnlyLowerTheQuantity) {
  auto reconciled = [&](const char* quantity, const char* token) {
    Event e = make(EventType::kPositionReconciled, 7, token);
    e.source = core::EventSource::kReconcile;
    e.quantity = D(quantity);
    e.reason = "FOREIGN_SELL";
    return e;
  };
  Event claim = make(EventType::kStopTriggered, 7, "op7-SL-93100");
  claim.trigger_kind = core::TriggerKind::kStopLoss;
  claim.side = core::Side::kSell;
  claim.quantity = D("0.01");
  append({claim});
  try {
    append({reconciled("0.005", "op7-RC-1")});
    FAIL() << "appended under an exit in flight";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("has an exit in flight"), std::string::npos) << e.what();
  }
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events WHERE event_type LIKE 'POSITION%'"), 0);
  // Operation 8 has no exit: its quantity follows the account.
  auto on8 = [&](EventType type, const char* quantity, const char* token) {
    Event e = make(type, 8, token);
    e.source = core::EventSource::kReconcile;
    if (quantity != nullptr) e.quantity = D(quantity);
    return e;
  };
  try {
    append({on8(EventType::kPositionReconciled, "1.5", "op8-RC-up")});
    FAIL() << "a raise was appended";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("only lowers"), std::string::npos) << e.what();
  }
  append({on8(EventType::kPositionReconciled, "0.6", "op8-RC-1")});
  EXPECT_EQ(db.scalar("SELECT quantity || ' ' || original_quantity || ' ' || sync_status || ' ' || status "
                      "FROM operation WHERE id = 8"),
            "0.60000000 1.00000000 REDUCED ACTIVE");
  // The same token again (a racing reconcile): one event.
  EXPECT_EQ(append({on8(EventType::kPositionReconciled, "0.5", "op8-RC-1")}).duplicates.size(), 1u);
  append({on8(EventType::kPositionOutOfSync, "0.4", "op8-OS-1")});
  EXPECT_EQ(db.scalar("SELECT sync_status FROM operation WHERE id = 8"), "SHORT");
  append({on8(EventType::kPositionClosedExternally, "0", "op8-CE-1")});
  EXPECT_EQ(db.scalar("SELECT quantity || ' ' || original_quantity || ' ' || sync_status || ' ' || status || ' ' || "
                      "close_reason FROM operation WHERE id = 8"),
            "0.60000000 1.00000000 CLOSED_ELSEWHERE CLOSED CLOSED_ELSEWHERE");
  EXPECT_EQ(db.count("SELECT count(*) FROM outbox WHERE routing_key = 'stop.position_reconciled.1.ETHUSDT'"), 1);
  const auto replayed = store::EventStore::replay(*connection, false);
  EXPECT_TRUE(replayed.differences.empty()) << replayed.differences.front();
  // A quantity changed behind the event log's back is a difference.
  db.exec("UPDATE operation SET quantity = 0.7 WHERE id = 8");
  const auto tampered = store::EventStore::replay(*connection, false);
  ASSERT_EQ(tampered.differences.size(), 1u);
  EXPECT_NE(tampered.differences[0].find("quantity 0.6"), std::string::npos) << tampered.differences[0];
}

}  // namespace
}  // namespace backstop::testing
