#include "store/db.h"

#include "runtime/exit_code.h"
#include "runtime/log.h"

namespace backstop::store {

std::unique_ptr<pqxx::connection> connect(const std::string& url, std::string_view application_name) {
  try {
    auto connection = std::make_unique<pqxx::connection>(url);
    pqxx::nontransaction setup(*connection);
    setup.exec("SET TIME ZONE 'UTC'");
    // Short OLTP statements: JIT compilation costs more than it saves. The
    // trigger scan's estimate over a million rows made PostgreSQL spend 270 ms
    // compiling a query that runs in 19 ms.
    setup.exec("SET jit = off");
    // Prepared statements (exec_prepared) keep one plan per connection: their
    // parameters are arrays and filters whose values do not change the plan.
    setup.exec("SET plan_cache_mode = force_generic_plan");
    setup.exec_params("SELECT set_config('application_name', $1, false)", std::string(application_name));
    return connection;
  } catch (const pqxx::broken_connection& e) {
    std::string reason = log::redact_secrets_in(e.what(), url);
    while (!reason.empty() && (reason.back() == '\n' || reason.back() == ' ')) reason.pop_back();
    const std::string message = "cannot connect to PostgreSQL (" +
                                (url.empty() ? std::string("PG* environment") : log::redact_secrets(url)) +
                                "): " + reason;
    if (refused_configuration(reason)) throw runtime::UsageError(message);
    throw runtime::DependencyError(message);
  }
}

bool refused_configuration(std::string_view reason) {
  // The server (or libpq, parsing the URL) refused what it was given: no retry
  // changes that (exit 2). Unreachable, starting up, too many connections, a
  // name that does not resolve (DNS in a starting cluster): retry later (3).
  static constexpr std::string_view kRefusals[] = {
      "password authentication failed",  // 28P01
      "no password supplied",
      "role \"",      // ... does not exist
      "database \"",  // ... does not exist
      "pg_hba.conf rejects",
      "no pg_hba.conf entry",
      "invalid connection option",
      "missing \"=\" after",
      "invalid URI",
      "invalid percent-encoded token",
      "invalid integer value",
      "invalid port number",
      "invalid sslmode value",
      "unterminated quoted string",
      "unexpected spaces found",
  };
  for (const std::string_view refusal : kRefusals) {
    if (reason.find(refusal) != std::string_view::npos) return true;
  }
  return false;
}

std::optional<core::Decimal> decimal_or_null(const pqxx::field& field) {
  if (field.is_null()) return std::nullopt;
  return core::Decimal::parse(field.c_str());
}

std::optional<std::string> text_or_null(const pqxx::field& field) {
  if (field.is_null()) return std::nullopt;
  return std::string(field.c_str());
}

void ArrayLiteral::separator() {
  if (size_++ > 0) text_ += ',';
}

void ArrayLiteral::add(std::string_view element) {
  separator();
  text_ += '"';
  for (const char c : element) {
    if (c == '"' || c == '\\') text_ += '\\';
    text_ += c;
  }
  text_ += '"';
}

void ArrayLiteral::add(const std::optional<std::string>& element) {
  if (element) {
    add(std::string_view(*element));
  } else {
    add_null();
  }
}

void ArrayLiteral::add(std::int64_t element) {
  separator();
  text_ += std::to_string(element);
}

void ArrayLiteral::add(const std::optional<core::Decimal>& element) {
  if (!element) return add_null();
  separator();
  text_ += element->to_string();
}

void ArrayLiteral::add_null() {
  separator();
  text_ += "NULL";
}

bool is_lost_connection(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) return true;
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) return true;
  if (dynamic_cast<const pqxx::statement_completion_unknown*>(&e) != nullptr) return true;
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const std::string& state = sql->sqlstate();
    return state.rfind("08", 0) == 0 || state == "57P01" || state == "57P02" || state == "57P03";
  }
  return false;
}

runtime::ExitCode run_with_database(const std::function<runtime::ExitCode()>& body) {
  try {
    return body();
  } catch (const runtime::DependencyError&) {
    throw;
  } catch (const std::exception& e) {
    if (is_lost_connection(e))
      throw runtime::DependencyError(std::string("lost the PostgreSQL connection: ") + e.what());
    throw;
  }
}

}  // namespace backstop::store
