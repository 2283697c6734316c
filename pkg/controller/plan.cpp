#include "controller/plan.h"

namespace backstop::controller {
namespace {

bool owned_by(const json& object, const std::string& uid) {
  if (!object.contains("metadata") || !object["metadata"].contains("ownerReferences")) return false;
  for (const auto& owner : object["metadata"]["ownerReferences"]) {
    if (owner.value("uid", "") == uid) return true;
  }
  return false;
}

// `desired` merged into `live`: our values win, the server's other fields stay.
json merged(json live, const json& desired) {
  if (!desired.is_object() || !live.is_object()) return desired;
  for (const auto& [key, value] : desired.items()) {
    if (live.contains(key) && value.is_object()) {
      live[key] = merged(live[key], value);
    } else if (live.contains(key) && value.is_array() && live[key].is_array() && live[key].size() == value.size()) {
      json items = json::array();
      for (std::size_t i = 0; i < value.size(); ++i) items.push_back(merged(live[key][i], value[i]));
      live[key] = items;
    } else {
      live[key] = value;
    }
  }
  return live;
}

void plan_kind(const std::string& resource, const std::vector<json>& wanted, const std::map<std::string, json>& live,
               const std::string& uid, Plan& out) {
  for (const json& object : wanted) {
    const std::string name = object["metadata"]["name"];
    const auto it = live.find(name);
    if (it == live.end()) {
      out.actions.push_back({Action::Kind::kCreate, resource, name, object, "missing"});
      continue;
    }
    if (!owned_by(it->second, uid)) {
      out.conflicts.push_back(resource + "/" + name);
      continue;
    }
    const json ours = {
        {"metadata",
         {{"labels", object["metadata"]["labels"]}, {"ownerReferences", object["metadata"]["ownerReferences"]}}},
        {"spec", object["spec"]}};
    if (!contains(it->second, ours)) {
      out.actions.push_back({Action::Kind::kUpdate, resource, name, merged(it->second, ours), "drift or spec change"});
    }
  }
}

}  // namespace

bool contains(const json& live, const json& desired) {
  if (desired.is_object()) {
    if (!live.is_object()) return false;
    for (const auto& [key, value] : desired.items()) {
      if (!live.contains(key) || !contains(live[key], value)) return false;
    }
    return true;
  }
  if (desired.is_array()) {
    if (!live.is_array() || live.size() != desired.size()) return false;
    for (std::size_t i = 0; i < desired.size(); ++i) {
      if (!contains(live[i], desired[i])) return false;
    }
    return true;
  }
  return live == desired;
}

Plan plan(const json& monitor, const Desired& desired, const std::map<std::string, json>& existing_cronjobs,
          const std::map<std::string, json>& existing_deployments) {
  Plan out;
  const std::string uid = monitor["metadata"].value("uid", "");
  plan_kind("cronjobs", desired.cronjobs, existing_cronjobs, uid, out);
  plan_kind("deployments", desired.deployments, existing_deployments, uid, out);
  for (const std::string& name : desired.absent) {
    for (const auto* live : {&existing_cronjobs, &existing_deployments}) {
      const auto it = live->find(name);
      if (it != live->end() && owned_by(it->second, uid)) {
        out.actions.push_back({Action::Kind::kDelete, live == &existing_cronjobs ? "cronjobs" : "deployments", name,
                               json(), "component disabled"});
      }
    }
  }
  return out;
}

bool set_condition(json& status, const std::string& type, const std::string& condition_status,
                   const std::string& reason, const std::string& message, std::int64_t observed_generation,
                   const std::string& now) {
  if (!status.contains("conditions") || !status["conditions"].is_array()) status["conditions"] = json::array();
  // Compared through std::string copies: GCC 12 at -O3 reports a false
  // -Wnull-dereference inside nlohmann's value() here.
  auto text = [](const json& object, const char* key) {
    const auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  for (json& c : status["conditions"]) {
    if (text(c, "type") != type) continue;
    const json before = c;
    if (text(c, "status") != condition_status) c["lastTransitionTime"] = now;
    c["status"] = condition_status;
    c["reason"] = reason;
    c["message"] = message;
    c["observedGeneration"] = observed_generation;
    return c != before;
  }
  status["conditions"].push_back({{"type", type},
                                  {"status", condition_status},
                                  {"reason", reason},
                                  {"message", message},
                                  {"observedGeneration", observed_generation},
                                  {"lastTransitionTime", now}});
  return true;
}

}  // namespace backstop::controller
