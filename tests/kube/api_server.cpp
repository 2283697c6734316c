#include "api_server.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "crd_validation.h"
#include "custom_resource.h"
#include "field_selector.h"
#include "http_common.h"
#include "label_selector.h"
#include "table.h"
#include "watch.h"

namespace backstop::testing {

using nlohmann::json;

namespace {

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

bool has_spec_schema(const Resource& r) {
  return r.schema.contains("properties") && r.schema["properties"].contains("spec");
}

const std::string kCrdPrefix = "apiextensions.k8s.io/customresourcedefinitions/";

}  // namespace

ApiServer::ApiServer() {
  store_.seed("/namespaces//default",
              {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "default"}}}},
              registry_.at("/namespaces"), "");
}

void ApiServer::persist_to(const std::string& path) {
  std::lock_guard lock(mutex_);
  state_file_ = path;
  if (!store_.load(path)) return;
  for (const auto& [k, object] : store_.objects()) {
    if (k.rfind(kCrdPrefix, 0) == 0) registry_.register_crd(object);
  }
}

void ApiServer::handle(const httplib::Request& req, httplib::Response& res) {
  if (req.method == "POST" && req.path == "/admin/delay") {
    set_delay(req, res);
    return;
  }
  hold_if_delayed(req);
  if (req.method == "GET" && (req.get_param_value("watch") == "true" || req.get_param_value("watch") == "1")) {
    serve_watch(req, res, mutex_, store_, registry_, stopping_);
    return;
  }
  std::lock_guard lock(mutex_);
  json body;
  int code = 200;
  warnings_.clear();
  try {
    code = route(req, body);
  } catch (const json::exception& e) {
    code = 400;
    body = status(400, "BadRequest", std::string("invalid JSON: ") + e.what());
  }
  res.status = code;
  res.set_content(body.dump(), "application/json");
  for (const std::string& warning : warnings_) {
    std::string quoted;
    for (const char c : warning) quoted += c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
    res.set_header("Warning", "299 - \"" + quoted + "\"");
  }
  if (!state_file_.empty() && req.method != "GET" && code < 300 && req.get_param_value("dryRun") != "All") {
    store_.save(state_file_);
  }
}

void ApiServer::stop_watches() {
  stopping_ = true;
  const std::lock_guard lock(delay_mutex_);
  delay_changed_.notify_all();
}

void ApiServer::set_delay(const httplib::Request& req, httplib::Response& res) {
  {
    const std::lock_guard lock(delay_mutex_);
    delayed_resource_ = req.get_param_value("resource");
    delay_ms_ = req.has_param("ms") ? std::stol(req.get_param_value("ms")) : 0;
  }
  delay_changed_.notify_all();
  res.set_content(json{{"resource", delayed_resource_}, {"ms", delay_ms_}}.dump(), "application/json");
}

// Holds a request whose path names the delayed resource (a path segment).
void ApiServer::hold_if_delayed(const httplib::Request& req) {
  std::unique_lock lock(delay_mutex_);
  if (delay_ms_ <= 0 || delayed_resource_.empty()) return;
  const std::vector<std::string> parts = split_path(req.path);
  if (std::find(parts.begin(), parts.end(), delayed_resource_) == parts.end()) return;
  delay_changed_.wait_for(lock, std::chrono::milliseconds(delay_ms_), [&] { return stopping_ || delay_ms_ <= 0; });
}

namespace {

// What the real API server's validation of built-in kinds refuses that the
// controller could write: a CronJob's name longer than 52 characters (its Jobs
// append 11). The 422 Status is the real one's, with its cause.
std::optional<json> builtin_invalid(const Resource& r, const json& object) {
  if (r.plural != "cronjobs") return std::nullopt;
  const std::string name = object.contains("metadata") ? object.at("metadata").value("name", "") : "";
  if (name.size() <= 52) return std::nullopt;
  const std::string cause = "Invalid value: \"" + name + "\": must be no more than 52 characters";
  json out = status(422, "Invalid", "CronJob.batch \"" + name + "\" is invalid: metadata.name: " + cause);
  out["details"] = {
      {"name", name},
      {"group", "batch"},
      {"kind", "CronJob"},
      {"causes", json::array({{{"reason", "FieldValueInvalid"}, {"message", cause}, {"field", "metadata.name"}}})}};
  return out;
}

std::string base64(const std::string& in) {
  static const char* const kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  auto byte = [&](std::size_t i) {
    return i < in.size() ? static_cast<unsigned>(static_cast<unsigned char>(in[i])) : 0U;
  };
  std::string out;
  for (std::size_t i = 0; i < in.size(); i += 3) {
    const unsigned v = (byte(i) << 16U) | (byte(i + 1) << 8U) | byte(i + 2);
    out += kAlphabet[(v >> 18U) & 63U];
    out += kAlphabet[(v >> 12U) & 63U];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6U) & 63U] : '=';
    out += i + 2 < in.size() ? kAlphabet[v & 63U] : '=';
  }
  return out;
}

