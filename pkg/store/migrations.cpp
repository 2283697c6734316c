#include "store/migrations.h"

#include <openssl/evp.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "core/hex.h"
#include "runtime/exit_code.h"
#include "runtime/log.h"
#include "store/db.h"
#include "store/schema_expectations.h"

extern char** environ;

namespace backstop::store {
namespace {

constexpr std::string_view kNoTransaction = "-- backstop:no-transaction";
constexpr std::string_view kDestroys = "-- backstop:destroys-data-in ";
// pg_advisory_lock key: hashtext('backstop-migrate') would need a round trip;
// a fixed 64-bit constant is as good and visible in pg_locks.
constexpr std::int64_t kRunnerLockKey = 0x6261636b73746f70;  // "backstop"

const char* const kCreateTracking = R"SQL(
CREATE TABLE IF NOT EXISTS backstop_schema_migrations (
    version           integer PRIMARY KEY,
    name              text NOT NULL,
    checksum          text NOT NULL,
    applied_at        timestamptz NOT NULL DEFAULT now(),
    execution_time_ms bigint NOT NULL DEFAULT 0,
    success           boolean NOT NULL,
    error_message     text
))SQL";

bool first_line_is(const std::string& sql, std::string_view marker) {
  return sql.compare(0, marker.size(), marker) == 0;
}

std::vector<std::string> destroyed_tables(const std::string& sql) {
  std::vector<std::string> tables;
  std::istringstream lines(sql);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(kDestroys, 0) != 0) continue;
    std::stringstream list(line.substr(kDestroys.size()));
    std::string table;
    while (std::getline(list, table, ',')) {
      table.erase(0, table.find_first_not_of(" \t"));
      table.erase(table.find_last_not_of(" \t\r") + 1);
      if (!table.empty()) tables.push_back(table);
    }
  }
  return tables;
}

std::string now_stamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y%m%dT%H%M%SZ", &tm);
  return buffer;
}

std::int64_t elapsed_ms(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
}

// pg_dump --format=custom of the whole database, before anything changes.
std::filesystem::path take_backup(const std::string& url, const std::filesystem::path& directory) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec) throw runtime::UsageError("cannot create backup directory " + directory.string() + ": " + ec.message());
  std::filesystem::path file = directory / ("backstop-" + now_stamp() + ".dump");
  std::vector<std::string> args = {"pg_dump", "--format=custom", "--no-password", "--file=" + file.string()};
  if (!url.empty()) args.push_back("--dbname=" + url);
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawnp(&pid, "pg_dump", nullptr, nullptr, argv.data(), environ) != 0) {
    throw runtime::DependencyError("cannot start pg_dump for the backup (is it installed and on PATH?)");
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw runtime::DependencyError("pg_dump failed (exit status " + std::to_string(WEXITSTATUS(status)) +
                                   "); nothing was migrated");
  }
  log::info("backup written", {{"file", file.string()}});
  return file;
}

}  // namespace

void require_migrated(pqxx::connection& connection) {
  constexpr const char* kFix = R"(run "migrate up")";
  std::map<int, bool> recorded;  // version -> success
  {
    pqxx::read_transaction tx(connection);
    if (tx.exec1("SELECT to_regclass('backstop_schema_migrations') IS NULL")[0].as<bool>()) {
      throw runtime::NotMigratedError("the database has no Backstop schema (no backstop_schema_migrations table): " +
                                      std::string(kFix));
    }
    for (const auto& row : tx.exec("SELECT version, success FROM backstop_schema_migrations")) {
      recorded[row[0].as<int>()] = row[1].as<bool>();
    }
  }
  std::vector<std::string> pending;
  for (const Migration& m : embedded_migrations()) {
    const auto found = recorded.find(m.version);
    if (found == recorded.end()) {
      pending.push_back(m.label());
    } else if (!found->second) {
      throw runtime::NotMigratedError("migration " + m.label() +
                                      " failed on this database: run \"migrate repair\", then " + kFix);
    }
  }
  if (pending.empty()) return;
  std::string names;
  for (const std::string& label : pending) names += (names.empty() ? "" : ", ") + label;
  throw runtime::NotMigratedError("the database is not migrated: " + std::to_string(pending.size()) +
                                  " migration(s) pending (" + names + "): " + kFix);
}

