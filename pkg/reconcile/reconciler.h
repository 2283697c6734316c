// One reconcile pass over one exchange account (issue 13,
// docs/design/account-truth.md §5.1):
//   1. what the database remembers of the account (uid, trade cursors,
//      balances last seen, the symbols of its ACTIVE longs), read-only;
//   2. the exchange, before anything is written: its rules (base assets, lot
//      sizes), the account (refused unless SPOT and the uid it had before),
//      and the trades of each symbol whose base asset moved since the last
//      pass or that has a shortfall open, from the cursor on. An answer that
//      does not come leaves the database untouched (exit 3);
//   3. one transaction: the trades stored, the account's ACTIVE rows locked
//      (SKIP LOCKED) and only then their exits read, core::reconcile_account,
//      and its decisions appended as events (POSITION_RECONCILED,
//      POSITION_CLOSED_EXTERNALLY, POSITION_OUT_OF_SYNC, POSITION_IN_SYNC) with
//      the sync columns written beside them.
// The exchange is read before the exits, so an exit whose fill the balance
// shows had committed its EXECUTION_SUBMITTED before it sent and is seen in
// flight (left alone, R1); an exit claimed after the read sends after it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "exchange/exchange.h"
#include "store/reconcile_repository.h"
#include "store/unit_of_work.h"

namespace backstop::reconcile {

struct ReconcileOptions {
  store::ReconcileScope scope;
  bool dry_run = false;                              // decide and print; the transaction is rolled back
  std::chrono::milliseconds grace{30000};            // an unexplained shortfall: seen twice this far apart
  std::chrono::milliseconds entry_lookback{600000};  // an entry's own fills lie within this of its creation
  std::chrono::milliseconds entry_margin{5000};      // created this close to the read: not in the balance yet
  int max_closures_pct = 50;                         // more BALANCE_GONE closures than this share: none
  std::string client_id_prefix = "bs";
  // Open orders (80 weight) are read when the last read is this old, or on
  // every pass that cancels orphans.
  std::chrono::milliseconds orphan_check_interval{600000};
  bool cancel_orphans = false;  // cancel the orphans found (never without this flag)
};

struct OrphanReport {
  std::string symbol;
  std::int64_t order_id = 0;
  std::string client_order_id;
  std::string side;
  std::string type;
  std::string orig_qty;
  std::string cancel;  // "", "cancelled", "already gone", or the error
};

struct DecisionReport {
  std::int64_t operation_id = 0;
  std::int64_t tenant_id = 0;
  std::string symbol;
  std::string outcome;  // core::SyncOutcome
  std::string reason;
  std::string quantity;      // as recorded before the pass
  std::string new_quantity;  // reduced or closed
  std::string held;
  std::vector<std::int64_t> trade_ids;
  std::string event;  // the event appended (empty: none); "duplicate: <type>" when its token was taken
};

struct ReconcileSummary {
  std::string account;
  std::int64_t operations = 0;  // ACTIVE operations of the account looked at
  std::int64_t in_sync = 0;
  std::int64_t reduced = 0;         // POSITION_RECONCILED
  std::int64_t closed = 0;          // POSITION_CLOSED_EXTERNALLY
  std::int64_t short_flagged = 0;   // SHORT (flagged now or still)
  std::int64_t pending = 0;         // a shortfall seen once: decided on a later pass
  std::int64_t in_flight = 0;       // an exit in flight: left alone
  std::int64_t not_reconciled = 0;  // shorts, unknown symbols, entries after the read
  std::int64_t skipped = 0;         // locked by another process right now
  std::int64_t held_back = 0;       // closures held back by --max-closures-pct (flagged SHORT instead)
  std::int64_t duplicates = 0;      // events whose token another run took first
  std::int64_t requests = 0;        // calls made to the exchange
  std::int64_t weight = 0;          // the exchange's used weight (1 minute) after the last call
  std::int64_t trades_read = 0;
  bool orphans_checked = false;         // open orders were read this pass
  std::vector<OrphanReport> orphans;    // open orders with Backstop's prefix that no exit owns
  std::int64_t orphans_cancelled = 0;   // with --cancel-orphans (also those already gone)
  std::vector<DecisionReport> reports;  // every decision other than a plain in sync
  double seconds = 0;
  bool exchange_unreachable = false;  // nothing changed: exit 3
  bool failed = false;                // a malformed answer or a refused write: exit 1
  std::string error;
};

class Reconciler {
 public:
  Reconciler(store::Connection& connection, exchange::Exchange& market, exchange::AccountApi& account,
             ReconcileOptions options);

  // Throws runtime::UsageError when the account is not one this scope may be
  // reconciled against (not SPOT, another uid): no retry changes that.
  ReconcileSummary run_pass();

 private:
  // Why the account's last pass failed, on exchange_account (not in a dry run).
  void record_failure(const std::string& error);
  void cancel_orphans(ReconcileSummary& summary);

  store::Connection& connection_;
  exchange::Exchange& market_;
  exchange::AccountApi& account_;
  ReconcileOptions options_;
};

}  // namespace backstop::reconcile
