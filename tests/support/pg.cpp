#include "support/pg.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>

#include "store/db.h"
#include "store/migrations.h"

namespace backstop::testing {

std::string server_conninfo() {
  const char* host = std::getenv("PGHOST");
  const char* port = std::getenv("PGPORT");
  if (host == nullptr || port == nullptr) {
    throw std::runtime_error(
        "PGHOST/PGPORT are not set: integration tests need the PostgreSQL that `./dev test` starts");
  }
  const char* user = std::getenv("PGUSER");
  return std::string("host=") + host + " port=" + port + " user=" + (user != nullptr ? user : "postgres");
}

TestDatabase::TestDatabase() {
  static std::atomic<int> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string test = info != nullptr ? std::string(info->test_suite_name()) + "_" + info->name() : "db";
  for (char& c : test) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  name_ = "t_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" + test;
  if (name_.size() > 60) name_.resize(60);
  for (char& c : name_) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  pqxx::connection admin(server_conninfo() + " dbname=postgres");
  pqxx::nontransaction tx(admin);
  tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name_));
  tx.exec("CREATE DATABASE " + tx.quote_name(name_));
}

TestDatabase::~TestDatabase() {
  try {
    pqxx::connection admin(server_conninfo() + " dbname=postgres");
    pqxx::nontransaction tx(admin);
    tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name_) + " WITH (FORCE)");
  } catch (const std::exception& e) {
    ADD_FAILURE() << "could not drop test database " << name_ << ": " << e.what();
  }
}

std::string TestDatabase::url() const { return server_conninfo() + " dbname=" + name_; }

std::unique_ptr<pqxx::connection> TestDatabase::connect() const { return store::connect(url(), "backstop-test"); }

void TestDatabase::migrate() const {
  store::MigratorOptions options;
  options.database_url = url();
  store::Migrator(store::embedded_migrations(), options).up();
}

pqxx::result TestDatabase::exec(const std::string& sql) const {
  auto connection = connect();
  pqxx::work tx(*connection);
  pqxx::result result = tx.exec(sql);
  tx.commit();
  return result;
}

std::string TestDatabase::scalar(const std::string& sql) const {
  const pqxx::result r = exec(sql);
  if (r.empty() || r[0][0].is_null()) return "";
  return r[0][0].as<std::string>();
}

}  // namespace backstop::testing
