#include "store/monitoring_repository.h"

#include "store/outbox_repository.h"

namespace backstop::store {

MonitoringSnapshot read_monitoring(pqxx::transaction_base& tx) {
  MonitoringSnapshot s;
  const OutboxStats outbox = OutboxRepository::stats(tx);
  s.outbox_backlog = outbox.backlog;
  s.outbox_oldest_age_seconds = outbox.oldest_age_seconds;
  s.outbox_parked = outbox.parked;
  s.outbox_held = outbox.held;
  for (const auto& row : tx.exec("SELECT symbol, extract(epoch FROM coalesce(opened_at, updated_at))::double precision "
                                 "FROM circuit_breaker_state WHERE state = 'OPEN'")) {
    s.breakers_open_since[row[0].as<std::string>()] = row[1].as<double>();
  }
  for (const auto& row : tx.exec("SELECT event_type, count(*) FROM stop_events GROUP BY event_type")) {
    s.events_by_type[row[0].as<std::string>()] = row[1].as<std::int64_t>();
  }
  for (const auto& row : tx.exec("SELECT status, count(*) FROM stop_executions GROUP BY status")) {
    s.executions_by_status[row[0].as<std::string>()] = row[1].as<std::int64_t>();
  }
  for (const auto& row : tx.exec("SELECT coalesce(blocked_reason, 'UNKNOWN'), count(*) FROM stop_executions "
                                 "WHERE status = 'BLOCKED' GROUP BY 1")) {
    s.blocked_by_reason[row[0].as<std::string>()] = row[1].as<std::int64_t>();
  }
  s.blocked_oldest_age_seconds =
      tx.exec1(
            "SELECT coalesce(extract(epoch FROM now() - min(coalesce(triggered_at, blocked_at))), 0)::double precision "
            "FROM stop_executions WHERE status = 'BLOCKED'")[0]
          .as<double>();
  for (const auto& row : tx.exec("SELECT tenant_id, NOT trading_enabled FROM tenant_config")) {
    s.kill_switch_by_tenant[row[0].as<std::int64_t>()] = row[1].as<bool>();
  }
  // Slippage and trigger -> fill latency of the last hour's exits (the index
  // on (status, triggered_at) bounds the read to that hour).
  const pqxx::row q = tx.exec1(
      "SELECT count(*),"
      " percentile_cont(0.5) WITHIN GROUP (ORDER BY slippage_pct)::double precision,"
      " percentile_cont(0.99) WITHIN GROUP (ORDER BY slippage_pct)::double precision,"
      " max(slippage_pct)::double precision,"
      " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM executed_at - triggered_at))::double precision,"
      " percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM executed_at - triggered_at))::double precision,"
      " max(extract(epoch FROM executed_at - triggered_at))::double precision "
      "FROM stop_executions WHERE status = 'EXECUTED' AND triggered_at > now() - interval '1 hour'");
  s.executed_last_hour = q[0].as<std::int64_t>();
  const char* quantiles[] = {"0.5", "0.99", "1"};
  for (int i = 0; i < 3; ++i) {
    const auto at = static_cast<pqxx::row::size_type>(i);
    if (!q[1 + at].is_null()) s.slippage_pct_last_hour[quantiles[i]] = q[1 + at].as<double>();
    if (!q[4 + at].is_null()) s.latency_seconds_last_hour[quantiles[i]] = q[4 + at].as<double>();
  }
  for (const auto& row :
       tx.exec("SELECT sync_status, count(*) FROM operation WHERE status = 'ACTIVE' GROUP BY sync_status")) {
    s.operations_by_sync_status[row[0].as<std::string>()] = row[1].as<std::int64_t>();
  }
  // A shortfall is known from its first sighting (sync_pending) or, once
  // flagged, from its POSITION_OUT_OF_SYNC.
  s.out_of_sync_oldest_age_seconds =
      tx.exec1(
            "SELECT coalesce(extract(epoch FROM now() - least("
            "  (SELECT min(p.first_seen_at) FROM sync_pending p JOIN operation o ON o.id = p.operation_id "
            "   WHERE o.status = 'ACTIVE'),"
            "  (SELECT min(e.at) FROM operation o CROSS JOIN LATERAL (SELECT max(occurred_at) AS at "
            "   FROM stop_events WHERE operation_id = o.id AND event_type = 'POSITION_OUT_OF_SYNC') e "
            "   WHERE o.status = 'ACTIVE' AND o.sync_status = 'SHORT'))), 0)::double precision")[0]
          .as<double>();
  for (const auto& row : tx.exec("SELECT account, extract(epoch FROM last_success_at)::double precision "
                                 "FROM exchange_account WHERE last_success_at IS NOT NULL")) {
    s.reconcile_last_success[row[0].as<std::string>()] = row[1].as<double>();
  }
  for (const auto& row : tx.exec("SELECT a.account, count(o.order_id) FROM exchange_account a "
                                 "LEFT JOIN orphan_order o ON o.account = a.account AND o.cancelled_at IS NULL "
                                 "GROUP BY a.account")) {
    s.orphan_orders[row[0].as<std::string>()] = row[1].as<std::int64_t>();
  }
  return s;
}

}  // namespace backstop::store
