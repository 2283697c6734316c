// Schema migrations: numbered SQL files `NNNN_name.up.sql` / `.down.sql`
// (embedded in the binary at build time, or read from a directory), applied by
// one runner at a time and tracked in `backstop_schema_migrations`.
//
// Rules (DOMAIN §7): a session-level advisory lock on its own connection
// serializes runners; each migration runs in one transaction with a short
// lock_timeout (retried) unless its first line says `-- backstop:no-transaction`
// (CREATE INDEX CONCURRENTLY); a file changed after it was applied is refused;
// a failure is recorded with its error and blocks later runs until `repair`;
// a no-transaction migration is recorded only once every index it builds is
// valid (a failed CREATE INDEX CONCURRENTLY leaves an INVALID index that IF NOT
// EXISTS would keep: it is dropped and built again), and `up` rebuilds the
// indexes of applied no-transaction migrations found missing or INVALID;
// a down migration that would drop rows (`-- backstop:destroys-data-in t1, t2`)
// is refused unless data loss is explicitly allowed; an optional pg_dump
// backup is taken before anything changes.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <pqxx/connection>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace backstop::store {

// A migration problem that an operator must act on (drift, failed record,
// data-loss guard, bad file). Not retryable as is.
class MigrationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Migration {
  int version = 0;
  std::string name;
  std::string up_sql;
  std::optional<std::string> down_sql;
  bool transactional = true;
  bool down_transactional = true;
  std::vector<std::string> down_destroys;  // tables whose rows the down migration removes
  std::string checksum;                    // SHA-256 (hex) of the up file's bytes

  [[nodiscard]] std::string label() const;  // "0002_event_store"
};

// (file name, content) pairs → migrations sorted by version. Throws
// MigrationError naming the file for a bad name, a duplicate version or a
// down file without its up file.
std::vector<Migration> parse_migration_files(const std::vector<std::pair<std::string, std::string>>& files);
std::vector<Migration> load_migrations(const std::filesystem::path& directory);
// The migrations compiled into this binary.
std::vector<Migration> embedded_migrations();

// Refuses a database without every migration compiled into this binary
// (never migrated, one pending, one failed) before a command works on it:
// throws runtime::NotMigratedError (exit 4) naming what is missing and saying
// to run "migrate up". A database a newer binary migrated further is accepted.
void require_migrated(pqxx::connection& connection);

// Statements of a script, split on top-level semicolons (quotes, comments and
// dollar quoting respected). Used for no-transaction migrations, where each
// statement must be sent on its own.
std::vector<std::string> split_sql_statements(const std::string& script);

std::string sha256_hex(const std::string& data);

// An index a script builds: `CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT
// EXISTS] name ON [ONLY] table ...`. Names are kept as written (quoted or
// not), so that to_regclass() and DROP INDEX resolve them as the statement did.
struct IndexBuild {
  std::string name;
  std::string table;
  std::string statement;  // the CREATE INDEX statement itself
};
// The indexes a script builds and does not drop again further down, in order.
std::vector<IndexBuild> indexes_built_by(const std::string& script);
// The index names of a DROP INDEX statement (none for any other statement).
std::vector<std::string> indexes_dropped_by(const std::string& statement);

struct AppliedMigration {
  int version = 0;
  std::string name;
  std::string checksum;
  std::string applied_at;
  std::int64_t execution_time_ms = 0;
  bool success = false;
  std::optional<std::string> error_message;
};

struct MigrationStatus {
  enum class State { kPending, kApplied, kFailed, kChecksumMismatch, kUnknownToBinary };
  State state = State::kPending;
  int version = 0;
  std::string name;
  bool transactional = true;
  std::optional<AppliedMigration> applied;
  std::string file_checksum;
};
std::string to_string(MigrationStatus::State state);

struct MigratorOptions {
  std::string database_url;
  std::optional<std::filesystem::path> backup_dir;
  std::chrono::milliseconds lock_timeout{5000};  // per statement, for DDL waiting on a table lock
  int lock_attempts = 5;                         // retries of a migration that hit lock_timeout
  std::chrono::seconds runner_lock_wait{600};    // waiting for another runner
  bool allow_data_loss = false;                  // down over tables that still hold rows
};

struct RunResult {
  std::vector<std::string> migrations;  // labels, in the order they ran
  // Indexes of applied no-transaction migrations that were missing or INVALID
  // and were built again: "index (migration label)".
  std::vector<std::string> rebuilt_indexes;
  std::optional<std::filesystem::path> backup;
};

struct VerifyReport {
  std::vector<std::string> problems;  // empty = the schema is as expected
  std::vector<std::string> warnings;  // e.g. NOT VALID constraints on adopted tables
};

struct RepairResult {
  std::vector<std::string> cleared_failures;
  std::vector<std::string> dropped_invalid_indexes;
  // Those of the dropped indexes that an applied migration builds, built again
  // at once: repair never leaves an applied migration without its index.
  std::vector<std::string> rebuilt_indexes;
};

class Migrator {
 public:
  Migrator(std::vector<Migration> migrations, MigratorOptions options);

  [[nodiscard]] std::vector<MigrationStatus> status();
  // What `up` would run, after the same safety checks; changes nothing.
  [[nodiscard]] std::vector<Migration> plan(std::optional<int> target_version = std::nullopt);
  // Rebuilds the missing or INVALID indexes of applied no-transaction
  // migrations, then applies the pending ones.
  RunResult up(std::optional<int> target_version = std::nullopt);
  RunResult down(int count);
  [[nodiscard]] VerifyReport verify();
  // Clears failed records and drops the INVALID indexes failed concurrent
  // builds left; an index it drops that an applied migration builds is built
  // again before it returns (if that fails it throws, and `up` rebuilds it).
  RepairResult repair();

 private:
  class Session;
  [[nodiscard]] std::vector<MigrationStatus> status_of(const std::map<int, AppliedMigration>& applied) const;
  std::vector<Migration> pending_after_checks(Session& session, std::optional<int> target_version);
  // An index an applied no-transaction migration builds (and no later applied
  // migration drops), with the migration's label.
  struct OwnedIndex {
    IndexBuild build;
    std::string migration;
  };
  [[nodiscard]] std::vector<OwnedIndex> owned_indexes(const std::map<int, AppliedMigration>& applied) const;
  // Builds again the missing or INVALID indexes of applied no-transaction
  // migrations; labels of what it rebuilt. Throws MigrationError if one fails.
  std::vector<std::string> rebuild_applied_indexes(Session& session);

  std::vector<Migration> migrations_;
  MigratorOptions options_;
};

}  // namespace backstop::store
