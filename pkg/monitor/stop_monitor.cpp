#include "monitor/stop_monitor.h"

#include <algorithm>
#include <map>
#include <set>
#include <span>
#include <random>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/guardrails.h"
#include "monitor/price_feed.h"
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

// The latest EXECUTION_SUBMITTED of each token, by token.
std::map<std::string, Submission> last_submissions(pqxx::transaction_base& tx, const std::vector<std::string>& tokens) {
  std::map<std::string, Submission> result;
  if (tokens.empty()) return result;
  store::ArrayLiteral literal;
  for (const auto& t : tokens) literal.add(t);
  for (const auto& row : store::exec_prepared(tx, "bs_last_submissions",
           "SELECT DISTINCT ON (execution_token) execution_token, payload::text FROM stop_events "
           "WHERE execution_token = ANY($1::text[]) AND event_type = 'EXECUTION_SUBMITTED' "
           "ORDER BY execution_token, event_seq DESC",
           literal.str())) {
    const json p = json::parse(row[1].as<std::string>());
    Submission s;
    s.attempt = p.at("attempt").get<int>();
    s.client_order_id = p.at("client_order_id").get<std::string>();
    s.quantity = Decimal::parse(p.at("order_quantity").get<std::string>());
    s.filled_before = Decimal::parse(p.at("filled_before").get<std::string>());
    s.quote_before = Decimal::parse(p.at("quote_before").get<std::string>());
    result.emplace(row[0].as<std::string>(), std::move(s));
  }
  return result;
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

// The advisory locks of one batch: taken together, released together (also
// when the batch throws).
class TokenLocks {
 public:
  TokenLocks(store::MonitorRepository& repository, const std::vector<std::string>& tokens)
      : repository_(repository), held_(repository.try_lock(tokens)) {}
  ~TokenLocks() {
    if (held_.empty()) return;
    try {
      repository_.unlock(std::vector<std::string>(held_.begin(), held_.end()));
    } catch (const std::exception& e) {
      log::warn("could not release execution locks", {{"locks", held_.size()}, {"error", e.what()}});
    }
  }
  TokenLocks(const TokenLocks&) = delete;
  TokenLocks& operator=(const TokenLocks&) = delete;
  [[nodiscard]] bool held(const std::string& token) const { return held_.count(token) != 0; }

 private:
  store::MonitorRepository& repository_;
  std::set<std::string> held_;
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

// One execution on its way to a terminal state: what the caller knows, then
// what the stages read and decided.
struct StopMonitor::Work {
  std::string token;
  core::ProtectedPosition position;
  std::optional<Decimal> price;  // the decisive price that reached the monitor, if any
  core::TimePoint price_time;
  core::Execution x;                     // the state read under the token lock
  std::optional<Submission> submission;  // the order to send (or to find first)
  bool query_first = false;              // submitted before: the order may already exist
  bool trial = false;                    // the one HALF_OPEN trial of its symbol's breaker
  std::optional<Event> blocked;          // BLOCKED, written by record() (guard() writes its own)
  std::optional<Event> terminal;         // EXECUTED or FAILED, written by record()
  std::optional<Decimal> dust_remainder;
  bool dust = false;  // a remainder (or the whole quantity) below the exchange's minimum
  std::string outcome;  // executed, failed, pending, blocked:<reason>, locked, already-finished, missing
};

void StopMonitor::resume_unfinished(const exchange::PriceSnapshot* prices, core::TimePoint received,
                                    PassSummary& summary) {
  std::vector<core::Execution> unfinished;
  std::vector<std::int64_t> operation_ids;
  for (core::Execution& x : repository_.unfinished(options_.filter)) {
    if (resumed_.count(x.execution_token) != 0) continue;  // this pass already drove it
    operation_ids.push_back(x.operation_id.value);
    unfinished.push_back(std::move(x));
  }
  if (unfinished.empty()) return;
  const auto positions = repository_.positions(operation_ids);
  std::vector<Work> works;
  for (const core::Execution& x : unfinished) {
    const auto position = positions.find(x.operation_id.value);
    if (position == positions.end()) continue;
    Work w;
    w.token = x.execution_token;
    w.position = position->second;
    w.price_time = received;
    if (prices != nullptr) {
      if (const auto q = prices->find(x.symbol); q != prices->end()) {
        w.price = core::decisive_price(core::Quote{q->second.last, q->second.bid, q->second.ask}, w.position.side,
                                       options_.price_source);
      }
    }
    works.push_back(std::move(w));
  }
  drive(works);
  for (const Work& w : works) {
    resumed_.insert(w.token);
    if (w.outcome == "locked") continue;  // another process is on it right now
    ++summary.resumed;
    count_outcome(w.outcome, summary);
    if (w.dust) ++summary.dust;
    const auto level = w.x.trigger_kind == core::TriggerKind::kTakeProfit ? core::effective_target(w.position)
                                                                           : core::effective_stop(w.position);
    summary.reports.push_back({w.position.id.value, w.position.tenant.value, w.position.symbol,
                               std::string(core::to_string(w.position.side)),
                               w.x.trigger_kind ? std::string(core::to_string(*w.x.trigger_kind)) : "",
                               level ? level->to_string() : "", w.price ? w.price->to_string() : "", w.token,
                               "resumed:" + w.outcome});
  }
}

void StopMonitor::count_outcome(const std::string& outcome, PassSummary& summary) {
  if (outcome == "executed") ++summary.executed;
  if (outcome == "failed") ++summary.failed;
  if (outcome == "pending") ++summary.pending;
  if (outcome.rfind("blocked:", 0) == 0) ++summary.blocked[outcome.substr(8)];
}

void StopMonitor::evaluate_and_execute(const exchange::PriceSnapshot& prices, core::TimePoint received,
                                       PassSummary& summary) {
  drive_claimed(claim(prices, received, summary), summary);
}

std::vector<ClaimedExit> StopMonitor::claim(const exchange::PriceSnapshot& prices, core::TimePoint received,
                                            PassSummary& summary) {
  const std::vector<store::SymbolPrice> symbol_prices =
      monitor::symbol_prices(prices, options_.filter, options_.price_source);
  summary.symbols = static_cast<std::int64_t>(symbol_prices.size());
  // The scan runs in the claim's own transaction (a dry run only reads).
  std::optional<pqxx::work> tx;
  std::optional<pqxx::read_transaction> read;
  if (options_.dry_run) {
    read.emplace(connection_);
  } else {
    tx.emplace(connection_);
    // The claim does not wait for its WAL flush: nothing leaves the process on
    // the strength of a claim alone. The next step of every exit, its
    // EXECUTION_SUBMITTED (or BLOCKED/FAILED), commits synchronously before
    // any order is sent, and that flush covers the claim's earlier WAL record.
    // A claim lost in a server crash is simply claimed again.
    tx->exec("SET LOCAL synchronous_commit = off");
  }
  const auto candidates = repository_.candidates(tx ? static_cast<pqxx::transaction_base&>(*tx) : *read,
                                                 symbol_prices, options_.filter);
  if (read) read->commit();
  summary.candidates = static_cast<std::int64_t>(candidates.size());

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
  if (!options_.dry_run) {
    // The claims and the pass's checkpoint in one transaction; the operations
    // whose trigger this process won get their own check time and count.
    std::set<std::string> won;
    {
      const store::AppendResult appended = store::EventStore::append(*tx, std::move(claims));
      std::vector<std::int64_t> won_ids;
      for (const Event& e : appended.appended) {
        won.insert(e.execution_token);
        won_ids.push_back(e.operation_id.value);
      }
      repository_.record_checkpoint(*tx, symbol_prices, won_ids);
      tx->commit();
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
  return claimed;
}

void StopMonitor::drive_claimed(std::vector<ClaimedExit> claimed, PassSummary& summary) {
  // Drive every crossed exit, also those another process claimed: the token
  // lock lets one process at a time work on an execution and the state read
  // under it skips finished ones, so concurrent monitors share the work
  // instead of one winner driving a whole batch alone. Each process goes
  // through the list in its own random order to meet the others less.
  std::shuffle(claimed.begin(), claimed.end(), random_);
  std::vector<Work> works;
  std::vector<std::size_t> driven;  // index into `claimed` of each work
  for (std::size_t i = 0; i < claimed.size(); ++i) {
    ClaimedExit& c = claimed[i];
    if (c.report.outcome == "dry-run") continue;
    if (c.report.outcome != "duplicate") runtime::fault_point("stop_monitor.after_trigger");
    resumed_.insert(c.report.token);
    Work w;
    w.token = c.report.token;
    w.position = c.position;
    w.price = c.price;
    w.price_time = c.received;
    works.push_back(std::move(w));
    driven.push_back(i);
  }
  drive(works);
  for (std::size_t k = 0; k < works.size(); ++k) {
    TriggerReport& report = claimed[driven[k]].report;
    const std::string& outcome = works[k].outcome;
    // A duplicate claim driven here counts only if this process did the work.
    const bool ours = report.outcome != "duplicate";
    if (ours || (outcome != "locked" && outcome != "already-finished" && outcome != "missing")) {
      report.outcome = outcome;
    }
    count_outcome(report.outcome, summary);
    if (works[k].dust && report.outcome == outcome) ++summary.dust;
  }
  for (ClaimedExit& c : claimed) summary.reports.push_back(std::move(c.report));
}

void StopMonitor::drive(std::vector<Work>& works) {
  const std::size_t batch = std::max<std::size_t>(1, options_.batch_size);
  for (std::size_t first = 0; first < works.size(); first += batch) {
    drive_batch(std::span<Work>(works).subspan(first, std::min(batch, works.size() - first)));
  }
}

void StopMonitor::drive_batch(std::span<Work> batch) {
  std::vector<std::string> tokens;
  for (const Work& w : batch) tokens.push_back(w.token);
  const TokenLocks locks(repository_, tokens);
  std::vector<std::string> held;
  for (const auto& t : tokens) {
    if (locks.held(t)) held.push_back(t);
  }
  // The batch's state in one read: executions, their last submissions, breakers.
  std::map<std::string, core::Execution> states;
  std::map<std::string, Submission> submissions;
  {
    pqxx::read_transaction tx(connection_);
    states = store::EventStore::executions(tx, held);
    std::vector<std::string> submitted_tokens;
    std::set<std::string> symbols;
    for (const auto& [token, x] : states) {
      if (x.status == core::ExecutionStatus::kSubmitted) submitted_tokens.push_back(token);
      symbols.insert(x.symbol);
    }
    submissions = last_submissions(tx, submitted_tokens);
    breakers_ = repository_.read_breakers(tx, symbols);
  }

  std::vector<Work*> to_guard;
  for (Work& w : batch) {
    if (!locks.held(w.token)) {
      w.outcome = "locked";  // another process is on it right now
      continue;
    }
    const auto state = states.find(w.token);
    if (state == states.end()) {
      w.outcome = "missing";
      continue;
    }
    w.x = state->second;
    switch (w.x.status) {
      case core::ExecutionStatus::kExecuted:
      case core::ExecutionStatus::kFailed:
        // Finished by another process between our claim (or scan) and our lock: not ours to count.
        w.outcome = "already-finished";
        break;
      case core::ExecutionStatus::kSubmitted:
        if (const auto s = submissions.find(w.token); s != submissions.end()) {
          w.submission = s->second;
          w.query_first = true;
        } else {
          fail(w, "execution is SUBMITTED but its submission event is missing");
        }
        break;
      default:  // TRIGGERED or BLOCKED: guardrails, then the first submission
        to_guard.push_back(&w);
    }
  }
  guard(to_guard);
  // A breaker's trial goes first, alone: its success closes the breaker for
  // the rest. Submissions from earlier passes look for their order first, one
  // at a time; new orders go orders_in_flight at a time.
  auto sendable = [](const Work& w) { return w.submission && w.outcome.empty() && !w.terminal; };
  bool tried = false;
  for (Work& w : batch) {
    if (w.trial && sendable(w)) {
      send(w);
      tried = true;
    }
  }
  if (tried) {
    // Those the trial's breaker held back go now if its success closed it.
    std::vector<Work*> again;
    for (Work& w : batch) {
      const auto b = breakers_.find(w.x.symbol);
      if (w.outcome == "blocked:CIRCUIT_OPEN" && !w.blocked && b != breakers_.end() &&
          b->second.state == core::BreakerState::kClosed) {
        w.outcome.clear();
        again.push_back(&w);
      }
    }
    guard(again);
  }
  std::vector<Work*> fresh;
  for (Work& w : batch) {
    if (w.trial || !sendable(w)) continue;
    if (w.query_first) {
      send(w);
    } else {
      fresh.push_back(&w);
    }
  }
  const std::size_t in_flight = std::max<std::size_t>(1, options_.orders_in_flight);
  for (std::size_t first = 0; first < fresh.size(); first += in_flight) {
    std::vector<Work*> going;
    std::vector<exchange::OrderRequest> requests;
    for (std::size_t i = first; i < std::min(fresh.size(), first + in_flight); ++i) {
      if (held_by_breaker(*fresh[i])) continue;
      going.push_back(fresh[i]);
      requests.push_back(order_request(*fresh[i]));
    }
    if (going.empty()) continue;
    auto answers = exchange_.place_market_orders(requests);
    for (std::size_t i = 0; i < going.size(); ++i) send(*going[i], std::move(answers[i]));
  }
  record(batch);
}

void StopMonitor::fail(Work& w, const std::string& error, std::optional<std::string> order_id) {
  Event e = base_event(w.x, EventType::kFailed, options_.source);
  e.error_message = error;
  e.exchange_order_id = std::move(order_id);
  w.terminal = std::move(e);
}

const exchange::SymbolRules* StopMonitor::known_rules(const std::string& symbol) const {
  if (!rules_) return nullptr;
  const auto it = rules_->find(symbol);
  return it == rules_->end() ? nullptr : &it->second;
}

void StopMonitor::guard(const std::vector<Work*>& works) {
  if (works.empty()) return;
  std::set<std::int64_t> tenants;
  std::set<std::string> symbols;
  for (const Work* w : works) {
    tenants.insert(w->x.tenant_id.value);
    symbols.insert(w->x.symbol);
  }
  for (const auto& symbol : symbols) rules_for(symbol);  // fetched before any row is locked

  pqxx::work tx(connection_);
  auto tenant_states = repository_.lock_tenants(tx, tenants);
  // Breakers as read at the start of the batch, without locking; only a state
  // change (OPEN -> HALF_OPEN trial) takes the row lock and decides again on
  // the locked row. The batch carries each symbol's breaker forward, so a
  // trial is granted once.
  std::vector<Event> events;
  std::vector<std::pair<Work*, std::string>> blocked;
  std::vector<std::string> failures;
  for (Work* w : works) {
    const core::Execution& x = w->x;
    const Decimal trigger_price = x.trigger_price.value_or(w->price.value_or(Decimal()));
    const Decimal target_quantity = x.quantity.value_or(w->position.quantity);
    if (!target_quantity.is_positive()) {
      fail(*w, "operation has no quantity to exit");
      continue;
    }
    auto& tenant = tenant_states[x.tenant_id.value];
    core::CircuitBreaker& breaker = breakers_[x.symbol];
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
    context.price_age = w->price ? std::chrono::duration_cast<std::chrono::milliseconds>(now - w->price_time)
                                 : std::chrono::milliseconds::max();
    context.max_price_age = options_.max_price_age;
    const Decimal level = x.trigger_kind == core::TriggerKind::kTakeProfit
                              ? core::effective_target(w->position).value_or(trigger_price)
                              : core::effective_stop(w->position).value_or(trigger_price);
    context.level = level;
    context.price = w->price.value_or(level);
    if (const auto block = core::pre_trade_block(context)) {
      const std::string reason(core::to_string(*block));
      if (x.status != core::ExecutionStatus::kBlocked || x.blocked_reason != reason) {
        Event e = base_event(x, EventType::kBlocked, options_.source);
        e.reason = reason;
        e.trigger_price = w->price;
        events.push_back(std::move(e));
      }
      w->outcome = "blocked:" + reason;
      blocked.emplace_back(w, reason);
      continue;
    }
    const exchange::SymbolRules* rules = known_rules(x.symbol);
    if (rules == nullptr) {
      fail(*w, "no exchange rules for symbol " + x.symbol + " (not listed or exchangeInfo unreachable)");
      continue;
    }
    const auto quantity = exchange::market_quantity(*rules, target_quantity, context.price);
    if (!quantity) {
      fail(*w, "quantity " + target_quantity.to_string() + " is below the minimum quantity or notional of " +
                   x.symbol + " (dust)");
      w->dust = true;
      continue;
    }
    if (!(decision.next == breaker)) {
      repository_.save_breaker(tx, x.symbol, decision.next, std::nullopt);
      w->trial = decision.next.state == core::BreakerState::kHalfOpen;
      breaker = decision.next;
    }
    // Submitted before (then blocked): that order may exist after all, so look first.
    w->query_first = x.submitted_at.has_value();
    ++tenant.submitted_last_minute;
    ++tenant.submitted_last_hour;
    w->submission = Submission{1, exchange::client_order_id(x.execution_token, 1), *quantity, Decimal(), Decimal()};
    Event e = base_event(x, EventType::kExecutionSubmitted, options_.source);
    e.quantity = *quantity;
    e.payload = json{{"attempt", 1},
                     {"client_order_id", w->submission->client_order_id},
                     {"order_quantity", quantity->to_string()},
                     {"filled_before", "0"},
                     {"quote_before", "0"}}
                    .dump();
    events.push_back(std::move(e));
  }
  store::EventStore::append(tx, std::move(events));
  tx.commit();
  for (const auto& [w, reason] : blocked) {
    w->x.status = core::ExecutionStatus::kBlocked;
    w->x.blocked_reason = reason;
    log::warn("exit blocked by a guardrail", {{"operation", w->x.operation_id.value}, {"reason", reason}});
  }
  for (const Work* w : works) {
    if (w->submission) runtime::fault_point("stop_monitor.after_submit");
  }
}

void StopMonitor::note_breaker_success(const std::string& symbol) {
  // The common case: a success on a closed, clean breaker changes nothing and
  // takes no lock. Failures and successes are applied in the order their
  // answers are handled.
  core::CircuitBreaker& seen = breakers_[symbol];
  if (seen.state == core::BreakerState::kClosed && seen.failure_count == 0) return;
  pqxx::work tx(connection_);
  const core::CircuitBreaker b = repository_.lock_breaker(tx, symbol);
  const core::CircuitBreaker next = core::breaker_on_success(b);
  seen = next;
  if (next == b) return;
  repository_.save_breaker(tx, symbol, next, std::nullopt);
  tx.commit();
  if (next.state != b.state) {
    log::warn("circuit breaker changed", {{"symbol", symbol}, {"state", std::string(core::to_string(next.state))}});
  }
}

void StopMonitor::note_breaker_failure(const std::string& symbol, const exchange::ExchangeError& error) {
  pqxx::work tx(connection_);
  const core::CircuitBreaker b = repository_.lock_breaker(tx, symbol);
  const core::CircuitBreaker next = core::breaker_on_failure(b, std::chrono::system_clock::now());
  breakers_[symbol] = next;
  if (!(next == b)) {
    repository_.save_breaker(tx, symbol, next, error.describe());
    if (next.state != b.state) {
      log::warn("circuit breaker changed", {{"symbol", symbol}, {"state", std::string(core::to_string(next.state))}});
    }
  }
  tx.commit();
}

bool StopMonitor::held_by_breaker(Work& w) {
  // The order does not exist. If the symbol's breaker is not closed (opened by
  // failures earlier in this batch, or by another process), it waits as
  // BLOCKED; a first attempt only, as a later one's predecessor filled.
  const auto breaker = breakers_.find(w.x.symbol);
  if (w.trial || w.submission->attempt != 1 || breaker == breakers_.end() ||
      breaker->second.state == core::BreakerState::kClosed) {
    return false;
  }
  Event e = base_event(w.x, EventType::kBlocked, options_.source);
  e.reason = std::string(core::to_string(core::BlockReason::kCircuitOpen));
  e.trigger_price = w.price;
  w.blocked = std::move(e);
  w.outcome = "blocked:" + *w.blocked->reason;
  return true;
}

exchange::OrderRequest StopMonitor::order_request(const Work& w) {
  const core::Side exit = w.x.side.value_or(core::exit_side(w.position.side));
  return {w.x.symbol, exit, w.submission->quantity, w.submission->client_order_id};
}

void StopMonitor::send(Work& w, std::optional<exchange::Result<exchange::Order>> answer) {
  const core::Execution& x = w.x;
  const core::Side exit = x.side.value_or(core::exit_side(w.position.side));
  const Decimal trigger_price = x.trigger_price.value_or(w.price.value_or(Decimal()));
  const Decimal target_quantity = x.quantity.value_or(w.position.quantity);
  Submission& submission = *w.submission;
  // Drive the submission to an end: send (or find) the order, then exit any
  // remainder of a partial fill with the next deterministic client id.
  // `answer` is the exchange's answer to this work's first order when the
  // caller already sent it (with others at once).
  bool query_first = w.query_first && !answer;
  for (;;) {
    std::optional<exchange::Order> order;
    if (query_first) {
      auto found = exchange_.query_order(x.symbol, submission.client_order_id);
      if (!found.ok()) {
        log::warn("order status query failed; will retry on a later pass",
                  {{"token", x.execution_token}, {"error", found.error().describe()}});
        w.outcome = "pending";
        return;
      }
      order = found.value();
    }
    if (!order) {
      if (!answer && held_by_breaker(w)) return;
      auto placed = answer ? std::move(*answer) : exchange_.place_market_order(order_request(w));
      answer.reset();
      runtime::fault_point("stop_monitor.after_exchange_answer");
      if (placed.ok()) {
        order = placed.value();
      } else {
        const exchange::ExchangeError& error = placed.error();
        if (error.error_class == exchange::ErrorClass::kTerminal) {
          // A business rejection (-2010, a filter) says nothing about the exchange's health.
          fail(w, "order rejected: " + error.describe());
          return;
        }
        // A rate limit or ban is about this client's request weight, not the
        // symbol's market: it does not count against the symbol's breaker.
        if (error.error_class != exchange::ErrorClass::kRateLimited &&
            error.error_class != exchange::ErrorClass::kBanned) {
          note_breaker_failure(x.symbol, error);
        }
        if (error.error_class != exchange::ErrorClass::kStatusUnknown) {
          // Not placed: a later pass queries (finds nothing, -2013) and resends the same id.
          log::warn("order not placed; will retry on a later pass",
                    {{"token", x.execution_token}, {"error", error.describe()}});
          w.outcome = "pending";
          return;
        }
        // Status unknown: the order may exist. Ask, never resend blindly.
        log::warn("order status unknown; querying by client order id",
                  {{"token", x.execution_token}, {"client_order_id", submission.client_order_id}, {"error", error.describe()}});
        for (int i = 0; i < options_.unknown_status_queries && !order; ++i) {
          std::this_thread::sleep_for(options_.query_backoff * (i + 1));
          auto found = exchange_.query_order(x.symbol, submission.client_order_id);
          if (found.ok() && found.value()) order = found.value();
        }
        if (!order) {
          // Not visible (yet). A request still in flight inside the exchange could
          // land later, so the resend waits for a later pass, which queries again
          // first and resends the same client id only if the exchange still says -2013.
          log::warn("order not found after a status-unknown answer; left SUBMITTED for the next pass",
                    {{"token", x.execution_token}, {"client_order_id", submission.client_order_id}});
          w.outcome = "pending";
          return;
        }
      }
    }
    if (!order->done()) {  // a market order still working: look again next pass
      w.outcome = "pending";
      return;
    }
    note_breaker_success(x.symbol);
    const Decimal filled = submission.filled_before + order->executed_qty;
    const Decimal quote = submission.quote_before + order->cummulative_quote_qty;
    const Decimal remaining = target_quantity - filled;
    if (remaining.is_positive() && !order->executed_qty.is_zero() && submission.attempt < options_.max_order_attempts) {
      const exchange::SymbolRules* rules = rules_for(x.symbol);
      const auto next_quantity =
          rules != nullptr ? exchange::market_quantity(*rules, remaining, w.price.value_or(trigger_price)) : std::nullopt;
      if (next_quantity) {
        // Partial fill: record it and exit the remainder with the next client id.
        Submission next{submission.attempt + 1, exchange::client_order_id(x.execution_token, submission.attempt + 1),
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
      fail(w,
           "order " + std::to_string(order->order_id) + " ended " + std::string(exchange::to_string(order->status)) +
               " with nothing filled",
           std::to_string(order->order_id));
      return;
    }
    const Decimal fill_price = Decimal::div(quote, filled, core::Rounding::kHalfUp);
    Event e = base_event(x, EventType::kExecuted, options_.source);
    e.fill_price = fill_price;
    e.slippage_pct = core::slippage_pct(exit, trigger_price, fill_price);
    e.quantity = filled;
    e.trigger_price = trigger_price;
    e.exchange_order_id = std::to_string(order->order_id);
    json payload = {{"attempts", submission.attempt},
                    {"filled_quantity", filled.to_string()},
                    {"quote_quantity", quote.to_string()},
                    {"last_status", std::string(exchange::to_string(order->status))}};
    if (remaining.is_positive()) {
      payload["dust_remainder"] = remaining.to_string();
      w.dust_remainder = remaining;
      w.dust = true;
    }
    e.payload = payload.dump();
    w.terminal = std::move(e);
    return;
  }
}

void StopMonitor::record(std::span<Work> batch) {
  std::vector<Work*> finished;
  std::set<std::int64_t> tenants;
  for (Work& w : batch) {
    if (w.terminal) {
      finished.push_back(&w);
      tenants.insert(w.x.tenant_id.value);
    }
  }
  std::vector<Event> events;
  for (const Work& w : batch) {
    if (w.blocked) events.push_back(*w.blocked);
  }
  if (finished.empty() && events.empty()) return;
  pqxx::work tx(connection_);
  // Lock order as in guard(): tenants, then executions and operations.
  const auto limits = repository_.tenant_limits(tx, tenants);
  std::map<Work*, core::SlippageVerdict> verdicts;
  for (Work* w : finished) {
    if (w->terminal->type != EventType::kExecuted || !w->terminal->slippage_pct) continue;
    const core::SlippageVerdict verdict = core::judge_fill_slippage(limits.at(w->x.tenant_id.value),
                                                                    *w->terminal->slippage_pct);
    verdicts[w] = verdict;
  }
  // Each tenant paused once, for its first such fill, in tenant id order (the row lock order).
  std::map<std::int64_t, const Work*> pausing;
  for (Work* w : finished) {
    const auto v = verdicts.find(w);
    if (v != verdicts.end() && v->second == core::SlippageVerdict::kPauseTenant) pausing.emplace(w->x.tenant_id.value, w);
  }
  for (const auto& [tenant, w] : pausing) {
    repository_.pause_tenant(tx, tenant,
                             "fill slippage " + w->terminal->slippage_pct->to_string() + " % on operation " +
                                 std::to_string(w->x.operation_id.value) + " reached the pause threshold");
  }
  for (Work* w : finished) events.push_back(*w->terminal);
  store::EventStore::append(tx, std::move(events));
  for (Work* w : finished) {
    if (!w->dust_remainder) continue;
    tx.exec_params("UPDATE operation SET close_reason = $2 WHERE id = $1", w->x.operation_id.value,
                   "dust remainder " + w->dust_remainder->to_string() + " below the exchange minimum");
  }
  tx.commit();
  for (const Work& w : batch) {
    if (w.blocked) {
      log::warn("exit blocked by a guardrail before its order was sent",
                {{"operation", w.x.operation_id.value}, {"reason", *w.blocked->reason}});
    }
  }
  for (Work* w : finished) {
    const Event& e = *w->terminal;
    if (e.type == EventType::kFailed) {
      w->outcome = "failed";
      log::error("exit failed",
                 {{"operation", w->x.operation_id.value}, {"token", w->token}, {"error", e.error_message.value_or("")}});
      continue;
    }
    w->outcome = "executed";
    if (const auto v = verdicts.find(w); v != verdicts.end() && v->second != core::SlippageVerdict::kWithinLimit) {
      log::warn(v->second == core::SlippageVerdict::kPauseTenant ? "tenant paused: fill slippage over the pause threshold"
                                                                 : "fill slippage over the tenant's limit",
                {{"tenant", w->x.tenant_id.value},
                 {"operation", w->x.operation_id.value},
                 {"slippage_pct", e.slippage_pct->to_string()}});
    }
    log::info("exit executed", {{"operation", w->x.operation_id.value},
                                {"tenant", w->x.tenant_id.value},
                                {"order", e.exchange_order_id.value_or("")},
                                {"fill_price", e.fill_price ? e.fill_price->to_string() : ""},
                                {"slippage_pct", e.slippage_pct ? e.slippage_pct->to_string() : ""}});
  }
}

}  // namespace backstop::monitor
