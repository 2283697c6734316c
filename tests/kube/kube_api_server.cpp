// kube-api-test-server: a test fixture (not product code) that speaks enough of
// the Kubernetes API server's HTTP + JSON for the real kubectl and Backstop's
// controller: version and discovery (/api, /apis, resource lists, including the
// groups CustomResourceDefinitions add), OpenAPI v3 (CR schemas taken from their
// CRD, as the real server publishes them, so kubectl validates StopMonitors
// client-side; built-in kinds get permissive schemas), create / get / list /
// update (409 on a stale resourceVersion) / JSON merge patch / delete, generation
// bumped on spec changes only, the status subresource, and Table output with a
// CRD's printer columns for `kubectl get`.
//
// Watches: ?watch=true from a resourceVersion (JSON lines: ADDED, MODIFIED,
// DELETED, BOOKMARK), 410 Gone as an ERROR event once POST /admin/compact
// dropped the history a watch asks for.
//
// Deleting an object deletes its dependents (ownerReferences), unless the
// propagation policy is Orphan.
//
// Label selectors on list and watch: equality (k=v, k==v, k!=v) and existence
// (k, !k) terms joined by commas; set-based terms (in, notin) get 400.
//
// TLS: with --tls-cert and --tls-key it serves https (as every real API server).
//
// CustomResourceDefinitions are validated on create and on update (not on the
// status subresource) as the real apiextensions-apiserver validates them: a CRD
// a real cluster refuses (say, a root `metadata` with a description: "must not
// specify anything other than name and generateName") gets the same 422 Invalid
// Status here, field paths and messages included, so kubectl prints the same
// error. The rules, and those not checked (CEL compilation of
// x-kubernetes-validations among them): crd_validation.cpp.
//
// POST /admin/delay?resource=leases&ms=N: every later request on that resource
// waits N ms before it is answered (an API server that hangs); ms=0 ends it.
//
// Not yet: field selectors, server-side
// strict field validation, validation of custom resources against their schema
// (only defaults are applied), validation of built-in kinds, strategic merge
// patch semantics for lists (merged as a JSON merge patch), protobuf bodies
// (415: clients send JSON).
//
//   kube-api-test-server [--port N] [--port-file FILE] [--state-file FILE]
//                        [--tls-cert PEM --tls-key PEM]
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "crd_validation.h"

namespace {

using backstop::testing::crd_invalid_status;
using backstop::testing::FieldError;
using backstop::testing::validate_crd;
using backstop::testing::validate_crd_update;
using nlohmann::json;

struct Resource {
  std::string group, version, plural, singular, kind;
  bool namespaced = true;
  std::vector<std::string> short_names;
  bool status_subresource = false;
  json printer_columns = json::array();
  json schema;  // OpenAPI v3 schema of the kind
  [[nodiscard]] std::string group_version() const { return group.empty() ? version : group + "/" + version; }
};

// A parsed label selector: each term a key, an operator ("=", "!=", "exists",
// "!exists") and a value.
struct Selector {
  struct Term {
    std::string key, op, value;
  };
  std::vector<Term> terms;

  // Throws std::invalid_argument for what this server does not understand.
  static Selector parse(const std::string& text) {
    Selector out;
    std::size_t start = 0;
    while (start < text.size()) {
      std::size_t end = text.find(',', start);
      if (end == std::string::npos) end = text.size();
      std::string term = text.substr(start, end - start);
      start = end + 1;
      if (term.empty()) continue;
      if (term.find('(') != std::string::npos || term.find(" in ") != std::string::npos ||
          term.find(" notin ") != std::string::npos) {
        throw std::invalid_argument("set-based selector terms are not supported by this test server: " + term);
      }
      if (const auto at = term.find("!="); at != std::string::npos) {
        out.terms.push_back({term.substr(0, at), "!=", term.substr(at + 2)});
      } else if (const auto eq = term.find('='); eq != std::string::npos) {
        const std::size_t value_at = term.compare(eq, 2, "==") == 0 ? eq + 2 : eq + 1;
        out.terms.push_back({term.substr(0, eq), "=", term.substr(value_at)});
      } else if (term[0] == '!') {
        out.terms.push_back({term.substr(1), "!exists", ""});
      } else {
        out.terms.push_back({term, "exists", ""});
      }
    }
    return out;
  }

