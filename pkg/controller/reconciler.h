// One reconcile of one StopMonitor against the Kubernetes API: read it, build
// what it should own (desired.h), compare with what exists (plan.h), apply the
// difference, and report status (conditions Ready / InvalidSpec / Degraded
// with observedGeneration, the owned CronJobs). An invalid spec changes
// nothing and says why. Creates, updates and deletes, and the spec turning
// invalid or names being taken, are recorded as Events on the StopMonitor. A 409 (someone wrote first) is thrown as
// kube::ApiError for the work queue to requeue with backoff.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "controller/image_policy.h"
#include "controller/stop_monitor_spec.h"
#include "kube/client.h"
#include "kube/events.h"
#include "kube/object_cache.h"

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

// Where the reconciler reads what exists: the informers' caches (the
// manager's), each written through with the API server's answers to the
// reconciler's own writes. A resource without a cache is read from the API
// server (one GET per object).
struct InformerCaches {
  kube::ObjectCache* monitors = nullptr;
  kube::ObjectCache* cronjobs = nullptr;
  kube::ObjectCache* deployments = nullptr;
};

class Reconciler {
 public:
  // `now` gives RFC 3339 timestamps (a parameter so tests can pin it);
  // `events` (optional) records what changed as Kubernetes Events.
  // `images`: which images a StopMonitor may run (a refused one is InvalidSpec).
  Reconciler(kube::KubeClient& client, std::function<std::string()> now, kube::EventRecorder* events = nullptr,
             ImagePolicy images = ImagePolicy(), InformerCaches caches = {});
  ReconcileResult reconcile(const std::string& namespace_name, const std::string& name);

  // How long a Secret seen with its keys is taken as still there. The
  // controller may get Secrets, not list or watch them: without this, every
  // reconcile would GET each Secret it names (most StopMonitors of a namespace
  // name the same ones). A Secret, or a key, found missing is asked for again
  // every time; one deleted is seen missing within this long.
  static constexpr std::chrono::seconds kSecretFoundFor{30};

 private:
  std::optional<kube::json> read(kube::ObjectCache* cache, const std::string& collection, const std::string& ns,
                                 const std::string& name);
  // The keys of a Secret's data, or nullopt if it does not exist; `fresh`:
  // from the API server even if seen within kSecretFoundFor.
  std::optional<std::set<std::string>> secret_keys(const std::string& ns, const std::string& name, bool fresh);
  std::vector<std::string> missing_secrets(const std::string& ns, const StopMonitorSpec& spec);

  kube::KubeClient& client_;
  std::function<std::string()> now_;
  kube::EventRecorder* events_;
  ImagePolicy images_;
  InformerCaches caches_;

  struct FoundSecret {
    std::set<std::string> keys;
    std::chrono::steady_clock::time_point until;
  };
  std::mutex secrets_mutex_;
  std::map<std::string, FoundSecret> found_secrets_;  // namespace/name
};

// The current time as RFC 3339 (UTC, seconds).
using kube::rfc3339_now;

}  // namespace backstop::controller
