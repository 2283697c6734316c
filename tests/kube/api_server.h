// kube-api-test-server: a test fixture (not product code) that speaks enough of
// the Kubernetes API server's HTTP + JSON for the real kubectl and Backstop's
// controller. ApiServer answers one request; main.cpp serves it over HTTP or
// HTTPS. The pieces, one concern each:
//
//   api_server     routing, CRUD (create / get / list / update with 409 on a
//                  stale resourceVersion / JSON merge patch / delete), the
//                  status subresource, generation bumped on spec changes only,
//                  the Status objects and status codes, test controls (/admin)
//   resources      built-in kinds, the kinds a CRD adds, discovery, OpenAPI v3,
//                  structural defaults of custom resources
//   crd_validation CustomResourceDefinitions validated on create and update as
//                  the real apiextensions-apiserver does (same 422 Status),
//                  their x-kubernetes-validations rules compiled (cel.h)
//   custom_resource custom resources pruned of unknown fields (Strict: 400,
//                  Warn: Warning headers) and validated against their CRD's
//                  schema, list types and CEL rules (422, the real Status)
//   cel            the CEL subset the rules are evaluated with
//   field_selector ?fieldSelector= on list and watch
//   object_store   objects, resourceVersion, server-owned metadata, the watch
//                  history and compaction, ownerReference garbage collection,
//                  the state file that survives a restart
//   watch          watch streams, bookmarks, 410 Gone
//   label_selector equality and existence label selectors on list and watch
//   table          Table output with a CRD's printer columns (`kubectl get`)
//   http_common    Status bodies, path segments
//
// Test controls: POST /admin/compact forgets the watch history (watches from an
// older resourceVersion then get 410 Gone); ?advance=N first moves the revision
// on by N and cuts every open watch, as an API server restart does. POST
// /admin/delay?resource=leases&ms=N holds every later request on that resource
// N ms before answering (a hung API server); ms=0 lets them all go.
//
// Where this stand-in is more lenient than a real API server (all of it in one
// place; a test relying on one of these would pass here and fail on a cluster):
//   - no authentication, authorization (RBAC) or admission: every request is
//     served; built-in kinds are neither validated nor defaulted (but for one
//     rule: a CronJob's name over 52 characters gets the real 422; a Secret's
//     stringData is folded into data as the real one does), and no
//     controller runs (CronJobs never fire, Deployments never roll out);
//   - custom resources are pruned, defaulted and validated (custom_resource.h
//     says what exactly), but: no ratcheting (a v1.30+ server lets an update
//     keep a value that was already invalid; here it is refused), CEL rules
//     are evaluated with a subset of CEL (cel.h: no macros such as all/exists,
//     no messageExpression, reason or fieldPath, no cost budget; a CRD with a
//     rule outside the subset is refused, where a real server would serve it),
//     formats other than date-time and date are not checked, labels and
//     annotations are not checked, and several errors come in a fixed order
//     where the real server's follows Go's map order;
//   - ?fieldValidation=Strict reports unknown fields only (not duplicate JSON
//     keys), and for custom resources only (built-in kinds keep them);
//   - ?dryRun=All writes nothing and emits nothing, but a dry-run create's
//     answer has a uid the real server would also invent, and admission
//     plugins (none here) are not run either way;
//   - ?fieldSelector: the fields of the real server for every kind here
//     (metadata.name, metadata.namespace; Events' involvedObject.*, reason,
//     reportingComponent, source, type; a Secret's type, a Namespace's
//     status.phase, a Job's status.successful), others 400 "field label not
//     supported"; no escaping in values, and a watch does not turn an object
//     that stops matching a selector into DELETED; set-based label selectors
//     (in, notin) get 400;
//   - lists are one page (limit and continue ignored) and always at the latest
//     revision (a list's resourceVersion parameter is ignored);
//   - only PUT checks metadata.resourceVersion (409); a merge patch carrying a
//     stale one is applied;
//   - patches: JSON merge patch only; a strategic merge patch is applied as a
//     merge patch (lists replaced, not merged); JSON patch and server-side
//     apply get 415; non-JSON bodies (protobuf) get 415 on create;
//   - metadata.generateName is not supported (422: metadata.name required);
//   - deletion is immediate: no finalizers, no deletionTimestamp, no grace
//     period; dependents go before the answer whatever the propagation policy
//     (Background and Foreground alike), Orphan keeps them; deleting a
//     namespace leaves the objects in it;
//   - subresources other than status (scale, ...) are treated as the object;
//   - the watch history keeps the last 10,000 events.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "object_store.h"
#include "resources.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace backstop::testing {

class ApiServer {
 public:
  // The built-in kinds and the default namespace.
  ApiServer();

  // Keeps the objects in `path` (written after every successful write, read
  // now), as etcd outlives an API server restart. The watch history does not:
  // a watch from before the restart gets 410 Gone and relists.
  void persist_to(const std::string& path);

  // Answers one request; called concurrently from the HTTP server's threads.
  void handle(const httplib::Request& req, httplib::Response& res);

  // From a signal handler: no lock; open watches notice within 200 ms, delayed
  // requests are let go.
  void stop_watches();

 private:
  // One request under mutex_: the status code, the body in `out`.
  int route(const httplib::Request& req, nlohmann::json& out);
  // GET or POST on a collection (list, create).
  int collection(const httplib::Request& req, const Resource& r, const std::string& ns, bool wants_table,
                 nlohmann::json& out);
  // GET, DELETE, PUT or PATCH on one object (or its status subresource: `sub`).
  int object(const httplib::Request& req, const Resource& r, const std::string& ns, const std::string& name,
             const std::string& sub, bool wants_table, nlohmann::json& out);

  void set_delay(const httplib::Request& req, httplib::Response& res);
  void hold_if_delayed(const httplib::Request& req);

  std::mutex mutex_;  // guards registry_, store_ and state_file_
  ResourceRegistry registry_;
  ObjectStore store_;
  std::string state_file_;
  std::vector<std::string> warnings_;  // this request's Warning headers (under mutex_)
  std::atomic<bool> stopping_{false};

  std::mutex delay_mutex_;  // never held with mutex_
  std::condition_variable delay_changed_;
  std::string delayed_resource_;
  long delay_ms_ = 0;
};

}  // namespace backstop::testing
