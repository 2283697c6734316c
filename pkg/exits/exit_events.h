// The adapter between the pure exit state machine (core/exit.h) and its
// edges: the step's typed records become events (columns plus the payload
// keys store::MonitorRepository::exit_history reads back), the exchange's
// classified results become core::ExchangeAnswer, its symbol rules LotRules.
#pragma once

#include <optional>

#include "core/event.h"
#include "core/exit.h"
#include "core/projection.h"
#include "exchange/exchange.h"

namespace backstop::exits {

// The event for `record` of the exit `x`; `trigger_price` and `decisive` are
// the claim's trigger price and the price the monitor acts on.
core::Event exit_event(const core::Execution& x, const core::ExitRecord& record, core::EventSource source,
                       core::Decimal trigger_price, std::optional<core::Decimal> decisive);

// `asked_at`: when the request was sent (by the database's clock).
core::ExchangeAnswer answer_of(const exchange::Result<exchange::Order>& placed, core::TimePoint asked_at);
core::ExchangeAnswer answer_of(const exchange::Result<std::optional<exchange::Order>>& queried,
                               core::TimePoint asked_at);

// LOT_SIZE or, when set, MARKET_LOT_SIZE; MIN_NOTIONAL / NOTIONAL.
core::LotRules lot_rules(const exchange::SymbolRules& rules);

// True when a failed order says something about the exchange's health (its
// symbol's circuit breaker counts it): not a business refusal, not this
// client's own request weight.
bool counts_against_breaker(const exchange::ExchangeError& error);

}  // namespace backstop::exits
