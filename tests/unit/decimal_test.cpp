// Decimal: parse/format, exact arithmetic, explicit rounding, step sizes,
// overflow and malformed input; plus property tests against an independent
// reference (boost::multiprecision rational arithmetic on big integers).
#include "core/decimal.h"

#include <gtest/gtest.h>

#include <boost/multiprecision/cpp_int.hpp>
#include <random>
#include <string>
#include <vector>

namespace backstop::core {
namespace {

using BigInt = boost::multiprecision::cpp_int;

Decimal D(const char* text) { return Decimal::parse(text); }

TEST(Decimal, ParsesAndFormatsCanonically) {
  struct Case {
    const char* in;
    const char* canonical;
    const char* fixed;
  } cases[] = {
      {"0", "0", "0.00000000"},
      {"-0", "0", "0.00000000"},
      {"93100", "93100", "93100.00000000"},
      {"93100.00000000", "93100", "93100.00000000"},
      {"0.5", "0.5", "0.50000000"},
      {"-1.25", "-1.25", "-1.25000000"},
      {"+7", "7", "7.00000000"},
      {"0.00000001", "0.00000001", "0.00000001"},
      {"000123.4500", "123.45", "123.45000000"},
      {"999999999999.99999999", "999999999999.99999999", "999999999999.99999999"},
      {"-999999999999.99999999", "-999999999999.99999999", "-999999999999.99999999"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    const Decimal d = Decimal::parse(c.in);
    EXPECT_EQ(d.to_string(), c.canonical);
    EXPECT_EQ(d.to_fixed_string(), c.fixed);
    EXPECT_EQ(Decimal::parse(d.to_string()), d);
    EXPECT_EQ(Decimal::parse(d.to_fixed_string()), d);
  }
}

TEST(Decimal, RejectsMalformedTextWithTheReasonAndTheInput) {
  struct Case {
    const char* in;
    const char* expected_fragment;
  } cases[] = {
      {"", "empty text"},
      {" 1", "expected a digit at position 1"},
      {"1 ", "unexpected character ' ' at position 2"},
      {"1.", "expected a digit after the decimal point"},
      {".5", "expected a digit at position 1"},
      {"1e5", "unexpected character 'e' at position 2"},
      {"1,5", "unexpected character ',' at position 2"},
      {"--1", "expected a digit at position 2"},
      {"0x10", "unexpected character 'x'"},
      {"NaN", "expected a digit"},
      {"1.123456789", "9 fractional digits, at most 8 allowed"},
      {"1000000000000", "more than 12 integer digits"},
      {"1.2.3", "unexpected character '.' at position 4"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    try {
      (void)Decimal::parse(c.in);
      FAIL() << "accepted " << c.in;
    } catch (const DecimalError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(c.expected_fragment), std::string::npos) << message;
      EXPECT_NE(message.find(std::string("\"") + c.in + "\""), std::string::npos) << message;
    }
  }
}

TEST(Decimal, ParseRoundedRoundsExtraDigitsAsAsked) {
  EXPECT_EQ(Decimal::parse_rounded("1.123456785", Rounding::kHalfUp), D("1.12345679"));
  EXPECT_EQ(Decimal::parse_rounded("1.123456785", Rounding::kHalfEven), D("1.12345678"));
  EXPECT_EQ(Decimal::parse_rounded("1.1234567850001", Rounding::kHalfEven), D("1.12345679"));
  EXPECT_EQ(Decimal::parse_rounded("1.123456789", Rounding::kDown), D("1.12345678"));
  EXPECT_EQ(Decimal::parse_rounded("-1.123456781", Rounding::kFloor), D("-1.12345679"));
  EXPECT_EQ(Decimal::parse_rounded("-1.123456781", Rounding::kCeiling), D("-1.12345678"));
  EXPECT_EQ(Decimal::parse_rounded("0.000000000", Rounding::kUp), D("0"));
  EXPECT_THROW((void)Decimal::parse_rounded("999999999999.999999999", Rounding::kUp), DecimalError);
}

TEST(Decimal, AdditionAndSubtractionAreExactAndCheckOverflow) {
  EXPECT_EQ(D("0.1") + D("0.2"), D("0.3"));
  EXPECT_EQ(D("95000") - D("1900"), D("93100"));
  EXPECT_EQ(-D("1.5"), D("-1.5"));
  EXPECT_EQ(D("-1.5").abs(), D("1.5"));
  EXPECT_THROW((void)(D("999999999999.99999999") + D("0.00000001")), DecimalError);
  EXPECT_THROW((void)(D("-999999999999.99999999") - D("0.00000001")), DecimalError);
}

TEST(Decimal, ComparesByValue) {
  EXPECT_LT(D("-1"), D("0"));
  EXPECT_LT(D("93099.99999999"), D("93100"));
  EXPECT_EQ(D("1.50"), D("1.5"));
  EXPECT_GT(D("0.00000001"), D("0"));
}

TEST(Decimal, MultiplicationRoundsOnceAsAsked) {
  EXPECT_EQ(Decimal::mul(D("95000"), D("0.98"), Rounding::kHalfUp), D("93100"));
  // 0.00000001 × 0.5 = 0.000000005: exactly half a unit.
  EXPECT_EQ(Decimal::mul(D("0.00000001"), D("0.5"), Rounding::kHalfUp), D("0.00000001"));
  EXPECT_EQ(Decimal::mul(D("0.00000001"), D("0.5"), Rounding::kHalfEven), D("0"));
  EXPECT_EQ(Decimal::mul(D("0.00000003"), D("0.5"), Rounding::kHalfEven), D("0.00000002"));
  EXPECT_EQ(Decimal::mul(D("0.00000001"), D("0.5"), Rounding::kDown), D("0"));
  EXPECT_EQ(Decimal::mul(D("0.00000001"), D("0.5"), Rounding::kUp), D("0.00000001"));
  EXPECT_EQ(Decimal::mul(D("-0.00000001"), D("0.5"), Rounding::kFloor), D("-0.00000001"));
  EXPECT_EQ(Decimal::mul(D("-0.00000001"), D("0.5"), Rounding::kCeiling), D("0"));
  EXPECT_EQ(Decimal::mul(D("-0.00000001"), D("0.5"), Rounding::kHalfUp), D("-0.00000001"));
  EXPECT_EQ(Decimal::mul(D("999999999999"), D("1"), Rounding::kDown), D("999999999999"));
  EXPECT_THROW((void)Decimal::mul(D("999999999999"), D("2"), Rounding::kDown), DecimalError);
  EXPECT_THROW((void)Decimal::mul(D("999999999999"), D("999999999999"), Rounding::kDown), DecimalError);
}

TEST(Decimal, DivisionRoundsOnceAndRefusesZero) {
  EXPECT_EQ(Decimal::div(D("1"), D("3"), Rounding::kHalfUp), D("0.33333333"));
  EXPECT_EQ(Decimal::div(D("2"), D("3"), Rounding::kHalfUp), D("0.66666667"));
  EXPECT_EQ(Decimal::div(D("2"), D("3"), Rounding::kDown), D("0.66666666"));
  EXPECT_EQ(Decimal::div(D("-2"), D("3"), Rounding::kFloor), D("-0.66666667"));
  EXPECT_EQ(Decimal::div(D("3000"), D("1.0015"), Rounding::kHalfUp), D("2995.50673989"));
  try {
    (void)Decimal::div(D("1"), D("0"), Rounding::kDown);
    FAIL();
  } catch (const DecimalError& e) {
    EXPECT_NE(std::string(e.what()).find("division by zero"), std::string::npos);
  }
  EXPECT_THROW((void)Decimal::div(D("999999999999"), D("0.1"), Rounding::kDown), DecimalError);
}

TEST(Decimal, MulDivHasNoIntermediateRounding) {
  // entry × (100 − pct) ÷ 100 with a pct of 8 decimals: exact product, one rounding.
  EXPECT_EQ(Decimal::mul_div(D("95000"), D("98"), D("100"), Rounding::kHalfUp), D("93100"));
  EXPECT_EQ(Decimal::mul_div(D("0.61234567"), D("90"), D("100"), Rounding::kHalfUp), D("0.5511111"));
  EXPECT_EQ(Decimal::mul_div(D("1.23456789"), D("98.76543211"), D("100"), Rounding::kHalfUp), D("1.21932631"));
  // The product overflows 128 bits of units but the quotient fits.
  EXPECT_EQ(Decimal::mul_div(D("999999999999"), D("999999999999"), D("999999999999"), Rounding::kDown),
            D("999999999999"));
  EXPECT_THROW((void)Decimal::mul_div(D("1"), D("1"), D("0"), Rounding::kDown), DecimalError);
}

TEST(Decimal, RoundsToStepSizes) {
  EXPECT_EQ(D("0.123456").round_down_to_step(D("0.001")), D("0.123"));
  EXPECT_EQ(D("12.99").round_down_to_step(D("1")), D("12"));
  EXPECT_EQ(D("12.99").round_down_to_step(D("0.25")), D("12.75"));
  EXPECT_EQ(D("0.00999999").round_down_to_step(D("0.01")), D("0"));
  EXPECT_EQ(D("-1.55").round_down_to_step(D("0.1")), D("-1.5"));
  EXPECT_EQ(D("1.55").round_to_step(D("0.1"), Rounding::kHalfUp), D("1.6"));
  EXPECT_EQ(D("1.25").round_to_step(D("0.1"), Rounding::kHalfEven), D("1.2"));
  EXPECT_EQ(D("1.2").round_to_step(D("0.5"), Rounding::kCeiling), D("1.5"));
  EXPECT_THROW((void)D("1").round_down_to_step(D("0")), DecimalError);
  EXPECT_THROW((void)D("1").round_down_to_step(D("-0.1")), DecimalError);
}

TEST(Decimal, IntegersAndUnits) {
  EXPECT_EQ(Decimal::from_integer(100), D("100"));
  EXPECT_EQ(Decimal::from_integer(-999999999999), D("-999999999999"));
  EXPECT_THROW((void)Decimal::from_integer(1'000'000'000'000), DecimalError);
  EXPECT_EQ(Decimal::from_units(1), D("0.00000001"));
  EXPECT_THROW((void)Decimal::from_units(Decimal::kMaxRaw + 1), DecimalError);
}

// ---- property tests against a big-integer reference ----

BigInt to_big(Decimal d) {
  // Units as text avoids relying on __int128 support in boost.
  std::string fixed = d.to_fixed_string();
  fixed.erase(fixed.find('.'), 1);
  const bool negative = fixed.front() == '-';
  if (negative) fixed.erase(0, 1);
  fixed.erase(0, std::min(fixed.find_first_not_of('0'), fixed.size() - 1));  // a leading 0 means octal to cpp_int
  const BigInt magnitude(fixed);
  return negative ? BigInt(-magnitude) : magnitude;
}

BigInt reference_divide(const BigInt& n, const BigInt& d, Rounding rounding) {
  const bool negative = (n < 0) != (d < 0);
  const BigInt an = abs(n), ad = abs(d);
  BigInt q = an / ad;
  const BigInt r = an % ad;
  if (r != 0) {
    bool away = false;
    switch (rounding) {
      case Rounding::kDown:
        break;
      case Rounding::kUp:
        away = true;
        break;
      case Rounding::kFloor:
        away = negative;
        break;
      case Rounding::kCeiling:
        away = !negative;
        break;
      case Rounding::kHalfUp:
        away = 2 * r >= ad;
        break;
      case Rounding::kHalfEven:
        away = 2 * r > ad || (2 * r == ad && (q % 2) == 1);
        break;
    }
    if (away) q += 1;
  }
  return negative ? BigInt(-q) : q;
}

const BigInt kMax("99999999999999999999");  // 10^20 - 1 units

class DecimalProperty : public ::testing::Test {
 protected:
  std::mt19937_64 random_{20261122};

  // Values spread over magnitudes, from 1e-8 to 1e12, both signs, zero.
  Decimal random_decimal() {
    const int digits = static_cast<int>(random_() % 21);  // 0..20 digits of units
    std::string units;
    for (int i = 0; i < digits; ++i) units += static_cast<char>('0' + random_() % 10);
    if (units.empty()) units = "0";
    while (units.size() < 9) units.insert(0, "0");
    std::string text = units.substr(0, units.size() - 8) + "." + units.substr(units.size() - 8);
    if (random_() % 2) text.insert(0, "-");
    return Decimal::parse(text);
  }
  Rounding random_rounding() { return static_cast<Rounding>(random_() % 6); }

  static void expect_matches(const BigInt& expected, const std::function<Decimal()>& compute) {
    if (abs(expected) > kMax) {
      EXPECT_THROW((void)compute(), DecimalError);
    } else {
      EXPECT_EQ(to_big(compute()), expected);
    }
  }
};

TEST_F(DecimalProperty, TextRoundTripIsIdentity) {
  for (int i = 0; i < 20000; ++i) {
    const Decimal d = random_decimal();
    ASSERT_EQ(Decimal::parse(d.to_string()), d);
    ASSERT_EQ(Decimal::parse(d.to_fixed_string()), d);
  }
}

TEST_F(DecimalProperty, AddSubMatchReference) {
  for (int i = 0; i < 20000; ++i) {
    const Decimal a = random_decimal(), b = random_decimal();
    expect_matches(to_big(a) + to_big(b), [&] { return a + b; });
    expect_matches(to_big(a) - to_big(b), [&] { return a - b; });
  }
}

TEST_F(DecimalProperty, MulMatchesReference) {
  for (int i = 0; i < 20000; ++i) {
    const Decimal a = random_decimal(), b = random_decimal();
    const Rounding r = random_rounding();
    SCOPED_TRACE(a.to_string() + " * " + b.to_string() + " " + std::string(to_string(r)));
    expect_matches(reference_divide(to_big(a) * to_big(b), BigInt(100000000), r),
                   [&] { return Decimal::mul(a, b, r); });
  }
}

TEST_F(DecimalProperty, DivMatchesReference) {
  for (int i = 0; i < 20000; ++i) {
    const Decimal a = random_decimal(), b = random_decimal();
    if (b.is_zero()) continue;
    const Rounding r = random_rounding();
    SCOPED_TRACE(a.to_string() + " / " + b.to_string() + " " + std::string(to_string(r)));
    expect_matches(reference_divide(to_big(a) * 100000000, to_big(b), r), [&] { return Decimal::div(a, b, r); });
  }
}

TEST_F(DecimalProperty, MulDivMatchesReference) {
  for (int i = 0; i < 20000; ++i) {
    const Decimal a = random_decimal(), b = random_decimal(), c = random_decimal();
    if (c.is_zero()) continue;
    const Rounding r = random_rounding();
    SCOPED_TRACE(a.to_string() + " * " + b.to_string() + " / " + c.to_string());
    expect_matches(reference_divide(to_big(a) * to_big(b), to_big(c), r), [&] { return Decimal::mul_div(a, b, c, r); });
  }
}

TEST_F(DecimalProperty, StepRoundingMatchesReference) {
  for (int i = 0; i < 20000; ++i) {
    const Decimal a = random_decimal();
    Decimal step = random_decimal().abs();
    if (step.is_zero()) continue;
    const Rounding r = random_rounding();
    SCOPED_TRACE(a.to_string() + " step " + step.to_string());
    expect_matches(reference_divide(to_big(a), to_big(step), r) * to_big(step),
                   [&] { return a.round_to_step(step, r); });
    if (abs(reference_divide(to_big(a), to_big(step), Rounding::kDown) * to_big(step)) <= kMax) {
      const Decimal down = a.round_down_to_step(step);
      EXPECT_LE(down.abs(), a.abs());  // never more than held
      EXPECT_LT((a - down).abs(), step);
    }
  }
}

}  // namespace
}  // namespace backstop::core
