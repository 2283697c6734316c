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
#include <vector>

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
// Fields put together at run time (e.g. a pass summary's figures).
void info(std::string_view message, const std::vector<Field>& fields);
void warn(std::string_view message, Fields fields = {});
void error(std::string_view message, Fields fields = {});

// The line a record becomes in JSON mode (exposed for tests).
std::string format_json(std::string_view timestamp, std::string_view level, std::string_view logger,
                        std::string_view message, Fields fields);

// Replaces the password in a URL (libpq's, amqp://) or a libpq key=value
// connection string by "***". A URL's password runs to the last '@', so one
// holding an unencoded '@' ("postgresql://u:p@ss@db/x") shows no part of it.
std::string redact_secrets(std::string_view connection_string);
// An error message about connecting with `connection_string` (libpq's)
// without its URL password or any piece of it: a password holding '@' or '/'
// is cut there by libpq, which then quotes the rest as the host name; such a
// message is replaced by what to do about it.
std::string redact_secrets_in(std::string_view message, std::string_view connection_string);

}  // namespace backstop::log
