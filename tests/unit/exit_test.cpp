// The pure exit state machine (core/exit.h): the fence, retryable vs terminal,
// the fixed target, partial fills, max_qty splits and dust.
#include "core/exit.h"

#include <gtest/gtest.h>

namespace backstop::core {
namespace {

using namespace std::chrono_literals;
Decimal D(const char* text) { return Decimal::parse(text); }

std::string client_id(std::string_view token, int attempt) {
  return std::string(token) + "-" + std::to_string(attempt);
}

const TimePoint kT0 = TimePoint{} + std::chrono::hours(24 * 365 * 50);

ExitContext context(TimePoint now = kT0) {
  ExitContext c;
  c.token = "op1-SL-93100";
  c.client_id = &client_id;
  c.rules = LotRules{D("0.001"), D("0.001"), D("10"), D("5")};
  c.price = D("93000");
  c.now = now;
  return c;
}

ExitState claimed(const char* quantity) {
  ExitFact f;
  f.type = EventType::kStopTriggered;
  f.at = kT0;
  f.quantity = D(quantity);
  return fold_exit({f});
}

// Applies a step's records at `at` and returns the new state.
ExitState apply(ExitState s, const ExitStep& step, TimePoint at) {
  for (const ExitRecord& r : step.records) s = apply_exit_record(std::move(s), r, at);
  return s;
}

ExchangeAnswer filled(const char* executed, const char* quote, const char* status = "FILLED") {
  ExchangeAnswer a;
  a.kind = AnswerKind::kOrder;
  a.order = OrderView{"42", status, true, D(executed), D(quote)};
  return a;
}

ExchangeAnswer kind(AnswerKind k, TimePoint asked_at = kT0) {
  ExchangeAnswer a;
  a.kind = k;
  a.error = "test";
  a.asked_at = asked_at;
  return a;
}

TEST(ExitStateMachine, FirstAttemptSendsTheWholeTargetWithTheFirstClientId) {
  const ExitStep step = start_attempt(claimed("0.5"), context());
  ASSERT_EQ(step.records.size(), 1u);
  EXPECT_EQ(step.records[0].type, EventType::kExecutionSubmitted);
  EXPECT_EQ(step.records[0].attempt, 1);
  EXPECT_EQ(step.next.kind, ExitActionKind::kSend);
  EXPECT_EQ(step.next.client_order_id, "op1-SL-93100-1");
  EXPECT_EQ(step.next.quantity, D("0.5"));
}

TEST(ExitStateMachine, AFullFillExecutesWithTheAccumulatedFill) {
  ExitState s = claimed("0.5");
  s = apply(s, start_attempt(s, context()), kT0);
  const ExitStep step = on_answer(s, filled("0.5", "46500"), context());
  ASSERT_EQ(step.records.size(), 1u);
  EXPECT_EQ(step.records[0].type, EventType::kExecuted);
  EXPECT_EQ(step.records[0].filled, D("0.5"));
  EXPECT_EQ(step.records[0].quote, D("46500"));
  EXPECT_FALSE(step.records[0].dust);
  EXPECT_EQ(step.next.kind, ExitActionKind::kDone);
}

// Defect 4: the target is fixed by the claim; a partial fill's remainder is
// the next attempt, and a resumed exit never takes an attempt's size for the target.
TEST(ExitStateMachine, PartialFillsAccumulateAgainstTheTargetFixedByTheClaim) {
  ExitState s = claimed("0.5");
  s = apply(s, start_attempt(s, context()), kT0);
  ExitStep step = on_answer(s, filled("0.25", "23250", "EXPIRED"), context());
  ASSERT_EQ(step.next.kind, ExitActionKind::kSend);
  EXPECT_EQ(step.next.client_order_id, "op1-SL-93100-2");
  EXPECT_EQ(step.next.quantity, D("0.25"));
  s = apply(s, step, kT0);
  EXPECT_EQ(s.target, D("0.5"));
  EXPECT_EQ(s.filled, D("0.25"));
  step = on_answer(s, filled("0.125", "11625", "EXPIRED"), context());
  s = apply(s, step, kT0);
  EXPECT_EQ(s.target, D("0.5"));
  EXPECT_EQ(s.filled, D("0.375"));
  EXPECT_EQ(step.next.quantity, D("0.125"));
  step = on_answer(s, filled("0.125", "11625"), context());
  ASSERT_EQ(step.records.back().type, EventType::kExecuted);
  EXPECT_EQ(step.records.back().filled, D("0.5"));
}

// Defect 5: above max_qty an exit is split; only a remainder below the
// minimum is dust.
TEST(ExitStateMachine, AnExitAboveMaxQtyIsSplitAndOnlyARealRemainderBelowTheMinimumIsDust) {
  ExitContext c = context();
  c.price = D("3000");
  ExitState s = claimed("100.0005");
  int orders = 0;
  ExitStep step = start_attempt(s, c);
  while (step.next.kind == ExitActionKind::kSend) {
    ++orders;
    EXPECT_LE(step.next.quantity, D("10"));
    s = apply(s, step, kT0);
    const Decimal q = step.next.quantity;
    step =
        on_answer(s, filled(q.to_string().c_str(), Decimal::mul(q, D("3000"), Rounding::kDown).to_string().c_str()), c);
  }
  EXPECT_EQ(orders, 10);
  ASSERT_EQ(step.records.back().type, EventType::kExecuted);
  EXPECT_EQ(step.records.back().filled, D("100"));
  EXPECT_EQ(step.records.back().dust, D("0.0005"));
}

TEST(ExitStateMachine, AWholePositionBelowTheMinimumFailsAsDustWithoutAnOrder) {
  const ExitStep step = start_attempt(claimed("0.0005"), context());
  ASSERT_EQ(step.records.size(), 1u);
  EXPECT_EQ(step.records[0].type, EventType::kFailed);
  EXPECT_EQ(step.next.kind, ExitActionKind::kDone);
}

// Defect 2: after -2013 nothing is re-sent before the fence.
TEST(ExitStateMachine, NoSuchOrderBeforeTheFenceWaitsAndAfterItTheNextAttemptGoes) {
  ExitState s = claimed("0.5");
  s = apply(s, start_attempt(s, context()), kT0);
  const TimePoint fence = context().timing.fence(kT0);
  EXPECT_EQ(fence, kT0 + 21s);
  ExitStep step = on_answer(s, kind(AnswerKind::kNotFound, kT0 + 3s), context(kT0 + 3s));
  EXPECT_TRUE(step.records.empty());
  EXPECT_EQ(step.next.kind, ExitActionKind::kWait);
  EXPECT_EQ(step.next.not_before, fence);
  step = on_answer(s, kind(AnswerKind::kNotFound, fence - 1ms), context(fence - 1ms));
  EXPECT_EQ(step.next.kind, ExitActionKind::kWait);
  // Found by the simulation (seed 15924): a "no such order" asked before the
  // fence but read after it (the process stalled) proves nothing.
  step = on_answer(s, kind(AnswerKind::kNotFound, fence - 1ms), context(fence + 5s));
  EXPECT_EQ(step.next.kind, ExitActionKind::kWait);
  step = on_answer(s, kind(AnswerKind::kNotFound, fence), context(fence));
  ASSERT_EQ(step.next.kind, ExitActionKind::kSend);
  EXPECT_EQ(step.next.client_order_id, "op1-SL-93100-2");  // never the same id again
}

TEST(ExitStateMachine, AnUnknownOutcomeIsQueriedNeverResent) {
  ExitState s = claimed("0.5");
  s = apply(s, start_attempt(s, context()), kT0);
  const ExitStep step = on_answer(s, kind(AnswerKind::kUnknown), context());
  EXPECT_TRUE(step.records.empty());
  EXPECT_EQ(step.next.kind, ExitActionKind::kQuery);
  EXPECT_EQ(step.next.client_order_id, "op1-SL-93100-1");
  EXPECT_EQ(resume_open(s, context()).next.kind, ExitActionKind::kQuery);
}

// Defect 3: a retryable failure keeps the exit alive with backoff; only a
// refusal retrying cannot change is FAILED.
TEST(ExitStateMachine, RetryableFailuresBackOffAndKeepTheExitAlive) {
  ExitState s = claimed("0.5");
  s = apply(s, start_attempt(s, context()), kT0);
  ExitStep step = on_answer(s, kind(AnswerKind::kNotPlaced), context());
  ASSERT_EQ(step.records.size(), 1u);
  EXPECT_EQ(step.records[0].type, EventType::kBlocked);
  EXPECT_EQ(step.records[0].reason, std::string(kExchangeRetry));
  EXPECT_EQ(step.records[0].retry_at, kT0 + 1s);
  s = apply(s, step, kT0);
  EXPECT_FALSE(s.open);
  EXPECT_TRUE(waiting_for_retry(s, kT0 + 500ms));
  EXPECT_FALSE(waiting_for_retry(s, kT0 + 1s));
  // The retry is attempt 2; a second failure waits twice as long.
  step = start_attempt(s, context(kT0 + 1s));
  EXPECT_EQ(step.next.client_order_id, "op1-SL-93100-2");
  s = apply(s, step, kT0 + 1s);
  step = on_answer(s, kind(AnswerKind::kNotPlaced), context(kT0 + 1s));
  EXPECT_EQ(step.records[0].retry_at, kT0 + 3s);
  EXPECT_EQ(step.records[0].failures, 2);
}

TEST(ExitStateMachine, ExpiredWithNothingFilledIsRetriedAfterABackoff) {
  ExitState s = claimed("0.5");
  s = apply(s, start_attempt(s, context()), kT0);
  const ExitStep step = on_answer(s, filled("0", "0", "EXPIRED"), context());
  ASSERT_EQ(step.records.size(), 1u);
  EXPECT_EQ(step.records[0].type, EventType::kBlocked);
  EXPECT_EQ(step.next.kind, ExitActionKind::kWait);
}

TEST(ExitStateMachine, RulesUnavailableWaitsButASymbolTheExchangeDoesNotListFails) {
  ExitContext c = context();
  c.rules.reset();
  ExitStep step = start_attempt(claimed("0.5"), c);
  ASSERT_EQ(step.records.size(), 1u);
  EXPECT_EQ(step.records[0].type, EventType::kBlocked);
  c.symbol_listed = false;
  step = start_attempt(claimed("0.5"), c);
  EXPECT_EQ(step.records[0].type, EventType::kFailed);
}

TEST(ExitStateMachine, ATerminalRejectionFailsVisiblyWithWhatFilled) {
  ExitState s = claimed("0.5");
  s = apply(s, start_attempt(s, context()), kT0);
  s = apply(s, on_answer(s, filled("0.25", "23250", "EXPIRED"), context()), kT0);
  const ExitStep step = on_answer(s, kind(AnswerKind::kRejected), context());
  ASSERT_EQ(step.records.size(), 1u);
  EXPECT_EQ(step.records[0].type, EventType::kFailed);
  EXPECT_EQ(step.records[0].filled, D("0.25"));
  EXPECT_EQ(step.next.kind, ExitActionKind::kDone);
}

TEST(ExitStateMachine, AWorkingOrderIsLookedAtAgainLater) {
  ExitState s = claimed("0.5");
  s = apply(s, start_attempt(s, context()), kT0);
  ExchangeAnswer a = filled("0.1", "9300", "PARTIALLY_FILLED");
  a.order->final = false;
  const ExitStep step = on_answer(s, a, context());
  EXPECT_TRUE(step.records.empty());
  EXPECT_EQ(step.next.kind, ExitActionKind::kWait);
}

// Defect 6: a quantity whose notional does not fit the money type is not dust.
TEST(ExitStateMachine, AHugeNotionalIsNotMistakenForDust) {
  EXPECT_EQ(next_order_quantity(LotRules{D("0.001"), D("0.001"), std::nullopt, D("5")}, D("100000000"), D("95000")),
            D("100000000"));
}

// Issue 13: an attempt never sells more than the account holds.
ExitContext holding(const char* free, TimePoint now = kT0) {
  ExitContext c = context(now);
  c.sellable = D(free);
  return c;
}

TEST(ExitStateMachine, AnAttemptIsCappedAtWhatTheAccountHoldsAndTheRestIsRecordedNotHeld) {
  ExitState s = claimed("0.5");
  const ExitStep step = start_attempt(s, holding("0.4995"));  // 0.0005 BTC of the entry went on its fee
  ASSERT_EQ(step.records.size(), 1u);
  EXPECT_EQ(step.next.kind, ExitActionKind::kSend);
  EXPECT_EQ(step.next.quantity, D("0.499"));  // rounded down to the step
  EXPECT_EQ(step.records[0].order_quantity, D("0.499"));
  EXPECT_EQ(step.records[0].not_held, D("0.0005"));
  s = apply(s, step, kT0);
  EXPECT_EQ(s.not_held, D("0.0005"));
  EXPECT_EQ(s.remaining(), D("0.4995"));
  // It fills: the 0.0005 below the step is dust, the 0.0005 not held is never sold.
  const ExitStep end = on_answer(s, filled("0.499", "46407"), holding("0.0005"));
  ASSERT_EQ(end.records.size(), 1u);
  EXPECT_EQ(end.records[0].type, EventType::kExecuted);
  EXPECT_EQ(end.records[0].filled, D("0.499"));
  EXPECT_EQ(end.records[0].not_held, D("0.0005"));
  ASSERT_TRUE(end.records[0].dust);
  EXPECT_EQ(*end.records[0].dust, D("0.0005"));
}

TEST(ExitStateMachine, EnoughHeldSendsTheWholeRemainderAndRecordsNothingNotHeld) {
  const ExitStep step = start_attempt(claimed("0.5"), holding("3"));
  EXPECT_EQ(step.next.quantity, D("0.5"));
  EXPECT_TRUE(step.records[0].not_held.is_zero());
}

TEST(ExitStateMachine, AnUnknownBalanceSendsWhatRemains) {
  const ExitStep step = start_attempt(claimed("0.5"), context());
  EXPECT_EQ(step.next.quantity, D("0.5"));
  EXPECT_TRUE(step.records[0].not_held.is_zero());
}

TEST(ExitStateMachine, NothingHeldAboveTheMinimumFailsNotHeldWithoutAnOrder) {
  for (const char* free : {"0", "0.0009", "-1"}) {
    const ExitStep step = start_attempt(claimed("0.5"), holding(free));
    ASSERT_EQ(step.records.size(), 1u) << free;
    EXPECT_EQ(step.records[0].type, EventType::kFailed) << free;
    EXPECT_EQ(step.records[0].reason, std::string(kNotHeld)) << free;
    EXPECT_NE(step.records[0].error->find("nothing held to sell"), std::string::npos) << *step.records[0].error;
    EXPECT_EQ(step.next.kind, ExitActionKind::kDone);
  }
}

TEST(ExitStateMachine, APartialFillThenLessHeldCapsTheNextAttemptAndKeepsWhatFilled) {
  ExitState s = claimed("0.5");
  s = apply(s, start_attempt(s, holding("0.5")), kT0);
  // 0.3 filled, then the order expired; meanwhile 0.15 more left the account elsewhere.
  const ExitStep next = on_answer(s, filled("0.3", "27900", "EXPIRED"), holding("0.05"));
  ASSERT_EQ(next.records.size(), 1u);
  EXPECT_EQ(next.records[0].type, EventType::kExecutionSubmitted);
  EXPECT_EQ(next.records[0].attempt, 2);
  EXPECT_EQ(next.records[0].filled, D("0.3"));
  EXPECT_EQ(next.records[0].not_held, D("0.15"));
  EXPECT_EQ(next.next.quantity, D("0.05"));
  s = apply(s, next, kT0);
  const ExitStep end = on_answer(s, filled("0.05", "4650"), holding("0"));
  ASSERT_EQ(end.records.size(), 1u);
  EXPECT_EQ(end.records[0].type, EventType::kExecuted);
  EXPECT_EQ(end.records[0].filled, D("0.35"));
  EXPECT_EQ(end.records[0].not_held, D("0.15"));
  EXPECT_FALSE(end.records[0].dust);
}

TEST(ExitStateMachine, NotHeldIsFoldedFromTheEventsAsItWasDecided) {
  ExitState s = claimed("0.5");
  const ExitStep step = start_attempt(s, holding("0.2"));
  // What the store gives back: the facts of the records, folded again.
  ExitFact claim;
  claim.type = EventType::kStopTriggered;
  claim.at = kT0;
  claim.quantity = D("0.5");
  const ExitState folded = fold_exit({claim, exit_fact_of(step.records[0], kT0)});
  EXPECT_EQ(folded.not_held, D("0.3"));
  EXPECT_EQ(folded.remaining(), D("0.2"));
  // A retryable failure keeps it; a later, larger balance does not undo it.
  const ExitStep retry = on_answer(folded, kind(AnswerKind::kNotPlaced), holding("0.2"));
  const ExitState after = apply(folded, retry, kT0);
  EXPECT_EQ(after.not_held, D("0.3"));
  EXPECT_EQ(start_attempt(after, holding("5", kT0 + 1h)).next.quantity, D("0.2"));
}

TEST(ExitStateMachine, WhatOpenOrdersLockWaitsForThemAndWhatIsFreeGoesNow) {
  // 0.5 held: 0.1 free, 0.4 in a resting sell order placed by hand.
  ExitState s = claimed("0.5");
  ExitContext c = holding("0.1");
  c.locked = D("0.4");
  const ExitStep first = start_attempt(s, c);
  ASSERT_EQ(first.next.kind, ExitActionKind::kSend);
  EXPECT_EQ(first.next.quantity, D("0.1"));
  EXPECT_TRUE(first.records[0].not_held.is_zero());
  s = apply(s, first, kT0);
  // Filled; the 0.4 is still locked: the exit waits (retryable), nothing is sent.
  ExitContext after = holding("0");
  after.locked = D("0.4");
  const ExitStep wait = on_answer(s, filled("0.1", "9300"), after);
  ASSERT_EQ(wait.records.size(), 1u);
  EXPECT_EQ(wait.records[0].type, EventType::kBlocked);
  EXPECT_EQ(wait.records[0].reason, std::string(kExchangeRetry));
  EXPECT_NE(wait.records[0].error->find("locked by open orders"), std::string::npos);
  EXPECT_EQ(wait.next.kind, ExitActionKind::kWait);
  s = apply(s, wait, kT0);
  EXPECT_EQ(s.filled, D("0.1"));
  // The hand-placed order is cancelled: the 0.4 is free and goes.
  const ExitStep rest = start_attempt(s, holding("0.4", kT0 + 1h));
  EXPECT_EQ(rest.next.quantity, D("0.4"));
  EXPECT_EQ(rest.records[0].attempt, 2);
  // Had it filled instead, the 0.4 is no longer held: the exit ends with what it sold.
  const ExitStep gone = start_attempt(s, holding("0", kT0 + 1h));
  ASSERT_EQ(gone.records.size(), 1u);
  EXPECT_EQ(gone.records[0].type, EventType::kExecuted);
  EXPECT_EQ(gone.records[0].filled, D("0.1"));
  EXPECT_EQ(gone.records[0].not_held, D("0.4"));
}

}  // namespace
}  // namespace backstop::core
