// Account truth's pure decision (core/reconcile.h, docs/design/account-truth.md
// §2.2): evidence first (sells made elsewhere, base-asset fees, each trade
// once), unexplained shortfalls only when seen twice after the grace, exits in
// flight never touched, only lowering and closing.
#include "core/reconcile.h"

#include <gtest/gtest.h>

#include <random>

namespace backstop::core {
namespace {

using namespace std::chrono_literals;
Decimal D(const char* text) { return Decimal::parse(text); }
const TimePoint kT0 = TimePoint{} + std::chrono::hours(24 * 365 * 50);

ReconcileOperation long_op(std::int64_t id, const char* quantity, TimePoint opened = kT0) {
  ReconcileOperation op;
  op.id = OperationId{id};
  op.symbol = "BTCUSDT";
  op.base_asset = "BTC";
  op.side = Side::kBuy;
  op.quantity = D(quantity);
  op.opened_at = opened;
  return op;
}

AccountObservation holding(const char* btc, TimePoint read_at = kT0 + 1h) {
  AccountObservation seen;
  seen.read_at = read_at;
  seen.balances["BTC"] = HeldBalance{D(btc), Decimal()};
  return seen;
}

TradeSeen sell_elsewhere(std::int64_t id, const char* qty, TimePoint at = kT0 + 10min) {
  TradeSeen t;
  t.id = id;
  t.symbol = "BTCUSDT";
  t.is_buyer = false;
  t.qty = D(qty);
  t.time = at;
  return t;
}

ReconcileRules rules() {
  ReconcileRules r;
  r.lots["BTCUSDT"] = LotRules{D("0.00001"), D("0.00001"), D("9000"), D("5")};
  r.prices["BTCUSDT"] = D("95000");
  return r;
}

TEST(Reconcile, EverythingHeldIsInSyncAndASurplusIsSomeoneElses) {
  AccountObservation seen = holding("3");
  const auto r = reconcile_account({long_op(1, "0.5"), long_op(2, "1")}, seen, rules());
  ASSERT_EQ(r.operations.size(), 2u);
  for (const auto& d : r.operations) {
    EXPECT_EQ(d.outcome, SyncOutcome::kInSync);
    EXPECT_FALSE(d.new_quantity);
    EXPECT_FALSE(d.pending);
  }
}

TEST(Reconcile, AHalfSoldInTheExchangesAppIsReducedAtOnceOnTheTradesEvidence) {
  AccountObservation seen = holding("0.5");
  seen.trades.push_back(sell_elsewhere(77, "0.5"));
  const auto r = reconcile_account({long_op(1, "1")}, seen, rules());
  const OperationDecision& d = r.operations[0];
  EXPECT_EQ(d.outcome, SyncOutcome::kReducedElsewhere);
  EXPECT_EQ(d.new_quantity, D("0.5"));
  EXPECT_EQ(d.trade_ids, std::vector<std::int64_t>{77});
  EXPECT_EQ(d.reason, "FOREIGN_SELL");
}

TEST(Reconcile, AllOfItSoldElsewhereClosesIt) {
  AccountObservation seen = holding("0");
  seen.trades.push_back(sell_elsewhere(77, "0.4"));
  seen.trades.push_back(sell_elsewhere(78, "0.6", kT0 + 20min));
  const auto r = reconcile_account({long_op(1, "1")}, seen, rules());
  EXPECT_EQ(r.operations[0].outcome, SyncOutcome::kClosedElsewhere);
  EXPECT_EQ(r.operations[0].new_quantity, Decimal());
  EXPECT_EQ(r.operations[0].trade_ids, (std::vector<std::int64_t>{77, 78}));
}

TEST(Reconcile, TheEntrysCommissionInTheBaseAssetReducesByTheCommission) {
  AccountObservation seen = holding("0.4995");
  TradeSeen entry;
  entry.id = 5;
  entry.symbol = "BTCUSDT";
  entry.is_buyer = true;
  entry.qty = D("0.5");
  entry.commission = D("0.0005");
  entry.commission_asset = "BTC";
  entry.time = kT0 - 2s;
  seen.trades.push_back(entry);
  const auto r = reconcile_account({long_op(1, "0.5")}, seen, rules());
  EXPECT_EQ(r.operations[0].outcome, SyncOutcome::kReducedElsewhere);
  EXPECT_EQ(r.operations[0].new_quantity, D("0.4995"));
  EXPECT_EQ(r.operations[0].reason, "BASE_FEE");
}

TEST(Reconcile, BackstopsOwnSellsAndTradesAlreadyUsedAreNoEvidence) {
  AccountObservation seen = holding("0.5");
  TradeSeen ours = sell_elsewhere(1, "0.5");
  ours.ours = true;
  TradeSeen used = sell_elsewhere(2, "0.5");
  used.attributed = true;
  TradeSeen before_entry = sell_elsewhere(3, "0.5", kT0 - 1min);
  seen.trades = {ours, used, before_entry};
  const auto r = reconcile_account({long_op(1, "1")}, seen, rules());
  EXPECT_EQ(r.operations[0].outcome, SyncOutcome::kPending);  // unexplained: seen once
  EXPECT_FALSE(r.operations[0].new_quantity);
  EXPECT_TRUE(r.operations[0].trade_ids.empty());
}

TEST(Reconcile, AnUnexplainedShortfallIsAppliedOnlyWhenSeenTwiceAfterTheGraceAndNotSmaller) {
  ReconcileOperation op = long_op(1, "1");
  const auto first = reconcile_account({op}, holding("0.6", kT0 + 1h), rules()).operations[0];
  ASSERT_EQ(first.outcome, SyncOutcome::kPending);
  ASSERT_TRUE(first.pending);
  EXPECT_EQ(first.pending->outcome, SyncOutcome::kShortUnexplained);
  EXPECT_EQ(first.pending->held, D("0.6"));
  EXPECT_EQ(first.pending->first_seen, kT0 + 1h);
  op.pending = first.pending;
  // Again within the grace (30 s): still pending, counted.
  const auto second = reconcile_account({op}, holding("0.6", kT0 + 1h + 10s), rules()).operations[0];
  EXPECT_EQ(second.outcome, SyncOutcome::kPending);
  EXPECT_EQ(second.pending->seen, 2);
  EXPECT_EQ(second.pending->first_seen, kT0 + 1h);
  op.pending = second.pending;
  // After the grace, the same: flagged (no quantity change: the exit cap does the rest).
  const auto third = reconcile_account({op}, holding("0.6", kT0 + 1h + 31s), rules()).operations[0];
  EXPECT_EQ(third.outcome, SyncOutcome::kShortUnexplained);
  EXPECT_EQ(third.reason, "BALANCE_SHORT");
  EXPECT_EQ(third.held, D("0.6"));
  EXPECT_FALSE(third.new_quantity);
  EXPECT_FALSE(third.pending);
  // A smaller shortfall the second time (the fill of an order caught
  // between two reads): it starts again.
  const auto smaller = reconcile_account({op}, holding("0.9", kT0 + 1h + 31s), rules()).operations[0];
  EXPECT_EQ(smaller.outcome, SyncOutcome::kPending);
  EXPECT_EQ(smaller.pending->seen, 1);
  EXPECT_EQ(smaller.pending->first_seen, kT0 + 1h + 31s);
  // Back to fully held: in sync, the pending state cleared.
  const auto back = reconcile_account({op}, holding("1", kT0 + 1h + 40s), rules()).operations[0];
  EXPECT_EQ(back.outcome, SyncOutcome::kInSync);
  EXPECT_FALSE(back.pending);
}

TEST(Reconcile, NothingLeftAndNoTradeClosesAsBalanceGoneOnlyWhenSeenTwice) {
  ReconcileOperation op = long_op(1, "1");
  const auto first = reconcile_account({op}, holding("0.00000001", kT0 + 1h), rules()).operations[0];
  ASSERT_EQ(first.outcome, SyncOutcome::kPending);
  EXPECT_EQ(first.pending->outcome, SyncOutcome::kClosedElsewhere);
  op.pending = first.pending;
  const auto second = reconcile_account({op}, holding("0", kT0 + 1h + 1min), rules()).operations[0];
  EXPECT_EQ(second.outcome, SyncOutcome::kClosedElsewhere);
  EXPECT_EQ(second.reason, "BALANCE_GONE");
  EXPECT_EQ(second.new_quantity, Decimal());
}

// Review of the binary (D3): a shortfall seen once, then part of it sold by
// hand. The sale is applied at once (the trade is evidence); what it does not
// explain starts over as a first sighting against the lowered quantity. The
// reduction is never lost under the old pending state, nor the trade burned.
TEST(Reconcile, ASaleAfterAShortfallSeenOnceIsAppliedAndTheRestStartsOver) {
  ReconcileOperation op = long_op(1, "1");
  op.pending = PendingDrift{SyncOutcome::kShortUnexplained, D("0.7"), kT0 + 1h, 1};
  AccountObservation seen = holding("0.4", kT0 + 2h);  // 0.3 withdrawn, then 0.3 sold by hand
  seen.trades = {sell_elsewhere(7, "0.3", kT0 + 90min)};
  const auto r = reconcile_account({op}, seen, rules());
  const OperationDecision& d = r.operations[0];
  EXPECT_EQ(d.outcome, SyncOutcome::kReducedElsewhere);
  EXPECT_EQ(d.new_quantity, D("0.7"));
  EXPECT_EQ(d.trade_ids, std::vector<std::int64_t>{7});
  ASSERT_TRUE(d.pending);
  EXPECT_EQ(d.pending->first_seen, kT0 + 2h);
  EXPECT_EQ(d.pending->seen, 1);
  EXPECT_EQ(d.pending->held, D("0.4"));
}

// Review (D7): a position flagged SHORT that stays short stays SHORT on every
// pass (no second grace, no flapping through "pending"); a smaller holding
// lowers what is recorded as held at once.
TEST(Reconcile, AFlaggedShortfallThatPersistsStaysShortEveryPass) {
  ReconcileOperation op = long_op(1, "1");
  op.flagged_short = true;
  for (const char* btc : {"0.7", "0.7", "0.6"}) {
    const auto r = reconcile_account({op}, holding(btc), rules());
    EXPECT_EQ(r.operations[0].outcome, SyncOutcome::kShortUnexplained) << btc;
    EXPECT_EQ(r.operations[0].held, D(btc));
    EXPECT_FALSE(r.operations[0].pending);
  }
  // Nothing left: closing still takes two sightings.
  const auto gone = reconcile_account({op}, holding("0"), rules());
  EXPECT_EQ(gone.operations[0].outcome, SyncOutcome::kPending);
}

TEST(Reconcile, AnOperationWhoseExitIsInFlightIsNeverTouchedNorExpected) {
  ReconcileOperation selling = long_op(1, "1");
  ExitState exit;
  exit.status = ExecutionStatus::kSubmitted;
  exit.target = D("1");
  exit.open = true;
  selling.exit = exit;
  ReconcileOperation other = long_op(2, "0.5");
  const auto r = reconcile_account({selling, other}, holding("0.5"), rules());
  EXPECT_EQ(r.operations[0].outcome, SyncOutcome::kSkippedExitInFlight);
  EXPECT_FALSE(r.operations[0].new_quantity);
  EXPECT_EQ(r.operations[1].outcome, SyncOutcome::kInSync);
  // A finished FAILED exit leaves the operation ACTIVE: reconciled like the others.
  exit.status = ExecutionStatus::kFailed;
  exit.open = false;
  selling.exit = exit;
  EXPECT_EQ(reconcile_account({selling, other}, holding("1.5"), rules()).operations[0].outcome, SyncOutcome::kInSync);
}

TEST(Reconcile, TheShortfallGoesFirstToThePositionASellClosesExactlyThenToTheNewest) {
  AccountObservation seen = holding("0.5");
  seen.trades.push_back(sell_elsewhere(9, "0.3"));
  const auto exact = reconcile_account({long_op(1, "0.3", kT0), long_op(2, "0.5", kT0 + 1min)}, seen, rules());
  EXPECT_EQ(exact.operations[0].outcome, SyncOutcome::kClosedElsewhere);
  EXPECT_EQ(exact.operations[1].outcome, SyncOutcome::kInSync);
  AccountObservation partly = holding("0.8");
  partly.trades.push_back(sell_elsewhere(9, "0.2"));
  const auto newest = reconcile_account({long_op(1, "0.5", kT0), long_op(2, "0.5", kT0 + 1min)}, partly, rules());
  EXPECT_EQ(newest.operations[0].outcome, SyncOutcome::kInSync);
  EXPECT_EQ(newest.operations[1].outcome, SyncOutcome::kReducedElsewhere);
  EXPECT_EQ(newest.operations[1].new_quantity, D("0.3"));
}

TEST(Reconcile, ShortsAndPositionsOpenedAfterTheReadAreNotReconciled) {
  ReconcileOperation short_op = long_op(1, "1");
  short_op.side = Side::kSell;
  const AccountObservation seen = holding("0", kT0 + 1h);
  const auto r = reconcile_account({short_op, long_op(2, "1", kT0 + 1h - 1s)}, seen, rules());
  EXPECT_EQ(r.operations[0].outcome, SyncOutcome::kNotReconciled);
  EXPECT_EQ(r.operations[1].outcome, SyncOutcome::kNotReconciled);
  EXPECT_FALSE(r.operations[1].new_quantity);
}

TEST(Reconcile, OrphansAreOpenOrdersWithBackstopsPrefixThatNoLiveExitOwns) {
  AccountObservation seen = holding("1");
  seen.open_orders = {{1, "bs0123-1", "BTCUSDT", Side::kSell, "LIMIT", D("0.1"), D("0")},
                      {2, "bs4567-2", "BTCUSDT", Side::kSell, "LIMIT", D("0.1"), D("0")},
                      {3, "by-hand-tp", "BTCUSDT", Side::kSell, "LIMIT", D("0.1"), D("0")}};
  ReconcileRules r = rules();
  r.live_client_ids = {"bs4567-2"};
  const auto result = reconcile_account({long_op(1, "1")}, seen, r);
  ASSERT_EQ(result.orphans.size(), 1u);
  EXPECT_EQ(result.orphans[0].client_order_id, "bs0123-1");
}

// R1 and R4 over random accounts: an operation with an exit in flight is never
// changed; quantities only go down, never below zero; each trade's evidence is
// used at most its amount; with no trades and everything held, nothing changes.
TEST(Reconcile, RandomAccountsOnlyLowerAndCloseAndNeverTouchAnExitInFlight) {
  std::mt19937_64 random(42);
  auto uniform = [&](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(random);
  };
  for (int round = 0; round < 5000; ++round) {
    std::vector<ReconcileOperation> ops;
    Decimal total;
    const int n = static_cast<int>(uniform(1, 5));
    for (int i = 1; i <= n; ++i) {
      ReconcileOperation op = long_op(i, "0", kT0 + std::chrono::minutes(uniform(0, 30)));
      op.quantity = Decimal::mul(Decimal::from_integer(uniform(1, 100000)), D("0.00001"), Rounding::kDown);
      if (uniform(0, 4) == 0) {
        ExitState e;
        e.status = ExecutionStatus::kSubmitted;
        e.open = true;
        op.exit = e;
      }
      total = total + op.quantity;
      ops.push_back(op);
    }
    AccountObservation seen = holding("0", kT0 + 2h);
    seen.balances["BTC"].free = Decimal::mul(
        total, Decimal::mul(Decimal::from_integer(uniform(0, 12)), D("0.1"), Rounding::kDown), Rounding::kDown);
    Decimal evidence;
    for (int t = 0; t < uniform(0, 3); ++t) {
      TradeSeen trade = sell_elsewhere(t + 1, "0", kT0 + std::chrono::minutes(uniform(0, 60)));
      trade.qty = Decimal::mul(Decimal::from_integer(uniform(1, 50000)), D("0.00001"), Rounding::kDown);
      evidence = evidence + trade.qty;
      seen.trades.push_back(trade);
    }
    const auto r = reconcile_account(ops, seen, rules());
    ASSERT_EQ(r.operations.size(), ops.size());
    Decimal reduced;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const OperationDecision& d = r.operations[i];
      EXPECT_EQ(d.id, ops[i].id);
      if (ops[i].exit) {
        EXPECT_EQ(d.outcome, SyncOutcome::kSkippedExitInFlight) << round;
        EXPECT_FALSE(d.new_quantity) << round;
      }
      if (d.new_quantity) {
        EXPECT_FALSE(d.new_quantity->is_negative()) << round;
        EXPECT_LT(*d.new_quantity, ops[i].quantity) << round;
        EXPECT_FALSE(d.trade_ids.empty() && d.outcome != SyncOutcome::kClosedElsewhere) << round;
        if (!d.trade_ids.empty()) reduced = reduced + (ops[i].quantity - *d.new_quantity);
      }
    }
    EXPECT_LE(reduced, evidence) << round;
  }
}

}  // namespace
}  // namespace backstop::core
