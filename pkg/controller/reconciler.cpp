#include "controller/reconciler.h"

#include <algorithm>
#include <map>
#include <optional>

#include "controller/desired.h"
#include "controller/plan.h"

namespace backstop::controller {
namespace {

std::string collection(const std::string& api, const std::string& ns, const std::string& resource) {
  return api + "/namespaces/" + ns + "/" + resource;
}

std::vector<std::string> names_of(const std::vector<json>& objects) {
  std::vector<std::string> out;
  for (const json& o : objects) out.push_back(o["metadata"]["name"].get<std::string>());
  return out;
}

}  // namespace

Reconciler::Reconciler(kube::KubeClient& client, std::function<std::string()> now, kube::EventRecorder* events,
                       ImagePolicy images, InformerCaches caches)
    : client_(client), now_(std::move(now)), events_(events), images_(std::move(images)), caches_(caches) {}

std::optional<json> Reconciler::read(kube::ObjectCache* cache, const std::string& collection_path,
                                     const std::string& ns, const std::string& name) {
  if (cache != nullptr) return cache->get(ns, name);
  return client_.get(collection_path + "/" + name);
}

std::optional<std::set<std::string>> Reconciler::secret_keys(const std::string& ns, const std::string& name,
                                                             bool fresh) {
  const std::string key = ns + "/" + name;
  const auto now = std::chrono::steady_clock::now();
  if (!fresh) {
    std::lock_guard lock(secrets_mutex_);
    if (const auto found = found_secrets_.find(key); found != found_secrets_.end() && now < found->second.until) {
      return found->second.keys;
    }
  }
  const std::optional<json> secret = client_.get(collection("/api/v1", ns, "secrets") + "/" + name);
  std::lock_guard lock(secrets_mutex_);
  if (!secret) {
    found_secrets_.erase(key);
    return std::nullopt;
  }
  std::set<std::string> keys;  // the names only: no Secret value is kept
  const json data = secret->value("data", json::object());
  for (const auto& [k, v] : data.items()) keys.insert(k);
  found_secrets_[key] = {keys, now + kSecretFoundFor};
  return keys;
}

// The Secrets the StopMonitor's Jobs read, and the keys they read of them:
// what is missing, one line each naming the field that refers to it.
std::vector<std::string> Reconciler::missing_secrets(const std::string& ns, const StopMonitorSpec& spec) {
  struct Use {
    std::string field;
    std::string name;
    std::string key;
  };
  const auto& credentials = spec.exchange.credentials_secret_ref;
  std::vector<Use> uses = {
      {"spec.exchange.credentialsSecretRef", credentials.name, credentials.api_key_key},
      {"spec.exchange.credentialsSecretRef", credentials.name, credentials.api_secret_key},
      {"spec.database.secretRef", spec.database.name, spec.database.key},
  };
  if (spec.rabbitmq) uses.push_back({"spec.rabbitmq.secretRef", spec.rabbitmq->name, spec.rabbitmq->key});
  std::map<std::string, std::optional<std::set<std::string>>> secrets;
  std::vector<std::string> missing;
  // A Secret, or a key, found missing is asked for again at once: it may have
  // been made since it was last seen.
  for (const Use& use : uses) {
    if (!secrets.count(use.name)) {
      auto keys = secret_keys(ns, use.name, false);
      bool complete = keys.has_value();
      for (const Use& other : uses) {
        if (keys && other.name == use.name && keys->count(other.key) == 0) complete = false;
      }
      if (!complete) keys = secret_keys(ns, use.name, true);
      secrets.emplace(use.name, std::move(keys));
    }
    const auto found = secrets.find(use.name);
    const std::optional<std::set<std::string>>& keys = found->second;
    if (!keys) {
      const std::string line = "Secret " + ns + "/" + use.name + " not found (" + use.field + ")";
      if (std::find(missing.begin(), missing.end(), line) == missing.end()) missing.push_back(line);
    } else if (keys->count(use.key) == 0) {
      missing.push_back("Secret " + ns + "/" + use.name + " has no key " + use.key + " (" + use.field + ")");
    }
  }
  return missing;
}

ReconcileResult Reconciler::reconcile(const std::string& ns, const std::string& name) {
  ReconcileResult result;
  const std::string monitors = collection("/apis/backstop.dev/v1alpha1", ns, "stopmonitors");
  const std::string path = monitors + "/" + name;
  auto monitor = read(caches_.monitors, monitors, ns, name);
  if (!monitor) return result;  // deleted: its objects go with it (garbage collection)
  result.found = true;
  const std::int64_t generation = (*monitor)["metadata"].value("generation", 1);
  json status = monitor->value("status", json::object());
  const std::string now = now_();
  bool status_changed = false;

  Desired desired;
  std::vector<std::string> missing;  // Secrets (or their keys) the Jobs need
  try {
    const StopMonitor parsed = parse_stop_monitor(*monitor);
    images_.check(parsed.spec.image);
    desired = desired_objects(parsed);
    missing = missing_secrets(ns, parsed.spec);
  } catch (const InvalidSpec& e) {
    // Nothing half-applied: report and stop here until the spec changes.
    result.invalid = true;
    result.message = e.what();
    const bool news = set_condition(status, "InvalidSpec", "True", "InvalidSpec", e.what(), generation, now);
    status_changed |= news;
    status_changed |= set_condition(status, "Ready", "False", "InvalidSpec", e.what(), generation, now);
    if (news && events_ != nullptr) events_->record(*monitor, "Warning", "InvalidSpec", e.what());
  }
  if (!result.invalid) {
    // What exists under every name this monitor owns or may have owned.
    std::vector<std::string> cronjob_names = names_of(desired.cronjobs);
    std::vector<std::string> deployment_names = names_of(desired.deployments);
    for (const std::string& gone : desired.absent) {
      (gone == name + "-stream" ? deployment_names : cronjob_names).push_back(gone);
    }
    // What exists under these names (absent ones are not in the maps).
    std::map<std::string, json> cronjobs, deployments;
    for (const std::string& n : cronjob_names) {
      if (auto o = read(caches_.cronjobs, collection("/apis/batch/v1", ns, "cronjobs"), ns, n)) cronjobs[n] = *o;
    }
    for (const std::string& n : deployment_names) {
      if (auto o = read(caches_.deployments, collection("/apis/apps/v1", ns, "deployments"), ns, n)) {
        deployments[n] = *o;
      }
    }
    // An object the API server refuses (422 Invalid, 400) is not retried with
    // backoff: the same object would be refused again. It is reported on the
    // StopMonitor with the server's message; a spec change or the resync retries.
    std::vector<std::string> rejected;
    // A name the caches do not know may still be taken: the informers see only
    // the objects this controller labels. Its create answers 409 AlreadyExists;
    // the object is then read from the API server and the plan made again
    // (a NameConflict if another owns it).
    std::vector<std::pair<std::string, std::string>> taken;  // resource, name
    // One Event for what a reconcile created (a cold start creates three
    // CronJobs per StopMonitor); updates and deletes, rare, one each with why.
    std::vector<std::string> created;
    const auto record_created = [&] {
      if (created.empty() || events_ == nullptr) return;
      std::string list;
      for (const std::string& c : created) list += (list.empty() ? "" : ", ") + c;
      events_->record(*monitor, "Normal", "Created", "Created " + list);
      created.clear();
    };
    Plan p = plan(*monitor, desired, cronjobs, deployments);
    try {
      for (int round = 0; round < 2; ++round) {
        for (const Action& a : p.actions) {
          const std::string api = a.resource == "cronjobs" ? "/apis/batch/v1" : "/apis/apps/v1";
          const std::string kind = a.resource == "cronjobs" ? "CronJob" : "Deployment";
          kube::ObjectCache* cache = a.resource == "cronjobs" ? caches_.cronjobs : caches_.deployments;
          std::map<std::string, json>& live = a.resource == "cronjobs" ? cronjobs : deployments;
          const auto written = [&](const json& answer) {
            live[a.name] = answer;
            if (cache != nullptr) cache->written(answer);
          };
          try {
            switch (a.kind) {
              case Action::Kind::kCreate:
                written(client_.create(collection(api, ns, a.resource), a.object));
                ++result.created;
                created.push_back(kind + " " + a.name);
                break;
              case Action::Kind::kUpdate:
                written(client_.replace(collection(api, ns, a.resource) + "/" + a.name, a.object));  // 409: requeue
                ++result.updated;
                if (events_ != nullptr) {
                  events_->record(*monitor, "Normal", "Updated",
                                  "Updated " + kind + " " + a.name + " (" + a.reason + ")");
                }
                break;
              case Action::Kind::kDelete:
                client_.remove(collection(api, ns, a.resource) + "/" + a.name);
                live.erase(a.name);
                if (cache != nullptr) cache->removed(ns, a.name);
                ++result.deleted;
                if (events_ != nullptr) {
                  events_->record(*monitor, "Normal", "Deleted",
                                  "Deleted " + kind + " " + a.name + " (" + a.reason + ")");
                }
                break;
            }
          } catch (const kube::ApiError& e) {
            if (a.kind == Action::Kind::kCreate && e.code() == 409 && round == 0) {
              taken.emplace_back(a.resource, a.name);
              continue;
            }
            if (e.code() != 422 && e.code() != 400) throw;
            rejected.push_back(kind + " " + a.name + ": " + e.what());
          }
        }
        if (taken.empty()) break;
        for (const auto& [resource, taken_name] : taken) {
          const std::string api = resource == "cronjobs" ? "/apis/batch/v1" : "/apis/apps/v1";
          std::map<std::string, json>& live = resource == "cronjobs" ? cronjobs : deployments;
          if (auto o = client_.get(collection(api, ns, resource) + "/" + taken_name)) live[taken_name] = *o;
        }
        taken.clear();
        p = plan(*monitor, desired, cronjobs, deployments);
      }
    } catch (...) {
      record_created();  // what was created before the failure
      throw;
    }
    record_created();
    status_changed |= set_condition(status, "InvalidSpec", "False", "Valid", "", generation, now);
    // The objects are applied all the same when Secrets are missing: once they
    // exist, the Jobs run (the manager looks again soon: no watch on Secrets).
    result.secrets_missing = !missing.empty();
    std::string missing_message;
    for (const std::string& m : missing) missing_message += (missing_message.empty() ? "" : "; ") + m;
    if (result.secrets_missing) {
      const bool news =
          set_condition(status, "SecretsMissing", "True", "SecretsMissing", missing_message, generation, now);
      status_changed |= news;
      if (news && events_ != nullptr) events_->record(*monitor, "Warning", "SecretsMissing", missing_message);
    } else {
      status_changed |= set_condition(status, "SecretsMissing", "False", "SecretsFound", "", generation, now);
    }
    if (!rejected.empty()) {
      result.rejected = true;
      result.message = "the API server refused ";
      for (std::size_t i = 0; i < rejected.size(); ++i) result.message += (i == 0 ? "" : "; ") + rejected[i];
      const bool news = set_condition(status, "Degraded", "True", "Rejected", result.message, generation, now);
      status_changed |= news;
      if (news && events_ != nullptr) events_->record(*monitor, "Warning", "Rejected", result.message);
      status_changed |= set_condition(status, "Ready", "False", "Rejected", result.message, generation, now);
    } else if (!p.conflicts.empty()) {
      std::string names;
      for (const auto& c : p.conflicts) names += (names.empty() ? "" : ", ") + c;
      result.message = "objects with these names exist and are not owned by this StopMonitor: " + names;
      const bool news = set_condition(status, "Degraded", "True", "NameConflict", result.message, generation, now);
      status_changed |= news;
      if (news && events_ != nullptr) events_->record(*monitor, "Warning", "NameConflict", result.message);
      status_changed |= set_condition(status, "Ready", "False", "NameConflict", result.message, generation, now);
    } else if (result.secrets_missing) {
      result.message = missing_message;
      status_changed |= set_condition(status, "Degraded", "False", "Reconciled", "", generation, now);
      status_changed |= set_condition(status, "Ready", "False", "SecretsMissing", result.message, generation, now);
    } else {
      result.message = std::to_string(desired.cronjobs.size()) + " CronJobs" +
                       (desired.deployments.empty() ? "" : " and the stream Deployment") + " in place";
      status_changed |= set_condition(status, "Degraded", "False", "Reconciled", "", generation, now);
      status_changed |= set_condition(status, "Ready", "True", "Reconciled", result.message, generation, now);
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
    if (!owned.empty() && owned[0].contains("lastScheduleTime"))
      status["lastScheduleTime"] = owned[0]["lastScheduleTime"];
    if (!owned.empty() && owned[0].contains("lastSuccessfulTime"))
      status["lastSuccessfulTime"] = owned[0]["lastSuccessfulTime"];
  }
  if (status.value("observedGeneration", std::int64_t{0}) != generation) {
    status["observedGeneration"] = generation;
    status_changed = true;
  }
  if (status_changed) {
    json updated = *monitor;
    updated["status"] = status;
    const json answer = client_.replace_status(path, updated);  // 409 if the StopMonitor changed meanwhile: requeue
    if (caches_.monitors != nullptr) caches_.monitors->written(answer);
  }
  return result;
}

}  // namespace backstop::controller
