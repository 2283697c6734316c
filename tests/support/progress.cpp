#include "support/progress.h"

#include <thread>

#include "support/pg.h"

namespace backstop::testing {

::testing::AssertionResult wait_until(const Wait& wait) {
  std::string seen = wait.progress ? wait.progress() : std::string();
  auto moved_at = std::chrono::steady_clock::now();
  while (!wait.done()) {
    std::this_thread::sleep_for(wait.poll);
    const auto now = std::chrono::steady_clock::now();
    if (wait.progress) {
      std::string current = wait.progress();
      if (current != seen) {
        seen = std::move(current);
        moved_at = now;
        continue;
      }
    }
    if (now - moved_at >= wait.stall) {
      if (wait.done()) break;
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - moved_at).count();
      return ::testing::AssertionFailure() << "nothing moved for " << ms << " ms (progress: '" << seen << "')"
                                           << (wait.state ? "; state:\n" + wait.state() : std::string());
    }
  }
  return ::testing::AssertionSuccess();
}

std::function<std::string()> db_progress(const TestDatabase& db, std::string sql) {
  return [&db, sql = std::move(sql)] { return db.scalar(sql); };
}

}  // namespace backstop::testing
