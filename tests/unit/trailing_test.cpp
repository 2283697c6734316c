#include "core/trailing.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>

namespace backstop::core {
namespace {

Decimal D(const char* text) { return Decimal::parse(text); }

TrailingPosition long_position(const char* entry, const char* stop) { return {Side::kBuy, D(entry), D(stop), D(stop)}; }
TrailingPosition short_position(const char* entry, const char* stop) {
  return {Side::kSell, D(entry), D(stop), D(stop)};
}

// Applies the rule to each price in turn, as successive passes would.
Decimal walk(const TrailingRule& rule, TrailingPosition p, const std::vector<const char*>& prices,
             std::vector<std::string>* stops = nullptr) {
  for (const char* price : prices) {
    if (const auto a = trail(rule, p, D(price))) p.stop = a->new_stop;
    if (stops != nullptr) stops->push_back(p.stop.to_string());
  }
  return p.stop;
}

TEST(HandSpan, WorkedExampleLong) {
  const TrailingRule rule;
  std::vector<std::string> stops;
  walk(rule, long_position("50000", "49000"), {"51000", "52000", "54000", "50500"}, &stops);
  EXPECT_EQ(stops, (std::vector<std::string>{"50075", "51000", "53000", "53000"}));
}

TEST(HandSpan, WorkedExampleShort) {
  const TrailingRule rule;
  std::vector<std::string> stops;
  walk(rule, short_position("3000", "3100"), {"2900", "2800", "2700"}, &stops);
  // 3000 / 1.0015 = 2995.5067398..., rounded down: a short's stop errs low.
  EXPECT_EQ(stops, (std::vector<std::string>{"2995.50673989", "2900", "2800"}));
  TrailingRule ticked;
  ticked.tick_size = D("0.01");
  EXPECT_EQ(walk(ticked, short_position("3000", "3100"), {"2900"}).to_string(), "2995.5");
}

TEST(HandSpan, StepsAndReasons) {
  const TrailingRule rule;
  const TrailingPosition p = long_position("50000", "49000");
  auto a = trail(rule, p, D("51000"));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->reason, AdjustReason::kBreakEven);
  EXPECT_EQ(a->step, 1);
  EXPECT_EQ(a->old_stop, D("49000"));
  a = trail(rule, p, D("52000"));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->reason, AdjustReason::kTrailing);
  EXPECT_EQ(a->step, 2);
  EXPECT_EQ(adjustment_token(OperationId{7}, TrailingMode::kHandSpan, *a), "op7-HS-2");
}

TEST(HandSpan, ExactSpanBoundaries) {
  const TrailingRule rule;
  const TrailingPosition p = long_position("50000", "49000");
  EXPECT_EQ(hand_span_step(p, D("50999.99999999")), 0);
  EXPECT_FALSE(trail(rule, p, D("50999.99999999")));
  EXPECT_EQ(hand_span_step(p, D("51000")), 1);
  EXPECT_EQ(hand_span_step(p, D("51999.99999999")), 1);
  EXPECT_EQ(hand_span_step(p, D("52000")), 2);
  const TrailingPosition s = short_position("3000", "3100");
  EXPECT_EQ(hand_span_step(s, D("2900.00000001")), 0);
  EXPECT_EQ(hand_span_step(s, D("2900")), 1);
  EXPECT_EQ(hand_span_step(s, D("2800")), 2);
  EXPECT_EQ(hand_span_step(s, D("3050")), 0);  // a loss
}

TEST(HandSpan, GapOverSeveralSpansJumpsStraightToN) {
  const TrailingRule rule;
  const auto a = trail(rule, long_position("50000", "49000"), D("57500"));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->step, 7);
  EXPECT_EQ(a->new_stop, D("56000"));
  const auto s = trail(rule, short_position("3000", "3100"), D("2450"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->step, 5);
  EXPECT_EQ(s->new_stop, D("2600"));
}

TEST(HandSpan, RetraceNeverLoosens) {
  const TrailingRule rule;
  EXPECT_EQ(walk(rule, long_position("50000", "49000"), {"55000", "51000", "50000", "49500", "52000"}), D("54000"));
  EXPECT_EQ(walk(rule, short_position("3000", "3100"), {"2600", "2950", "3050"}), D("2700"));
}