  [[nodiscard]] bool matches(const json& object) const {
    const json labels =
        object.contains("metadata") ? object["metadata"].value("labels", json::object()) : json::object();
    for (const Term& t : terms) {
      const bool has = labels.contains(t.key);
      const std::string value = has && labels[t.key].is_string() ? labels[t.key].get<std::string>() : "";
      if (t.op == "=" && (!has || value != t.value)) return false;
      if (t.op == "!=" && has && value == t.value) return false;
      if (t.op == "exists" && !has) return false;
      if (t.op == "!exists" && has) return false;
    }
    return true;
  }
};

std::string now_rfc3339() {
  const std::time_t t = std::time(nullptr);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buffer;
}

std::time_t parse_rfc3339(const std::string& text) {
  std::tm tm{};
  std::istringstream in(text);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
  return in.fail() ? 0 : timegm(&tm);
}

std::string human_age(const std::string& timestamp) {
  const std::time_t t = parse_rfc3339(timestamp);
  if (t == 0) return "<unknown>";
  const long s = static_cast<long>(std::time(nullptr) - t);
  if (s < 120) return std::to_string(std::max(0L, s)) + "s";
  if (s < 7200) return std::to_string(s / 60) + "m";
  if (s < 172800) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string new_uid() {
  static std::mt19937_64 random{std::random_device{}()};
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%08x-%04x-4%03x-a%03x-%012llx", static_cast<unsigned>(random()),
                static_cast<unsigned>(random() & 0xffff), static_cast<unsigned>(random() & 0xfff),
                static_cast<unsigned>(random() & 0xfff), static_cast<unsigned long long>(random() & 0xffffffffffffULL));
  return buffer;
}

// RFC 7386 JSON merge patch.
void merge_patch(json& target, const json& patch) {
  if (!patch.is_object()) {
    target = patch;
    return;
  }
  if (!target.is_object()) target = json::object();
  for (const auto& [key, value] : patch.items()) {
    if (value.is_null()) {
      target.erase(key);
    } else {
      merge_patch(target[key], value);
    }
  }
}

// Structural defaulting, as the API server does for custom resources: a
// missing property with a default gets it, then defaults apply inside objects.
void apply_defaults(json& value, const json& schema) {
  if (!schema.is_object()) return;
  if (value.is_object() && schema.contains("properties")) {
    for (const auto& [name, property] : schema["properties"].items()) {
      if (!value.contains(name) && property.contains("default")) value[name] = property["default"];
      if (value.contains(name)) apply_defaults(value[name], property);
    }
  }
  if (value.is_array() && schema.contains("items")) {
    for (auto& item : value) apply_defaults(item, schema["items"]);
  }
}

// The JSONPath subset printer columns use: .a.b, .a[0], .a[?(@.k=="v")].b
json json_path(const json& object, const std::string& path) {
  json current = object;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '.') {
      std::size_t end = path.find_first_of(".[", i + 1);
      const std::string key = path.substr(i + 1, end == std::string::npos ? std::string::npos : end - i - 1);
      if (!current.is_object() || !current.contains(key)) return nullptr;
      current = current[key];
      i = end == std::string::npos ? path.size() : end;
    } else if (path[i] == '[') {
      const std::size_t end = path.find(']', i);
      const std::string inner = path.substr(i + 1, end - i - 1);
      if (!current.is_array()) return nullptr;
      if (inner.rfind("?(@.", 0) == 0) {
        const std::size_t eq = inner.find("==");
        const std::string field = inner.substr(4, eq - 4);
        std::string value = inner.substr(eq + 2, inner.size() - eq - 3);
        if (!value.empty() && (value.front() == '"' || value.front() == '\''))
          value = value.substr(1, value.size() - 2);
        json found = nullptr;
        for (const auto& item : current) {
          if (item.is_object() && item.contains(field) && item[field].is_string() && item[field] == value) {
            found = item;
            break;
          }
        }
        if (found.is_null()) return nullptr;
        current = found;
      } else {
        const std::size_t index = std::stoul(inner);
        if (index >= current.size()) return nullptr;
        current = current[index];
      }
      i = end + 1;
    } else {
      return nullptr;
    }
  }
  return current;
}

// "/apis/batch/v1/namespaces/x/cronjobs" -> {"apis", "batch", "v1", ...}
std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  for (std::size_t i = 1, j; i <= path.size(); i = j + 1) {
    j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) parts.push_back(path.substr(i, j - i));
  }
  return parts;
}

json status(int code, const std::string& reason, const std::string& message) {
  return {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
          {"status", "Failure"}, {"message", message}, {"reason", reason},
          {"code", code}};
}

