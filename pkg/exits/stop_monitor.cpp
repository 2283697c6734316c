#include "exits/stop_monitor.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <span>
#include <thread>

#include "core/exit.h"
#include "core/guardrails.h"
#include "exits/exit_events.h"
#include "feed/price_feed.h"
#include "runtime/fault.h"
#include "runtime/log.h"
#include "store/db.h"
#include "store/event_store.h"

namespace backstop::exits {
namespace {

using core::Decimal;
using core::Event;
using core::EventType;
using nlohmann::json;

// BLOCKED reason of an exit whose own error (bad data, an overflow, a bug)
// kept it from being driven: retried every pass, never in the others' way.
constexpr std::string_view kQuarantined = "QUARANTINED";

// core::evaluate, with one row whose levels are out of range skipped (logged),
// not the whole tick.
std::optional<core::Trigger> evaluate_row(const core::ProtectedPosition& position, Decimal price) {
  try {
    return core::evaluate(position, price);
  } catch (const core::DecimalError& e) {
    log::error("operation skipped: its levels cannot be evaluated",
               {{"operation", position.id.value}, {"error", e.what()}});
    return std::nullopt;
  }
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
  total.quarantined += pass.quarantined;
  total.malformed_frames += pass.malformed_frames;
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

StopMonitor::StopMonitor(store::Connection& connection, exchange::Exchange& exchange, MonitorOptions options,
                         exchange::AccountApi* account)
    : connection_(connection),
      exchange_(exchange),
      account_(account),
      options_(std::move(options)),
      repository_(connection),
      random_(std::random_device{}()) {}

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

PassSummary StopMonitor::run_on_prices(const core::PriceSnapshot& prices, core::TimePoint received) {
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
  core::Execution x;              // the projection row read under the token lock
  core::ExitState state;          // what the exit's events say (core/exit.h)
  core::ExitAction action;        // what to ask the exchange next (kSend / kQuery), else nothing
  bool trial = false;             // the one HALF_OPEN trial of its symbol's breaker
  std::optional<Event> blocked;   // BLOCKED CIRCUIT_OPEN, written by record() (guard() writes its own)
  std::optional<Event> terminal;  // EXECUTED or FAILED, written by record()
  // The free base asset this exit may sell (guard's account read, less what
  // its attempts filled since); nullopt: not known.
  std::optional<Decimal> sellable;
  Decimal locked;  // with `sellable`: held, not this exit's to sell now (open orders, other exits' sales)
  std::chrono::steady_clock::time_point sellable_read_at{};
  bool dust = false;                      // a remainder (or the whole quantity) below the exchange's minimum
  std::optional<Decimal> dust_remainder;  // EXECUTED with a remainder below the minimum
  std::string outcome;  // executed, failed, pending, blocked:<reason>, locked, already-finished, missing
  [[nodiscard]] Decimal trigger_price() const { return x.trigger_price.value_or(price.value_or(Decimal())); }
  [[nodiscard]] core::Side exit_side() const { return x.side.value_or(core::exit_side(position.side)); }
  // Back to what the caller knew, to be driven again from the exit's events.
  void restart() {
    x = {};
    state = {};
    action = {};
    trial = false;
    blocked.reset();
    terminal.reset();
    sellable.reset();
    dust = false;
    dust_remainder.reset();
    outcome.clear();
  }
};

void StopMonitor::resume_unfinished(const core::PriceSnapshot* prices, core::TimePoint received, PassSummary& summary) {
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
        w.price = core::decisive_price(q->second, w.position.side, options_.price_source);
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
    summary.reports.push_back(
        {w.position.id.value, w.position.tenant.value, w.position.symbol, std::string(core::to_string(w.position.side)),
         w.x.trigger_kind ? std::string(core::to_string(*w.x.trigger_kind)) : "", level ? level->to_string() : "",
         w.price ? w.price->to_string() : "", w.token, "resumed:" + w.outcome});
  }
}

void StopMonitor::count_outcome(const std::string& outcome, PassSummary& summary) {
  if (outcome == "blocked:" + std::string(kQuarantined)) ++summary.quarantined;
  if (outcome == "executed") ++summary.executed;
  if (outcome == "failed") ++summary.failed;
  if (outcome == "pending") ++summary.pending;
  if (outcome.rfind("blocked:", 0) == 0) ++summary.blocked[outcome.substr(8)];
}

void StopMonitor::evaluate_and_execute(const core::PriceSnapshot& prices, core::TimePoint received,
                                       PassSummary& summary) {
  drive_claimed(claim(prices, received, summary), summary);
}

void StopMonitor::coalesce_checkpoints(std::chrono::milliseconds every) { checkpoint_every_ = every; }

void StopMonitor::record_checks(store::UnitOfWork& tx, const PendingChecks& checks) {
  std::vector<store::MonitorRepository::SymbolCheck> symbols;
  for (const auto& [name, check] : checks.symbols) symbols.push_back(check);
  repository_.record_checkpoint(tx, symbols, checks.won);
}

void StopMonitor::flush_checkpoints() {
  if (pending_checks_.symbols.empty() && pending_checks_.won.empty()) return;
  store::UnitOfWork tx(connection_);
  record_checks(tx, pending_checks_);
  tx.commit();
  pending_checks_ = {};
  next_checkpoint_ = std::chrono::steady_clock::now() + checkpoint_every_;
}

void StopMonitor::prepare_claims() {
  store::UnitOfWork tx(connection_, store::Commit::kDeferred);
  repository_.prepare_claim(tx, options_.filter);
  store::EventStore::prepare(tx);
  tx.abort();
}

std::vector<ClaimedExit> StopMonitor::claim(const core::PriceSnapshot& prices, core::TimePoint received,
                                            PassSummary& summary, std::optional<core::TimePoint> arrived) {
  const std::vector<store::SymbolPrice> symbol_prices =
      feed::symbol_prices(prices, options_.filter, options_.price_source);
  summary.symbols = static_cast<std::int64_t>(symbol_prices.size());
  // The scan runs in the claim's own transaction (a dry run only reads).
  std::optional<store::UnitOfWork> tx;
  std::optional<store::ReadOnlyWork> read;
  if (options_.dry_run) {
    read.emplace(connection_);
  } else {
    // The claim does not wait for its WAL flush: nothing leaves the process on
    // the strength of a claim alone. The next step of every exit, its
    // EXECUTION_SUBMITTED (or BLOCKED/FAILED), commits synchronously before
    // any order is sent, and that flush covers the claim's earlier WAL record.
    // A claim lost in a server crash is simply claimed again.
    tx.emplace(connection_, store::Commit::kDeferred);
  }
  const auto candidates = tx ? repository_.candidates(*tx, symbol_prices, options_.filter)
                             : repository_.candidates(*read, symbol_prices, options_.filter);
  if (read) read->commit();
  summary.candidates = static_cast<std::int64_t>(candidates.size());

  // Evaluate every candidate, then claim all triggered exits in one transaction:
  // a tick's claims are committed together, before any order is sent.
  std::vector<ClaimedExit> claimed;
  std::vector<Event> claims;
  // The scan's snapshot says which rows are crossed; the claim is decided on
  // the rows as they are under the claim's share locks (one exit per position:
  // a trailing pass that moved the stop meanwhile is seen here, and cannot move
  // it again until this transaction ends).
  std::vector<std::pair<core::ProtectedPosition, Decimal>> crossed;
  for (const core::ProtectedPosition& position : candidates) {
    const auto price = core::decisive_price(prices.at(position.symbol), position.side, options_.price_source);
    if (price && evaluate_row(position, *price)) crossed.emplace_back(position, *price);
  }
  std::map<std::int64_t, core::ProtectedPosition> held;
  if (tx && !crossed.empty()) {
    std::vector<std::int64_t> ids;
    for (const auto& c : crossed) ids.push_back(c.first.id.value);
    held = repository_.lock_for_claim(*tx, ids);
  }
  for (auto& [scanned, decisive] : crossed) {
    const std::optional<Decimal> price = decisive;
    core::ProtectedPosition position = scanned;
    if (tx) {
      const auto now_held = held.find(position.id.value);
      if (now_held == held.end()) continue;  // closed, or its exit was claimed, since the scan
      position = now_held->second;
    }
    const std::optional<core::Trigger> trigger = evaluate_row(position, *price);
    if (!trigger) continue;  // the level moved away from the price since the scan
    ++summary.triggered;
    TriggerReport report{position.id.value,
                         position.tenant.value,
                         position.symbol,
                         std::string(core::to_string(position.side)),
                         std::string(core::to_string(trigger->kind)),
                         trigger->level.to_string(),
                         trigger->price.to_string(),
                         core::execution_token(position.id, trigger->kind, trigger->level),
                         "",
                         0};
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
    claim.stop_price =
        trigger->kind == core::TriggerKind::kStopLoss ? std::optional<Decimal>(trigger->level) : std::nullopt;
    claim.target_price =
        trigger->kind == core::TriggerKind::kTakeProfit ? std::optional<Decimal>(trigger->level) : std::nullopt;
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
      PendingChecks checks = pending_checks_;
      for (const Event& e : appended.appended) {
        won.insert(e.execution_token);
        checks.won.push_back(e.operation_id.value);
      }
      for (const store::SymbolPrice& p : symbol_prices) {
        auto [it, added] =
            checks.symbols.try_emplace(p.symbol, store::MonitorRepository::SymbolCheck{p.symbol, p.long_exit, 0});
        it->second.last_price = p.long_exit;
        ++it->second.passes;
      }
      const auto now = std::chrono::steady_clock::now();
      const bool record = now >= next_checkpoint_;
      if (record) record_checks(*tx, checks);
      tx->commit();
      if (record) {
        pending_checks_ = {};
        next_checkpoint_ = now + checkpoint_every_;
      } else {
        pending_checks_ = std::move(checks);
      }
    }
    const std::int64_t latency_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::system_clock::now() - arrived.value_or(received))
                                        .count();
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
                                   {"trigger_level", report.level},
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
  // One bad exit never stops the others (issue 10, defect 6): a batch that
  // fails is driven again one exit at a time (each exit resumes from its
  // events, so what the failed attempt did is found, never repeated), and an
  // exit that fails alone is quarantined with its error. A lost database is
  // not an exit's fault: it ends the pass.
  const std::size_t batch = std::max<std::size_t>(1, options_.batch_size);
  for (std::size_t first = 0; first < works.size(); first += batch) {
    const std::span<Work> span = std::span<Work>(works).subspan(first, std::min(batch, works.size() - first));
    if (span.size() == 1) {
      drive_alone(span.front());
      continue;
    }
    try {
      drive_batch(span);
      continue;
    } catch (const std::exception& e) {
      if (store::is_lost_connection(e)) throw;  // not the batch's fault: the pass ends, the next one resumes
      log::warn("an exit batch failed; driving its exits one at a time", {{"exits", span.size()}, {"error", e.what()}});
    }
    for (Work& w : span) {
      w.restart();
      drive_alone(w);
    }
  }
}

void StopMonitor::drive_alone(Work& w) {
  try {
    drive_batch(std::span<Work>(&w, 1));
  } catch (const std::exception& e) {
    if (store::is_lost_connection(e)) throw;  // never quarantine an exit for the database's absence
    quarantine(w, e.what());
  }
}

void StopMonitor::quarantine(Work& w, const std::string& error) {
  w.outcome = "blocked:" + std::string(kQuarantined);
  log::error("exit quarantined: its error is kept from the other exits",
             {{"operation", w.position.id.value}, {"token", w.token}, {"error", error}});
  try {
    store::UnitOfWork tx(connection_);
    const auto found = store::EventStore::executions(tx, {w.token});
    const auto x = found.find(w.token);
    if (x == found.end() || x->second.status == core::ExecutionStatus::kExecuted ||
        x->second.status == core::ExecutionStatus::kFailed ||
        (x->second.status == core::ExecutionStatus::kBlocked && x->second.blocked_reason == kQuarantined)) {
      return;  // recorded once, as every block
    }
    Event e = base_event(x->second, EventType::kBlocked, options_.source);
    e.reason = std::string(kQuarantined);
    e.error_message = error;
    e.trigger_price = w.price;
    store::EventStore::append(tx, {std::move(e)});
    tx.commit();
  } catch (const std::exception& e) {
    if (store::is_lost_connection(e)) throw;
    log::error("could not record the quarantine", {{"token", w.token}, {"error", e.what()}});
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
  // The batch's state in one read: executions, what their events say, breakers,
  // and the database's clock.
  std::map<std::string, core::Execution> states;
  store::MonitorRepository::ExitHistory history;
  {
    store::ReadOnlyWork tx(connection_);
    states = store::EventStore::executions(tx, held);
    history = repository_.exit_history(tx, held);
    std::set<std::string> symbols;
    for (const auto& [token, x] : states) symbols.insert(x.symbol);
    breakers_ = repository_.read_breakers(tx, symbols);
  }
  clock_anchor_ = {history.now, std::chrono::steady_clock::now()};

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
    w.state = core::fold_exit(history.facts[w.token]);
    if (w.state.finished()) {
      // Finished by another process between our claim (or scan) and our lock: not ours to count.
      w.outcome = "already-finished";
    } else if (w.state.open) {
      // Submitted earlier and its end is not known: the order may exist. Ask first.
      w.action = core::resume_open(w.state, core::ExitContext{}).next;
    } else {
      to_guard.push_back(&w);  // TRIGGERED or BLOCKED: guardrails, then the next submission
    }
  }
  // One account read for the batch's new attempts (weight 20 per batch, not
  // per exit), before guard() locks any row; each exit is handed its share.
  read_balances(to_guard);
  guard(to_guard);
  // A breaker's trial goes first, alone: its success closes the breaker for
  // the rest. Submissions from earlier passes look for their order first, one
  // at a time; new orders go orders_in_flight at a time.
  auto sendable = [](const Work& w) {
    return w.outcome.empty() && !w.terminal &&
           (w.action.kind == core::ExitActionKind::kSend || w.action.kind == core::ExitActionKind::kQuery);
  };
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
    if (w.action.kind == core::ExitActionKind::kQuery) {
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
      if (held_by_breaker(*fresh[i]) || too_late_to_send(*fresh[i])) continue;
      going.push_back(fresh[i]);
      requests.push_back(order_request(*fresh[i]));
    }
    if (going.empty()) continue;
    auto answers = exchange_.place_market_orders(requests);
    for (std::size_t i = 0; i < going.size(); ++i) send(*going[i], std::move(answers[i]));
  }
  record(batch);
}