TEST(HandSpan, ManualTighterStopIsKept) {
  const TrailingRule rule;
  TrailingPosition p = long_position("50000", "49000");
  p.stop = D("51500");                       // the trader tightened it by hand
  EXPECT_FALSE(trail(rule, p, D("52000")));  // n = 2 would be 51,000: looser
  TrailingPosition same = long_position("50000", "49000");
  same.stop = D("51000");
  EXPECT_FALSE(trail(rule, same, D("52500")));  // n = 2 is exactly the stop in force: nothing to record
  const auto a = trail(rule, p, D("53000"));    // n = 3: 52,000 is tighter
  ASSERT_TRUE(a);
  EXPECT_EQ(a->new_stop, D("52000"));
}

TEST(HandSpan, TinySpanBreakEvenAbovePriceWaits) {
  // Span 50 on an entry of 50,000: break-even with costs (50,075) is above a
  // price one span up (50,060); the stop must not be set through the price.
  const TrailingRule rule;
  TrailingPosition p = long_position("50000", "49950");
  EXPECT_FALSE(trail(rule, p, D("50060")));
  EXPECT_FALSE(trail(rule, p, D("50075")));  // a stop at the price would be an exit, not a trail
  auto a = trail(rule, p, D("50099"));       // still n = 1, now above break-even
  ASSERT_TRUE(a);
  EXPECT_EQ(a->new_stop, D("50075"));
  p.stop = a->new_stop;
  EXPECT_FALSE(trail(rule, p, D("50100")));  // n = 2 -> 50,050: looser than break-even, kept
  a = trail(rule, p, D("50150"));            // n = 3 -> 50,100
  ASSERT_TRUE(a);
  EXPECT_EQ(a->new_stop, D("50100"));
  // A one-unit span still works in exact decimals, also far in profit.
  TrailingPosition tiny = long_position("0.00001000", "0.00000999");
  const auto t = trail(rule, tiny, D("0.00002000"));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->step, 1000);
  EXPECT_EQ(t->new_stop, D("0.00001999"));
  const auto far = trail(rule, long_position("1", "0.99999999"), D("999999999999"));
  ASSERT_TRUE(far);
  EXPECT_EQ(far->step, std::numeric_limits<std::int64_t>::max());  // capped, computed without overflow
  EXPECT_LT(far->new_stop, D("999999999999"));
}

TEST(HandSpan, CostsAreConfigurable) {
  TrailingRule rule;
  rule.fee_pct = D("0.2");
  rule.slippage_buffer_pct = D("0");
  EXPECT_EQ(walk(rule, long_position("50000", "49000"), {"51000"}), D("50100"));
}

TEST(OffsetTrailing, PercentFollowsTheBestPrice) {
  TrailingRule rule;
  rule.mode = TrailingMode::kPercent;
  rule.offset = D("2");
  std::vector<std::string> stops;
  walk(rule, long_position("100", "90"), {"100", "110", "105", "120"}, &stops);
  EXPECT_EQ(stops, (std::vector<std::string>{"98", "107.8", "107.8", "117.6"}));
  stops.clear();
  walk(rule, short_position("100", "110"), {"100", "90", "95"}, &stops);
  EXPECT_EQ(stops, (std::vector<std::string>{"102", "91.8", "91.8"}));
}

TEST(OffsetTrailing, AbsoluteWithActivationPrice) {
  TrailingRule rule;
  rule.mode = TrailingMode::kAbsolute;
  rule.offset = D("5");
  rule.activation_price = D("110");
  std::vector<std::string> stops;
  walk(rule, long_position("100", "90"), {"105", "109.99", "110", "108", "118"}, &stops);
  EXPECT_EQ(stops, (std::vector<std::string>{"90", "90", "105", "105", "113"}));
  const auto a = trail(rule, long_position("100", "90"), D("118"));
  ASSERT_TRUE(a);
  EXPECT_EQ(adjustment_token(OperationId{3}, TrailingMode::kAbsolute, *a), "op3-TR-113");
}

