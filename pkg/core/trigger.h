// Trigger rules (DOMAIN §1): is a position's stop-loss or take-profit hit at a
// price, and the deterministic execution token of that protective exit.
//
//   side          stop-loss fires when    take-profit fires when   exit order
//   BUY (long)    price <= stop_price     price >= target_price    SELL
//   SELL (short)  price >= stop_price     price <= target_price    BUY
//
// When both would fire (a gap through a crossed book, bad data), the stop-loss
// wins: protecting capital comes first.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/decimal.h"
#include "core/event.h"
#include "core/operation.h"
#include "core/quote.h"

namespace backstop::core {

// Which price a monitor compares: the last trade (default) or the side of the
// book the exit would hit (bid for a long's exit, ask for a short's exit).
enum class PriceSource { kLast, kBook };
[[nodiscard]] std::optional<PriceSource> parse_price_source(std::string_view text);
[[nodiscard]] std::string_view to_string(PriceSource source);

// The price that decides for a position of `side` (nullopt: the book side is missing).
[[nodiscard]] std::optional<Decimal> decisive_price(const Quote& quote, Side side, PriceSource source);

struct ProtectedPosition {
  OperationId id;
  TenantId tenant;
  std::string symbol;
  Side side = Side::kBuy;
  Decimal quantity;
  std::optional<Decimal> entry_price;
  std::optional<Decimal> stop_price;
  std::optional<Decimal> target_price;
  std::optional<Decimal> stop_loss_percent;  // deprecated fallback when stop_price is NULL
  std::optional<Decimal> stop_gain_percent;  // deprecated fallback when target_price is NULL
};

// The levels in force: absolute first, else derived from the percentage and
// the entry price (seed 000 FAQ); nullopt when neither is usable.
[[nodiscard]] std::optional<Decimal> effective_stop(const ProtectedPosition& position);
[[nodiscard]] std::optional<Decimal> effective_target(const ProtectedPosition& position);

struct Trigger {
  TriggerKind kind = TriggerKind::kStopLoss;
  Decimal level;  // the stop or target that was crossed
  Decimal price;  // the price that crossed it
  Side exit_side = Side::kSell;
};

[[nodiscard]] bool crosses(Side side, TriggerKind kind, Decimal level, Decimal price);
[[nodiscard]] std::optional<Trigger> evaluate(const ProtectedPosition& position, Decimal price);

// Deterministic per protective exit: operation + kind + level. Two processes
// that see the same trigger produce the same token; a level that moved (trailing)
// is a new exit with a new token. At most 64 characters.
[[nodiscard]] std::string execution_token(OperationId operation, TriggerKind kind, Decimal level);

// Slippage of a fill against the trigger price, in percent, positive when the
// fill is worse for the position owner (a long sold lower, a short bought higher).
[[nodiscard]] Decimal slippage_pct(Side exit_side, Decimal trigger_price, Decimal fill_price);

}  // namespace backstop::core
