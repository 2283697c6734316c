// The stop monitor's reads and writes besides the event store: the
// index-driven trigger scan, per-symbol checkpoints, unfinished executions,
// per-execution advisory locks, tenant guardrails and circuit breakers.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <vector>

#include "core/exit.h"
#include "core/guardrails.h"
#include "core/projection.h"
#include "core/trigger.h"

namespace backstop::store {

struct ScanFilter {
  std::vector<std::int64_t> tenants;  // empty: all
  std::vector<std::string> symbols;   // empty: all
};

// `filter` in SQL on the alias `o`, as parameters $first_param (tenants) and
// $first_param + 1 (symbols), whose values are these literals (empty: no filter).
std::string filter_sql(int first_param);
std::string tenants_literal(const ScanFilter& filter);
std::string symbols_literal(const ScanFilter& filter);

// The prices a pass compares per symbol: what a long's exit meets and what a
// short's exit meets (both the last price in `last` mode).
struct SymbolPrice {
  std::string symbol;
  core::Decimal long_exit;
  core::Decimal short_exit;
};

class MonitorRepository {
 public:
  explicit MonitorRepository(pqxx::connection& connection) : connection_(connection) {}

  // ACTIVE operations whose stop or target is crossed at these prices (a range
  // scan per symbol on the scan indexes, never every active row), plus those
  // that still rely on percentages (decided by core::evaluate).
  std::vector<core::ProtectedPosition> candidates(pqxx::transaction_base& tx, const std::vector<SymbolPrice>& prices,
                                                  const ScanFilter& filter);
  // The ACTIVE operations among `operation_ids` that have no exit yet, re-read
  // under a share lock on their rows (in id order) in the claim's transaction:
  // the levels a claim is decided on are the ones in force when it commits,
  // and trailing-stop cannot move them until then.
  std::map<std::int64_t, core::ProtectedPosition> lock_for_claim(pqxx::work& tx,
                                                                 const std::vector<std::int64_t>& operation_ids);
  // One row per symbol: checked `passes` more times, last at `last_price`;
  // triggered operations get their own check time and count.
  struct SymbolCheck {
    std::string symbol;
    core::Decimal last_price;
    std::int64_t passes = 1;
  };
  void record_checkpoint(pqxx::work& tx, const std::vector<SymbolCheck>& checks,
                         const std::vector<std::int64_t>& triggered);
  // Runs the three statements above with no rows (see EventStore::prepare):
  // a stream's first claim then costs what the others do.
  void prepare_claim(pqxx::work& tx, const ScanFilter& filter);

  // Symbols with ACTIVE operations (what a stream must subscribe to).
  std::vector<std::string> active_symbols(const ScanFilter& filter);

  // Executions not finished (TRIGGERED, BLOCKED, SUBMITTED) of ACTIVE operations,
  // oldest trigger first.
  std::vector<core::Execution> unfinished(const ScanFilter& filter);
  // The operations by id (those that exist and are well formed).
  std::map<std::int64_t, core::ProtectedPosition> positions(const std::vector<std::int64_t>& operation_ids);

  // What the exits' events say (core::ExitFact, in event order) by token, and
  // the database's clock: the one clock every monitor judges the re-send
  // fence by, since the submissions' times are the database's too.
  struct ExitHistory {
    std::map<std::string, std::vector<core::ExitFact>> facts;
    core::TimePoint now;
  };
  ExitHistory exit_history(pqxx::transaction_base& tx, const std::vector<std::string>& tokens);

  // Session-level advisory locks per execution token: held while a process works
  // on the execution, released by PostgreSQL if the process dies. try_lock
  // returns the tokens it got (never waits); unlock releases them.
  std::set<std::string> try_lock(const std::vector<std::string>& tokens);
  void unlock(const std::vector<std::string>& tokens);

  struct TenantState {
    core::TenantGuardrails limits;
    int submitted_last_minute = 0;
    int submitted_last_hour = 0;
  };
  // Locks the tenants' config rows (created with defaults if missing) in `tx`,
  // in id order, so rate limits hold across concurrent monitors; with each
  // tenant's first submissions in the last minute and hour.
  std::map<std::int64_t, TenantState> lock_tenants(pqxx::work& tx, const std::set<std::int64_t>& tenants);
  // The tenants' limits without locking or counting (defaults if no row).
  std::map<std::int64_t, core::TenantGuardrails> tenant_limits(pqxx::transaction_base& tx,
                                                               const std::set<std::int64_t>& tenants);
  void pause_tenant(pqxx::work& tx, std::int64_t tenant, const std::string& reason);
  // Why an operation closed, when its events alone do not say (a dust remainder).
  void record_close_reason(pqxx::work& tx, std::int64_t operation, const std::string& reason);

  // Breakers without a row lock: enough to decide while nothing changes
  // (a symbol without a row is a closed breaker with the defaults).
  std::map<std::string, core::CircuitBreaker> read_breakers(pqxx::transaction_base& tx,
                                                            const std::set<std::string>& symbols);
  core::CircuitBreaker lock_breaker(pqxx::work& tx, const std::string& symbol);
  void save_breaker(pqxx::work& tx, const std::string& symbol, const core::CircuitBreaker& breaker,
                    const std::optional<std::string>& last_error);

 private:
  pqxx::connection& connection_;
};

}  // namespace backstop::store
