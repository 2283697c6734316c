// P6 baseline: the API writes a cold start of N StopMonitors needs, done by
// the simplest client possible — one thread, no reads beyond one list, no
// watches, no decisions: for each StopMonitor of the namespace, its CronJobs
// created (the objects the controller would make) and one status update.
// Prints "<monitors> <seconds>".
//   kube_write_baseline URL NAMESPACE
#include <chrono>
#include <iostream>

#include "controller/desired.h"
#include "controller/plan.h"
#include "kube/client.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: kube_write_baseline URL NAMESPACE\n";
    return 2;
  }
  using namespace backstop;
  const std::string ns = argv[2];
  kube::KubeConfig config;
  config.server = argv[1];
  auto client = kube::make_client(config);
  const auto start = std::chrono::steady_clock::now();
  const kube::json list = client->list("/apis/backstop.dev/v1alpha1/namespaces/" + ns + "/stopmonitors");
  int monitors = 0;
  for (const auto& monitor : list["items"]) {
    const controller::Desired desired = controller::desired_objects(controller::parse_stop_monitor(monitor));
    for (const auto& cronjob : desired.cronjobs) {
      client->create("/apis/batch/v1/namespaces/" + ns + "/cronjobs", cronjob);
    }
    kube::json updated = monitor;
    kube::json status = kube::json::object();
    controller::set_condition(status, "Ready", "True", "Reconciled", "baseline", 1, "2026-11-25T00:00:00Z");
    updated["status"] = status;
    client->replace_status("/apis/backstop.dev/v1alpha1/namespaces/" + ns + "/stopmonitors/" +
                               monitor["metadata"]["name"].get<std::string>(),
                           updated);
    ++monitors;
  }
  std::cout << monitors << " " << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
            << "\n";
  return 0;
}
