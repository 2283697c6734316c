// Projections as pure folds over events. The store applies exactly these
// functions when it appends (live path) and when it rebuilds from the event log
// (replay), so a rebuilt projection can only differ from the live one if a row
// was changed outside the event store.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/event.h"

namespace backstop::core {

// An event that is impossible in the current state (e.g. EXECUTED for a token
// that was never submitted). The append is refused; replay reports it.
class ProjectionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ExecutionStatus { kTriggered, kBlocked, kSubmitted, kExecuted, kFailed };
[[nodiscard]] std::string_view to_string(ExecutionStatus status);
[[nodiscard]] std::optional<ExecutionStatus> parse_execution_status(std::string_view text);

// One row of `stop_executions`: the state of one protective exit.
struct Execution {
  std::string execution_token;
  OperationId operation_id;
  TenantId tenant_id;
  std::string symbol;
  std::optional<TriggerKind> trigger_kind;
  std::optional<Side> side;
  ExecutionStatus status = ExecutionStatus::kTriggered;
  EventSource source = EventSource::kCron;  // who triggered it
  std::optional<Decimal> trigger_price;
  std::optional<Decimal> quantity;
  std::optional<Decimal> fill_price;
  std::optional<Decimal> slippage_pct;
  std::optional<std::string> exchange_order_id;
  std::optional<std::string> error_message;
  std::optional<std::string> blocked_reason;
  std::optional<std::string> triggered_at;
  std::optional<std::string> blocked_at;
  std::optional<std::string> submitted_at;
  std::optional<std::string> executed_at;
  std::optional<std::string> failed_at;
  std::int32_t retry_count = 0;  // submissions after the first
  std::int64_t last_event_seq = 0;

  friend bool operator==(const Execution&, const Execution&) = default;
};

// True for the event types that belong to an execution's life.
[[nodiscard]] bool is_execution_event(EventType type);

// Folds `event` into the execution identified by its token. `current` is the
// execution's state before the event (nullopt if none). Throws ProjectionError
// for an impossible transition.
[[nodiscard]] Execution apply_to_execution(const std::optional<Execution>& current, const Event& event);

// How an operation compares with the exchange account (issue 13; the column
// operation.sync_status).
enum class SyncStatus { kUnchecked, kInSync, kReduced, kClosedElsewhere, kShort, kNotReconciled };
[[nodiscard]] std::string_view to_string(SyncStatus status);
[[nodiscard]] std::optional<SyncStatus> parse_sync_status(std::string_view text);

// The part of an `operation` row that events decide.
struct OperationProjection {
  std::optional<Decimal> stop_price;
  std::optional<Decimal> target_price;
  bool closed = false;
  // Set by reconcile's events; nullopt: no event decided it (the row's value stands).
  std::optional<Decimal> quantity;
  std::optional<SyncStatus> sync_status;
  friend bool operator==(const OperationProjection&, const OperationProjection&) = default;
};

// STOP_CONFIGURED sets the levels it carries, STOP_ADJUSTED moves them,
// EXECUTED closes the operation; POSITION_RECONCILED sets the quantity,
// POSITION_CLOSED_EXTERNALLY closes it, the four set the sync status; other
// events leave it as it is.
[[nodiscard]] OperationProjection apply_to_operation(OperationProjection current, const Event& event);
[[nodiscard]] bool affects_operation(EventType type);

}  // namespace backstop::core