TEST(OffsetTrailing, TickRoundingTowardProtection) {
  TrailingRule rule;
  rule.mode = TrailingMode::kPercent;
  rule.offset = D("1");
  rule.tick_size = D("0.1");
  EXPECT_EQ(walk(rule, long_position("100", "90"), {"123.45"}), D("122.3"));  // 122.2155 up
  EXPECT_EQ(walk(rule, short_position("100", "110"), {"87.65"}), D("88.5"));  // 88.5265 down
}

TEST(TrailingValidation, BadRulesAndPositionsSayWhatIsWrong) {
  TrailingRule rule;
  EXPECT_THROW(validate(rule, long_position("50000", "51000")), TrailingError);
  try {
    validate(rule, short_position("3000", "2900"));
    FAIL();
  } catch (const TrailingError& e) {
    EXPECT_NE(std::string(e.what()).find("above the entry of a short"), std::string::npos) << e.what();
  }
  EXPECT_THROW(validate(rule, long_position("50000", "50000")), TrailingError);  // zero span
  rule.mode = TrailingMode::kPercent;
  rule.offset = D("100");
  EXPECT_THROW(validate(rule, long_position("100", "90")), TrailingError);
  rule.offset = D("0");
  EXPECT_THROW(validate(rule, long_position("100", "90")), TrailingError);
  rule.mode = TrailingMode::kAbsolute;
  rule.offset = D("-1");
  EXPECT_THROW(validate(rule, long_position("100", "90")), TrailingError);
  rule.offset = D("1");
  EXPECT_NO_THROW(validate(rule, long_position("100", "90")));
  EXPECT_EQ(parse_trailing_mode("HAND_SPAN"), TrailingMode::kHandSpan);
  EXPECT_FALSE(parse_trailing_mode("hand-span"));
}

// A straightforward recomputation: count whole spans by stepping, no division.
Decimal reference_level(const TrailingRule& rule, const TrailingPosition& p, Decimal price, std::int64_t& n) {
  const bool is_long = p.side == Side::kBuy;
  const Decimal span = (p.entry - p.initial_stop).abs();
  n = 0;
  Decimal reached = is_long ? p.entry + span : p.entry - span;
  while (is_long ? reached <= price : reached >= price) {
    ++n;
    reached = is_long ? reached + span : reached - span;
  }
  if (n == 1) {
    const Decimal c = rule.fee_pct + rule.slippage_buffer_pct;
    return is_long ? Decimal::mul_div(p.entry, Decimal::from_integer(100) + c, Decimal::from_integer(100),
                                      Rounding::kCeiling)
                   : Decimal::mul_div(p.entry, Decimal::from_integer(100), Decimal::from_integer(100) + c,
                                      Rounding::kFloor);
  }
  Decimal level = p.entry;
  for (std::int64_t k = 1; k < n; ++k) level = is_long ? level + span : level - span;
  return level;
}

TEST(HandSpanProperty, RandomPathsNeverLoosenAndMatchTheReference) {
  std::mt19937_64 random(20261122);
  const TrailingRule rule;
  for (int path = 0; path < 3000; ++path) {
    const bool is_long = path % 2 == 0;
    const auto entry_units = static_cast<Int128>(std::uniform_int_distribution<std::int64_t>(100, 10'000'000)(random)) *
                             1'000'000;  // 1.00 .. 100,000.00
    const auto span_units = entry_units / std::uniform_int_distribution<std::int64_t>(5, 400)(random) + 1;
    TrailingPosition p;
    p.side = is_long ? Side::kBuy : Side::kSell;
    p.entry = Decimal::from_units(entry_units);
    p.initial_stop = Decimal::from_units(is_long ? entry_units - span_units : entry_units + span_units);
    p.stop = p.initial_stop;
    TrailingPosition ref = p;
    Int128 price = entry_units;
    for (int step = 0; step < 60; ++step) {
      price += static_cast<Int128>(std::uniform_int_distribution<std::int64_t>(-3, 5)(random)) * span_units / 2 +
               std::uniform_int_distribution<std::int64_t>(-999, 999)(random);
      if (!is_long) price = 2 * entry_units - price;  // mirror the path for a short
      if (price <= 0) price = 1;
      const Decimal at = Decimal::from_units(price);
      const Decimal before = p.stop;
      if (const auto a = trail(rule, p, at)) p.stop = a->new_stop;
      ASSERT_TRUE(is_long ? p.stop >= before : p.stop <= before) << "loosened on path " << path;
      ASSERT_TRUE(is_long ? p.stop < at || p.stop == before : p.stop > at || p.stop == before);
      std::int64_t n = 0;
      const Decimal level = reference_level(rule, ref, at, n);
      if (n > 0 && (is_long ? level > ref.stop && level < at : level < ref.stop && level > at)) ref.stop = level;
      ASSERT_EQ(p.stop, ref.stop) << "path " << path << " step " << step << " price " << at;
      // The wake price is a bound: no move short of it (checked on the next price).
      const Decimal wake = wake_price(rule, p);
      const Decimal next = Decimal::from_units(std::max<Int128>(1, price + (is_long ? -1 : 1) * (step % 7)));
      if (is_long ? next < wake : next > wake) {
        ASSERT_FALSE(trail(rule, p, next)) << "path " << path;
      }
      if (!is_long) price = 2 * entry_units - price;  // back to the long walk's coordinates
    }
  }
}