class Server {
 public:
  Server() {
    const json open = {{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}};
    add({"", "v1", "namespaces", "namespace", "Namespace", false, {"ns"}, true, json::array(), open});
    add({"", "v1", "secrets", "secret", "Secret", true, {}, false, json::array(), open});
    add({"", "v1", "configmaps", "configmap", "ConfigMap", true, {"cm"}, false, json::array(), open});
    add({"", "v1", "events", "event", "Event", true, {"ev"}, false, json::array(), open});
    add({"", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true, {"sa"}, false, json::array(), open});
    add({"batch", "v1", "cronjobs", "cronjob", "CronJob", true, {"cj"}, true, json::array(), open});
    add({"batch", "v1", "jobs", "job", "Job", true, {}, true, json::array(), open});
    add({"apps", "v1", "deployments", "deployment", "Deployment", true, {"deploy"}, true, json::array(), open});
    add({"coordination.k8s.io", "v1", "leases", "lease", "Lease", true, {}, false, json::array(), open});
    add({"apiextensions.k8s.io",
         "v1",
         "customresourcedefinitions",
         "customresourcedefinition",
         "CustomResourceDefinition",
         false,
         {"crd", "crds"},
         true,
         json::array(),
         open});
    objects_["/namespaces//default"] =
        stamp({{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "default"}}}},
              resources_.at("/namespaces"), "");
  }

  // Keeps the objects in `path` (written after every change, read at start),
  // as etcd outlives an API server restart. The watch history does not: a
  // watch from before the restart gets 410 Gone and relists.
  void persist_to(const std::string& path) {
    std::lock_guard lock(mutex_);
    state_file_ = path;
    std::ifstream in(path);
    if (!in) return;
    const json state = json::parse(in);
    revision_ = state.at("revision");
    compacted_ = revision_;
    for (const auto& [k, object] : state.at("objects").items()) objects_[k] = object;
    for (const auto& [k, object] : objects_) {
      if (k.rfind("apiextensions.k8s.io/customresourcedefinitions/", 0) == 0) register_crd(object);
    }
  }

  void handle(const httplib::Request& req, httplib::Response& res) {
    if (req.method == "POST" && req.path == "/admin/delay") {
      set_delay(req, res);
      return;
    }
    hold_if_delayed(req);
    if (req.method == "GET" && (req.get_param_value("watch") == "true" || req.get_param_value("watch") == "1")) {
      watch(req, res);
      return;
    }
    std::lock_guard lock(mutex_);
    json body;
    int code = 200;
    try {
      code = route(req, body);
    } catch (const json::exception& e) {
      code = 400;
      body = status(400, "BadRequest", std::string("invalid JSON: ") + e.what());
    }
    res.status = code;
    res.set_content(body.dump(), "application/json");
    if (!state_file_.empty() && req.method != "GET" && code < 300) save();
  }

  void save() const {
    json objects = json::object();
    for (const auto& [k, object] : objects_) objects[k] = object;
    std::ofstream(state_file_ + ".tmp") << json{{"revision", revision_}, {"objects", objects}}.dump();
    std::rename((state_file_ + ".tmp").c_str(), state_file_.c_str());
  }

 private:
  // Test control: POST /admin/delay?resource=leases&ms=N holds every later
  // request whose path names that resource (a path segment) for N ms before
  // answering, as a hung API server does; ms=0 lets them all go at once.
  void set_delay(const httplib::Request& req, httplib::Response& res) {
    {
      const std::lock_guard lock(delay_mutex_);
      delayed_resource_ = req.get_param_value("resource");
      delay_ms_ = req.has_param("ms") ? std::stol(req.get_param_value("ms")) : 0;
    }
    delay_changed_.notify_all();
    res.set_content(json{{"resource", delayed_resource_}, {"ms", delay_ms_}}.dump(), "application/json");
  }

  void hold_if_delayed(const httplib::Request& req) {
    std::unique_lock lock(delay_mutex_);
    if (delay_ms_ <= 0 || delayed_resource_.empty()) return;
    const std::vector<std::string> parts = split_path(req.path);
    if (std::find(parts.begin(), parts.end(), delayed_resource_) == parts.end()) return;
    delay_changed_.wait_for(lock, std::chrono::milliseconds(delay_ms_), [&] { return stopping_ || delay_ms_ <= 0; });
  }

  struct Event {
    long revision = 0;
    std::string type;      // ADDED, MODIFIED, DELETED
    std::string resource;  // group/plural
    std::string ns;
    json object;
  };

  void record(const std::string& type, const Resource& r, const json& object) {
    history_.push_back({revision_, type, r.group + "/" + r.plural, object["metadata"].value("namespace", ""), object});
    while (history_.size() > 10000) {
      compacted_ = history_.front().revision;
      history_.pop_front();
    }
    changed_.notify_all();
  }

  // GET ...?watch=true: the events after resourceVersion as JSON lines, until
  // timeoutSeconds; a resourceVersion older than the retained history gets an
  // ERROR event with 410 Gone (the client relists); with allowWatchBookmarks a
  // BOOKMARK carries the current resourceVersion before the stream ends.
  void watch(const httplib::Request& req, httplib::Response& res) {
    const std::vector<std::string> parts = split_path(req.path);
    std::string group, version, ns, plural;
    std::size_t at = 0;
    if (parts.size() >= 3 && parts[0] == "api") {
      version = parts[1];
      at = 2;
    } else if (parts.size() >= 4 && parts[0] == "apis") {
      group = parts[1];
      version = parts[2];
      at = 3;
    }
    if (at != 0 && parts.size() == at + 3 && parts[at] == "namespaces") {
      ns = parts[at + 1];
      at += 2;
    }
    std::unique_lock lock(mutex_);
    const Resource* r = at != 0 && parts.size() == at + 1 ? find(group, version, parts[at]) : nullptr;
    if (r == nullptr) {
      res.status = 404;
      res.set_content(status(404, "NotFound", "the server could not find the requested resource").dump(),
                      "application/json");
      return;
    }
    const std::string resource = r->group + "/" + r->plural;
    const std::string kind = r->kind;
    const std::string api_version = r->group_version();
    Selector selector;
    try {
      selector = Selector::parse(req.get_param_value("labelSelector"));
    } catch (const std::invalid_argument& e) {
      res.status = 400;
      res.set_content(status(400, "BadRequest", e.what()).dump(), "application/json");
      return;
    }
    const std::string from_text = req.get_param_value("resourceVersion");
    long from = from_text.empty() ? 0 : std::stol(from_text);
    const bool bookmarks = req.get_param_value("allowWatchBookmarks") == "true";
    const int timeout = req.has_param("timeoutSeconds") ? std::stoi(req.get_param_value("timeoutSeconds")) : 1800;
    std::string initial;
    if (from == 0) {
      // "Any" version: the current objects as ADDED, then what follows.
      for (const auto& [k, object] : objects_) {
        if (k.rfind(resource + "/", 0) != 0) continue;
        if (!ns.empty() && object["metadata"].value("namespace", "") != ns) continue;
        if (!selector.matches(object)) continue;
        initial += json{{"type", "ADDED"}, {"object", object}}.dump() + "\n";
      }
      from = revision_;
    } else if (from < compacted_) {
      initial = json{{"type", "ERROR"},
                     {"object", status(410, "Expired",
                                       "too old resource version: " + std::to_string(from) + " (" +
                                           std::to_string(compacted_) + ")")}}
                    .dump() +
                "\n";
      res.status = 200;
      res.set_content(initial, "application/json");
      return;
    }
    const long epoch = watch_epoch_;
    lock.unlock();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
    auto sent = std::make_shared<long>(from);
    auto first = std::make_shared<std::string>(std::move(initial));
    res.status = 200;
    // The watch media type (also keeps cpp-httplib from gzip-buffering the stream).
    res.set_chunked_content_provider("application/json;stream=watch", [=, this](std::size_t, httplib::DataSink& sink) {
      if (!first->empty()) {
        sink.write(first->data(), first->size());
        first->clear();
      }
      std::unique_lock l(mutex_);
      changed_.wait_until(
          l, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(200)), [&] {
            return stopping_ || watch_epoch_ != epoch || (!history_.empty() && history_.back().revision > *sent);
          });
      if (watch_epoch_ != epoch) {  // cut off (see /admin/compact?advance)
        l.unlock();
        sink.done();
        return true;
      }
      std::string lines;
      for (const Event& e : history_) {
        if (e.revision <= *sent || e.resource != resource || (!ns.empty() && e.ns != ns)) continue;
        if (!selector.matches(e.object)) continue;
        lines += json{{"type", e.type}, {"object", e.object}}.dump() + "\n";
      }
      if (!history_.empty()) *sent = std::max(*sent, history_.back().revision);
      const bool end = stopping_ || std::chrono::steady_clock::now() >= deadline;
      if (end && bookmarks) {
        lines += json{{"type", "BOOKMARK"},
                      {"object",
                       {{"kind", kind},
                        {"apiVersion", api_version},
                        {"metadata", {{"resourceVersion", std::to_string(revision_)}}}}}}
                     .dump() +
                 "\n";
      }
      l.unlock();
      if (!lines.empty() && !sink.write(lines.data(), lines.size())) return false;
      if (end) sink.done();
      return true;
    });
  }

 public:
  // From a signal handler: no lock; open watches notice within 200 ms.
  void stop_watches() {
    stopping_ = true;
    const std::lock_guard lock(delay_mutex_);
    delay_changed_.notify_all();
  }

 private:
  void add(Resource r) {
    const std::string key = r.group + "/" + r.plural;
    versions_[r.group].insert(r.version);
    resources_[key] = std::move(r);
  }

  const Resource* find(const std::string& group, const std::string& version, const std::string& plural) const {
    const auto it = resources_.find(group + "/" + plural);
    if (it == resources_.end() || it->second.version != version) return nullptr;
    return &it->second;
  }

  json stamp(json object, const Resource& r, const std::string& ns) {
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

  static std::string key(const Resource& r, const std::string& ns, const std::string& name) {
    return r.group + "/" + r.plural + "/" + (r.namespaced ? ns : "") + "/" + name;
  }

  void remove(const std::string& k, const Resource& r) {
    json object = objects_.at(k);
    object["metadata"]["resourceVersion"] = std::to_string(++revision_);
    objects_.erase(k);
    record("DELETED", r, object);
  }

  // The garbage collector: objects whose every owner (ownerReferences by uid)
  // is gone are deleted too, until nothing more goes.
  void collect_garbage() {
    for (bool again = true; again;) {
      again = false;
      std::set<std::string> uids;
      for (const auto& [k, object] : objects_) uids.insert(object["metadata"].value("uid", ""));
      for (const auto& [k, object] : objects_) {
        const json& owners = object["metadata"].value("ownerReferences", json::array());
        if (owners.empty()) continue;
        bool orphaned = true;
        for (const auto& owner : owners) orphaned = orphaned && uids.count(owner.value("uid", "")) == 0;
        if (!orphaned) continue;
        const std::string resource = k.substr(0, k.find('/', k.find('/') + 1));
        remove(k, resources_.at(resource));
        again = true;
        break;
      }
    }
  }

  // A CRD was stored: serve its versions.
  void register_crd(const json& crd) {
    const json& spec = crd.at("spec");
    for (const auto& v : spec.at("versions")) {
      if (!v.value("served", true)) continue;
      Resource r;
      r.group = spec.at("group");
      r.version = v.at("name");
      r.plural = spec.at("names").at("plural");
      r.singular = spec.at("names").value("singular", "");
      r.kind = spec.at("names").at("kind");
      r.namespaced = spec.value("scope", "Namespaced") == "Namespaced";
      if (spec.at("names").contains("shortNames")) r.short_names = spec.at("names").at("shortNames");
      r.status_subresource = v.contains("subresources") && v["subresources"].contains("status");
      r.printer_columns = v.value("additionalPrinterColumns", json::array());
      r.schema = v.contains("schema") ? v["schema"]["openAPIV3Schema"] : json{{"type", "object"}};
      r.schema["properties"]["metadata"] = {{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}};
      add(std::move(r));
    }
  }

  json discovery_list(const std::string& group, const std::string& version) const {
    json resources = json::array();
    for (const auto& [k, r] : resources_) {
      if (r.group != group || r.version != version) continue;
      json entry = {{"name", r.plural},
                    {"singularName", r.singular},
                    {"namespaced", r.namespaced},
                    {"kind", r.kind},
                    {"verbs", {"create", "delete", "get", "list", "patch", "update", "watch"}}};
      if (!r.short_names.empty()) entry["shortNames"] = r.short_names;
      if (r.group == "backstop.dev") entry["categories"] = {"backstop"};
      resources.push_back(entry);
      if (r.status_subresource) {
        resources.push_back({{"name", r.plural + "/status"},
                             {"singularName", ""},
                             {"namespaced", r.namespaced},
                             {"kind", r.kind},
                             {"verbs", {"get", "patch", "update"}}});
      }
    }
    return {{"kind", "APIResourceList"},
            {"apiVersion", "v1"},
            {"groupVersion", group.empty() ? version : group + "/" + version},
            {"resources", resources}};
  }

  json openapi_document(const std::string& group, const std::string& version) const {
    json schemas = json::object();
    for (const auto& [k, r] : resources_) {
      if (r.group != group || r.version != version) continue;
      json schema = r.schema;
      schema["x-kubernetes-group-version-kind"] =
          json::array({{{"group", r.group}, {"version", r.version}, {"kind", r.kind}}});
      const std::string prefix = group.empty() ? "io.k8s.api.core." + version : group + "." + version;
      schemas[prefix + "." + r.kind] = schema;
    }
    // Operations that declare the fieldValidation query parameter: kubectl then
    // leaves validation to the server (?fieldValidation=Strict).
    json paths = json::object();
    for (const auto& [k, r] : resources_) {
      if (r.group != group || r.version != version) continue;
      const std::string base = (group.empty() ? "/api/" + version : "/apis/" + group + "/" + version) +
                               (r.namespaced ? "/namespaces/{namespace}/" : "/") + r.plural;
      const json gvk = {{"group", r.group}, {"version", r.version}, {"kind", r.kind}};
      const json field_validation = {
          {"name", "fieldValidation"}, {"in", "query"}, {"schema", {{"type", "string"}}}, {"uniqueItems", true}};
      paths[base] = {{"post",
                      {{"x-kubernetes-action", "post"},
                       {"x-kubernetes-group-version-kind", gvk},
                       {"parameters", json::array({field_validation})}}}};
      paths[base + "/{name}"] = {{"put",
                                  {{"x-kubernetes-action", "put"},
                                   {"x-kubernetes-group-version-kind", gvk},
                                   {"parameters", json::array({field_validation})}}},
                                 {"patch",
                                  {{"x-kubernetes-action", "patch"},
                                   {"x-kubernetes-group-version-kind", gvk},
                                   {"parameters", json::array({field_validation})}}}};
    }
    return {{"openapi", "3.0.0"},
            {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}},
            {"paths", paths},
            {"components", {{"schemas", schemas}}}};
  }

  json table(const Resource& r, const std::vector<json>& items) const {
    json columns = json::array(
        {{{"name", "Name"}, {"type", "string"}, {"format", "name"}, {"description", "Name"}, {"priority", 0}}});
    json printer = r.printer_columns;
    if (printer.empty())
      printer = json::array({{{"name", "Age"}, {"type", "date"}, {"jsonPath", ".metadata.creationTimestamp"}}});
    for (const auto& c : printer) {
      columns.push_back({{"name", c.at("name")},
                         {"type", c.value("type", "string")},
                         {"format", c.value("format", "")},
                         {"description", c.value("description", "")},
                         {"priority", c.value("priority", 0)}});
    }
    json rows = json::array();
    for (const json& item : items) {
      json cells = json::array({item["metadata"]["name"]});
      for (const auto& c : printer) {
        const json value = json_path(item, c.at("jsonPath").get<std::string>());
        if (value.is_null()) {
          cells.push_back(nullptr);
        } else if (c.value("type", "string") == "date" && value.is_string()) {
          cells.push_back(human_age(value.get<std::string>()));
        } else {
          cells.push_back(value);
        }
      }
      rows.push_back(
          {{"cells", cells},
           {"object",
            {{"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", item["metadata"]}}}});
    }
    return {{"kind", "Table"},
            {"apiVersion", "meta.k8s.io/v1"},
            {"metadata", {{"resourceVersion", std::to_string(revision_)}}},
            {"columnDefinitions", columns},
            {"rows", rows}};
  }

  int route(const httplib::Request& req, json& out) {
    const std::string& path = req.path;
    const bool wants_table = req.get_header_value("Accept").find("as=Table") != std::string::npos;
    // Test control: forget the retained history, as etcd compaction does
    // (watches from an older resourceVersion then get 410 Gone).
    // ?advance=N first moves the revision on by N (writes of other clients to
    // resources nobody here watches) and ends every open watch without a
    // bookmark, as an API server restart does: a watcher resuming from the
    // version it saw last is then told 410 Gone.
    if (req.method == "POST" && path == "/admin/compact") {
      if (req.has_param("advance")) {
        revision_ += std::stol(req.get_param_value("advance"));
        ++watch_epoch_;
        changed_.notify_all();
      }
      compacted_ = revision_;
      history_.clear();
      out = {{"compacted", revision_}};
      return 200;
    }
    if (req.method == "GET" && path == "/version") {
      out = {{"major", "1"}, {"minor", "32"}, {"gitVersion", "v1.32.0-backstop-test"}, {"platform", "linux/amd64"}};
      return 200;
    }
    if (req.method == "GET" && path == "/api") {
      out = {{"kind", "APIVersions"},
             {"versions", {"v1"}},
             {"serverAddressByClientCIDRs", {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", "127.0.0.1"}}}}};
      return 200;
    }
    if (req.method == "GET" && path == "/apis") {
      json groups = json::array();
      for (const auto& [group, versions] : versions_) {
        if (group.empty()) continue;
        json vs = json::array();
        for (const auto& v : versions) vs.push_back({{"groupVersion", group + "/" + v}, {"version", v}});
        groups.push_back({{"name", group}, {"versions", vs}, {"preferredVersion", vs[0]}});
      }
      out = {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}};
      return 200;
    }
    if (req.method == "GET" && path == "/openapi/v3") {
      json paths = json::object();
      for (const auto& [group, versions] : versions_) {
        for (const auto& v : versions) {
          const std::string gv = group.empty() ? "api/" + v : "apis/" + group + "/" + v;
          paths[gv] = {{"serverRelativeURL", "/openapi/v3/" + gv + "?hash=" + std::to_string(revision_)}};
        }
      }
      out = {{"paths", paths}};
      return 200;
    }
    const std::vector<std::string> parts = split_path(path);
    if (parts.size() >= 3 && parts[0] == "openapi" && parts[1] == "v3") {
      const bool core = parts[2] == "api";
      out = openapi_document(core ? "" : parts[3], core ? parts[3] : parts[4]);
      return 200;
    }
    std::string group, version;
    std::size_t at;
    if (!parts.empty() && parts[0] == "api" && parts.size() >= 2) {
      version = parts[1];
      at = 2;
    } else if (!parts.empty() && parts[0] == "apis" && parts.size() >= 3) {
      group = parts[1];
      version = parts[2];
      at = 3;
    } else if (!parts.empty() && parts[0] == "apis" && parts.size() == 2) {
      const auto it = versions_.find(parts[1]);
      if (it == versions_.end()) return (out = status(404, "NotFound", "group not found"), 404);
      json vs = json::array();
      for (const auto& v : it->second) vs.push_back({{"groupVersion", parts[1] + "/" + v}, {"version", v}});
      out = {{"kind", "APIGroup"},
             {"apiVersion", "v1"},
             {"name", parts[1]},
             {"versions", vs},
             {"preferredVersion", vs[0]}};
      return 200;
    } else {
      out = status(404, "NotFound", "the server could not find the requested resource");
      return 404;
    }
    if (at == parts.size()) {
      if (versions_.count(group) == 0 || versions_[group].count(version) == 0) {
        out = status(404, "NotFound", "the server could not find the requested resource");
        return 404;
      }
      out = discovery_list(group, version);
      return 200;
    }
    std::string ns;
    if (parts[at] == "namespaces" && parts.size() >= at + 3) {
      ns = parts[at + 1];
      at += 2;
    }
    const Resource* r = find(group, version, parts[at]);
    if (r == nullptr) {
      out = status(404, "NotFound", "the server could not find the requested resource");
      return 404;
    }
    const std::string name = parts.size() > at + 1 ? parts[at + 1] : "";
    const std::string sub = parts.size() > at + 2 ? parts[at + 2] : "";
    const std::string what = r->plural + (r->group.empty() ? "" : "." + r->group) + " \"" + name + "\"";
    auto not_found = [&] {
      out = status(404, "NotFound", what + " not found");
      out["details"] = {{"name", name}, {"group", r->group}, {"kind", r->plural}};
      return 404;
    };

    if (name.empty()) {
      if (req.method == "GET") {
        Selector selector;
        try {
          selector = Selector::parse(req.get_param_value("labelSelector"));
        } catch (const std::invalid_argument& e) {
          return (out = status(400, "BadRequest", e.what()), 400);
        }
        std::vector<json> items;
        const std::string prefix = r->group + "/" + r->plural + "/";
        for (const auto& [k, object] : objects_) {
          if (k.rfind(prefix, 0) != 0) continue;
          if (r->namespaced && !ns.empty() && object["metadata"].value("namespace", "") != ns) continue;
          if (!selector.matches(object)) continue;
          items.push_back(object);
        }
        if (wants_table) {
          out = table(*r, items);
        } else {
          out = {{"kind", r->kind + "List"},
                 {"apiVersion", r->group_version()},
                 {"metadata", {{"resourceVersion", std::to_string(revision_)}}},
                 {"items", items}};
        }
        return 200;
      }
      if (req.method == "POST") {
        if (req.get_header_value("Content-Type").find("json") == std::string::npos) {
          out = status(
              415, "UnsupportedMediaType",
              "the body of the request was in an unknown format - accepted media types include: application/json");
          return 415;
        }
        if (r->namespaced && objects_.count("/namespaces//" + ns) == 0) {
          out = status(404, "NotFound", "namespaces \"" + ns + "\" not found");
          out["details"] = {{"name", ns}, {"kind", "namespaces"}};
          return 404;
        }
        json object = json::parse(req.body);
        if (r->plural == "customresourcedefinitions") {
          // Refused as the real API server refuses it (structural schema, versions, names).
          const std::vector<FieldError> errors = validate_crd(object);
          const json name_field = json_path(object, ".metadata.name");
          if (!errors.empty()) {
            return (out = crd_invalid_status(name_field.is_string() ? name_field.get<std::string>() : "", errors), 422);
          }
        }
        if (!r->group.empty() && resources_.count(r->group + "/" + r->plural) != 0 &&
            r->schema.contains("properties") && r->schema["properties"].contains("spec")) {
          apply_defaults(object, r->schema);
        }
        const std::string new_name = object["metadata"].value("name", "");
        if (new_name.empty()) return (out = status(422, "Invalid", "metadata.name: Required value"), 422);
        const std::string k = key(*r, ns, new_name);
        if (objects_.count(k) != 0) {
          out = status(409, "AlreadyExists", r->plural + " \"" + new_name + "\" already exists");
          return 409;
        }
        if (r->status_subresource) object.erase("status");
        objects_[k] = stamp(std::move(object), *r, ns);
        if (r->plural == "customresourcedefinitions") register_crd(objects_[k]);
        record("ADDED", *r, objects_[k]);
        out = objects_[k];
        return 201;
      }
      return (out = status(405, "MethodNotAllowed", "method not allowed"), 405);
    }

    const std::string k = key(*r, ns, name);
    auto it = objects_.find(k);
    if (req.method == "GET") {
      if (it == objects_.end()) return not_found();
      out = wants_table ? table(*r, {it->second}) : it->second;
      return 200;
    }
    if (req.method == "DELETE") {
      if (it == objects_.end()) return not_found();
      out = it->second;
      bool orphan = false;
      if (!req.body.empty()) {
        const json options = json::parse(req.body);
        orphan = options.value("propagationPolicy", "") == "Orphan" || options.value("orphanDependents", false);
      }
      if (req.get_param_value("propagationPolicy") == "Orphan") orphan = true;
      remove(k, *r);
      if (!orphan) collect_garbage();
      return 200;
    }
    if (req.method == "PUT" || req.method == "PATCH") {
      if (it == objects_.end()) return not_found();
      json current = it->second;
      json next = current;
      if (req.method == "PUT") {
        next = json::parse(req.body);
        const std::string sent = next["metadata"].value("resourceVersion", "");
        if (!sent.empty() && sent != current["metadata"]["resourceVersion"]) {
          out = status(
              409, "Conflict",
              "Operation cannot be fulfilled on " + what +
                  ": the object has been modified; please apply your changes to the latest version and try again");
          return 409;
        }
      } else {
        const std::string type = req.get_header_value("Content-Type");
        if (type.find("merge-patch+json") == std::string::npos) {
          out = status(415, "UnsupportedMediaType", "only merge patches are supported by this test server: " + type);
          return 415;
        }
        merge_patch(next, json::parse(req.body));
      }
      if (sub == "status") {
        json only_status = current;  // only the status changes
        only_status["status"] = next.value("status", json::object());
        next = only_status;
      } else if (r->status_subresource) {
        if (current.contains("status"))
          next["status"] = current["status"];
        else
          next.erase("status");
      }
      // Server-owned metadata stays; generation moves when the spec does.
      for (const char* field : {"uid", "creationTimestamp", "generation", "namespace"}) {
        if (current["metadata"].contains(field)) next["metadata"][field] = current["metadata"][field];
      }
      next["apiVersion"] = r->group_version();
      next["kind"] = r->kind;
      if (r->schema.contains("properties") && r->schema["properties"].contains("spec")) apply_defaults(next, r->schema);
      if (next.value("spec", json()) != current.value("spec", json())) {
        next["metadata"]["generation"] = current["metadata"].value("generation", 1) + 1;
      }
      if (r->plural == "customresourcedefinitions" && sub != "status") {
        const std::vector<FieldError> errors = validate_crd_update(next, current);
        if (!errors.empty()) return (out = crd_invalid_status(name, errors), 422);
      }
      const bool modified = next != current;
      if (modified) next["metadata"]["resourceVersion"] = std::to_string(++revision_);
      it->second = next;
      if (modified) record("MODIFIED", *r, next);
      if (r->plural == "customresourcedefinitions") register_crd(next);
      out = next;
      return 200;
    }
    return (out = status(405, "MethodNotAllowed", "method not allowed"), 405);
  }

  std::mutex mutex_;
  std::map<std::string, Resource> resources_;              // group/plural -> resource
  std::map<std::string, std::set<std::string>> versions_;  // group -> versions
  std::map<std::string, json> objects_;                    // group/plural/ns/name -> object
  long revision_ = 1;
  std::deque<Event> history_;  // for watches
  long compacted_ = 0;         // watches from before this get 410 Gone
  long watch_epoch_ = 0;       // open watches end when it moves
  std::atomic<bool> stopping_{false};
  std::string state_file_;
  std::condition_variable changed_;
  std::mutex delay_mutex_;  // never held with mutex_
  std::condition_variable delay_changed_;
  std::string delayed_resource_;
  long delay_ms_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  std::string port_file;
  std::string state_file;
  std::string tls_cert;
  std::string tls_key;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--port") port = std::stoi(argv[i + 1]);
    if (flag == "--port-file") port_file = argv[i + 1];
    if (flag == "--state-file") state_file = argv[i + 1];
    if (flag == "--tls-cert") tls_cert = argv[i + 1];
    if (flag == "--tls-key") tls_key = argv[i + 1];
  }
  Server api;
  if (!state_file.empty()) api.persist_to(state_file);
  std::unique_ptr<httplib::Server> https;
  if (!tls_cert.empty()) {
    https = std::make_unique<httplib::SSLServer>(tls_cert.c_str(), tls_key.c_str());
    if (!https->is_valid()) {
      std::cerr << "kube-api-test-server: cannot use the certificate " << tls_cert << " / key " << tls_key << "\n";
      return 3;
    }
  }
  httplib::Server plain;
  httplib::Server& server = https ? *https : plain;
  const bool log_requests = std::getenv("KUBE_TEST_SERVER_LOG") != nullptr;
  auto handler = [&](const httplib::Request& req, httplib::Response& res) {
    api.handle(req, res);
    if (log_requests) std::cerr << req.method << " " << req.target << " -> " << res.status << "\n";
  };
  server.Get(R"(/.*)", handler);
  server.Post(R"(/.*)", handler);
  server.Put(R"(/.*)", handler);
  server.Patch(R"(/.*)", handler);
  server.Delete(R"(/.*)", handler);
  server.set_tcp_nodelay(true);  // before binding (the listening socket carries it); as Go's net/http does
  const int bound =
      port == 0 ? server.bind_to_any_port("127.0.0.1") : (server.bind_to_port("127.0.0.1", port) ? port : -1);
  if (bound < 0) {
    std::cerr << "kube-api-test-server: cannot listen on port " << port << "\n";
    return 3;
  }
  if (!port_file.empty()) {
    std::ofstream(port_file + ".tmp") << bound << "\n";
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  std::cerr << "kube-api-test-server listening on " << (https ? "https" : "http") << "://127.0.0.1:" << bound << "\n";
  // Every connection holds a pool thread while it is kept alive, and kubectl opens
  // a dozen at once for discovery: a small pool turns a burst of kubectl calls
  // into waits. Plenty of threads.
  server.new_task_queue = [] { return new httplib::ThreadPool(256); };
  server.set_keep_alive_max_count(1000);  // closing after 5 requests races a client reusing the connection
  static httplib::Server* running = &server;
  static Server* state = &api;
  std::signal(SIGTERM, [](int) {
    state->stop_watches();
    running->stop();
  });
  server.listen_after_bind();
  return 0;
}
