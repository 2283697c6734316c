// The controller's work queue, as client-go's rate-limited queue: keys (e.g.
// "namespace/name"), each queued at most once however often it is added, never
// handed to two workers at once (a key added while it is being processed is
// queued again when done()), and retried with a per-key exponential backoff
// (base x 2^failures, capped) until forget() after a success.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace backstop::kube {

class WorkQueue {
 public:
  using Clock = std::chrono::steady_clock;

  WorkQueue(std::chrono::milliseconds base_delay = std::chrono::milliseconds(5),
            std::chrono::milliseconds max_delay = std::chrono::seconds(1000))
      : base_(base_delay), max_(max_delay) {}

  void add(const std::string& key);
  void add_after(const std::string& key, std::chrono::milliseconds delay);
  // Requeues `key` after its next backoff (failures so far) and counts a failure.
  void add_rate_limited(const std::string& key);
  // The delay add_rate_limited would use now.
  [[nodiscard]] std::chrono::milliseconds backoff(const std::string& key) const;
  void forget(const std::string& key);  // a success: its backoff starts over
  [[nodiscard]] int failures(const std::string& key) const;

  // The next key (waits up to `wait`); nullopt on timeout or after shutdown.
  std::optional<std::string> get(std::chrono::milliseconds wait);
  void done(const std::string& key);  // the worker finished `key`
  void shut_down();
  [[nodiscard]] std::size_t depth() const;  // keys ready or waiting for their time

 private:
  void promote_due();                    // delayed keys whose time came, into the ready queue (lock held)
  void enqueue(const std::string& key);  // lock held

  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::string> queue_;
  std::set<std::string> queued_;      // in queue_
  std::set<std::string> processing_;  // handed out, not done
  std::set<std::string> dirty_;       // added while processing
  std::multimap<Clock::time_point, std::string> delayed_;
  std::map<std::string, int> failures_;
  std::chrono::milliseconds base_;
  std::chrono::milliseconds max_;
  bool shutting_down_ = false;
};

}  // namespace backstop::kube
