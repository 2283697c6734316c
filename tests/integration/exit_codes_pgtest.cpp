// Exit codes (README, "Exit codes"; issue 12, item 5), from the real binaries
// against a real PostgreSQL and a real RabbitMQ: a configuration that can never
// work (a malformed AMQP URL, a password the broker refuses) is exit 2 at once,
// also for a continuous drainer, never "retry later"; a database without the
// binary's migrations is exit 4 and says `run "migrate up"`; `migrate` takes its
// options after the subcommand and names the valid subcommands when given a
// wrong one; --continuous and --stream together are refused; every binary
// answers --version.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "support/pg.h"
#include "support/process.h"
#include "support/progress.h"
#include "support/rabbit.h"
#include "support/sim.h"

namespace backstop::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// A process expected to stop by itself: waits (a deadline of `stall`, it has
// nothing else to show) and kills it if it is still running, so that a binary
// that would go on forever fails the test instead of hanging it.
ProcessResult exits_by_itself(Process& process, std::chrono::milliseconds stall = 30s) {
  const bool exited = wait_until({.done = [&] { return !process.running(); }, .stall = stall});
  if (!exited) process.kill(SIGKILL);
  ProcessResult r = process.wait();
  if (!exited) ADD_FAILURE() << "still running after " << stall.count() << " ms; stderr:\n" << r.err.substr(0, 3000);
  return r;
}

std::string unreachable_url() { return "http://127.0.0.1:" + std::to_string(free_port()); }

TEST(ExitCodes, EveryBinaryPrintsItsVersionAndExitsZero) {
  for (const std::string name :
       {"migrate", "backfill", "stop-monitor", "trailing-stop", "outbox-drain", "controller", "exchange-sim"}) {
    const ProcessResult r = run({binary(name), "--version"});
    EXPECT_EQ(r.exit_code, 0) << name << "\n" << r.err;
    EXPECT_TRUE(std::regex_search(r.out, std::regex("^" + name + " [0-9]+\\.[0-9]+\\.[0-9]+")))
        << name << " printed: " << r.out;
  }
}

TEST(ExitCodes, MigrateTakesItsOptionsAfterTheSubcommand) {
  const TestDatabase db;
  const ProcessResult status = run({binary("migrate"), "status", "--json", "--database-url", db.url()});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  ASSERT_TRUE(json::accept(status.out)) << status.out;
  const json list = json::parse(status.out);
  ASSERT_TRUE(list.is_array());
  ASSERT_FALSE(list.empty());
  EXPECT_EQ(list[0].at("state"), "pending");
  // A subcommand's own option and a parent option mixed after it.
  EXPECT_EQ(run({binary("migrate"), "up", "--target", "2", "--json", "--database-url", db.url()}).exit_code, 0);
  EXPECT_EQ(db.scalar("SELECT max(version) FROM backstop_schema_migrations"), "2");
}

TEST(ExitCodes, MisspelledMigrateSubcommandNamesTheValidOnesAndIsExitTwo) {
  const TestDatabase db;
  for (const std::vector<std::string>& args : {std::vector<std::string>{"stauts"}, std::vector<std::string>{}}) {
    std::vector<std::string> argv = {binary("migrate"), "--database-url", db.url()};
    argv.insert(argv.end(), args.begin(), args.end());
    const ProcessResult r = run(argv);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    if (!args.empty()) {
      EXPECT_NE(r.err.find("'stauts'"), std::string::npos) << r.err;
    }
    for (const char* valid : {"up", "down", "status", "plan", "verify", "repair", "replay"}) {
      EXPECT_NE(r.err.find(std::string(valid)), std::string::npos) << valid << " not named in:\n" << r.err;
    }
    EXPECT_NE(r.err.find("up, down, status, plan, verify, repair, replay"), std::string::npos) << r.err;
  }
}

TEST(ExitCodes, ContinuousAndStreamTogetherAreRefused) {
  TestDatabase db;
  db.migrate();
  for (const std::string name : {"stop-monitor", "trailing-stop"}) {
    Process process({binary(name), "--database-url", db.url(), "--dry-run", "--continuous", "--stream",
                     "--exchange-url", unreachable_url(), "--stream-url", "ws://127.0.0.1:1"});
    const ProcessResult r = exits_by_itself(process);
    EXPECT_EQ(r.exit_code, 2) << name << "\n" << r.err.substr(0, 2000);
    EXPECT_NE(r.err.find("--continuous"), std::string::npos) << name << "\n" << r.err.substr(0, 2000);
    EXPECT_NE(r.err.find("--stream"), std::string::npos) << name << "\n" << r.err.substr(0, 2000);
  }
}

// Every binary that works on the schema refuses a database without it, before
// doing anything, with exit 4 and the command that fixes it; the exchange and
// the broker are there (or not) and do not change the answer.
TEST(ExitCodes, UnmigratedDatabaseIsExitFourAndSaysRunMigrateUp) {
  const TestDatabase db;
  const SimServer sim;
  const std::vector<std::vector<std::string>> commands = {
      {binary("stop-monitor")},
      {binary("stop-monitor"), "--continuous", "--interval", "0.05"},
      {binary("trailing-stop")},
      {binary("outbox-drain"), "--once", "--amqp-url", "amqp://guest:guest@127.0.0.1:" + std::to_string(free_port())},
      {binary("outbox-drain"), "--list-parked"},
      {binary("backfill"), "--dry-run"},
      {binary("migrate"), "replay"},
  };
  for (std::vector<std::string> argv : commands) {
    argv.insert(argv.end(), {"--database-url", db.url(), "--log-format", "text"});
    Process process(argv, sim.env());
    const ProcessResult r = exits_by_itself(process);
    const std::string command = argv[0].substr(argv[0].rfind('/') + 1) + (argv.size() > 3 ? " " + argv[1] : "");
    EXPECT_EQ(r.exit_code, 4) << command << "\n" << r.err.substr(0, 2000);
    EXPECT_NE(r.err.find(R"(run "migrate up")"), std::string::npos) << command << "\n" << r.err.substr(0, 2000);
  }
}

