// Following a live price stream for the symbols that have ACTIVE operations:
// ticks are coalesced per symbol (the latest price wins) and handed over in
// batches; the subscription follows the set of symbols, and a closed or
// unavailable stream is reopened after a delay; malformed frames the stream
// skipped are logged, rate-limited. Used by stop-monitor --stream (claims) and
// trailing-stop --stream (adjustments).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <vector>

#include "core/quote.h"
#include "core/trigger.h"
#include "exchange/price_stream.h"
#include "store/monitor_repository.h"

namespace backstop::runtime {
class Health;
}

namespace backstop::feed {

struct StreamOptions {
  std::chrono::milliseconds backstop_interval{5000};
  std::chrono::milliseconds reconnect_delay{1000};
  bool book = false;  // @bookTicker (bid/ask) instead of @trade
  // The process's probes (nullptr: none): the loop beats "stream" each time
  // round and reports the stream's state.
  runtime::Health* health = nullptr;
};

// The prices a pass compares, per symbol of `prices` that `filter` lets
// through: what a long's exit meets and what a short's exit meets under
// `source` (symbols missing a book side are left out).
std::vector<store::SymbolPrice> symbol_prices(const core::PriceSnapshot& prices, const store::ScanFilter& filter,
                                              core::PriceSource source);

// When a batch of ticks is from. `priced`: the exchange's trade time of its
// oldest tick (its arrival for book tickers, which carry no time), what
// staleness is judged on, so that a lagging stream counts as stale. `arrived`:
// when its oldest tick was received here, where a claim's latency starts.
struct BatchTimes {
  core::TimePoint priced;
  core::TimePoint arrived;
};

// Runs until `stop`: on_prices gets each batch of ticks with its times;
// every_interval (if set) runs once at the start and then every
// backstop_interval, whether or not the stream is up.
void follow_prices(exchange::PriceStream& stream, store::MonitorRepository& repository, const store::ScanFilter& filter,
                   const StreamOptions& options, const std::atomic<bool>& stop,
                   const std::function<void(const core::PriceSnapshot&, const BatchTimes&)>& on_prices,
                   const std::function<void()>& every_interval = {});

}  // namespace backstop::feed
