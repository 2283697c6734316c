#include "store/monitor_repository.h"

#include <set>

#include "store/db.h"
#include "store/event_store.h"

namespace backstop::store {
namespace {

using core::Decimal;

const char* const kPositionColumns =
    "o.id, o.tenant_id, o.symbol, o.side, o.quantity, o.average_entry_price, o.stop_price, o.target_price, "
    "o.stop_loss_percent, o.stop_gain_percent";

std::optional<core::ProtectedPosition> row_to_position(const pqxx::row& row) {
  const auto side = core::parse_side(row[3].is_null() ? "" : row[3].c_str());
  if (!side || row[1].is_null() || row[2].is_null()) return std::nullopt;
  core::ProtectedPosition p;
  p.id = core::OperationId{row[0].as<std::int64_t>()};
  p.tenant = core::TenantId{row[1].as<std::int64_t>()};
  p.symbol = row[2].as<std::string>();
  p.side = *side;
  p.quantity = decimal_or_null(row[4]).value_or(Decimal());
  p.entry_price = decimal_or_null(row[5]);
  p.stop_price = decimal_or_null(row[6]);
  p.target_price = decimal_or_null(row[7]);
  p.stop_loss_percent = decimal_or_null(row[8]);
  p.stop_gain_percent = decimal_or_null(row[9]);
  return p;
}

const char* const kLimitColumns =
    "trading_enabled, max_slippage_pct, slippage_pause_threshold_pct, max_executions_per_minute, "
    "max_executions_per_hour, paused_at IS NOT NULL";

core::TenantGuardrails row_to_limits(const pqxx::row& row) {
  core::TenantGuardrails limits;
  limits.trading_enabled = row[0].as<bool>();
  limits.max_slippage_pct = row[1].as<Decimal>();
  limits.slippage_pause_threshold_pct = row[2].as<Decimal>();
  limits.max_executions_per_minute = row[3].as<int>();
  limits.max_executions_per_hour = row[4].as<int>();
  limits.paused = row[5].as<bool>();
  return limits;
}

const char* const kBreakerColumns =
    "state, failure_count, failure_threshold, retry_delay_seconds, extract(epoch FROM opened_at)::bigint, "
    "extract(epoch FROM trial_started_at)::bigint";

core::CircuitBreaker row_to_breaker(const pqxx::row& row) {
  core::CircuitBreaker b;
  b.state = core::parse_breaker_state(row[0].c_str()).value_or(core::BreakerState::kClosed);
  b.failure_count = row[1].as<int>();
  b.failure_threshold = row[2].as<int>();
  b.retry_delay = std::chrono::seconds(row[3].as<int>());
  if (!row[4].is_null()) b.opened_at = core::TimePoint(std::chrono::seconds(row[4].as<std::int64_t>()));
  if (!row[5].is_null()) b.trial_started_at = core::TimePoint(std::chrono::seconds(row[5].as<std::int64_t>()));
  return b;
}

std::int64_t lock_key(const std::string& token) {
  // FNV-1a 64: stable across processes and versions (hashtext() is not promised to be).
  std::uint64_t h = 1469598103934665603ULL;
  for (const char c : token) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return static_cast<std::int64_t>(h);
}

}  // namespace

// Tenant and symbol filters as parameters $first and $first+1 (empty array: no filter).
std::string filter_sql(int first_param) {
  const std::string t = "$" + std::to_string(first_param), s = "$" + std::to_string(first_param + 1);
  return " AND (cardinality(" + t + "::bigint[]) = 0 OR o.tenant_id = ANY(" + t + "::bigint[]))" +
         " AND (cardinality(" + s + "::text[]) = 0 OR o.symbol = ANY(" + s + "::text[]))";
}

std::string tenants_literal(const ScanFilter& filter) {
  ArrayLiteral a;
  for (const auto t : filter.tenants) a.add(t);
  return a.str();
}

std::string symbols_literal(const ScanFilter& filter) {
  ArrayLiteral a;
  for (const auto& s : filter.symbols) a.add(s);
  return a.str();
}

namespace {

// The trigger scan over literals of symbols and their exit prices.
std::vector<core::ProtectedPosition> scan_candidates(pqxx::transaction_base& tx, const std::string& symbols,
                                                     const std::string& long_exit, const std::string& short_exit,
                                                     const ScanFilter& filter) {
  std::vector<core::ProtectedPosition> result;
  // Operations with an exit already in progress are left to the resume step.
  const std::string active = " o.status = 'ACTIVE' AND o.symbol = p.symbol" + filter_sql(4) +
                             " AND NOT EXISTS (SELECT 1 FROM stop_executions x WHERE x.operation_id = o.id)";
  const std::string sql = std::string("SELECT DISTINCT ON (o.id) ") + kPositionColumns +
                          " FROM unnest($1::text[], $2::numeric[], $3::numeric[]) AS p(symbol, long_exit, short_exit) "
                          "CROSS JOIN LATERAL ("
                          "  SELECT * FROM operation o WHERE" +
                          active +
                          " AND o.side = 'BUY' AND o.stop_price >= p.long_exit"
                          "  UNION ALL SELECT * FROM operation o WHERE" +
                          active +
                          " AND o.side = 'BUY' AND o.target_price <= p.long_exit"
                          "  UNION ALL SELECT * FROM operation o WHERE" +
                          active +
                          " AND o.side = 'SELL' AND o.stop_price <= p.short_exit"
                          "  UNION ALL SELECT * FROM operation o WHERE" +
                          active +
                          " AND o.side = 'SELL' AND o.target_price >= p.short_exit"
                          "  UNION ALL SELECT * FROM operation o WHERE" +
                          active +
                          "    AND ((o.stop_price IS NULL AND o.stop_loss_percent IS NOT NULL)"
                          "      OR (o.target_price IS NULL AND o.stop_gain_percent IS NOT NULL))"
                          ") o ORDER BY o.id";
  const pqxx::result rows = exec_prepared(tx, "bs_candidates", sql, symbols, long_exit, short_exit,
                                          tenants_literal(filter), symbols_literal(filter));
  for (const auto& row : rows) {
    if (auto p = row_to_position(row)) result.push_back(std::move(*p));
  }
  return result;
}

void write_checkpoint(pqxx::work& tx, const std::string& symbols, const std::string& last, const std::string& passes,
                      const std::string& ids) {
  exec_prepared(tx, "bs_checkpoint",
                "WITH triggered AS ("
                "  UPDATE operation SET last_stop_check_at = now(), stop_check_count = stop_check_count + 1 "
                "  WHERE id = ANY($4::bigint[])) "
                "INSERT INTO monitor_checkpoint (symbol, last_checked_at, last_price, passes) "
                "SELECT s, now(), p, n FROM unnest($1::text[], $2::numeric[], $3::bigint[]) AS u(s, p, n) ORDER BY s "
                "ON CONFLICT (symbol) DO UPDATE SET last_checked_at = now(), last_price = EXCLUDED.last_price, "
                "passes = monitor_checkpoint.passes + EXCLUDED.passes",
                symbols, last, passes, ids);
}

std::map<std::int64_t, core::ProtectedPosition> share_lock_for_claim(pqxx::work& tx, const std::string& ids) {
  std::map<std::int64_t, core::ProtectedPosition> result;
  // FOR KEY SHARE: claims do not wait for each other (the unique indexes on
  // stop_events settle them) nor for a claim's own counter update (a NO KEY
  // UPDATE; with FOR SHARE, two claims of one row deadlocked: each waited for
  // the other's row lock or token), but trailing-stop's FOR UPDATE SKIP LOCKED
  // skips a row a claim holds, and a claim waits for a trailing transaction
  // that holds the row, then reads the level it committed; the event store
  // locks rows FOR UPDATE before it moves a level. Id order: no deadlock with
  // the EXECUTED writers, which lock operations in id order too.
  for (const auto& row :
       exec_prepared(tx, "bs_lock_for_claim",
                     std::string("SELECT ") + kPositionColumns +
                         " FROM operation o WHERE o.id = ANY($1::bigint[]) AND o.status = 'ACTIVE'"
                         " AND NOT EXISTS (SELECT 1 FROM stop_executions x WHERE x.operation_id = o.id)"
                         " ORDER BY o.id FOR KEY SHARE OF o",
                     ids)) {
    if (auto p = row_to_position(row)) result.emplace(p->id.value, std::move(*p));
  }
  return result;
}

}  // namespace

std::vector<core::ProtectedPosition> MonitorRepository::candidates(pqxx::transaction_base& tx,
                                                                   const std::vector<SymbolPrice>& prices,
                                                                   const ScanFilter& filter) {
  if (prices.empty()) return {};
  ArrayLiteral symbols, long_exit, short_exit;
  for (const auto& p : prices) {
    symbols.add(p.symbol);
    long_exit.add(std::optional<Decimal>(p.long_exit));
    short_exit.add(std::optional<Decimal>(p.short_exit));
  }
  return scan_candidates(tx, symbols.str(), long_exit.str(), short_exit.str(), filter);
}

void MonitorRepository::record_checkpoint(pqxx::work& tx, const std::vector<SymbolCheck>& checks,
                                          const std::vector<std::int64_t>& triggered) {
  if (checks.empty() && triggered.empty()) return;
  ArrayLiteral symbols, last, passes;
  for (const auto& c : checks) {
    symbols.add(c.symbol);
    last.add(std::optional<Decimal>(c.last_price));
    passes.add(c.passes);
  }
  // One round trip: the operations this claim won get their check time and
  // count in the same statement as the symbols' checkpoints.
  ArrayLiteral ids;
  for (const auto id : triggered) ids.add(id);
  write_checkpoint(tx, symbols.str(), last.str(), passes.str(), ids.str());
}

std::vector<std::string> MonitorRepository::active_symbols(const ScanFilter& filter) {
  pqxx::read_transaction tx(connection_);
  std::vector<std::string> symbols;
  for (const auto& row : tx.exec_params("SELECT DISTINCT o.symbol FROM operation o WHERE o.status = 'ACTIVE' "
                                        "AND o.symbol IS NOT NULL" +
                                            filter_sql(1) + " ORDER BY 1",
                                        tenants_literal(filter), symbols_literal(filter))) {
    symbols.push_back(row[0].as<std::string>());
  }
  return symbols;
}

std::vector<core::Execution> MonitorRepository::unfinished(const ScanFilter& filter) {
  pqxx::read_transaction tx(connection_);
  std::vector<std::string> tokens;
  for (const auto& row :
       exec_prepared(tx, "bs_unfinished",
                     "SELECT x.execution_token FROM stop_executions x JOIN operation o ON o.id = x.operation_id "
                     "WHERE x.status IN ('TRIGGERED', 'BLOCKED', 'SUBMITTED') AND o.status = 'ACTIVE'" +
                         filter_sql(1) + " ORDER BY x.triggered_at, x.execution_token",
                     tenants_literal(filter), symbols_literal(filter))) {
    tokens.push_back(row[0].as<std::string>());
  }
  auto found = EventStore::executions(tx, tokens);
  std::vector<core::Execution> result;
  for (const auto& t : tokens) {
    if (auto it = found.find(t); it != found.end()) result.push_back(std::move(it->second));
  }
  return result;
}

std::map<std::int64_t, core::ProtectedPosition> MonitorRepository::positions(
    const std::vector<std::int64_t>& operation_ids) {
  std::map<std::int64_t, core::ProtectedPosition> result;
  if (operation_ids.empty()) return result;
  ArrayLiteral ids;
  for (const auto id : operation_ids) ids.add(id);
  pqxx::read_transaction tx(connection_);
  for (const auto& row : exec_prepared(
           tx, "bs_positions",
           std::string("SELECT ") + kPositionColumns + " FROM operation o WHERE o.id = ANY($1::bigint[])", ids.str())) {
    if (auto p = row_to_position(row)) result.emplace(p->id.value, std::move(*p));
  }
  return result;
}

std::map<std::int64_t, core::ProtectedPosition> MonitorRepository::lock_for_claim(
    pqxx::work& tx, const std::vector<std::int64_t>& operation_ids) {
  if (operation_ids.empty()) return {};
  ArrayLiteral ids;
  for (const auto id : operation_ids) ids.add(id);
  return share_lock_for_claim(tx, ids.str());
}

void MonitorRepository::prepare_claim(pqxx::work& tx, const ScanFilter& filter) {
  scan_candidates(tx, "{}", "{}", "{}", filter);
  share_lock_for_claim(tx, "{}");
  write_checkpoint(tx, "{}", "{}", "{}", "{}");
}

MonitorRepository::ExitHistory MonitorRepository::exit_history(pqxx::transaction_base& tx,
                                                               const std::vector<std::string>& tokens) {
  ExitHistory history;
  const auto micros = [](std::int64_t us) { return core::TimePoint{} + std::chrono::microseconds(us); };
  history.now =
      micros(tx.exec1("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint")[0].as<std::int64_t>());
  if (tokens.empty()) return history;
  ArrayLiteral list;
  for (const auto& t : tokens) list.add(t);
  // The payload keys of the exit's events (pkg/exits/exit_events.cpp writes them).
  for (const auto& row : exec_prepared(
           tx, "bs_exit_history",
           "SELECT execution_token, event_type, (extract(epoch FROM occurred_at) * 1000000)::bigint, quantity, reason, "
           "  coalesce((payload->>'attempt')::int, 0), coalesce(payload->>'client_order_id', ''), "
           "  coalesce((payload->>'order_quantity')::numeric, 0), "
           "  coalesce(payload->>'filled_before', payload->>'filled_quantity')::numeric, "
           "  coalesce(payload->>'quote_before', payload->>'quote_quantity')::numeric, "
           "  (payload->>'retry_at_us')::bigint, coalesce((payload->>'failures')::int, 0), "
           "  coalesce((payload->>'attempt_ended')::boolean, false), (payload->>'not_held')::numeric "
           "FROM stop_events WHERE execution_token = ANY($1::text[]) "
           "AND event_type IN ('STOP_TRIGGERED', 'EXECUTION_SUBMITTED', 'BLOCKED', 'EXECUTED', 'FAILED') "
           "ORDER BY event_seq",
           list.str())) {
    core::ExitFact f;
    const auto type = core::parse_event_type(row[1].c_str());
    if (!type) continue;
    f.type = *type;
    f.at = micros(row[2].as<std::int64_t>());
    f.quantity = decimal_or_null(row[3]);
    f.reason = text_or_null(row[4]);
    f.attempt = row[5].as<int>();
    f.client_order_id = row[6].as<std::string>();
    f.order_quantity = decimal_or_null(row[7]).value_or(core::Decimal());
    f.filled = decimal_or_null(row[8]);
    f.quote = decimal_or_null(row[9]);
    if (!row[10].is_null()) f.retry_at = micros(row[10].as<std::int64_t>());
    f.failures = row[11].as<int>();
    f.ends_attempt = row[12].as<bool>();
    f.not_held = decimal_or_null(row[13]);
    history.facts[row[0].as<std::string>()].push_back(std::move(f));
  }
  return history;
}

std::set<std::string> MonitorRepository::try_lock(const std::vector<std::string>& tokens) {
  std::set<std::string> locked;
  if (tokens.empty()) return locked;
  ArrayLiteral keys;
  for (const auto& t : tokens) keys.add(lock_key(t));
  pqxx::nontransaction tx(connection_);
  // One call per key in array order; the result says which ones this session got.
  const pqxx::result rows = exec_prepared(
      tx, "bs_try_lock",
      "SELECT k.ord, pg_try_advisory_lock(k.key) FROM unnest($1::bigint[]) WITH ORDINALITY AS k(key, ord) "
      "ORDER BY k.ord",
      keys.str());
  for (const auto& row : rows) {
    if (row[1].as<bool>()) locked.insert(tokens.at(row[0].as<std::size_t>() - 1));
  }
  return locked;
}

void MonitorRepository::unlock(const std::vector<std::string>& tokens) {
  if (tokens.empty()) return;
  ArrayLiteral keys;
  for (const auto& t : tokens) keys.add(lock_key(t));
  pqxx::nontransaction tx(connection_);
  exec_prepared(tx, "bs_unlock", "SELECT pg_advisory_unlock(k) FROM unnest($1::bigint[]) AS k", keys.str());
}

std::map<std::int64_t, MonitorRepository::TenantState> MonitorRepository::lock_tenants(
    pqxx::work& tx, const std::set<std::int64_t>& tenants) {
  std::map<std::int64_t, TenantState> result;
  if (tenants.empty()) return result;
  ArrayLiteral ids;
  for (const auto t : tenants) ids.add(t);
  exec_prepared(tx, "bs_ensure_tenants",
                "INSERT INTO tenant_config (tenant_id) SELECT unnest($1::bigint[]) ORDER BY 1 "
                "ON CONFLICT (tenant_id) DO NOTHING",
                ids.str());
  for (const auto& row : exec_prepared(tx, "bs_lock_tenants",
                                       std::string("SELECT tenant_id, ") + kLimitColumns +
                                           " FROM tenant_config WHERE tenant_id = ANY($1::bigint[]) "
                                           "ORDER BY tenant_id FOR UPDATE",
                                       ids.str())) {
    result[row[0].as<std::int64_t>()].limits = row_to_limits(row.slice(1, row.size()));
  }
  // First submissions only: a resend of the same execution is not a new execution.
  for (const auto& row :
       exec_prepared(tx, "bs_tenant_counts",
                     "SELECT tenant_id, count(*) FILTER (WHERE triggered_at > now() - interval '1 minute'), count(*) "
                     "FROM stop_executions WHERE tenant_id = ANY($1::bigint[]) AND submitted_at IS NOT NULL "
                     "AND triggered_at > now() - interval '1 hour' GROUP BY tenant_id",
                     ids.str())) {
    TenantState& state = result[row[0].as<std::int64_t>()];
    state.submitted_last_minute = row[1].as<int>();
    state.submitted_last_hour = row[2].as<int>();
  }
  return result;
}

void MonitorRepository::record_close_reason(pqxx::work& tx, std::int64_t operation, const std::string& reason) {
  exec_prepared(tx, "bs_close_reason", "UPDATE operation SET close_reason = $2 WHERE id = $1", operation, reason);
}

void MonitorRepository::pause_tenant(pqxx::work& tx, std::int64_t tenant, const std::string& reason) {
  tx.exec_params(
      "UPDATE tenant_config SET paused_at = now(), paused_reason = $2, updated_at = now() "
      "WHERE tenant_id = $1 AND paused_at IS NULL",
      tenant, reason);
}

std::map<std::int64_t, core::TenantGuardrails> MonitorRepository::tenant_limits(pqxx::transaction_base& tx,
                                                                                const std::set<std::int64_t>& tenants) {
  std::map<std::int64_t, core::TenantGuardrails> result;
  if (tenants.empty()) return result;
  ArrayLiteral ids;
  for (const auto t : tenants) {
    ids.add(t);
    result[t] = core::TenantGuardrails{};
  }
  for (const auto& row : exec_prepared(tx, "bs_tenant_limits",
                                       std::string("SELECT tenant_id, ") + kLimitColumns +
                                           " FROM tenant_config WHERE tenant_id = ANY($1::bigint[])",
                                       ids.str())) {
    result[row[0].as<std::int64_t>()] = row_to_limits(row.slice(1, row.size()));
  }
  return result;
}

std::map<std::string, core::CircuitBreaker> MonitorRepository::read_breakers(pqxx::transaction_base& tx,
                                                                             const std::set<std::string>& symbols) {
  std::map<std::string, core::CircuitBreaker> result;
  if (symbols.empty()) return result;
  ArrayLiteral names;
  for (const auto& s : symbols) {
    names.add(s);
    result[s] = core::CircuitBreaker{};
  }
  for (const auto& row : exec_prepared(tx, "bs_read_breakers",
                                       std::string("SELECT symbol, ") + kBreakerColumns +
                                           " FROM circuit_breaker_state WHERE symbol = ANY($1::text[])",
                                       names.str())) {
    result[row[0].as<std::string>()] = row_to_breaker(row.slice(1, row.size()));
  }
  return result;
}

core::CircuitBreaker MonitorRepository::lock_breaker(pqxx::work& tx, const std::string& symbol) {
  tx.exec_params("INSERT INTO circuit_breaker_state (symbol) VALUES ($1) ON CONFLICT (symbol) DO NOTHING", symbol);
  return row_to_breaker(tx.exec_params1(
      std::string("SELECT ") + kBreakerColumns + " FROM circuit_breaker_state WHERE symbol = $1 FOR UPDATE", symbol));
}

void MonitorRepository::save_breaker(pqxx::work& tx, const std::string& symbol, const core::CircuitBreaker& b,
                                     const std::optional<std::string>& last_error) {
  std::optional<std::int64_t> opened;
  if (b.opened_at) {
    opened = std::chrono::duration_cast<std::chrono::seconds>(b.opened_at->time_since_epoch()).count();
  }
  std::optional<std::int64_t> trial;
  if (b.trial_started_at) {
    trial = std::chrono::duration_cast<std::chrono::seconds>(b.trial_started_at->time_since_epoch()).count();
  }
  tx.exec_params(
      "UPDATE circuit_breaker_state SET state = $2, failure_count = $3, opened_at = to_timestamp($4::bigint), "
      "last_failure_at = CASE WHEN $5::text IS NOT NULL THEN now() ELSE last_failure_at END, "
      "last_error = coalesce($5::text, last_error), trial_started_at = to_timestamp($6::bigint), updated_at = now() "
      "WHERE symbol = $1",
      symbol, std::string(core::to_string(b.state)), b.failure_count, opened, last_error, trial);
}

}  // namespace backstop::store
