// PostgreSQL access shared by the store: connecting (with the failure mapped to
// a DependencyError that never shows the password), Decimal conversions for
// libpqxx 6, and small helpers for NULL-able columns and array parameters.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/decimal.h"
#include "runtime/exit_code.h"

namespace pqxx {
template <>
struct string_traits<backstop::core::Decimal> {
  static constexpr const char* name() noexcept { return "backstop::core::Decimal"; }
  static constexpr bool has_null() noexcept { return false; }
  static bool is_null(const backstop::core::Decimal&) { return false; }
  [[noreturn]] static backstop::core::Decimal null() { internal::throw_null_conversion(name()); }
  static void from_string(const char text[], backstop::core::Decimal& value) {
    value = backstop::core::Decimal::parse(text);
  }
  static std::string to_string(const backstop::core::Decimal& value) { return value.to_string(); }
};
}  // namespace pqxx

namespace backstop::store {

// Opens a connection (empty url: libpq's PG* environment). Sessions run in UTC
// so timestamps print identically everywhere. Throws runtime::UsageError when
// the server or libpq refuses what it was given (a wrong password, an unknown
// role or database, a malformed URL: exit 2), runtime::DependencyError when it
// cannot be reached (exit 3).
std::unique_ptr<pqxx::connection> connect(const std::string& url, std::string_view application_name);
// Whether libpq's connection error is such a refusal.
[[nodiscard]] bool refused_configuration(std::string_view reason);

// NULL-aware reads.
std::optional<core::Decimal> decimal_or_null(const pqxx::field& field);
std::optional<std::string> text_or_null(const pqxx::field& field);

// A PostgreSQL array literal ('{...}') for set-based statements with
// unnest($1::type[]): every element quoted and escaped, nullopt as NULL.
class ArrayLiteral {
 public:
  void add(std::string_view element);
  void add(const std::string& element) { add(std::string_view(element)); }
  void add(const char* element) { add(std::string_view(element)); }
  void add(const std::optional<std::string>& element);
  void add(std::int64_t element);
  void add(const std::optional<core::Decimal>& element);
  void add_null();
  [[nodiscard]] std::string str() const { return text_ + "}"; }
  [[nodiscard]] std::size_t size() const { return size_; }

 private:
  void separator();
  std::string text_ = "{";
  std::size_t size_ = 0;
};

// Runs `sql` as the named prepared statement of the transaction's connection:
// PostgreSQL plans it once per connection (a generic plan, see connect())
// instead of on every call. The hot statements of a pass plan in 1-2 ms each,
// more than they take to run.
template <typename... Args>
pqxx::result exec_prepared(pqxx::transaction_base& tx, const std::string& name, const std::string& sql,
                           Args&&... args) {
  tx.conn().prepare(name, sql);  // registers once; the same text again is a no-op
  return tx.exec_prepared(name, std::forward<Args>(args)...);
}

// SQLSTATE helpers for classifying errors.
inline constexpr std::string_view kUniqueViolation = "23505";
inline constexpr std::string_view kLockNotAvailable = "55P03";
inline constexpr std::string_view kSerializationFailure = "40001";
inline constexpr std::string_view kDeadlockDetected = "40P01";

// The database went away under us (not a fault of the work): the connection
// broke, a COMMIT's outcome is unknown, the server is shutting down or
// refuses connections now (SQLSTATE class 08, 57P01-57P03). The caller stops
// and a later run resumes from what the database holds.
[[nodiscard]] bool is_lost_connection(const std::exception& e);

// Runs `body`; a lost connection leaving it becomes a runtime::DependencyError
// (exit 3, "retry later"). The one place that maps it: every binary's main
// goes through app::run_guarded, which calls this.
runtime::ExitCode run_with_database(const std::function<runtime::ExitCode()>& body);

}  // namespace backstop::store
