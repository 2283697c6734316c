#include "controller/cron.h"

#include <array>
#include <cctype>
#include <charconv>
#include <vector>

namespace backstop::controller {
namespace {

struct Field {
  const char* name;
  int min;
  int max;
  std::array<const char*, 12> names;  // names[i] is min + i (empty: none)
};

constexpr std::array<Field, 5> kFields = {{
    {"minute", 0, 59, {}},
    {"hour", 0, 23, {}},
    {"day-of-month", 1, 31, {}},
    {"month", 1, 12, {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
    {"day-of-week", 0, 6, {"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
}};

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t at = text.find(separator, start);
    parts.push_back(text.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return parts;
    start = at + 1;
  }
}

// A number or (month, day-of-week) a name; nothing if it is neither.
std::optional<int> value_of(std::string_view text, const Field& field) {
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error == std::errc() && end == text.data() + text.size() && !text.empty()) return value;
  std::string lower;
  for (const char c : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::size_t i = 0; i < field.names.size(); ++i) {
    if (field.names[i] != nullptr && lower == field.names[i]) return field.min + static_cast<int>(i);
  }
  return std::nullopt;
}

std::optional<std::string> range_error(std::string_view range, const Field& field) {
  const std::string where = std::string(" in the ") + field.name + " field";
  const std::vector<std::string_view> step_parts = split(range, '/');
  if (step_parts.size() > 2) return "too many slashes: " + std::string(range) + where;
  const std::string_view span = step_parts[0];
  int low = field.min;
  int high = field.max;
  if (span != "*" && span != "?") {
    const std::vector<std::string_view> bounds = split(span, '-');
    if (bounds.size() > 2) return "too many hyphens: " + std::string(span) + where;
    const auto first = value_of(bounds[0], field);
    if (!first) return "failed to parse int from " + std::string(bounds[0]) + where;
    low = *first;
    high = low;
    if (bounds.size() == 2) {
      const auto last = value_of(bounds[1], field);
      if (!last) return "failed to parse int from " + std::string(bounds[1]) + where;
      high = *last;
    } else if (step_parts.size() == 2) {
      high = field.max;  // N/STEP: from N to the end
    }
  }
  if (step_parts.size() == 2) {
    int step = 0;
    const std::string_view text = step_parts[1];
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), step);
    if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
      return "failed to parse int from " + std::string(text) + where;
    }
    if (step <= 0) return "step of range should be a positive number: " + std::string(range) + where;
  }
  if (low < field.min) {
    return "beginning of range (" + std::to_string(low) + ") below minimum (" + std::to_string(field.min) + ")" + where;
  }
  if (high > field.max) {
    return "end of range (" + std::to_string(high) + ") above maximum (" + std::to_string(field.max) + ")" + where;
  }
  if (low > high) {
    return "beginning of range (" + std::to_string(low) + ") beyond end of range (" + std::to_string(high) + ")" +
           where;
  }
  return std::nullopt;
}

std::optional<std::string> every_error(std::string_view duration) {
  // Go's time.ParseDuration of positive whole units (what a schedule needs): 90s, 1h30m, 5m.
  if (duration.empty()) return "@every needs a duration";
  std::size_t i = 0;
  while (i < duration.size()) {
    const std::size_t digits = i;
    while (i < duration.size() && std::isdigit(static_cast<unsigned char>(duration[i])) != 0) ++i;
    if (i == digits) return "failed to parse duration @every " + std::string(duration);
    const std::size_t unit = i;
    while (i < duration.size() && std::isalpha(static_cast<unsigned char>(duration[i])) != 0) ++i;
    const std::string_view u = duration.substr(unit, i - unit);
    if (u != "h" && u != "m" && u != "s" && u != "ms" && u != "us" && u != "ns") {
      return "failed to parse duration @every " + std::string(duration);
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> cron_schedule_error(std::string_view schedule) {
  if (schedule.empty()) return "empty spec string";
  if (schedule.front() == '@') {
    for (const char* d : {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}) {
      if (schedule == d) return std::nullopt;
    }
    if (schedule.rfind("@every ", 0) == 0) return every_error(schedule.substr(7));
    return "unrecognized descriptor: " + std::string(schedule);
  }
  if (schedule.rfind("TZ=", 0) == 0 || schedule.rfind("CRON_TZ=", 0) == 0) {
    return "a time zone in the schedule is not supported (the CronJob's spec.timeZone is)";
  }
  std::vector<std::string_view> fields;
  for (const std::string_view f : split(schedule, ' ')) {
    if (!f.empty()) fields.push_back(f);
  }
  if (fields.size() != 5) return "expected exactly 5 fields, found " + std::to_string(fields.size());
  for (std::size_t i = 0; i < fields.size(); ++i) {
    for (const std::string_view range : split(fields[i], ',')) {
      if (auto error = range_error(range, kFields[i])) return error;
    }
  }
  return std::nullopt;
}

}  // namespace backstop::controller
