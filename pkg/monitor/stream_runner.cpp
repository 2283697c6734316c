#include "monitor/stream_runner.h"

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "runtime/log.h"

namespace backstop::monitor {
namespace {

using Clock = std::chrono::steady_clock;

// Ticks handed from the stream's thread to the monitor's: latest quote per symbol.
class TickBox {
 public:
  void put(const exchange::binance::StreamTick& tick) {
    std::lock_guard lock(mutex_);
    exchange::Quote& q = known_[tick.symbol];
    if (tick.last) q.last = *tick.last;
    if (tick.bid) q.bid = tick.bid;
    if (tick.ask) q.ask = tick.ask;
    if (!tick.last && q.last.is_zero() && tick.bid) q.last = *tick.bid;  // book-only streams
    pending_[tick.symbol] = q;
    if (!oldest_) oldest_ = std::chrono::system_clock::now();
    ready_.notify_one();
  }
  void closed(const std::string& reason) {
    std::lock_guard lock(mutex_);
    closed_ = true;
    close_reason_ = reason;
    ready_.notify_one();
  }
  // Waits until ticks arrive, the stream closes or `until`.
  bool take(Clock::time_point until, exchange::PriceSnapshot& snapshot, std::chrono::system_clock::time_point& received) {
    std::unique_lock lock(mutex_);
    ready_.wait_until(lock, until, [&] { return !pending_.empty() || closed_; });
    if (pending_.empty()) return false;
    snapshot.swap(pending_);
    pending_.clear();
    received = *oldest_;  // the oldest tick of the batch: conservative for staleness and latency
    oldest_.reset();
    return true;
  }
  bool is_closed(std::string& reason) {
    std::lock_guard lock(mutex_);
    reason = close_reason_;
    return closed_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  exchange::PriceSnapshot known_, pending_;
  std::optional<std::chrono::system_clock::time_point> oldest_;
  bool closed_ = false;
  std::string close_reason_;
};

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
                           exchange::PriceStream& stream, store::ScanFilter filter, StreamOptions options)
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
      if (Clock::now() >= next_backstop) {
        try {
          accumulate(driven_total, driver_.run_pass());
        } catch (const std::exception& e) {
          log::error("backstop pass failed", {{"error", e.what()}});
        }
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
  auto sleep_until_stop = [&](std::chrono::milliseconds duration) {
    const auto until = Clock::now() + duration;
    while (!stop && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  };
  try {
    while (!stop) {
      const std::vector<std::string> symbols = repository_.active_symbols(filter_);
      if (symbols.empty()) {
        sleep_until_stop(options_.backstop_interval);
        continue;
      }
      TickBox box;
      try {
        stream_.open(
            symbols, options_.book, [&box](exchange::binance::StreamTick tick) { box.put(tick); },
            [&box](std::string reason) { box.closed(reason); });
      } catch (const std::exception& e) {
        log::warn("price stream unavailable; relying on REST passes", {{"error", e.what()}});
        sleep_until_stop(options_.reconnect_delay);
        continue;
      }
      log::info("price stream open", {{"symbols", symbols.size()}});
      auto next_refresh = Clock::now() + options_.backstop_interval;
      std::string reason;
      while (!stop && !box.is_closed(reason)) {
        exchange::PriceSnapshot snapshot;
        std::chrono::system_clock::time_point received;
        if (box.take(Clock::now() + std::chrono::milliseconds(100), snapshot, received)) {
          queue.push(claimer_.claim(snapshot, received, claimed_total));
        }
        if (Clock::now() >= next_refresh) {
          next_refresh = Clock::now() + options_.backstop_interval;
          if (repository_.active_symbols(filter_) != symbols) break;  // resubscribe to the new set
        }
      }
      stream_.close();
      if (box.is_closed(reason)) {
        log::warn("price stream closed; reconnecting", {{"reason", reason}});
        sleep_until_stop(options_.reconnect_delay);
      }
    }
  } catch (...) {
    queue.finish();
    driver.join();
    throw;
  }
  queue.finish();
  driver.join();
  accumulate(claimed_total, driven_total);
  return claimed_total;
}

}  // namespace backstop::monitor
