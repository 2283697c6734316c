#include "core/event.h"

#include "core/enum_names.h"

namespace backstop::core {
namespace {

constexpr NameTable<EventType, 11> kEventTypes{{
    {EventType::kStopTriggered, "STOP_TRIGGERED"},
    {EventType::kExecutionSubmitted, "EXECUTION_SUBMITTED"},
    {EventType::kExecuted, "EXECUTED"},
    {EventType::kFailed, "FAILED"},
    {EventType::kBlocked, "BLOCKED"},
    {EventType::kStopAdjusted, "STOP_ADJUSTED"},
    {EventType::kStopConfigured, "STOP_CONFIGURED"},
    {EventType::kPositionReconciled, "POSITION_RECONCILED"},
    {EventType::kPositionClosedExternally, "POSITION_CLOSED_EXTERNALLY"},
    {EventType::kPositionOutOfSync, "POSITION_OUT_OF_SYNC"},
    {EventType::kPositionInSync, "POSITION_IN_SYNC"},
}};

constexpr NameTable<EventSource, 6> kSources{{
    {EventSource::kCron, "cron"},
    {EventSource::kStream, "stream"},
    {EventSource::kManual, "manual"},
    {EventSource::kBackfill, "backfill"},
    {EventSource::kTrailing, "trailing"},
    {EventSource::kReconcile, "reconcile"},
}};

constexpr NameTable<TriggerKind, 2> kKinds{{
    {TriggerKind::kStopLoss, "STOP_LOSS"},
    {TriggerKind::kTakeProfit, "TAKE_PROFIT"},
}};

}  // namespace

std::string_view to_string(EventType type) { return name_of(kEventTypes, type); }
std::string_view to_string(EventSource source) { return name_of(kSources, source); }
std::string_view to_string(TriggerKind kind) { return name_of(kKinds, kind); }
std::optional<EventType> parse_event_type(std::string_view text) { return value_of(kEventTypes, text); }
std::optional<EventSource> parse_event_source(std::string_view text) { return value_of(kSources, text); }
std::optional<TriggerKind> parse_trigger_kind(std::string_view text) { return value_of(kKinds, text); }

std::string genesis_token(OperationId operation) { return "genesis-" + std::to_string(operation.value); }

}  // namespace backstop::core
