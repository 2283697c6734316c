#include "store/trailing_repository.h"

#include <algorithm>

#include "store/db.h"

namespace backstop::store {
namespace {

using core::Decimal;

const char* const kRowColumns =
    "o.id, o.tenant_id, o.symbol, o.side, o.average_entry_price, o.stop_price, o.initial_stop_price, "
    "o.trailing_mode, o.trailing_offset, o.trailing_activation_price, tc.trailing_mode, tc.trailing_offset, "
    "coalesce(tc.trailing_fee_pct, 0.10), coalesce(tc.trailing_slippage_buffer_pct, 0.05), o.trail_wake_price";

TrailingRow row_to_trailing(const pqxx::row& row) {
  TrailingRow r;
  r.id = core::OperationId{row[0].as<std::int64_t>()};
  r.tenant = core::TenantId{row[1].is_null() ? 0 : row[1].as<std::int64_t>()};
  r.symbol = row[2].is_null() ? "" : row[2].as<std::string>();
  if (!row[3].is_null()) r.side = core::parse_side(row[3].c_str());
  r.entry = decimal_or_null(row[4]);
  r.stop = decimal_or_null(row[5]);
  r.initial_stop = decimal_or_null(row[6]);
  r.mode = text_or_null(row[7]);
  r.offset = decimal_or_null(row[8]);
  r.activation_price = decimal_or_null(row[9]);
  r.tenant_mode = text_or_null(row[10]);
  r.tenant_offset = decimal_or_null(row[11]);
  r.fee_pct = row[12].as<Decimal>();
  r.slippage_buffer_pct = row[13].as<Decimal>();
  r.wake_price = decimal_or_null(row[14]);
  return r;
}

std::string ids_literal(const std::vector<std::int64_t>& ids) {
  ArrayLiteral list;
  for (const auto id : ids) list.add(id);
  return list.str();
}

}  // namespace

std::vector<std::int64_t> TrailingRepository::due(pqxx::transaction_base& tx, const std::vector<SymbolPrice>& prices,
                                                  const ScanFilter& filter, bool unarmed) {
  ArrayLiteral symbols, long_exit, short_exit;
  for (const auto& p : prices) {
    symbols.add(p.symbol);
    long_exit.add(std::optional<Decimal>(p.long_exit));
    short_exit.add(std::optional<Decimal>(p.short_exit));
  }
  // Each branch is a range or a lookup on one of 0007's partial indexes.
  const std::string woken =
      " o.status = 'ACTIVE' AND o.trail_wake_price IS NOT NULL AND o.symbol = p.symbol" + filter_sql(4);
  const std::string unarmed_sql =
      " o.status = 'ACTIVE' AND o.trail_wake_price IS NULL AND o.trail_error IS NULL"
      " AND o.stop_price IS NOT NULL" +
      filter_sql(4);
  const std::string sql =
      "SELECT o.id FROM unnest($1::text[], $2::numeric[], $3::numeric[]) AS p(symbol, long_exit, short_exit) "
      "CROSS JOIN LATERAL ("
      "  SELECT o.id FROM operation o WHERE" +
      woken +
      " AND o.side = 'BUY' AND o.trail_wake_price <= p.long_exit"
      "  UNION ALL SELECT o.id FROM operation o WHERE" +
      woken +
      "    AND o.side = 'SELL' AND o.trail_wake_price >= p.short_exit"
      ") o "
      "UNION SELECT o.id FROM operation o WHERE $6 AND" +
      unarmed_sql +
      "  AND o.trailing_mode IN ('HAND_SPAN', 'PERCENT', 'ABSOLUTE') "
      "UNION SELECT o.id FROM tenant_config tc JOIN operation o ON o.tenant_id = tc.tenant_id "
      "  WHERE $6 AND tc.trailing_mode IS NOT NULL AND" +
      unarmed_sql +
      " AND o.trailing_mode IS NULL "
      "ORDER BY 1";
  std::vector<std::int64_t> ids;
  for (const auto& row : exec_prepared(tx, "bs_trailing_due", sql, symbols.str(), long_exit.str(), short_exit.str(),
                                       tenants_literal(filter), symbols_literal(filter), unarmed)) {
    ids.push_back(row[0].as<std::int64_t>());
  }
  return ids;
}

std::vector<TrailingRow> TrailingRepository::read(pqxx::transaction_base& tx, const std::vector<std::int64_t>& ids) {
  std::vector<TrailingRow> rows;
  if (ids.empty()) return rows;
  for (const auto& row : exec_prepared(tx, "bs_trailing_read",
                                       std::string("SELECT ") + kRowColumns +
                                           " FROM operation o LEFT JOIN tenant_config tc ON tc.tenant_id = o.tenant_id"
                                           " WHERE o.id = ANY($1::bigint[]) AND o.status = 'ACTIVE' ORDER BY o.id",
                                       ids_literal(ids))) {
    rows.push_back(row_to_trailing(row));
  }
  return rows;
}

LockedRows TrailingRepository::lock(pqxx::work& tx, const std::vector<std::int64_t>& ids) {
  LockedRows result;
  if (ids.empty()) return result;
  const std::string list = ids_literal(ids);
  std::vector<TrailingRow> locked;
  for (const auto& row : exec_prepared(tx, "bs_trailing_lock",
                                       std::string("SELECT ") + kRowColumns +
                                           " FROM operation o LEFT JOIN tenant_config tc ON tc.tenant_id = o.tenant_id"
                                           " WHERE o.id = ANY($1::bigint[]) AND o.status = 'ACTIVE'"
                                           " ORDER BY o.id FOR UPDATE OF o SKIP LOCKED",
                                       list)) {
    locked.push_back(row_to_trailing(row));
  }
  // A new statement, a new snapshot: every claim that committed before the
  // locks were taken is visible here. Any exit, also a FAILED one, freezes the
  // levels (a stop never moves once an exit is claimed).
  std::set<std::int64_t> busy;
  for (const auto& row : exec_prepared(tx, "bs_trailing_in_flight",
                                       "SELECT DISTINCT operation_id FROM stop_executions "
                                       "WHERE operation_id = ANY($1::bigint[])",
                                       list)) {
    busy.insert(row[0].as<std::int64_t>());
  }
  std::set<std::int64_t> seen;
  for (TrailingRow& r : locked) {
    seen.insert(r.id.value);
    if (busy.count(r.id.value) != 0) {
      result.in_flight.push_back(r.id.value);
    } else {
      result.rows.push_back(std::move(r));
    }
  }
  for (const auto id : ids) {
    if (seen.count(id) == 0) result.skipped.push_back(id);
  }
  return result;
}

void TrailingRepository::save(pqxx::work& tx, const std::vector<TrailState>& states) {
  if (states.empty()) return;
  ArrayLiteral id, wake, initial, error;
  for (const TrailState& s : states) {
    id.add(s.id);
    wake.add(s.wake_price);
    initial.add(s.initial_stop);
    error.add(s.error);
  }
  exec_prepared(tx, "bs_trailing_save",
                "UPDATE operation o SET trail_wake_price = u.wake, trail_error = u.error, "
                "initial_stop_price = coalesce(o.initial_stop_price, u.initial) "
                "FROM unnest($1::bigint[], $2::numeric[], $3::numeric[], $4::text[]) AS u(id, wake, initial, error) "
                "WHERE o.id = u.id",
                id.str(), wake.str(), initial.str(), error.str());
}

}  // namespace backstop::store
