// The execution and operation projections as pure folds (DOMAIN §3).
#include "core/projection.h"

#include <gtest/gtest.h>

namespace backstop::core {
namespace {

Decimal D(const char* text) { return Decimal::parse(text); }

Event event(EventType type, std::int64_t seq, const char* at) {
  Event e;
  e.seq = seq;
  e.occurred_at = at;
  e.operation_id = OperationId{7};
  e.tenant_id = TenantId{1};
  e.symbol = "BTCUSDT";
  e.type = type;
  e.source = EventSource::kCron;
  e.execution_token = "op7-STOP_LOSS-93100";
  return e;
}

Execution fold(std::initializer_list<Event> events) {
  std::optional<Execution> x;
  for (const Event& e : events) x = apply_to_execution(x, e);
  return *x;
}

TEST(ExecutionProjection, SuccessfulExitLife) {
  Event triggered = event(EventType::kStopTriggered, 1, "t1");
  triggered.trigger_kind = TriggerKind::kStopLoss;
  triggered.side = Side::kSell;
  triggered.trigger_price = D("93050");
  triggered.quantity = D("0.01");
  Event submitted = event(EventType::kExecutionSubmitted, 2, "t2");
  Event executed = event(EventType::kExecuted, 3, "t3");
  executed.fill_price = D("93000");
  executed.slippage_pct = D("0.05373455");
  executed.exchange_order_id = "123456";
  const Execution x = fold({triggered, submitted, executed});
  EXPECT_EQ(x.status, ExecutionStatus::kExecuted);
  EXPECT_EQ(x.trigger_kind, TriggerKind::kStopLoss);
  EXPECT_EQ(x.side, Side::kSell);
  EXPECT_EQ(x.trigger_price, D("93050"));
  EXPECT_EQ(x.fill_price, D("93000"));
  EXPECT_EQ(x.slippage_pct, D("0.05373455"));
  EXPECT_EQ(x.exchange_order_id, "123456");
  EXPECT_EQ(x.triggered_at, "t1");
  EXPECT_EQ(x.submitted_at, "t2");
  EXPECT_EQ(x.executed_at, "t3");
  EXPECT_EQ(x.retry_count, 0);
  EXPECT_EQ(x.last_event_seq, 3);
}

TEST(ExecutionProjection, FailureKeepsTheFullErrorText) {
  const std::string long_error(5000, 'x');
  Event failed = event(EventType::kFailed, 3, "t3");
  failed.error_message = "binance -2010: Account has insufficient balance " + long_error;
  const Execution x =
      fold({event(EventType::kStopTriggered, 1, "t1"), event(EventType::kExecutionSubmitted, 2, "t2"), failed});
  EXPECT_EQ(x.status, ExecutionStatus::kFailed);
  EXPECT_EQ(x.error_message, failed.error_message);
  EXPECT_EQ(x.failed_at, "t3");
}

TEST(ExecutionProjection, BlockedThenRetriedCountsResubmissions) {
  Event blocked = event(EventType::kBlocked, 2, "t2");
  blocked.reason = "KILL_SWITCH";
  const Execution x =
      fold({event(EventType::kStopTriggered, 1, "t1"), blocked, event(EventType::kExecutionSubmitted, 3, "t3"),
            event(EventType::kExecutionSubmitted, 4, "t4")});
  EXPECT_EQ(x.status, ExecutionStatus::kSubmitted);
  EXPECT_EQ(x.blocked_reason, "KILL_SWITCH");
  EXPECT_EQ(x.blocked_at, "t2");
  EXPECT_EQ(x.submitted_at, "t4");
  EXPECT_EQ(x.retry_count, 1);
}

TEST(ExecutionProjection, SubmissionThatNeverReachedTheExchangeCanBeBlocked) {
  Event blocked = event(EventType::kBlocked, 3, "t3");
  blocked.reason = "CIRCUIT_OPEN";
  const Execution x = fold({event(EventType::kStopTriggered, 1, "t1"), event(EventType::kExecutionSubmitted, 2, "t2"),
                            blocked, event(EventType::kExecutionSubmitted, 4, "t4")});
  EXPECT_EQ(x.status, ExecutionStatus::kSubmitted);
  EXPECT_EQ(x.blocked_reason, "CIRCUIT_OPEN");
  EXPECT_EQ(x.retry_count, 1);
}

TEST(ExecutionProjection, ImpossibleTransitionsAreRefused) {
  const Event triggered = event(EventType::kStopTriggered, 1, "t1");
  EXPECT_THROW((void)apply_to_execution(std::nullopt, event(EventType::kExecuted, 1, "t")), ProjectionError);
  EXPECT_THROW((void)apply_to_execution(std::nullopt, event(EventType::kBlocked, 1, "t")), ProjectionError);
  const Execution x = fold({triggered});
  EXPECT_THROW((void)apply_to_execution(x, triggered), ProjectionError);  // double trigger
  EXPECT_THROW((void)apply_to_execution(x, event(EventType::kExecuted, 2, "t")), ProjectionError);
  const Execution done =
      fold({triggered, event(EventType::kExecutionSubmitted, 2, "t2"), event(EventType::kExecuted, 3, "t3")});
  EXPECT_THROW((void)apply_to_execution(done, event(EventType::kExecutionSubmitted, 4, "t")), ProjectionError);
  EXPECT_THROW((void)apply_to_execution(done, event(EventType::kFailed, 4, "t")), ProjectionError);
  EXPECT_THROW((void)apply_to_execution(x, event(EventType::kStopConfigured, 2, "t")), ProjectionError);
}

TEST(OperationProjection, ConfiguredAdjustedAndClosed) {
  Event configured = event(EventType::kStopConfigured, 1, "t1");
  configured.stop_price = D("93100");
  configured.target_price = D("98800");
  OperationProjection p = apply_to_operation({}, configured);
  EXPECT_EQ(p.stop_price, D("93100"));
  EXPECT_EQ(p.target_price, D("98800"));
  Event adjusted = event(EventType::kStopAdjusted, 2, "t2");
  adjusted.stop_price = D("95142.5");
  p = apply_to_operation(p, adjusted);
  EXPECT_EQ(p.stop_price, D("95142.5"));
  EXPECT_EQ(p.target_price, D("98800"));  // untouched when the event carries none
  EXPECT_FALSE(p.closed);
  p = apply_to_operation(p, event(EventType::kBlocked, 3, "t3"));
  EXPECT_FALSE(p.closed);
  p = apply_to_operation(p, event(EventType::kExecuted, 4, "t4"));
  EXPECT_TRUE(p.closed);
}

// Issue 13: reconcile's events decide the quantity and the sync status; they
// belong to no execution.
TEST(OperationProjection, ReconcileEventsSetTheQuantityTheSyncStatusAndClose) {
  Event reduced = event(EventType::kPositionReconciled, 1, "t1");
  reduced.quantity = D("0.25");
  OperationProjection p = apply_to_operation({}, reduced);
  EXPECT_EQ(p.quantity, D("0.25"));
  EXPECT_EQ(p.sync_status, SyncStatus::kReduced);
  EXPECT_FALSE(p.closed);
  p = apply_to_operation(p, event(EventType::kPositionOutOfSync, 2, "t2"));
  EXPECT_EQ(p.sync_status, SyncStatus::kShort);
  EXPECT_EQ(p.quantity, D("0.25"));  // a flag changes no quantity
  p = apply_to_operation(p, event(EventType::kPositionInSync, 3, "t3"));
  EXPECT_EQ(p.sync_status, SyncStatus::kInSync);
  p = apply_to_operation(p, event(EventType::kPositionClosedExternally, 4, "t4"));
  EXPECT_TRUE(p.closed);
  EXPECT_EQ(p.sync_status, SyncStatus::kClosedElsewhere);
  for (const EventType t : {EventType::kPositionReconciled, EventType::kPositionClosedExternally,
                            EventType::kPositionOutOfSync, EventType::kPositionInSync}) {
    EXPECT_TRUE(affects_operation(t));
    EXPECT_FALSE(is_execution_event(t));
  }
  // Levels and closing by an exit leave the quantity to the row.
  EXPECT_FALSE(apply_to_operation({}, event(EventType::kExecuted, 5, "t5")).quantity);
  EXPECT_EQ(parse_sync_status("CLOSED_ELSEWHERE"), SyncStatus::kClosedElsewhere);
  EXPECT_EQ(parse_sync_status("closed"), std::nullopt);
}

TEST(EventNames, RoundTrip) {
  for (const EventType t :
       {EventType::kStopTriggered, EventType::kExecutionSubmitted, EventType::kExecuted, EventType::kFailed,
        EventType::kBlocked, EventType::kStopAdjusted, EventType::kStopConfigured, EventType::kPositionReconciled,
        EventType::kPositionClosedExternally, EventType::kPositionOutOfSync, EventType::kPositionInSync}) {
    EXPECT_EQ(parse_event_type(to_string(t)), t);
  }
  EXPECT_EQ(parse_event_source("reconcile"), EventSource::kReconcile);
  EXPECT_EQ(parse_event_type("stop_triggered"), std::nullopt);
  EXPECT_EQ(parse_side("BUY"), Side::kBuy);
  EXPECT_EQ(parse_side("buy"), std::nullopt);
  EXPECT_EQ(exit_side(Side::kBuy), Side::kSell);
  EXPECT_EQ(genesis_token(OperationId{12}), "genesis-12");
}

}  // namespace
}  // namespace backstop::core
