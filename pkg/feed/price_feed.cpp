#include "feed/price_feed.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "runtime/log.h"

namespace backstop::feed {
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
    // A price is as old as the trade it reports (the exchange's trade time), not
    // as its arrival: a lagging stream must count as stale. Book tickers carry
    // no time; they are dated by their arrival.
    auto at = std::chrono::system_clock::now();
    if (tick.event_time_ms > 0) {
      at = std::min(at, std::chrono::system_clock::time_point(std::chrono::milliseconds(tick.event_time_ms)));
    }
    if (!oldest_ || at < *oldest_) oldest_ = at;
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

std::vector<store::SymbolPrice> symbol_prices(const exchange::PriceSnapshot& prices, const store::ScanFilter& filter,
                                              core::PriceSource source) {
  std::vector<store::SymbolPrice> result;
  for (const auto& [symbol, quote] : prices) {
    if (!filter.symbols.empty() &&
        std::find(filter.symbols.begin(), filter.symbols.end(), symbol) == filter.symbols.end()) {
      continue;
    }
    const core::Quote q{quote.last, quote.bid, quote.ask};
    const auto long_exit = core::decisive_price(q, core::Side::kBuy, source);
    const auto short_exit = core::decisive_price(q, core::Side::kSell, source);
    if (!long_exit || !short_exit) continue;  // book side missing: nothing to compare
    result.push_back({symbol, *long_exit, *short_exit});
  }
  return result;
}

void follow_prices(exchange::PriceStream& stream, store::MonitorRepository& repository,
                   const store::ScanFilter& filter, const StreamOptions& options, const std::atomic<bool>& stop,
                   const std::function<void(const exchange::PriceSnapshot&, core::TimePoint)>& on_prices,
                   const std::function<void()>& every_interval) {
  auto next_interval = Clock::now();
  auto tick_interval = [&] {
    if (!every_interval || Clock::now() < next_interval) return;
    try {
      every_interval();
    } catch (const std::exception& e) {
      log::error("backstop pass failed", {{"error", e.what()}});
    }
    next_interval = Clock::now() + options.backstop_interval;
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
      sleep_until_stop(options.backstop_interval);
      continue;
    }
    TickBox box;
    try {
      stream.open(
          symbols, options.book, [&box](exchange::binance::StreamTick tick) { box.put(tick); },
          [&box](std::string reason) { box.closed(reason); });
    } catch (const std::exception& e) {
      log::warn("price stream unavailable; relying on REST passes", {{"error", e.what()}});
      sleep_until_stop(options.reconnect_delay);
      continue;
    }
    log::info("price stream open", {{"symbols", symbols.size()}});
    auto next_refresh = Clock::now() + options.backstop_interval;
    std::string reason;
    while (!stop && !box.is_closed(reason)) {
      exchange::PriceSnapshot snapshot;
      std::chrono::system_clock::time_point received;
      if (box.take(Clock::now() + std::chrono::milliseconds(100), snapshot, received)) on_prices(snapshot, received);
      tick_interval();
      if (Clock::now() >= next_refresh) {
        next_refresh = Clock::now() + options.backstop_interval;
        if (repository.active_symbols(filter) != symbols) break;  // resubscribe to the new set
      }
    }
    stream.close();
    if (box.is_closed(reason)) {
      log::warn("price stream closed; reconnecting", {{"reason", reason}});
      sleep_until_stop(options.reconnect_delay);
    }
  }
}

}  // namespace backstop::feed
