#include "core/trailing.h"

#include <algorithm>
#include <limits>

#include "core/enum_names.h"

namespace backstop::core {
namespace {

constexpr NameTable<TrailingMode, 3> kModes{{{TrailingMode::kHandSpan, "HAND_SPAN"},
                                             {TrailingMode::kPercent, "PERCENT"},
                                             {TrailingMode::kAbsolute, "ABSOLUTE"}}};
constexpr NameTable<AdjustReason, 2> kReasons{
    {{AdjustReason::kBreakEven, "BREAK_EVEN"}, {AdjustReason::kTrailing, "TRAILING"}}};

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

std::optional<TrailingRule> effective_rule(const TrailingConfig& config) {
  const std::optional<std::string>& name = config.mode ? config.mode : config.tenant_mode;
  if (!name || *name == "NONE") return std::nullopt;
  const auto mode = parse_trailing_mode(*name);
  if (!mode) throw TrailingError("unknown trailing mode '" + *name + "'");
  TrailingRule rule;
  rule.mode = *mode;
  rule.fee_pct = config.fee_pct;
  rule.slippage_buffer_pct = config.slippage_buffer_pct;
  rule.activation_price = config.activation_price;
  if (*mode != TrailingMode::kHandSpan) {
    const auto offset = config.offset ? config.offset : config.tenant_offset;
    if (!offset) throw TrailingError(std::string(to_string(*mode)) + " trailing needs an offset (trailing_offset)");
    rule.offset = *offset;
  }
  return rule;
}

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

namespace {

const Decimal kMaxPrice = Decimal::from_units(Decimal::kMaxRaw);

// Hand-Span level of step n >= 2 in units, rounded as the rule says, without
// leaving Int128 (n is bounded by the caller).
Int128 hand_span_units(const TrailingRule& rule, const TrailingPosition& p, Int128 span, Int128 n) {
  const Int128 moved = span * (n - 1);
  const Int128 level = is_long(p) ? p.entry.units() + moved : p.entry.units() - moved;
  if (!rule.tick_size || level <= 0 || level > Decimal::kMaxRaw) return level;
  return protective(rule, p, Decimal::from_units(level)).units();
}

Decimal hand_span_wake(const TrailingRule& rule, const TrailingPosition& p) {
  const Int128 span = (p.entry - p.initial_stop).abs().units();
  const Int128 stop = p.stop.units(), entry = p.entry.units();
  const bool long_side = is_long(p);
  auto tighter = [&](Int128 level) { return long_side ? level > stop : level < stop; };
  Int128 n = 1;
  if (!tighter(hand_span_level(rule, p, 1).units())) {
    // From two spans on the levels only tighten with n: the first n whose level
    // beats the stop, by bisection below a bound where it surely does.
    const Int128 ahead = long_side ? stop - entry : entry - stop;  // how far the stop already is
    Int128 low = 2, high = std::max<Int128>(2, (ahead > 0 ? ahead / span : 0) + 2);
    while (low < high) {
      const Int128 mid = low + (high - low) / 2;
      if (tighter(hand_span_units(rule, p, span, mid))) {
        high = mid;
      } else {
        low = mid + 1;
      }
    }
    n = low;
  }
  if (n > std::numeric_limits<std::int64_t>::max()) return long_side ? kMaxPrice : Decimal();
  const Int128 wake = long_side ? entry + n * span : entry - n * span;
  if (wake > Decimal::kMaxRaw) return kMaxPrice;
  if (wake <= 0) return Decimal();
  return Decimal::from_units(wake);
}

// Offset modes: where the stop would go at price p (before the usable check).
// A percent distance is rounded toward a smaller distance, i.e. a tighter stop.
Decimal offset_level(const TrailingRule& rule, const TrailingPosition& p, Decimal price) {
  Decimal distance = rule.offset;
  if (rule.mode == TrailingMode::kPercent) distance = Decimal::mul_div(price, rule.offset, kHundred, Rounding::kFloor);
  const Int128 level = is_long(p) ? price.units() - distance.units() : price.units() + distance.units();
  if (level <= 0) return Decimal();
  if (level > Decimal::kMaxRaw) return kMaxPrice;
  return protective(rule, p, Decimal::from_units(level));
}

Decimal offset_wake(const TrailingRule& rule, const TrailingPosition& p) {
  // The level never falls as the price rises (a percent distance grows by at
  // most one unit per unit of price): bisect for the first price whose level
  // beats the stop (long), the last one (short).
  Int128 low = 1, high = Decimal::kMaxRaw;
  if (is_long(p)) {
    if (!(offset_level(rule, p, kMaxPrice) > p.stop)) return kMaxPrice;
    while (low < high) {
      const Int128 mid = low + (high - low) / 2;
      if (offset_level(rule, p, Decimal::from_units(mid)) > p.stop) {
        high = mid;
      } else {
        low = mid + 1;
      }
    }
    const Decimal wake = Decimal::from_units(low);
    return rule.activation_price ? std::max(wake, *rule.activation_price) : wake;
  }
  if (!(offset_level(rule, p, Decimal::from_units(1)) < p.stop)) return Decimal();
  while (low < high) {
    const Int128 mid = low + (high - low + 1) / 2;
    if (offset_level(rule, p, Decimal::from_units(mid)) < p.stop) {
      low = mid;
    } else {
      high = mid - 1;
    }
  }
  const Decimal wake = Decimal::from_units(low);
  return rule.activation_price ? std::min(wake, *rule.activation_price) : wake;
}

}  // namespace

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
      a.new_stop = offset_level(rule, p, price);
      break;
    }
  }
  if (!usable(p, a.new_stop, price)) return std::nullopt;
  return a;
}

Decimal wake_price(const TrailingRule& rule, const TrailingPosition& p) {
  return rule.mode == TrailingMode::kHandSpan ? hand_span_wake(rule, p) : offset_wake(rule, p);
}

std::string adjustment_token(OperationId operation, TrailingMode mode, const StopAdjustment& adjustment) {
  if (mode == TrailingMode::kHandSpan) {
    return "op" + std::to_string(operation.value) + "-HS-" + std::to_string(adjustment.step);
  }
  return "op" + std::to_string(operation.value) + "-TR-" + adjustment.new_stop.to_string();
}

}  // namespace backstop::core
