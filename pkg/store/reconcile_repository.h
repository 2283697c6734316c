// The reconcile pass's reads and writes besides the event store (issue 13,
// docs/design/account-truth.md §4.2): which operations an exchange account
// holds, what an earlier pass saw of it (trades read, their cursor, balances,
// shortfalls seen once), the account's ACTIVE longs locked with their exits,
// and what a pass writes back.
//
// Safe beside stop-monitor and trailing-stop: lock() takes the ACTIVE rows
// FOR UPDATE SKIP LOCKED (FOR UPDATE conflicts with a claim's FOR KEY SHARE;
// a row a claim or a trailing batch holds right now is left to the next
// pass) and only then, in new statements, reads their exits: a claim that
// committed before the locks were taken is seen, one that comes later waits
// for this transaction and re-reads the row.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <vector>

#include "core/projection.h"
#include "core/reconcile.h"

namespace backstop::store {

// Whose operations one account holds.
struct ReconcileScope {
  std::string account = "(default)";  // exchange_account.account ("(default)": the tenants that name none)
  bool named = false;                 // the tenants whose tenant_config.exchange_account is `account`;
                                      // otherwise those without one
  std::vector<std::int64_t> tenants;  // only these (empty: all of the account)
};

// What the pass knows before it reads the exchange.
struct AccountMemory {
  std::optional<std::int64_t> uid;                         // the exchange's, as first seen
  std::map<std::string, std::int64_t> cursors;             // symbol -> last trade id read
  std::map<std::string, core::HeldBalance> balances_seen;  // asset -> at the last pass
  std::map<std::string, core::TimePoint> first_opened;     // symbol -> oldest ACTIVE long's entry
  std::set<std::string> unsettled;                         // symbols with a shortfall seen once, or SHORT
  std::optional<core::TimePoint> orphans_checked_at;       // when its open orders were last read
};

// An open order with Backstop's client id prefix that no live exit owns.
struct OrphanRow {
  std::string symbol;
  std::int64_t order_id = 0;
  std::string client_order_id;
  std::string side;
  std::string type;
  core::Decimal orig_qty;
  std::string first_seen_at;  // as PostgreSQL prints it (UTC)
  std::string last_seen_at;
  std::optional<std::string> cancelled_at;
  std::optional<std::string> last_error;
};

// One fill of the account as myTrades gave it.
struct TradeRecord {
  std::string symbol;
  std::int64_t id = 0;
  std::int64_t order_id = 0;
  bool is_buyer = false;
  core::Decimal price, qty, quote_qty, commission;
  std::string commission_asset;
  core::TimePoint time;
  bool ours = false;  // the order's client id is Backstop's (the exchange said so)
};

struct LockedOperation {
  core::ReconcileOperation op;
  core::TenantId tenant;
  core::SyncStatus sync_status = core::SyncStatus::kUnchecked;
  int sync_events = 0;     // its earlier POSITION_OUT_OF_SYNC / POSITION_IN_SYNC (their tokens count them)
  std::string exit_token;  // of op.exit (empty: none); op.exit carries only its status
};

struct LockedAccount {
  std::vector<LockedOperation> operations;  // ACTIVE, locked by this transaction, id order
  std::int64_t skipped = 0;                 // ACTIVE but locked by another process right now
  // The earliest trigger of an exit in flight, by symbol (any operation of the
  // scope): its order id may not be recorded yet, so a sell since then may be
  // Backstop's own.
  std::map<std::string, core::TimePoint> exits_in_flight_since;
  // token -> attempts sent so far, of the exits in flight and of those that
  // ended since `recent` (their market order may still have been open when
  // the exchange was read): their client ids are no orphans.
  std::map<std::string, int> in_flight_attempts;
  std::vector<core::TradeSeen> trades;  // not yet attributed, with `ours` from the exits' order ids
};

// What a pass writes back per operation besides its events.
struct SyncRecord {
  std::int64_t id = 0;
  std::optional<core::SyncStatus> status;  // nullopt: as its events left it
  std::optional<core::Decimal> held;       // SHORT: what the account covers (else NULL)
  std::optional<std::string> error;        // full text (NULL: none)
  std::optional<core::PendingDrift> pending;
};

class ReconcileRepository {
 public:
  static AccountMemory memory(pqxx::transaction_base& tx, const ReconcileScope& scope);
  // Stores the trades read (a trade already stored is kept as it was) and
  // moves each symbol's cursor to the newest; `read` holds each symbol read
  // with the newest trade id the exchange showed (also those too old to
  // store), or -1 when it showed none (the next read starts from the time
  // again). Takes the account's row lock first: passes of one account run one
  // at a time.
  static void save_trades(pqxx::work& tx, const std::string& account, const std::vector<TradeRecord>& trades,
                          const std::map<std::string, std::int64_t>& read);
  // Locks the scope's ACTIVE longs and shorts; reads their exits, pending
  // shortfalls, and the account's trades not yet attributed to an operation
  // since `trades_since`.
  static LockedAccount lock(pqxx::work& tx, const ReconcileScope& scope, core::TimePoint trades_since,
                            core::TimePoint recent);
  // The trades that explained operation `id`'s reduction: used once.
  static void attribute(pqxx::work& tx, const std::string& account, std::int64_t id,
                        const std::vector<std::int64_t>& trade_ids);
  // sync_status (where no event set it), last_synced_at, held_quantity,
  // sync_error and the pending shortfall of each operation.
  static void record_sync(pqxx::work& tx, const std::vector<SyncRecord>& records);
  // The pass's account facts: uid and type, the balances as seen, success.
  // `orphans_checked`: its open orders were read this pass.
  static void record_pass(pqxx::work& tx, const std::string& account, std::optional<std::int64_t> uid,
                          const std::string& account_type, const std::map<std::string, core::HeldBalance>& balances,
                          bool orphans_checked);
  // The orphans seen this pass (first seen kept); those no longer open are
  // forgotten, unless this process cancelled them (kept as the record).
  static void save_orphans(pqxx::work& tx, const std::string& account, const std::vector<core::OpenOrderSeen>& seen);
  // What a cancel of an orphan answered: cancelled (or already gone), or why not.
  static void record_cancel(pqxx::work& tx, const std::string& account, const std::string& symbol,
                            std::int64_t order_id, const std::optional<std::string>& error);
  static std::vector<OrphanRow> orphans(pqxx::transaction_base& tx, const std::string& account);
  // A pass that could not finish: why, and nothing else.
  static void record_failure(pqxx::work& tx, const std::string& account, const std::string& error);
};

}  // namespace backstop::store