std::string Migration::label() const {
  char prefix[16];
  std::snprintf(prefix, sizeof prefix, "%04d_", version);
  return prefix + name;
}

std::string to_string(MigrationStatus::State state) {
  switch (state) {
    case MigrationStatus::State::kPending:
      return "pending";
    case MigrationStatus::State::kApplied:
      return "applied";
    case MigrationStatus::State::kFailed:
      return "failed";
    case MigrationStatus::State::kChecksumMismatch:
      return "checksum-mismatch";
    case MigrationStatus::State::kUnknownToBinary:
      return "unknown-to-binary";
  }
  return "unknown";
}

std::string sha256_hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  return core::to_hex(digest, length);
}

std::vector<Migration> parse_migration_files(const std::vector<std::pair<std::string, std::string>>& files) {
  static const std::regex pattern(R"(^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$)");
  std::map<int, Migration> by_version;
  std::map<int, std::string> down_files;
  for (const auto& [file_name, content] : files) {
    std::smatch match;
    if (!std::regex_match(file_name, match, pattern)) {
      throw MigrationError("migration file " + file_name +
                           ": name must look like NNNN_lowercase_name.up.sql or .down.sql");
    }
    const int version = std::stoi(match[1].str());
    if (version <= 0) throw MigrationError("migration file " + file_name + ": version must be positive");
    Migration& migration = by_version[version];
    if (!migration.name.empty() && migration.name != match[2].str()) {
      throw MigrationError("migration version " + match[1].str() + " has two names: " + migration.name + " and " +
                           match[2].str());
    }
    migration.version = version;
    migration.name = match[2].str();
    if (match[3] == "up") {
      if (!migration.up_sql.empty()) throw MigrationError("duplicate up file for version " + match[1].str());
      migration.up_sql = content;
      migration.transactional = !first_line_is(content, kNoTransaction);
      migration.checksum = sha256_hex(content);
    } else {
      migration.down_sql = content;
      migration.down_transactional = !first_line_is(content, kNoTransaction);
      migration.down_destroys = destroyed_tables(content);
      down_files[version] = file_name;
    }
  }
  std::vector<Migration> result;
  for (auto& [version, migration] : by_version) {
    if (migration.checksum.empty()) {
      throw MigrationError("migration file " + down_files[version] + " has no matching .up.sql file");
    }
    result.push_back(std::move(migration));
  }
  return result;
}

std::vector<Migration> load_migrations(const std::filesystem::path& directory) {
  std::error_code ec;
  if (!std::filesystem::is_directory(directory, ec)) {
    throw runtime::UsageError("migrations directory " + directory.string() + " does not exist");
  }
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".sql") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream content;
    content << in.rdbuf();
    files.emplace_back(entry.path().filename().string(), content.str());
  }
  return parse_migration_files(files);
}

std::vector<std::string> split_sql_statements(const std::string& script) {
  std::vector<std::string> statements;
  std::string current;
  std::size_t i = 0;
  auto flush = [&] {
    const auto begin = current.find_first_not_of(" \t\r\n");
    if (begin != std::string::npos) {
      // Skip chunks that are only comments.
      bool has_code = false;
      std::istringstream lines(current);
      std::string line;
      while (std::getline(lines, line)) {
        const auto first = line.find_first_not_of(" \t\r");
        if (first != std::string::npos && line.compare(first, 2, "--") != 0) has_code = true;
      }
      if (has_code) statements.push_back(current.substr(begin));
    }
    current.clear();
  };
  while (i < script.size()) {
    const char c = script[i];
    if (c == '-' && i + 1 < script.size() && script[i + 1] == '-') {
      const auto end = script.find('\n', i);
      const auto stop = end == std::string::npos ? script.size() : end + 1;
      current.append(script, i, stop - i);
      i = stop;
    } else if (c == '/' && i + 1 < script.size() && script[i + 1] == '*') {
      const auto end = script.find("*/", i + 2);
      const auto stop = end == std::string::npos ? script.size() : end + 2;
      current.append(script, i, stop - i);
      i = stop;
    } else if (c == '\'' || c == '"') {
      std::size_t j = i + 1;
      while (j < script.size()) {
        if (script[j] == c) {
          if (j + 1 < script.size() && script[j + 1] == c) {
            j += 2;
            continue;
          }
          break;
        }
        ++j;
      }
      const auto stop = std::min(j + 1, script.size());
      current.append(script, i, stop - i);
      i = stop;
    } else if (c == '$') {
      std::size_t j = i + 1;
      while (j < script.size() && (std::isalnum(static_cast<unsigned char>(script[j])) || script[j] == '_')) ++j;
      if (j < script.size() && script[j] == '$') {
        const std::string tag = script.substr(i, j - i + 1);
        const auto end = script.find(tag, j + 1);
        const auto stop = end == std::string::npos ? script.size() : end + tag.size();
        current.append(script, i, stop - i);
        i = stop;
      } else {
        current += c;
        ++i;
      }
    } else if (c == ';') {
      flush();
      ++i;
    } else {
      current += c;
      ++i;
    }
  }
  flush();
  return statements;
}

