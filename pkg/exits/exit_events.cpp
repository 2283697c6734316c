#include "exits/exit_events.h"

#include <nlohmann/json.hpp>

#include "core/trigger.h"

namespace backstop::exits {
namespace {

using core::Decimal;
using core::EventType;
using nlohmann::json;

std::int64_t micros(core::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

core::ExchangeAnswer failure(const exchange::ExchangeError& error, core::TimePoint now) {
  core::ExchangeAnswer a;
  a.error = error.describe();
  switch (error.error_class) {
    case exchange::ErrorClass::kTerminal:
      a.kind = core::AnswerKind::kRejected;
      break;
    case exchange::ErrorClass::kStatusUnknown:
      a.kind = core::AnswerKind::kUnknown;
      break;
    case exchange::ErrorClass::kRetryable:
    case exchange::ErrorClass::kRateLimited:
    case exchange::ErrorClass::kBanned:
      a.kind = core::AnswerKind::kNotPlaced;
      break;
  }
  if (error.retry_after) a.not_before = now + *error.retry_after;
  return a;
}

core::ExchangeAnswer order_answer(const exchange::Order& order) {
  core::ExchangeAnswer a;
  a.kind = core::AnswerKind::kOrder;
  a.order = core::OrderView{std::to_string(order.order_id), std::string(exchange::to_string(order.status)),
                            order.done(), order.executed_qty, order.cummulative_quote_qty};
  return a;
}

}  // namespace

core::Event exit_event(const core::Execution& x, const core::ExitRecord& r, core::EventSource source,
                       Decimal trigger_price, std::optional<Decimal> decisive) {
  core::Event e;
  e.operation_id = x.operation_id;
  e.tenant_id = x.tenant_id;
  e.symbol = x.symbol;
  e.type = r.type;
  e.source = source;
  e.execution_token = x.execution_token;
  e.trigger_kind = x.trigger_kind;
  e.side = x.side;
  e.exchange_order_id = r.order_id;
  json payload;
  switch (r.type) {
    case EventType::kExecutionSubmitted:
      e.quantity = r.order_quantity;
      payload = {{"attempt", r.attempt},
                 {"client_order_id", r.client_order_id},
                 {"order_quantity", r.order_quantity.to_string()},
                 {"filled_before", r.filled.to_string()},
                 {"quote_before", r.quote.to_string()}};
      if (r.order_status) payload["previous_status"] = *r.order_status;
      break;
    case EventType::kBlocked:
      e.reason = r.reason;
      e.error_message = r.error;
      e.trigger_price = decisive;
      payload = {{"attempt", r.attempt},
                 {"filled_quantity", r.filled.to_string()},
                 {"quote_quantity", r.quote.to_string()},
                 {"failures", r.failures},
                 {"attempt_ended", true}};
      if (r.retry_at) payload["retry_at_us"] = micros(*r.retry_at);
      break;
    case EventType::kExecuted: {
      const Decimal fill_price = Decimal::div(r.quote, r.filled, core::Rounding::kHalfUp);
      const core::Side exit = x.side.value_or(core::Side::kSell);
      e.fill_price = fill_price;
      e.slippage_pct = core::slippage_pct(exit, trigger_price, fill_price);
      e.quantity = r.filled;
      e.trigger_price = trigger_price;
      payload = {
          {"attempts", r.attempt}, {"filled_quantity", r.filled.to_string()}, {"quote_quantity", r.quote.to_string()}};
      if (r.order_status) payload["last_status"] = *r.order_status;
      if (r.dust) payload["dust_remainder"] = r.dust->to_string();
      break;
    }
    case EventType::kFailed:
      e.error_message = r.error;
      e.reason = r.reason;  // NOT_HELD, or none
      payload = {
          {"attempts", r.attempt}, {"filled_quantity", r.filled.to_string()}, {"quote_quantity", r.quote.to_string()}};
      if (r.dust) payload["dust"] = r.dust->to_string();
      break;
    default:
      break;
  }
  // What the account did not hold (issue 13): never sold, by any attempt.
  if (r.not_held.is_positive() && !payload.is_null()) payload["not_held"] = r.not_held.to_string();
  e.payload = payload.dump();
  return e;
}

core::ExchangeAnswer answer_of(const exchange::Result<exchange::Order>& placed, core::TimePoint asked_at) {
  core::ExchangeAnswer a = placed.ok() ? order_answer(placed.value()) : failure(placed.error(), asked_at);
  a.asked_at = asked_at;
  return a;
}

core::ExchangeAnswer answer_of(const exchange::Result<std::optional<exchange::Order>>& queried,
                               core::TimePoint asked_at) {
  core::ExchangeAnswer a;
  if (!queried.ok()) {
    // A query that failed says nothing about the order: its fate stays unknown.
    a = failure(queried.error(), asked_at);
    a.kind = core::AnswerKind::kUnknown;
  } else if (!queried.value()) {
    a.kind = core::AnswerKind::kNotFound;
  } else {
    a = order_answer(*queried.value());
  }
  a.asked_at = asked_at;
  return a;
}

core::LotRules lot_rules(const exchange::SymbolRules& rules) {
  const bool market_lot = rules.market_step_size && rules.market_step_size->is_positive();
  core::LotRules lot;
  lot.step = market_lot ? *rules.market_step_size : rules.step_size;
  lot.min_qty = market_lot && rules.market_min_qty ? *rules.market_min_qty : rules.min_qty;
  const Decimal max_qty =
      market_lot && rules.market_max_qty && rules.market_max_qty->is_positive() ? *rules.market_max_qty : rules.max_qty;
  if (max_qty.is_positive()) lot.max_qty = max_qty;
  lot.min_notional = rules.min_notional;
  return lot;
}

bool counts_against_breaker(const exchange::ExchangeError& error) {
  switch (error.error_class) {
    case exchange::ErrorClass::kStatusUnknown:
      return true;
    case exchange::ErrorClass::kRetryable:
      // -2010 (balance, market closed) and -1021 (our clock) are not the exchange's health.
      return error.code != -2010 && error.code != -1021;
    case exchange::ErrorClass::kTerminal:
    case exchange::ErrorClass::kRateLimited:
    case exchange::ErrorClass::kBanned:
      return false;
  }
  return false;
}

}  // namespace backstop::exits
