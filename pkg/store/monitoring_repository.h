// The database-derived figures behind seed 000's monitoring queries, read in
// one snapshot: what the controller exports as Prometheus gauges and what the
// alert rules (charts/backstop/rules/backstop-alerts.yaml) read.
#pragma once

#include <cstdint>
#include <map>
#include <pqxx/pqxx>
#include <string>

namespace backstop::store {

struct MonitoringSnapshot {
  std::int64_t outbox_backlog = 0;                    // unpublished, not parked
  double outbox_oldest_age_seconds = 0;               // of the oldest of those (0: none)
  std::int64_t outbox_parked = 0;                     // parked after the retry limit
  std::int64_t outbox_held = 0;                       // unpublished behind a parked row of their operation
  std::map<std::string, double> breakers_open_since;  // OPEN symbol -> opened_at (epoch seconds)
  std::map<std::string, std::int64_t> events_by_type;
  std::map<std::string, std::int64_t> executions_by_status;
  std::map<std::string, std::int64_t> blocked_by_reason;  // executions BLOCKED now
  double blocked_oldest_age_seconds = 0;
  std::map<std::int64_t, bool> kill_switch_by_tenant;  // every configured tenant: engaged?
  // Exits triggered in the last hour that executed: quantile ("0.5", "0.99",
  // "1" = max) -> slippage in percent (signed: positive is worse than the
  // trigger price) and trigger-to-fill latency in seconds. Empty: none.
  std::map<std::string, double> slippage_pct_last_hour;
  std::map<std::string, double> latency_seconds_last_hour;
  std::int64_t executed_last_hour = 0;
  // Account truth (issue 13): ACTIVE operations by sync_status; how long the
  // oldest unsettled shortfall (seen once, or flagged SHORT) has been known;
  // each exchange account's last successful reconcile (epoch seconds) and its
  // orphan orders not cancelled.
  std::map<std::string, std::int64_t> operations_by_sync_status;
  double out_of_sync_oldest_age_seconds = 0;
  std::map<std::string, double> reconcile_last_success;
  std::map<std::string, std::int64_t> orphan_orders;
};

MonitoringSnapshot read_monitoring(pqxx::transaction_base& tx);

}  // namespace backstop::store
