#include "monitor/stop_monitor.h"

#include <algorithm>
#include <random>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/guardrails.h"
#include "runtime/fault.h"
#include "runtime/log.h"
#include "store/db.h"
#include "store/event_store.h"

namespace backstop::monitor {
namespace {

using core::Decimal;
using core::Event;
using core::EventType;
using nlohmann::json;

// What one EXECUTION_SUBMITTED event promised: which order, how much, and what
// earlier attempts of the same execution had already filled.
struct Submission {
  int attempt = 1;
  std::string client_order_id;
  Decimal quantity;
  Decimal filled_before;
  Decimal quote_before;
};

std::optional<Submission> last_submission(pqxx::connection& connection, const std::string& token) {
  pqxx::read_transaction tx(connection);
  const pqxx::result rows = tx.exec_params(
      "SELECT payload::text FROM stop_events WHERE execution_token = $1 AND event_type = 'EXECUTION_SUBMITTED' "
      "ORDER BY event_seq DESC LIMIT 1",
      token);
  if (rows.empty()) return std::nullopt;
  const json p = json::parse(rows[0][0].as<std::string>());
  Submission s;
  s.attempt = p.at("attempt").get<int>();
  s.client_order_id = p.at("client_order_id").get<std::string>();
  s.quantity = Decimal::parse(p.at("order_quantity").get<std::string>());
  s.filled_before = Decimal::parse(p.at("filled_before").get<std::string>());
  s.quote_before = Decimal::parse(p.at("quote_before").get<std::string>());
  return s;
}

Event base_event(const core::Execution& x, EventType type, core::EventSource source) {
  Event e;
  e.operation_id = x.operation_id;
  e.tenant_id = x.tenant_id;
  e.symbol = x.symbol;
  e.type = type;
  e.source = source;
  e.execution_token = x.execution_token;
  e.trigger_kind = x.trigger_kind;
  e.side = x.side;
  return e;
}

class TokenLock {
 public:
  TokenLock(store::MonitorRepository& repository, const std::string& token)
      : repository_(repository), token_(token), held_(repository.try_lock(token)) {}
  ~TokenLock() {
    if (held_) {
      try {
        repository_.unlock(token_);
      } catch (const std::exception& e) {
        log::warn("could not release execution lock", {{"token", token_}, {"error", e.what()}});
      }
    }
  }
  TokenLock(const TokenLock&) = delete;
  TokenLock& operator=(const TokenLock&) = delete;
  [[nodiscard]] bool held() const { return held_; }

