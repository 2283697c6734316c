// The tests' own waiting rule (support/progress.h): slow is not stuck.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "support/progress.h"

namespace backstop::testing {
namespace {

using std::chrono::milliseconds;

TEST(WaitUntil, WaitsPastTheStallWhileTheWorkMoves) {
  std::atomic<int> steps{0};
  std::thread worker([&] {  // 6 slow steps of 40 ms: 240 ms in all, far past the 100 ms stall
    for (int i = 0; i < 6; ++i) {
      std::this_thread::sleep_for(milliseconds(40));
      ++steps;
    }
  });
  const ::testing::AssertionResult waited = wait_until({.done = [&] { return steps == 6; },
                                                        .progress = [&] { return std::to_string(steps.load()); },
                                                        .stall = milliseconds(100),
                                                        .poll = milliseconds(5)});
  worker.join();
  EXPECT_TRUE(waited) << waited.message();
}

TEST(WaitUntil, FailsWhenNothingMovesForTheStallAndSaysWhatItSaw) {
  const ::testing::AssertionResult waited = wait_until({.done = [] { return false; },
                                                        .progress = [] { return std::string("3 events"); },
                                                        .state = [] { return std::string("exits: SUBMITTED 2"); },
                                                        .stall = milliseconds(50),
                                                        .poll = milliseconds(5)});
  ASSERT_FALSE(waited);
  EXPECT_NE(std::string(waited.message()).find("nothing moved for"), std::string::npos) << waited.message();
  EXPECT_NE(std::string(waited.message()).find("3 events"), std::string::npos) << waited.message();
  EXPECT_NE(std::string(waited.message()).find("exits: SUBMITTED 2"), std::string::npos) << waited.message();
}

}  // namespace
}  // namespace backstop::testing
