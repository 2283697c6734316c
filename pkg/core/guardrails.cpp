#include "core/guardrails.h"

#include "core/enum_names.h"

namespace backstop::core {
namespace {

constexpr NameTable<BlockReason, 7> kReasons{{
    {BlockReason::kKillSwitch, "KILL_SWITCH"},
    {BlockReason::kTenantPaused, "TENANT_PAUSED"},
    {BlockReason::kRateLimitPerMinute, "RATE_LIMIT_MINUTE"},
    {BlockReason::kRateLimitPerHour, "RATE_LIMIT_HOUR"},
    {BlockReason::kCircuitOpen, "CIRCUIT_OPEN"},
    {BlockReason::kStalePrice, "STALE_PRICE"},
    {BlockReason::kSlippageLimit, "SLIPPAGE_LIMIT"},
}};

constexpr NameTable<BreakerState, 3> kStates{{
    {BreakerState::kClosed, "CLOSED"},
    {BreakerState::kOpen, "OPEN"},
    {BreakerState::kHalfOpen, "HALF_OPEN"},
}};

}  // namespace

std::string_view to_string(BlockReason reason) { return name_of(kReasons, reason); }

std::optional<BlockReason> parse_block_reason(std::string_view text) { return value_of(kReasons, text); }

std::string_view to_string(BreakerState state) { return name_of(kStates, state); }

std::optional<BreakerState> parse_breaker_state(std::string_view text) { return value_of(kStates, text); }

BreakerDecision breaker_allows(const CircuitBreaker& breaker, TimePoint now) {
  switch (breaker.state) {
    case BreakerState::kClosed:
      return {true, breaker};
    case BreakerState::kHalfOpen:
      if (!breaker.trial_started_at || now - *breaker.trial_started_at >= breaker.retry_delay) {
        CircuitBreaker trial = breaker;  // the last trial never reported (its process died): another one
        trial.trial_started_at = now;
        return {true, trial};
      }
      return {false, breaker};  // the one trial is in flight
    case BreakerState::kOpen:
      if (breaker.opened_at && now - *breaker.opened_at >= breaker.retry_delay) {
        CircuitBreaker trial = breaker;
        trial.state = BreakerState::kHalfOpen;
        trial.trial_started_at = now;
        return {true, trial};
      }
      return {false, breaker};
  }
  return {false, breaker};
}

CircuitBreaker breaker_on_success(const CircuitBreaker& breaker) {
  CircuitBreaker next = breaker;
  next.state = BreakerState::kClosed;
  next.failure_count = 0;
  next.opened_at.reset();
  next.trial_started_at.reset();
  return next;
}

CircuitBreaker breaker_on_failure(const CircuitBreaker& breaker, TimePoint now) {
  CircuitBreaker next = breaker;
  ++next.failure_count;
  if (breaker.state == BreakerState::kHalfOpen || next.failure_count >= next.failure_threshold) {
    next.state = BreakerState::kOpen;
    next.opened_at = now;
    next.trial_started_at.reset();
  }
  return next;
}

std::optional<BlockReason> pre_trade_block(const PreTradeContext& c) {
  if (!c.tenant.trading_enabled) return BlockReason::kKillSwitch;
  if (c.tenant.paused) return BlockReason::kTenantPaused;
  if (c.price_age > c.max_price_age) return BlockReason::kStalePrice;
  if (c.executions_last_minute >= c.tenant.max_executions_per_minute) return BlockReason::kRateLimitPerMinute;
  if (c.executions_last_hour >= c.tenant.max_executions_per_hour) return BlockReason::kRateLimitPerHour;
  if (!c.breaker_allows) return BlockReason::kCircuitOpen;
  if (c.level.is_positive()) {
    const Decimal distance =
        Decimal::mul_div((c.price - c.level).abs(), Decimal::from_integer(100), c.level, Rounding::kHalfUp);
    if (distance > c.tenant.max_slippage_pct) return BlockReason::kSlippageLimit;
  }
  return std::nullopt;
}

SlippageVerdict judge_fill_slippage(const TenantGuardrails& tenant, Decimal slippage_pct) {
  if (slippage_pct >= tenant.slippage_pause_threshold_pct) return SlippageVerdict::kPauseTenant;
  if (slippage_pct > tenant.max_slippage_pct) return SlippageVerdict::kOverLimit;
  return SlippageVerdict::kWithinLimit;
}

}  // namespace backstop::core
