// A fresh PostgreSQL database per test on the server the test command
// started (PGHOST/PGPORT/PGUSER), dropped again afterwards.
#pragma once

#include <memory>
#include <pqxx/pqxx>
#include <string>

namespace backstop::testing {

class TestDatabase {
 public:
  TestDatabase();
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  [[nodiscard]] const std::string& name() const { return name_; }
  // libpq conninfo for this database (what the binaries get as --database-url).
  [[nodiscard]] std::string url() const;
  [[nodiscard]] std::unique_ptr<pqxx::connection> connect() const;

  // Applies the embedded migrations.
  void migrate() const;
  // Runs SQL in its own committed transaction.
  pqxx::result exec(const std::string& sql) const;
  // First column of the first row as text ("" for NULL).
  std::string scalar(const std::string& sql) const;
  std::int64_t count(const std::string& sql) const { return std::stoll(scalar(sql)); }

 private:
  std::string name_;
};

// conninfo of the server without a database (from PG* variables).
std::string server_conninfo();

}  // namespace backstop::testing