core::TimePoint StopMonitor::now() const {
  return clock_anchor_.first +
         std::chrono::duration_cast<core::TimePoint::duration>(std::chrono::steady_clock::now() - clock_anchor_.second);
}

core::ExitContext StopMonitor::exit_context(const Work& w) {
  core::ExitContext c;
  c.token = w.token;
  c.client_id = &exchange::client_order_id;
  c.price = w.price.value_or(w.trigger_price());
  c.now = now();
  c.timing = options_.timing;
  if (w.sellable && std::chrono::steady_clock::now() - w.sellable_read_at <= options_.max_balance_age) {
    c.sellable = w.sellable;
    c.locked = w.locked;
  }
  const RulesLookup found = lookup_rules(w.x.symbol);
  if (found.rules != nullptr && found.rules->trading) c.rules = lot_rules(*found.rules);
  c.symbol_listed = found.listed;
  return c;
}

// Turns the step's records into events: EXECUTED/FAILED are written by
// record() with the batch; the others are committed now, before the action
// that follows them (an order is never sent before its EXECUTION_SUBMITTED).
void StopMonitor::take(Work& w, const core::ExitStep& step) {
  std::vector<Event> now_events = events_of_step(w, step);
  if (!now_events.empty()) {
    store::UnitOfWork tx(connection_);
    store::EventStore::append(tx, std::move(now_events));
    tx.commit();
  }
  after_commit(w, step, now());
}

