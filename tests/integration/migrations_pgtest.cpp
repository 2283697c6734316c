// The migrate binary against a real PostgreSQL: apply, re-run, round trip,
// concurrency, drift, failures, repair, adoption of a monolith table, backups.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "store/migrations.h"
#include "support/pg.h"
#include "support/process.h"

namespace backstop::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const Env kJsonLogs = {{"BACKSTOP_LOG_FORMAT", "json"}};

ProcessResult migrate(const TestDatabase& db, std::vector<std::string> args) {
  std::vector<std::string> argv = {binary("migrate"), "--database-url", db.url()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, kJsonLogs);
}

std::vector<std::string> applied_labels(const ProcessResult& r) {
  return json::parse(r.out).at("migrations").get<std::vector<std::string>>();
}

// A private copy of the migrations that a test may edit.
struct MigrationsCopy {
  fs::path dir = fs::temp_directory_path() /
                 ("backstop-migrations-" + std::to_string(getpid()) + "-" + std::to_string(std::rand()));
  MigrationsCopy() {
    fs::create_directories(dir);
    for (const auto& entry : fs::directory_iterator(fs::path(BACKSTOP_SOURCE_DIR) / "migrations")) {
      fs::copy_file(entry.path(), dir / entry.path().filename());
    }
  }
  ~MigrationsCopy() { fs::remove_all(dir); }
  void write(const std::string& name, const std::string& content) const {
    std::ofstream(dir / name, std::ios::binary | std::ios::trunc) << content;
  }
  void append(const std::string& name, const std::string& content) const {
    std::ofstream(dir / name, std::ios::binary | std::ios::app) << content;
  }
};

// The four indexes of 0004_operation_scan_indexes, each "valid", "INVALID" or "missing".
std::string scan_index_states(const TestDatabase& db) {
  return db.scalar(
      "SELECT string_agg(n || ':' || coalesce((SELECT CASE WHEN i.indisvalid AND i.indisready THEN 'valid' "
      "  ELSE 'INVALID' END FROM pg_index i WHERE i.indexrelid = to_regclass(n)), 'missing'), ' ' ORDER BY o) "
      "FROM unnest(ARRAY['idx_operation_active_stop', 'idx_operation_active_target', 'idx_operation_percent_only', "
      "  'idx_operation_tenant_status']) WITH ORDINALITY AS u(n, o)");
}
const std::string kScanIndexesValid =
    "idx_operation_active_stop:valid idx_operation_active_target:valid idx_operation_percent_only:valid "
    "idx_operation_tenant_status:valid";

// A write transaction's lock on `operation` (what every INSERT and UPDATE
// takes): CREATE INDEX CONCURRENTLY waits for it to end, and under a short
// lock_timeout gives up, leaving its index behind INVALID.
struct OperationWriter {
  std::unique_ptr<pqxx::connection> connection;
  std::unique_ptr<pqxx::work> tx;
  explicit OperationWriter(const TestDatabase& db) : connection(db.connect()) {
    tx = std::make_unique<pqxx::work>(*connection);
    tx->exec("LOCK TABLE operation IN ROW EXCLUSIVE MODE");
  }
  void commit() { tx->commit(); }
};

// Leaves the index of `create_concurrently` INVALID, as a concurrent build
// that hit lock_timeout does.
void leave_invalid_index(const TestDatabase& db, const std::string& create_concurrently) {
  OperationWriter writer(db);
  auto builder = db.connect();
  pqxx::nontransaction nt(*builder);
  nt.exec("SET lock_timeout = '200ms'");
  EXPECT_THROW(nt.exec(create_concurrently), pqxx::sql_error);
  writer.commit();
}