// Half way: the binary names what is missing.
TEST(ExitCodes, PartlyMigratedDatabaseIsExitFourAndNamesThePendingMigration) {
  const TestDatabase db;
  const SimServer sim;
  ASSERT_EQ(run({binary("migrate"), "--database-url", db.url(), "up", "--target", "3"}).exit_code, 0);
  const ProcessResult r = run({binary("stop-monitor"), "--database-url", db.url(), "--log-format", "text"}, sim.env());
  EXPECT_EQ(r.exit_code, 4) << r.err.substr(0, 2000);
  EXPECT_NE(r.err.find("0004_operation_scan_indexes"), std::string::npos) << r.err.substr(0, 2000);
  EXPECT_NE(r.err.find(R"(run "migrate up")"), std::string::npos) << r.err.substr(0, 2000);
}

// PostgreSQL answers and refuses what it was given (a wrong password, an
// unknown role or database) or libpq cannot parse the URL: no retry changes
// that, so it is exit 2 at once, also for a continuous pass loop, and the
// message does not carry the password. Unreachable stays 3 (retry later).
// The role checks its password by pg_hba.conf (scripts/lib.sh pg_start).
TEST(ExitCodes, ADatabaseThatRefusesTheLoginIsExitTwoAndOneThatIsDownIsThree) {
  const TestDatabase db;
  db.exec(
      "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'backstop_password_check') THEN "
      "CREATE ROLE backstop_password_check LOGIN PASSWORD 'the-right-one'; END IF; END $$");
  const SimServer sim;
  const std::vector<std::pair<std::string, std::string>> refused = {
      {db.url() + " user=backstop_password_check password=wr0ng", "password authentication failed"},
      {db.url() + " user=no_such_role_here", "no_such_role_here"},
      {db.url() + " dbname=no_such_database_here", "no_such_database_here"},
      {"postgresql://127.0.0.1:notaport/x", "invalid"},
  };
  for (const auto& [url, says] : refused) {
    for (const std::vector<std::string>& mode :
         {std::vector<std::string>{}, std::vector<std::string>{"--continuous", "--interval", "0.05"}}) {
      std::vector<std::string> argv = {binary("stop-monitor"), "--database-url", url, "--log-format", "text"};
      argv.insert(argv.end(), mode.begin(), mode.end());
      Process monitor(argv, sim.env());
      const ProcessResult r = exits_by_itself(monitor);
      EXPECT_EQ(r.exit_code, 2) << says << "\n" << r.err.substr(0, 2000);
      EXPECT_NE(r.err.find(says), std::string::npos) << r.err.substr(0, 2000);
      EXPECT_EQ(r.err.find("wr0ng"), std::string::npos) << r.err.substr(0, 2000);
    }
  }
  const ProcessResult down = run(
      {binary("stop-monitor"), "--database-url",
       "host=127.0.0.1 port=" + std::to_string(free_port()) + " dbname=x connect_timeout=5", "--log-format", "text"},
      sim.env());
  EXPECT_EQ(down.exit_code, 3) << down.err.substr(0, 2000);
}

class BrokerConfigurationTest : public ::testing::Test {
 protected:
  void SetUp() override { db.migrate(); }

  std::vector<std::string> drain(const std::string& amqp_url, const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> argv = {
        binary("outbox-drain"), "--database-url", db.url(), "--amqp-url", amqp_url, "--log-format", "json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  TestDatabase db;
  RabbitNode rabbit;
};

// The broker answers, and refuses the login: no retry can change that, so a
// continuous drainer (a Deployment) stops at once with exit 2 and says why,
// without the password.
TEST_F(BrokerConfigurationTest, WrongPasswordStopsEvenAContinuousDrainerWithExitTwo) {
  const std::string port = std::to_string(rabbit.port());
  for (const auto& [url, env] : std::vector<std::pair<std::string, Env>>{
           {"amqp://guest:wr0ng@127.0.0.1:" + port + "/", {}}, {rabbit.url(), {{"BACKSTOP_AMQP_PASSWORD", "wr0ng"}}}}) {
    Process drainer(drain(url, {"--poll-interval-ms", "20"}), env);
    const ProcessResult r = exits_by_itself(drainer);
    EXPECT_EQ(r.exit_code, 2) << url << "\n" << r.err.substr(0, 3000);
    EXPECT_NE(r.err.find("ACCESS_REFUSED"), std::string::npos) << r.err.substr(0, 3000);
    EXPECT_NE(r.err.find("password"), std::string::npos) << r.err.substr(0, 3000);
    EXPECT_EQ(r.err.find("wr0ng"), std::string::npos) << r.err.substr(0, 3000);
  }
}

TEST_F(BrokerConfigurationTest, MalformedAmqpUrlIsExitTwoContinuousOrOnce) {
  for (const std::string& url : {std::string("amqp://guest:guest@127.0.0.1:notaport/"), std::string("rabbit://x")}) {
    for (const std::vector<std::string>& mode : {std::vector<std::string>{}, std::vector<std::string>{"--once"}}) {
      Process drainer(drain(url, mode));
      const ProcessResult r = exits_by_itself(drainer);
      EXPECT_EQ(r.exit_code, 2) << url << "\n" << r.err.substr(0, 3000);
      EXPECT_NE(r.err.find("invalid AMQP URL"), std::string::npos) << r.err.substr(0, 3000);
    }
  }
}

}  // namespace
}  // namespace backstop::testing
