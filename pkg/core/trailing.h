// Trailing stops (DOMAIN §4), pure: a position, its rule and a price in, the
// tighter stop (or nothing) out.
//
// Hand-Span (Robson): span = |entry - initial stop|, n = floor(profit / span).
// n = 1 moves the stop to break-even including costs (long entry x (1 + c),
// short entry / (1 + c), c = fee % + slippage buffer %); n >= 2 to
// entry +/- (n - 1) spans. A gap over several spans goes straight to n.
//
// Offset modes (as Binance's trailingDelta, Freqtrade's trailing_stop_positive,
// Nautilus's PRICE/BASIS_POINTS offsets): the stop trails the price by a
// percentage of it or by a price distance, once the price has reached the
// optional activation price. The stop in force already encodes the best price
// seen (it moved only when that improved), so no other state is needed.
//
// Every mode only ever tightens: a long's stop never goes down, a short's never
// up, a manual tighter stop is kept, and a level at or beyond the current price
// (a break-even above the price on a tiny span) waits for the price to move on.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/decimal.h"
#include "core/operation.h"

namespace backstop::core {

enum class TrailingMode { kHandSpan, kPercent, kAbsolute };
enum class AdjustReason { kBreakEven, kTrailing };

[[nodiscard]] std::string_view to_string(TrailingMode mode);
[[nodiscard]] std::optional<TrailingMode> parse_trailing_mode(std::string_view text);
[[nodiscard]] std::string_view to_string(AdjustReason reason);

class TrailingError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct TrailingRule {
  TrailingMode mode = TrailingMode::kHandSpan;
  // Hand-Span's break-even covers these costs, in percent of the entry.
  Decimal fee_pct = Decimal::parse("0.10");
  Decimal slippage_buffer_pct = Decimal::parse("0.05");
  // Percent mode: distance in percent of the price (1.5 = 1.5 %);
  // absolute mode: distance as a price amount.
  Decimal offset;
  // Offset modes: no trailing before the price has reached this level.
  std::optional<Decimal> activation_price;
  // Levels are rounded to the exchange's price tick (8 decimals without one),
  // toward protection: a long's stop up, a short's down.
  std::optional<Decimal> tick_size;
};

struct TrailingPosition {
  Side side = Side::kBuy;  // kBuy: long, kSell: short
  Decimal entry;
  Decimal initial_stop;  // defines the hand-span
  Decimal stop;          // in force now (may be a manual, tighter one)
};

struct StopAdjustment {
  Decimal old_stop;
  Decimal new_stop;
  AdjustReason reason = AdjustReason::kTrailing;
  std::int64_t step = 0;  // Hand-Span's n; 0 in the offset modes
};

// Where an operation's rule comes from: its own settings, else its tenant's.
struct TrailingConfig {
  std::optional<std::string> mode;  // the operation's: a mode, "NONE", or nullopt (the tenant's)
  std::optional<Decimal> offset;    // the operation's, else the tenant's
  std::optional<Decimal> activation_price;
  std::optional<std::string> tenant_mode;  // nullopt: the tenant does not trail by default
  std::optional<Decimal> tenant_offset;
  Decimal fee_pct = Decimal::parse("0.10");
  Decimal slippage_buffer_pct = Decimal::parse("0.05");
};

// The rule in force, or nullopt when the operation does not trail. Throws
// TrailingError for an unknown mode or an offset mode without an offset.
[[nodiscard]] std::optional<TrailingRule> effective_rule(const TrailingConfig& config);

// Throws TrailingError naming what is wrong (zero span, initial stop on the
// wrong side of the entry, offset not positive, percent offset >= 100, ...).
void validate(const TrailingRule& rule, const TrailingPosition& position);

// Hand-Span's n at `price` (0 while the profit is less than one span).
[[nodiscard]] std::int64_t hand_span_step(const TrailingPosition& position, Decimal price);
// Where Hand-Span puts the stop for step n >= 1 (rounded as the rule says).
[[nodiscard]] Decimal hand_span_level(const TrailingRule& rule, const TrailingPosition& position, std::int64_t n);

// The rule's tighter stop at `price`, or nullopt (validate() first).
[[nodiscard]] std::optional<StopAdjustment> trail(const TrailingRule& rule, const TrailingPosition& position,
                                                  Decimal price);

// The price at which the rule may next move the stop: a long's stop cannot
// move at any price below it, a short's at any price above it. A pass then
// reads only the operations whose wake price the market reached (an index
// range, as the trigger scan), however many others are active. A lower bound
// (long) / upper bound (short), exact in the usual cases: at the wake price
// itself the stop moves unless a level would land at or beyond the price (a
// break-even above the price on a tiny span), and then the row is looked at
// again on later passes until it can move. A long whose next level lies past
// the largest price gets Decimal::max(); a short that can never move, zero.
[[nodiscard]] Decimal wake_price(const TrailingRule& rule, const TrailingPosition& position);

// Deterministic token of an adjustment, so that a re-run adjusts nothing
// twice: "op<id>-HS-<n>" for Hand-Span, "op<id>-TR-<new stop>" for offsets.
[[nodiscard]] std::string adjustment_token(OperationId operation, TrailingMode mode, const StopAdjustment& adjustment);

}  // namespace backstop::core
