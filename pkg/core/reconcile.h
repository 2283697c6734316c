// Account truth (issue 13, docs/design/account-truth.md §2): the ACTIVE longs
// of one exchange account compared with what the account holds, its trades and
// its open orders, as a pure decision. No I/O, no clock: the caller reads the
// exchange first, then the operations and their exits in one transaction, and
// turns the decisions into events.
//
// The rules, per base asset of the account:
//   * an operation whose exit is in flight (TRIGGERED, BLOCKED, SUBMITTED) is
//     never touched (R1): it may have sold anything up to its remainder;
//   * the others are expected to be held; a surplus is someone else's;
//   * a shortfall is explained first by evidence, each trade used once: sells
//     of the symbol made elsewhere (not Backstop's orders) since the
//     operation's entry, and base-asset commissions of its entry's fills;
//     explained reductions are applied at once (backed by a trade), to the
//     operation a manual sell closes exactly first, then newest first;
//   * what no trade explains flags the newest operations SHORT (their exits
//     are capped at the balance anyway), or closes one left below the
//     minimum (BALANCE_GONE), but only when seen twice at least `grace` apart
//     and not smaller the second time (a balance read between an order and
//     its fill is not drift);
//   * reconcile only lowers quantities and only closes (R4).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/decimal.h"
#include "core/exit.h"
#include "core/operation.h"

namespace backstop::core {

enum class SyncOutcome {
  kInSync,
  kReducedElsewhere,     // quantity lowered, backed by trades (new_quantity)
  kClosedElsewhere,      // closed without an exit: sold elsewhere, or nothing left (BALANCE_GONE, seen twice)
  kShortUnexplained,     // flagged: the account holds less than the operation, no trade says why (seen twice)
  kPending,              // a shortfall seen once: decided when seen again (pending)
  kSkippedExitInFlight,  // its exit may be selling right now: not touched
  kNotReconciled,        // not comparable with a spot balance (a short; opened after the read)
};
[[nodiscard]] std::string_view to_string(SyncOutcome outcome);

// One fill of the account (GET /api/v3/myTrades).
struct TradeSeen {
  std::int64_t id = 0;
  std::int64_t order_id = 0;
  std::string symbol;
  bool is_buyer = false;
  Decimal qty;
  Decimal commission;
  std::string commission_asset;
  TimePoint time;
  bool ours = false;        // the order is one of Backstop's exits
  bool attributed = false;  // already explained a reduction (an earlier pass)
};

struct OpenOrderSeen {
  std::int64_t order_id = 0;
  std::string client_order_id;
  std::string symbol;
  Side side = Side::kSell;
  std::string type;
  Decimal orig;
  Decimal executed;
};

struct HeldBalance {
  Decimal free;
  Decimal locked;
};

// A shortfall seen once, kept on the operation until it is seen again.
struct PendingDrift {
  SyncOutcome outcome = SyncOutcome::kShortUnexplained;  // or kClosedElsewhere (BALANCE_GONE)
  Decimal held;                                          // what the operation was found to hold
  TimePoint first_seen;
  int seen = 1;
  friend bool operator==(const PendingDrift&, const PendingDrift&) = default;
};

struct ReconcileOperation {
  OperationId id;
  std::string symbol;
  std::string base_asset;
  Side side = Side::kBuy;
  Decimal quantity;
  TimePoint opened_at;
  std::optional<PendingDrift> pending;
  bool flagged_short = false;     // sync_status SHORT: a shortfall already established
  std::optional<ExitState> exit;  // its exit, if one was claimed
};

struct AccountObservation {
  TimePoint read_at;  // when the exchange was read (before the operations were)
  std::map<std::string, HeldBalance> balances;
  std::vector<TradeSeen> trades;
  std::vector<OpenOrderSeen> open_orders;
};

struct ReconcileRules {
  std::chrono::milliseconds grace{30000};            // between the two sightings of an unexplained shortfall
  std::chrono::milliseconds entry_lookback{600000};  // an entry's fills: within this of opened_at
  std::chrono::milliseconds entry_margin{5000};      // opened this close to the read: not in the balance yet
  std::map<std::string, LotRules> lots;              // by symbol: what is dust
  std::map<std::string, Decimal> prices;             // by symbol, for the minimum notional (absent: not checked)
  std::string client_id_prefix = "bs";               // Backstop's client order ids
  std::set<std::string> live_client_ids;             // the client ids of exits in flight, every attempt
};

inline constexpr std::string_view kForeignSell = "FOREIGN_SELL";
inline constexpr std::string_view kBaseFee = "BASE_FEE";
inline constexpr std::string_view kBalanceShort = "BALANCE_SHORT";
inline constexpr std::string_view kBalanceGone = "BALANCE_GONE";

struct OperationDecision {
  OperationId id;
  SyncOutcome outcome = SyncOutcome::kInSync;
  std::optional<Decimal> new_quantity;  // kReducedElsewhere; kClosedElsewhere: zero
  Decimal held;                         // what the account holds for it, as decided
  std::optional<PendingDrift> pending;  // what to keep on the operation (nullopt: clear it)
  std::vector<std::int64_t> trade_ids;  // the evidence
  std::string reason;                   // FOREIGN_SELL, BASE_FEE, BALANCE_SHORT, BALANCE_GONE, or why not reconciled
};

struct ReconcileResult {
  std::vector<OperationDecision> operations;  // one per operation given, in the order given
  std::vector<OpenOrderSeen> orphans;         // open orders with Backstop's prefix that no live exit owns
};

[[nodiscard]] ReconcileResult reconcile_account(const std::vector<ReconcileOperation>& operations,
                                                const AccountObservation& seen, const ReconcileRules& rules);

}  // namespace backstop::core
