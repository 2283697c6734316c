// Waiting on progress, not on a total time. A test that gives up after a fixed
// time judges the machine, not the code: under ASan on a busy two-core machine
// a correct build is slow, never stuck. A wait here fails only when what it
// watches has not moved for `stall` (generous), and then prints the state.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>

namespace backstop::testing {

class TestDatabase;

struct Wait {
  // What is waited for.
  std::function<bool()> done;
  // Any text that changes while the work moves (a count of events, a status
  // summary). Without it the wait is a plain deadline of `stall`.
  std::function<std::string()> progress = {};
  // Printed when the wait fails: what an engineer needs to see why.
  std::function<std::string()> state = {};
  std::chrono::milliseconds stall = std::chrono::seconds(60);
  std::chrono::milliseconds poll = std::chrono::milliseconds(20);
};

// Polls until `wait.done()`; a failure says how long nothing moved and the state.
::testing::AssertionResult wait_until(const Wait& wait);

// The first column of `sql`'s first row, as progress (for example a count of events).
std::function<std::string()> db_progress(const TestDatabase& db, std::string sql);

}  // namespace backstop::testing
