// Migration file naming, markers and statement splitting.
#include <gtest/gtest.h>

#include "store/migrations.h"

namespace backstop::store {
namespace {

TEST(MigrationFiles, ParsesPairsMarkersAndChecksums) {
  const auto migrations = parse_migration_files({
      {"0002_indexes.up.sql", "-- backstop:no-transaction\nCREATE INDEX CONCURRENTLY a ON t (x);"},
      {"0001_init.up.sql", "CREATE TABLE t (x int);"},
      {"0001_init.down.sql", "-- backstop:destroys-data-in t, u\nDROP TABLE t;"},
  });
  ASSERT_EQ(migrations.size(), 2u);
  EXPECT_EQ(migrations[0].label(), "0001_init");
  EXPECT_TRUE(migrations[0].transactional);
  EXPECT_EQ(migrations[0].down_destroys, (std::vector<std::string>{"t", "u"}));
  EXPECT_EQ(migrations[0].checksum, sha256_hex("CREATE TABLE t (x int);"));
  EXPECT_FALSE(migrations[1].transactional);
  EXPECT_FALSE(migrations[1].down_sql.has_value());
}

TEST(MigrationFiles, BadNamesAreRefusedWithTheFileName) {
  for (const char* name : {"1_init.up.sql", "0001-init.up.sql", "0001_Init.up.sql", "0001_init.sql"}) {
    try {
      (void)parse_migration_files({{name, "SELECT 1;"}});
      FAIL() << name;
    } catch (const MigrationError& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW((void)parse_migration_files({{"0001_a.down.sql", "x"}}), MigrationError);
  EXPECT_THROW((void)parse_migration_files({{"0001_a.up.sql", "x"}, {"0001_b.up.sql", "y"}}), MigrationError);
}

TEST(MigrationFiles, Sha256KnownVector) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(SqlSplitter, RespectsQuotesCommentsAndDollarQuoting) {
  const auto statements = split_sql_statements(
      "-- header; with a semicolon\n"
      "CREATE INDEX CONCURRENTLY a ON t (x);\n"
      "INSERT INTO t VALUES ('a;b', \"c;d\");\n"
      "/* block; comment */ SELECT 1;\n"
      "DO $$ BEGIN PERFORM 1; END $$;\n"
      "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n"
      "SELECT 'it''s;'\n"
      "-- trailing comment only\n");
  ASSERT_EQ(statements.size(), 6u);
  EXPECT_EQ(statements[0], "-- header; with a semicolon\nCREATE INDEX CONCURRENTLY a ON t (x)");
  EXPECT_EQ(statements[1], "INSERT INTO t VALUES ('a;b', \"c;d\")");
  EXPECT_EQ(statements[2], "/* block; comment */ SELECT 1");
  EXPECT_EQ(statements[3], "DO $$ BEGIN PERFORM 1; END $$");
  EXPECT_EQ(statements[4], "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql");
  EXPECT_EQ(statements[5], "SELECT 'it''s;'\n-- trailing comment only\n");
}

// What the runner checks before recording a no-transaction migration, and
// rebuilds when an applied one's index is missing or INVALID.
TEST(IndexBuilds, NamesTheIndexesAScriptBuildsAndKeeps) {
  const auto builds = indexes_built_by(
      "-- backstop:no-transaction\n"
      "-- a comment; before\n"
      "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_a ON operation (symbol) WHERE status = 'ACTIVE';\n"
      "create unique index concurrently \"Idx B\" on only public.operation (id);\n"
      "CREATE INDEX CONCURRENTLY ON operation (side);\n"  // unnamed: nothing to check by name
      "CREATE INDEX idx_gone ON operation (tenant_id);\n"
      "DROP INDEX CONCURRENTLY IF EXISTS IDX_GONE;\n"
      "ALTER TABLE operation VALIDATE CONSTRAINT c;\n");
  ASSERT_EQ(builds.size(), 2u);
  EXPECT_EQ(builds[0].name, "idx_a");
  EXPECT_EQ(builds[0].table, "operation");
  EXPECT_NE(builds[0].statement.find("CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_a"), std::string::npos);
  EXPECT_EQ(builds[1].name, "\"Idx B\"");
  EXPECT_EQ(builds[1].table, "public.operation");
  EXPECT_EQ(indexes_dropped_by("DROP INDEX CONCURRENTLY IF EXISTS a, b_cascade CASCADE"),
            (std::vector<std::string>{"a", "b_cascade"}));
  EXPECT_TRUE(indexes_dropped_by("DROP TABLE a").empty());
}

TEST(IndexBuilds, OfTheRepositoryIndexMigrations) {
  const auto migrations = load_migrations(BACKSTOP_MIGRATIONS_DIR);
  auto names = [&](int version) {
    std::vector<std::string> out;
    for (const auto& b : indexes_built_by(migrations.at(static_cast<std::size_t>(version - 1)).up_sql)) {
      out.push_back(b.name);
    }
    return out;
  };
  EXPECT_EQ(names(4), (std::vector<std::string>{"idx_operation_active_stop", "idx_operation_active_target",
                                                "idx_operation_percent_only", "idx_operation_tenant_status"}));
  EXPECT_EQ(names(7), (std::vector<std::string>{"idx_operation_trail_wake", "idx_operation_trail_unarmed_own",
                                                "idx_operation_trail_unarmed_tenant"}));
  EXPECT_EQ(names(8), (std::vector<std::string>{"idx_outbox_drain", "idx_outbox_parked"}));
}

TEST(EmbeddedMigrations, AreTheRepositoryFiles) {
  const auto embedded = embedded_migrations();
  const auto on_disk = load_migrations(BACKSTOP_MIGRATIONS_DIR);
  ASSERT_EQ(embedded.size(), on_disk.size());
  for (std::size_t i = 0; i < embedded.size(); ++i) {
    EXPECT_EQ(embedded[i].label(), on_disk[i].label());
    EXPECT_EQ(embedded[i].checksum, on_disk[i].checksum);
  }
  EXPECT_GE(embedded.size(), 4u);
}

}  // namespace
}  // namespace backstop::store
