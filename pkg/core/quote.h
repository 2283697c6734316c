// The price of a symbol as the exchange quotes it: the last trade and the top
// of the book. One type from the wire to the decision: the REST snapshot, the
// stream's ticks and the trigger rules all speak it.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "core/decimal.h"

namespace backstop::core {

struct Quote {
  Decimal last;
  std::optional<Decimal> bid;  // absent when the book was not asked for
  std::optional<Decimal> ask;
};

using PriceSnapshot = std::map<std::string, Quote>;  // by symbol

}  // namespace backstop::core
