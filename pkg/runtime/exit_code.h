// Exit codes shared by every Backstop binary (documented in the README), and
// the one place that maps a failure to one of them.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>

namespace backstop::runtime {

enum class ExitCode : int {
  kOk = 0,                     // everything asked was done
  kPartialFailure = 1,         // the run finished but some work failed (e.g. invalid rows)
  kUsage = 2,                  // bad flags, environment or config file
  kDependencyUnavailable = 3,  // PostgreSQL / exchange / broker unreachable
  kNotMigrated = 4,            // the database lacks this binary's migrations: run `migrate up`
};

// Bad flags, environment or configuration, including a dependency's refusal of
// it that no retry can change (a malformed URL, a wrong password): exit 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A dependency could not be reached: exit 3. Retrying later may succeed.
class DependencyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The database's schema is behind this binary (never migrated, a migration
// pending or failed): exit 4. Neither retrying nor a flag fixes it; `migrate up` does.
class NotMigratedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Runs `body`, logs what escaped it and returns the matching exit code.
int run_guarded(const std::function<ExitCode()>& body);

}  // namespace backstop::runtime