namespace {

// split_sql_statements keeps the comments in front of a statement.
std::string without_leading_comments(const std::string& statement) {
  std::size_t at = 0;
  while (true) {
    at = statement.find_first_not_of(" \t\r\n", at);
    if (at == std::string::npos) return "";
    if (statement.compare(at, 2, "--") == 0) {
      at = statement.find('\n', at);
      if (at == std::string::npos) return "";
    } else if (statement.compare(at, 2, "/*") == 0) {
      at = statement.find("*/", at);
      if (at == std::string::npos) return "";
      at += 2;
    } else {
      return statement.substr(at);
    }
  }
}

// An SQL identifier, quoted or not (one capture group).
const std::string kIdentifier = R"(("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*))";

// How PostgreSQL compares names: unquoted ones fold to lower case; a qualified
// name compares by its last part (an index lives in its table's schema).
std::string normalized_name(const std::string& written) {
  static const std::regex part(kIdentifier);
  std::string last;
  for (auto it = std::sregex_iterator(written.begin(), written.end(), part); it != std::sregex_iterator(); ++it) {
    last = (*it)[1].str();
  }
  if (last.size() >= 2 && last.front() == '"') {
    std::string unquoted;
    for (std::size_t i = 1; i + 1 < last.size(); ++i) {
      unquoted += last[i];
      if (last[i] == '"') ++i;  // "" inside quotes is one "
    }
    return unquoted;
  }
  for (char& c : last) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return last;
}

std::optional<IndexBuild> index_built_by(const std::string& statement) {
  static const std::regex create(R"(^CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?)" +
                                     kIdentifier + R"(\s+ON\s+(?:ONLY\s+)?()" + kIdentifier + R"((?:\s*\.\s*)" +
                                     kIdentifier + R"()?))",
                                 std::regex::icase);
  const std::string code = without_leading_comments(statement);
  std::smatch match;
  if (!std::regex_search(code, match, create, std::regex_constants::match_continuous)) return std::nullopt;
  const std::string name = match[1].str();
  // `CREATE INDEX CONCURRENTLY ON t`: an unnamed index, not one called "concurrently".
  if (normalized_name(name) == "concurrently" || normalized_name(name) == "on") return std::nullopt;
  return IndexBuild{name, match[2].str(), statement};
}

}  // namespace

std::vector<std::string> indexes_dropped_by(const std::string& statement) {
  static const std::regex drop(
      R"(^DROP\s+INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+EXISTS\s+)?([\s\S]*?)(?:\s+(?:CASCADE|RESTRICT))?\s*$)",
      std::regex::icase);
  const std::string code = without_leading_comments(statement);
  std::smatch match;
  if (!std::regex_match(code, match, drop)) return {};
  std::vector<std::string> names;
  std::stringstream list(match[1].str());
  for (std::string name; std::getline(list, name, ',');) {
    name.erase(0, name.find_first_not_of(" \t\r\n"));
    name.erase(name.find_last_not_of(" \t\r\n") + 1);
    if (!name.empty()) names.push_back(name);
  }
  return names;
}

