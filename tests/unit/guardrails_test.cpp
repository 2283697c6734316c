// Guardrail decisions and the circuit breaker state machine.
#include "core/guardrails.h"

#include <gtest/gtest.h>

namespace backstop::core {
namespace {

using namespace std::chrono_literals;
Decimal D(const char* text) { return Decimal::parse(text); }

PreTradeContext ok() {
  PreTradeContext c;
  c.level = D("100");
  c.price = D("99");
  return c;
}

TEST(Guardrails, NothingBlocksANormalExit) { EXPECT_EQ(pre_trade_block(ok()), std::nullopt); }

TEST(Guardrails, EachGuardrailBlocksWithItsReason) {
  auto c = ok();
  c.tenant.trading_enabled = false;
  EXPECT_EQ(pre_trade_block(c), BlockReason::kKillSwitch);
  c = ok();
  c.tenant.paused = true;
  EXPECT_EQ(pre_trade_block(c), BlockReason::kTenantPaused);
  c = ok();
  c.executions_last_minute = 10;
  EXPECT_EQ(pre_trade_block(c), BlockReason::kRateLimitPerMinute);
  c.executions_last_minute = 9;
  EXPECT_EQ(pre_trade_block(c), std::nullopt);
  c.executions_last_hour = 100;
  EXPECT_EQ(pre_trade_block(c), BlockReason::kRateLimitPerHour);
  c = ok();
  c.breaker_allows = false;
  EXPECT_EQ(pre_trade_block(c), BlockReason::kCircuitOpen);
  c = ok();
  c.price_age = 30001ms;
  EXPECT_EQ(pre_trade_block(c), BlockReason::kStalePrice);
  c.price_age = 30000ms;
  EXPECT_EQ(pre_trade_block(c), std::nullopt);
  c = ok();
  c.price = D("94.99999999");  // more than 5 % from the level
  EXPECT_EQ(pre_trade_block(c), BlockReason::kSlippageLimit);
  c.price = D("95");
  EXPECT_EQ(pre_trade_block(c), std::nullopt);
}

TEST(Guardrails, KillSwitchComesFirst) {
  auto c = ok();
  c.tenant.trading_enabled = false;
  c.breaker_allows = false;
  c.price_age = 1h;
  EXPECT_EQ(pre_trade_block(c), BlockReason::kKillSwitch);
}

TEST(Guardrails, FillSlippageVerdicts) {
  const TenantGuardrails t;
  EXPECT_EQ(judge_fill_slippage(t, D("-3")), SlippageVerdict::kWithinLimit);
  EXPECT_EQ(judge_fill_slippage(t, D("5")), SlippageVerdict::kWithinLimit);
  EXPECT_EQ(judge_fill_slippage(t, D("5.00000001")), SlippageVerdict::kOverLimit);
  EXPECT_EQ(judge_fill_slippage(t, D("10")), SlippageVerdict::kPauseTenant);
}

TEST(CircuitBreaker, OpensAfterThresholdTriesOnceAfterDelayAndClosesOnSuccess) {
  const TimePoint t0{};
  CircuitBreaker b;
  b = breaker_on_failure(b, t0);
  b = breaker_on_failure(b, t0);
  EXPECT_EQ(b.state, BreakerState::kClosed);
  EXPECT_TRUE(breaker_allows(b, t0).allow);
  b = breaker_on_failure(b, t0 + 1s);
  EXPECT_EQ(b.state, BreakerState::kOpen);
  EXPECT_EQ(b.opened_at, t0 + 1s);
  EXPECT_FALSE(breaker_allows(b, t0 + 300s).allow);  // 299 s after opening
  const auto trial = breaker_allows(b, t0 + 301s);
  EXPECT_TRUE(trial.allow);
  EXPECT_EQ(trial.next.state, BreakerState::kHalfOpen);
  EXPECT_FALSE(breaker_allows(trial.next, t0 + 302s).allow);  // only one trial
  const CircuitBreaker closed = breaker_on_success(trial.next);
  EXPECT_EQ(closed.state, BreakerState::kClosed);
  EXPECT_EQ(closed.failure_count, 0);
  const CircuitBreaker reopened = breaker_on_failure(trial.next, t0 + 303s);
  EXPECT_EQ(reopened.state, BreakerState::kOpen);
  EXPECT_EQ(reopened.opened_at, t0 + 303s);
}

// Found by the hundred-kills test: a trial whose process was killed never
// reported, and the breaker stayed HALF_OPEN, holding every exit of the symbol
// for good. After another retry delay a new trial goes.
TEST(CircuitBreaker, ATrialThatNeverReportsIsGrantedAgainAfterTheRetryDelay) {
  const TimePoint t0{};
  CircuitBreaker b;
  b.state = BreakerState::kOpen;
  b.opened_at = t0;
  const auto trial = breaker_allows(b, t0 + 300s);
  ASSERT_TRUE(trial.allow);
  EXPECT_EQ(trial.next.trial_started_at, t0 + 300s);
  EXPECT_FALSE(breaker_allows(trial.next, t0 + 599s).allow);
  const auto again = breaker_allows(trial.next, t0 + 600s);
  EXPECT_TRUE(again.allow);
  EXPECT_EQ(again.next.state, BreakerState::kHalfOpen);
  EXPECT_EQ(again.next.trial_started_at, t0 + 600s);
  EXPECT_FALSE(breaker_allows(again.next, t0 + 601s).allow);  // still one at a time
  EXPECT_EQ(breaker_on_success(again.next).trial_started_at, std::nullopt);
}

TEST(CircuitBreaker, NamesRoundTrip) {
  for (auto s : {BreakerState::kClosed, BreakerState::kOpen, BreakerState::kHalfOpen}) {
    EXPECT_EQ(parse_breaker_state(to_string(s)), s);
  }
  for (auto r : {BlockReason::kKillSwitch, BlockReason::kTenantPaused, BlockReason::kRateLimitPerMinute,
                 BlockReason::kRateLimitPerHour, BlockReason::kCircuitOpen, BlockReason::kStalePrice,
                 BlockReason::kSlippageLimit}) {
    EXPECT_EQ(parse_block_reason(to_string(r)), r);
  }
}

}  // namespace
}  // namespace backstop::core
