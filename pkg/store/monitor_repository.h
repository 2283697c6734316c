// The stop monitor's reads and writes besides the event store: the
// index-driven trigger scan, per-symbol checkpoints, unfinished executions,
// per-execution advisory locks, tenant guardrails and circuit breakers.
#pragma once

#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "core/guardrails.h"
#include "core/projection.h"
#include "core/trigger.h"

namespace backstop::store {

struct ScanFilter {
  std::vector<std::int64_t> tenants;  // empty: all
  std::vector<std::string> symbols;   // empty: all
};

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
  std::vector<core::ProtectedPosition> candidates(const std::vector<SymbolPrice>& prices, const ScanFilter& filter);
  // One row per symbol per pass; triggered operations get their own counters.
  void record_checkpoint(const std::vector<SymbolPrice>& prices, const std::vector<std::int64_t>& triggered);

  // Symbols with ACTIVE operations (what a stream must subscribe to).
  std::vector<std::string> active_symbols(const ScanFilter& filter);

  // Executions not finished (TRIGGERED, BLOCKED, SUBMITTED) of ACTIVE operations.
  std::vector<core::Execution> unfinished(const ScanFilter& filter);
  std::optional<core::ProtectedPosition> position(std::int64_t operation_id);

  // Session-level advisory lock per execution token: held while a process works
  // on the execution, released by PostgreSQL if the process dies.
  bool try_lock(const std::string& token);
  void unlock(const std::string& token);

  struct TenantState {
    core::TenantGuardrails limits;
    int submitted_last_minute = 0;
    int submitted_last_hour = 0;
  };
  // Locks the tenant's config row (created with defaults if missing) in `tx`, so
  // rate limits hold across concurrent monitors.
  TenantState lock_tenant(pqxx::work& tx, std::int64_t tenant);
  // The tenant's limits without locking or counting (defaults if no row).
  core::TenantGuardrails tenant_limits(pqxx::transaction_base& tx, std::int64_t tenant);
  void pause_tenant(pqxx::work& tx, std::int64_t tenant, const std::string& reason);

  // The breaker without a row lock: enough to decide while nothing changes.
  core::CircuitBreaker read_breaker(pqxx::transaction_base& tx, const std::string& symbol);
  core::CircuitBreaker lock_breaker(pqxx::work& tx, const std::string& symbol);
  void save_breaker(pqxx::work& tx, const std::string& symbol, const core::CircuitBreaker& breaker,
                    const std::optional<std::string>& last_error);

 private:
  pqxx::connection& connection_;
};

}  // namespace backstop::store
