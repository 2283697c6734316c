// One stop-monitor pass (DOMAIN §1, §3, §5):
//   1. finish what earlier passes (or dead processes) left unfinished: executions
//      still TRIGGERED, BLOCKED or SUBMITTED; a SUBMITTED one is resolved by
//      querying the exchange by its client order id, never by resending blindly;
//   2. price snapshot → the crossed ACTIVE operations (index-driven scan);
//   3. for each: STOP_TRIGGERED claims the deterministic token (the loser of a
//      race logs "duplicate execution prevented" and does nothing) → guardrails
//      (BLOCKED with a reason, retried on a later pass) → EXECUTION_SUBMITTED →
//      market order with a client id derived from the token → EXECUTED (fill,
//      slippage) or FAILED (full error), each event with its projection and
//      outbox row in one transaction.
// A per-token advisory lock makes sure one process at a time works on an
// execution; PostgreSQL releases it when a process dies.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "core/event.h"
#include "core/exit.h"
#include "core/trigger.h"
#include "exchange/exchange.h"
#include "store/monitor_repository.h"
#include "store/unit_of_work.h"

namespace backstop::exits {

struct MonitorOptions {
  bool dry_run = false;
  core::PriceSource price_source = core::PriceSource::kLast;
  core::EventSource source = core::EventSource::kCron;
  store::ScanFilter filter;
  std::chrono::milliseconds max_price_age{30000};
  // The re-send fence and the retry backoff (core/exit.h); recv_window must be
  // what the exchange client sends.
  core::ExitTiming timing;
  std::chrono::milliseconds query_backoff{200};  // after an unknown outcome, before the first query
  // Executions driven together: their locks, reads, guardrail decisions and
  // terminal events share one statement or transaction per stage, while each
  // order is still its own request.
  std::size_t batch_size = 64;
  // New orders of a batch sent at once, each on its own connection (the
  // exchange answers them in parallel; fewer hand-offs per order).
  std::size_t orders_in_flight = 8;
  // An account read (GET /api/v3/account, once per batch of new attempts)
  // caps each attempt at the free base asset (issue 13); older than this when
  // an attempt is sized, it is not used and the attempt goes out uncapped (the
  // exchange refuses an oversell, -2010, retried with a new read).
  std::chrono::milliseconds max_balance_age{5000};
};

struct TriggerReport {
  std::int64_t operation_id = 0;
  std::int64_t tenant_id = 0;
  std::string symbol;
  std::string side;
  std::string kind;
  std::string level;
  std::string price;
  std::string token;
  std::string outcome;                // executed, failed, blocked:<reason>, duplicate, pending, dry-run
  std::int64_t claim_latency_us = 0;  // price received -> STOP_TRIGGERED committed
};

struct PassSummary {
  std::int64_t symbols = 0;
  std::int64_t candidates = 0;
  std::int64_t triggered = 0;
  std::int64_t duplicates = 0;
  std::int64_t executed = 0;
  std::int64_t failed = 0;
  std::int64_t pending = 0;  // left SUBMITTED for a later pass (status unknown)
  std::int64_t resumed = 0;  // unfinished executions picked up
  std::int64_t dust = 0;
  std::int64_t quarantined = 0;                 // exits whose own error was isolated (BLOCKED QUARANTINED)
  std::int64_t malformed_frames = 0;            // --stream: frames of the price stream skipped as malformed
  std::map<std::string, std::int64_t> blocked;  // by reason
  std::vector<TriggerReport> reports;
  double seconds = 0;
  std::vector<std::int64_t> claim_latencies_us;  // one per STOP_TRIGGERED this process committed
  bool price_error = false;
  std::string error;  // why the pass could not run (exchange unreachable, ...)
};

// An exit crossed by a price: claimed by this process (report.outcome empty),
// claimed by another one first ("duplicate"), or only evaluated ("dry-run").
struct ClaimedExit {
  core::ProtectedPosition position;
  std::optional<core::Decimal> price;
  core::TimePoint received;
  TriggerReport report;
};

// Adds `pass` into `total` (counts, reports, latencies).
void accumulate(PassSummary& total, const PassSummary& pass);

class StopMonitor {
 public:
  // `account`: where the free balances are read (nullptr: not read, exits
  // are not capped at what the account holds).
  StopMonitor(store::Connection& connection, exchange::Exchange& exchange, MonitorOptions options,
              exchange::AccountApi* account = nullptr);

  PassSummary run_pass();
  // A pass on prices that arrived from a stream (one or more symbols), without
  // the REST snapshot. `received` is when the prices were received.
  PassSummary run_on_prices(const core::PriceSnapshot& prices, core::TimePoint received);

