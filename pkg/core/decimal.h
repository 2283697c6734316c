// Exact decimal money for prices, quantities and percentages.
//
// A Decimal is a signed fixed-point number with exactly 8 fractional digits and
// at most 12 integer digits: the value range of PostgreSQL NUMERIC(20,8), so every
// Decimal round-trips through the database unchanged. It is stored as a 128-bit
// count of 1e-8 units. Addition and subtraction are exact; every operation that
// can produce more than 8 fractional digits (×, ÷, step rounding) takes an
// explicit Rounding so that no rounding happens by accident. Out-of-range results
// and malformed text are errors (DecimalError), never silent wrap-around.
#pragma once

#include <compare>
#include <cstdint>
#include <iosfwd>
#include <stdexcept>
#include <string>
#include <string_view>

namespace backstop::core {

// 128-bit integers are a GCC/Clang extension; __extension__ keeps -Wpedantic quiet.
__extension__ typedef __int128 Int128;            // NOLINT(modernize-use-using): `using` cannot take __extension__
__extension__ typedef unsigned __int128 UInt128;  // NOLINT(modernize-use-using)

// Thrown for malformed text, overflow, division by zero and invalid steps.
class DecimalError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

enum class Rounding {
  kDown,      // toward zero (truncate): exit quantities, never sell more than held
  kUp,        // away from zero
  kFloor,     // toward -infinity
  kCeiling,   // toward +infinity
  kHalfUp,    // to nearest, ties away from zero (what PostgreSQL NUMERIC does)
  kHalfEven,  // to nearest, ties to even (banker's rounding)
};

class Decimal {
 public:
  static constexpr int kScale = 8;
  static constexpr int kMaxIntegerDigits = 12;
  static constexpr Int128 kUnit = 100'000'000;  // 10^kScale
  // Largest raw magnitude: 10^20 - 1 units, i.e. 999999999999.99999999.
  static constexpr Int128 kMaxRaw = static_cast<Int128>(10'000'000'000'000'000'000ULL) * 10 - 1;

  constexpr Decimal() = default;

  // Whole number. Throws DecimalError when it does not fit in 12 integer digits.
  static Decimal from_integer(std::int64_t value);
  // value × 10^-8 exactly. Throws DecimalError when out of range.
  static Decimal from_units(Int128 units);

  // Parses "[+-]digits[.digits]" with at most 8 fractional digits and 12
  // integer digits (leading zeros ignored). Anything else, including empty text,
  // whitespace, exponents, "1." and ".5", is a DecimalError that quotes the input.
  static Decimal parse(std::string_view text);
  // As parse(), but more than 8 fractional digits are rounded with `rounding`
  // instead of refused (for exchange payloads that may carry more digits).
  static Decimal parse_rounded(std::string_view text, Rounding rounding);

  // Canonical text: no exponent, no trailing fractional zeros ("93100", "0.5", "-1.25").
  [[nodiscard]] std::string to_string() const;
  // Exactly `kScale` fractional digits ("93100.00000000"), as NUMERIC(20,8) prints.
  [[nodiscard]] std::string to_fixed_string() const;

  [[nodiscard]] constexpr Int128 units() const { return units_; }
  [[nodiscard]] constexpr bool is_zero() const { return units_ == 0; }
  [[nodiscard]] constexpr bool is_negative() const { return units_ < 0; }
  [[nodiscard]] constexpr bool is_positive() const { return units_ > 0; }
  [[nodiscard]] Decimal abs() const;

  // Exact; throw DecimalError on overflow.
  friend Decimal operator+(Decimal a, Decimal b);
  friend Decimal operator-(Decimal a, Decimal b);
  Decimal operator-() const;
  Decimal& operator+=(Decimal other) { return *this = *this + other; }
  Decimal& operator-=(Decimal other) { return *this = *this - other; }

  friend constexpr bool operator==(Decimal a, Decimal b) = default;
  friend constexpr std::strong_ordering operator<=>(Decimal a, Decimal b) =
      default;  // NOLINT(modernize-use-nullptr): a clang-tidy 14 misreading

  // a × b rounded once to 8 fractional digits.
  [[nodiscard]] static Decimal mul(Decimal a, Decimal b, Rounding rounding);
  // a ÷ b rounded once. Throws DecimalError when b is zero.
  [[nodiscard]] static Decimal div(Decimal a, Decimal b, Rounding rounding);
  // a × b ÷ c computed exactly and rounded once (no intermediate rounding):
  // the right tool for "entry × (100 − pct) ÷ 100".
  [[nodiscard]] static Decimal mul_div(Decimal a, Decimal b, Decimal c, Rounding rounding);

  // The nearest multiple of `step` in the direction `rounding` (step > 0).
  [[nodiscard]] Decimal round_to_step(Decimal step, Rounding rounding) const;
  // Quantity rounding for exits: down (toward zero) to a multiple of `step`.
  [[nodiscard]] Decimal round_down_to_step(Decimal step) const { return round_to_step(step, Rounding::kDown); }

 private:
  constexpr explicit Decimal(Int128 units) : units_(units) {}
  static Decimal checked(Int128 units, const char* operation);

  Int128 units_ = 0;
};

// Divides numerator by denominator (denominator != 0) rounding the quotient as
// asked. Exposed for tests and for callers that need the same rounding rule.
[[nodiscard]] Int128 divide_rounded(Int128 numerator, Int128 denominator, Rounding rounding);

std::string_view to_string(Rounding rounding);
std::ostream& operator<<(std::ostream& out, Decimal value);  // canonical text

}  // namespace backstop::core