TEST(Migrations, UpAppliesEverythingOnceAndReRunAppliesNothing) {
  TestDatabase db;
  const ProcessResult first = migrate(db, {"--json", "up"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(
      applied_labels(first),
      (std::vector<std::string>{"0001_tenants_and_operations", "0002_event_store", "0003_guardrails",
                                "0004_operation_scan_indexes", "0005_monitor_checkpoints", "0006_trailing_stops",
                                "0007_trailing_scan_indexes", "0008_outbox_drain_index", "0009_one_exit_per_operation",
                                "0010_account_truth", "0011_reconcile_tokens", "0012_orphan_checks"}));
  EXPECT_EQ(db.count("SELECT count(*) FROM backstop_schema_migrations WHERE success"), 12);
  EXPECT_EQ(db.count("SELECT count(*) FROM backstop_schema_migrations WHERE checksum ~ '^[0-9a-f]{64}$' "
                     "AND execution_time_ms >= 0 AND applied_at <= now() AND error_message IS NULL"),
            12);
  const ProcessResult second = migrate(db, {"--json", "up"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_TRUE(applied_labels(second).empty());

  const ProcessResult status = migrate(db, {"--json", "status"});
  ASSERT_EQ(status.exit_code, 0);
  for (const auto& m : json::parse(status.out)) EXPECT_EQ(m.at("state"), "applied") << m.dump();
  const ProcessResult verify = migrate(db, {"--json", "verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
  EXPECT_EQ(json::parse(verify.out).at("ok"), true);
  EXPECT_TRUE(json::parse(verify.out).at("warnings").empty()) << verify.out;
  const ProcessResult plan = migrate(db, {"--json", "plan"});
  EXPECT_TRUE(json::parse(plan.out).empty());
}

TEST(Migrations, PlanShowsWhatWouldRunAndChangesNothing) {
  TestDatabase db;
  const ProcessResult plan = migrate(db, {"--json", "plan"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  const json steps = json::parse(plan.out);
  ASSERT_EQ(steps.size(), 12u);
  EXPECT_EQ(steps[3].at("name"), "operation_scan_indexes");
  EXPECT_EQ(steps[3].at("transactional"), false);
  EXPECT_EQ(db.scalar("SELECT to_regclass('operation')::text"), "");
  EXPECT_EQ(db.count("SELECT count(*) FROM backstop_schema_migrations"), 0);
}

TEST(Migrations, UpDownUpRoundTripPreservesData) {
  TestDatabase db;
  ASSERT_EQ(migrate(db, {"up"}).exit_code, 0);
  db.exec(
      "INSERT INTO tenant (id, name) VALUES (1, 'alpha');"
      "INSERT INTO operation (tenant_id, symbol, side, average_entry_price, quantity, stop_price) "
      "VALUES (1, 'BTCUSDT', 'BUY', 95000, 0.5, 93100), (1, 'ETHUSDT', 'SELL', 3000, 2, 3100)");
  const std::string before = db.scalar(
      "SELECT string_agg(id || symbol || side || stop_price, ',' ORDER BY id) "
      "FROM operation");

  const ProcessResult down = migrate(db, {"--json", "down", "11", "--allow-data-loss"});
  ASSERT_EQ(down.exit_code, 0) << down.err << down.out;
  EXPECT_EQ(applied_labels(down),
            (std::vector<std::string>{"0012_orphan_checks", "0011_reconcile_tokens", "0010_account_truth",
                                      "0009_one_exit_per_operation", "0008_outbox_drain_index",
                                      "0007_trailing_scan_indexes", "0006_trailing_stops", "0005_monitor_checkpoints",
                                      "0004_operation_scan_indexes", "0003_guardrails", "0002_event_store"}));
  EXPECT_EQ(db.scalar("SELECT to_regclass('stop_events')::text"), "");
  EXPECT_EQ(db.scalar("SELECT to_regclass('idx_operation_active_stop')::text"), "");
  EXPECT_EQ(db.count("SELECT count(*) FROM backstop_schema_migrations"), 1);

  ASSERT_EQ(migrate(db, {"up"}).exit_code, 0);
  EXPECT_EQ(db.scalar("SELECT string_agg(id || symbol || side || stop_price, ',' ORDER BY id) FROM operation"), before);
  EXPECT_EQ(db.scalar("SELECT name FROM tenant WHERE id = 1"), "alpha");
  EXPECT_EQ(migrate(db, {"verify"}).exit_code, 0);
}

// Issue 13: 0010/0011 add account truth's columns, tables, widened checks and
// the guard trigger; down removes exactly that and keeps the operations (and
// reconcile's events, which the append-only log keeps).
TEST(Migrations, AccountTruthUpDown) {
  TestDatabase db;
  ASSERT_EQ(migrate(db, {"up", "--target", "9"}).exit_code, 0);
  db.exec(
      "INSERT INTO tenant (id) VALUES (1);"
      "INSERT INTO operation (id, tenant_id, symbol, side, average_entry_price, quantity, stop_price) "
      "VALUES (1, 1, 'BTCUSDT', 'BUY', 95000, 0.5, 93100)");
  ASSERT_EQ(migrate(db, {"up"}).exit_code, 0);
  EXPECT_EQ(db.scalar("SELECT sync_status FROM operation WHERE id = 1"), "UNCHECKED");
  for (const char* table : {"exchange_account", "account_trade", "account_trade_cursor", "account_balance_seen",
                            "sync_pending", "orphan_order"}) {
    EXPECT_EQ(db.scalar(std::string("SELECT to_regclass('") + table + "')::text"), table);
  }
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_constraint WHERE conname IN ('stop_events_type_check', "
                     "'stop_events_source_check', 'operation_sync_status_check') AND convalidated"),
            3);  // validated by 0011
  EXPECT_THROW(db.exec("UPDATE operation SET sync_status = 'MAYBE' WHERE id = 1"), std::exception);
  EXPECT_EQ(migrate(db, {"verify"}).exit_code, 0);
  db.exec(
      "INSERT INTO stop_events (event_id, operation_id, tenant_id, symbol, event_type, source, execution_token, "
      "quantity, payload) VALUES (gen_random_uuid(), 1, 1, 'BTCUSDT', 'POSITION_RECONCILED', 'reconcile', "
      "'op1-RC-x', 0.4, '{}')");
  const ProcessResult down = migrate(db, {"--json", "down", "3", "--allow-data-loss"});
  ASSERT_EQ(down.exit_code, 0) << down.err << down.out;
  EXPECT_EQ(applied_labels(down),
            (std::vector<std::string>{"0012_orphan_checks", "0011_reconcile_tokens", "0010_account_truth"}));
  EXPECT_EQ(db.scalar("SELECT to_regclass('account_trade')::text"), "");
  EXPECT_EQ(db.count("SELECT count(*) FROM information_schema.columns WHERE table_name = 'operation' AND "
                     "column_name IN ('sync_status', 'original_quantity')"),
            0);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events WHERE event_type = 'POSITION_RECONCILED'"), 1);
  EXPECT_THROW(db.exec("INSERT INTO stop_events (event_id, operation_id, tenant_id, symbol, event_type, source, "
                       "execution_token, payload) VALUES (gen_random_uuid(), 1, 1, 'BTCUSDT', "
                       "'POSITION_IN_SYNC', 'reconcile', 'op1-IS-1', '{}')"),
               std::exception);
  EXPECT_EQ(db.scalar("SELECT quantity FROM operation WHERE id = 1"), "0.50000000");
  ASSERT_EQ(migrate(db, {"up"}).exit_code, 0);
  EXPECT_EQ(migrate(db, {"verify"}).exit_code, 0);
}

TEST(Migrations, DownRefusesToDestroyRowsUnlessAllowed) {
  TestDatabase db;
  ASSERT_EQ(migrate(db, {"up"}).exit_code, 0);
  db.exec(
      "INSERT INTO operation (tenant_id, symbol, side) VALUES (1, 'BTCUSDT', 'BUY');"
      "INSERT INTO stop_events (operation_id, tenant_id, symbol, event_type, source, execution_token) "
      "VALUES (1, 1, 'BTCUSDT', 'STOP_CONFIGURED', 'manual', 'genesis-1')");
  const ProcessResult refused = migrate(db, {"down", "11"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("stop_events (0002_event_store)"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--allow-data-loss"), std::string::npos);
  EXPECT_EQ(db.count("SELECT count(*) FROM backstop_schema_migrations"), 12);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events"), 1);

  const ProcessResult allowed = migrate(db, {"down", "11", "--allow-data-loss"});
  ASSERT_EQ(allowed.exit_code, 0) << allowed.err;
  EXPECT_EQ(db.scalar("SELECT to_regclass('stop_events')::text"), "");
}

TEST(Migrations, FourConcurrentRunnersSerialize) {
  TestDatabase db;
  std::vector<std::unique_ptr<Process>> runners;
  for (int i = 0; i < 4; ++i) {
    runners.push_back(std::make_unique<Process>(
        std::vector<std::string>{binary("migrate"), "--database-url", db.url(), "--json", "up"}, kJsonLogs));
  }
  std::multiset<std::string> applied;
  for (auto& runner : runners) {
    const ProcessResult r = runner->wait();
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const auto& label : applied_labels(r)) applied.insert(label);
  }
  EXPECT_EQ(applied.size(), 12u);  // every migration ran exactly once in total
  EXPECT_EQ(std::set<std::string>(applied.begin(), applied.end()).size(), 12u);
  EXPECT_EQ(db.count("SELECT count(*) FROM backstop_schema_migrations WHERE success"), 12);
  EXPECT_EQ(migrate(db, {"verify"}).exit_code, 0);
}

TEST(Migrations, FileEditedAfterApplyIsRefused) {
  TestDatabase db;
  MigrationsCopy copy;
  ASSERT_EQ(migrate(db, {"--migrations-dir", copy.dir.string(), "up"}).exit_code, 0);
  copy.append("0002_event_store.up.sql", "\n-- an innocent-looking edit\n");
  const ProcessResult up = migrate(db, {"--migrations-dir", copy.dir.string(), "up"});
  EXPECT_EQ(up.exit_code, 1);
  EXPECT_NE(up.err.find("0002_event_store.up.sql was changed after it was applied"), std::string::npos) << up.err;
  const ProcessResult status = migrate(db, {"--migrations-dir", copy.dir.string(), "--json", "status"});
  EXPECT_EQ(json::parse(status.out)[1].at("state"), "checksum-mismatch");
  EXPECT_EQ(migrate(db, {"--migrations-dir", copy.dir.string(), "verify"}).exit_code, 1);
}

TEST(Migrations, FailingMigrationLeavesNothingAndRecordsTheError) {
  TestDatabase db;
  MigrationsCopy copy;
  copy.write("0099_broken.up.sql",
             "CREATE TABLE half_done (x int);\nINSERT INTO half_done VALUES (1);\nSELECT 1 / 0;\n");
  const ProcessResult up = migrate(db, {"--migrations-dir", copy.dir.string(), "up"});
  EXPECT_EQ(up.exit_code, 1);
  EXPECT_NE(up.err.find("0099_broken failed"), std::string::npos) << up.err;
  EXPECT_NE(up.err.find("division by zero"), std::string::npos) << up.err;
  EXPECT_EQ(db.scalar("SELECT to_regclass('half_done')::text"), "");  // rolled back entirely
  EXPECT_EQ(db.count("SELECT count(*) FROM backstop_schema_migrations WHERE success"), 12);
  EXPECT_EQ(db.scalar("SELECT success::text FROM backstop_schema_migrations WHERE version = 99"), "false");
  EXPECT_NE(
      db.scalar("SELECT error_message FROM backstop_schema_migrations WHERE version = 99").find("division by zero"),
      std::string::npos);

  // Blocked until repaired explicitly.
  copy.write("0099_broken.up.sql", "CREATE TABLE half_done (x int);\n");
  const ProcessResult blocked = migrate(db, {"--migrations-dir", copy.dir.string(), "up"});
  EXPECT_EQ(blocked.exit_code, 1);
  EXPECT_NE(blocked.err.find("migrate repair"), std::string::npos) << blocked.err;
  const ProcessResult repair = migrate(db, {"--migrations-dir", copy.dir.string(), "--json", "repair"});
  ASSERT_EQ(repair.exit_code, 0) << repair.err;
  EXPECT_EQ(json::parse(repair.out).at("cleared_failures")[0], "99_broken");
  const ProcessResult fixed = migrate(db, {"--migrations-dir", copy.dir.string(), "--json", "up"});
  ASSERT_EQ(fixed.exit_code, 0) << fixed.err;
  EXPECT_EQ(applied_labels(fixed), std::vector<std::string>{"0099_broken"});
  EXPECT_EQ(db.scalar("SELECT to_regclass('half_done')::text"), "half_done");
}

TEST(Migrations, FailedConcurrentIndexIsReportedAndRepaired) {
  TestDatabase db;
  MigrationsCopy copy;
  ASSERT_EQ(migrate(db, {"--migrations-dir", copy.dir.string(), "up"}).exit_code, 0);
  db.exec("INSERT INTO operation (tenant_id, symbol, side) VALUES (1, 'BTCUSDT', 'BUY'), (2, 'BTCUSDT', 'SELL')");
  copy.write("0099_unique_symbol.up.sql",
             "-- backstop:no-transaction\n"
             "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx_test_unique_symbol ON operation (symbol);\n");
  const ProcessResult up = migrate(db, {"--migrations-dir", copy.dir.string(), "up"});
  EXPECT_EQ(up.exit_code, 1);
  EXPECT_NE(up.err.find("ran without a transaction"), std::string::npos) << up.err;
  EXPECT_EQ(db.scalar("SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'idx_test_unique_symbol'::regclass"),
            "false");
  const ProcessResult verify = migrate(db, {"--migrations-dir", copy.dir.string(), "--json", "verify"});
  EXPECT_EQ(verify.exit_code, 1);
  EXPECT_NE(verify.out.find("idx_test_unique_symbol on operation is INVALID"), std::string::npos) << verify.out;
  const ProcessResult repair = migrate(db, {"--migrations-dir", copy.dir.string(), "--json", "repair"});
  ASSERT_EQ(repair.exit_code, 0) << repair.err;
  EXPECT_EQ(json::parse(repair.out).at("dropped_invalid_indexes")[0], "idx_test_unique_symbol");
  EXPECT_EQ(db.scalar("SELECT to_regclass('idx_test_unique_symbol')::text"), "");
  db.exec("DELETE FROM operation WHERE tenant_id = 2");
  ASSERT_EQ(migrate(db, {"--migrations-dir", copy.dir.string(), "up"}).exit_code, 0);
  EXPECT_EQ(db.scalar("SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'idx_test_unique_symbol'::regclass"),
            "true");
}

// Issue 10, defect 7: a retry of a no-transaction migration after a
// CREATE INDEX CONCURRENTLY hit lock_timeout must not keep the INVALID index
// the failed attempt left (IF NOT EXISTS would skip it): it is dropped and
// built again, and the migration is recorded only with every index valid.
TEST(Migrations, ConcurrentIndexLeftInvalidByALockTimeoutIsBuiltAgainOnRetry) {
  TestDatabase db;
  ASSERT_EQ(migrate(db, {"up", "--target", "3"}).exit_code, 0);
  OperationWriter writer(db);
  Process runner({binary("migrate"), "--database-url", db.url(), "--lock-timeout-ms", "300", "up"}, kJsonLogs);
  ASSERT_TRUE(runner.wait_for_stderr("retrying", std::chrono::seconds(20)));
  // The first attempt gave up and left its index behind, INVALID.
  EXPECT_GE(db.count("SELECT count(*) FROM pg_index WHERE NOT indisvalid AND indrelid = 'operation'::regclass"), 1);
  writer.commit();
  const ProcessResult r = runner.wait();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(scan_index_states(db), kScanIndexesValid);
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_index WHERE NOT (indisvalid AND indisready)"), 0);
  const ProcessResult verify = migrate(db, {"--json", "verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
  const ProcessResult again = migrate(db, {"--json", "up"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(applied_labels(again).empty());
}

// Out of lock attempts: the migration is recorded failed, never applied with
// INVALID indexes; repair then up builds them.
TEST(Migrations, ConcurrentIndexMigrationOutOfLockAttemptsIsRecordedFailedNotApplied) {
  TestDatabase db;
  ASSERT_EQ(migrate(db, {"up", "--target", "3"}).exit_code, 0);
  OperationWriter writer(db);
  const ProcessResult up = migrate(db, {"--lock-timeout-ms", "100", "up", "--target", "4"});
  EXPECT_EQ(up.exit_code, 1) << up.err;
  EXPECT_NE(up.err.find("0004_operation_scan_indexes failed"), std::string::npos) << up.err;
  EXPECT_EQ(db.scalar("SELECT success::text FROM backstop_schema_migrations WHERE version = 4"), "false");
  writer.commit();

  const ProcessResult blocked = migrate(db, {"up"});
  EXPECT_EQ(blocked.exit_code, 1);
  EXPECT_NE(blocked.err.find("migrate repair"), std::string::npos) << blocked.err;
  const ProcessResult repair = migrate(db, {"--json", "repair"});
  ASSERT_EQ(repair.exit_code, 0) << repair.err;
  EXPECT_EQ(json::parse(repair.out).at("cleared_failures"), json::array({"4_operation_scan_indexes"}));
  const ProcessResult fixed = migrate(db, {"--json", "up"});
  ASSERT_EQ(fixed.exit_code, 0) << fixed.err;
  const std::vector<std::string> labels = applied_labels(fixed);
  ASSERT_FALSE(labels.empty());
  EXPECT_EQ(labels.front(), "0004_operation_scan_indexes");
  EXPECT_EQ(scan_index_states(db), kScanIndexesValid);
  EXPECT_EQ(migrate(db, {"verify"}).exit_code, 0);
}

// repair drops INVALID indexes; one that an applied migration builds is built
// again at once, never left dropped behind an "applied" record (which `up`
// would then call nothing to do).
TEST(Migrations, RepairBuildsAgainTheInvalidIndexOfAnAppliedMigration) {
  TestDatabase db;
  ASSERT_EQ(migrate(db, {"up"}).exit_code, 0);
  db.exec("DROP INDEX idx_operation_active_stop");
  leave_invalid_index(db,
                      "CREATE INDEX CONCURRENTLY idx_operation_active_stop ON operation (symbol, side, stop_price) "
                      "WHERE status = 'ACTIVE' AND stop_price IS NOT NULL");
  EXPECT_NE(scan_index_states(db).find("idx_operation_active_stop:INVALID"), std::string::npos);
  const ProcessResult verify = migrate(db, {"--json", "verify"});
  EXPECT_EQ(verify.exit_code, 1);
  EXPECT_NE(verify.out.find("idx_operation_active_stop on operation is INVALID"), std::string::npos) << verify.out;

  const ProcessResult repair = migrate(db, {"--json", "repair"});
  ASSERT_EQ(repair.exit_code, 0) << repair.err;
  EXPECT_EQ(json::parse(repair.out).value("rebuilt_indexes", json::array()),
            json::array({"idx_operation_active_stop (0004_operation_scan_indexes)"}))
      << repair.out;
  EXPECT_EQ(scan_index_states(db), kScanIndexesValid);
  EXPECT_EQ(migrate(db, {"verify"}).exit_code, 0);
}

// A database an older Backstop left behind: 0004 recorded applied with an
// INVALID index, another one dropped by the old repair. `up` builds both again.
TEST(Migrations, UpBuildsAgainMissingOrInvalidIndexesOfAppliedMigrations) {
  TestDatabase db;
  ASSERT_EQ(migrate(db, {"up"}).exit_code, 0);
  db.exec("DROP INDEX idx_operation_active_target; DROP INDEX idx_operation_tenant_status");
  leave_invalid_index(db, "CREATE INDEX CONCURRENTLY idx_operation_active_target ON operation (id)");
  EXPECT_EQ(migrate(db, {"verify"}).exit_code, 1);

  const ProcessResult up = migrate(db, {"--json", "up"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  EXPECT_TRUE(applied_labels(up).empty());
  EXPECT_EQ(json::parse(up.out).value("rebuilt_indexes", json::array()),
            json::array({"idx_operation_active_target (0004_operation_scan_indexes)",
                         "idx_operation_tenant_status (0004_operation_scan_indexes)"}))
      << up.out;
  EXPECT_EQ(scan_index_states(db), kScanIndexesValid);
  EXPECT_EQ(db.scalar("SELECT pg_get_indexdef('idx_operation_active_target'::regclass)").find("(id)"),
            std::string::npos);  // 0004's definition, not the leftover's
  EXPECT_EQ(migrate(db, {"verify"}).exit_code, 0);
}

TEST(Migrations, AdoptsAMonolithOperationTableWithoutDataLoss) {
  TestDatabase db;
  db.exec(
      "CREATE TABLE client (id serial PRIMARY KEY, name varchar(100));"
      "CREATE TABLE symbol (id serial PRIMARY KEY, name varchar(20));"
      "CREATE TABLE operation (id serial PRIMARY KEY, client_id int REFERENCES client, symbol_id int REFERENCES "
      "  symbol, side varchar(4), status varchar(10), average_entry_price numeric(20,8), "
      "  stop_loss_percent numeric(5,2), stop_gain_percent numeric(5,2), strategy_notes text);"
      "INSERT INTO client (name) VALUES ('c1'), ('c2');"
      "INSERT INTO symbol (name) VALUES ('BTCUSDC'), ('ETHUSDC');"
      "INSERT INTO operation (client_id, symbol_id, side, status, average_entry_price, stop_loss_percent, "
      "  stop_gain_percent, strategy_notes) VALUES "
      "  (1, 1, 'BUY', 'ACTIVE', 95000, 2.00, 4.00, 'breakout'), (2, 2, 'SELL', 'ACTIVE', 3000, 1.50, NULL, 'fade')");
  ASSERT_EQ(migrate(db, {"up"}).exit_code, 0);
  EXPECT_EQ(db.scalar("SELECT string_agg(id || ':' || tenant_id || ':' || symbol || ':' || strategy_notes, ',' "
                      "ORDER BY id) FROM operation"),
            "1:1:BTCUSDC:breakout,2:2:ETHUSDC:fade");
  EXPECT_EQ(db.count("SELECT count(*) FROM tenant"), 2);
  // The monolith keeps writing client_id/symbol_id; the bridge fills ours.
  db.exec(
      "INSERT INTO operation (client_id, symbol_id, side, status, average_entry_price, stop_loss_percent) "
      "VALUES (2, 1, 'BUY', 'ACTIVE', 90000, 1)");
  EXPECT_EQ(db.scalar("SELECT tenant_id || symbol FROM operation WHERE id = 3"), "2BTCUSDC");
  const ProcessResult verify = migrate(db, {"--json", "verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
  EXPECT_FALSE(json::parse(verify.out).at("warnings").empty());  // NOT VALID on the legacy rows is reported

  // Backfill works on the adopted table.
  const ProcessResult backfill = run({binary("backfill"), "--database-url", db.url()}, kJsonLogs);
  ASSERT_EQ(backfill.exit_code, 0) << backfill.err;
  EXPECT_EQ(db.scalar("SELECT stop_price::text FROM operation WHERE id = 1"), "93100.00000000");

  // Reverting everything leaves the monolith's table, columns and rows as they were.
  const ProcessResult down = migrate(db, {"down", "12", "--allow-data-loss"});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  EXPECT_EQ(db.scalar("SELECT string_agg(id || ':' || client_id || ':' || symbol_id || ':' || stop_loss_percent || "
                      "':' || strategy_notes, ',' ORDER BY id) FROM operation WHERE id <= 2"),
            "1:1:1:2.00:breakout,2:2:2:1.50:fade");
  EXPECT_EQ(db.count("SELECT count(*) FROM information_schema.columns WHERE table_name = 'operation' "
                     "AND column_name IN ('tenant_id', 'stop_price', 'symbol')"),
            0);
  EXPECT_EQ(db.scalar("SELECT to_regclass('tenant')::text"), "");
  EXPECT_EQ(db.count("SELECT count(*) FROM client"), 2);
  db.exec("INSERT INTO operation (client_id, symbol_id, side) VALUES (1, 1, 'BUY')");  // no bridge left behind
}

TEST(Migrations, BackupDirGetsAPgDumpBeforeChanges) {
  TestDatabase db;
  const fs::path dir = fs::temp_directory_path() / ("backstop-backup-" + std::to_string(getpid()));
  fs::remove_all(dir);
  const ProcessResult up = migrate(db, {"--json", "--backup-dir", dir.string(), "up"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  const fs::path file = json::parse(up.out).at("backup").get<std::string>();
  ASSERT_TRUE(fs::exists(file));
  std::ifstream in(file, std::ios::binary);
  char magic[5] = {};
  in.read(magic, 5);
  EXPECT_EQ(std::string(magic, 5), "PGDMP");  // pg_dump custom format
  fs::remove_all(dir);
}

TEST(Migrations, WaitsForTableLocksWithRetriesInsteadOfBlockingTraffic) {
  TestDatabase db;
  db.exec("CREATE TABLE operation (id bigserial PRIMARY KEY)");
  auto holder = db.connect();
  pqxx::work lock(*holder);
  lock.exec("LOCK TABLE operation IN ACCESS EXCLUSIVE MODE");
  Process runner({binary("migrate"), "--database-url", db.url(), "--lock-timeout-ms", "100", "up"}, kJsonLogs);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  lock.abort();
  const ProcessResult r = runner.wait();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("retrying"), std::string::npos) << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM backstop_schema_migrations WHERE success"), 12);
}

TEST(Migrations, UnreachableDatabaseIsExitThreeWithoutThePassword) {
  const ProcessResult r = run(
      {binary("migrate"), "--database-url", "postgresql://backstop:hunter2@127.0.0.1:1/backstop", "status"}, kJsonLogs);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("cannot connect to PostgreSQL"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("hunter2"), std::string::npos) << r.err;
}

// Issue 10, C.1: libpq cuts a password at its first '@' and quotes the rest as
// the host name ("could not translate host name "ss@127.0.0.1""); neither the
// URL in the message nor libpq's reason may show a piece of the password.
TEST(Migrations, APasswordHoldingAnAtSignNeverShowsInTheError) {
  const ProcessResult r =
      run({binary("migrate"), "--database-url", "postgresql://backstop:hun@ter2@127.0.0.1:1/backstop", "status"},
          kJsonLogs);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("cannot connect to PostgreSQL (postgresql://backstop:***@127.0.0.1:1/backstop)"),
            std::string::npos)
      << r.err;
  for (const std::string piece : {"hun", "ter2"})
    EXPECT_EQ(r.err.find(piece), std::string::npos) << piece << ": " << r.err;
  EXPECT_NE(r.err.find("%40"), std::string::npos) << r.err;  // says what to do
}

}  // namespace
}  // namespace backstop::testing
