#include "kube/object_cache.h"

namespace backstop::kube {

std::string ObjectCache::key_of(const json& object) {
  const json& meta = object.at("metadata");
  return meta.value("namespace", "") + "/" + meta.at("name").get<std::string>();
}

ObjectCache::Stored ObjectCache::store(const json& object) {
  return {object["metadata"].value("resourceVersion", ""), json::to_cbor(object)};
}

void ObjectCache::replace(const json& items) {
  std::unordered_map<std::string, Stored> fresh;
  for (const json& item : items) fresh[key_of(item)] = store(item);
  std::lock_guard lock(mutex_);
  objects_.swap(fresh);
}

bool ObjectCache::apply(const std::string& type, const json& object) {
  if (type != "ADDED" && type != "MODIFIED" && type != "DELETED") return true;  // BOOKMARK: no object
  const std::string key = key_of(object);
  std::lock_guard lock(mutex_);
  if (type == "DELETED") {
    objects_.erase(key);
    return true;
  }
  Stored stored = store(object);
  const auto found = objects_.find(key);
  if (found != objects_.end() && !stored.resource_version.empty() &&
      found->second.resource_version == stored.resource_version) {
    return false;
  }
  objects_[key] = std::move(stored);
  return true;
}

void ObjectCache::written(const json& object) { apply("MODIFIED", object); }

void ObjectCache::removed(const std::string& namespace_name, const std::string& name) {
  std::lock_guard lock(mutex_);
  objects_.erase(namespace_name + "/" + name);
}

std::optional<json> ObjectCache::get(const std::string& namespace_name, const std::string& name) const {
  std::vector<std::uint8_t> cbor;
  {
    std::lock_guard lock(mutex_);
    const auto found = objects_.find(namespace_name + "/" + name);
    if (found == objects_.end()) return std::nullopt;
    cbor = found->second.cbor;
  }
  return json::from_cbor(cbor);
}

std::size_t ObjectCache::size() const {
  std::lock_guard lock(mutex_);
  return objects_.size();
}

}  // namespace backstop::kube
