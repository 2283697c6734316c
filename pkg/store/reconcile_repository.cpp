#include "store/reconcile_repository.h"

#include <chrono>

#include "store/db.h"

namespace backstop::store {
namespace {

using core::Decimal;

core::TimePoint at_micros(std::int64_t us) { return core::TimePoint{} + std::chrono::microseconds(us); }

std::int64_t micros_of(core::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

// The scope's operations, on the aliases o (operation) and tc (tenant_config):
// $1 account, $2 named, $3 tenants.
const char* const kScope =
    " o.status = 'ACTIVE'"
    " AND CASE WHEN $2::boolean THEN tc.exchange_account = $1::text ELSE tc.exchange_account IS NULL END"
    " AND (cardinality($3::bigint[]) = 0 OR o.tenant_id = ANY($3::bigint[]))";

std::string tenants_of(const ReconcileScope& scope) {
  ArrayLiteral a;
  for (const auto t : scope.tenants) a.add(t);
  return a.str();
}

std::string ids_literal(const std::vector<std::int64_t>& ids) {
  ArrayLiteral list;
  for (const auto id : ids) list.add(id);
  return list.str();
}

std::string_view pending_text(core::SyncOutcome outcome) {
  return outcome == core::SyncOutcome::kClosedElsewhere ? "CLOSED_ELSEWHERE" : "SHORT";
}

}  // namespace

AccountMemory ReconcileRepository::memory(pqxx::transaction_base& tx, const ReconcileScope& scope) {
  AccountMemory m;
  const std::string tenants = tenants_of(scope);
  for (const auto& row :
       exec_prepared(tx, "bs_reconcile_uid",
                     "SELECT uid, (extract(epoch FROM orphans_checked_at) * 1000000)::bigint FROM exchange_account "
                     "WHERE account = $1",
                     scope.account)) {
    if (!row[0].is_null()) m.uid = row[0].as<std::int64_t>();
    if (!row[1].is_null()) m.orphans_checked_at = at_micros(row[1].as<std::int64_t>());
  }
  for (const auto& row :
       exec_prepared(tx, "bs_reconcile_cursors",
                     "SELECT symbol, last_trade_id FROM account_trade_cursor WHERE account = $1", scope.account)) {
    m.cursors[row[0].as<std::string>()] = row[1].as<std::int64_t>();
  }
  for (const auto& row :
       exec_prepared(tx, "bs_reconcile_balances_seen",
                     "SELECT asset, free, locked FROM account_balance_seen WHERE account = $1", scope.account)) {
    m.balances_seen[row[0].as<std::string>()] = core::HeldBalance{row[1].as<Decimal>(), row[2].as<Decimal>()};
  }
  for (const auto& row :
       exec_prepared(tx, "bs_reconcile_symbols",
                     std::string("SELECT o.symbol, (extract(epoch FROM min(o.created_at)) * 1000000)::bigint, "
                                 "bool_or(o.sync_status = 'SHORT' OR p.operation_id IS NOT NULL) "
                                 "FROM operation o LEFT JOIN tenant_config tc ON tc.tenant_id = o.tenant_id "
                                 "LEFT JOIN sync_pending p ON p.operation_id = o.id WHERE") +
                         kScope + " AND o.side = 'BUY' AND o.symbol IS NOT NULL GROUP BY o.symbol ORDER BY o.symbol",
                     scope.account, scope.named, tenants)) {
    const auto symbol = row[0].as<std::string>();
    m.first_opened[symbol] = at_micros(row[1].as<std::int64_t>());
    if (row[2].as<bool>()) m.unsettled.insert(symbol);
  }
  return m;
}

void ReconcileRepository::save_trades(pqxx::work& tx, const std::string& account,
                                      const std::vector<TradeRecord>& trades,
                                      const std::map<std::string, std::int64_t>& read) {
  // One pass of an account at a time (two scopes of one account, or two
  // racing runs): the second waits here and then sees what the first attributed.
  exec_prepared(tx, "bs_reconcile_account_row",
                "INSERT INTO exchange_account (account) VALUES ($1) ON CONFLICT (account) DO NOTHING", account);
  exec_prepared(tx, "bs_reconcile_account_lock", "SELECT 1 FROM exchange_account WHERE account = $1 FOR UPDATE",
                account);
  ArrayLiteral read_list, newest;
  for (const auto& [symbol, id] : read) {
    read_list.add(symbol);
    newest.add(id);
  }
  exec_prepared(tx, "bs_reconcile_cursor_read",
                "INSERT INTO account_trade_cursor (account, symbol, last_trade_id) "
                "SELECT $1, u.s, u.id FROM unnest($2::text[], $3::bigint[]) AS u(s, id) "
                "ON CONFLICT (account, symbol) DO UPDATE SET last_trade_id = "
                "  greatest(account_trade_cursor.last_trade_id, EXCLUDED.last_trade_id)",
                account, read_list.str(), newest.str());
  if (trades.empty()) return;
  ArrayLiteral symbol, id, order, buyer, price, qty, quote, commission, asset, time, ours;
  for (const TradeRecord& t : trades) {
    symbol.add(t.symbol);
    id.add(t.id);
    order.add(t.order_id);
    buyer.add(t.is_buyer ? "true" : "false");
    price.add(std::optional<Decimal>(t.price));
    qty.add(std::optional<Decimal>(t.qty));
    quote.add(std::optional<Decimal>(t.quote_qty));
    commission.add(std::optional<Decimal>(t.commission));
    asset.add(t.commission_asset);
    time.add(micros_of(t.time));
    ours.add(t.ours ? "true" : "false");
  }
  exec_prepared(tx, "bs_reconcile_save_trades",
                "INSERT INTO account_trade (account, symbol, trade_id, order_id, is_buyer, price, qty, quote_qty, "
                "  commission, commission_asset, traded_at, ours) "
                "SELECT $1, u.symbol, u.id, u.order_id, u.buyer, u.price, u.qty, u.quote, u.commission, u.asset, "
                "  to_timestamp(u.at / 1000000.0), u.ours "
                "FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::boolean[], $6::numeric[], $7::numeric[], "
                "  $8::numeric[], $9::numeric[], $10::text[], $11::bigint[], $12::boolean[]) "
                "  AS u(symbol, id, order_id, buyer, price, qty, quote, commission, asset, at, ours) "
                "ON CONFLICT (account, symbol, trade_id) DO NOTHING",
                account, symbol.str(), id.str(), order.str(), buyer.str(), price.str(), qty.str(), quote.str(),
                commission.str(), asset.str(), time.str(), ours.str());
  exec_prepared(tx, "bs_reconcile_cursor",
                "INSERT INTO account_trade_cursor (account, symbol, last_trade_id) "
                "SELECT $1, u.symbol, max(u.id) FROM unnest($2::text[], $3::bigint[]) AS u(symbol, id) "
                "GROUP BY u.symbol "
                "ON CONFLICT (account, symbol) DO UPDATE SET last_trade_id = "
                "  greatest(account_trade_cursor.last_trade_id, EXCLUDED.last_trade_id)",
                account, symbol.str(), id.str());
}

LockedAccount ReconcileRepository::lock(pqxx::work& tx, const ReconcileScope& scope, core::TimePoint trades_since,
                                        core::TimePoint recent) {
  LockedAccount result;
  const std::string tenants = tenants_of(scope);
  std::vector<std::int64_t> ids;
  std::set<std::string> symbols;
  for (const auto& row :
       exec_prepared(tx, "bs_reconcile_lock",
                     std::string("SELECT o.id, o.tenant_id, o.symbol, o.side, o.quantity, "
                                 "(extract(epoch FROM o.created_at) * 1000000)::bigint, o.sync_status "
                                 "FROM operation o LEFT JOIN tenant_config tc ON tc.tenant_id = o.tenant_id WHERE") +
                         kScope + " ORDER BY o.id FOR UPDATE OF o SKIP LOCKED",
                     scope.account, scope.named, tenants)) {
    LockedOperation l;
    l.op.id = core::OperationId{row[0].as<std::int64_t>()};
    l.tenant = core::TenantId{row[1].is_null() ? 0 : row[1].as<std::int64_t>()};
    l.op.symbol = row[2].is_null() ? "" : row[2].as<std::string>();
    const auto side = row[3].is_null() ? std::nullopt : core::parse_side(row[3].c_str());
    l.op.side = side.value_or(core::Side::kSell);  // no side: not comparable, as a short
    l.op.quantity = row[4].is_null() ? Decimal() : row[4].as<Decimal>();
    l.op.opened_at = at_micros(row[5].as<std::int64_t>());
    l.sync_status = core::parse_sync_status(row[6].c_str()).value_or(core::SyncStatus::kUnchecked);
    ids.push_back(l.op.id.value);
    if (!l.op.symbol.empty()) symbols.insert(l.op.symbol);
    result.operations.push_back(std::move(l));
  }
  // New statements, new snapshots: every claim that committed before the
  // locks were taken is visible from here on.
  result.skipped = exec_prepared(tx, "bs_reconcile_skipped",
                                 std::string("SELECT count(*) FROM operation o "
                                             "LEFT JOIN tenant_config tc ON tc.tenant_id = o.tenant_id WHERE") +
                                     kScope + " AND NOT (o.id = ANY($4::bigint[]))",
                                 scope.account, scope.named, tenants, ids_literal(ids))[0][0]
                       .as<std::int64_t>();
  std::map<std::int64_t, LockedOperation*> by_id;
  for (LockedOperation& l : result.operations) by_id[l.op.id.value] = &l;
  // Every exit of the scope (a locked operation's decides its fate; any
  // in flight makes the symbol's recent sells ambiguous).
  for (const auto& row : exec_prepared(tx, "bs_reconcile_exits",
                                       "SELECT x.operation_id, x.execution_token, x.status, x.retry_count, x.symbol, "
                                       "(extract(epoch FROM coalesce(x.triggered_at, x.updated_at)) * 1000000)::bigint "
                                       "FROM stop_executions x JOIN operation o ON o.id = x.operation_id "
                                       "LEFT JOIN tenant_config tc ON tc.tenant_id = o.tenant_id "
                                       "WHERE CASE WHEN $2::boolean THEN tc.exchange_account = $1::text "
                                       "  ELSE tc.exchange_account IS NULL END "
                                       "AND (cardinality($3::bigint[]) = 0 OR o.tenant_id = ANY($3::bigint[])) "
                                       "AND (o.status = 'ACTIVE' OR x.updated_at >= to_timestamp($4 / 1000000.0))",
                                       scope.account, scope.named, tenants, micros_of(recent))) {
    const auto status = core::parse_execution_status(row[2].c_str()).value_or(core::ExecutionStatus::kTriggered);
    core::ExitState exit;
    exit.status = status;
    const bool in_flight = !exit.finished();
    if (!in_flight) {  // ended: since the exchange was read, its market order may have been open then
      result.in_flight_attempts[row[1].as<std::string>()] = row[3].as<int>() + 1;
    }
    if (in_flight) {
      const auto symbol = row[4].as<std::string>();
      const core::TimePoint since = at_micros(row[5].as<std::int64_t>());
      auto [it, fresh] = result.exits_in_flight_since.emplace(symbol, since);
      if (!fresh && since < it->second) it->second = since;
      result.in_flight_attempts[row[1].as<std::string>()] =
          status == core::ExecutionStatus::kTriggered ? 0 : row[3].as<int>() + 1;
    }
    const auto l = by_id.find(row[0].as<std::int64_t>());
    if (l == by_id.end()) continue;
    // An exit in flight wins over a finished one of the same operation.
    if (!l->second->op.exit || l->second->op.exit->finished()) {
      l->second->op.exit = exit;
      l->second->exit_token = row[1].as<std::string>();
    }
  }
  if (ids.empty()) return result;
  const std::string list = ids_literal(ids);
  for (const auto& row :
       exec_prepared(tx, "bs_reconcile_pending",
                     "SELECT operation_id, outcome, held, (extract(epoch FROM first_seen_at) * 1000000)::bigint, seen "
                     "FROM sync_pending WHERE operation_id = ANY($1::bigint[])",
                     list)) {
    core::PendingDrift p;
    p.outcome = std::string_view(row[1].c_str()) == "CLOSED_ELSEWHERE" ? core::SyncOutcome::kClosedElsewhere
                                                                       : core::SyncOutcome::kShortUnexplained;
    p.held = row[2].as<Decimal>();
    p.first_seen = at_micros(row[3].as<std::int64_t>());
    p.seen = row[4].as<int>();
    by_id.at(row[0].as<std::int64_t>())->op.pending = p;
  }
  for (const auto& row : exec_prepared(tx, "bs_reconcile_sync_events",
                                       "SELECT operation_id, count(*) FROM stop_events "
                                       "WHERE operation_id = ANY($1::bigint[]) "
                                       "AND event_type IN ('POSITION_OUT_OF_SYNC', 'POSITION_IN_SYNC') GROUP BY 1",
                                       list)) {
    by_id.at(row[0].as<std::int64_t>())->sync_events = row[1].as<int>();
  }
  ArrayLiteral symbol_list;
  for (const auto& s : symbols) symbol_list.add(s);
  // A trade is Backstop's own when one of its exits' events names the order
  // (the exit's events come after its fills: the symbol/time index bounds it).
  for (const auto& row : exec_prepared(
           tx, "bs_reconcile_trades",
           "SELECT t.symbol, t.trade_id, t.order_id, t.is_buyer, t.qty, t.commission, t.commission_asset, "
           "  (extract(epoch FROM t.traded_at) * 1000000)::bigint, "
           "  t.ours OR EXISTS (SELECT 1 FROM stop_events e WHERE e.symbol = t.symbol "
           "    AND e.occurred_at >= t.traded_at - interval '1 day' AND e.exchange_order_id = t.order_id::text) "
           "FROM account_trade t WHERE t.account = $1 AND t.symbol = ANY($2::text[]) "
           "  AND t.attributed_operation_id IS NULL AND t.traded_at >= to_timestamp($3 / 1000000.0) "
           "ORDER BY t.traded_at, t.trade_id",
           scope.account, symbol_list.str(), micros_of(trades_since))) {
    core::TradeSeen t;
    t.symbol = row[0].as<std::string>();
    t.id = row[1].as<std::int64_t>();
    t.order_id = row[2].as<std::int64_t>();
    t.is_buyer = row[3].as<bool>();
    t.qty = row[4].as<Decimal>();
    t.commission = row[5].as<Decimal>();
    t.commission_asset = row[6].as<std::string>();
    t.time = at_micros(row[7].as<std::int64_t>());
    t.ours = row[8].as<bool>();
    result.trades.push_back(std::move(t));
  }
  return result;
}

void ReconcileRepository::attribute(pqxx::work& tx, const std::string& account, std::int64_t id,
                                    const std::vector<std::int64_t>& trade_ids) {
  if (trade_ids.empty()) return;
  exec_prepared(tx, "bs_reconcile_attribute",
                "UPDATE account_trade SET attributed_operation_id = $2 "
                "WHERE account = $1 AND trade_id = ANY($3::bigint[]) AND attributed_operation_id IS NULL",
                account, id, ids_literal(trade_ids));
}

void ReconcileRepository::record_sync(pqxx::work& tx, const std::vector<SyncRecord>& records) {
  if (records.empty()) return;
  ArrayLiteral id, status, held, error, clear;
  ArrayLiteral pid, outcome, pheld, first, seen;
  for (const SyncRecord& r : records) {
    id.add(r.id);
    status.add(r.status ? std::optional<std::string>(std::string(core::to_string(*r.status))) : std::nullopt);
    held.add(r.held);
    error.add(r.error);
    if (r.pending) {
      pid.add(r.id);
      outcome.add(pending_text(r.pending->outcome));
      pheld.add(std::optional<Decimal>(r.pending->held));
      first.add(micros_of(r.pending->first_seen));
      seen.add(static_cast<std::int64_t>(r.pending->seen));
    } else {
      clear.add(r.id);
    }
  }
  exec_prepared(tx, "bs_reconcile_record_sync",
                "UPDATE operation o SET sync_status = coalesce(u.status, o.sync_status), last_synced_at = now(), "
                "held_quantity = u.held, sync_error = u.error "
                "FROM unnest($1::bigint[], $2::text[], $3::numeric[], $4::text[]) AS u(id, status, held, error) "
                "WHERE o.id = u.id",
                id.str(), status.str(), held.str(), error.str());
  exec_prepared(tx, "bs_reconcile_clear_pending", "DELETE FROM sync_pending WHERE operation_id = ANY($1::bigint[])",
                clear.str());
  exec_prepared(tx, "bs_reconcile_save_pending",
                "INSERT INTO sync_pending (operation_id, outcome, held, first_seen_at, seen) "
                "SELECT u.id, u.outcome, u.held, to_timestamp(u.first / 1000000.0), u.seen "
                "FROM unnest($1::bigint[], $2::text[], $3::numeric[], $4::bigint[], $5::integer[]) "
                "  AS u(id, outcome, held, first, seen) "
                "ON CONFLICT (operation_id) DO UPDATE SET outcome = EXCLUDED.outcome, held = EXCLUDED.held, "
                "  first_seen_at = EXCLUDED.first_seen_at, seen = EXCLUDED.seen",
                pid.str(), outcome.str(), pheld.str(), first.str(), seen.str());
}

void ReconcileRepository::record_pass(pqxx::work& tx, const std::string& account, std::optional<std::int64_t> uid,
                                      const std::string& account_type,
                                      const std::map<std::string, core::HeldBalance>& balances, bool orphans_checked) {
  exec_prepared(tx, "bs_reconcile_record_pass",
                "INSERT INTO exchange_account (account, uid, account_type, last_reconciled_at, last_success_at, "
                "  orphans_checked_at) "
                "VALUES ($1, NULLIF($2, '')::bigint, $3, now(), now(), CASE WHEN $4 THEN now() END) "
                "ON CONFLICT (account) DO UPDATE SET uid = coalesce(exchange_account.uid, EXCLUDED.uid), "
                "  account_type = EXCLUDED.account_type, last_reconciled_at = now(), last_success_at = now(), "
                "  last_error = NULL, "
                "  orphans_checked_at = coalesce(EXCLUDED.orphans_checked_at, exchange_account.orphans_checked_at)",
                account, uid ? std::to_string(*uid) : std::string(), account_type, orphans_checked);
  ArrayLiteral asset, free, locked;
  for (const auto& [name, b] : balances) {
    asset.add(name);
    free.add(std::optional<Decimal>(b.free));
    locked.add(std::optional<Decimal>(b.locked));
  }
  // Every asset of the account as seen now; one no longer listed is zero.
  exec_prepared(
      tx, "bs_reconcile_balances",
      "WITH seen AS (SELECT * FROM unnest($2::text[], $3::numeric[], $4::numeric[]) AS u(asset, free, locked)), "
      "gone AS (DELETE FROM account_balance_seen b WHERE b.account = $1 "
      "  AND NOT EXISTS (SELECT 1 FROM seen WHERE seen.asset = b.asset)) "
      "INSERT INTO account_balance_seen (account, asset, free, locked, seen_at) "
      "SELECT $1, asset, free, locked, now() FROM seen "
      "ON CONFLICT (account, asset) DO UPDATE SET free = EXCLUDED.free, locked = EXCLUDED.locked, "
      "  seen_at = EXCLUDED.seen_at",
      account, asset.str(), free.str(), locked.str());
}

void ReconcileRepository::record_failure(pqxx::work& tx, const std::string& account, const std::string& error) {
  exec_prepared(tx, "bs_reconcile_record_failure",
                "INSERT INTO exchange_account (account, last_reconciled_at, last_error) VALUES ($1, now(), $2) "
                "ON CONFLICT (account) DO UPDATE SET last_reconciled_at = now(), last_error = EXCLUDED.last_error",
                account, error);
}

void ReconcileRepository::save_orphans(pqxx::work& tx, const std::string& account,
                                       const std::vector<core::OpenOrderSeen>& seen) {
  ArrayLiteral symbol, order, client, side, type, qty;
  for (const core::OpenOrderSeen& o : seen) {
    symbol.add(o.symbol);
    order.add(o.order_id);
    client.add(o.client_order_id);
    side.add(core::to_string(o.side));
    type.add(o.type);
    qty.add(std::optional<Decimal>(o.orig));
  }
  exec_prepared(tx, "bs_reconcile_orphans_gone",
                "DELETE FROM orphan_order r WHERE r.account = $1 AND r.cancelled_at IS NULL AND NOT EXISTS ("
                "  SELECT 1 FROM unnest($2::text[], $3::bigint[]) AS u(symbol, order_id) "
                "  WHERE u.symbol = r.symbol AND u.order_id = r.order_id)",
                account, symbol.str(), order.str());
  exec_prepared(tx, "bs_reconcile_orphans_seen",
                "INSERT INTO orphan_order (account, symbol, order_id, client_order_id, side, type, orig_qty, "
                "  first_seen_at, last_seen_at) "
                "SELECT $1, u.symbol, u.order_id, u.client, u.side, u.type, u.qty, now(), now() "
                "FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::numeric[]) "
                "  AS u(symbol, order_id, client, side, type, qty) "
                "ON CONFLICT (account, symbol, order_id) DO UPDATE SET last_seen_at = now()",
                account, symbol.str(), order.str(), client.str(), side.str(), type.str(), qty.str());
}

void ReconcileRepository::record_cancel(pqxx::work& tx, const std::string& account, const std::string& symbol,
                                        std::int64_t order_id, const std::optional<std::string>& error) {
  exec_prepared(tx, "bs_reconcile_record_cancel",
                "UPDATE orphan_order SET cancelled_at = CASE WHEN $5 THEN NULL ELSE now() END, "
                "last_error = CASE WHEN $5 THEN $4 END "
                "WHERE account = $1 AND symbol = $2 AND order_id = $3",
                account, symbol, order_id, error.value_or(std::string()), error.has_value());
}

std::vector<OrphanRow> ReconcileRepository::orphans(pqxx::transaction_base& tx, const std::string& account) {
  std::vector<OrphanRow> rows;
  for (const auto& row : exec_prepared(
           tx, "bs_reconcile_orphans",
           "SELECT symbol, order_id, client_order_id, coalesce(side, ''), coalesce(type, ''), coalesce(orig_qty, 0), "
           "first_seen_at::text, coalesce(last_seen_at, first_seen_at)::text, cancelled_at::text, last_error "
           "FROM orphan_order WHERE account = $1 ORDER BY first_seen_at, symbol, order_id",
           account)) {
    OrphanRow r;
    r.symbol = row[0].as<std::string>();
    r.order_id = row[1].as<std::int64_t>();
    r.client_order_id = row[2].as<std::string>();
    r.side = row[3].as<std::string>();
    r.type = row[4].as<std::string>();
    r.orig_qty = row[5].as<Decimal>();
    r.first_seen_at = row[6].as<std::string>();
    r.last_seen_at = row[7].as<std::string>();
    r.cancelled_at = text_or_null(row[8]);
    r.last_error = text_or_null(row[9]);
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace backstop::store
