#include "runtime/exit_code.h"

#include "runtime/log.h"

namespace backstop::runtime {

int run_guarded(const std::function<ExitCode()>& body) {
  try {
    return static_cast<int>(body());
  } catch (const UsageError& e) {
    log::error(e.what(), {{"exit_code", 2}});
    return static_cast<int>(ExitCode::kUsage);
  } catch (const DependencyError& e) {
    log::error(e.what(), {{"exit_code", 3}});
    return static_cast<int>(ExitCode::kDependencyUnavailable);
  } catch (const NotMigratedError& e) {
    log::error(e.what(), {{"exit_code", 4}});
    return static_cast<int>(ExitCode::kNotMigrated);
  } catch (const std::exception& e) {
    log::error(std::string("failed: ") + e.what(), {{"exit_code", 1}});
    return static_cast<int>(ExitCode::kPartialFailure);
  }
}

}  // namespace backstop::runtime
