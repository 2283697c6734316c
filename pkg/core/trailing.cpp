#include "core/trailing.h"

#include "core/enum_names.h"

#include <limits>

namespace backstop::core {
namespace {

constexpr NameTable<TrailingMode, 3> kModes{{{TrailingMode::kHandSpan, "HAND_SPAN"},
                                             {TrailingMode::kPercent, "PERCENT"},
                                             {TrailingMode::kAbsolute, "ABSOLUTE"}}};
constexpr NameTable<AdjustReason, 2> kReasons{{{AdjustReason::kBreakEven, "BREAK_EVEN"},
                                               {AdjustReason::kTrailing, "TRAILING"}}};

const Decimal kHundred = Decimal::from_integer(100);

bool is_long(const TrailingPosition& p) { return p.side == Side::kBuy; }

// Toward protection: a long's stop up, a short's down.
Decimal protective(const TrailingRule& rule, const TrailingPosition& p, Decimal level) {
  if (!rule.tick_size) return level;
  return level.round_to_step(*rule.tick_size, is_long(p) ? Rounding::kCeiling : Rounding::kFloor);
}

Rounding protective_rounding(const TrailingPosition& p) { return is_long(p) ? Rounding::kCeiling : Rounding::kFloor; }

// A level the position can use now: strictly tighter than the stop in force
// and strictly on the safe side of the current price.
bool usable(const TrailingPosition& p, Decimal level, Decimal price) {
  return is_long(p) ? (level > p.stop && level < price) : (level < p.stop && level > price);
}

}  // namespace

std::string_view to_string(TrailingMode mode) { return name_of(kModes, mode); }
std::optional<TrailingMode> parse_trailing_mode(std::string_view text) { return value_of(kModes, text); }
std::string_view to_string(AdjustReason reason) { return name_of(kReasons, reason); }

void validate(const TrailingRule& rule, const TrailingPosition& p) {
  if (!p.entry.is_positive()) throw TrailingError("entry price must be positive, got " + p.entry.to_string());
  if (!p.stop.is_positive()) throw TrailingError("stop price must be positive, got " + p.stop.to_string());
  if (rule.tick_size && !rule.tick_size->is_positive()) {
    throw TrailingError("tick size must be positive, got " + rule.tick_size->to_string());
  }
  switch (rule.mode) {
    case TrailingMode::kHandSpan:
      if (is_long(p) ? !(p.initial_stop < p.entry) : !(p.initial_stop > p.entry)) {
        throw TrailingError(std::string("hand-span needs the initial stop ") + (is_long(p) ? "below" : "above") +
                            " the entry of a " + (is_long(p) ? "long" : "short") + " (entry " + p.entry.to_string() +
                            ", initial stop " + p.initial_stop.to_string() + ")");
      }
      if (rule.fee_pct.is_negative() || rule.slippage_buffer_pct.is_negative()) {
        throw TrailingError("hand-span costs must not be negative (fee " + rule.fee_pct.to_string() +
                            " %, slippage buffer " + rule.slippage_buffer_pct.to_string() + " %)");
      }
      break;
    case TrailingMode::kPercent:
      if (!rule.offset.is_positive() || rule.offset >= kHundred) {
        throw TrailingError("percent trailing offset must be above 0 and below 100, got " + rule.offset.to_string());
      }
      break;
    case TrailingMode::kAbsolute:
      if (!rule.offset.is_positive()) {
        throw TrailingError("absolute trailing offset must be positive, got " + rule.offset.to_string());
      }
      break;
  }
}

std::int64_t hand_span_step(const TrailingPosition& p, Decimal price) {
  const Decimal span = (p.entry - p.initial_stop).abs();
  const Decimal profit = is_long(p) ? price - p.entry : p.entry - price;
  if (!profit.is_positive() || !span.is_positive()) return 0;
  // Both in 1e-8 units: an exact floor. Past 2^63 spans (a 1e-8 span a
  // trillion up) n is capped: the stop then trails less tightly than it could,
  // never through the price, and the capped step keeps a stable token.
  const Int128 n = profit.units() / span.units();
  return n > std::numeric_limits<std::int64_t>::max() ? std::numeric_limits<std::int64_t>::max()
                                                       : static_cast<std::int64_t>(n);
}

Decimal hand_span_level(const TrailingRule& rule, const TrailingPosition& p, std::int64_t n) {
  const Decimal span = (p.entry - p.initial_stop).abs();
  Decimal level;
  if (n == 1) {
    const Decimal factor = kHundred + rule.fee_pct + rule.slippage_buffer_pct;  // 100 (1 + c)
    level = is_long(p) ? Decimal::mul_div(p.entry, factor, kHundred, protective_rounding(p))
                       : Decimal::mul_div(p.entry, kHundred, factor, protective_rounding(p));
  } else {
    // (n - 1) spans are less than the profit, so this cannot leave the range.
    const Decimal moved = Decimal::from_units(span.units() * static_cast<Int128>(n - 1));
    level = is_long(p) ? p.entry + moved : p.entry - moved;
  }
  return protective(rule, p, level);
}

std::optional<StopAdjustment> trail(const TrailingRule& rule, const TrailingPosition& p, Decimal price) {
  StopAdjustment a;
  a.old_stop = p.stop;
  switch (rule.mode) {
    case TrailingMode::kHandSpan: {
      const std::int64_t n = hand_span_step(p, price);
      if (n == 0) return std::nullopt;
      a.step = n;
      a.reason = n == 1 ? AdjustReason::kBreakEven : AdjustReason::kTrailing;
      a.new_stop = hand_span_level(rule, p, n);
      break;
    }
    case TrailingMode::kPercent:
    case TrailingMode::kAbsolute: {
      if (rule.activation_price && (is_long(p) ? price < *rule.activation_price : price > *rule.activation_price)) {
        return std::nullopt;
      }
      Decimal distance = rule.offset;
      if (rule.mode == TrailingMode::kPercent) {
        // Rounded toward a smaller distance, i.e. a tighter stop.
        distance = Decimal::mul_div(price, rule.offset, kHundred, Rounding::kFloor);
      }
      a.new_stop = protective(rule, p, is_long(p) ? price - distance : price + distance);
      break;
    }
  }
  if (!usable(p, a.new_stop, price)) return std::nullopt;
  return a;
}

std::string adjustment_token(OperationId operation, TrailingMode mode, const StopAdjustment& adjustment) {
  if (mode == TrailingMode::kHandSpan) {
    return "op" + std::to_string(operation.value) + "-HS-" + std::to_string(adjustment.step);
  }
  return "op" + std::to_string(operation.value) + "-TR-" + adjustment.new_stop.to_string();
}

}  // namespace backstop::core
