// The reconciler's decisions (pure): given what a StopMonitor should own and
// what exists, the creates, updates (drift or a spec change) and deletes that
// make them agree, and the status conditions to report.
//
// Drift is judged on the fields the controller sets: every value it sets must
// be found in the live object (the API server adds defaults of its own, which
// are not drift). An update keeps the live object's other fields and its
// resourceVersion, so it is an optimistic update (409: requeue and re-plan).
// An object of the same name that this StopMonitor does not own is never
// touched: it is reported.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "controller/desired.h"

namespace backstop::controller {

struct Action {
  enum class Kind { kCreate, kUpdate, kDelete };
  Kind kind = Kind::kCreate;
  std::string resource;  // cronjobs, deployments
  std::string name;
  json object;  // the object to send (create, update)
  std::string reason;
};

struct Plan {
  std::vector<Action> actions;
  std::vector<std::string> conflicts;  // names taken by objects this StopMonitor does not own
};

// True when every value `desired` sets is the same in `live` (objects
// recursively, arrays element by element and of the same length).
bool contains(const json& live, const json& desired);

// `existing_*`: live objects by name (only those with our name prefix need be given).
Plan plan(const json& monitor, const Desired& desired, const std::map<std::string, json>& existing_cronjobs,
          const std::map<std::string, json>& existing_deployments);

// Sets the condition `type` in status.conditions (metav1.Condition semantics:
// lastTransitionTime changes only when the status does). Returns true if
// anything changed.
bool set_condition(json& status, const std::string& type, const std::string& condition_status,
                   const std::string& reason, const std::string& message, std::int64_t observed_generation,
                   const std::string& now);

}  // namespace backstop::controller
