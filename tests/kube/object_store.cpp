#include "object_store.h"

#include <cstdio>
#include <ctime>
#include <fstream>
#include <random>
#include <set>
#include <utility>

namespace backstop::testing {

using nlohmann::json;

namespace {

std::string now_rfc3339() {
  const std::time_t t = std::time(nullptr);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buffer;
}

std::string new_uid() {
  static std::mt19937_64 random{std::random_device{}()};
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%08x-%04x-4%03x-a%03x-%012llx", static_cast<unsigned>(random()),
                static_cast<unsigned>(random() & 0xffff), static_cast<unsigned>(random() & 0xfff),
                static_cast<unsigned>(random() & 0xfff), static_cast<unsigned long long>(random() & 0xffffffffffffULL));
  return buffer;
}

// A metadata string field, "" when absent or not a string. Read through find()
// rather than json::value(): GCC 12 reports a false -Wnull-dereference inside
// nlohmann's value() here (as in pkg/controller/plan.cpp).
std::string metadata_string(const json& object, const char* field) {
  const json& metadata = object.at("metadata");
  const auto it = metadata.find(field);
  return it != metadata.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string ObjectStore::key(const Resource& r, const std::string& ns, const std::string& name) {
  return r.group + "/" + r.plural + "/" + (r.namespaced ? ns : "") + "/" + name;
}

const json* ObjectStore::find(const std::string& key) const {
  const auto it = objects_.find(key);
  return it == objects_.end() ? nullptr : &it->second;
}

json ObjectStore::stamp(json object, const Resource& r, const std::string& ns) {
  json& m = object["metadata"];
  m["uid"] = new_uid();
  m["creationTimestamp"] = now_rfc3339();
  m["resourceVersion"] = std::to_string(++revision_);
  m["generation"] = 1;
  if (r.namespaced) m["namespace"] = ns;
  object["apiVersion"] = r.group_version();
  object["kind"] = r.kind;
  return object;
}

void ObjectStore::record(const std::string& type, const Resource& r, const json& object) {
  history_.push_back({revision_, type, r.group_plural(), metadata_string(object, "namespace"), object});
  while (history_.size() > 10000) {
    compacted_ = history_.front().revision;
    history_.pop_front();
  }
  changed_.notify_all();
}

const json& ObjectStore::create(const std::string& key, json object, const Resource& r, const std::string& ns) {
  json& stored = objects_[key] = stamp(std::move(object), r, ns);
  record("ADDED", r, stored);
  return stored;
}

json ObjectStore::preview(json object, const Resource& r, const std::string& ns) const {
  json& m = object["metadata"];
  m["uid"] = new_uid();
  m["creationTimestamp"] = now_rfc3339();
  m.erase("resourceVersion");
  m["generation"] = 1;
  if (r.namespaced) m["namespace"] = ns;
  object["apiVersion"] = r.group_version();
  object["kind"] = r.kind;
  return object;
}

void ObjectStore::seed(const std::string& key, json object, const Resource& r, const std::string& ns) {
  objects_[key] = stamp(std::move(object), r, ns);
}

const json& ObjectStore::update(const std::string& key, json next, const Resource& r) {
  json& stored = objects_.at(key);
  const bool modified = next != stored;
  if (modified) next["metadata"]["resourceVersion"] = std::to_string(++revision_);
  stored = std::move(next);
  if (modified) record("MODIFIED", r, stored);
  return stored;
}

void ObjectStore::remove(const std::string& key, const Resource& r) {
  json object = objects_.at(key);
  object["metadata"]["resourceVersion"] = std::to_string(++revision_);
  objects_.erase(key);
  record("DELETED", r, object);
}

void ObjectStore::collect_garbage(const ResourceRegistry& registry) {
  for (bool again = true; again;) {
    again = false;
    std::set<std::string> uids;
    for (const auto& [k, object] : objects_) uids.insert(metadata_string(object, "uid"));
    for (const auto& [k, object] : objects_) {
      const json& owners = object.at("metadata").value("ownerReferences", json::array());
      if (owners.empty()) continue;
      bool orphaned = true;
      for (const auto& owner : owners) orphaned = orphaned && uids.count(owner.value("uid", "")) == 0;
      if (!orphaned) continue;
      const std::string doomed = k;  // remove() erases the node `k` lives in
      remove(doomed, registry.at(doomed.substr(0, doomed.find('/', doomed.find('/') + 1))));
      again = true;
      break;
    }
  }
}

long ObjectStore::compact() {
  compacted_ = revision_;
  history_.clear();
  return revision_;
}

void ObjectStore::advance(long by) {
  revision_ += by;
  ++watch_epoch_;
  changed_.notify_all();
}

bool ObjectStore::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return false;
  const json state = json::parse(in);
  revision_ = state.at("revision");
  compacted_ = revision_;
  for (const auto& [k, object] : state.at("objects").items()) objects_[k] = object;
  return true;
}

void ObjectStore::save(const std::string& path) const {
  json objects = json::object();
  for (const auto& [k, object] : objects_) objects[k] = object;
  std::ofstream(path + ".tmp") << json{{"revision", revision_}, {"objects", objects}}.dump();
  std::rename((path + ".tmp").c_str(), path.c_str());
}

}  // namespace backstop::testing
