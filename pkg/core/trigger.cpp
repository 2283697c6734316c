#include "core/trigger.h"

#include "core/backfill.h"

namespace backstop::core {

std::optional<PriceSource> parse_price_source(std::string_view text) {
  if (text == "last") return PriceSource::kLast;
  if (text == "book" || text == "bid-ask") return PriceSource::kBook;
  return std::nullopt;
}

std::string_view to_string(PriceSource source) { return source == PriceSource::kLast ? "last" : "book"; }

std::optional<Decimal> decisive_price(const Quote& quote, Side side, PriceSource source) {
  if (source == PriceSource::kLast) return quote.last;
  return side == Side::kBuy ? quote.bid : quote.ask;  // a long exits by selling into the bid
}

std::optional<Decimal> effective_stop(const ProtectedPosition& p) {
  if (p.stop_price) return p.stop_price;
  if (!p.stop_loss_percent || !p.entry_price || !p.stop_loss_percent->is_positive()) return std::nullopt;
  const Decimal level = stop_from_percent(p.side, *p.entry_price, *p.stop_loss_percent);
  return level.is_positive() ? std::optional<Decimal>(level) : std::nullopt;
}

std::optional<Decimal> effective_target(const ProtectedPosition& p) {
  if (p.target_price) return p.target_price;
  if (!p.stop_gain_percent || !p.entry_price || !p.stop_gain_percent->is_positive()) return std::nullopt;
  const Decimal level = target_from_percent(p.side, *p.entry_price, *p.stop_gain_percent);
  return level.is_positive() ? std::optional<Decimal>(level) : std::nullopt;
}

bool crosses(Side side, TriggerKind kind, Decimal level, Decimal price) {
  const bool fires_below = (side == Side::kBuy) == (kind == TriggerKind::kStopLoss);
  return fires_below ? price <= level : price >= level;
}

std::optional<Trigger> evaluate(const ProtectedPosition& position, Decimal price) {
  for (const TriggerKind kind : {TriggerKind::kStopLoss, TriggerKind::kTakeProfit}) {
    const auto level = kind == TriggerKind::kStopLoss ? effective_stop(position) : effective_target(position);
    if (level && crosses(position.side, kind, *level, price)) {
      return Trigger{kind, *level, price, exit_side(position.side)};
    }
  }
  return std::nullopt;
}

std::string execution_token(OperationId operation, TriggerKind kind, Decimal level) {
  // "op<id>-SL-<level>": at most 2 + 19 + 4 + 22 characters.
  return "op" + std::to_string(operation.value) + (kind == TriggerKind::kStopLoss ? "-SL-" : "-TP-") +
         level.to_string();
}

Decimal slippage_pct(Side exit_side, Decimal trigger_price, Decimal fill_price) {
  const Decimal adverse = exit_side == Side::kSell ? trigger_price - fill_price : fill_price - trigger_price;
  return Decimal::mul_div(adverse, Decimal::from_integer(100), trigger_price, Rounding::kHalfUp);
}

}  // namespace backstop::core
