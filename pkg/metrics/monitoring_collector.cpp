#include "metrics/monitoring_collector.h"

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>

#include "metrics/monitoring_metrics.h"
#include "runtime/log.h"
#include "store/db.h"
#include "store/migrations.h"
#include "store/monitoring_repository.h"

namespace backstop::metrics {

std::vector<prometheus::MetricFamily> DatabaseCollectable::Collect() const {
  std::lock_guard lock(mutex_);
  const auto started = std::chrono::steady_clock::now();
  std::vector<prometheus::MetricFamily> families;
  bool up = false;
  try {
    if (!connection_) {
      connection_ = store::connect(url_, "backstop-controller-metrics");
      store::require_migrated(*connection_);  // else the warning says `run "migrate up"`, not a missing relation
    }
    pqxx::read_transaction tx(*connection_);
    tx.exec0("SET LOCAL statement_timeout = '5s'");
    families = monitoring_registry(store::read_monitoring(tx))->Collect();
    up = true;
  } catch (const std::exception& e) {
    connection_.reset();  // reconnect on the next scrape
    log::warn("database metrics not read", {{"error", e.what()}});
  }
  prometheus::Registry extra;
  prometheus::BuildGauge()
      .Name("backstop_database_up")
      .Help("1 when the last scrape read the database's monitoring figures")
      .Register(extra)
      .Add({})
      .Set(up ? 1 : 0);
  prometheus::BuildGauge()
      .Name("backstop_database_scrape_duration_seconds")
      .Help("Time the scrape's database read took")
      .Register(extra)
      .Add({})
      .Set(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  for (auto& f : extra.Collect()) families.push_back(std::move(f));
  return families;
}

}  // namespace backstop::metrics
