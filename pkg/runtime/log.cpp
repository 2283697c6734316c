#include "runtime/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>

#include "runtime/exit_code.h"

namespace backstop::log {
namespace {

struct State {
  bool json = false;
  std::string program = "backstop";
  std::shared_ptr<spdlog::logger> logger;
};

State& state() {
  static State instance;
  return instance;
}

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[40];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buffer, static_cast<int>(ms));
  return out;
}

void emit(spdlog::level::level_enum level, std::string_view message, Fields fields) {
  State& s = state();
  if (!s.logger) init("backstop", Format::kAuto, "info");
  if (!s.logger->should_log(level)) return;
  if (s.json) {
    const auto name = spdlog::level::to_string_view(level);
    s.logger->log(level, "{}",
                  format_json(utc_now(), std::string_view(name.data(), name.size()), s.program, message, fields));
    return;
  }
  std::string line(message);
  for (const Field& field : fields) {
    line += ' ';
    line += field.key;
    line += '=';
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>) {
            line += v.find(' ') == std::string::npos ? v : nlohmann::json(v).dump();
          } else if constexpr (std::is_same_v<T, bool>) {
            line += v ? "true" : "false";
          } else {
            line += std::to_string(v);
          }
        },
        field.value);
  }
  s.logger->log(level, "{}", line);
}

}  // namespace

Format parse_format(std::string_view text) {
  if (text == "auto") return Format::kAuto;
  if (text == "json") return Format::kJson;
  if (text == "text") return Format::kText;
  throw runtime::UsageError("unknown log format '" + std::string(text) + "' (expected auto, json or text)");
}

void init(std::string_view program, Format format, std::string_view level) {
  State& s = state();
  s.program = std::string(program);
  s.json = format == Format::kJson || (format == Format::kAuto && isatty(STDERR_FILENO) == 0);
  const auto parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") {
    throw runtime::UsageError("unknown log level '" + std::string(level) +
                              "' (expected trace, debug, info, warn, error, critical or off)");
  }
  if (s.json) {
    s.logger = std::make_shared<spdlog::logger>(std::string(program),
                                                std::make_shared<spdlog::sinks::stderr_sink_mt>());
    s.logger->set_pattern("%v");
  } else {
    s.logger = std::make_shared<spdlog::logger>(std::string(program),
                                                std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    s.logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %v", spdlog::pattern_time_type::utc);
  }
  s.logger->set_level(parsed);
  s.logger->flush_on(spdlog::level::trace);
}

std::string format_json(std::string_view timestamp, std::string_view level, std::string_view logger,
                        std::string_view message, Fields fields) {
  nlohmann::ordered_json line;
  line["ts"] = timestamp;
  line["level"] = level;
  line["logger"] = logger;
  line["msg"] = message;
  for (const Field& field : fields) {
    std::visit([&](const auto& v) { line[field.key] = v; }, field.value);
  }
  // Invalid UTF-8 in a message (e.g. from a server error) must not lose the line.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void debug(std::string_view message, Fields fields) { emit(spdlog::level::debug, message, fields); }
void info(std::string_view message, Fields fields) { emit(spdlog::level::info, message, fields); }
void warn(std::string_view message, Fields fields) { emit(spdlog::level::warn, message, fields); }
void error(std::string_view message, Fields fields) { emit(spdlog::level::err, message, fields); }

std::string redact_secrets(std::string_view connection_string) {
  static const std::regex url_password(R"(^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*:)[^@]*@)");
  static const std::regex kv_password(R"((password\s*=\s*)('([^'\\]|\\.)*'|\S+))", std::regex::icase);
  static const std::regex query_password(R"(([?&]password=)[^&]*)", std::regex::icase);
  std::string text(connection_string);
  if (text.find("://") != std::string::npos) {
    text = std::regex_replace(text, url_password, "$1***@");
    return std::regex_replace(text, query_password, "$1***");
  }
  return std::regex_replace(text, kv_password, "$1***");
}

}  // namespace backstop::log
