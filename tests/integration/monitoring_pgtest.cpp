// The database-derived monitoring figures (seed 000's queries) and their
// Prometheus exposition: values read from a real PostgreSQL, names the alert
// rules use, and `promtool check metrics` accepting the text.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "metrics/monitoring_metrics.h"
#include "store/event_store.h"
#include "store/monitoring_repository.h"
#include "support/pg.h"
#include "support/process.h"

namespace backstop::testing {
namespace {

core::Event event(core::EventType type, const std::string& token) {
  core::Event e;
  e.operation_id = core::OperationId{1};
  e.tenant_id = core::TenantId{3};
  e.symbol = "BTCUSDT";
  e.type = type;
  e.source = core::EventSource::kCron;
  e.execution_token = token;
  e.trigger_kind = core::TriggerKind::kStopLoss;
  e.side = core::Side::kSell;
  e.trigger_price = core::Decimal::parse("93000");
  if (type == core::EventType::kBlocked) e.reason = "KILL_SWITCH";
  return e;
}

TEST(Monitoring, SnapshotOfOutboxBreakersEventsBlocksAndKillSwitches) {
  TestDatabase db;
  db.migrate();
  db.exec(
      "INSERT INTO operation (id, tenant_id, symbol, side, average_entry_price, quantity, stop_price) "
      "VALUES (1, 3, 'BTCUSDT', 'BUY', 95000, 1, 93100);"
      "INSERT INTO tenant_config (tenant_id, trading_enabled) VALUES (1, true), (3, false);"
      "INSERT INTO circuit_breaker_state (symbol, state, failure_count, opened_at) "
      "VALUES ('BTCUSDT', 'OPEN', 3, now() - interval '700 seconds'), ('ETHUSDT', 'CLOSED', 0, NULL)");
  {
    auto connection = db.connect();
    pqxx::work tx(*connection);
    store::EventStore::append(tx, {event(core::EventType::kStopTriggered, "op1-SL-93100")});
    store::EventStore::append(tx, {event(core::EventType::kBlocked, "op1-SL-93100")});
    tx.commit();
  }
  db.exec(
      "UPDATE outbox SET parked_at = now() WHERE outbox_id = (SELECT min(outbox_id) FROM outbox);"
      "UPDATE outbox SET created_at = now() - interval '120 seconds' WHERE parked_at IS NULL;"
      "UPDATE stop_executions SET triggered_at = now() - interval '1000 seconds'");

  auto connection = db.connect();
  pqxx::read_transaction tx(*connection);
  const store::MonitoringSnapshot s = store::read_monitoring(tx);
  EXPECT_EQ(s.outbox_backlog, 1);
  EXPECT_GE(s.outbox_oldest_age_seconds, 120);
  EXPECT_LT(s.outbox_oldest_age_seconds, 180);
  EXPECT_EQ(s.outbox_parked, 1);
  ASSERT_EQ(s.breakers_open_since.size(), 1u);
  EXPECT_NEAR(static_cast<double>(std::time(nullptr)) - s.breakers_open_since.at("BTCUSDT"), 700, 60);
  EXPECT_EQ(s.events_by_type, (std::map<std::string, std::int64_t>{{"BLOCKED", 1}, {"STOP_TRIGGERED", 1}}));
  EXPECT_EQ(s.executions_by_status, (std::map<std::string, std::int64_t>{{"BLOCKED", 1}}));
  EXPECT_EQ(s.blocked_by_reason, (std::map<std::string, std::int64_t>{{"KILL_SWITCH", 1}}));
  EXPECT_GE(s.blocked_oldest_age_seconds, 1000);
  EXPECT_EQ(s.kill_switch_by_tenant, (std::map<std::int64_t, bool>{{1, false}, {3, true}}));

  const std::string text = metrics::monitoring_text(s);
  // Operation 1's later event waits behind its parked one.
  for (const std::string line :
       {"backstop_outbox_backlog 1", "backstop_outbox_parked_rows 1", "backstop_outbox_held_rows 1",
        "backstop_circuit_breaker_open{symbol=\"BTCUSDT\"} 1", "backstop_events_total{type=\"BLOCKED\"} 1",
        "backstop_executions_blocked{reason=\"KILL_SWITCH\"} 1", "backstop_kill_switch_engaged{tenant=\"3\"} 1",
        "backstop_kill_switch_engaged{tenant=\"1\"} 0"}) {
    EXPECT_NE(text.find(line + "\n"), std::string::npos) << line << "\n" << text;
  }
  // Every metric name the alert rules read is exported.
  std::ifstream rules(std::string(BACKSTOP_SOURCE_DIR) + "/charts/backstop/rules/backstop-alerts.yaml");
  std::stringstream buffer;
  buffer << rules.rdbuf();
  const std::string rules_text = buffer.str();
  for (const std::string name :
       {"backstop_outbox_backlog", "backstop_outbox_parked_rows", "backstop_outbox_held_rows",
        "backstop_circuit_breaker_open", "backstop_circuit_breaker_opened_timestamp_seconds", "backstop_events_total",
        "backstop_executions_blocked_oldest_age_seconds", "backstop_kill_switch_engaged"}) {
    EXPECT_NE(rules_text.find(name), std::string::npos) << name;
    EXPECT_NE(text.find("# TYPE " + name + " "), std::string::npos) << name;
  }
  // promtool's lint of the exposition (names, types, help).
  const std::string path = "/tmp/backstop-metrics-" + std::to_string(getpid()) + ".txt";
  std::ofstream(path) << text;
  const ProcessResult check = run({"/bin/sh", "-c", "promtool check metrics < " + path});
  std::remove(path.c_str());
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

// Issue 13: what reconcile found, as the controller exports it for the
// account-sync alerts and the dashboard.
TEST(Monitoring, AccountSyncGauges) {
  TestDatabase db;
  db.migrate();
  db.exec(
      "INSERT INTO operation (id, tenant_id, symbol, side, quantity, stop_price, sync_status, status) VALUES "
      "(1, 1, 'BTCUSDT', 'BUY', 1, 90000, 'IN_SYNC', 'ACTIVE'), (2, 1, 'BTCUSDT', 'BUY', 1, 90000, 'IN_SYNC', "
      "'ACTIVE'), (3, 1, 'BTCUSDT', 'BUY', 1, 90000, 'SHORT', 'ACTIVE'), (4, 1, 'ETHUSDT', 'BUY', 1, 2900, "
      "'UNCHECKED', 'ACTIVE'), (5, 1, 'ETHUSDT', 'BUY', 1, 2900, 'CLOSED_ELSEWHERE', 'CLOSED');"
      "INSERT INTO sync_pending (operation_id, outcome, held, first_seen_at, seen) "
      "VALUES (4, 'SHORT', 0.5, now() - interval '300 seconds', 1);"
      "INSERT INTO stop_events (event_id, operation_id, tenant_id, symbol, event_type, source, execution_token, "
      "occurred_at, payload) VALUES (gen_random_uuid(), 3, 1, 'BTCUSDT', 'POSITION_OUT_OF_SYNC', 'reconcile', "
      "'op3-OS-0', now() - interval '900 seconds', '{}');"
      "INSERT INTO exchange_account (account, last_success_at) VALUES ('default', now() - interval '60 seconds'), "
      "('desk-b', NULL);"
      "INSERT INTO orphan_order (account, symbol, order_id, client_order_id, first_seen_at, cancelled_at) VALUES "
      "('default', 'BTCUSDT', 7, 'bsx-1', now(), NULL), ('default', 'BTCUSDT', 8, 'bsx-2', now(), now())");
  auto connection = db.connect();
  pqxx::read_transaction tx(*connection);
  const store::MonitoringSnapshot s = store::read_monitoring(tx);
  EXPECT_EQ(s.operations_by_sync_status,
            (std::map<std::string, std::int64_t>{{"IN_SYNC", 2}, {"SHORT", 1}, {"UNCHECKED", 1}}));
  EXPECT_GE(s.out_of_sync_oldest_age_seconds, 900);  // the SHORT one, flagged 15 minutes ago
  EXPECT_LT(s.out_of_sync_oldest_age_seconds, 1000);
  ASSERT_EQ(s.reconcile_last_success.size(), 1u);
  EXPECT_NEAR(static_cast<double>(std::time(nullptr)) - s.reconcile_last_success.at("default"), 60, 30);
  EXPECT_EQ(s.orphan_orders, (std::map<std::string, std::int64_t>{{"default", 1}, {"desk-b", 0}}));
  const std::string text = metrics::monitoring_text(s);
  for (const std::string line :
       {"backstop_operations_by_sync_status{sync_status=\"SHORT\"} 1", "backstop_orphan_orders{account=\"default\"} 1",
        "backstop_orphan_orders{account=\"desk-b\"} 0"}) {
    EXPECT_NE(text.find(line + "\n"), std::string::npos) << line << "\n" << text;
  }
  std::ifstream rules(std::string(BACKSTOP_SOURCE_DIR) + "/charts/backstop/rules/backstop-alerts.yaml");
  std::stringstream buffer;
  buffer << rules.rdbuf();
  for (const std::string name : {"backstop_operations_out_of_sync_oldest_age_seconds", "backstop_orphan_orders"}) {
    EXPECT_NE(buffer.str().find(name), std::string::npos) << name;
    EXPECT_NE(text.find("# TYPE " + name + " "), std::string::npos) << name;
  }
  EXPECT_NE(text.find("backstop_account_last_reconciled_timestamp_seconds{account=\"default\"}"), std::string::npos);
  const std::string path = "/tmp/backstop-metrics-sync-" + std::to_string(getpid()) + ".txt";
  std::ofstream(path) << text;
  const ProcessResult check = run({"/bin/sh", "-c", "promtool check metrics < " + path});
  std::remove(path.c_str());
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  // No shortfall anywhere: the age is 0.
  db.exec("DELETE FROM sync_pending; UPDATE operation SET sync_status = 'IN_SYNC'");
  auto second = db.connect();
  pqxx::read_transaction again(*second);
  EXPECT_EQ(store::read_monitoring(again).out_of_sync_oldest_age_seconds, 0);
}

TEST(Monitoring, SlippageAndLatencyOfTheLastHoursExits) {
  TestDatabase db;
  db.migrate();
  auto connection = db.connect();
  {
    pqxx::read_transaction tx(*connection);
    const store::MonitoringSnapshot none = store::read_monitoring(tx);
    EXPECT_EQ(none.executed_last_hour, 0);
    EXPECT_TRUE(none.slippage_pct_last_hour.empty());  // no figures rather than zeros
  }
  // Two exits of the last hour (0.1 % / 0.5 s and 0.3 % / 1.5 s), one older, one failed.
  db.exec(
      "INSERT INTO stop_executions (execution_token, operation_id, tenant_id, symbol, status, source, "
      "slippage_pct, triggered_at, executed_at, failed_at, last_event_seq) VALUES "
      "('op1-SL-1', 1, 1, 'BTCUSDT', 'EXECUTED', 'CRON', 0.1, now() - interval '10 s', "
      "  now() - interval '9.5 s', NULL, 1),"
      "('op2-SL-1', 2, 1, 'BTCUSDT', 'EXECUTED', 'CRON', 0.3, now() - interval '10 s', "
      "  now() - interval '8.5 s', NULL, 2),"
      "('op3-SL-1', 3, 1, 'BTCUSDT', 'EXECUTED', 'CRON', 4.0, now() - interval '2 hours', "
      "  now() - interval '2 hours', NULL, 3),"
      "('op4-SL-1', 4, 1, 'BTCUSDT', 'FAILED', 'CRON', NULL, now() - interval '10 s', NULL, now(), 4)");
  pqxx::read_transaction tx(*connection);
  const store::MonitoringSnapshot s = store::read_monitoring(tx);
  EXPECT_EQ(s.executed_last_hour, 2);
  EXPECT_NEAR(s.slippage_pct_last_hour.at("0.5"), 0.2, 1e-9);
  EXPECT_NEAR(s.slippage_pct_last_hour.at("1"), 0.3, 1e-9);
  EXPECT_NEAR(s.latency_seconds_last_hour.at("0.5"), 1.0, 1e-6);
  EXPECT_NEAR(s.latency_seconds_last_hour.at("1"), 1.5, 1e-6);
  const std::string text = metrics::monitoring_text(s);
  EXPECT_NE(text.find("backstop_execution_slippage_percent_last_hour{quantile=\"1\"} 0.3"), std::string::npos) << text;
  EXPECT_NE(text.find("backstop_executions_executed_last_hour 2"), std::string::npos) << text;
}

}  // namespace
}  // namespace backstop::testing
