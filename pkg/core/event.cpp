#include "core/event.h"

#include <array>
#include <utility>

namespace backstop::core {
namespace {

constexpr std::array<std::pair<EventType, std::string_view>, 7> kEventTypes{{
    {EventType::kStopTriggered, "STOP_TRIGGERED"},
    {EventType::kExecutionSubmitted, "EXECUTION_SUBMITTED"},
    {EventType::kExecuted, "EXECUTED"},
    {EventType::kFailed, "FAILED"},
    {EventType::kBlocked, "BLOCKED"},
    {EventType::kStopAdjusted, "STOP_ADJUSTED"},
    {EventType::kStopConfigured, "STOP_CONFIGURED"},
}};

constexpr std::array<std::pair<EventSource, std::string_view>, 5> kSources{{
    {EventSource::kCron, "cron"},
    {EventSource::kStream, "stream"},
    {EventSource::kManual, "manual"},
    {EventSource::kBackfill, "backfill"},
    {EventSource::kTrailing, "trailing"},
}};

constexpr std::array<std::pair<TriggerKind, std::string_view>, 2> kKinds{{
    {TriggerKind::kStopLoss, "STOP_LOSS"},
    {TriggerKind::kTakeProfit, "TAKE_PROFIT"},
}};

template <typename Enum, std::size_t N>
std::string_view name_of(const std::array<std::pair<Enum, std::string_view>, N>& table, Enum value) {
  for (const auto& [candidate, name] : table) {
    if (candidate == value) return name;
  }
  return "UNKNOWN";
}

template <typename Enum, std::size_t N>
std::optional<Enum> value_of(const std::array<std::pair<Enum, std::string_view>, N>& table,
                             std::string_view text) {
  for (const auto& [candidate, name] : table) {
    if (name == text) return candidate;
  }
  return std::nullopt;
}

}  // namespace

std::string_view to_string(EventType type) { return name_of(kEventTypes, type); }
std::string_view to_string(EventSource source) { return name_of(kSources, source); }
std::string_view to_string(TriggerKind kind) { return name_of(kKinds, kind); }
std::optional<EventType> parse_event_type(std::string_view text) { return value_of(kEventTypes, text); }
std::optional<EventSource> parse_event_source(std::string_view text) { return value_of(kSources, text); }
std::optional<TriggerKind> parse_trigger_kind(std::string_view text) { return value_of(kKinds, text); }

std::string genesis_token(OperationId operation) {
  return "genesis-" + std::to_string(operation.value);
}

}  // namespace backstop::core
