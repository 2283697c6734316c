// Percent -> absolute conversion and direction validation (DOMAIN §2).
#include <gtest/gtest.h>

#include "core/backfill.h"

namespace backstop::core {
namespace {

Decimal D(const char* text) { return Decimal::parse(text); }
using Outcome = BackfillDecision::Outcome;

BackfillInput input(Side side, const char* entry) {
  BackfillInput in;
  in.id = OperationId{42};
  in.side = side;
  in.entry_price = D(entry);
  return in;
}

TEST(BackfillDecision, SeedExampleBuyTwoPercent) {
  EXPECT_EQ(stop_from_percent(Side::kBuy, D("95000"), D("2")), D("93100"));
  BackfillInput in = input(Side::kBuy, "95000");
  in.stop_loss_percent = D("2");
  const BackfillDecision d = decide_backfill(in);
  ASSERT_EQ(d.outcome, Outcome::kConfigure) << d.reason;
  EXPECT_EQ(d.stop_price, D("93100"));
  EXPECT_TRUE(d.stop_from_percent);
  EXPECT_FALSE(d.target_price.has_value());
}

TEST(BackfillDecision, FormulasForBothSides) {
  struct Case {
    Side side;
    const char* entry;
    const char* pct;
    const char* stop;
    const char* target;
  } cases[] = {
      {Side::kBuy, "95000", "2", "93100", "96900"},
      {Side::kSell, "95000", "2", "96900", "93100"},  // the SELL mirror
      {Side::kBuy, "3000", "3.5", "2895", "3105"},
      {Side::kSell, "3000", "3.5", "3105", "2895"},
      {Side::kBuy, "187.42", "1.25", "185.07725", "189.76275"},
      {Side::kSell, "96250.5", "1.5", "97694.2575", "94806.7425"},
      // rounded once, half up, to 8 decimals: 0.61234567 × 0.95 = 0.5817283865
      {Side::kBuy, "0.61234567", "5", "0.58172839", "0.64296295"},
      {Side::kBuy, "1", "0.000001", "0.99999999", "1.00000001"},
      // 1 × (100 − 0.00000001) ÷ 100 = 0.9999999999: half up gives 1, an invalid BUY stop (checked below)
      {Side::kSell, "1", "0.000001", "1.00000001", "0.99999999"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(to_string(c.side)) + " " + c.entry + " " + c.pct);
    EXPECT_EQ(stop_from_percent(c.side, D(c.entry), D(c.pct)), D(c.stop));
    EXPECT_EQ(target_from_percent(c.side, D(c.entry), D(c.pct)), D(c.target));
    BackfillInput in = input(c.side, c.entry);
    in.stop_loss_percent = D(c.pct);
    in.stop_gain_percent = D(c.pct);
    const BackfillDecision d = decide_backfill(in);
    ASSERT_EQ(d.outcome, Outcome::kConfigure) << d.reason;
    EXPECT_EQ(d.stop_price, D(c.stop));
    EXPECT_EQ(d.target_price, D(c.target));
  }
}

TEST(BackfillDecision, AbsoluteLevelsWinOverPercentages) {
  BackfillInput in = input(Side::kBuy, "100");
  in.stop_price = D("90");
  in.stop_loss_percent = D("2");
  in.stop_gain_percent = D("10");
  const BackfillDecision d = decide_backfill(in);
  ASSERT_EQ(d.outcome, Outcome::kConfigure);
  EXPECT_EQ(d.stop_price, D("90"));
  EXPECT_FALSE(d.stop_from_percent);
  EXPECT_EQ(d.target_price, D("110"));
  EXPECT_TRUE(d.target_from_percent);
}

TEST(BackfillDecision, InvalidRowsCarryTheirReason) {
  struct Case {
    const char* name;
    BackfillInput in;
    const char* reason;
  };
  auto with = [](BackfillInput in, auto change) {
    change(in);
    return in;
  };
  const Case cases[] = {
      {"buy stop above entry", with(input(Side::kBuy, "100"), [](auto& i) { i.stop_price = D("101"); }),
       "stop_price 101 must be below entry 100 for a BUY"},
      {"buy stop at entry", with(input(Side::kBuy, "100"), [](auto& i) { i.stop_price = D("100"); }),
       "stop_price 100 must be below entry 100 for a BUY"},
      {"sell stop below entry", with(input(Side::kSell, "100"), [](auto& i) { i.stop_price = D("99"); }),
       "stop_price 99 must be above entry 100 for a SELL"},
      {"buy target below entry", with(input(Side::kBuy, "100"), [](auto& i) { i.target_price = D("99"); }),
       "target_price 99 must be above entry 100 for a BUY"},
      {"sell target above entry", with(input(Side::kSell, "100"), [](auto& i) { i.target_price = D("101"); }),
       "target_price 101 must be below entry 100 for a SELL"},
      {"negative percent", with(input(Side::kBuy, "100"), [](auto& i) { i.stop_loss_percent = D("-2"); }),
       "stop_loss_percent -2 must be greater than 0"},
      {"zero percent", with(input(Side::kBuy, "100"), [](auto& i) { i.stop_gain_percent = D("0"); }),
       "stop_gain_percent 0 must be greater than 0"},
      {"buy stop of 100 %", with(input(Side::kBuy, "100"), [](auto& i) { i.stop_loss_percent = D("100"); }),
       "stop_price 0 is not positive"},
      {"sell target of 150 %", with(input(Side::kSell, "100"), [](auto& i) { i.stop_gain_percent = D("150"); }),
       "target_price -50 is not positive"},
      {"no entry", with(BackfillInput{}, [](auto& i) { i.stop_loss_percent = D("2"); }), "missing average_entry_price"},
      {"zero entry", with(input(Side::kBuy, "0"), [](auto& i) { i.stop_loss_percent = D("2"); }),
       "average_entry_price 0 is not positive"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const BackfillDecision d = decide_backfill(c.in);
    EXPECT_EQ(d.outcome, Outcome::kInvalid);
    EXPECT_EQ(d.reason, c.reason);
    EXPECT_FALSE(d.stop_price.has_value());
    EXPECT_FALSE(d.target_price.has_value());
  }
}

TEST(BackfillDecision, NothingToConfigureIsNotInvalid) {
  const BackfillDecision d = decide_backfill(input(Side::kSell, "7.1"));
  EXPECT_EQ(d.outcome, Outcome::kNothingToConfigure);
  EXPECT_FALSE(d.reason.empty());
}

}  // namespace
}  // namespace backstop::core

namespace backstop::core {
namespace {
TEST(BackfillDecision, ATinyPercentThatRoundsOntoTheEntryIsInvalid) {
  BackfillInput in;
  in.id = OperationId{1};
  in.side = Side::kBuy;
  in.entry_price = Decimal::parse("1");
  in.stop_loss_percent = Decimal::parse("0.00000001");
  const BackfillDecision d = decide_backfill(in);
  EXPECT_EQ(d.outcome, BackfillDecision::Outcome::kInvalid);
  EXPECT_EQ(d.reason, "stop_price 1 must be below entry 1 for a BUY");
}
}  // namespace
}  // namespace backstop::core
