// Trigger rules: BUY/SELL × stop/target × below/at/above, fallbacks, tokens, slippage.
#include "core/trigger.h"

#include <gtest/gtest.h>

namespace backstop::core {
namespace {

Decimal D(const char* text) { return Decimal::parse(text); }

ProtectedPosition position(Side side, const char* stop, const char* target) {
  ProtectedPosition p;
  p.id = OperationId{7};
  p.tenant = TenantId{1};
  p.symbol = "BTCUSDT";
  p.side = side;
  p.quantity = D("0.5");
  p.entry_price = D("100");
  if (stop != nullptr) p.stop_price = D(stop);
  if (target != nullptr) p.target_price = D(target);
  return p;
}

TEST(Trigger, TableOfSidesKindsAndPrices) {
  struct Case {
    Side side;
    const char* price;
    std::optional<TriggerKind> fires;
  } cases[] = {
      // BUY (long): stop 90, target 110
      {Side::kBuy, "89.99999999", TriggerKind::kStopLoss},
      {Side::kBuy, "90", TriggerKind::kStopLoss},  // at the level fires
      {Side::kBuy, "90.00000001", std::nullopt},
      {Side::kBuy, "100", std::nullopt},
      {Side::kBuy, "109.99999999", std::nullopt},
      {Side::kBuy, "110", TriggerKind::kTakeProfit},
      {Side::kBuy, "110.00000001", TriggerKind::kTakeProfit},
      // SELL (short): stop 110, target 90
      {Side::kSell, "110.00000001", TriggerKind::kStopLoss},
      {Side::kSell, "110", TriggerKind::kStopLoss},
      {Side::kSell, "109.99999999", std::nullopt},
      {Side::kSell, "100", std::nullopt},
      {Side::kSell, "90.00000001", std::nullopt},
      {Side::kSell, "90", TriggerKind::kTakeProfit},
      {Side::kSell, "89.99999999", TriggerKind::kTakeProfit},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(to_string(c.side)) + " at " + c.price);
    const auto p = c.side == Side::kBuy ? position(Side::kBuy, "90", "110") : position(Side::kSell, "110", "90");
    const auto trigger = evaluate(p, D(c.price));
    ASSERT_EQ(trigger.has_value(), c.fires.has_value());
    if (!trigger) continue;
    EXPECT_EQ(trigger->kind, *c.fires);
    EXPECT_EQ(trigger->price, D(c.price));
    EXPECT_EQ(trigger->exit_side, exit_side(c.side));
    EXPECT_EQ(trigger->level, D(*c.fires == TriggerKind::kStopLoss ? (c.side == Side::kBuy ? "90" : "110")
                                                                   : (c.side == Side::kBuy ? "110" : "90")));
  }
}

TEST(Trigger, StopWinsWhenBothWouldFire) {
  // A crossed configuration (bad data): the capital-protecting exit wins.
  const auto trigger = evaluate(position(Side::kBuy, "105", "95"), D("100"));
  ASSERT_TRUE(trigger);
  EXPECT_EQ(trigger->kind, TriggerKind::kStopLoss);
}

TEST(Trigger, AbsoluteStopIsUsedAndPercentOnlyAsFallback) {
  ProtectedPosition p = position(Side::kBuy, "93100", nullptr);
  p.entry_price = D("95000");
  p.stop_loss_percent = D("10");  // would be 85,500: ignored, the absolute level wins
  EXPECT_EQ(effective_stop(p), D("93100"));
  EXPECT_TRUE(evaluate(p, D("93000")));
  p.stop_price.reset();
  EXPECT_EQ(effective_stop(p), D("85500"));
  EXPECT_FALSE(evaluate(p, D("93000")));
  EXPECT_TRUE(evaluate(p, D("85500")));
}

TEST(Trigger, WithoutAnyStopTheOperationIsSkipped) {
  ProtectedPosition p = position(Side::kBuy, nullptr, nullptr);
  EXPECT_FALSE(effective_stop(p));
  EXPECT_FALSE(evaluate(p, D("0.00000001")));
  EXPECT_FALSE(evaluate(p, D("999999")));
  p.stop_loss_percent = D("2");
  p.entry_price.reset();  // a percentage without an entry price is unusable
  EXPECT_FALSE(effective_stop(p));
}

TEST(Trigger, BookPriceUsesTheExitSide) {
  const Quote quote{D("100"), D("99.5"), D("100.5")};
  EXPECT_EQ(decisive_price(quote, Side::kBuy, PriceSource::kLast), D("100"));
  EXPECT_EQ(decisive_price(quote, Side::kBuy, PriceSource::kBook), D("99.5"));  // a long sells into the bid
  EXPECT_EQ(decisive_price(quote, Side::kSell, PriceSource::kBook), D("100.5"));
  EXPECT_FALSE(decisive_price(Quote{D("1"), std::nullopt, std::nullopt}, Side::kBuy, PriceSource::kBook));
}

TEST(Trigger, TokensAreDeterministicPerExit) {
  EXPECT_EQ(execution_token(OperationId{7}, TriggerKind::kStopLoss, D("93100.00")), "op7-SL-93100");
  EXPECT_EQ(execution_token(OperationId{7}, TriggerKind::kStopLoss, D("93100")),
            execution_token(OperationId{7}, TriggerKind::kStopLoss, D("93100.00000000")));
  EXPECT_NE(execution_token(OperationId{7}, TriggerKind::kStopLoss, D("93100")),
            execution_token(OperationId{7}, TriggerKind::kTakeProfit, D("93100")));
  EXPECT_LE(execution_token(OperationId{INT64_MAX}, TriggerKind::kTakeProfit, D("-999999999999.99999999")).size(), 64u);
}

TEST(Trigger, SlippageIsPositiveWhenWorseForTheOwner) {
  EXPECT_EQ(slippage_pct(Side::kSell, D("100"), D("99")), D("1"));      // long sold lower
  EXPECT_EQ(slippage_pct(Side::kSell, D("100"), D("101")), D("-1"));    // sold higher: price improvement
  EXPECT_EQ(slippage_pct(Side::kBuy, D("100"), D("100.5")), D("0.5"));  // short bought higher
  EXPECT_EQ(slippage_pct(Side::kBuy, D("93050"), D("93000")), D("-0.05373455"));
}

}  // namespace
}  // namespace backstop::core
