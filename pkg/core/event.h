// The events of the append-only event store (DOMAIN §3) as plain values.
// The store assigns seq, event_id and occurred_at; producers fill the rest.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/decimal.h"
#include "core/operation.h"

namespace backstop::core {

enum class EventType {
  kStopTriggered,       // a stop or target was hit; claims the execution token
  kExecutionSubmitted,  // an exit order is about to be sent (attempt n)
  kExecuted,            // the exit filled: fill price, slippage, exchange order id
  kFailed,              // the exit failed: full error text
  kBlocked,             // a guardrail held the exit back: reason
  kStopAdjusted,        // trailing stop moved the level
  kStopConfigured,      // genesis / backfill / manual configuration of the levels
  // Account truth (issue 13): what reconcile learnt from the exchange account.
  kPositionReconciled,        // the quantity follows the account (a sell elsewhere, a base-asset fee)
  kPositionClosedExternally,  // closed without an exit: sold elsewhere, or nothing left
  kPositionOutOfSync,         // flagged: the account holds less and no trade says why
  kPositionInSync,            // back in sync after a flag
};

enum class EventSource { kCron, kStream, kManual, kBackfill, kTrailing, kReconcile };

enum class TriggerKind { kStopLoss, kTakeProfit };

[[nodiscard]] std::string_view to_string(EventType type);
[[nodiscard]] std::string_view to_string(EventSource source);
[[nodiscard]] std::string_view to_string(TriggerKind kind);
[[nodiscard]] std::optional<EventType> parse_event_type(std::string_view text);
[[nodiscard]] std::optional<EventSource> parse_event_source(std::string_view text);
[[nodiscard]] std::optional<TriggerKind> parse_trigger_kind(std::string_view text);

struct Event {
  // Assigned by the store when the event is appended.
  std::int64_t seq = 0;
  std::string event_id;     // UUID
  std::string occurred_at;  // timestamptz as PostgreSQL prints it in UTC

  OperationId operation_id;
  TenantId tenant_id;
  std::string symbol;
  EventType type = EventType::kStopConfigured;
  EventSource source = EventSource::kManual;
  // Deterministic per protective exit (or per adjustment step / genesis): the
  // idempotency key. Never derived from a clock.
  std::string execution_token;
  std::optional<TriggerKind> trigger_kind;
  std::optional<Side> side;  // side of the exit order
  std::optional<Decimal> trigger_price;
  std::optional<Decimal> stop_price;
  std::optional<Decimal> target_price;
  std::optional<Decimal> quantity;
  std::optional<Decimal> fill_price;
  std::optional<Decimal> slippage_pct;
  std::optional<std::string> exchange_order_id;
  std::optional<std::string> reason;         // BLOCKED / STOP_ADJUSTED / STOP_CONFIGURED reason
  std::optional<std::string> error_message;  // FAILED: the full text, never truncated
  std::string payload = "{}";                // JSON object with anything else

  friend bool operator==(const Event&, const Event&) = default;
};

// Tokens that must be unique per operation and purpose.
[[nodiscard]] std::string genesis_token(OperationId operation);

}  // namespace backstop::core
