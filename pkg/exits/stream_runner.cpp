#include "exits/stream_runner.h"

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "runtime/health.h"
#include "runtime/log.h"

namespace backstop::exits {
namespace {

using Clock = std::chrono::steady_clock;
// How often the claimer records what it checked (StopMonitor::coalesce_checkpoints).
constexpr std::chrono::milliseconds kCheckpointEvery{1000};

}  // namespace

// Claimed exits handed from the claimer to the driver thread.
class ExitQueue {
 public:
  void push(std::vector<ClaimedExit> exits) {
    if (exits.empty()) return;
    std::lock_guard lock(mutex_);
    for (auto& e : exits) pending_.push_back(std::move(e));
    ready_.notify_one();
  }
  // Waits until exits arrive or `until`; returns what is there.
  std::vector<ClaimedExit> take(Clock::time_point until) {
    std::unique_lock lock(mutex_);
    ready_.wait_until(lock, until, [&] { return !pending_.empty() || done_; });
    std::vector<ClaimedExit> out;
    out.swap(pending_);
    return out;
  }
  void finish() {
    std::lock_guard lock(mutex_);
    done_ = true;
    ready_.notify_one();
  }
  bool finished() {
    std::lock_guard lock(mutex_);
    return done_ && pending_.empty();
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<ClaimedExit> pending_;
  bool done_ = false;
};

StreamRunner::StreamRunner(StopMonitor& claimer, StopMonitor& driver, store::MonitorRepository& repository,
                           exchange::PriceStream& stream, store::ScanFilter filter, feed::StreamOptions options)
    : claimer_(claimer),
      driver_(driver),
      repository_(repository),
      stream_(stream),
      filter_(std::move(filter)),
      options_(options) {}

PassSummary StreamRunner::run(const std::atomic<bool>& stop) {
  PassSummary claimed_total, driven_total;
  ExitQueue queue;
  // The driver: claimed exits as they come, and a REST pass every interval.
  std::thread driver([&] {
    auto next_backstop = Clock::now();
    while (!queue.finished()) {
      if (options_.health != nullptr) options_.health->beat("driver");
      if (Clock::now() >= next_backstop) {
        bool prices_read = false;
        try {
          const PassSummary pass = driver_.run_pass();
          prices_read = !pass.price_error;
          accumulate(driven_total, pass);
        } catch (const std::exception& e) {
          log::error("backstop pass failed", {{"error", e.what()}});
        }
        if (options_.health != nullptr) options_.health->pass_finished(prices_read);
        next_backstop = Clock::now() + options_.backstop_interval;
      }
      std::vector<ClaimedExit> exits = queue.take(next_backstop);
      if (exits.empty()) continue;
      try {
        driver_.drive_claimed(std::move(exits), driven_total);
      } catch (const std::exception& e) {
        log::error("driving claimed exits failed; the next pass resumes them", {{"error", e.what()}});
      }
    }
  });
  try {
    // A new connection's first statements load the catalog and plan (tens of
    // ms); they are paid here, not by the first tick that crosses a stop.
    claimer_.prepare_claims();
    claimer_.coalesce_checkpoints(kCheckpointEvery);
    feed::follow_prices(stream_, repository_, filter_, options_, stop,
                        [&](const core::PriceSnapshot& snapshot, const feed::BatchTimes& times) {
                          queue.push(claimer_.claim(snapshot, times.priced, claimed_total, times.arrived));
                        });
  } catch (...) {
    queue.finish();
    driver.join();
    throw;
  }
  queue.finish();
  driver.join();
  try {
    claimer_.flush_checkpoints();
  } catch (const std::exception& e) {
    log::warn("could not record the last checkpoints", {{"error", e.what()}});
  }
  accumulate(claimed_total, driven_total);
  claimed_total.malformed_frames = stream_.malformed().frames;
  return claimed_total;
}

}  // namespace backstop::exits