// A Secret's stringData is write-only: the API server merges it into data
// (base64) and stores no stringData, as the real one does.
void fold_string_data(const Resource& r, json& object) {
  if (r.plural != "secrets" || !object.contains("stringData")) return;
  for (const auto& [key, value] : object.at("stringData").items()) {
    object["data"][key] = base64(value.is_string() ? value.get<std::string>() : value.dump());
  }
  object.erase("stringData");
}

// A custom resource's request body as the real server decodes it: unknown
// fields pruned (?fieldValidation=Strict: 400; Warn, the default: a Warning
// each; Ignore: silently). 0 when decoded, else the status code with its Status
// in `out`.
int decode_custom_resource(const httplib::Request& req, const Resource& r, json& object,
                           std::vector<std::string>& warnings, json& out) {
  const std::string directive = req.get_param_value("fieldValidation");
  if (!directive.empty() && directive != "Ignore" && directive != "Warn" && directive != "Strict") {
    return (out = status(400, "BadRequest", "fieldValidation parameter unsupported: " + directive), 400);
  }
  const std::vector<std::string> unknown = prune_custom_resource(object, r.schema);
  if (!unknown.empty() && directive == "Strict") {
    std::string message =
        r.kind + " in version \"" + r.version + "\" cannot be handled as a " + r.kind + ": strict decoding error: ";
    for (std::size_t i = 0; i < unknown.size(); ++i)
      message += (i == 0 ? "" : ", ") + ("unknown field " + go_quote(unknown[i]));
    return (out = status(400, "BadRequest", message), 400);
  }
  for (const std::string& field : unknown) {
    if (directive != "Ignore") warnings.push_back("unknown field " + go_quote(field));
    std::cerr << "kube-api-test-server: " << r.kind << " " << req.method << " " << req.path << ": pruned unknown field "
              << field << "\n";
  }
  return 0;
}

// Then, on the object to store (the body decoded, merged with the stored object
// on update): pruned again, defaults applied, then the schema, list types and
// CEL rules (422). `old` is the stored object on update. 0 when admitted.
int admit_custom_resource(const httplib::Request& req, const Resource& r, json& object, const json* old, json& out) {
  (void)prune_custom_resource(object, r.schema);
  apply_defaults(object, r.schema);
  const std::vector<FieldError> errors = validate_custom_resource(object, r.schema, old);
  if (errors.empty()) return 0;
  const json* metadata = object.contains("metadata") ? &object.at("metadata") : nullptr;
  const std::string name = metadata != nullptr && metadata->contains("name") && metadata->at("name").is_string()
                               ? metadata->at("name").get<std::string>()
                               : "";
  std::cerr << "kube-api-test-server: " << r.kind << " " << req.method << " " << req.path << " refused:";
  for (const FieldError& e : errors) std::cerr << " " << e.message() << ";";
  std::cerr << "\n";
  return (out = invalid_status(r.kind, r.group, name, errors), 422);
}

// ?dryRun=All, or (a delete) DeleteOptions' dryRun: ["All"] in the body, as kubectl sends it.
bool dry_run(const httplib::Request& req) {
  if (req.get_param_value("dryRun") == "All") return true;
  if (req.method != "DELETE" || req.body.empty()) return false;
  const json options = json::parse(req.body, nullptr, false);
  if (!options.is_object() || !options.contains("dryRun") || !options["dryRun"].is_array()) return false;
  const json& modes = options["dryRun"];
  return std::find(modes.begin(), modes.end(), "All") != modes.end();
}

}  // namespace

