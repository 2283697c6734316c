// stop-monitor --stream: act on every price tick of a WebSocket stream instead
// of once per CronJob run. Ticks are coalesced per symbol (the latest price
// wins) and evaluated on the monitor's thread; a REST pass every
// `backstop_interval` still runs (it resumes unfinished executions and covers a
// silent or broken stream), and the subscription follows the set of symbols
// that have ACTIVE operations. The stream and a CronJob can run at the same
// time: the execution token makes them agree on each exit.
#pragma once

#include <atomic>
#include <chrono>

#include "exchange/price_stream.h"
#include "monitor/stop_monitor.h"
#include "store/monitor_repository.h"

namespace backstop::monitor {

struct StreamOptions {
  std::chrono::milliseconds backstop_interval{5000};
  std::chrono::milliseconds reconnect_delay{1000};
  bool book = false;  // @bookTicker (bid/ask) instead of @trade
};

class StreamRunner {
 public:
  StreamRunner(StopMonitor& monitor, store::MonitorRepository& repository, exchange::PriceStream& stream,
               store::ScanFilter filter, StreamOptions options);
  // Runs until `stop` becomes true; returns everything it did.
  PassSummary run(const std::atomic<bool>& stop);

 private:
  StopMonitor& monitor_;
  store::MonitorRepository& repository_;
  exchange::PriceStream& stream_;
  store::ScanFilter filter_;
  StreamOptions options_;
};

}  // namespace backstop::monitor
