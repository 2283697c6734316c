#include "core/decimal.h"

#include <algorithm>
#include <ostream>
#include <string>

namespace backstop::core {
namespace {

using u128 = UInt128;

// Three-way comparison of a remainder with half of its divisor, without
// computing 2 × remainder (which could overflow for divisors near 2^128).
int compare_with_half(u128 remainder, u128 divisor) {
  const u128 other = divisor - remainder;  // remainder < divisor
  if (remainder < other) return -1;
  if (remainder > other) return 1;
  return 0;
}

// Applies `rounding` to a truncated magnitude. `inexact` says whether anything
// was discarded; `half` compares the discarded part with one half of a unit.
u128 round_magnitude(u128 truncated, bool inexact, int half, bool negative, Rounding rounding) {
  if (!inexact) return truncated;
  bool away = false;
  switch (rounding) {
    case Rounding::kDown:
      away = false;
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
      away = half >= 0;
      break;
    case Rounding::kHalfEven:
      away = half > 0 || (half == 0 && (truncated & 1U) != 0);
      break;
  }
  return away ? truncated + 1 : truncated;
}

u128 magnitude(Int128 v) { return v < 0 ? -static_cast<u128>(v) : static_cast<u128>(v); }

// 256-bit unsigned product of two 128-bit values, as (high, low).
struct U256 {
  u128 high;
  u128 low;
};

U256 multiply_wide(u128 a, u128 b) {
  const u128 mask = (static_cast<u128>(1) << 64) - 1;
  const u128 a_lo = a & mask, a_hi = a >> 64;
  const u128 b_lo = b & mask, b_hi = b >> 64;
  const u128 lo_lo = a_lo * b_lo;
  const u128 hi_lo = a_hi * b_lo;
  const u128 lo_hi = a_lo * b_hi;
  const u128 hi_hi = a_hi * b_hi;
  const u128 cross = (lo_lo >> 64) + (hi_lo & mask) + (lo_hi & mask);
  const u128 low = (cross << 64) | (lo_lo & mask);
  const u128 high = hi_hi + (hi_lo >> 64) + (lo_hi >> 64) + (cross >> 64);
  return {high, low};
}

struct QuotientRemainder {
  u128 quotient;
  u128 remainder;
  bool overflow;  // quotient does not fit in 128 bits
};

// (high:low) ÷ divisor by shift-and-subtract. Only used when the product does
// not fit in 128 bits, which for NUMERIC(20,8) operands is rare.
QuotientRemainder divide_wide(U256 n, u128 divisor) {
  if (n.high == 0) return {n.low / divisor, n.low % divisor, false};
  if (n.high >= divisor) return {0, 0, true};
  u128 remainder = n.high;
  u128 quotient = 0;
  for (int bit = 127; bit >= 0; --bit) {
    const bool carry = (remainder >> 127) != 0;
    remainder = (remainder << 1) | ((n.low >> bit) & 1U);
    quotient <<= 1;
    if (carry || remainder >= divisor) {
      remainder -= divisor;
      quotient |= 1U;
    }
  }
  return {quotient, remainder, false};
}

constexpr u128 kMaxMagnitude = static_cast<u128>(Decimal::kMaxRaw);

// x × y ÷ z rounded once; throws on overflow of the 128-bit result.
Int128 mul_div_units(Int128 x, Int128 y, Int128 z, Rounding rounding, const char* op) {
  if (z == 0) throw DecimalError(std::string("decimal division by zero in ") + op);
  const bool negative = ((x < 0) != (y < 0)) != (z < 0);
  const QuotientRemainder qr = divide_wide(multiply_wide(magnitude(x), magnitude(y)), magnitude(z));
  const u128 rounded = qr.overflow ? 0
                                   : round_magnitude(qr.quotient, qr.remainder != 0,
                                                     compare_with_half(qr.remainder, magnitude(z)), negative, rounding);
  if (qr.overflow || rounded > kMaxMagnitude) {
    throw DecimalError(std::string("decimal overflow in ") + op +
                       ": result exceeds the NUMERIC(20,8) range of +-999999999999.99999999");
  }
  const auto value = static_cast<Int128>(rounded);
  return negative ? -value : value;
}

std::string quote(std::string_view text) {
  constexpr std::size_t kMaxShown = 64;
  std::string shown(text.substr(0, kMaxShown));
  if (text.size() > kMaxShown) shown += "...";
  return "\"" + shown + "\"";
}

Decimal parse_impl(std::string_view text, bool allow_rounding, Rounding rounding) {
  auto fail = [&](const std::string& why) -> DecimalError {
    return DecimalError("invalid decimal " + quote(text) + ": " + why);
  };
  std::size_t pos = 0;
  bool negative = false;
  if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    negative = text[pos] == '-';
    ++pos;
  }
  const std::size_t int_begin = pos;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
  const std::size_t int_end = pos;
  if (int_end == int_begin) {
    if (text.empty()) throw fail("empty text");
    throw fail("expected a digit at position " + std::to_string(pos + 1));
  }
  std::size_t frac_begin = pos, frac_end = pos;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    frac_begin = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    frac_end = pos;
    if (frac_end == frac_begin) throw fail("expected a digit after the decimal point");
  }
  if (pos != text.size()) {
    throw fail("unexpected character '" + std::string(1, text[pos]) + "' at position " + std::to_string(pos + 1));
  }
  std::size_t first_significant = int_begin;
  while (first_significant + 1 < int_end && text[first_significant] == '0') ++first_significant;
  if (int_end - first_significant > static_cast<std::size_t>(Decimal::kMaxIntegerDigits)) {
    throw fail("more than " + std::to_string(Decimal::kMaxIntegerDigits) +
               " integer digits (NUMERIC(20,8) range exceeded)");
  }
  u128 units = 0;
  for (std::size_t i = first_significant; i < int_end; ++i) {
    units = units * 10 + static_cast<u128>(text[i] - '0');
  }
  const std::size_t frac_digits = frac_end - frac_begin;
  const std::size_t kept = std::min<std::size_t>(frac_digits, Decimal::kScale);
  for (std::size_t i = 0; i < static_cast<std::size_t>(Decimal::kScale); ++i) {
    units = units * 10 + (i < kept ? static_cast<u128>(text[frac_begin + i] - '0') : 0U);
  }
  if (frac_digits > kept) {
    if (!allow_rounding) {
      throw fail(std::to_string(frac_digits) + " fractional digits, at most " + std::to_string(Decimal::kScale) +
                 " allowed");
    }
    const std::size_t extra = frac_begin + kept;
    const int first_dropped = text[extra] - '0';
    const bool rest_nonzero =
        std::any_of(text.begin() + static_cast<std::ptrdiff_t>(extra) + 1,
                    text.begin() + static_cast<std::ptrdiff_t>(frac_end), [](char c) { return c != '0'; });
    const bool inexact = first_dropped != 0 || rest_nonzero;
    const int half = first_dropped < 5 ? -1 : (first_dropped > 5 || rest_nonzero ? 1 : 0);
    units = round_magnitude(units, inexact, half, negative, rounding);
    if (units > kMaxMagnitude) throw fail("rounds outside the NUMERIC(20,8) range");
  }
  const auto value = static_cast<Int128>(units);
  return Decimal::from_units(negative ? -value : value);
}

