#include "core/backfill.h"

namespace backstop::core {
namespace {

const Decimal kHundred = Decimal::from_integer(100);

// entry × (100 ± pct) ÷ 100, one rounding.
Decimal scale_by_percent(Decimal entry, Decimal percent, bool up) {
  const Decimal factor = up ? kHundred + percent : kHundred - percent;
  return Decimal::mul_div(entry, factor, kHundred, Rounding::kHalfUp);
}

// Empty when `level` is on the protective side of `entry`; else the reason.
std::string direction_error(Side side, bool is_stop, Decimal level, Decimal entry) {
  const std::string what = is_stop ? "stop_price" : "target_price";
  if (!level.is_positive()) return what + " " + level.to_string() + " is not positive";
  const bool must_be_below = (side == Side::kBuy) == is_stop;
  if (must_be_below && level >= entry) {
    return what + " " + level.to_string() + " must be below entry " + entry.to_string() + " for a " +
           std::string(to_string(side));
  }
  if (!must_be_below && level <= entry) {
    return what + " " + level.to_string() + " must be above entry " + entry.to_string() + " for a " +
           std::string(to_string(side));
  }
  return {};
}

}  // namespace

Decimal stop_from_percent(Side side, Decimal entry, Decimal percent) {
  return scale_by_percent(entry, percent, side == Side::kSell);
}

Decimal target_from_percent(Side side, Decimal entry, Decimal percent) {
  return scale_by_percent(entry, percent, side == Side::kBuy);
}

BackfillDecision decide_backfill(const BackfillInput& input) {
  using Outcome = BackfillDecision::Outcome;
  BackfillDecision decision;
  const bool has_stop = input.stop_price || input.stop_loss_percent;
  const bool has_target = input.target_price || input.stop_gain_percent;
  if (!has_stop && !has_target) {
    decision.outcome = Outcome::kNothingToConfigure;
    decision.reason = "no stop or target configured (neither absolute nor percent)";
    return decision;
  }
  auto invalid = [&](std::string reason) {
    decision.outcome = Outcome::kInvalid;
    decision.reason = std::move(reason);
    decision.stop_price.reset();
    decision.target_price.reset();
    return decision;
  };
  if (!input.entry_price) return invalid("missing average_entry_price");
  const Decimal entry = *input.entry_price;
  if (!entry.is_positive()) return invalid("average_entry_price " + entry.to_string() + " is not positive");

  for (const bool is_stop : {true, false}) {
    const auto& absolute = is_stop ? input.stop_price : input.target_price;
    const auto& percent = is_stop ? input.stop_loss_percent : input.stop_gain_percent;
    std::optional<Decimal> level = absolute;
    if (!level && percent) {
      const std::string column = is_stop ? "stop_loss_percent" : "stop_gain_percent";
      if (!percent->is_positive()) {
        return invalid(column + " " + percent->to_string() + " must be greater than 0");
      }
      try {
        level =
            is_stop ? stop_from_percent(input.side, entry, *percent) : target_from_percent(input.side, entry, *percent);
      } catch (const DecimalError& e) {
        return invalid(column + " " + percent->to_string() + ": " + e.what());
      }
      (is_stop ? decision.stop_from_percent : decision.target_from_percent) = true;
    }
    if (!level) continue;
    if (std::string error = direction_error(input.side, is_stop, *level, entry); !error.empty()) {
      return invalid(error);
    }
    (is_stop ? decision.stop_price : decision.target_price) = level;
  }
  decision.outcome = Outcome::kConfigure;
  return decision;
}

}  // namespace backstop::core