std::vector<Event> StopMonitor::events_of_step(Work& w, const core::ExitStep& step) {
  std::vector<Event> to_commit;
  for (const core::ExitRecord& r : step.records) {
    Event e = exit_event(w.x, r, options_.source, w.trigger_price(), w.price);
    if (r.type == EventType::kExecuted || r.type == EventType::kFailed) {
      w.terminal = std::move(e);
      w.dust = r.dust.has_value();
      if (r.type == EventType::kExecuted) w.dust_remainder = r.dust;
    } else {
      to_commit.push_back(std::move(e));
    }
  }
  return to_commit;
}

void StopMonitor::after_commit(Work& w, const core::ExitStep& step, core::TimePoint at) {
  // `at` is taken after the commit: never earlier than the database's own
  // time of the events, so a fence judged from it is never early.
  for (const core::ExitRecord& r : step.records) w.state = core::apply_exit_record(std::move(w.state), r, at);
  w.action = step.next;
  if (step.next.kind != core::ExitActionKind::kWait) return;
  const bool retry = !step.records.empty() && step.records.back().type == EventType::kBlocked;
  w.outcome = retry ? "blocked:" + std::string(core::kExchangeRetry) : "pending";
  if (retry) {
    log::warn("exit will be retried", {{"operation", w.x.operation_id.value},
                                       {"token", w.token},
                                       {"failures", step.records.back().failures},
                                       {"error", step.records.back().error.value_or("")}});
  }
}

