// The controller's work queue: dedupe, one worker per key, backoff, forget.
#include "kube/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace backstop::kube {
namespace {

using std::chrono::milliseconds;

TEST(WorkQueue, AKeyIsQueuedOnceAndHandedToOneWorkerAtATime) {
  WorkQueue q;
  q.add("ns/a");
  q.add("ns/a");
  q.add("ns/b");
  EXPECT_EQ(q.depth(), 2u);
  EXPECT_EQ(q.get(milliseconds(10)), "ns/a");
  q.add("ns/a");  // changed while being processed: again after done()
  EXPECT_EQ(q.get(milliseconds(10)), "ns/b");
  EXPECT_EQ(q.get(milliseconds(10)), std::nullopt);  // not handed out twice
  q.done("ns/a");
  EXPECT_EQ(q.get(milliseconds(10)), "ns/a");
  q.done("ns/a");
  q.done("ns/b");
  EXPECT_EQ(q.get(milliseconds(10)), std::nullopt);
}

TEST(WorkQueue, ExponentialBackoffPerKeyCappedAndForgotten) {
  WorkQueue q(milliseconds(5), milliseconds(100));
  EXPECT_EQ(q.backoff("k"), milliseconds(5));
  for (int i = 0; i < 10; ++i) {
    q.add_rate_limited("k");
    ASSERT_TRUE(q.get(milliseconds(500)));
    q.done("k");
  }
  EXPECT_EQ(q.failures("k"), 10);
  EXPECT_EQ(q.backoff("k"), milliseconds(100));  // 5 x 2^10 capped
  EXPECT_EQ(q.backoff("other"), milliseconds(5));
  q.forget("k");
  EXPECT_EQ(q.backoff("k"), milliseconds(5));
}

TEST(WorkQueue, DelayedKeysWaitForTheirTime) {
  WorkQueue q;
  const auto start = WorkQueue::Clock::now();
  q.add_after("later", milliseconds(80));
  EXPECT_EQ(q.depth(), 1u);
  EXPECT_EQ(q.get(milliseconds(10)), std::nullopt);
  EXPECT_EQ(q.get(milliseconds(1000)), "later");
  EXPECT_GE(WorkQueue::Clock::now() - start, milliseconds(80));
}

TEST(WorkQueue, ShutDownWakesWaitingWorkers) {
  WorkQueue q;
  std::atomic<bool> returned{false};
  std::thread worker([&] {
    EXPECT_EQ(q.get(milliseconds(10000)), std::nullopt);
    returned = true;
  });
  std::this_thread::sleep_for(milliseconds(50));
  q.shut_down();
  worker.join();
  EXPECT_TRUE(returned);
  q.add("x");
  EXPECT_EQ(q.get(milliseconds(10)), std::nullopt);  // nothing after shutdown
}

TEST(WorkQueue, ManyWorkersNeverShareAKey) {
  WorkQueue q;
  std::mutex m;
  std::set<std::string> busy;
  std::atomic<int> processed{0}, overlaps{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      while (auto key = q.get(milliseconds(200))) {
        {
          std::lock_guard lock(m);
          if (!busy.insert(*key).second) ++overlaps;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        {
          std::lock_guard lock(m);
          busy.erase(*key);
        }
        ++processed;
        q.done(*key);
      }
    });
  }
  for (int i = 0; i < 2000; ++i) q.add("key-" + std::to_string(i % 10));
  for (auto& t : workers) t.join();
  EXPECT_EQ(overlaps, 0);
  EXPECT_GE(processed, 10);
}

}  // namespace
}  // namespace backstop::kube
