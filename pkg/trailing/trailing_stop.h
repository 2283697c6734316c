// One trailing-stop pass (DOMAIN §4):
//   1. a price per symbol (a REST snapshot, or a batch of stream ticks);
//   2. the due ACTIVE operations: those whose wake price the price reached (an
//      index range per symbol), and, on full passes, those whose wake price is
//      not computed yet (new rows, a changed stop or rule);
//   3. per batch, one transaction: lock them (SKIP LOCKED, none with an exit in
//      flight), apply the effective rule (the operation's own, else its
//      tenant's default), append STOP_ADJUSTED with the deterministic token of
//      core::adjustment_token (the event store moves the stop in the same
//      transaction; a token taken before is a duplicate and moves nothing), and
//      write each row's next wake price (or why it cannot trail).
// Only ever tightens (core::trail), never touches a closed operation, and can
// run beside stop-monitor and beside itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/trailing.h"
#include "core/trigger.h"
#include "exchange/exchange.h"
#include "store/monitor_repository.h"
#include "store/trailing_repository.h"
#include "store/unit_of_work.h"

namespace backstop::trailing {

struct TrailingOptions {
  bool dry_run = false;
  core::PriceSource price_source = core::PriceSource::kLast;
  core::EventSource source = core::EventSource::kTrailing;
  store::ScanFilter filter;
  std::chrono::milliseconds max_price_age{30000};
  std::size_t batch_size = 500;  // operations per transaction
};

struct AdjustmentReport {
  std::int64_t operation_id = 0;
  std::int64_t tenant_id = 0;
  std::string symbol;
  std::string side;
  std::string mode;
  std::string old_stop;
  std::string new_stop;
  std::string reason;  // BREAK_EVEN, TRAILING
  std::int64_t step = 0;
  std::string price;
  std::string token;
  std::string outcome;  // adjusted, duplicate, dry-run, invalid: <why>
};

struct TrailingSummary {
  std::int64_t symbols = 0;
  std::int64_t due = 0;               // operations looked at
  std::int64_t armed = 0;             // wake price (re)computed without a move
  std::int64_t adjusted = 0;          // STOP_ADJUSTED appended
  std::int64_t duplicates = 0;        // token already taken: nothing moved
  std::int64_t in_flight = 0;         // left alone: an exit is under way
  std::int64_t skipped = 0;           // closed meanwhile, or locked by another process right now
  std::int64_t invalid = 0;           // cannot trail (reported with the reason, kept in trail_error)
  std::int64_t malformed_frames = 0;  // --stream: frames of the price stream skipped as malformed
  std::vector<AdjustmentReport> reports;
  double seconds = 0;
  bool price_error = false;
  std::string error;
};

void accumulate(TrailingSummary& total, const TrailingSummary& pass);

class TrailingStop {
 public:
  TrailingStop(store::Connection& connection, exchange::Exchange& exchange, TrailingOptions options);

  // A full pass: REST prices, woken and not-yet-computed operations.
  TrailingSummary run_pass();
  // Stream ticks: only the operations these prices woke.
  TrailingSummary run_on_prices(const core::PriceSnapshot& prices, core::TimePoint received);

 private:
  void run(const core::PriceSnapshot& prices, core::TimePoint received, bool unarmed, TrailingSummary& summary);
  void batch(const std::vector<std::int64_t>& ids, const std::map<std::string, store::SymbolPrice>& prices,
             TrailingSummary& summary);

  store::Connection& connection_;
  exchange::Exchange& exchange_;
  TrailingOptions options_;
};

}  // namespace backstop::trailing
