// The CronJob schedule grammar the controller checks before it creates a
// CronJob (what the API server's 422 would say, caught first).
#include "controller/cron.h"

#include <gtest/gtest.h>

#include <string>

namespace backstop::controller {
namespace {

TEST(CronSchedule, AcceptsWhatACronJobAccepts) {
  for (const char* s :
       {"* * * * *", "*/5 * * * *", "0 * * * *", "0,15,30,45 9-17 * * MON-FRI", "0 0 1 jan,jul *", "5/10 * ? * *",
        "0 12 * * sun", "59 23 31 12 6", "1-59/2 0-23/3 1-31 1-12 0-6", "@hourly", "@daily", "@midnight", "@weekly",
        "@monthly", "@yearly", "@annually", "@every 90s", "@every 1h30m", "  0  *  * * *"}) {
    EXPECT_EQ(cron_schedule_error(s), std::nullopt) << s;
  }
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

}  // namespace
}  // namespace backstop::controller
