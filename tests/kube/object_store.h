// The Kubernetes API test server's storage, etcd's part: the objects by key,
// the one revision counter every write moves (an object's resourceVersion is
// the revision of its last write), server-owned metadata stamped on create
// (uid, creationTimestamp, resourceVersion, generation 1), the history of
// changes watches read (the last 10,000 events; older revisions are
// "compacted"), ownerReference garbage collection, and the state file that
// outlives a restart as etcd does (the history does not: a watch from before a
// restart gets 410 Gone and relists).
//
// Not synchronized: every call is made under the server's mutex, and a watch
// waits on changed() with that same mutex held.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "resources.h"

namespace backstop::testing {

// One change, as a watch reports it.
struct WatchEvent {
  long revision = 0;
  std::string type;      // ADDED, MODIFIED, DELETED
  std::string resource;  // group/plural
  std::string ns;
  nlohmann::json object;
};

class ObjectStore {
 public:
  // "group/plural/namespace/name", the namespace empty for cluster-scoped kinds.
  static std::string key(const Resource& r, const std::string& ns, const std::string& name);

  [[nodiscard]] const std::map<std::string, nlohmann::json>& objects() const { return objects_; }
  [[nodiscard]] bool contains(const std::string& key) const { return objects_.count(key) != 0; }
  // nullptr when absent.
  [[nodiscard]] const nlohmann::json* find(const std::string& key) const;

  // Stamps the server-owned metadata and stores the object under `key`: an
  // ADDED event. seed() does the same without the event (what exists from the
  // start, as the default namespace).
  const nlohmann::json& create(const std::string& key, nlohmann::json object, const Resource& r, const std::string& ns);
  void seed(const std::string& key, nlohmann::json object, const Resource& r, const std::string& ns);
  // What create() would store, stored nowhere (?dryRun=All): the server-owned
  // metadata but no resourceVersion, no event, the revision unchanged.
  [[nodiscard]] nlohmann::json preview(nlohmann::json object, const Resource& r, const std::string& ns) const;
  // Replaces a stored object. When it differs, its resourceVersion moves on and
  // a MODIFIED event is recorded; an identical write is a no-op (no event, the
  // resourceVersion kept).
  const nlohmann::json& update(const std::string& key, nlohmann::json next, const Resource& r);
  // Deletes with a DELETED event carrying a new resourceVersion.
  void remove(const std::string& key, const Resource& r);
  // The garbage collector: objects whose every owner (ownerReferences by uid)
  // is gone are deleted too, until nothing more goes.
  void collect_garbage(const ResourceRegistry& registry);

  [[nodiscard]] long revision() const { return revision_; }
  // Watches from a resourceVersion before this get 410 Gone.
  [[nodiscard]] long compacted() const { return compacted_; }
  [[nodiscard]] const std::deque<WatchEvent>& history() const { return history_; }
  // Open watches end (without a bookmark) when it moves.
  [[nodiscard]] long watch_epoch() const { return watch_epoch_; }
  // Notified on every recorded event and when watches are cut off.
  std::condition_variable& changed() { return changed_; }

  // Forgets the history, as etcd compaction does; returns the revision.
  long compact();
  // Moves the revision on by `by` (writes of other clients to resources nobody
  // here watches) and cuts off every open watch, as an API server restart does.
  void advance(long by);

  // Reads the objects and the revision written by save(); false when there is
  // no such file. The history starts empty (compacted at that revision).
  bool load(const std::string& path);
  void save(const std::string& path) const;

 private:
  nlohmann::json stamp(nlohmann::json object, const Resource& r, const std::string& ns);
  void record(const std::string& type, const Resource& r, const nlohmann::json& object);

  std::map<std::string, nlohmann::json> objects_;  // key() -> object
  long revision_ = 1;
  std::deque<WatchEvent> history_;
  long compacted_ = 0;
  long watch_epoch_ = 0;
  std::condition_variable changed_;
};

}  // namespace backstop::testing
