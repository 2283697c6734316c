// Structured logging for every binary: JSON lines on stderr when stderr is not
// a terminal (Kubernetes), human text on a terminal. Fields such as tenant,
// operation and event travel as key/value pairs, never formatted into the text.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace backstop::log {

enum class Format { kAuto, kJson, kText };

// Throws runtime::UsageError for an unknown format or level name.
Format parse_format(std::string_view text);
void init(std::string_view program, Format format, std::string_view level);

using Value = std::variant<std::string, std::int64_t, bool>;
struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(std::string(v)) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string(v)) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, std::int64_t v) : key(k), value(v) {}
  Field(std::string_view k, int v) : key(k), value(std::int64_t{v}) {}
  Field(std::string_view k, std::size_t v) : key(k), value(static_cast<std::int64_t>(v)) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
  std::string key;
  Value value;
};
using Fields = std::initializer_list<Field>;

void debug(std::string_view message, Fields fields = {});
void info(std::string_view message, Fields fields = {});
void warn(std::string_view message, Fields fields = {});
void error(std::string_view message, Fields fields = {});

// The line a record becomes in JSON mode (exposed for tests).
std::string format_json(std::string_view timestamp, std::string_view level, std::string_view logger,
                        std::string_view message, Fields fields);

// Replaces the password in a libpq URL or key=value connection string by "***".
std::string redact_secrets(std::string_view connection_string);

}  // namespace backstop::log
