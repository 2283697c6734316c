// The backfill binary against a real PostgreSQL: formulas, invalid rows,
// dry run, crash in the middle and resume, concurrent runs, config handling.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/pg.h"
#include "support/process.h"

namespace backstop::testing {
namespace {

using nlohmann::json;
const Env kJsonLogs = {{"BACKSTOP_LOG_FORMAT", "json"}};

ProcessResult backfill(const TestDatabase& db, std::vector<std::string> args = {}, Env env = kJsonLogs) {
  std::vector<std::string> argv = {binary("backfill"), "--database-url", db.url()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, env);
}

// n operations with a deterministic mix of sides, entries and percentages,
// every 17th one invalid (a BUY stop above entry) and every 23rd with nothing.
void load_book(const TestDatabase& db, int n) {
  db.exec(
      "INSERT INTO tenant (id) SELECT generate_series(1, 5);"
      "INSERT INTO operation (tenant_id, symbol, side, average_entry_price, quantity, stop_price, "
      "  stop_loss_percent, stop_gain_percent) "
      "SELECT 1 + i % 5, 'SYM' || (i % 50), CASE WHEN i % 2 = 0 THEN 'BUY' ELSE 'SELL' END, "
      "  round((100 + i * 0.37)::numeric, 8), 1, "
      "  CASE WHEN i % 17 = 0 AND i % 2 = 0 THEN 1000000 END, "
      "  CASE WHEN i % 23 = 0 THEN NULL ELSE round((0.5 + (i % 40) * 0.125)::numeric, 8) END, "
      "  CASE WHEN i % 23 = 0 OR i % 3 = 0 THEN NULL ELSE round((1 + (i % 30) * 0.25)::numeric, 8) END "
      "FROM generate_series(1, " +
      std::to_string(n) + ") AS i");
}

// Everything the backfill decides, as one comparable text.
std::string final_state(const TestDatabase& db) {
  return db.scalar(
             "SELECT md5(string_agg(id || ':' || coalesce(stop_price::text, '-') || ':' || "
             "coalesce(target_price::text, '-'), ',' ORDER BY id)) FROM operation") +
         db.scalar(
             "SELECT md5(string_agg(operation_id || ':' || event_type || ':' || execution_token || ':' || "
             "coalesce(stop_price::text, '-') || ':' || coalesce(target_price::text, '-') || ':' || payload, "
             "',' ORDER BY operation_id)) FROM stop_events");
}

class BackfillTest : public ::testing::Test {
 protected:
  void SetUp() override { db.migrate(); }
  TestDatabase db;
};

TEST_F(BackfillTest, SeedExampleAndSellMirror) {
  db.exec(
      "INSERT INTO operation (id, tenant_id, symbol, side, average_entry_price, quantity, stop_loss_percent, "
      "stop_gain_percent) VALUES (1, 1, 'BTCUSDC', 'BUY', 95000, 0.01, 2, 4), "
      "(2, 1, 'BTCUSDC', 'SELL', 95000, 0.01, 2, 4), (3, 2, 'ETHUSDC', 'BUY', 3120.75, 1, NULL, NULL)");
  db.exec("UPDATE operation SET stop_price = 3050, target_price = 3300 WHERE id = 3");
  const ProcessResult r = backfill(db, {"--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json summary = json::parse(r.out);
  EXPECT_EQ(summary.at("configured"), 3);
  EXPECT_EQ(summary.at("stops_converted"), 2);
  EXPECT_EQ(summary.at("targets_converted"), 2);
  EXPECT_EQ(db.scalar("SELECT string_agg(id || ' ' || stop_price || ' ' || target_price, ', ' ORDER BY id) "
                      "FROM operation"),
            "1 93100.00000000 98800.00000000, 2 96900.00000000 91200.00000000, "
            "3 3050.00000000 3300.00000000");
  EXPECT_EQ(db.scalar("SELECT string_agg(execution_token || ' ' || source || ' ' || stop_price, ', ' "
                      "ORDER BY event_seq) FROM stop_events WHERE event_type = 'STOP_CONFIGURED'"),
            "genesis-1 backfill 93100.00000000, genesis-2 backfill 96900.00000000, "
            "genesis-3 backfill 3050.00000000");
  EXPECT_EQ(db.scalar("SELECT payload->>'stop_loss_percent' FROM stop_events WHERE operation_id = 1"), "2");
  EXPECT_EQ(db.count("SELECT count(*) FROM outbox WHERE routing_key LIKE 'stop.stop_configured.%'"), 3);
  EXPECT_EQ(db.scalar("SELECT stop_loss_percent::text FROM operation WHERE id = 1"), "2.00000000");  // kept

  const ProcessResult again = backfill(db, {"--json"});
  ASSERT_EQ(again.exit_code, 0);
  EXPECT_EQ(json::parse(again.out).at("configured"), 0);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events"), 3);
}

TEST_F(BackfillTest, InvalidRowsAreReportedWithIdAndReasonAndNeverWritten) {
  db.exec(
      "INSERT INTO operation (id, tenant_id, symbol, side, average_entry_price, quantity, stop_price, "
      "target_price, stop_loss_percent) VALUES "
      "(10, 1, 'DOGEUSDT', 'BUY', 0.15, 100, 0.16, NULL, NULL),"
      "(11, 1, 'LTCUSDT', 'BUY', NULL, 3, NULL, NULL, 2),"
      "(12, 1, 'XRPUSDT', 'SELL', 0.6, 3, NULL, 0.7, NULL),"
      "(13, 1, 'ADAUSDT', 'BUY', 0.45, 3, NULL, NULL, 100),"
      "(14, NULL, 'SOLUSDT', 'BUY', 150, 3, NULL, NULL, 2),"
      "(15, 1, 'BTCUSDT', 'BUY', 95000, 1, NULL, NULL, 2)");
  db.exec(
      "ALTER TABLE operation DROP CONSTRAINT backstop_operation_side_check;"
      "INSERT INTO operation (id, tenant_id, symbol, side, average_entry_price, stop_loss_percent) "
      "VALUES (16, 1, 'ETHUSDT', 'LONG', 3000, 2)");
  const std::string before = db.scalar(
      "SELECT string_agg(id || ':' || coalesce(stop_price::text, '-') || ':' || "
      "coalesce(target_price::text, '-'), ',' ORDER BY id) FROM operation "
      "WHERE id <> 15");
  const ProcessResult r = backfill(db, {"--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;  // some work failed
  const json summary = json::parse(r.out);
  EXPECT_EQ(summary.at("invalid"), 6);
  EXPECT_EQ(summary.at("configured"), 1);
  std::map<std::int64_t, std::string> reasons;
  for (const auto& p : summary.at("problems")) reasons[p.at("operation_id")] = p.at("reason");
  EXPECT_EQ(reasons[10], "stop_price 0.16 must be below entry 0.15 for a BUY");
  EXPECT_EQ(reasons[11], "missing average_entry_price");
  EXPECT_EQ(reasons[12], "target_price 0.7 must be below entry 0.6 for a SELL");
  EXPECT_EQ(reasons[13], "stop_price 0 is not positive");
  EXPECT_EQ(reasons[14], "tenant_id is NULL");
  EXPECT_EQ(reasons[16], "side is 'LONG', expected BUY or SELL");
  EXPECT_NE(r.err.find("\"operation\":10"), std::string::npos) << r.err;  // logged with its id too
  EXPECT_EQ(db.scalar("SELECT string_agg(id || ':' || coalesce(stop_price::text, '-') || ':' || "
                      "coalesce(target_price::text, '-'), ',' ORDER BY id) FROM operation WHERE id <> 15"),
            before);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events WHERE operation_id <> 15"), 0);
}

TEST_F(BackfillTest, DryRunWritesNothing) {
  load_book(db, 200);
  const std::string before = final_state(db);
  const ProcessResult r = backfill(db, {"--dry-run", "--json", "--batch-size", "30"});
  EXPECT_EQ(r.exit_code, 1);  // the book has invalid rows
  const json summary = json::parse(r.out);
  EXPECT_EQ(summary.at("dry_run"), true);
  EXPECT_GT(summary.at("configured").get<int>(), 150);
  EXPECT_EQ(final_state(db), before);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events"), 0);
  EXPECT_EQ(db.count("SELECT count(*) FROM outbox"), 0);
}

TEST_F(BackfillTest, MatchesPostgresNumericArithmetic) {
  load_book(db, 3000);
  ASSERT_EQ(backfill(db, {"--batch-size", "500"}).exit_code, 1);
  // The same formula evaluated by PostgreSQL NUMERIC, stored into NUMERIC(20,8).
  EXPECT_EQ(db.count("SELECT count(*) FROM operation WHERE stop_loss_percent IS NOT NULL AND stop_price IS NOT NULL "
                     "AND stop_price <> (CASE side WHEN 'BUY' THEN average_entry_price * (1 - stop_loss_percent / 100) "
                     "ELSE average_entry_price * (1 + stop_loss_percent / 100) END)::numeric(20,8) "
                     "AND stop_price <> 1000000"),
            0);
  EXPECT_EQ(
      db.count("SELECT count(*) FROM operation WHERE stop_gain_percent IS NOT NULL AND target_price IS NOT NULL "
               "AND target_price <> (CASE side WHEN 'BUY' THEN average_entry_price * (1 + stop_gain_percent / 100) "
               "ELSE average_entry_price * (1 - stop_gain_percent / 100) END)::numeric(20,8)"),
      0);
  EXPECT_GT(db.count("SELECT count(*) FROM operation WHERE stop_price IS NOT NULL AND stop_loss_percent IS NOT NULL"),
            2500);
}

// Long work says how far it is: JSON progress lines on stderr (not a
// terminal here) with done, total, rate and time left; stdout's --json
// summary unchanged.
TEST_F(BackfillTest, ShowsItsProgressWithoutTouchingTheJsonSummary) {
  load_book(db, 2000);
  Env env = kJsonLogs;
  env.emplace_back("BACKSTOP_PROGRESS_EVERY_MS", "0");  // a line after every batch
  const ProcessResult r = backfill(db, {"--json", "--batch-size", "500"}, env);
  ASSERT_EQ(r.exit_code, 1) << r.err;       // the invalid rows of the book
  const json summary = json::parse(r.out);  // stdout is the summary alone
  EXPECT_EQ(summary["scanned"], 2000);
  const std::vector<json> lines = json_log_lines(r.err, "progress");
  ASSERT_GE(lines.size(), 4u) << r.err;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["work"], "backfill");
    EXPECT_EQ(lines[i]["total"], 2000);
    if (i > 0) {
      EXPECT_GE(lines[i]["done"].get<std::int64_t>(), lines[i - 1]["done"].get<std::int64_t>());
    }
  }
  EXPECT_EQ(lines.front()["done"], 500);
  EXPECT_TRUE(lines.front().contains("seconds_left")) << lines.front().dump();
  EXPECT_EQ(lines.back()["msg"], "progress: done");
  EXPECT_EQ(lines.back()["done"], 2000);
}

TEST_F(BackfillTest, KilledMidRunThenReRunGivesTheSameFinalState) {
  TestDatabase twin;
  twin.migrate();
  load_book(db, 2000);
  load_book(twin, 2000);
  ASSERT_EQ(backfill(twin, {"--batch-size", "100"}).exit_code, 1);  // uninterrupted reference run

  // Abort (as kill -9 would) just before the 3rd batch commits.
  const ProcessResult crashed =
      backfill(db, {"--batch-size", "100"}, {{"BACKSTOP_FAULT_POINT", "backfill.before_commit:3"}});
  EXPECT_EQ(crashed.signal, SIGABRT) << crashed.err;
  const std::int64_t committed = db.count("SELECT count(*) FROM stop_events");
  EXPECT_GT(committed, 0);
  EXPECT_LT(committed, twin.count("SELECT count(*) FROM stop_events"));
  EXPECT_EQ(
      db.count("SELECT count(*) FROM operation WHERE stop_price IS NOT NULL AND NOT EXISTS "
               "(SELECT 1 FROM stop_events e WHERE e.operation_id = operation.id) AND stop_loss_percent IS NOT NULL "
               "AND stop_price <> 1000000"),
      0);  // no half-written batch: every converted row has its event

  ASSERT_EQ(backfill(db, {"--batch-size", "100"}).exit_code, 1);
  EXPECT_EQ(final_state(db), final_state(twin));
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events"), twin.count("SELECT count(*) FROM stop_events"));
  EXPECT_EQ(db.count("SELECT count(*) FROM (SELECT operation_id FROM stop_events GROUP BY 1 HAVING count(*) > 1) d"),
            0);
  EXPECT_EQ(db.count("SELECT count(*) FROM outbox"), db.count("SELECT count(*) FROM stop_events"));
}

TEST_F(BackfillTest, ConcurrentRunsWriteOneGenesisPerOperation) {
  load_book(db, 3000);
  std::vector<std::unique_ptr<Process>> runs;
  for (int i = 0; i < 3; ++i) {
    runs.push_back(std::make_unique<Process>(
        std::vector<std::string>{binary("backfill"), "--database-url", db.url(), "--batch-size", "50", "--json"},
        kJsonLogs));
  }
  std::int64_t configured = 0;
  for (auto& run_ : runs) {
    const ProcessResult r = run_->wait();
    EXPECT_EQ(r.exit_code, 1) << r.err;  // invalid rows exist in the book
    configured += json::parse(r.out).at("configured").get<std::int64_t>();
  }
  const std::int64_t events = db.count("SELECT count(*) FROM stop_events");
  EXPECT_EQ(configured, events);  // each run reports only what it wrote
  EXPECT_EQ(db.count("SELECT count(DISTINCT operation_id) FROM stop_events"), events);
  EXPECT_EQ(events,
            db.count("SELECT count(*) FROM operation WHERE stop_price IS NOT NULL OR target_price IS NOT NULL") -
                db.count("SELECT count(*) FROM operation WHERE stop_price = 1000000"));
}

TEST_F(BackfillTest, BadConfigurationGivesClearErrors) {
  const auto dir = std::filesystem::temp_directory_path();
  const auto broken = dir / ("backstop-broken-" + std::to_string(getpid()) + ".yaml");
  std::ofstream(broken) << "batch-size: 10\ndry-run: [unclosed\n";
  ProcessResult r = backfill(db, {"--config", broken.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(broken.string()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("line "), std::string::npos) << r.err;

  const auto typo = dir / ("backstop-typo-" + std::to_string(getpid()) + ".yaml");
  std::ofstream(typo) << "batch-sise: 10\n";
  r = backfill(db, {"--config", typo.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown key 'batch-sise'"), std::string::npos) << r.err;

  r = backfill(db, {"--batch-size", "0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--batch-size"), std::string::npos) << r.err;

  r = backfill(db, {"--log-format", "xml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown log format 'xml'"), std::string::npos) << r.err;
  std::filesystem::remove(broken);
  std::filesystem::remove(typo);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events"), 0);
}

TEST_F(BackfillTest, FlagBeatsEnvironmentBeatsConfigFile) {
  load_book(db, 10);
  const auto config = std::filesystem::temp_directory_path() / ("backstop-cfg-" + std::to_string(getpid()) + ".yaml");
  std::ofstream(config) << "# backfill settings\nbatch-size: 3\ndry-run: true\n"
                           "database-url: postgresql://nobody@127.0.0.1:1/nothing\n";
  // Config file gives batch size 3 and dry-run; the environment's database URL wins over the file's.
  ProcessResult r = run({binary("backfill"), "--config", config.string(), "--json"},
                        {{"BACKSTOP_DATABASE_URL", db.url()}, {"BACKSTOP_LOG_FORMAT", "json"}});
  ASSERT_NE(r.out, "") << r.err;
  EXPECT_EQ(json::parse(r.out).at("batches"), 4);
  EXPECT_EQ(json::parse(r.out).at("dry_run"), true);
  // A flag wins over both.
  r = run({binary("backfill"), "--config", config.string(), "--json", "--batch-size", "20", "--database-url", db.url()},
          {{"BACKSTOP_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nothing"}, {"BACKSTOP_LOG_FORMAT", "json"}});
  ASSERT_NE(r.out, "") << r.err;
  EXPECT_EQ(json::parse(r.out).at("batches"), 1);
  // BACKSTOP_CONFIG names the file too.
  r = run({binary("backfill"), "--json"},
          {{"BACKSTOP_CONFIG", config.string()}, {"BACKSTOP_DATABASE_URL", db.url()}, {"BACKSTOP_LOG_FORMAT", "json"}});
  ASSERT_NE(r.out, "") << r.err;
  EXPECT_EQ(json::parse(r.out).at("batches"), 4);
  std::filesystem::remove(config);
  EXPECT_EQ(db.count("SELECT count(*) FROM stop_events"), 0);
}

TEST_F(BackfillTest, LogsAreJsonLinesWithoutSecrets) {
  db.exec(
      "INSERT INTO operation (id, tenant_id, symbol, side, average_entry_price, stop_price) "
      "VALUES (5, 1, 'X', 'BUY', 1, 2)");
  const ProcessResult r = backfill(db);
  EXPECT_EQ(r.exit_code, 1);
  std::istringstream lines(r.err);
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    ASSERT_TRUE(json::accept(line)) << line;
    const json j = json::parse(line);
    EXPECT_TRUE(j.contains("ts") && j.contains("level") && j.contains("msg")) << line;
    ++count;
  }
  EXPECT_GE(count, 2);
  EXPECT_NE(r.err.find("\"operation\":5"), std::string::npos);
}

}  // namespace
}  // namespace backstop::testing
