// stop-monitor --stream: act on every price tick of a WebSocket stream instead
// of once per CronJob run. Ticks are coalesced per symbol (the latest price
// wins). Two threads with their own connections: the claimer evaluates each
// batch of ticks and commits the STOP_TRIGGERED claims at once, so a tick is
// never queued behind the orders of earlier ones; the driver takes the claimed
// exits to the exchange and runs a REST pass every `backstop_interval` (it
// resumes unfinished executions and covers a silent or broken stream). The
// subscription follows the set of symbols that have ACTIVE operations. A stream
// and CronJobs can run at the same time: the execution token makes them agree.
#pragma once

#include <atomic>
#include <chrono>

#include "exchange/price_stream.h"
#include "exits/stop_monitor.h"
#include "feed/price_feed.h"
#include "store/monitor_repository.h"

namespace backstop::exits {

class StreamRunner {
 public:
  // `claimer` and `driver` must use different connections (and exchange clients).
  StreamRunner(StopMonitor& claimer, StopMonitor& driver, store::MonitorRepository& repository,
               exchange::PriceStream& stream, store::ScanFilter filter, feed::StreamOptions options);
  // Runs until `stop` becomes true; returns everything it did.
  PassSummary run(const std::atomic<bool>& stop);

 private:
  StopMonitor& claimer_;
  StopMonitor& driver_;
  store::MonitorRepository& repository_;
  exchange::PriceStream& stream_;
  store::ScanFilter filter_;
  feed::StreamOptions options_;
};

}  // namespace backstop::exits
