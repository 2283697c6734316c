// backstop_build_info{version, commit} = 1: which build produced a series, on
// the controller's /metrics and in every batch run's pushed metrics (the
// convention of kube-state-metrics' and Prometheus's own *_build_info).
#pragma once

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace backstop::metrics {

// Registers the gauge in `registry`; the commit label only when the build knew it.
void register_build_info(prometheus::Registry& registry);

}  // namespace backstop::metrics
