// Percent → absolute protection levels (DOMAIN §2), as a pure decision per
// operation: what the backfill would write, or why the row is invalid.
#pragma once

#include <optional>
#include <string>

#include "core/decimal.h"
#include "core/operation.h"

namespace backstop::core {

struct BackfillInput {
  OperationId id;
  Side side = Side::kBuy;
  std::optional<Decimal> entry_price;
  std::optional<Decimal> stop_price;
  std::optional<Decimal> target_price;
  std::optional<Decimal> stop_loss_percent;  // deprecated column, e.g. 2 = 2 %
  std::optional<Decimal> stop_gain_percent;  // deprecated column
};

struct BackfillDecision {
  enum class Outcome {
    kConfigure,           // write stop/target (if changed) and a genesis STOP_CONFIGURED event
    kInvalid,             // report `reason`, write nothing
    kNothingToConfigure,  // neither an absolute level nor a percentage: skip with a warning
  };
  Outcome outcome = Outcome::kNothingToConfigure;
  std::optional<Decimal> stop_price;
  std::optional<Decimal> target_price;
  bool stop_from_percent = false;
  bool target_from_percent = false;
  std::string reason;  // for kInvalid / kNothingToConfigure
};

// BUY: entry × (1 − pct/100); SELL: entry × (1 + pct/100); exact, rounded once
// half-up to 8 decimals (what PostgreSQL NUMERIC(20,8) stores for the same formula).
[[nodiscard]] Decimal stop_from_percent(Side side, Decimal entry, Decimal percent);
// BUY: entry × (1 + pct/100); SELL: entry × (1 − pct/100).
[[nodiscard]] Decimal target_from_percent(Side side, Decimal entry, Decimal percent);

// An absolute level already on the row wins over its percentage. Direction is
// validated for both kinds: a BUY's stop below entry and target above it, the
// reverse for SELL, every level positive.
[[nodiscard]] BackfillDecision decide_backfill(const BackfillInput& input);

}  // namespace backstop::core
