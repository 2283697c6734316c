// dump-desired: the objects the controller would create for a StopMonitor
// manifest (YAML), and an Event about it, as a JSON array, so that tests/k8s-schemas can validate them
// against the official Kubernetes schemas.
//   dump-desired STOPMONITOR.yaml [--with-stream]
#include <yaml-cpp/yaml.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "controller/desired.h"
#include "kube/events.h"

namespace {

nlohmann::json to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = to_json(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(to_json(item));
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string text = node.as<std::string>();
      if (node.Tag() == "!") return text;  // quoted: a string
      if (text == "true" || text == "false") return text == "true";
      try {
        std::size_t used = 0;
        const long long value = std::stoll(text, &used);
        if (used == text.size()) return value;
      } catch (const std::exception&) {
      }
      return text;
    }
    default:
      return nullptr;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: dump-desired STOPMONITOR.yaml [--with-stream]\n";
    return 2;
  }
  nlohmann::json monitor = to_json(YAML::LoadFile(argv[1]));
  monitor["metadata"]["uid"] = "00000000-0000-4000-8000-000000000001";
  if (argc > 2 && std::string(argv[2]) == "--with-stream") monitor["spec"]["stream"] = {{"enabled", true}};
  const backstop::controller::Desired d =
      backstop::controller::desired_objects(backstop::controller::parse_stop_monitor(monitor));
  nlohmann::json out = nlohmann::json::array();
  for (const auto& o : d.cronjobs) out.push_back(o);
  for (const auto& o : d.deployments) out.push_back(o);
  // And an Event about the StopMonitor, as the reconciler records them.
  out.push_back(backstop::kube::event_object(monitor, "Normal", "Created", "Created CronJob x", "backstop-controller",
                                             "controller-0", "2026-11-25T00:00:00Z", "1873c5a9d2f3e01"));
  std::cout << out.dump(2) << "\n";
  return 0;
}
