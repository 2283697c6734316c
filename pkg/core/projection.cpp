#include "core/projection.h"

#include <initializer_list>

#include "core/enum_names.h"

namespace backstop::core {
namespace {

constexpr NameTable<ExecutionStatus, 5> kStatuses{{
    {ExecutionStatus::kTriggered, "TRIGGERED"},
    {ExecutionStatus::kBlocked, "BLOCKED"},
    {ExecutionStatus::kSubmitted, "SUBMITTED"},
    {ExecutionStatus::kExecuted, "EXECUTED"},
    {ExecutionStatus::kFailed, "FAILED"},
}};

void require_status(const Execution& execution, const Event& event, std::initializer_list<ExecutionStatus> allowed) {
  for (const ExecutionStatus status : allowed) {
    if (execution.status == status) return;
  }
  throw ProjectionError(std::string(to_string(event.type)) + " is not allowed after " +
                        std::string(to_string(execution.status)) + " (execution token " + event.execution_token +
                        ", operation " + std::to_string(event.operation_id.value) + ")");
}

constexpr NameTable<SyncStatus, 6> kSyncStatuses{{
    {SyncStatus::kUnchecked, "UNCHECKED"},
    {SyncStatus::kInSync, "IN_SYNC"},
    {SyncStatus::kReduced, "REDUCED"},
    {SyncStatus::kClosedElsewhere, "CLOSED_ELSEWHERE"},
    {SyncStatus::kShort, "SHORT"},
    {SyncStatus::kNotReconciled, "NOT_RECONCILED"},
}};

}  // namespace

std::string_view to_string(ExecutionStatus status) { return name_of(kStatuses, status); }

std::optional<ExecutionStatus> parse_execution_status(std::string_view text) { return value_of(kStatuses, text); }

bool is_execution_event(EventType type) {
  switch (type) {
    case EventType::kStopTriggered:
    case EventType::kExecutionSubmitted:
    case EventType::kExecuted:
    case EventType::kFailed:
    case EventType::kBlocked:
      return true;
    case EventType::kStopAdjusted:
    case EventType::kStopConfigured:
    case EventType::kPositionReconciled:
    case EventType::kPositionClosedExternally:
    case EventType::kPositionOutOfSync:
    case EventType::kPositionInSync:
      return false;
  }
  return false;
}

bool affects_operation(EventType type) {
  switch (type) {
    case EventType::kStopConfigured:
    case EventType::kStopAdjusted:
    case EventType::kExecuted:
    case EventType::kPositionReconciled:
    case EventType::kPositionClosedExternally:
    case EventType::kPositionOutOfSync:
    case EventType::kPositionInSync:
      return true;
    case EventType::kStopTriggered:
    case EventType::kExecutionSubmitted:
    case EventType::kFailed:
    case EventType::kBlocked:
      return false;
  }
  return false;
}

Execution apply_to_execution(const std::optional<Execution>& current, const Event& event) {
  if (!is_execution_event(event.type)) {
    throw ProjectionError(std::string(to_string(event.type)) + " does not belong to an execution");
  }
  if (event.type == EventType::kStopTriggered) {
    if (current) {
      throw ProjectionError("execution token " + event.execution_token + " was already triggered (operation " +
                            std::to_string(event.operation_id.value) + ")");
    }
    Execution created;
    created.execution_token = event.execution_token;
    created.operation_id = event.operation_id;
    created.tenant_id = event.tenant_id;
    created.symbol = event.symbol;
    created.trigger_kind = event.trigger_kind;
    created.side = event.side;
    created.status = ExecutionStatus::kTriggered;
    created.source = event.source;
    created.trigger_price = event.trigger_price;
    created.quantity = event.quantity;
    created.triggered_at = event.occurred_at;
    created.last_event_seq = event.seq;
    return created;
  }
  if (!current) {
    throw ProjectionError(std::string(to_string(event.type)) + " for execution token " + event.execution_token +
                          " that was never triggered (operation " + std::to_string(event.operation_id.value) + ")");
  }
  Execution next = *current;
  next.last_event_seq = event.seq;
  switch (event.type) {
    case EventType::kBlocked:
      // From SUBMITTED only when the order is known not to exist at the exchange
      // (never sent, or "no such order"): a guardrail holds it until it clears.
      require_status(next, event,
                     {ExecutionStatus::kTriggered, ExecutionStatus::kBlocked, ExecutionStatus::kSubmitted,
                      ExecutionStatus::kFailed});
      next.status = ExecutionStatus::kBlocked;
      next.blocked_reason = event.reason;
      next.blocked_at = event.occurred_at;
      break;
    case EventType::kExecutionSubmitted:
      require_status(next, event,
                     {ExecutionStatus::kTriggered, ExecutionStatus::kBlocked, ExecutionStatus::kSubmitted,
                      ExecutionStatus::kFailed});
      if (next.submitted_at) ++next.retry_count;
      next.status = ExecutionStatus::kSubmitted;
      next.submitted_at = event.occurred_at;
      // `quantity` stays the exit's target, fixed by the claim: an attempt's
      // order size (its event's quantity) is only a part of it.
      break;
    case EventType::kExecuted:
      // From BLOCKED when a retry finds the remainder of a partly filled exit is dust.
      require_status(next, event, {ExecutionStatus::kSubmitted, ExecutionStatus::kBlocked});
      next.status = ExecutionStatus::kExecuted;
      next.executed_at = event.occurred_at;
      next.fill_price = event.fill_price;
      next.slippage_pct = event.slippage_pct;
      next.exchange_order_id = event.exchange_order_id;
      next.error_message.reset();
      break;
    case EventType::kFailed:
      require_status(next, event,
                     {ExecutionStatus::kTriggered, ExecutionStatus::kBlocked, ExecutionStatus::kSubmitted});
      next.status = ExecutionStatus::kFailed;
      next.failed_at = event.occurred_at;
      next.error_message = event.error_message;
      if (event.exchange_order_id) next.exchange_order_id = event.exchange_order_id;
      break;
    case EventType::kStopTriggered:
    case EventType::kStopAdjusted:
    case EventType::kStopConfigured:
    case EventType::kPositionReconciled:
    case EventType::kPositionClosedExternally:
    case EventType::kPositionOutOfSync:
    case EventType::kPositionInSync:
      break;  // handled above, or not an execution's
  }
  return next;
}

OperationProjection apply_to_operation(OperationProjection current, const Event& event) {
  switch (event.type) {
    case EventType::kStopConfigured:
    case EventType::kStopAdjusted:
      if (event.stop_price) current.stop_price = event.stop_price;
      if (event.target_price) current.target_price = event.target_price;
      break;
    case EventType::kExecuted:
      current.closed = true;
      break;
    case EventType::kPositionReconciled:
      current.quantity = event.quantity;
      current.sync_status = SyncStatus::kReduced;
      break;
    case EventType::kPositionClosedExternally:
      current.closed = true;
      current.sync_status = SyncStatus::kClosedElsewhere;
      break;
    case EventType::kPositionOutOfSync:
      current.sync_status = SyncStatus::kShort;
      break;
    case EventType::kPositionInSync:
      current.sync_status = SyncStatus::kInSync;
      break;
    default:
      break;
  }
  return current;
}

std::string_view to_string(SyncStatus status) { return name_of(kSyncStatuses, status); }

std::optional<SyncStatus> parse_sync_status(std::string_view text) { return value_of(kSyncStatuses, text); }

}  // namespace backstop::core