std::vector<IndexBuild> indexes_built_by(const std::string& script) {
  std::vector<IndexBuild> builds;
  for (const std::string& statement : split_sql_statements(script)) {
    if (auto build = index_built_by(statement)) {
      builds.push_back(std::move(*build));
      continue;
    }
    for (const std::string& dropped : indexes_dropped_by(statement)) {
      std::erase_if(builds, [&](const IndexBuild& b) { return normalized_name(b.name) == normalized_name(dropped); });
    }
  }
  return builds;
}

// Two connections: one that holds the session-level runner lock for the
// whole run (never inside a transaction, so CREATE INDEX CONCURRENTLY on the
// other connection cannot wait on it), and one that does the work.
class Migrator::Session {
 public:
  Session(const MigratorOptions& options, bool take_runner_lock) {
    work = connect(options.database_url, "backstop-migrate");
    if (take_runner_lock) {
      lock = connect(options.database_url, "backstop-migrate-lock");
      acquire(options.runner_lock_wait);
    }
    pqxx::nontransaction setup(*work);
    setup.exec("SET client_min_messages = warning");
    setup.exec(kCreateTracking);
  }

  std::map<int, AppliedMigration> applied() {
    pqxx::read_transaction tx(*work);
    std::map<int, AppliedMigration> rows;
    for (const auto& row :
         tx.exec("SELECT version, name, checksum, applied_at::text, execution_time_ms, success, error_message "
                 "FROM backstop_schema_migrations ORDER BY version")) {
      AppliedMigration a;
      a.version = row[0].as<int>();
      a.name = row[1].as<std::string>();
      a.checksum = row[2].as<std::string>();
      a.applied_at = row[3].as<std::string>();
      a.execution_time_ms = row[4].as<std::int64_t>();
      a.success = row[5].as<bool>();
      a.error_message = text_or_null(row[6]);
      rows[a.version] = a;
    }
    return rows;
  }

  std::unique_ptr<pqxx::connection> work;
  std::unique_ptr<pqxx::connection> lock;

