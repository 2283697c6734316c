// An informer's store, as client-go's cache.Store: the objects of one resource
// as the last list and the watch events since say they are, by namespace/name.
// The controller's workers read from it instead of asking the API server, and
// write through it what the API server answered to their own writes, so that
// the reconcile that the write's own watch event triggers does not act on the
// object as it was before. A stale read is safe: every write carries the
// resourceVersion it was based on (409 and a requeue if the object changed) or
// is a create (409 AlreadyExists, a requeue, and the watch event catches up).
#pragma once

#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace backstop::kube {

using json = nlohmann::json;

class ObjectCache {
 public:
  // A list's items: everything else is forgotten.
  void replace(const json& items);
  // A watch event: ADDED / MODIFIED keep the object, DELETED forgets it.
  // False when it tells nothing new: the cache holds the object at this
  // resourceVersion already (the echo of a write this process made).
  bool apply(const std::string& type, const json& object);
  // What the API server answered to a create or an update.
  void written(const json& object);
  // After a delete.
  void removed(const std::string& namespace_name, const std::string& name);

  [[nodiscard]] std::optional<json> get(const std::string& namespace_name, const std::string& name) const;
  [[nodiscard]] std::size_t size() const;

 private:
  static std::string key_of(const json& object);

  // Kept serialized (CBOR): a parsed object takes several times the memory,
  // and a controller reads far fewer objects than it caches.
  struct Stored {
    std::string resource_version;
    std::vector<std::uint8_t> cbor;
  };
  static Stored store(const json& object);

  mutable std::mutex mutex_;
  std::unordered_map<std::string, Stored> objects_;
};

}  // namespace backstop::kube
