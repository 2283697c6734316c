#include "metrics/monitoring_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <sstream>

namespace backstop::metrics {

std::shared_ptr<prometheus::Registry> monitoring_registry(const store::MonitoringSnapshot& s) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto gauge = [&](const char* name, const char* help) -> prometheus::Family<prometheus::Gauge>& {
    return prometheus::BuildGauge().Name(name).Help(help).Register(*registry);
  };
  gauge("backstop_outbox_backlog", "Outbox rows not yet published (parked rows excluded)")
      .Add({})
      .Set(static_cast<double>(s.outbox_backlog));
  gauge("backstop_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row")
      .Add({})
      .Set(s.outbox_oldest_age_seconds);
  gauge("backstop_outbox_parked_rows", "Outbox rows parked after the retry limit (kept, never deleted)")
      .Add({})
      .Set(static_cast<double>(s.outbox_parked));
  gauge("backstop_outbox_held_rows",
        "Outbox rows held behind a parked earlier row of their operation (events leave in order per operation)")
      .Add({})
      .Set(static_cast<double>(s.outbox_held));
  auto& open = gauge("backstop_circuit_breaker_open", "1 while the symbol's circuit breaker is OPEN");
  auto& since = gauge("backstop_circuit_breaker_opened_timestamp_seconds", "When the symbol's breaker opened");
  for (const auto& [symbol, opened] : s.breakers_open_since) {
    open.Add({{"symbol", symbol}}).Set(1);
    since.Add({{"symbol", symbol}}).Set(opened);
  }
  // stop_events is append-only: its count per type only grows, a counter.
  auto& events = prometheus::BuildCounter()
                     .Name("backstop_events_total")
                     .Help("Events in the event store, by type")
                     .Register(*registry);
  for (const auto& [type, n] : s.events_by_type) events.Add({{"type", type}}).Increment(static_cast<double>(n));
  auto& executions = gauge("backstop_executions", "Protective exits by current status");
  for (const auto& [status, n] : s.executions_by_status)
    executions.Add({{"status", status}}).Set(static_cast<double>(n));
  auto& blocked = gauge("backstop_executions_blocked", "Exits held by a guardrail now, by reason");
  for (const auto& [reason, n] : s.blocked_by_reason) blocked.Add({{"reason", reason}}).Set(static_cast<double>(n));
  gauge("backstop_executions_blocked_oldest_age_seconds", "How long the oldest blocked exit has waited")
      .Add({})
      .Set(s.blocked_oldest_age_seconds);
  auto& kill = gauge("backstop_kill_switch_engaged", "1 while the tenant's kill switch is engaged");
  for (const auto& [tenant, engaged] : s.kill_switch_by_tenant) {
    kill.Add({{"tenant", std::to_string(tenant)}}).Set(engaged ? 1 : 0);
  }
  gauge("backstop_executions_executed_last_hour", "Exits triggered in the last hour that executed")
      .Add({})
      .Set(static_cast<double>(s.executed_last_hour));
  auto& slippage = gauge("backstop_execution_slippage_percent_last_hour",
                         "Slippage of the last hour's executed exits against their trigger price, percent "
                         "(positive: worse), by quantile (1 = the worst)");
  for (const auto& [q, v] : s.slippage_pct_last_hour) slippage.Add({{"quantile", q}}).Set(v);
  auto& latency = gauge("backstop_execution_latency_seconds_last_hour",
                        "Trigger to fill time of the last hour's executed exits, by quantile (1 = the slowest)");
  for (const auto& [q, v] : s.latency_seconds_last_hour) latency.Add({{"quantile", q}}).Set(v);
  auto& sync =
      gauge("backstop_operations_by_sync_status",
            "ACTIVE operations by what reconcile last found (UNCHECKED, IN_SYNC, REDUCED, SHORT, NOT_RECONCILED)");
  for (const auto& [status, n] : s.operations_by_sync_status) {
    sync.Add({{"sync_status", status}}).Set(static_cast<double>(n));
  }
  gauge("backstop_operations_out_of_sync_oldest_age_seconds",
        "How long the oldest shortfall the account does not explain has been known (seen once, or flagged SHORT)")
      .Add({})
      .Set(s.out_of_sync_oldest_age_seconds);
  auto& reconciled = gauge("backstop_account_last_reconciled_timestamp_seconds",
                           "When reconcile last finished a pass of the exchange account");
  for (const auto& [account, at] : s.reconcile_last_success) reconciled.Add({{"account", account}}).Set(at);
  auto& orphans = gauge("backstop_orphan_orders",
                        "Open orders with Backstop's client id prefix that no exit owns, not cancelled, by account");
  for (const auto& [account, n] : s.orphan_orders) orphans.Add({{"account", account}}).Set(static_cast<double>(n));
  return registry;
}

std::string monitoring_text(const store::MonitoringSnapshot& snapshot) {
  const auto registry = monitoring_registry(snapshot);
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry->Collect());
  return out.str();
}

}  // namespace backstop::metrics
