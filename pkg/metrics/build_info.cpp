#include "metrics/build_info.h"

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <map>
#include <string>

#include "runtime/build_info.h"

namespace backstop::metrics {

void register_build_info(prometheus::Registry& registry) {
  const runtime::BuildInfo& info = runtime::build_info();
  std::map<std::string, std::string> labels = {{"version", std::string(info.version)}};
  if (!info.commit.empty()) labels["commit"] = std::string(info.commit);
  prometheus::BuildGauge()
      .Name("backstop_build_info")
      .Help("1, labelled with the version and commit of the Backstop build that runs")
      .Register(registry)
      .Add(labels)
      .Set(1);
}

}  // namespace backstop::metrics