void StopMonitor::fail(Work& w, const std::string& error, std::optional<std::string> order_id) {
  Event e = base_event(w.x, EventType::kFailed, options_.source);
  e.error_message = error;
  e.exchange_order_id = std::move(order_id);
  w.terminal = std::move(e);
}

StopMonitor::RulesLookup StopMonitor::lookup_rules(const std::string& symbol) {
  if (!rules_ || rules_->count(symbol) == 0) {
    auto fetched = exchange_.rules();
    if (!fetched.ok()) {
      log::warn("cannot read exchange rules", {{"error", fetched.error().describe()}});
      return {nullptr, true};  // unknown, not unlisted: the exit waits
    }
    rules_ = std::move(fetched.value());
  }
  const auto it = rules_->find(symbol);
  return it == rules_->end() ? RulesLookup{nullptr, false} : RulesLookup{&it->second, true};
}

void StopMonitor::read_balances(const std::vector<Work*>& works) {
  balances_.reset();
  handed_out_.clear();
  if (account_ == nullptr) return;
  const bool sells = std::any_of(works.begin(), works.end(), [this](const Work* w) {
    return w->exit_side() == core::Side::kSell && !base_asset_of(w->x.symbol).empty();
  });
  if (!sells) return;
  // The balances are as old as the request, not the answer: a slow answer
  // must not pass for a fresh read.
  const auto asked_at = std::chrono::steady_clock::now();
  auto read = account_->account();
  if (!read.ok()) {
    log::warn("cannot read the account's balances; exits are sized without them", {{"error", read.error().describe()}});
    return;
  }
  if (read.value().account_type != "SPOT") {
    log::warn("the account is not a spot account; exits are sized without its balances",
              {{"account_type", read.value().account_type}});
    return;
  }
  balances_ = std::move(read.value().balances);
  balances_read_at_ = asked_at;
}

