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
#include <optional>
#include <regex>
#include <span>
#include <utility>

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

std::string format_json_line(std::string_view timestamp, std::string_view level, std::string_view logger,
                             std::string_view message, std::span<const Field> fields) {
  nlohmann::ordered_json line;
  line["ts"] = timestamp;
  line["level"] = level;
  line["logger"] = logger;
  line["msg"] = message;
  for (const Field& field : fields) {
    // A field never replaces the line's own keys (a "level" field once turned
    // an info line's level into "93100"): it is kept as "field.<key>".
    const bool reserved = field.key == "ts" || field.key == "level" || field.key == "logger" || field.key == "msg";
    const std::string key = reserved ? "field." + std::string(field.key) : std::string(field.key);
    std::visit([&](const auto& v) { line[key] = v; }, field.value);
  }
  // Invalid UTF-8 in a message (e.g. from a server error) must not lose the line.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void emit(spdlog::level::level_enum level, std::string_view message, std::span<const Field> fields) {
  State& s = state();
  if (!s.logger) init("backstop", Format::kAuto, "info");
  if (!s.logger->should_log(level)) return;
  if (s.json) {
    const auto name = spdlog::level::to_string_view(level);
    s.logger->log(level, "{}",
                  format_json_line(utc_now(), std::string_view(name.data(), name.size()), s.program, message, fields));
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
    s.logger =
        std::make_shared<spdlog::logger>(std::string(program), std::make_shared<spdlog::sinks::stderr_sink_mt>());
    s.logger->set_pattern("%v");
  } else {
    s.logger =
        std::make_shared<spdlog::logger>(std::string(program), std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    s.logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %v", spdlog::pattern_time_type::utc);
  }
  s.logger->set_level(parsed);
  s.logger->flush_on(spdlog::level::trace);
}

std::string format_json(std::string_view timestamp, std::string_view level, std::string_view logger,
                        std::string_view message, Fields fields) {
  return format_json_line(timestamp, level, logger, message, fields);
}

void debug(std::string_view message, Fields fields) { emit(spdlog::level::debug, message, fields); }
void info(std::string_view message, Fields fields) { emit(spdlog::level::info, message, fields); }
void info(std::string_view message, const std::vector<Field>& fields) { emit(spdlog::level::info, message, fields); }
void warn(std::string_view message, Fields fields) { emit(spdlog::level::warn, message, fields); }
void error(std::string_view message, Fields fields) { emit(spdlog::level::err, message, fields); }

namespace {

// Where the password of a URL `scheme://user:password@host...` is, if it has
// one. The user ends at the first ':', '/', '@' or '?'; the password runs from
// there to the LAST '@' of the URL, because a password may hold '@' (and '/',
// '?', ...) unencoded: "postgresql://u:p@ss@db/x" has the password "p@ss".
// A URL with an '@' in its query string may then lose more than its
// password in logs; never a part of the password.
std::optional<std::pair<std::size_t, std::size_t>> url_password(std::string_view url) {
  static const std::regex scheme(R"(^[a-zA-Z][a-zA-Z0-9+.-]*://)");
  std::match_results<std::string_view::const_iterator> match;
  if (!std::regex_search(url.begin(), url.end(), match, scheme)) return std::nullopt;
  const std::size_t start = static_cast<std::size_t>(match.length(0));
  const std::size_t colon = url.find_first_of(":/@?", start);
  if (colon == std::string_view::npos || url[colon] != ':') return std::nullopt;
  const std::size_t at = url.rfind('@');
  if (at == std::string_view::npos || at < colon) return std::nullopt;  // host:port, no user info
  return std::make_pair(colon + 1, at);
}

}  // namespace

std::string redact_secrets(std::string_view connection_string) {
  static const std::regex kv_password(R"((password\s*=\s*)('([^'\\]|\\.)*'|\S+))", std::regex::icase);
  static const std::regex query_password(R"(([?&]password=)[^&]*)", std::regex::icase);
  std::string text(connection_string);
  if (text.find("://") != std::string::npos) {
    if (const auto password = url_password(text)) {
      text.replace(password->first, password->second - password->first, "***");
    }
    return std::regex_replace(text, query_password, "$1***");
  }
  return std::regex_replace(text, kv_password, "$1***");
}

std::string redact_secrets_in(std::string_view message, std::string_view connection_string) {
  std::string text(message);
  const auto password = url_password(connection_string);
  if (!password) return text;
  const std::string secret(connection_string.substr(password->first, password->second - password->first));
  if (secret.find_first_of("@/") != std::string::npos) {
    // libpq ends the user info at the first '@' or '/' and quotes what follows
    // as the host name ("could not translate host name "ss@db""): a piece of
    // the password. Its message is withheld, the cause named instead.
    return "the URL's password holds '@' or '/', which end the user info for libpq: percent-encode them "
           "('@' as %40, '/' as %2F)";
  }
  for (std::size_t at = 0; !secret.empty() && (at = text.find(secret, at)) != std::string::npos;) {
    text.replace(at, secret.size(), "***");
    at += 3;
  }
  return text;
}

}  // namespace backstop::log
