// Positions ("operations") as the domain sees them: side, status and the
// protection levels, with the text forms used in the database and in events.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/decimal.h"

namespace backstop::core {

enum class Side { kBuy, kSell };  // BUY = long, SELL = short

[[nodiscard]] std::string_view to_string(Side side);
// "BUY" / "SELL" (exactly, as stored); anything else is std::nullopt.
[[nodiscard]] std::optional<Side> parse_side(std::string_view text);
// The side of the order that closes a position of `side`.
[[nodiscard]] constexpr Side exit_side(Side side) { return side == Side::kBuy ? Side::kSell : Side::kBuy; }

struct OperationId {
  std::int64_t value = 0;
  friend constexpr auto operator<=>(OperationId, OperationId) = default;
};

struct TenantId {
  std::int64_t value = 0;
  friend constexpr auto operator<=>(TenantId, TenantId) = default;
};

}  // namespace backstop::core