TEST(WakePrice, HandSpanWorkedExamples) {
  const TrailingRule rule;
  TrailingPosition p = long_position("50000", "49000");
  EXPECT_EQ(wake_price(rule, p).to_string(), "51000");
  p.stop = D("50075");
  EXPECT_EQ(wake_price(rule, p).to_string(), "52000");
  p.stop = D("53000");
  EXPECT_EQ(wake_price(rule, p).to_string(), "55000");
  TrailingPosition s = short_position("3000", "3100");
  EXPECT_EQ(wake_price(rule, s).to_string(), "2900");
  s.stop = D("2995.50673989");
  EXPECT_EQ(wake_price(rule, s).to_string(), "2800");
  // At the wake price the stop moves; one unit short of it, it does not.
  for (const auto& pos : {long_position("50000", "49000"), short_position("3000", "3100")}) {
    const Decimal wake = wake_price(rule, pos);
    EXPECT_TRUE(trail(rule, pos, wake));
    EXPECT_FALSE(trail(rule, pos, pos.side == Side::kBuy ? wake - D("0.00000001") : wake + D("0.00000001")));
  }
}

TEST(WakePrice, ManualTighterStopWaitsForTheStepThatBeatsIt) {
  const TrailingRule rule;
  TrailingPosition p = long_position("50000", "49000");
  p.stop = D("52500");  // by hand: steps 1..3 (50075, 51000, 52000) would not beat it
  EXPECT_EQ(wake_price(rule, p).to_string(), "54000");
  EXPECT_FALSE(trail(rule, p, D("53999.99999999")));
  EXPECT_EQ(trail(rule, p, D("54000"))->new_stop.to_string(), "53000");
  TrailingPosition s = short_position("3000", "3100");
  s.stop = D("2850");
  EXPECT_EQ(wake_price(rule, s).to_string(), "2700");
}

TEST(WakePrice, TinySpanIsALowerBound) {
  const TrailingRule rule;
  const TrailingPosition p = long_position("100", "99.99");  // break-even 100.15 is 15 spans up
  const Decimal wake = wake_price(rule, p);
  EXPECT_EQ(wake.to_string(), "100.01");
  EXPECT_FALSE(trail(rule, p, wake));  // the break-even would be above the price: later
  EXPECT_TRUE(trail(rule, p, D("100.16")));
}