void StopMonitor::hand_out_balance(Work& w) {
  w.sellable.reset();
  w.locked = Decimal();
  if (!balances_ || w.exit_side() != core::Side::kSell) return;
  const std::string asset = base_asset_of(w.x.symbol);
  if (asset.empty()) return;
  const auto it = balances_->find(asset);
  const exchange::AssetBalance held = it == balances_->end() ? exchange::AssetBalance{} : it->second;  // omitted: 0
  // What earlier exits of the batch will sell from the free balance is not
  // this exit's to sell now, but it is held, not missing: their orders may
  // yet fail. So it counts as locked (this exit waits for it); only what the
  // whole account does not hold is ever recorded as not held.
  const Decimal given = handed_out_[asset];
  w.sellable = held.free - given;
  w.locked = held.locked + given;
  w.sellable_read_at = balances_read_at_;
}

std::string StopMonitor::base_asset_of(const std::string& symbol) {
  const RulesLookup found = lookup_rules(symbol);
  return found.rules == nullptr ? std::string() : found.rules->base_asset;
}

void StopMonitor::guard(const std::vector<Work*>& works) {
  if (works.empty()) return;
  std::set<std::int64_t> tenants;
  std::set<std::string> symbols;
  for (const Work* w : works) {
    tenants.insert(w->x.tenant_id.value);
    symbols.insert(w->x.symbol);
  }
  for (const auto& symbol : symbols) lookup_rules(symbol);  // fetched before any row is locked

  store::UnitOfWork tx(connection_);
  auto tenant_states = repository_.lock_tenants(tx, tenants);
  // Breakers as read at the start of the batch, without locking; only a state
  // change (OPEN -> HALF_OPEN trial) takes the row lock and decides again on
  // the locked row. The batch carries each symbol's breaker forward, so a
  // trial is granted once.
  std::vector<Event> events;
  std::vector<std::pair<Work*, core::ExitStep>> steps;
  std::vector<std::pair<Work*, std::string>> blocked;
  for (Work* w : works) {
    const core::Execution& x = w->x;
    const core::TimePoint now_db = now();
    if (core::waiting_for_retry(w->state, now_db)) {
      w->outcome = "pending";  // its retry time has not come
      continue;
    }
    if (!w->state.target.is_positive()) {
      fail(*w, "operation has no quantity to exit");
      continue;
    }
    auto& tenant = tenant_states[x.tenant_id.value];
    core::CircuitBreaker& breaker = breakers_[x.symbol];
    const auto wall = std::chrono::system_clock::now();
    core::BreakerDecision decision = core::breaker_allows(breaker, wall);
    if (!(decision.next == breaker)) {
      breaker = repository_.lock_breaker(tx, x.symbol);
      decision = core::breaker_allows(breaker, wall);
    }
    core::PreTradeContext context;
    context.tenant = tenant.limits;
    context.executions_last_minute = tenant.submitted_last_minute;
    context.executions_last_hour = tenant.submitted_last_hour;
    context.breaker_allows = decision.allow;
    context.price_age = w->price ? std::chrono::duration_cast<std::chrono::milliseconds>(wall - w->price_time)
                                 : std::chrono::milliseconds::max();
    context.max_price_age = options_.max_price_age;
    const Decimal trigger_price = w->trigger_price();
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
    hand_out_balance(*w);
    core::ExitStep step = core::start_attempt(w->state, exit_context(*w));
    const bool submits = step.next.kind == core::ExitActionKind::kSend;
    if (w->sellable && submits) {
      // Later exits of the batch on the same asset get what this one leaves:
      // all it will sell from the free balance, every order of a split exit.
      core::ExitState sized = w->state;
      sized.not_held = step.records.front().not_held;
      const Decimal free = w->sellable->is_positive() ? *w->sellable : Decimal();
      handed_out_[base_asset_of(w->x.symbol)] += std::min(sized.remaining(), free);
    }
    if (submits) {
      if (!(decision.next == breaker)) {
        repository_.save_breaker(tx, x.symbol, decision.next, std::nullopt);
        w->trial = decision.next.state == core::BreakerState::kHalfOpen;
        breaker = decision.next;
      }
      ++tenant.submitted_last_minute;
      ++tenant.submitted_last_hour;
    }
    for (Event& e : events_of_step(*w, step)) events.push_back(std::move(e));
    steps.emplace_back(w, std::move(step));
  }
  store::EventStore::append(tx, std::move(events));
  tx.commit();
  const core::TimePoint at = now();
  for (const auto& [w, reason] : blocked) {
    w->x.status = core::ExecutionStatus::kBlocked;
    w->x.blocked_reason = reason;
    log::warn("exit blocked by a guardrail", {{"operation", w->x.operation_id.value}, {"reason", reason}});
  }
  for (auto& [w, step] : steps) {
    // The submissions and retries are committed; EXECUTED / FAILED (dust, an
    // unlisted symbol) go with the batch's record().
    after_commit(*w, step, at);
    if (step.next.kind == core::ExitActionKind::kSend) runtime::fault_point("stop_monitor.after_submit");
  }
}

