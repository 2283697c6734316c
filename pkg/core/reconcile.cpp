#include "core/reconcile.h"

#include <algorithm>

#include "core/enum_names.h"

namespace backstop::core {
namespace {

constexpr NameTable<SyncOutcome, 7> kOutcomes{{
    {SyncOutcome::kInSync, "IN_SYNC"},
    {SyncOutcome::kReducedElsewhere, "REDUCED_ELSEWHERE"},
    {SyncOutcome::kClosedElsewhere, "CLOSED_ELSEWHERE"},
    {SyncOutcome::kShortUnexplained, "SHORT_UNEXPLAINED"},
    {SyncOutcome::kPending, "PENDING"},
    {SyncOutcome::kSkippedExitInFlight, "SKIPPED_EXIT_IN_FLIGHT"},
    {SyncOutcome::kNotReconciled, "NOT_RECONCILED"},
}};

// Below what the symbol lets an order carry: nothing a position could exit.
bool is_dust(Decimal quantity, const ReconcileRules& rules, const std::string& symbol) {
  if (!quantity.is_positive()) return true;
  const auto lots = rules.lots.find(symbol);
  if (lots == rules.lots.end()) return false;
  LotRules no_notional = lots->second;
  const auto price = rules.prices.find(symbol);
  if (price == rules.prices.end()) no_notional.min_notional.reset();
  no_notional.max_qty.reset();  // a large remainder is several orders, not dust
  return !next_order_quantity(no_notional, quantity, price == rules.prices.end() ? Decimal() : price->second);
}

// A trade that can explain a shortfall of `op` (a sell made elsewhere since
// its entry, or its entry's commission in the base asset), and how much.
std::optional<Decimal> evidence(const TradeSeen& t, const ReconcileOperation& op, const ReconcileRules& rules) {
  if (t.attributed || t.symbol != op.symbol) return std::nullopt;
  if (!t.is_buyer && !t.ours && t.time >= op.opened_at) return t.qty;
  const auto distance = t.time > op.opened_at ? t.time - op.opened_at : op.opened_at - t.time;
  if (t.is_buyer && t.commission_asset == op.base_asset && distance <= rules.entry_lookback &&
      t.commission.is_positive()) {
    return t.commission;
  }
  return std::nullopt;
}

// What the account has not explained for `op` is seen now: applied when it
// was seen before, at least `grace` ago, the same and not smaller; otherwise
// kept (pending) for the next observation.
void unexplained(OperationDecision& d, const ReconcileOperation& op, Decimal held, bool gone,
                 const AccountObservation& seen, const ReconcileRules& rules) {
  const SyncOutcome outcome = gone ? SyncOutcome::kClosedElsewhere : SyncOutcome::kShortUnexplained;
  if (d.outcome == SyncOutcome::kReducedElsewhere) {
    // A trade explained part of it now: that is applied; the rest is a first
    // sighting against the lowered quantity.
    d.pending = PendingDrift{outcome, held, seen.read_at, 1};
    d.held = held;
    return;
  }
  if (op.flagged_short && !gone) {  // already established: it stays flagged, at what is held now
    d.outcome = SyncOutcome::kShortUnexplained;
    d.reason = std::string(kBalanceShort);
    d.held = held;
    d.pending.reset();
    return;
  }
  const auto& before = op.pending;
  const bool same = before && before->outcome == outcome && held <= before->held;
  if (same && seen.read_at - before->first_seen >= rules.grace) {
    d.outcome = outcome;
    d.reason = std::string(gone ? kBalanceGone : kBalanceShort);
    d.held = held;
    d.pending.reset();
    if (gone) d.new_quantity = Decimal();
    return;
  }
  d.pending = same ? PendingDrift{outcome, held, before->first_seen, before->seen + 1}
                   : PendingDrift{outcome, held, seen.read_at, 1};
  d.held = held;
  if (d.outcome == SyncOutcome::kInSync) d.outcome = SyncOutcome::kPending;
}

}  // namespace

std::string_view to_string(SyncOutcome outcome) { return name_of(kOutcomes, outcome); }

ReconcileResult reconcile_account(const std::vector<ReconcileOperation>& operations, const AccountObservation& seen,
                                  const ReconcileRules& rules) {
  ReconcileResult result;
  result.operations.resize(operations.size());
  std::map<std::string, std::vector<std::size_t>> by_asset;
  for (std::size_t i = 0; i < operations.size(); ++i) {
    const ReconcileOperation& op = operations[i];
    OperationDecision& d = result.operations[i];
    d.id = op.id;
    d.held = op.quantity;
    d.pending = op.pending;
    if (op.side == Side::kSell) {
      d.outcome = SyncOutcome::kNotReconciled;
      d.reason = "a short is not held on a spot account";
    } else if (op.exit && !op.exit->finished()) {
      d.outcome = SyncOutcome::kSkippedExitInFlight;  // R1: it may be selling right now
    } else if (op.opened_at > seen.read_at - rules.entry_margin) {
      d.outcome = SyncOutcome::kNotReconciled;
      d.reason = "opened after the account was read";
    } else {
      by_asset[op.base_asset].push_back(i);
    }
  }
  std::map<std::int64_t, Decimal> used;  // trade id -> how much of it explained something
  for (auto& [asset, members] : by_asset) {
    const auto balance = seen.balances.find(asset);
    const Decimal held = balance == seen.balances.end() ? Decimal() : balance->second.free + balance->second.locked;
    Decimal expected;
    for (const std::size_t i : members) expected = expected + operations[i].quantity;
    for (const std::size_t i : members) {
      result.operations[i].outcome = SyncOutcome::kInSync;
      result.operations[i].pending.reset();
    }
    if (held >= expected) continue;  // a surplus is someone else's
    Decimal missing = expected - held;

    // Who takes a shortfall first: the operation a sell made elsewhere closes
    // exactly (a manual close of that position), then the newest.
    auto sold_since = [&](const ReconcileOperation& op) {
      Decimal sum;
      for (const TradeSeen& t : seen.trades) {
        if (!t.attributed && !t.is_buyer && !t.ours && t.symbol == op.symbol && t.time >= op.opened_at) {
          sum = sum + t.qty;
        }
      }
      return sum;
    };
    std::map<std::size_t, bool> exact;  // a sell elsewhere closes it exactly
    for (const std::size_t i : members) exact[i] = sold_since(operations[i]) == operations[i].quantity;
    std::stable_sort(members.begin(), members.end(), [&](std::size_t a, std::size_t b) {
      const ReconcileOperation& x = operations[a];
      const ReconcileOperation& y = operations[b];
      if (exact[a] != exact[b]) return exact[a];
      if (x.opened_at != y.opened_at) return x.opened_at > y.opened_at;
      return x.id.value > y.id.value;
    });
    std::vector<const TradeSeen*> trades;
    for (const TradeSeen& t : seen.trades) trades.push_back(&t);
    std::stable_sort(trades.begin(), trades.end(),
                     [](const TradeSeen* a, const TradeSeen* b) { return a->time < b->time; });

    std::map<std::size_t, Decimal> current;
    for (const std::size_t i : members) current[i] = operations[i].quantity;
    // Evidence: each trade explains at most its quantity (or commission), once.
    for (const std::size_t i : members) {
      if (!missing.is_positive()) break;
      const ReconcileOperation& op = operations[i];
      OperationDecision& d = result.operations[i];
      bool sold = false;
      for (const TradeSeen* t : trades) {
        if (!missing.is_positive() || !current[i].is_positive()) break;
        const auto amount = evidence(*t, op, rules);
        if (!amount) continue;
        const Decimal left = *amount - used[t->id];
        const Decimal take = std::min({left, current[i], missing});
        if (!take.is_positive()) continue;
        used[t->id] = used[t->id] + take;
        current[i] = current[i] - take;
        missing = missing - take;
        d.trade_ids.push_back(t->id);
        sold = sold || !t->is_buyer;
      }
      if (d.trade_ids.empty()) continue;
      d.reason = std::string(sold ? kForeignSell : kBaseFee);
      d.held = current[i];
      if (is_dust(current[i], rules, op.symbol)) {
        d.outcome = SyncOutcome::kClosedElsewhere;
        d.new_quantity = Decimal();
      } else {
        d.outcome = SyncOutcome::kReducedElsewhere;
        d.new_quantity = current[i];
      }
    }
    // What no trade explains: the newest operations, flagged (or closed when
    // nothing is left), only when seen twice.
    for (const std::size_t i : members) {
      if (!missing.is_positive()) break;
      OperationDecision& d = result.operations[i];
      if (d.outcome == SyncOutcome::kClosedElsewhere) continue;
      const Decimal take = std::min(current[i], missing);
      if (!take.is_positive()) continue;
      missing = missing - take;
      const Decimal left = current[i] - take;
      unexplained(d, operations[i], left, is_dust(left, rules, operations[i].symbol), seen, rules);
    }
  }
  for (const OpenOrderSeen& o : seen.open_orders) {
    if (o.client_order_id.rfind(rules.client_id_prefix, 0) == 0 &&
        rules.live_client_ids.count(o.client_order_id) == 0) {
      result.orphans.push_back(o);
    }
  }
  return result;
}

}  // namespace backstop::core