  // The two halves of evaluating prices, for callers that claim on one thread
  // (fast: evaluation + one transaction) and drive on another (orders):
  // claim() commits the STOP_TRIGGERED events and the checkpoint;
  // drive_claimed() takes each exit to a terminal state (or a block).
  // `received`: how old the prices are (staleness); `arrived`: when they were
  // received here, where the claim latency starts (default: `received`).
  std::vector<ClaimedExit> claim(const core::PriceSnapshot& prices, core::TimePoint received, PassSummary& summary,
                                 std::optional<core::TimePoint> arrived = std::nullopt);
  void drive_claimed(std::vector<ClaimedExit> claimed, PassSummary& summary);
  // Runs the claim's statements once with nothing to claim (and rolls back),
  // so that the first claim on this connection is as fast as the next ones.
  void prepare_claims();
  // Claims record the symbols' checkpoints (monitor_checkpoint, and the won
  // operations' check counts) at most once per `every`, with the first claim
  // after it, instead of in every claim: a stream's claim of a tick then writes
  // only its exits. flush_checkpoints() records what is pending. The REST
  // passes record their own, so an idle stream's symbols are never shown as
  // checked later than the last pass.
  void coalesce_checkpoints(std::chrono::milliseconds every);
  void flush_checkpoints();

 private:
  struct Work;  // one execution being driven to a terminal state
  void evaluate_and_execute(const core::PriceSnapshot& prices, core::TimePoint received, PassSummary& summary);
  void resume_unfinished(const core::PriceSnapshot* prices, core::TimePoint received, PassSummary& summary);
  static void count_outcome(const std::string& outcome, PassSummary& summary);
  // Each work to a terminal state, a block or "pending", batch_size at a time:
  //   lock the tokens (those another process holds are "locked") → read their
  //   state → guard(): guardrails and EXECUTION_SUBMITTED (or BLOCKED) in one
  //   transaction → send(): each order, or find it first if it was submitted
  //   before → record(): EXECUTED / FAILED, breakers, pauses in one transaction.
  void drive(std::vector<Work>& works);
  void drive_batch(std::span<Work> batch);
  void drive_alone(Work& work);  // its error quarantines this exit only
  void quarantine(Work& work, const std::string& error);
  void guard(const std::vector<Work*>& works);
  void send(Work& work, std::optional<exchange::Result<exchange::Order>> answer = std::nullopt);
  bool held_by_breaker(Work& work);   // true: the work is BLOCKED (CIRCUIT_OPEN) instead of sent
  bool too_late_to_send(Work& work);  // true: past its send deadline, left open (core::ExitTiming)
  static exchange::OrderRequest order_request(const Work& work);
  void record(std::span<Work> batch);
  void fail(Work& work, const std::string& error, std::optional<std::string> order_id = std::nullopt);
  // Appends what the exit step asks for (EXECUTED / FAILED go with the batch's
  // record()) and takes its next action.
  void take(Work& work, const core::ExitStep& step);
  // The step's events to commit now (EXECUTED / FAILED are kept on the work
  // for record()), and the work's state, action and outcome once they are.
  std::vector<core::Event> events_of_step(Work& work, const core::ExitStep& step);
  void after_commit(Work& work, const core::ExitStep& step, core::TimePoint at);
  [[nodiscard]] core::ExitContext exit_context(const Work& work);
  void note_breaker_success(const std::string& symbol);
  void note_breaker_failure(const std::string& symbol, const exchange::ExchangeError& error);
  struct RulesLookup {
    const exchange::SymbolRules* rules = nullptr;  // nullptr: unknown now, or not listed
    bool listed = true;                            // false: exchangeInfo answered without the symbol
  };
  RulesLookup lookup_rules(const std::string& symbol);  // fetches exchangeInfo if the symbol is unknown
  // The free balance each SELL exit of `works` may sell, from one account read,
  // handed out in order (handed_out_ tracks what the batch gave each asset).
  void read_balances(const std::vector<Work*>& works);
  void hand_out_balance(Work& work);
  std::string base_asset_of(const std::string& symbol);  // "" when the rules do not say
  // The database's clock, carried forward by the steady clock from the
  // batch's read: the time every exit decision (fence, backoff) is judged by.
  [[nodiscard]] core::TimePoint now() const;

  store::Connection& connection_;
  // Checked by claims, not recorded yet (coalesce_checkpoints).
  struct PendingChecks {
    std::map<std::string, store::MonitorRepository::SymbolCheck> symbols;
    std::vector<std::int64_t> won;
  };
  PendingChecks pending_checks_;
  std::chrono::milliseconds checkpoint_every_{0};
  std::chrono::steady_clock::time_point next_checkpoint_{};
  void record_checks(store::UnitOfWork& tx, const PendingChecks& checks);
  exchange::Exchange& exchange_;
  exchange::AccountApi* account_;
  MonitorOptions options_;
  // The batch's account read: free balance by asset, what it has handed out.
  std::optional<std::map<std::string, exchange::AssetBalance>> balances_;
  std::map<std::string, core::Decimal> handed_out_;           // by asset: what earlier exits will sell from free
  std::chrono::steady_clock::time_point balances_read_at_{};  // when the read was asked for
  store::MonitorRepository repository_;
  std::optional<exchange::ExchangeRules> rules_;
  std::map<std::string, core::CircuitBreaker> breakers_;  // the current batch's view, by symbol
  std::set<std::string> resumed_;                         // tokens the current pass already drove
  std::pair<core::TimePoint, std::chrono::steady_clock::time_point> clock_anchor_{std::chrono::system_clock::now(),
                                                                                  std::chrono::steady_clock::now()};
  std::mt19937_64 random_;
};

}  // namespace backstop::exits
