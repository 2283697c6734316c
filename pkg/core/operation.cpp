#include "core/operation.h"

namespace backstop::core {

std::string_view to_string(Side side) { return side == Side::kBuy ? "BUY" : "SELL"; }

std::optional<Side> parse_side(std::string_view text) {
  if (text == "BUY") return Side::kBuy;
  if (text == "SELL") return Side::kSell;
  return std::nullopt;
}

}  // namespace backstop::core
