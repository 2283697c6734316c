// The CronJob schedule grammar the controller checks before it creates a
// CronJob (what the API server's 422 would say, caught first).
#include "controller/cron.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <regex>
#include <string>
#include <vector>

namespace backstop::controller {
namespace {

const std::vector<std::string> kAccepted = {"* * * * *",
                                            "*/5 * * * *",
                                            "0 * * * *",
                                            "0,15,30,45 9-17 * * MON-FRI",
                                            "0 0 1 jan,jul *",
                                            "5/10 * ? * *",
                                            "0 12 * * sun",
                                            "59 23 31 12 6",
                                            "1-59/2 0-23/3 1-31 1-12 0-6",
                                            "@hourly",
                                            "@daily",
                                            "@midnight",
                                            "@weekly",
                                            "@monthly",
                                            "@yearly",
                                            "@annually",
                                            "@every 90s",
                                            "@every 1h30m"};

TEST(CronSchedule, AcceptsWhatACronJobAccepts) {
  for (const std::string& s : kAccepted) EXPECT_EQ(cron_schedule_error(s), std::nullopt) << s;
  EXPECT_EQ(cron_schedule_error("  0  *  * * *"), std::nullopt);  // fields split on runs of blanks
}

TEST(CronSchedule, RefusesWhatTheApiServerRefusesAndSaysWhy) {
  const std::pair<const char*, const char*> cases[] = {
      {"61 * * * *", "end of range (61) above maximum (59) in the minute field"},
      {"a b c d e", "failed to parse int from a in the minute field"},
      {"* 24 * * *", "end of range (24) above maximum (23) in the hour field"},
      {"* * 0 * *", "beginning of range (0) below minimum (1) in the day-of-month field"},
      {"* * * 13 *", "end of range (13) above maximum (12) in the month field"},
      {"* * * * 7", "end of range (7) above maximum (6) in the day-of-week field"},
      {"30-10 * * * *", "beginning of range (30) beyond end of range (10) in the minute field"},
      {"*/0 * * * *", "step of range should be a positive number: */0 in the minute field"},
      {"1-2-3 * * * *", "too many hyphens: 1-2-3 in the minute field"},
      {"* * * * * *", "expected exactly 5 fields, found 6"},
      {"* * * *", "expected exactly 5 fields, found 4"},
      {"", "empty spec string"},
      {"@often", "unrecognized descriptor: @often"},
      {"@every soon", "failed to parse duration @every soon"},
      {"TZ=UTC * * * * *", "a time zone in the schedule is not supported (the CronJob's spec.timeZone is)"},
      {"1,,2 * * * *", "failed to parse int from  in the minute field"},
  };
  for (const auto& [schedule, error] : cases) {
    EXPECT_EQ(cron_schedule_error(schedule).value_or("accepted"), error) << schedule;
  }
}

// The CRD's pattern (what the API server checks at apply) takes the schedules
// the grammar takes and refuses those it refuses, but for what a pattern cannot
// see (a range whose ends are the wrong way round), which the controller refuses.
TEST(CronSchedule, TheCrdPatternAgreesWithTheGrammar) {
  const YAML::Node crd = YAML::LoadFile(std::string(BACKSTOP_SOURCE_DIR) + "/crds/stopmonitors.backstop.dev.yaml");
  const YAML::Node spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
  for (const char* job : {"stopMonitor", "trailingStop", "outboxDrain"}) {
    const std::regex pattern(spec[job]["properties"]["schedule"]["pattern"].as<std::string>(), std::regex::ECMAScript);
    for (const std::string& s : kAccepted) EXPECT_TRUE(std::regex_search(s, pattern)) << job << ": " << s;
    for (const char* s : {"61 * * * *", "a b c d e", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 7",
                          "*/0 * * * *", "1-2-3 * * * *", "* * * * * *", "* * * *", "", "@often", "@every soon",
                          "TZ=UTC * * * * *", "1,,2 * * * *", "60 * * * *", "* * 32 * *", "* * * JANUARY *"}) {
      EXPECT_FALSE(std::regex_search(std::string(s), pattern)) << job << ": " << s;
      EXPECT_NE(cron_schedule_error(s), std::nullopt) << s;
    }
  }
}

}  // namespace
}  // namespace backstop::controller
