// One reconcile of one StopMonitor against the Kubernetes API: read it, build
// what it should own (desired.h), compare with what exists (plan.h), apply the
// difference, and report status (conditions Ready / InvalidSpec / Degraded
// with observedGeneration, the owned CronJobs). An invalid spec changes
// nothing and says why. A 409 (someone wrote first) is thrown as
// kube::ApiError for the work queue to requeue with backoff.
#pragma once

#include <functional>
#include <string>

#include "kube/client.h"

namespace backstop::controller {

struct ReconcileResult {
  bool found = false;       // the StopMonitor exists
  int created = 0;
  int updated = 0;
  int deleted = 0;
  bool invalid = false;
  std::string message;
};

class Reconciler {
 public:
  // `now` gives RFC 3339 timestamps (a parameter so tests can pin it).
  Reconciler(kube::KubeClient& client, std::function<std::string()> now);
  ReconcileResult reconcile(const std::string& namespace_name, const std::string& name);

 private:
  kube::KubeClient& client_;
  std::function<std::string()> now_;
};

// The current time as RFC 3339 (UTC, seconds).
std::string rfc3339_now();

}  // namespace backstop::controller