void StopMonitor::note_breaker_success(const std::string& symbol) {
  // The common case: a success on a closed, clean breaker changes nothing and
  // takes no lock. Failures and successes are applied in the order their
  // answers are handled.
  core::CircuitBreaker& seen = breakers_[symbol];
  if (seen.state == core::BreakerState::kClosed && seen.failure_count == 0) return;
  store::UnitOfWork tx(connection_);
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
  store::UnitOfWork tx(connection_);
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
  // The order does not exist yet. If the symbol's breaker is not closed
  // (opened by failures earlier in this batch, or by another process), it
  // waits as BLOCKED, and its attempt is over before it began.
  const auto breaker = breakers_.find(w.x.symbol);
  if (w.trial || breaker == breakers_.end() || breaker->second.state == core::BreakerState::kClosed) {
    return false;
  }
  Event e = base_event(w.x, EventType::kBlocked, options_.source);
  e.reason = std::string(core::to_string(core::BlockReason::kCircuitOpen));
  e.trigger_price = w.price;
  // Never sent: the next submission is a new attempt, not a search for this one.
  e.payload = json{{"attempt", w.state.attempts}, {"attempt_ended", true}}.dump();
  w.blocked = std::move(e);
  w.outcome = "blocked:" + *w.blocked->reason;
  return true;
}

