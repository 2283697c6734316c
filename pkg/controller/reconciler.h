// One reconcile of one StopMonitor against the Kubernetes API: read it, build
// what it should own (desired.h), compare with what exists (plan.h), apply the
// difference, and report status (conditions Ready / InvalidSpec / Degraded
// with observedGeneration, the owned CronJobs). An invalid spec changes
// nothing and says why. Creates, updates and deletes, and the spec turning
// invalid or names being taken, are recorded as Events on the StopMonitor. A 409 (someone wrote first) is thrown as
// kube::ApiError for the work queue to requeue with backoff.
#pragma once

#include <functional>
#include <string>

#include "controller/image_policy.h"
#include "kube/client.h"
#include "kube/events.h"

namespace backstop::controller {

struct ReconcileResult {
  bool found = false;  // the StopMonitor exists
  int created = 0;
  int updated = 0;
  int deleted = 0;
  bool invalid = false;          // the spec cannot become objects (InvalidSpec)
  bool rejected = false;         // the API server refused an object (422, 400): Degraded, not retried with backoff
  bool secrets_missing = false;  // a Secret (or key) the Jobs read does not exist: looked at again soon
  std::string message;
};

class Reconciler {
 public:
  // `now` gives RFC 3339 timestamps (a parameter so tests can pin it);
  // `events` (optional) records what changed as Kubernetes Events.
  // `images`: which images a StopMonitor may run (a refused one is InvalidSpec).
  Reconciler(kube::KubeClient& client, std::function<std::string()> now, kube::EventRecorder* events = nullptr,
             ImagePolicy images = ImagePolicy());
  ReconcileResult reconcile(const std::string& namespace_name, const std::string& name);

 private:
  kube::KubeClient& client_;
  std::function<std::string()> now_;
  kube::EventRecorder* events_;
  ImagePolicy images_;
};

// The current time as RFC 3339 (UTC, seconds).
using kube::rfc3339_now;

}  // namespace backstop::controller