int ApiServer::route(const httplib::Request& req, json& out) {
  const std::string& path = req.path;
  const bool wants_table = req.get_header_value("Accept").find("as=Table") != std::string::npos;
  if (req.method == "POST" && path == "/admin/compact") {
    if (req.has_param("advance")) store_.advance(std::stol(req.get_param_value("advance")));
    out = {{"compacted", store_.compact()}};
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
    out = registry_.group_list();
    return 200;
  }
  if (req.method == "GET" && path == "/openapi/v3") {
    out = registry_.openapi_index(store_.revision());
    return 200;
  }
  const std::vector<std::string> parts = split_path(path);
  if (parts.size() >= 3 && parts[0] == "openapi" && parts[1] == "v3") {
    const bool core = parts[2] == "api";
    out = registry_.openapi_document(core ? "" : parts[3], core ? parts[3] : parts[4]);
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
    std::optional<json> api_group = registry_.api_group(parts[1]);
    if (!api_group) return (out = status(404, "NotFound", "group not found"), 404);
    out = std::move(*api_group);
    return 200;
  } else {
    out = status(404, "NotFound", "the server could not find the requested resource");
    return 404;
  }
  if (at == parts.size()) {
    if (!registry_.serves(group, version)) {
      out = status(404, "NotFound", "the server could not find the requested resource");
      return 404;
    }
    out = registry_.discovery_list(group, version);
    return 200;
  }
  std::string ns;
  if (parts[at] == "namespaces" && parts.size() >= at + 3) {
    ns = parts[at + 1];
    at += 2;
  }
  const Resource* r = registry_.find(group, version, parts[at]);
  if (r == nullptr) {
    out = status(404, "NotFound", "the server could not find the requested resource");
    return 404;
  }
  const std::string name = parts.size() > at + 1 ? parts[at + 1] : "";
  const std::string sub = parts.size() > at + 2 ? parts[at + 2] : "";
  if (const std::string dry = req.get_param_value("dryRun"); !dry.empty() && dry != "All" && req.method != "GET") {
    const std::string options = req.method == "POST"    ? "CreateOptions"
                                : req.method == "PUT"   ? "UpdateOptions"
                                : req.method == "PATCH" ? "PatchOptions"
                                                        : "DeleteOptions";
    const FieldError unsupported{"dryRun", FieldError::Type::NotSupported, json::array({dry}),
                                 "supported values: \"All\""};
    return (out = invalid_status(options, "meta.k8s.io", "", {unsupported}), 422);
  }
  if (name.empty()) return collection(req, *r, ns, wants_table, out);
  return object(req, *r, ns, name, sub, wants_table, out);
}

int ApiServer::collection(const httplib::Request& req, const Resource& r, const std::string& ns, bool wants_table,
                          json& out) {
  if (req.method == "GET") {
    LabelSelector selector;
    FieldSelector fields;
    try {
      selector = LabelSelector::parse(req.get_param_value("labelSelector"));
      fields = FieldSelector::parse(req.get_param_value("fieldSelector"), r);
    } catch (const std::invalid_argument& e) {
      return (out = status(400, "BadRequest", e.what()), 400);
    }
    std::vector<json> items;
    const std::string prefix = r.group_plural() + "/";
    for (const auto& [k, object] : store_.objects()) {
      if (k.rfind(prefix, 0) != 0) continue;
      if (r.namespaced && !ns.empty() && object.at("metadata").value("namespace", "") != ns) continue;
      if (!selector.matches(object) || !fields.matches(object)) continue;
      items.push_back(object);
    }
    if (wants_table) {
      out = table(r, items, store_.revision());
    } else {
      out = {{"kind", r.kind + "List"},
             {"apiVersion", r.group_version()},
             {"metadata", {{"resourceVersion", std::to_string(store_.revision())}}},
             {"items", items}};
    }
    return 200;
  }
  if (req.method == "POST") {
    if (req.get_header_value("Content-Type").find("json") == std::string::npos) {
      out = status(415, "UnsupportedMediaType",
                   "the body of the request was in an unknown format - accepted media types include: application/json");
      return 415;
    }
    if (r.namespaced && !store_.contains("/namespaces//" + ns)) {
      out = status(404, "NotFound", "namespaces \"" + ns + "\" not found");
      out["details"] = {{"name", ns}, {"kind", "namespaces"}};
      return 404;
    }
    json object = json::parse(req.body);
    if (r.plural == "customresourcedefinitions") {
      // Refused as the real API server refuses it (structural schema, versions, names).
      const std::vector<FieldError> errors = validate_crd(object);
      const json name_field = json_path(object, ".metadata.name");
      if (!errors.empty()) {
        return (out = crd_invalid_status(name_field.is_string() ? name_field.get<std::string>() : "", errors), 422);
      }
    }
    if (r.status_subresource) object.erase("status");
    if (r.namespaced && object.contains("metadata") && object["metadata"].is_object()) {
      object["metadata"]["namespace"] = ns;  // as the real server sets it from the path
    }
    if (r.custom) {
      if (const int refused = decode_custom_resource(req, r, object, warnings_, out)) return refused;
      if (const int refused = admit_custom_resource(req, r, object, nullptr, out)) return refused;
    } else if (!r.group.empty() && has_spec_schema(r)) {
      apply_defaults(object, r.schema);
    }
    if (auto invalid = builtin_invalid(r, object)) return (out = std::move(*invalid), 422);
    fold_string_data(r, object);
    const std::string new_name = object["metadata"].value("name", "");
    if (new_name.empty()) return (out = status(422, "Invalid", "metadata.name: Required value"), 422);
    const std::string k = ObjectStore::key(r, ns, new_name);
    if (store_.contains(k)) {
      out = status(409, "AlreadyExists", r.plural + " \"" + new_name + "\" already exists");
      return 409;
    }
    if (dry_run(req)) return (out = store_.preview(std::move(object), r, ns), 201);
    const json& created = store_.create(k, std::move(object), r, ns);
    if (r.plural == "customresourcedefinitions") registry_.register_crd(created);
    out = created;
    return 201;
  }
  return (out = status(405, "MethodNotAllowed", "method not allowed"), 405);
}