std::string magnitude_digits(u128 value) {
  if (value == 0) return "0";
  std::string digits;
  while (value != 0) {
    digits.push_back(static_cast<char>('0' + static_cast<int>(value % 10)));
    value /= 10;
  }
  std::reverse(digits.begin(), digits.end());
  return digits;
}

}  // namespace

Int128 divide_rounded(Int128 numerator, Int128 denominator, Rounding rounding) {
  if (denominator == 0) throw DecimalError("decimal division by zero");
  const bool negative = (numerator < 0) != (denominator < 0);
  const u128 n = magnitude(numerator), d = magnitude(denominator);
  const u128 q = round_magnitude(n / d, n % d != 0, compare_with_half(n % d, d), negative, rounding);
  const auto value = static_cast<Int128>(q);
  return negative ? -value : value;
}

Decimal Decimal::checked(Int128 units, const char* operation) {
  if (units > kMaxRaw || units < -kMaxRaw) {
    throw DecimalError(std::string("decimal overflow in ") + operation +
                       ": result exceeds the NUMERIC(20,8) range of +-999999999999.99999999");
  }
  return Decimal(units);
}

Decimal Decimal::from_integer(std::int64_t value) {
  const Int128 limit = kMaxRaw / kUnit;
  if (value > limit || value < -limit) {
    throw DecimalError("integer " + std::to_string(value) + " has more than 12 digits (NUMERIC(20,8) range exceeded)");
  }
  return Decimal(static_cast<Int128>(value) * kUnit);
}

