// The schedule grammar of a Kubernetes CronJob (robfig/cron's standard parser,
// which the API server validates with): five fields, minute hour day-of-month
// month day-of-week, each a comma-separated list of `*`, `?`, N or N-M, with an
// optional /STEP; month and day-of-week also take names (JAN, MON); or one of
// @yearly @annually @monthly @weekly @daily @midnight @hourly @every DURATION.
// The CRD's pattern only counts the fields: `61 * * * *` passes it, and the
// CronJob's create then fails with 422. The controller checks here first.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace backstop::controller {

// What is wrong with `schedule` (as the API server would say it), or nothing.
std::optional<std::string> cron_schedule_error(std::string_view schedule);

}  // namespace backstop::controller