int ApiServer::object(const httplib::Request& req, const Resource& r, const std::string& ns, const std::string& name,
                      const std::string& sub, bool wants_table, json& out) {
  const std::string what = r.plural + (r.group.empty() ? "" : "." + r.group) + " \"" + name + "\"";
  auto not_found = [&] {
    out = status(404, "NotFound", what + " not found");
    out["details"] = {{"name", name}, {"group", r.group}, {"kind", r.plural}};
    return 404;
  };
  const std::string k = ObjectStore::key(r, ns, name);
  const json* stored = store_.find(k);
  if (req.method == "GET") {
    if (stored == nullptr) return not_found();
    out = wants_table ? table(r, {*stored}, store_.revision()) : *stored;
    return 200;
  }
  if (req.method == "DELETE") {
    if (stored == nullptr) return not_found();
    out = *stored;
    bool orphan = false;
    if (!req.body.empty()) {
      const json options = json::parse(req.body);
      orphan = options.value("propagationPolicy", "") == "Orphan" || options.value("orphanDependents", false);
    }
    if (req.get_param_value("propagationPolicy") == "Orphan") orphan = true;
    if (dry_run(req)) return 200;
    store_.remove(k, r);
    if (!orphan) store_.collect_garbage(registry_);
    return 200;
  }
  if (req.method == "PUT" || req.method == "PATCH") {
    if (stored == nullptr) return not_found();
    const json current = *stored;
    json next = current;
    if (req.method == "PUT") {
      next = json::parse(req.body);
      if (r.custom) {
        if (const int refused = decode_custom_resource(req, r, next, warnings_, out)) return refused;
      }
      const std::string sent = next["metadata"].value("resourceVersion", "");
      if (!sent.empty() && sent != current.at("metadata").at("resourceVersion")) {
        out =
            status(409, "Conflict",
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
      // Decoded once patched, as the real server does (a null in the patch deletes).
      if (r.custom) {
        if (const int refused = decode_custom_resource(req, r, next, warnings_, out)) return refused;
      }
    }
    if (sub == "status") {
      json only_status = current;  // only the status changes
      only_status["status"] = next.value("status", json::object());
      next = only_status;
    } else if (r.status_subresource) {
      if (current.contains("status"))
        next["status"] = current["status"];
      else
        next.erase("status");
    }
    // Server-owned metadata stays; generation moves when the spec does.
    for (const char* field : {"uid", "creationTimestamp", "generation", "namespace"}) {
      if (current.at("metadata").contains(field)) next["metadata"][field] = current.at("metadata").at(field);
    }
    next["apiVersion"] = r.group_version();
    next["kind"] = r.kind;
    if (r.custom) {
      if (const int refused = admit_custom_resource(req, r, next, &current, out)) return refused;
    } else if (has_spec_schema(r)) {
      apply_defaults(next, r.schema);
    }
    if (next.value("spec", json()) != current.value("spec", json())) {
      next["metadata"]["generation"] = current.at("metadata").value("generation", 1) + 1;
    }
    if (auto invalid = builtin_invalid(r, next)) return (out = std::move(*invalid), 422);
    fold_string_data(r, next);
    if (r.plural == "customresourcedefinitions" && sub != "status") {
      const std::vector<FieldError> errors = validate_crd_update(next, current);
      if (!errors.empty()) return (out = crd_invalid_status(name, errors), 422);
    }
    if (dry_run(req)) return (out = std::move(next), 200);
    const json& updated = store_.update(k, std::move(next), r);
    if (r.plural == "customresourcedefinitions") registry_.register_crd(updated);
    out = updated;
    return 200;
  }
  return (out = status(405, "MethodNotAllowed", "method not allowed"), 405);
}

}  // namespace backstop::testing