Decimal Decimal::from_units(Int128 units) { return checked(units, "from_units"); }

Decimal Decimal::parse(std::string_view text) { return parse_impl(text, false, Rounding::kDown); }

Decimal Decimal::parse_rounded(std::string_view text, Rounding rounding) { return parse_impl(text, true, rounding); }

std::string Decimal::to_fixed_string() const {
  std::string digits = magnitude_digits(magnitude(units_));
  if (digits.size() <= static_cast<std::size_t>(kScale)) {
    digits.insert(0, static_cast<std::size_t>(kScale) + 1 - digits.size(), '0');
  }
  digits.insert(digits.size() - static_cast<std::size_t>(kScale), 1, '.');
  return units_ < 0 ? "-" + digits : digits;
}

std::string Decimal::to_string() const {
  std::string fixed = to_fixed_string();
  while (fixed.back() == '0') fixed.pop_back();
  if (fixed.back() == '.') fixed.pop_back();
  return fixed;
}

Decimal Decimal::abs() const { return units_ < 0 ? -*this : *this; }

Decimal operator+(Decimal a, Decimal b) { return Decimal::checked(a.units_ + b.units_, "addition"); }

Decimal operator-(Decimal a, Decimal b) { return Decimal::checked(a.units_ - b.units_, "subtraction"); }

Decimal Decimal::operator-() const { return Decimal(-units_); }

Decimal Decimal::mul(Decimal a, Decimal b, Rounding rounding) {
  return Decimal(mul_div_units(a.units_, b.units_, kUnit, rounding, "multiplication"));
}

Decimal Decimal::div(Decimal a, Decimal b, Rounding rounding) {
  return Decimal(mul_div_units(a.units_, kUnit, b.units_, rounding, "division"));
}

Decimal Decimal::mul_div(Decimal a, Decimal b, Decimal c, Rounding rounding) {
  return Decimal(mul_div_units(a.units_, b.units_, c.units_, rounding, "mul_div"));
}

Decimal Decimal::round_to_step(Decimal step, Rounding rounding) const {
  if (!step.is_positive()) {
    throw DecimalError("step size must be positive, got " + step.to_string());
  }
  return checked(divide_rounded(units_, step.units_, rounding) * step.units_, "round_to_step");
}

std::ostream& operator<<(std::ostream& out, Decimal value) { return out << value.to_string(); }

std::string_view to_string(Rounding rounding) {
  switch (rounding) {
    case Rounding::kDown:
      return "down";
    case Rounding::kUp:
      return "up";
    case Rounding::kFloor:
      return "floor";
    case Rounding::kCeiling:
      return "ceiling";
    case Rounding::kHalfUp:
      return "half_up";
    case Rounding::kHalfEven:
      return "half_even";
  }
  return "unknown";
}

}  // namespace backstop::core
