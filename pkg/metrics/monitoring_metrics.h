// The monitoring snapshot as Prometheus metrics (names the alert rules read).
#pragma once

#include <memory>
#include <string>

#include "store/monitoring_repository.h"

namespace prometheus {
class Registry;
}

namespace backstop::metrics {

// A registry holding the snapshot's gauges and counters.
std::shared_ptr<prometheus::Registry> monitoring_registry(const store::MonitoringSnapshot& snapshot);
// The same in the Prometheus text exposition format.
std::string monitoring_text(const store::MonitoringSnapshot& snapshot);

}  // namespace backstop::metrics
