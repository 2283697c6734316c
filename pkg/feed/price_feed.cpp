#include "feed/price_feed.h"

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <thread>

#include "runtime/health.h"
#include "runtime/log.h"

namespace backstop::feed {
namespace {

using Clock = std::chrono::steady_clock;

// At most one warning per this long about malformed stream frames, however many arrive.
constexpr std::chrono::seconds kMalformedLogInterval{10};

// Ticks handed from the stream's thread to the monitor's: latest quote per symbol.
class TickBox {
 public:
  void put(const std::string& symbol, const core::Quote& quote,
           std::optional<std::chrono::system_clock::time_point> traded_at) {
    std::lock_guard lock(mutex_);
    pending_[symbol] = quote;
    // A price is as old as the trade it reports (the exchange's trade time), not
    // as its arrival: a lagging stream must count as stale. Book tickers carry
    // no time; they are dated by their arrival.
    const auto now = std::chrono::system_clock::now();
    const auto priced = traded_at ? std::min(now, *traded_at) : now;
    if (!oldest_ || priced < oldest_->priced) {
      oldest_ = BatchTimes{priced, oldest_ ? std::min(oldest_->arrived, now) : now};
    } else {
      oldest_->arrived = std::min(oldest_->arrived, now);
    }
    ready_.notify_one();
  }
  void closed(const std::string& reason) {
    std::lock_guard lock(mutex_);
    closed_ = true;
    close_reason_ = reason;
    ready_.notify_one();
  }
  // Waits until ticks arrive, the stream closes or `until`.
  bool take(Clock::time_point until, core::PriceSnapshot& snapshot, BatchTimes& times) {
    std::unique_lock lock(mutex_);
    ready_.wait_until(lock, until, [&] { return !pending_.empty() || closed_; });
    if (pending_.empty()) return false;
    snapshot.swap(pending_);
    pending_.clear();
    times = *oldest_;  // the oldest tick of the batch: conservative for staleness and latency
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
  core::PriceSnapshot pending_;
  std::optional<BatchTimes> oldest_;
  bool closed_ = false;
  std::string close_reason_;
};

}  // namespace

std::vector<store::SymbolPrice> symbol_prices(const core::PriceSnapshot& prices, const store::ScanFilter& filter,
                                              core::PriceSource source) {
  std::vector<store::SymbolPrice> result;
  for (const auto& [symbol, quote] : prices) {
    if (!filter.symbols.empty() &&
        std::find(filter.symbols.begin(), filter.symbols.end(), symbol) == filter.symbols.end()) {
      continue;
    }
    const auto long_exit = core::decisive_price(quote, core::Side::kBuy, source);
    const auto short_exit = core::decisive_price(quote, core::Side::kSell, source);
    if (!long_exit || !short_exit) continue;  // book side missing: nothing to compare
    result.push_back({symbol, *long_exit, *short_exit});
  }
  return result;
}

void follow_prices(exchange::PriceStream& stream, store::MonitorRepository& repository, const store::ScanFilter& filter,
                   const StreamOptions& options, const std::atomic<bool>& stop,
                   const std::function<void(const core::PriceSnapshot&, const BatchTimes&)>& on_prices,
                   const std::function<void()>& every_interval) {
  auto next_interval = Clock::now();
  const auto state = [&](const char* what) {
    if (options.health != nullptr) options.health->stream_state(what);
  };
  auto tick_interval = [&] {
    if (options.health != nullptr) options.health->beat("stream");
    if (!every_interval || Clock::now() < next_interval) return;
    try {
      every_interval();
    } catch (const std::exception& e) {
      log::error("backstop pass failed", {{"error", e.what()}});
    }
    next_interval = Clock::now() + options.backstop_interval;
  };
  // The stream counts the frames it skipped as malformed; a warning says how
  // many since the last one, at most every kMalformedLogInterval (a broken
  // feed would otherwise log on every frame).
  std::int64_t malformed_reported = 0;
  auto next_malformed_report = Clock::now();
  auto report_malformed = [&](bool now) {
    if (!now && Clock::now() < next_malformed_report) return;
    const exchange::PriceStream::Malformed malformed = stream.malformed();
    if (malformed.frames == malformed_reported) return;
    log::warn("malformed price stream frames skipped", {{"frames", malformed.frames - malformed_reported},
                                                        {"total", malformed.frames},
                                                        {"last_error", malformed.last_error}});
    malformed_reported = malformed.frames;
    next_malformed_report = Clock::now() + kMalformedLogInterval;
  };
  auto sleep_until_stop = [&](std::chrono::milliseconds duration) {
    const auto until = Clock::now() + duration;
    while (!stop && Clock::now() < until) {
      tick_interval();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
  while (!stop) {
    tick_interval();
    const std::vector<std::string> symbols = repository.active_symbols(filter);
    if (symbols.empty()) {
      state("no active symbols");
      sleep_until_stop(options.backstop_interval);
      continue;
    }
    TickBox box;
    try {
      stream.open(
          symbols, options.book,
          [&box](const std::string& symbol, const core::Quote& quote,
                 std::optional<std::chrono::system_clock::time_point> traded_at) { box.put(symbol, quote, traded_at); },
          [&box](std::string reason) { box.closed(reason); });
    } catch (const std::exception& e) {
      log::warn("price stream unavailable; relying on REST passes", {{"error", e.what()}});
      state("unavailable");
      sleep_until_stop(options.reconnect_delay);
      continue;
    }
    log::info("price stream open", {{"symbols", symbols.size()}});
    state("open");
    auto next_refresh = Clock::now() + options.backstop_interval;
    std::string reason;
    while (!stop && !box.is_closed(reason)) {
      core::PriceSnapshot snapshot;
      BatchTimes times;
      if (box.take(Clock::now() + std::chrono::milliseconds(100), snapshot, times)) on_prices(snapshot, times);
      tick_interval();
      report_malformed(false);
      if (Clock::now() >= next_refresh) {
        next_refresh = Clock::now() + options.backstop_interval;
        if (repository.active_symbols(filter) != symbols) break;  // resubscribe to the new set
      }
    }
    // Closed by the other end or the network, not by the close() below (whose
    // close handler reports a normal closure too).
    const bool lost = box.is_closed(reason);
    stream.close();
    report_malformed(false);
    if (lost) {
      log::warn("price stream closed; reconnecting", {{"reason", reason}});
      state("reconnecting");
      sleep_until_stop(options.reconnect_delay);
    }
  }
  report_malformed(true);
}

}  // namespace backstop::feed