TEST(WakePrice, OffsetModes) {
  TrailingRule percent;
  percent.mode = TrailingMode::kPercent;
  percent.offset = D("5");
  EXPECT_EQ(wake_price(percent, {Side::kBuy, D("90"), D("85"), D("95")}).to_string(), "100.00000001");
  EXPECT_FALSE(trail(percent, {Side::kBuy, D("90"), D("85"), D("95")}, D("100")));
  EXPECT_TRUE(trail(percent, {Side::kBuy, D("90"), D("85"), D("95")}, D("100.00000001")));
  percent.activation_price = D("110");
  EXPECT_EQ(wake_price(percent, {Side::kBuy, D("90"), D("85"), D("95")}).to_string(), "110");
  TrailingRule absolute;
  absolute.mode = TrailingMode::kAbsolute;
  absolute.offset = D("3");
  EXPECT_EQ(wake_price(absolute, {Side::kBuy, D("90"), D("85"), D("95")}).to_string(), "98.00000001");
  EXPECT_EQ(wake_price(absolute, {Side::kSell, D("100"), D("105"), D("105")}).to_string(), "101.99999999");
  absolute.activation_price = D("97");
  EXPECT_EQ(wake_price(absolute, {Side::kSell, D("100"), D("105"), D("105")}).to_string(), "97");
  // A short whose stop is already within the offset of zero can never move.
  absolute.activation_price.reset();
  EXPECT_EQ(wake_price(absolute, {Side::kSell, D("2"), D("4"), D("3")}).to_string(), "0");
}

TEST(WakePropertyOffsets, NoMoveShortOfTheWakePrice) {
  std::mt19937_64 random(7);
  for (int i = 0; i < 3000; ++i) {
    TrailingRule rule;
    rule.mode = i % 2 == 0 ? TrailingMode::kPercent : TrailingMode::kAbsolute;
    const auto units = [&](std::int64_t lo, std::int64_t hi) {
      return Decimal::from_units(std::uniform_int_distribution<std::int64_t>(lo, hi)(random));
    };
    rule.offset = rule.mode == TrailingMode::kPercent ? units(1, 9'000'000'000) : units(1, 500'000'000'000);
    if (i % 3 == 0) rule.activation_price = units(1, 2'000'000'000'000);
    if (i % 5 == 0) rule.tick_size = D("0.01");
    const bool is_long = i % 4 < 2;
    const Decimal stop = units(100'000'000, 1'000'000'000'000);
    const TrailingPosition p{is_long ? Side::kBuy : Side::kSell, stop, stop, stop};
    const Decimal wake = wake_price(rule, p);
    for (int k = 0; k < 20; ++k) {
      const Decimal price = units(1, 3'000'000'000'000);
      if (is_long ? price < wake : price > wake) {
        ASSERT_FALSE(trail(rule, p, price)) << i << " " << price;
      }
    }
    // Just past the bound the stop moves, unless activation or a tick holds it back.
    if (!rule.tick_size && !wake.is_zero() && wake < D("999999999999")) {
      if (!rule.activation_price || wake != *rule.activation_price) {
        ASSERT_TRUE(trail(rule, p, wake)) << i << " wake " << wake;
      }
    }
  }
}

}  // namespace
}  // namespace backstop::core

namespace backstop::core {
namespace {

TEST(EffectiveRule, OperationOverridesTenantDefault) {
  TrailingConfig c;
  EXPECT_FALSE(effective_rule(c));  // neither trails
  c.tenant_mode = "HAND_SPAN";
  c.fee_pct = Decimal::parse("0.2");
  auto rule = effective_rule(c);
  ASSERT_TRUE(rule);
  EXPECT_EQ(rule->mode, TrailingMode::kHandSpan);
  EXPECT_EQ(rule->fee_pct.to_string(), "0.2");
  c.mode = "NONE";
  EXPECT_FALSE(effective_rule(c));  // switched off for this operation
  c.mode = "PERCENT";
  EXPECT_THROW((void)effective_rule(c), TrailingError);  // no offset anywhere
  c.tenant_offset = Decimal::parse("2");
  EXPECT_EQ(effective_rule(c)->offset.to_string(), "2");
  c.offset = Decimal::parse("1.5");
  c.activation_price = Decimal::parse("100");
  rule = effective_rule(c);
  EXPECT_EQ(rule->offset.to_string(), "1.5");
  EXPECT_EQ(rule->activation_price->to_string(), "100");
  c.mode = "SIDEWAYS";
  try {
    (void)effective_rule(c);
    FAIL();
  } catch (const TrailingError& e) {
    EXPECT_STREQ(e.what(), "unknown trailing mode 'SIDEWAYS'");
  }
}

}  // namespace
}  // namespace backstop::core
