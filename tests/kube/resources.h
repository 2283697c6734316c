// The kinds the Kubernetes API test server serves, and what it publishes about
// them: the built-in kinds kubectl and the controller touch, the versions a
// stored CustomResourceDefinition adds (register_crd), discovery (/apis, a
// group, a group-version's resource list) and OpenAPI v3 (a custom resource's
// schema taken from its CRD, as the real server publishes it, so kubectl
// validates client-side; built-in kinds get permissive schemas). Structural
// defaulting of custom resources reads the same schema, so it lives here too.
//
// Validation of the CRD itself (structural schema, versions, names) is
// crd_validation.h's. Not synchronized: the server calls it under its lock.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace backstop::testing {

struct Resource {
  std::string group, version, plural, singular, kind;
  bool namespaced = true;
  std::vector<std::string> short_names;
  bool status_subresource = false;
  nlohmann::json printer_columns = nlohmann::json::array();
  nlohmann::json schema;  // OpenAPI v3 schema of the kind
  bool custom = false;    // added by a CRD: pruned and validated against `schema`
  [[nodiscard]] std::string group_version() const { return group.empty() ? version : group + "/" + version; }
  // "group/plural" ("/namespaces" for the core group): the prefix of its storage keys.
  [[nodiscard]] std::string group_plural() const { return group + "/" + plural; }
};

class ResourceRegistry {
 public:
  // Namespaces, Secrets, ConfigMaps, Events, ServiceAccounts, CronJobs, Jobs,
  // Deployments, Leases and CustomResourceDefinitions.
  ResourceRegistry();

  // A CRD was stored (created, updated, or read back from the state file):
  // serve its served versions (a version's schema, status subresource and
  // printer columns replace those registered before).
  void register_crd(const nlohmann::json& crd);

  // nullptr when group/version/plural is not served.
  [[nodiscard]] const Resource* find(const std::string& group, const std::string& version,
                                     const std::string& plural) const;
  // By "group/plural" (Resource::group_plural); throws std::out_of_range.
  [[nodiscard]] const Resource& at(const std::string& group_plural) const;
  [[nodiscard]] bool serves(const std::string& group, const std::string& version) const;

  // GET /apis: the APIGroupList.
  [[nodiscard]] nlohmann::json group_list() const;
  // GET /apis/<group>: the APIGroup, nullopt for a group not served.
  [[nodiscard]] std::optional<nlohmann::json> api_group(const std::string& group) const;
  // GET /api/<v> or /apis/<group>/<v>: the APIResourceList.
  [[nodiscard]] nlohmann::json discovery_list(const std::string& group, const std::string& version) const;
  // GET /openapi/v3: one path per group-version, its hash the store's `revision`.
  [[nodiscard]] nlohmann::json openapi_index(long revision) const;
  // GET /openapi/v3/api/<v> or /openapi/v3/apis/<group>/<v>.
  [[nodiscard]] nlohmann::json openapi_document(const std::string& group, const std::string& version) const;

 private:
  void add(Resource r);

  std::map<std::string, Resource> resources_;              // group/plural -> resource
  std::map<std::string, std::set<std::string>> versions_;  // group -> versions
};

// Structural defaulting, as the API server does for custom resources: a
// missing property with a default gets it, then defaults apply inside objects
// and array items.
void apply_defaults(nlohmann::json& value, const nlohmann::json& schema);

}  // namespace backstop::testing
