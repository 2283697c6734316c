// The database-derived gauges (monitoring_metrics.h) as a prometheus-cpp
// Collectable: each scrape reads one fresh snapshot (a read-only transaction
// with a statement timeout) over a connection kept between scrapes and
// reopened after a failure. backstop_database_up says whether the read
// worked; a failed read exports only that (stale figures would mislead alerts).
#pragma once

#include <prometheus/collectable.h>

#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <vector>

namespace backstop::metrics {

class DatabaseCollectable : public prometheus::Collectable {
 public:
  explicit DatabaseCollectable(std::string database_url) : url_(std::move(database_url)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string url_;
  mutable std::mutex mutex_;
  mutable std::unique_ptr<pqxx::connection> connection_;
};

}  // namespace backstop::metrics