bool StopMonitor::too_late_to_send(Work& w) {
  if (options_.timing.may_send(w.state.sent_at, now())) return false;
  // Stalled between its EXECUTION_SUBMITTED and now: sent, its timestamp would
  // be newer than the fence allows for. Left open: a later pass queries it
  // (-2013) and sends the next attempt after the fence.
  log::warn("submission not sent: past its send deadline; resolved after the fence",
            {{"token", w.token}, {"client_order_id", w.action.client_order_id}});
  w.outcome = "pending";
  return true;
}

exchange::OrderRequest StopMonitor::order_request(const Work& w) {
  return {w.x.symbol, w.exit_side(), w.action.quantity, w.action.client_order_id};
}

void StopMonitor::send(Work& w, std::optional<exchange::Result<exchange::Order>> answer) {
  // Drive the exit with the pure step (core/exit.h) until it waits or ends:
  // each answer of the exchange goes in, the records it asks for are
  // committed before the next request goes out. `answer` is the exchange's
  // answer to this work's order when the caller already sent it (with others
  // at once).
  core::TimePoint sent_at = w.state.sent_at;  // a batch's orders went out right after their commit
  for (int round = 0; round < 10000; ++round) {
    core::ExchangeAnswer seen;
    if (answer) {
      seen = answer_of(*answer, sent_at);
      if (!answer->ok() && counts_against_breaker(answer->error())) note_breaker_failure(w.x.symbol, answer->error());
      if (answer->ok()) note_breaker_success(w.x.symbol);
      answer.reset();
      runtime::fault_point("stop_monitor.after_exchange_answer");
    } else if (w.action.kind == core::ExitActionKind::kSend) {
      if (held_by_breaker(w) || too_late_to_send(w)) return;
      sent_at = now();
      answer = exchange_.place_market_order(order_request(w));
      continue;
    } else if (w.action.kind == core::ExitActionKind::kQuery) {
      if (w.action.not_before && *w.action.not_before > now()) {
        std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(
            options_.query_backoff,
            std::chrono::duration_cast<std::chrono::milliseconds>(*w.action.not_before - now())));
      }
      const core::TimePoint asked_at = now();
      const auto found = exchange_.query_order(w.x.symbol, w.action.client_order_id);
      if (!found.ok()) {
        log::warn("order status query failed; will retry on a later pass",
                  {{"token", w.token}, {"error", found.error().describe()}});
        w.outcome = "pending";
        return;
      }
      seen = answer_of(found, asked_at);
    } else {
      return;
    }
    if (seen.kind == core::AnswerKind::kUnknown) {
      log::warn("order status unknown; querying by client order id",
                {{"token", w.token}, {"client_order_id", w.state.client_order_id}, {"error", seen.error}});
      // Give the exchange a moment to register it before the first query.
      if (!seen.not_before) seen.not_before = now() + options_.query_backoff;
    }
    if (seen.kind == core::AnswerKind::kNotFound && seen.asked_at < options_.timing.fence(w.state.sent_at)) {
      log::warn("order not found; nothing is re-sent before the fence, left SUBMITTED for a later pass",
                {{"token", w.token}, {"client_order_id", w.state.client_order_id}});
    }
    if (w.sellable && seen.kind == core::AnswerKind::kOrder && seen.order->final) {
      // Sent after the account read: what it sold has left the free balance.
      w.sellable = *w.sellable - seen.order->executed;
    }
    take(w, core::on_answer(w.state, seen, exit_context(w)));
    if (w.terminal || !w.outcome.empty()) return;
  }
  w.outcome = "pending";
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
  store::UnitOfWork tx(connection_);
  // Lock order as in guard(): tenants, then executions and operations.
  const auto limits = repository_.tenant_limits(tx, tenants);
  std::map<Work*, core::SlippageVerdict> verdicts;
  for (Work* w : finished) {
    if (w->terminal->type != EventType::kExecuted || !w->terminal->slippage_pct) continue;
    const core::SlippageVerdict verdict =
        core::judge_fill_slippage(limits.at(w->x.tenant_id.value), *w->terminal->slippage_pct);
    verdicts[w] = verdict;
  }
  // Each tenant paused once, for its first such fill, in tenant id order (the row lock order).
  std::map<std::int64_t, const Work*> pausing;
  for (Work* w : finished) {
    const auto v = verdicts.find(w);
    if (v != verdicts.end() && v->second == core::SlippageVerdict::kPauseTenant)
      pausing.emplace(w->x.tenant_id.value, w);
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
    repository_.record_close_reason(tx, w->x.operation_id.value,
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
      log::error(
          "exit failed",
          {{"operation", w->x.operation_id.value}, {"token", w->token}, {"error", e.error_message.value_or("")}});
      continue;
    }
    w->outcome = "executed";
    if (const auto v = verdicts.find(w); v != verdicts.end() && v->second != core::SlippageVerdict::kWithinLimit) {
      log::warn(v->second == core::SlippageVerdict::kPauseTenant
                    ? "tenant paused: fill slippage over the pause threshold"
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

}  // namespace backstop::exits
