#include "core/exit.h"

#include <algorithm>

#include "core/enum_names.h"

namespace backstop::core {
namespace {

constexpr NameTable<AnswerKind, 5> kAnswerKinds{{
    {AnswerKind::kOrder, "order"},
    {AnswerKind::kNotFound, "not-found"},
    {AnswerKind::kNotPlaced, "not-placed"},
    {AnswerKind::kUnknown, "unknown"},
    {AnswerKind::kRejected, "rejected"},
}};

constexpr NameTable<ExitActionKind, 4> kActionKinds{{
    {ExitActionKind::kSend, "send"},
    {ExitActionKind::kQuery, "query"},
    {ExitActionKind::kWait, "wait"},
    {ExitActionKind::kDone, "done"},
}};

ExitStep wait_until(TimePoint when) {
  ExitStep step;
  step.next.kind = ExitActionKind::kWait;
  step.next.not_before = when;
  return step;
}

ExitStep done(ExitRecord record) {
  ExitStep step;
  step.records.push_back(std::move(record));
  step.next.kind = ExitActionKind::kDone;
  return step;
}

ExitRecord record_of(EventType type, const ExitState& state) {
  ExitRecord r;
  r.type = type;
  r.attempt = state.attempts;
  r.filled = state.filled;
  r.quote = state.quote;
  r.not_held = state.not_held;
  return r;
}

// A retryable failure: the exit waits (BLOCKED EXCHANGE_RETRY) with backoff.
ExitStep retry_later(const ExitState& state, const ExitContext& context, const std::string& why,
                     std::optional<TimePoint> not_before) {
  ExitRecord r = record_of(EventType::kBlocked, state);
  r.reason = std::string(kExchangeRetry);
  r.failures = state.failures + 1;
  TimePoint at = context.now + context.timing.backoff(r.failures);
  if (not_before && *not_before > at) at = *not_before;
  r.retry_at = at;
  r.error = why;
  ExitStep step;
  step.records.push_back(std::move(r));
  step.next.kind = ExitActionKind::kWait;
  step.next.not_before = at;
  return step;
}

// The exit is over: EXECUTED with what filled (and a dust remainder), or FAILED
// when nothing could be sold at all.
ExitStep finish(const ExitState& state, const std::optional<OrderView>& last) {
  if (state.filled.is_zero() && state.not_held.is_positive()) {
    ExitRecord r = record_of(EventType::kFailed, state);
    r.reason = std::string(kNotHeld);
    r.error = "the account holds " + (state.target - state.not_held).to_string() + " of the " +
              state.target.to_string() +
              " to sell, below the symbol's minimum quantity or notional: nothing held to sell";
    if (last) r.order_id = last->order_id;
    return done(std::move(r));
  }
  if (state.filled.is_zero()) {
    ExitRecord r = record_of(EventType::kFailed, state);
    r.error = "quantity " + state.target.to_string() + " is below the symbol's minimum quantity or notional (dust)";
    r.dust = state.target;
    if (last) r.order_id = last->order_id;
    return done(std::move(r));
  }
  ExitRecord r = record_of(EventType::kExecuted, state);
  if (last) {
    r.order_id = last->order_id;
    r.order_status = last->status;
  }
  const Decimal remaining = state.remaining();
  if (remaining.is_positive()) r.dust = remaining;
  return done(std::move(r));
}

}  // namespace

std::optional<Decimal> next_order_quantity(const LotRules& rules, Decimal remaining, Decimal price) {
  Decimal quantity = remaining;
  if (rules.max_qty && rules.max_qty->is_positive() && quantity > *rules.max_qty) quantity = *rules.max_qty;
  if (rules.step.is_positive()) quantity = quantity.round_down_to_step(rules.step);
  if (!quantity.is_positive() || quantity < rules.min_qty) return std::nullopt;
  if (rules.min_notional) {
    try {
      if (Decimal::mul(quantity, price, Rounding::kDown) < *rules.min_notional) return std::nullopt;
    } catch (const DecimalError&) {
      // A notional too large to represent is above any minimum.
    }
  }
  return quantity;
}

std::chrono::milliseconds ExitTiming::backoff(int failures) const {
  std::chrono::milliseconds wait = backoff_first;
  for (int i = 1; i < failures && wait < backoff_max; ++i) wait *= 2;
  return std::min(wait, backoff_max);
}

std::string_view to_string(AnswerKind kind) { return name_of(kAnswerKinds, kind); }
std::string_view to_string(ExitActionKind kind) { return name_of(kActionKinds, kind); }

ExitState apply_exit_fact(ExitState state, const ExitFact& fact) {
  switch (fact.type) {
    case EventType::kStopTriggered:
      state.status = ExecutionStatus::kTriggered;
      state.target = fact.quantity.value_or(Decimal());
      break;
    case EventType::kExecutionSubmitted:
      state.status = ExecutionStatus::kSubmitted;
      state.attempts = std::max(state.attempts, fact.attempt);
      state.open = true;
      state.client_order_id = fact.client_order_id;
      state.order_quantity = fact.order_quantity;
      state.sent_at = fact.at;
      if (fact.filled) state.filled = *fact.filled;
      if (fact.quote) state.quote = *fact.quote;
      if (fact.not_held) state.not_held = *fact.not_held;
      state.retry_at.reset();
      break;
    case EventType::kBlocked:
      state.status = ExecutionStatus::kBlocked;
      state.blocked_reason = fact.reason;
      if (fact.reason && *fact.reason == kExchangeRetry) {
        // A retryable failure ends the attempt: what it filled is in `filled`.
        state.open = false;
        state.retry_at = fact.retry_at;
        state.failures = fact.failures;
        if (fact.filled) state.filled = *fact.filled;
        if (fact.quote) state.quote = *fact.quote;
        if (fact.not_held) state.not_held = *fact.not_held;
      }
      // Any other block leaves an open attempt open (it may exist), unless
      // the monitor knows it was never sent.
      if (fact.ends_attempt) state.open = false;
      break;
    case EventType::kExecuted:
    case EventType::kFailed:
      state.status = fact.type == EventType::kExecuted ? ExecutionStatus::kExecuted : ExecutionStatus::kFailed;
      state.open = false;
      if (fact.filled) state.filled = *fact.filled;
      if (fact.quote) state.quote = *fact.quote;
      if (fact.not_held) state.not_held = *fact.not_held;
      break;
    case EventType::kStopAdjusted:
    case EventType::kStopConfigured:
    case EventType::kPositionReconciled:
    case EventType::kPositionClosedExternally:
    case EventType::kPositionOutOfSync:
    case EventType::kPositionInSync:
      break;  // not the exit's
  }
  return state;
}

ExitState fold_exit(const std::vector<ExitFact>& facts) {
  ExitState state;
  for (const ExitFact& f : facts) state = apply_exit_fact(std::move(state), f);
  return state;
}

ExitFact exit_fact_of(const ExitRecord& record, TimePoint at) {
  ExitFact f;
  f.type = record.type;
  f.at = at;
  f.attempt = record.attempt;
  f.client_order_id = record.client_order_id;
  f.order_quantity = record.order_quantity;
  f.filled = record.filled;
  f.quote = record.quote;
  f.not_held = record.not_held;
  f.reason = record.reason;
  f.retry_at = record.retry_at;
  f.failures = record.failures;
  f.ends_attempt = record.type == EventType::kBlocked;  // the step blocks only what ended (EXCHANGE_RETRY)
  return f;
}

ExitState apply_exit_record(ExitState state, const ExitRecord& record, TimePoint at) {
  return apply_exit_fact(std::move(state), exit_fact_of(record, at));
}

bool waiting_for_retry(const ExitState& state, TimePoint now) {
  return state.status == ExecutionStatus::kBlocked && state.blocked_reason && *state.blocked_reason == kExchangeRetry &&
         state.retry_at && now < *state.retry_at;
}

ExitStep start_attempt(const ExitState& state, const ExitContext& context) {
  if (state.finished()) return wait_until(context.now);  // nothing to do; callers do not get here
  if (!context.symbol_listed) {
    ExitRecord r = record_of(EventType::kFailed, state);
    r.error = "the exchange does not list the symbol: the exit cannot be sent";
    return done(std::move(r));
  }
  if (!context.rules) return retry_later(state, context, "exchange rules unavailable", std::nullopt);
  if (!state.remaining().is_positive()) return finish(state, std::nullopt);
  ExitState sized = state;
  Decimal sell = state.remaining();
  if (context.sellable) {
    // Never more than the account holds: what it lacks is not sold, by this
    // attempt or any later one. What open orders lock is held: it waits.
    const Decimal free = context.sellable->is_positive() ? *context.sellable : Decimal();
    const Decimal held = free + (context.locked.is_positive() ? context.locked : Decimal());
    if (held < state.remaining()) sized.not_held = state.not_held + (state.remaining() - held);
    if (!next_order_quantity(*context.rules, sized.remaining(), context.price)) return finish(sized, std::nullopt);
    if (free < sized.remaining()) {
      sell = free;
      if (!next_order_quantity(*context.rules, free, context.price)) {
        return retry_later(sized, context,
                           (sized.remaining() - free).to_string() +
                               " of the exit is locked by open orders (or being sold by other exits) and the free "
                               "balance " +
                               free.to_string() +
                               " is below the symbol's minimum: waiting for the orders to be cancelled or fill",
                           std::nullopt);
      }
    } else {
      sell = sized.remaining();
    }
  }
  const auto quantity = next_order_quantity(*context.rules, sell, context.price);
  if (!quantity) return finish(sized, std::nullopt);
  ExitRecord r = record_of(EventType::kExecutionSubmitted, sized);
  r.attempt = state.attempts + 1;
  r.client_order_id = context.client_id(context.token, r.attempt);
  r.order_quantity = *quantity;
  ExitStep step;
  step.next.kind = ExitActionKind::kSend;
  step.next.client_order_id = r.client_order_id;
  step.next.quantity = *quantity;
  step.records.push_back(std::move(r));
  return step;
}

ExitStep resume_open(const ExitState& state, const ExitContext& context) {
  if (!state.open) return wait_until(context.now);
  ExitStep step;
  step.next.kind = ExitActionKind::kQuery;
  step.next.client_order_id = state.client_order_id;
  return step;
}

ExitStep on_answer(const ExitState& state, const ExchangeAnswer& answer, const ExitContext& context) {
  switch (answer.kind) {
    case AnswerKind::kNotPlaced:
      // Certainly not executed: the attempt is over with nothing filled.
      return retry_later(state, context, answer.error, answer.not_before);
    case AnswerKind::kRejected: {
      ExitRecord r = record_of(EventType::kFailed, state);
      r.error = "order rejected: " + answer.error;
      return done(std::move(r));
    }
    case AnswerKind::kUnknown: {
      // It may exist: ask, never re-send blindly. A query that fails too
      // leaves the attempt open for a later pass.
      ExitStep step;
      step.next.kind = ExitActionKind::kQuery;
      step.next.client_order_id = state.client_order_id;
      step.next.not_before = answer.not_before;
      return step;
    }
    case AnswerKind::kNotFound: {
      const TimePoint fence = context.timing.fence(state.sent_at);
      // It may still arrive, or still execute: ask again after the fence.
      if (answer.asked_at < fence) return wait_until(std::max(fence, context.now));
      // Past the fence the attempt can never execute: the next one goes now.
      return start_attempt(state, context);
    }
    case AnswerKind::kOrder:
      break;
  }
  const OrderView& order = *answer.order;
  if (!order.final) return wait_until(context.now + context.timing.working_recheck);
  ExitState after = state;
  after.filled = state.filled + order.executed;
  after.quote = state.quote + order.quote;
  after.open = false;
  if (!after.remaining().is_positive()) return finish(after, order);
  if (order.executed.is_zero()) {
    // EXPIRED (or CANCELED) with nothing filled: an empty book, a market
    // halt. Retrying can change that; back off.
    return retry_later(after, context, "order " + order.order_id + " ended " + order.status + " with nothing filled",
                       std::nullopt);
  }
  // Part filled: the remainder goes out as the next attempt, at once.
  if (!context.rules) return retry_later(after, context, "exchange rules unavailable", std::nullopt);
  const auto quantity = next_order_quantity(*context.rules, after.remaining(), context.price);
  if (!quantity) return finish(after, order);
  ExitStep step = start_attempt(after, context);
  if (!step.records.empty() && step.records.front().type == EventType::kExecutionSubmitted) {
    step.records.front().order_id = order.order_id;
    step.records.front().order_status = order.status;
  }
  return step;
}

}  // namespace backstop::core
