#include "kube/work_queue.h"

#include <algorithm>

namespace backstop::kube {

void WorkQueue::enqueue(const std::string& key) {
  if (shutting_down_) return;
  if (processing_.count(key) != 0) {
    dirty_.insert(key);  // after done()
    return;
  }
  if (queued_.insert(key).second) {
    queue_.push_back(key);
    ready_.notify_one();
  }
}

void WorkQueue::add(const std::string& key) {
  std::lock_guard lock(mutex_);
  enqueue(key);
}

void WorkQueue::add_after(const std::string& key, std::chrono::milliseconds delay) {
  std::lock_guard lock(mutex_);
  if (delay.count() <= 0) {
    enqueue(key);
    return;
  }
  delayed_.emplace(Clock::now() + delay, key);
  ready_.notify_one();
}

std::chrono::milliseconds WorkQueue::backoff(const std::string& key) const {
  std::lock_guard lock(mutex_);
  const auto it = failures_.find(key);
  const int n = it == failures_.end() ? 0 : it->second;
  // base x 2^n without overflow: stop doubling once past the cap.
  std::chrono::milliseconds delay = base_;
  for (int i = 0; i < n && delay < max_; ++i) delay *= 2;
  return std::min(delay, max_);
}

void WorkQueue::add_rate_limited(const std::string& key) {
  const auto delay = backoff(key);
  {
    std::lock_guard lock(mutex_);
    ++failures_[key];
  }
  add_after(key, delay);
}

void WorkQueue::forget(const std::string& key) {
  std::lock_guard lock(mutex_);
  failures_.erase(key);
}

int WorkQueue::failures(const std::string& key) const {
  std::lock_guard lock(mutex_);
  const auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

void WorkQueue::promote_due() {
  const auto now = Clock::now();
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    const std::string key = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    enqueue(key);
  }
}

std::optional<std::string> WorkQueue::get(std::chrono::milliseconds wait) {
  std::unique_lock lock(mutex_);
  const auto deadline = Clock::now() + wait;
  for (;;) {
    promote_due();
    if (shutting_down_) return std::nullopt;
    if (!queue_.empty()) {
      std::string key = queue_.front();
      queue_.pop_front();
      queued_.erase(key);
      processing_.insert(key);
      return key;
    }
    auto until = deadline;
    if (!delayed_.empty()) until = std::min(until, delayed_.begin()->first);
    if (Clock::now() >= deadline) return std::nullopt;
    ready_.wait_until(lock, until);
  }
}

void WorkQueue::done(const std::string& key) {
  std::lock_guard lock(mutex_);
  processing_.erase(key);
  if (dirty_.erase(key) != 0) enqueue(key);
}

void WorkQueue::shut_down() {
  std::lock_guard lock(mutex_);
  shutting_down_ = true;
  ready_.notify_all();
}

std::size_t WorkQueue::depth() const {
  std::lock_guard lock(mutex_);
  std::set<std::string> waiting(queued_);
  for (const auto& [when, key] : delayed_) waiting.insert(key);
  return waiting.size();
}

}  // namespace backstop::kube
