// Guardrail decisions (DOMAIN §5) as pure functions of values: the tenant's kill
// switch, pause and rate limits, the symbol's circuit breaker, stale prices and
// slippage. A block is recorded as a BLOCKED event with its reason and retried
// on a later pass when the guardrail clears; it is never silently dropped.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "core/decimal.h"

namespace backstop::core {

using TimePoint = std::chrono::system_clock::time_point;

enum class BlockReason {
  kKillSwitch,          // tenant_config.trading_enabled = false
  kTenantPaused,        // paused after a fill beyond slippage_pause_threshold_pct
  kRateLimitPerMinute,  // max_executions_per_minute reached
  kRateLimitPerHour,    // max_executions_per_hour reached
  kCircuitOpen,         // the symbol's breaker is OPEN (or HALF_OPEN with its trial in flight)
  kStalePrice,          // the price is older than the allowed age
  kSlippageLimit,       // the price is further from the level than max_slippage_pct
};
[[nodiscard]] std::string_view to_string(BlockReason reason);
[[nodiscard]] std::optional<BlockReason> parse_block_reason(std::string_view text);

struct TenantGuardrails {
  bool trading_enabled = true;
  Decimal max_slippage_pct = Decimal::from_integer(5);
  Decimal slippage_pause_threshold_pct = Decimal::from_integer(10);
  int max_executions_per_minute = 10;
  int max_executions_per_hour = 100;
  bool paused = false;
};

enum class BreakerState { kClosed, kOpen, kHalfOpen };
[[nodiscard]] std::string_view to_string(BreakerState state);
[[nodiscard]] std::optional<BreakerState> parse_breaker_state(std::string_view text);

struct CircuitBreaker {
  BreakerState state = BreakerState::kClosed;
  int failure_count = 0;
  int failure_threshold = 3;
  std::chrono::seconds retry_delay{300};
  std::optional<TimePoint> opened_at;
  // HALF_OPEN: when its one trial was granted. A trial whose process died
  // never reports; after another retry_delay a new trial is granted, or the
  // symbol's exits would be held for good.
  std::optional<TimePoint> trial_started_at;
  friend bool operator==(const CircuitBreaker&, const CircuitBreaker&) = default;
};

struct BreakerDecision {
  bool allow = true;
  CircuitBreaker next;  // OPEN past its delay becomes HALF_OPEN: this call is the one trial
};
[[nodiscard]] BreakerDecision breaker_allows(const CircuitBreaker& breaker, TimePoint now);
[[nodiscard]] CircuitBreaker breaker_on_success(const CircuitBreaker& breaker);
// An exchange failure (not a business rejection): count it; the threshold or a
// failed HALF_OPEN trial opens the breaker.
[[nodiscard]] CircuitBreaker breaker_on_failure(const CircuitBreaker& breaker, TimePoint now);

struct PreTradeContext {
  TenantGuardrails tenant;
  int executions_last_minute = 0;
  int executions_last_hour = 0;
  bool breaker_allows = true;
  std::chrono::milliseconds price_age{0};
  std::chrono::milliseconds max_price_age{30000};
  Decimal level;  // the stop or target crossed
  Decimal price;  // the price the exit would meet
};

// The first guardrail that holds this exit back, in a fixed order (kill switch
// first), or nullopt to go ahead.
[[nodiscard]] std::optional<BlockReason> pre_trade_block(const PreTradeContext& context);

enum class SlippageVerdict { kWithinLimit, kOverLimit, kPauseTenant };
[[nodiscard]] SlippageVerdict judge_fill_slippage(const TenantGuardrails& tenant, Decimal slippage_pct);

}  // namespace backstop::core