 private:
  void acquire(std::chrono::seconds wait) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    bool logged = false;
    while (true) {
      pqxx::nontransaction tx(*lock);
      if (tx.exec_params1("SELECT pg_try_advisory_lock($1)", kRunnerLockKey)[0].as<bool>()) return;
      if (!logged) {
        log::info("another migrate runner holds the lock; waiting");
        logged = true;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        throw runtime::DependencyError("another migrate runner held the migration lock for more than " +
                                       std::to_string(wait.count()) + " s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
};

Migrator::Migrator(std::vector<Migration> migrations, MigratorOptions options)
    : migrations_(std::move(migrations)), options_(std::move(options)) {}

std::vector<MigrationStatus> Migrator::status() {
  Session session(options_, false);
  return status_of(session.applied());
}

std::vector<MigrationStatus> Migrator::status_of(const std::map<int, AppliedMigration>& applied) const {
  std::vector<MigrationStatus> result;
  for (const Migration& m : migrations_) {
    MigrationStatus s;
    s.version = m.version;
    s.name = m.name;
    s.transactional = m.transactional;
    s.file_checksum = m.checksum;
    if (const auto it = applied.find(m.version); it != applied.end()) {
      s.applied = it->second;
      if (!it->second.success) {
        s.state = MigrationStatus::State::kFailed;
      } else if (it->second.checksum != m.checksum) {
        s.state = MigrationStatus::State::kChecksumMismatch;
      } else {
        s.state = MigrationStatus::State::kApplied;
      }
    }
    result.push_back(s);
  }
  for (const auto& [version, a] : applied) {
    const bool known = std::any_of(migrations_.begin(), migrations_.end(),
                                   [v = version](const Migration& m) { return m.version == v; });
    if (known) continue;
    MigrationStatus s;
    s.state = MigrationStatus::State::kUnknownToBinary;
    s.version = version;
    s.name = a.name;
    s.applied = a;
    result.push_back(s);
  }
  std::sort(result.begin(), result.end(), [](const auto& a, const auto& b) { return a.version < b.version; });
  return result;
}

std::vector<Migration> Migrator::pending_after_checks(Session& session, std::optional<int> target_version) {
  const auto applied = session.applied();
  int highest_applied = 0;
  for (const auto& [version, a] : applied) {
    if (!a.success) {
      throw MigrationError("migration " + std::to_string(version) + " (" + a.name + ") failed at " + a.applied_at +
                           ": " + a.error_message.value_or("(no message)") +
                           "\nFix the cause, then run `migrate repair` to clear the failed record.");
    }
    const auto known = std::find_if(migrations_.begin(), migrations_.end(),
                                    [v = version](const Migration& m) { return m.version == v; });
    if (known == migrations_.end()) {
      throw MigrationError("the database has migration " + std::to_string(version) + " (" + a.name +
                           ") applied, which this binary does not know: run a newer Backstop");
    }
    if (known->checksum != a.checksum) {
      throw MigrationError("migration " + known->label() + ".up.sql was changed after it was applied (checksum " +
                           a.checksum.substr(0, 12) + " recorded at " + a.applied_at + ", file now " +
                           known->checksum.substr(0, 12) +
                           "); restore the applied file and add a new migration instead");
    }
    highest_applied = std::max(highest_applied, version);
  }
  std::vector<Migration> pending;
  for (const Migration& m : migrations_) {
    if (applied.count(m.version) != 0) continue;
    if (target_version && m.version > *target_version) continue;
    if (m.version < highest_applied) {
      throw MigrationError("migration " + m.label() + " is older than the applied migration " +
                           std::to_string(highest_applied) + " but was never applied (out of order)");
    }
    pending.push_back(m);
  }
  return pending;
}

std::vector<Migration> Migrator::plan(std::optional<int> target_version) {
  Session session(options_, false);
  return pending_after_checks(session, target_version);
}

namespace {

void record_failure(pqxx::connection& connection, const Migration& m, const std::string& error, std::int64_t ms) {
  pqxx::work tx(connection);
  tx.exec_params(
      "INSERT INTO backstop_schema_migrations (version, name, checksum, execution_time_ms, success, error_message) "
      "VALUES ($1, $2, $3, $4, false, $5) ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, "
      "checksum = EXCLUDED.checksum, applied_at = now(), execution_time_ms = EXCLUDED.execution_time_ms, "
      "success = false, error_message = EXCLUDED.error_message",
      m.version, m.name, m.checksum, ms, error);
  tx.commit();
}

const char* const kRecordSuccess =
    "INSERT INTO backstop_schema_migrations (version, name, checksum, execution_time_ms, success) "
    "VALUES ($1, $2, $3, $4, true)";

// Not every index a no-transaction migration builds is valid after its
// statements ran: it is recorded as failed, not as applied.
class InvalidIndexes : public MigrationError {
 public:
  using MigrationError::MigrationError;
};

enum class IndexState { kMissing, kInvalid, kValid };

// Valid = usable by queries and kept up to date by writes. A CREATE INDEX
// CONCURRENTLY that failed (lock_timeout, a duplicate, a cancel) leaves its
// index behind with indisvalid (and maybe indisready) false.
IndexState index_state(pqxx::transaction_base& tx, const std::string& name) {
  const pqxx::result rows =
      tx.exec_params("SELECT i.indisvalid AND i.indisready FROM pg_index i WHERE i.indexrelid = to_regclass($1)", name);
  if (rows.empty()) return IndexState::kMissing;
  return rows[0][0].as<bool>() ? IndexState::kValid : IndexState::kInvalid;
}

// Runs `attempt`; on lock_timeout runs it again after a backoff, up to
// options.lock_attempts times in all.
void with_lock_retries(pqxx::connection& connection, const MigratorOptions& options,
                       const std::function<void()>& attempt) {
  for (int n = 1;; ++n) {
    try {
      attempt();
      return;
    } catch (const pqxx::sql_error& e) {
      if (e.sqlstate() != kLockNotAvailable || n >= options.lock_attempts) throw;
      pqxx::nontransaction(connection).exec("RESET lock_timeout");
      const auto backoff = std::chrono::milliseconds(200 * (1 << std::min(n, 6)));
      log::warn("migration waited too long for a table lock; retrying",
                {{"attempt", n}, {"backoff_ms", static_cast<std::int64_t>(backoff.count())}});
      std::this_thread::sleep_for(backoff);
    }
  }
}

// Statements one by one outside a transaction, each under lock_timeout. An
// index that a CREATE INDEX is about to build but that exists INVALID (left by
// an earlier attempt whose concurrent build failed) is dropped first:
// IF NOT EXISTS would otherwise skip it and keep it INVALID for good.
void run_without_transaction(pqxx::connection& connection, const std::vector<std::string>& statements,
                             const MigratorOptions& options) {
  pqxx::nontransaction tx(connection);
  tx.exec("SET lock_timeout = '" + std::to_string(options.lock_timeout.count()) + "ms'");
  for (const std::string& statement : statements) {
    if (const auto build = index_built_by(statement); build && index_state(tx, build->name) == IndexState::kInvalid) {
      log::warn("dropping the INVALID index a failed concurrent build left, to build it again",
                {{"index", build->name}});
      tx.exec("DROP INDEX CONCURRENTLY IF EXISTS " + build->name);
    }
    tx.exec(statement);
  }
  tx.exec("RESET lock_timeout");
}

// Throws InvalidIndexes naming every index of `builds` that is not valid.
void require_valid(pqxx::connection& connection, const std::vector<IndexBuild>& builds) {
  std::string problems;
  pqxx::read_transaction tx(connection);
  for (const IndexBuild& build : builds) {
    const IndexState state = index_state(tx, build.name);
    if (state == IndexState::kValid) continue;
    problems +=
        (problems.empty() ? "" : ", ") + build.name + (state == IndexState::kMissing ? " is missing" : " is INVALID");
  }
  if (!problems.empty()) throw InvalidIndexes("after its statements ran, index " + problems);
}

// Runs one direction of a migration; on lock_timeout the whole migration is
// retried (a transactional one left nothing behind; statements of a
// no-transaction one are written to be re-runnable: IF [NOT] EXISTS, and
// INVALID leftovers of its own indexes are dropped and built again). A
// no-transaction migration is recorded only once every index it builds is
// valid.
void execute_script(pqxx::connection& connection, const std::string& sql, bool transactional,
                    const MigratorOptions& options, const std::function<void(pqxx::transaction_base&)>& record) {
  if (transactional) {
    with_lock_retries(connection, options, [&] {
      pqxx::work tx(connection);
      tx.exec("SET LOCAL lock_timeout = '" + std::to_string(options.lock_timeout.count()) + "ms'");
      tx.exec(sql);
      record(tx);
      tx.commit();
    });
    return;
  }
  const std::vector<std::string> statements = split_sql_statements(sql);
  with_lock_retries(connection, options, [&] { run_without_transaction(connection, statements, options); });
  require_valid(connection, indexes_built_by(sql));
  pqxx::work tx(connection);
  record(tx);
  tx.commit();
}

}  // namespace

std::vector<Migrator::OwnedIndex> Migrator::owned_indexes(const std::map<int, AppliedMigration>& applied) const {
  std::vector<OwnedIndex> owned;
  for (const Migration& m : migrations_) {  // in version order
    const auto it = applied.find(m.version);
    if (it == applied.end() || !it->second.success) continue;
    for (const std::string& statement : split_sql_statements(m.up_sql)) {
      for (const std::string& dropped : indexes_dropped_by(statement)) {
        std::erase_if(owned,
                      [&](const OwnedIndex& o) { return normalized_name(o.build.name) == normalized_name(dropped); });
      }
    }
    if (m.transactional) continue;  // all or nothing: its indexes cannot be left INVALID
    for (IndexBuild& build : indexes_built_by(m.up_sql)) owned.push_back({std::move(build), m.label()});
  }
  return owned;
}

std::vector<std::string> Migrator::rebuild_applied_indexes(Session& session) {
  std::vector<std::string> rebuilt;
  for (const OwnedIndex& o : owned_indexes(session.applied())) {
    {
      pqxx::read_transaction tx(*session.work);
      if (index_state(tx, o.build.name) == IndexState::kValid) continue;
      if (tx.exec_params1("SELECT to_regclass($1) IS NULL", o.build.table)[0].as<bool>())
        continue;  // table dropped since
    }
    log::warn("an index of an applied migration is missing or INVALID: building it again",
              {{"index", o.build.name}, {"migration", o.migration}});
    std::string failure;
    try {
      with_lock_retries(*session.work, options_,
                        [&] { run_without_transaction(*session.work, {o.build.statement}, options_); });
      require_valid(*session.work, {o.build});
    } catch (const pqxx::sql_error& e) {
      failure = e.what();
    } catch (const InvalidIndexes& e) {
      failure = e.what();
    }
    if (!failure.empty()) {
      while (failure.back() == '\n') failure.pop_back();
      throw MigrationError("building again index " + o.build.name + " of the applied migration " + o.migration +
                           " failed: " + failure + "\nThe next `migrate up` tries again.");
    }
    rebuilt.push_back(o.build.name + " (" + o.migration + ")");
  }
  return rebuilt;
}

RunResult Migrator::up(std::optional<int> target_version) {
  Session session(options_, true);
  const auto pending = pending_after_checks(session, target_version);
  RunResult result;
  // An applied migration whose index is missing or INVALID (recorded by an
  // older Backstop that kept INVALID leftovers, or dropped by hand or by an
  // older `repair`) gets it back before anything newer is applied.
  result.rebuilt_indexes = rebuild_applied_indexes(session);
  if (pending.empty()) return result;
  if (options_.backup_dir) result.backup = take_backup(options_.database_url, *options_.backup_dir);
  for (const Migration& m : pending) {
    const auto start = std::chrono::steady_clock::now();
    log::info("applying migration", {{"migration", m.label()}, {"transactional", m.transactional}});
    std::string failure;
    try {
      execute_script(*session.work, m.up_sql, m.transactional, options_, [&](pqxx::transaction_base& tx) {
        tx.exec_params(kRecordSuccess, m.version, m.name, m.checksum, elapsed_ms(start));
      });
    } catch (const pqxx::sql_error& e) {
      failure = e.what();
    } catch (const InvalidIndexes& e) {
      failure = e.what();
    }
    if (!failure.empty()) {
      while (failure.back() == '\n') failure.pop_back();
      record_failure(*session.work, m, failure, elapsed_ms(start));
      throw MigrationError("migration " + m.label() + " failed: " + failure +
                           (m.transactional ? "\nIt was rolled back: nothing of it was applied."
                                            : "\nIt ran without a transaction: run `migrate verify` to see what "
                                              "is left (e.g. an INVALID index) and `migrate repair`; the next "
                                              "`up` drops the INVALID indexes it left and builds them again."));
    }
    log::info("applied migration", {{"migration", m.label()}, {"ms", elapsed_ms(start)}});
    result.migrations.push_back(m.label());
  }
  return result;
}

RunResult Migrator::down(int count) {
  if (count < 1) throw runtime::UsageError("down needs a positive count, got " + std::to_string(count));
  Session session(options_, true);
  const auto applied = session.applied();
  std::vector<const Migration*> to_revert;
  for (auto it = applied.rbegin(); it != applied.rend() && static_cast<int>(to_revert.size()) < count; ++it) {
    const auto known = std::find_if(migrations_.begin(), migrations_.end(),
                                    [v = it->first](const Migration& m) { return m.version == v; });
    if (known == migrations_.end()) {
      throw MigrationError("cannot revert migration " + std::to_string(it->first) + ": this binary does not know it");
    }
    if (!known->down_sql) throw MigrationError("migration " + known->label() + " has no .down.sql: irreversible");
    to_revert.push_back(&*known);
  }
  // Refuse before changing anything if any step would drop rows.
  std::vector<std::string> with_rows;
  {
    pqxx::read_transaction tx(*session.work);
    for (const Migration* m : to_revert) {
      for (const std::string& table : m->down_destroys) {
        if (tx.exec_params1("SELECT to_regclass($1) IS NOT NULL", table)[0].as<bool>() &&
            tx.exec1("SELECT EXISTS (SELECT 1 FROM " + tx.quote_name(table) + ")")[0].as<bool>()) {
          with_rows.push_back(table + " (" + m->label() + ")");
        }
      }
    }
  }
  if (!with_rows.empty() && !options_.allow_data_loss) {
    std::string list;
    for (const auto& t : with_rows) list += (list.empty() ? "" : ", ") + t;
    throw MigrationError(
        "refusing to revert: these tables still hold rows that the down migrations would "
        "destroy: " +
        list + ". Take a backup (--backup-dir) and pass --allow-data-loss.");
  }
  RunResult result;
  if (to_revert.empty()) return result;
  if (options_.backup_dir) result.backup = take_backup(options_.database_url, *options_.backup_dir);
  for (const Migration* m : to_revert) {
    log::info("reverting migration", {{"migration", m->label()}});
    try {
      execute_script(*session.work, *m->down_sql, m->down_transactional, options_, [&](pqxx::transaction_base& tx) {
        tx.exec_params("DELETE FROM backstop_schema_migrations WHERE version = $1", m->version);
      });
    } catch (const pqxx::sql_error& e) {
      throw MigrationError("reverting " + m->label() + " failed: " + e.what());
    }
    result.migrations.push_back(m->label());
  }
  return result;
}

VerifyReport Migrator::verify() {
  Session session(options_, false);
  VerifyReport report;
  std::vector<int> applied_versions;
  for (const auto& s : status_of(session.applied())) {
    switch (s.state) {
      case MigrationStatus::State::kApplied:
        applied_versions.push_back(s.version);
        break;
      case MigrationStatus::State::kPending:
        report.problems.push_back("migration " + std::to_string(s.version) + " (" + s.name + ") is not applied");
        break;
      case MigrationStatus::State::kFailed:
        report.problems.push_back("migration " + std::to_string(s.version) + " (" + s.name +
                                  ") failed: " + s.applied->error_message.value_or(""));
        break;
      case MigrationStatus::State::kChecksumMismatch:
        report.problems.push_back("migration " + std::to_string(s.version) + " (" + s.name +
                                  ") was changed after it was applied");
        break;
      case MigrationStatus::State::kUnknownToBinary:
        report.problems.push_back("migration " + std::to_string(s.version) + " (" + s.name +
                                  ") is applied but unknown to this binary");
        break;
    }
  }
  pqxx::read_transaction tx(*session.work);
  check_schema(tx, applied_versions, report.problems, report.warnings);
  return report;
}

RepairResult Migrator::repair() {
  Session session(options_, true);
  RepairResult result;
  {
    pqxx::work tx(*session.work);
    for (const auto& row :
         tx.exec("DELETE FROM backstop_schema_migrations WHERE NOT success RETURNING version, name")) {
      result.cleared_failures.push_back(row[0].as<std::string>() + "_" + row[1].as<std::string>());
    }
    tx.commit();
  }
  // Left behind by a failed CREATE INDEX CONCURRENTLY; IF NOT EXISTS would keep
  // them. Those an applied migration builds are not merely dropped (the
  // migration would stay recorded without them): rebuild_applied_indexes drops
  // and builds each again, and if that fails the next `up` does.
  const std::vector<OwnedIndex> owned = owned_indexes(session.applied());
  {
    pqxx::nontransaction nt(*session.work);
    for (const auto& row : nt.exec("SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                   "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                   "WHERE NOT (i.indisvalid AND i.indisready) AND n.nspname = current_schema() "
                                   "AND c.relname LIKE 'idx\\_%'")) {
      const auto name = row[0].as<std::string>();
      const bool applied = std::any_of(owned.begin(), owned.end(),
                                       [&](const OwnedIndex& o) { return normalized_name(o.build.name) == name; });
      if (applied) continue;
      nt.exec("DROP INDEX CONCURRENTLY IF EXISTS " + nt.quote_name(name));
      result.dropped_invalid_indexes.push_back(name);
    }
  }
  result.rebuilt_indexes = rebuild_applied_indexes(session);
  return result;
}

}  // namespace backstop::store