 private:
  store::MonitorRepository& repository_;
  std::string token_;
  bool held_;
};

}  // namespace

void accumulate(PassSummary& total, const PassSummary& pass) {
  total.symbols = std::max(total.symbols, pass.symbols);
  total.candidates += pass.candidates;
  total.triggered += pass.triggered;
  total.duplicates += pass.duplicates;
  total.executed += pass.executed;
  total.failed += pass.failed;
  total.pending += pass.pending;
  total.resumed += pass.resumed;
  total.dust += pass.dust;
  for (const auto& [reason, n] : pass.blocked) total.blocked[reason] += n;
  total.reports.insert(total.reports.end(), pass.reports.begin(), pass.reports.end());
  total.claim_latencies_us.insert(total.claim_latencies_us.end(), pass.claim_latencies_us.begin(),
                                  pass.claim_latencies_us.end());
  total.seconds += pass.seconds;
  if (pass.price_error) {
    total.price_error = true;
    total.error = pass.error;
  }
}

StopMonitor::StopMonitor(pqxx::connection& connection, exchange::Exchange& exchange, MonitorOptions options)
    : connection_(connection),
      exchange_(exchange),
      options_(std::move(options)),
      repository_(connection),
      random_(std::random_device{}()) {}

std::optional<std::string> StopMonitor::append(Event event) {
  pqxx::work tx(connection_);
  const store::AppendResult r = store::EventStore::append(tx, {std::move(event)});
  tx.commit();
  if (r.appended.empty()) return std::string("duplicate");
  return std::nullopt;
}

const exchange::SymbolRules* StopMonitor::rules_for(const std::string& symbol) {
  if (!rules_ || rules_->count(symbol) == 0) {
    auto fetched = exchange_.rules();
    if (!fetched.ok()) {
      log::warn("cannot read exchange rules", {{"error", fetched.error().describe()}});
      return nullptr;
    }
    rules_ = std::move(fetched.value());
  }
  const auto it = rules_->find(symbol);
  return it == rules_->end() ? nullptr : &it->second;
}

PassSummary StopMonitor::run_pass() {
  const auto start = std::chrono::steady_clock::now();
  PassSummary summary;
  resumed_.clear();
  auto prices = exchange_.prices();
  const core::TimePoint received = std::chrono::system_clock::now();
  if (!prices.ok()) {
    summary.price_error = true;
    summary.error = "price snapshot failed: " + prices.error().describe();
    log::error("price snapshot failed; nothing evaluated", {{"error", prices.error().describe()}});
    if (!options_.dry_run) resume_unfinished(nullptr, received, summary);
  } else {
    if (!options_.dry_run) resume_unfinished(&prices.value(), received, summary);
    evaluate_and_execute(prices.value(), received, summary);
    // Exits another process claimed while this pass ran are not among this
    // pass's candidates (in-progress exits are excluded from the scan): help
    // drive them too, under the token lock.
    if (!options_.dry_run) resume_unfinished(&prices.value(), received, summary);
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

PassSummary StopMonitor::run_on_prices(const exchange::PriceSnapshot& prices, core::TimePoint received) {
  const auto start = std::chrono::steady_clock::now();
  PassSummary summary;
  resumed_.clear();
  evaluate_and_execute(prices, received, summary);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

void StopMonitor::resume_unfinished(const exchange::PriceSnapshot* prices, core::TimePoint received,
                                    PassSummary& summary) {
  for (const core::Execution& x : repository_.unfinished(options_.filter)) {
    if (resumed_.count(x.execution_token) != 0) continue;  // this pass already drove it
    const auto position = repository_.position(x.operation_id.value);
    if (!position) continue;
    std::optional<Decimal> price;
    if (prices != nullptr) {
      if (const auto q = prices->find(x.symbol); q != prices->end()) {
        price = core::decisive_price(core::Quote{q->second.last, q->second.bid, q->second.ask}, position->side,
                                     options_.price_source);
      }
    }
    const std::string outcome = drive(x, *position, price, received);
    resumed_.insert(x.execution_token);
    const auto level = x.trigger_kind == core::TriggerKind::kTakeProfit ? core::effective_target(*position)
                                                                         : core::effective_stop(*position);
    if (outcome == "locked") continue;  // another process is on it right now
    ++summary.resumed;
    if (outcome == "executed") ++summary.executed;
    if (outcome == "failed") ++summary.failed;
    if (outcome == "pending") ++summary.pending;
    if (outcome.rfind("blocked:", 0) == 0) ++summary.blocked[outcome.substr(8)];
    summary.reports.push_back({x.operation_id.value, x.tenant_id.value, x.symbol,
                               std::string(core::to_string(position->side)),
                               x.trigger_kind ? std::string(core::to_string(*x.trigger_kind)) : "",
                               level ? level->to_string() : "", price ? price->to_string() : "",
                               x.execution_token, "resumed:" + outcome});
  }
}

void StopMonitor::evaluate_and_execute(const exchange::PriceSnapshot& prices, core::TimePoint received,
                                       PassSummary& summary) {
  drive_claimed(claim(prices, received, summary), summary);
}

std::vector<ClaimedExit> StopMonitor::claim(const exchange::PriceSnapshot& prices, core::TimePoint received,
                                            PassSummary& summary) {
  std::vector<store::SymbolPrice> symbol_prices;
  for (const auto& [symbol, quote] : prices) {
    if (!options_.filter.symbols.empty() &&
        std::find(options_.filter.symbols.begin(), options_.filter.symbols.end(), symbol) ==
            options_.filter.symbols.end()) {
      continue;
    }
    const core::Quote q{quote.last, quote.bid, quote.ask};
    const auto long_exit = core::decisive_price(q, core::Side::kBuy, options_.price_source);
    const auto short_exit = core::decisive_price(q, core::Side::kSell, options_.price_source);
    if (!long_exit || !short_exit) continue;  // book side missing: nothing to compare
    symbol_prices.push_back({symbol, *long_exit, *short_exit});
  }
  summary.symbols = static_cast<std::int64_t>(symbol_prices.size());
  const auto candidates = repository_.candidates(symbol_prices, options_.filter);
  summary.candidates = static_cast<std::int64_t>(candidates.size());
  std::vector<std::int64_t> triggered_ids;

  // Evaluate every candidate, then claim all triggered exits in one transaction:
  // a tick's claims are committed together, before any order is sent.
  std::vector<ClaimedExit> claimed;
  std::vector<Event> claims;
  for (const core::ProtectedPosition& position : candidates) {
    const exchange::Quote& quote = prices.at(position.symbol);
    const auto price = core::decisive_price(core::Quote{quote.last, quote.bid, quote.ask}, position.side,
                                            options_.price_source);
    const auto trigger = price ? core::evaluate(position, *price) : std::nullopt;
    if (!trigger) continue;  // a percentage-only row that is not crossed
    triggered_ids.push_back(position.id.value);
    ++summary.triggered;
    TriggerReport report{position.id.value, position.tenant.value, position.symbol,
                         std::string(core::to_string(position.side)), std::string(core::to_string(trigger->kind)),
                         trigger->level.to_string(), trigger->price.to_string(),
                         core::execution_token(position.id, trigger->kind, trigger->level), "", 0};
    if (resumed_.count(report.token) != 0) continue;  // already driven by this pass's resume step
    if (options_.dry_run) {
      report.outcome = "dry-run";
      claimed.push_back({position, price, received, std::move(report)});
      continue;
    }
    Event claim;
    claim.operation_id = position.id;
    claim.tenant_id = position.tenant;
    claim.symbol = position.symbol;
    claim.type = EventType::kStopTriggered;
    claim.source = options_.source;
    claim.execution_token = report.token;
    claim.trigger_kind = trigger->kind;
    claim.side = trigger->exit_side;
    claim.trigger_price = trigger->price;
    claim.stop_price = trigger->kind == core::TriggerKind::kStopLoss ? std::optional<Decimal>(trigger->level) : std::nullopt;
    claim.target_price = trigger->kind == core::TriggerKind::kTakeProfit ? std::optional<Decimal>(trigger->level) : std::nullopt;
    claim.quantity = position.quantity;
    claim.payload = json{{"level", trigger->level.to_string()},
                         {"price_source", std::string(core::to_string(options_.price_source))}}
                        .dump();
    claims.push_back(std::move(claim));
    claimed.push_back({position, price, received, std::move(report)});
  }
  if (!claims.empty()) {
    std::set<std::string> won;
    {
      pqxx::work tx(connection_);
      const store::AppendResult appended = store::EventStore::append(tx, std::move(claims));
      tx.commit();
      for (const Event& e : appended.appended) won.insert(e.execution_token);
    }
    const std::int64_t latency_us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now() - received).count();
    for (ClaimedExit& c : claimed) {
      TriggerReport& report = c.report;
      if (won.count(report.token) == 0) {
        log::info("duplicate execution prevented", {{"operation", report.operation_id}, {"token", report.token}});
        ++summary.duplicates;
        report.outcome = "duplicate";
        continue;
      }
      report.claim_latency_us = latency_us;
      summary.claim_latencies_us.push_back(latency_us);
      log::info("stop triggered", {{"operation", report.operation_id},
                                   {"tenant", report.tenant_id},
                                   {"symbol", report.symbol},
                                   {"kind", report.kind},
                                   {"level", report.level},
                                   {"price", report.price},
                                   {"claim_latency_us", latency_us}});
    }
  }
  if (!options_.dry_run) repository_.record_checkpoint(symbol_prices, triggered_ids);
  return claimed;
}

void StopMonitor::drive_claimed(std::vector<ClaimedExit> claimed, PassSummary& summary) {
  // Drive every crossed exit, also those another process claimed: the token
  // lock lets one process at a time work on an execution and the state read
  // under it skips finished ones, so concurrent monitors share the work
  // instead of one winner driving a whole batch alone. Each process goes
  // through the list in its own random order to meet the others less.
  std::shuffle(claimed.begin(), claimed.end(), random_);
  for (ClaimedExit& c : claimed) {
    TriggerReport& report = c.report;
    if (report.outcome == "dry-run") {
      summary.reports.push_back(std::move(report));
      continue;
    }
    const bool ours = report.outcome != "duplicate";
    if (ours) runtime::fault_point("stop_monitor.after_trigger");
    resumed_.insert(report.token);
    std::optional<core::Execution> execution;
    {
      pqxx::read_transaction read(connection_);
      execution = store::EventStore::execution(read, report.token);
    }
    if (execution) {
      const std::string outcome = drive(*execution, c.position, c.price, c.received);
      if (ours || (outcome != "locked" && outcome != "already-finished")) report.outcome = outcome;
    }
    if (report.outcome == "executed") ++summary.executed;
    if (report.outcome == "failed") ++summary.failed;
    if (report.outcome == "pending") ++summary.pending;
    if (report.outcome.rfind("blocked:", 0) == 0) ++summary.blocked[report.outcome.substr(8)];
    summary.reports.push_back(std::move(report));
  }
}

std::string StopMonitor::drive(const core::Execution& start, const core::ProtectedPosition& position,
                               std::optional<Decimal> price, core::TimePoint price_time) {
  TokenLock lock(repository_, start.execution_token);
  if (!lock.held()) return "locked";
  std::optional<core::Execution> current;
  {
    pqxx::read_transaction tx(connection_);
    current = store::EventStore::execution(tx, start.execution_token);
  }
  if (!current) return "missing";
  const core::Execution& x = *current;
  // Finished by another process between our claim (or scan) and our lock: not ours to count.
  if (x.status == core::ExecutionStatus::kExecuted || x.status == core::ExecutionStatus::kFailed) {
    return "already-finished";
  }
  const core::Side exit = x.side.value_or(core::exit_side(position.side));
  const Decimal trigger_price = x.trigger_price.value_or(price.value_or(Decimal()));
  const Decimal target_quantity = x.quantity.value_or(position.quantity);

  auto fail = [&](const std::string& error, std::optional<std::string> order_id = std::nullopt) {
    Event e = base_event(x, EventType::kFailed, options_.source);
    e.error_message = error;
    e.exchange_order_id = std::move(order_id);
    append(std::move(e));
    log::error("exit failed", {{"operation", x.operation_id.value}, {"token", x.execution_token}, {"error", error}});
    return std::string("failed");
  };
  auto record_breaker = [&](const std::optional<exchange::ExchangeError>& error) {
    if (!error) {
      // The common case: a success on a closed, clean breaker changes nothing; don't lock the hot row.
      pqxx::read_transaction read(connection_);
      const core::CircuitBreaker seen = repository_.read_breaker(read, x.symbol);
      if (seen.state == core::BreakerState::kClosed && seen.failure_count == 0) return;
    }
    pqxx::work tx(connection_);
    const core::CircuitBreaker b = repository_.lock_breaker(tx, x.symbol);
    const core::CircuitBreaker next = error ? core::breaker_on_failure(b, std::chrono::system_clock::now())
                                            : core::breaker_on_success(b);
    if (!(next == b)) {
      repository_.save_breaker(tx, x.symbol, next, error ? std::optional<std::string>(error->describe()) : std::nullopt);
      if (next.state != b.state) {
        log::warn("circuit breaker changed", {{"symbol", x.symbol}, {"state", std::string(core::to_string(next.state))}});
      }
    }
    tx.commit();
  };

  std::optional<Submission> submission;
  if (x.status == core::ExecutionStatus::kSubmitted) {
    submission = last_submission(connection_, x.execution_token);
  } else {
    // TRIGGERED or BLOCKED: guardrails, then the first submission.
    if (!target_quantity.is_positive()) return fail("operation has no quantity to exit");
    const exchange::SymbolRules* rules = rules_for(x.symbol);
    pqxx::work tx(connection_);
    const auto tenant = repository_.lock_tenant(tx, x.tenant_id.value);
    // Read the breaker without locking; only a state change (OPEN -> HALF_OPEN
    // trial) takes the row lock and decides again on the locked row.
    core::CircuitBreaker breaker = repository_.read_breaker(tx, x.symbol);
    const auto now = std::chrono::system_clock::now();
    core::BreakerDecision decision = core::breaker_allows(breaker, now);
    if (!(decision.next == breaker)) {
      breaker = repository_.lock_breaker(tx, x.symbol);
      decision = core::breaker_allows(breaker, now);
    }
    core::PreTradeContext context;
    context.tenant = tenant.limits;
    context.executions_last_minute = tenant.submitted_last_minute;
    context.executions_last_hour = tenant.submitted_last_hour;
    context.breaker_allows = decision.allow;
    context.price_age = price ? std::chrono::duration_cast<std::chrono::milliseconds>(now - price_time)
                              : std::chrono::milliseconds::max();
    context.max_price_age = options_.max_price_age;
    const Decimal level = x.trigger_kind == core::TriggerKind::kTakeProfit
                              ? core::effective_target(position).value_or(trigger_price)
                              : core::effective_stop(position).value_or(trigger_price);
    context.level = level;
    context.price = price.value_or(level);
    if (const auto block = core::pre_trade_block(context)) {
      const std::string reason(core::to_string(*block));
      if (x.status != core::ExecutionStatus::kBlocked || x.blocked_reason != reason) {
        Event e = base_event(x, EventType::kBlocked, options_.source);
        e.reason = reason;
        e.trigger_price = price;
        store::EventStore::append(tx, {std::move(e)});
      }
      tx.commit();
      log::warn("exit blocked by a guardrail", {{"operation", x.operation_id.value}, {"reason", reason}});
      return "blocked:" + reason;
    }
    if (rules == nullptr) {
      tx.abort();
      return fail("no exchange rules for symbol " + x.symbol + " (not listed or exchangeInfo unreachable)");
    }
    const auto quantity = exchange::market_quantity(*rules, target_quantity, context.price);
    if (!quantity) {
      tx.abort();
      return fail("quantity " + target_quantity.to_string() + " is below the minimum quantity or notional of " +
                  x.symbol + " (dust)");
    }
    if (!(decision.next == breaker)) repository_.save_breaker(tx, x.symbol, decision.next, std::nullopt);
    submission = Submission{1, exchange::client_order_id(x.execution_token, 1), *quantity, Decimal(), Decimal()};
    Event e = base_event(x, EventType::kExecutionSubmitted, options_.source);
    e.quantity = *quantity;
    e.payload = json{{"attempt", 1},
                     {"client_order_id", submission->client_order_id},
                     {"order_quantity", quantity->to_string()},
                     {"filled_before", "0"},
                     {"quote_before", "0"}}
                    .dump();
    store::EventStore::append(tx, {std::move(e)});
    tx.commit();
    runtime::fault_point("stop_monitor.after_submit");
  }
  if (!submission) return fail("execution is SUBMITTED but its submission event is missing");

  // Drive the submission to a terminal state: send (or find) the order, then
  // exit any remainder of a partial fill with the next deterministic client id.
  bool query_first = x.status == core::ExecutionStatus::kSubmitted;
  for (;;) {
    std::optional<exchange::Order> order;
    if (query_first) {
      auto found = exchange_.query_order(x.symbol, submission->client_order_id);
      if (!found.ok()) {
        log::warn("order status query failed; will retry on a later pass",
                  {{"token", x.execution_token}, {"error", found.error().describe()}});
        return "pending";
      }
      order = found.value();
    }
    if (!order) {
      auto placed = exchange_.place_market_order(
          {x.symbol, exit, submission->quantity, submission->client_order_id});
      runtime::fault_point("stop_monitor.after_exchange_answer");
      if (placed.ok()) {
        order = placed.value();
      } else {
        const exchange::ExchangeError& error = placed.error();
        if (error.error_class == exchange::ErrorClass::kTerminal) {
          // A business rejection (-2010, a filter) says nothing about the exchange's health.
          return fail("order rejected: " + error.describe());
        }
        record_breaker(error);
        if (error.error_class != exchange::ErrorClass::kStatusUnknown) {
          // Not placed: a later pass queries (finds nothing, -2013) and resends the same id.
          log::warn("order not placed; will retry on a later pass",
                    {{"token", x.execution_token}, {"error", error.describe()}});
          return "pending";
        }
        // Status unknown: the order may exist. Ask, never resend blindly.
        log::warn("order status unknown; querying by client order id",
                  {{"token", x.execution_token}, {"client_order_id", submission->client_order_id}, {"error", error.describe()}});
        for (int i = 0; i < options_.unknown_status_queries && !order; ++i) {
          std::this_thread::sleep_for(options_.query_backoff * (i + 1));
          auto found = exchange_.query_order(x.symbol, submission->client_order_id);
          if (found.ok() && found.value()) order = found.value();
        }
        if (!order) {
          // Not visible (yet). A request still in flight inside the exchange could
          // land later, so the resend waits for a later pass, which queries again
          // first and resends the same client id only if the exchange still says -2013.
          log::warn("order not found after a status-unknown answer; left SUBMITTED for the next pass",
                    {{"token", x.execution_token}, {"client_order_id", submission->client_order_id}});
          return "pending";
        }
      }
    }
    if (!order->done()) return "pending";  // a market order still working: look again next pass
    record_breaker(std::nullopt);
    const Decimal filled = submission->filled_before + order->executed_qty;
    const Decimal quote = submission->quote_before + order->cummulative_quote_qty;
    const Decimal remaining = target_quantity - filled;
    if (remaining.is_positive() && !order->executed_qty.is_zero() && submission->attempt < options_.max_order_attempts) {
      const exchange::SymbolRules* rules = rules_for(x.symbol);
      const auto next_quantity =
          rules != nullptr ? exchange::market_quantity(*rules, remaining, price.value_or(trigger_price)) : std::nullopt;
      if (next_quantity) {
        // Partial fill: record it and exit the remainder with the next client id.
        Submission next{submission->attempt + 1, exchange::client_order_id(x.execution_token, submission->attempt + 1),
                        *next_quantity, filled, quote};
        Event e = base_event(x, EventType::kExecutionSubmitted, options_.source);
        e.quantity = *next_quantity;
        e.exchange_order_id = std::to_string(order->order_id);
        e.payload = json{{"attempt", next.attempt},
                         {"client_order_id", next.client_order_id},
                         {"order_quantity", next.quantity.to_string()},
                         {"filled_before", filled.to_string()},
                         {"quote_before", quote.to_string()},
                         {"previous_status", std::string(exchange::to_string(order->status))}}
                        .dump();
        append(std::move(e));
        submission = next;
        query_first = false;
        continue;
      }
    }
    if (filled.is_zero()) {
      return fail("order " + std::to_string(order->order_id) + " ended " + std::string(exchange::to_string(order->status)) +
                      " with nothing filled",
                  std::to_string(order->order_id));
    }
    const Decimal fill_price = Decimal::div(quote, filled, core::Rounding::kHalfUp);
    const Decimal slippage = core::slippage_pct(exit, trigger_price, fill_price);
    Event e = base_event(x, EventType::kExecuted, options_.source);
    e.fill_price = fill_price;
    e.slippage_pct = slippage;
    e.quantity = filled;
    e.trigger_price = trigger_price;
    e.exchange_order_id = std::to_string(order->order_id);
    json payload = {{"attempts", submission->attempt},
                    {"filled_quantity", filled.to_string()},
                    {"quote_quantity", quote.to_string()},
                    {"last_status", std::string(exchange::to_string(order->status))}};
    if (remaining.is_positive()) payload["dust_remainder"] = remaining.to_string();
    e.payload = payload.dump();
    pqxx::work tx(connection_);
    const core::TenantGuardrails limits = repository_.tenant_limits(tx, x.tenant_id.value);
    store::EventStore::append(tx, {std::move(e)});
    if (remaining.is_positive()) {
      tx.exec_params("UPDATE operation SET close_reason = $2 WHERE id = $1", x.operation_id.value,
                     "dust remainder " + remaining.to_string() + " below the exchange minimum");
    }
    const core::SlippageVerdict verdict = core::judge_fill_slippage(limits, slippage);
    if (verdict == core::SlippageVerdict::kPauseTenant) {
      repository_.pause_tenant(tx, x.tenant_id.value,
                               "fill slippage " + slippage.to_string() + " % on operation " +
                                   std::to_string(x.operation_id.value) + " reached the pause threshold");
    }
    tx.commit();
    if (verdict != core::SlippageVerdict::kWithinLimit) {
      log::warn(verdict == core::SlippageVerdict::kPauseTenant ? "tenant paused: fill slippage over the pause threshold"
                                                                : "fill slippage over the tenant's limit",
                {{"tenant", x.tenant_id.value}, {"operation", x.operation_id.value}, {"slippage_pct", slippage.to_string()}});
    }
    log::info("exit executed", {{"operation", x.operation_id.value},
                                {"tenant", x.tenant_id.value},
                                {"order", std::to_string(order->order_id)},
                                {"fill_price", fill_price.to_string()},
                                {"slippage_pct", slippage.to_string()}});
    return "executed";
  }
}

}  // namespace backstop::monitor
