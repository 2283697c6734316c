// Logging format and secret redaction shared by the binaries.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runtime/log.h"

namespace backstop::log {
namespace {

TEST(JsonLog, OneEscapedObjectPerLineWithFields) {
  const std::string line =
      format_json("2026-11-22T21:00:00.000Z", "warning", "backfill", "bad \"row\"\nnext line\t\x01",
                  {{"tenant", 3}, {"operation", std::int64_t{42}}, {"reason", "stop above"}, {"dry_run", true}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["ts"], "2026-11-22T21:00:00.000Z");
  EXPECT_EQ(j["level"], "warning");
  EXPECT_EQ(j["logger"], "backfill");
  EXPECT_EQ(j["msg"], "bad \"row\"\nnext line\t\x01");
  EXPECT_EQ(j["tenant"], 3);
  EXPECT_EQ(j["operation"], 42);
  EXPECT_EQ(j["reason"], "stop above");
  EXPECT_EQ(j["dry_run"], true);
}

// stop-monitor's "stop triggered" line has a "level" field (the stop's): it
// replaced the line's level ("level":"93100"), so a filter on level=error or
// info missed it.
TEST(JsonLog, AFieldNeverReplacesTheLinesOwnKeys) {
  const auto j = nlohmann::json::parse(format_json("t", "info", "stop-monitor", "stop triggered",
                                                   {{"level", "93100"}, {"msg", "m"}, {"ts", 1}, {"logger", "l"}}));
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["msg"], "stop triggered");
  EXPECT_EQ(j["ts"], "t");
  EXPECT_EQ(j["logger"], "stop-monitor");
  EXPECT_EQ(j["field.level"], "93100");
  EXPECT_EQ(j["field.msg"], "m");
}

TEST(JsonLog, InvalidUtf8DoesNotLoseTheLine) {
  const std::string line = format_json("t", "error", "x", "exchange said \xff\xfe", {});
  EXPECT_TRUE(nlohmann::json::accept(line));
  EXPECT_NE(line.find("exchange said"), std::string::npos);
}

TEST(Redaction, PasswordsNeverAppear) {
  EXPECT_EQ(redact_secrets("postgresql://backstop:s3cr3t@db:5432/backstop"),
            "postgresql://backstop:***@db:5432/backstop");
  EXPECT_EQ(redact_secrets("host=db user=backstop password=s3cr3t dbname=x"),
            "host=db user=backstop password=*** dbname=x");
  EXPECT_EQ(redact_secrets("host=db password = 'a b\\' c' dbname=x"), "host=db password = *** dbname=x");
  EXPECT_EQ(redact_secrets("postgresql://db/x?user=a&password=s3cr3t&sslmode=require"),
            "postgresql://db/x?user=a&password=***&sslmode=require");
  EXPECT_EQ(redact_secrets("postgresql://db/x"), "postgresql://db/x");
}

// Issue 10, C.1: an unencoded '@' (or '/') in a URL's password; the password
// runs to the last '@', so no piece of it shows.
TEST(Redaction, APasswordHoldingAnAtSignShowsNoPiece) {
  EXPECT_EQ(redact_secrets("postgresql://u:p@ss@host/db"), "postgresql://u:***@host/db");
  EXPECT_EQ(redact_secrets("postgresql://backstop:a@b@c@db:5432/x?sslmode=require"),
            "postgresql://backstop:***@db:5432/x?sslmode=require");
  EXPECT_EQ(redact_secrets("postgresql://backstop:pa/ss?w@db/x"), "postgresql://backstop:***@db/x");
  EXPECT_EQ(redact_secrets("amqp://guest:p@ss@127.0.0.1:5672/"), "amqp://guest:***@127.0.0.1:5672/");
  EXPECT_EQ(redact_secrets("postgresql://u@db:5432/x"), "postgresql://u@db:5432/x");  // no password
  EXPECT_EQ(redact_secrets("postgresql://db:5432/x"), "postgresql://db:5432/x");
}

}  // namespace
}  // namespace backstop::log
