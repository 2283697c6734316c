#include "resources.h"

#include <utility>

namespace backstop::testing {

using nlohmann::json;

ResourceRegistry::ResourceRegistry() {
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
}

void ResourceRegistry::add(Resource r) {
  const std::string key = r.group_plural();
  versions_[r.group].insert(r.version);
  resources_[key] = std::move(r);
}

const Resource* ResourceRegistry::find(const std::string& group, const std::string& version,
                                       const std::string& plural) const {
  const auto it = resources_.find(group + "/" + plural);
  if (it == resources_.end() || it->second.version != version) return nullptr;
  return &it->second;
}

const Resource& ResourceRegistry::at(const std::string& group_plural) const { return resources_.at(group_plural); }

bool ResourceRegistry::serves(const std::string& group, const std::string& version) const {
  const auto it = versions_.find(group);
  return it != versions_.end() && it->second.count(version) != 0;
}

void ResourceRegistry::register_crd(const json& crd) {
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
    r.custom = true;
    add(std::move(r));
  }
}

json ResourceRegistry::group_list() const {
  json groups = json::array();
  for (const auto& [group, versions] : versions_) {
    if (group.empty()) continue;
    json vs = json::array();
    for (const auto& v : versions) vs.push_back({{"groupVersion", group + "/" + v}, {"version", v}});
    groups.push_back({{"name", group}, {"versions", vs}, {"preferredVersion", vs[0]}});
  }
  return {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}};
}

std::optional<json> ResourceRegistry::api_group(const std::string& group) const {
  const auto it = versions_.find(group);
  if (it == versions_.end()) return std::nullopt;
  json vs = json::array();
  for (const auto& v : it->second) vs.push_back({{"groupVersion", group + "/" + v}, {"version", v}});
  return json{
      {"kind", "APIGroup"}, {"apiVersion", "v1"}, {"name", group}, {"versions", vs}, {"preferredVersion", vs[0]}};
}

json ResourceRegistry::discovery_list(const std::string& group, const std::string& version) const {
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

json ResourceRegistry::openapi_index(long revision) const {
  json paths = json::object();
  for (const auto& [group, versions] : versions_) {
    for (const auto& v : versions) {
      const std::string gv = group.empty() ? "api/" + v : "apis/" + group + "/" + v;
      paths[gv] = {{"serverRelativeURL", "/openapi/v3/" + gv + "?hash=" + std::to_string(revision)}};
    }
  }
  return {{"paths", paths}};
}

json ResourceRegistry::openapi_document(const std::string& group, const std::string& version) const {
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

}  // namespace backstop::testing
