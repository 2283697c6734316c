#include "controller/reconciler.h"

#include <ctime>

#include "controller/desired.h"
#include "controller/plan.h"

namespace backstop::controller {
namespace {

std::string collection(const std::string& api, const std::string& ns, const std::string& resource) {
  return api + "/namespaces/" + ns + "/" + resource;
}

// Live objects of `resource` in `ns` owned by (or named like) this monitor's.
std::map<std::string, json> live_objects(kube::KubeClient& client, const std::string& api, const std::string& ns,
                                         const std::string& resource, const std::string& prefix) {
  std::map<std::string, json> out;
  const json list = client.list(collection(api, ns, resource));  // not a temporary: the loop reads into it
  for (const auto& item : list["items"]) {
    const std::string name = item["metadata"].value("name", "");
    if (name.rfind(prefix, 0) == 0) out[name] = item;
  }
  return out;
}

}  // namespace

std::string rfc3339_now() {
  const std::time_t t = std::time(nullptr);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buffer;
}

Reconciler::Reconciler(kube::KubeClient& client, std::function<std::string()> now)
    : client_(client), now_(std::move(now)) {}

ReconcileResult Reconciler::reconcile(const std::string& ns, const std::string& name) {
  ReconcileResult result;
  const std::string path = collection("/apis/backstop.dev/v1alpha1", ns, "stopmonitors") + "/" + name;
  auto monitor = client_.get(path);
  if (!monitor) return result;  // deleted: its objects go with it (garbage collection)
  result.found = true;
  const std::int64_t generation = (*monitor)["metadata"].value("generation", 1);
  json status = monitor->value("status", json::object());
  const std::string now = now_();
  bool status_changed = false;

  Desired desired;
  try {
    desired = desired_objects(*monitor);
  } catch (const InvalidSpec& e) {
    // Nothing half-applied: report and stop here until the spec changes.
    result.invalid = true;
    result.message = e.what();
    status_changed |= set_condition(status, "InvalidSpec", "True", "InvalidSpec", e.what(), generation, now);
    status_changed |= set_condition(status, "Ready", "False", "InvalidSpec", e.what(), generation, now);
  }
  if (!result.invalid) {
    const std::string prefix = name + "-";
    const auto cronjobs = live_objects(client_, "/apis/batch/v1", ns, "cronjobs", prefix);
    const auto deployments = live_objects(client_, "/apis/apps/v1", ns, "deployments", prefix);
    const Plan p = plan(*monitor, desired, cronjobs, deployments);
    for (const Action& a : p.actions) {
      const std::string api = a.resource == "cronjobs" ? "/apis/batch/v1" : "/apis/apps/v1";
      switch (a.kind) {
        case Action::Kind::kCreate:
          client_.create(collection(api, ns, a.resource), a.object);
          ++result.created;
          break;
        case Action::Kind::kUpdate:
          client_.replace(collection(api, ns, a.resource) + "/" + a.name, a.object);  // 409: requeue
          ++result.updated;
          break;
        case Action::Kind::kDelete:
          client_.remove(collection(api, ns, a.resource) + "/" + a.name);
          ++result.deleted;
          break;
      }
    }
    status_changed |= set_condition(status, "InvalidSpec", "False", "Valid", "", generation, now);
    if (p.conflicts.empty()) {
      result.message = std::to_string(desired.cronjobs.size()) + " CronJobs" +
                       (desired.deployments.empty() ? "" : " and the stream Deployment") + " in place";
      status_changed |= set_condition(status, "Degraded", "False", "Reconciled", "", generation, now);
      status_changed |= set_condition(status, "Ready", "True", "Reconciled", result.message, generation, now);
    } else {
      std::string names;
      for (const auto& c : p.conflicts) names += (names.empty() ? "" : ", ") + c;
      result.message = "objects with these names exist and are not owned by this StopMonitor: " + names;
      status_changed |= set_condition(status, "Degraded", "True", "NameConflict", result.message, generation, now);
      status_changed |= set_condition(status, "Ready", "False", "NameConflict", result.message, generation, now);
    }
    // Each owned CronJob's last schedule / success, as the CronJob controller reports them.
    json owned = json::array();
    for (const json& cj : desired.cronjobs) {
      const std::string cj_name = cj["metadata"]["name"];
      json entry = {{"component", cj["metadata"]["labels"]["app.kubernetes.io/component"]}, {"name", cj_name}};
      if (const auto live = cronjobs.find(cj_name); live != cronjobs.end() && live->second.contains("status")) {
        for (const char* field : {"lastScheduleTime", "lastSuccessfulTime"}) {
          if (live->second["status"].contains(field)) entry[field] = live->second["status"][field];
        }
      }
      owned.push_back(entry);
    }
    if (status.value("cronJobs", json()) != owned) {
      status["cronJobs"] = owned;
      status_changed = true;
    }
    if (!owned.empty() && owned[0].contains("lastScheduleTime")) status["lastScheduleTime"] = owned[0]["lastScheduleTime"];
    if (!owned.empty() && owned[0].contains("lastSuccessfulTime")) status["lastSuccessfulTime"] = owned[0]["lastSuccessfulTime"];
  }
  if (status.value("observedGeneration", std::int64_t{0}) != generation) {
    status["observedGeneration"] = generation;
    status_changed = true;
  }
  if (status_changed) {
    json updated = *monitor;
    updated["status"] = status;
    client_.replace_status(path, updated);  // 409 if the StopMonitor changed meanwhile: requeue
  }
  return result;
}

}  // namespace backstop::controller
