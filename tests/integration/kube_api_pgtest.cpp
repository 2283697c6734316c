// The Kubernetes API test server (tests/kube) with the real kubectl: apply the
// StopMonitor CRD and a StopMonitor, get them with the CRD's printer columns and
// schema defaults, spec changes bump the generation, status goes through its
// subresource only, a stale update is a 409 conflict, delete; a CRD the real
// API server refuses is refused with its words.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "controller/reconciler.h"
#include "kube/client.h"
#include "kube/leader_election.h"
#include "net/http.h"
#include "support/kube_server.h"
#include "support/process.h"

namespace backstop::testing {
namespace {

const std::string kSource = BACKSTOP_SOURCE_DIR;

class KubeApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api = std::make_unique<KubeTestServer>();
    dir = api->dir();
  }

  ProcessResult kubectl(std::vector<std::string> args) const { return api->kubectl(std::move(args)); }
  ProcessResult apply(const std::string& manifest) const {
    ProcessResult r = api->apply(manifest);
    if (r.exit_code != 0) ADD_FAILURE() << "kubectl apply failed: " << r.err;
    return r;
  }
  std::string get(const std::string& jsonpath) const {
    return kubectl({"get", "stopmonitor", "desk-a", "-o", "jsonpath=" + jsonpath}).out;
  }
  [[nodiscard]] std::string url() const { return api->url(); }

  std::unique_ptr<KubeTestServer> api;
  std::string dir;
};

TEST_F(KubeApiTest, KubectlAppliesTheCrdAndAStopMonitorAndShowsItsColumns) {
  const ProcessResult crd = kubectl({"apply", "-f", kSource + "/crds/stopmonitors.backstop.dev.yaml"});
  ASSERT_EQ(crd.exit_code, 0) << crd.err;
  EXPECT_NE(crd.out.find("customresourcedefinition.apiextensions.k8s.io/stopmonitors.backstop.dev created"),
            std::string::npos);
  // A namespaced object needs its namespace.
  const ProcessResult early = kubectl({"apply", "-f", kSource + "/crds/examples/stopmonitor-desk-a.yaml"});
  EXPECT_NE(early.exit_code, 0);
  EXPECT_NE(early.err.find("namespaces \"trading\" not found"), std::string::npos) << early.err;
  ASSERT_EQ(apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: trading\n").exit_code, 0);
  const ProcessResult created = kubectl({"apply", "-f", kSource + "/crds/examples/stopmonitor-desk-a.yaml"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_NE(created.out.find("stopmonitor.backstop.dev/desk-a created"), std::string::npos);

  const ProcessResult table = kubectl({"get", "stopmonitors"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  const std::string header = table.out.substr(0, table.out.find('\n'));
  for (const char* column : {"NAME", "SCHEDULE", "SUSPENDED", "READY", "LAST RUN", "MESSAGE", "AGE"}) {
    EXPECT_NE(header.find(column), std::string::npos) << table.out;
  }
  EXPECT_NE(table.out.find("desk-a   * * * * *   false"), std::string::npos) << table.out;
  EXPECT_NE(kubectl({"get", "sm"}).out.find("desk-a   * * * * *   false"), std::string::npos);  // the short name
  // Defaults from the schema, as the API server applies them.
  EXPECT_EQ(get("{.spec.suspend} {.spec.stopMonitor.batchSize} {.spec.exchange.priceSource} {.metadata.generation}"),
            "false 64 last 1");

  // Re-applying the same manifest changes nothing; a spec change bumps the generation.
  EXPECT_NE(kubectl({"apply", "-f", kSource + "/crds/examples/stopmonitor-desk-a.yaml"}).out.find("unchanged"),
            std::string::npos);
  std::ifstream example(kSource + "/crds/examples/stopmonitor-desk-a.yaml");
  std::stringstream text;
  text << example.rdbuf();
  std::string changed = text.str();
  changed.replace(changed.find("schedule: \"* * * * *\""), 21, "schedule: \"*/5 * * * *\"");
  ASSERT_EQ(apply(changed).exit_code, 0);
  EXPECT_EQ(get("{.spec.stopMonitor.schedule} {.metadata.generation}"), "*/5 * * * * 2");

  // Status only through its subresource, and without a generation bump.
  const ProcessResult patched = kubectl(
      {"patch", "stopmonitor", "desk-a", "--subresource=status", "--type=merge", "-p",
       R"({"status":{"observedGeneration":2,"conditions":[{"type":"Ready","status":"True","reason":"Reconciled",)"
       R"("message":"ok","lastTransitionTime":"2026-11-23T00:00:00Z"}]}})"});
  ASSERT_EQ(patched.exit_code, 0) << patched.err;
  EXPECT_EQ(get("{.status.conditions[0].status} {.metadata.generation}"), "True 2");
  EXPECT_NE(kubectl({"get", "sm"}).out.find("True"), std::string::npos);
  ASSERT_EQ(kubectl({"patch", "stopmonitor", "desk-a", "--type=merge", "-p", R"({"status":{"observedGeneration":9}})"})
                .exit_code,
            0);
  EXPECT_EQ(get("{.status.observedGeneration}"), "2");  // the main endpoint leaves status alone

  // An update from a stale read is refused (optimistic concurrency).
  const std::string stale = kubectl({"get", "stopmonitor", "desk-a", "-o", "json"}).out;
  ASSERT_EQ(kubectl({"patch", "stopmonitor", "desk-a", "--type=merge", "-p", R"({"spec":{"dryRun":true}})"}).exit_code,
            0);
  std::ofstream(dir + "/stale.json") << stale;
  const ProcessResult conflict = kubectl({"replace", "-f", dir + "/stale.json"});
  EXPECT_NE(conflict.exit_code, 0);
  EXPECT_NE(conflict.err.find("the object has been modified"), std::string::npos) << conflict.err;

  const ProcessResult deleted = kubectl({"delete", "stopmonitor", "desk-a"});
  EXPECT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_NE(kubectl({"get", "stopmonitors"}).err.find("No resources found"), std::string::npos);
}

// Issue 12: a real API server (v1.24) refused the shipped CRD because its root
// metadata carried a description. The test server now refuses such a CRD the
// same way, on create and on update, and kubectl prints the real server's words.
TEST_F(KubeApiTest, RefusesCrdWithMetadataBeyondNameAndGenerateName) {
  std::ifstream file(kSource + "/crds/stopmonitors.backstop.dev.yaml");
  std::stringstream text;
  text << file.rdbuf();
  std::string described = text.str();
  const std::string metadata = "            metadata:\n              type: object\n";
  const std::size_t at = described.find(metadata);
  ASSERT_NE(at, std::string::npos) << "the CRD's root metadata is no longer `type: object` alone";
  described.insert(at + metadata.size(), "              description: Standard object metadata.\n");
  const std::string refusal =
      "The CustomResourceDefinition \"stopmonitors.backstop.dev\" is invalid: "
      "spec.validation.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and "
      "generateName, but metadata is implicitly specified";

  const ProcessResult created = api->apply(described);
  EXPECT_NE(created.exit_code, 0);
  EXPECT_NE(created.err.find(refusal), std::string::npos) << created.err;
  EXPECT_NE(kubectl({"get", "stopmonitors"}).exit_code, 0) << "a refused CRD must not be served";

  const ProcessResult shipped = kubectl({"apply", "-f", kSource + "/crds/stopmonitors.backstop.dev.yaml"});
  ASSERT_EQ(shipped.exit_code, 0) << shipped.err;
  EXPECT_EQ(kubectl({"get", "stopmonitors"}).exit_code, 0);

  // The same change as an update of the stored CRD: refused too, the CRD unchanged.
  const ProcessResult updated = api->apply(described);
  EXPECT_NE(updated.exit_code, 0);
  EXPECT_NE(updated.err.find(refusal), std::string::npos) << updated.err;
  EXPECT_EQ(kubectl({"get", "crd", "stopmonitors.backstop.dev", "-o",
                     "jsonpath={.spec.versions[0].schema.openAPIV3Schema.properties.metadata}"})
                .out,
            R"({"type":"object"})");
}

// Issue 12 item 4: the API server validates custom resources against their
// CRD's schema, with the real server's words; what it refuses is not stored.
std::string example_with(const std::string& from, const std::string& to) {
  std::ifstream file(kSource + "/crds/examples/stopmonitor-desk-a.yaml");
  std::stringstream text;
  text << file.rdbuf();
  std::string manifest = text.str();
  const std::size_t at = manifest.find(from);
  if (at == std::string::npos) throw std::runtime_error("not in the example: " + from);
  return manifest.replace(at, from.size(), to);
}

TEST_F(KubeApiTest, StopMonitorsAgainstTheSchemaAreRefusedWithTheRealServersWords) {
  ASSERT_EQ(kubectl({"apply", "-f", kSource + "/crds/stopmonitors.backstop.dev.yaml"}).exit_code, 0);
  ASSERT_EQ(apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: trading\n").exit_code, 0);

  const ProcessResult schedule = api->apply(example_with("schedule: \"* * * * *\"", "schedule: \"61 * * * *\""));
  EXPECT_NE(schedule.exit_code, 0);
  EXPECT_NE(schedule.err.find("The StopMonitor \"desk-a\" is invalid: spec.stopMonitor.schedule: Invalid value: "
                              "\"61 * * * *\": spec.stopMonitor.schedule in body should match '^(?:@(?:yearly|"),
            std::string::npos)
      << schedule.err;

  const ProcessResult batch = api->apply(example_with("schedule: \"* * * * *\"", "batchSize: -1"));
  EXPECT_NE(batch.exit_code, 0);
  EXPECT_NE(batch.err.find("The StopMonitor \"desk-a\" is invalid: spec.stopMonitor.batchSize: Invalid value: -1: "
                           "spec.stopMonitor.batchSize in body should be greater than or equal to 1"),
            std::string::npos)
      << batch.err;
  EXPECT_NE(kubectl({"get", "stopmonitor", "desk-a"}).exit_code, 0) << "a refused StopMonitor was stored";

  // The Status itself: 422 Invalid, one cause per error with the real reasons and fields.
  auto http = net::make_cpprest_transport(url(), std::chrono::seconds(10));
  const std::string collection = "/apis/backstop.dev/v1alpha1/namespaces/trading/stopmonitors";
  const nlohmann::json bad = {{"apiVersion", "backstop.dev/v1alpha1"},
                              {"kind", "StopMonitor"},
                              {"metadata", {{"name", "desk-z"}}},
                              {"spec",
                               {{"tenants", {1, 1}},
                                {"exchange", {{"priceSource", "mid"}, {"credentialsSecretRef", {{"name", "x"}}}}},
                                {"database", {{"secretRef", {{"name", "db"}}}}},
                                {"stopMonitor", {{"batchSize", "64"}}}}}};
  const net::HttpResponse refused =
      http->send({"POST", collection, {{"Content-Type", "application/json"}}, bad.dump()});
  ASSERT_EQ(refused.status, 422) << refused.body;
  const nlohmann::json status = nlohmann::json::parse(refused.body);
  EXPECT_EQ(status.value("reason", ""), "Invalid");
  EXPECT_EQ(status["details"].value("kind", ""), "StopMonitor");
  EXPECT_EQ(status["details"].value("group", ""), "backstop.dev");
  EXPECT_EQ(status.value("message", ""),
            "StopMonitor.backstop.dev \"desk-z\" is invalid: ["
            "spec.exchange.priceSource: Unsupported value: \"mid\": supported values: \"last\", \"book\", "
            "spec.stopMonitor.batchSize: Invalid value: \"string\": spec.stopMonitor.batchSize in body must be of type "
            "integer: \"string\", "
            "spec.tenants[1]: Duplicate value: 1, "
            "<nil>: Invalid value: \"null\": some validation rules were not checked because the object was invalid; "
            "correct the existing errors to complete validation]");
  std::vector<std::string> causes;
  for (const auto& cause : status["details"]["causes"]) {
    causes.push_back(cause.value("reason", "") + " " + cause.value("field", ""));
  }
  EXPECT_EQ(causes, (std::vector<std::string>{"FieldValueNotSupported spec.exchange.priceSource",
                                              "FieldValueTypeInvalid spec.stopMonitor.batchSize",
                                              "FieldValueDuplicate spec.tenants[1]", "FieldValueInvalid <nil>"}));

  // The status subresource is validated too: a condition without its required fields.
  ASSERT_EQ(kubectl({"apply", "-f", kSource + "/crds/examples/stopmonitor-desk-a.yaml"}).exit_code, 0);
  const ProcessResult status_patch =
      kubectl({"patch", "stopmonitor", "desk-a", "--subresource=status", "--type=merge", "-p",
               R"({"status":{"conditions":[{"type":"Ready","status":"Maybe"}]}})"});
  EXPECT_NE(status_patch.exit_code, 0);
  EXPECT_NE(status_patch.err.find("status.conditions[0].status: Unsupported value: \"Maybe\": supported values: "
                                  "\"True\", \"False\", \"Unknown\""),
            std::string::npos)
      << status_patch.err;
  EXPECT_NE(status_patch.err.find("status.conditions[0].reason: Required value"), std::string::npos)
      << status_patch.err;
}

TEST_F(KubeApiTest, UnknownFieldsArePrunedWarnedOrRefusedAsKubectlAsks) {
  ASSERT_EQ(kubectl({"apply", "-f", kSource + "/crds/stopmonitors.backstop.dev.yaml"}).exit_code, 0);
  ASSERT_EQ(apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: trading\n").exit_code, 0);
  const std::string manifest = example_with("  stopMonitor:\n", "  foo: bar\n  stopMonitor:\n");
  std::ofstream(dir + "/unknown.yaml") << manifest;

  // kubectl apply validates strictly by default (?fieldValidation=Strict).
  for (const char* strict : {"--validate=true", "--validate=strict"}) {
    const ProcessResult refused = kubectl({"apply", strict, "-f", dir + "/unknown.yaml"});
    EXPECT_NE(refused.exit_code, 0) << strict;
    EXPECT_NE(refused.err.find("Error from server (BadRequest): error when creating \"" + dir +
                               "/unknown.yaml\": StopMonitor in version \"v1alpha1\" cannot be handled as a "
                               "StopMonitor: strict decoding error: unknown field \"spec.foo\""),
              std::string::npos)
        << strict << ": " << refused.err;
  }
  EXPECT_NE(kubectl({"get", "stopmonitor", "desk-a"}).exit_code, 0);

  const ProcessResult warned = kubectl({"apply", "--validate=warn", "-f", dir + "/unknown.yaml"});
  ASSERT_EQ(warned.exit_code, 0) << warned.err;
  EXPECT_NE(warned.err.find("Warning: unknown field \"spec.foo\""), std::string::npos) << warned.err;
  EXPECT_EQ(get("{.spec.foo}"), "");  // pruned
  ASSERT_EQ(kubectl({"delete", "stopmonitor", "desk-a"}).exit_code, 0);

  const ProcessResult ignored = kubectl({"apply", "--validate=false", "-f", dir + "/unknown.yaml"});
  ASSERT_EQ(ignored.exit_code, 0) << ignored.err;
  EXPECT_EQ(ignored.err.find("Warning"), std::string::npos) << ignored.err;
  EXPECT_EQ(get("{.spec.foo}{.spec.stopMonitor.schedule}"), "* * * * *");

  // Metadata keeps ObjectMeta's fields only; without fieldValidation the server warns.
  auto http = net::make_cpprest_transport(url(), std::chrono::seconds(10));
  nlohmann::json object = nlohmann::json::parse(kubectl({"get", "stopmonitor", "desk-a", "-o", "json"}).out);
  object["metadata"]["extra"] = "x";
  object["status"] = {{"observedGeneration", 1}, {"bogus", true}};
  const net::HttpResponse put = http->send({"PUT",
                                            "/apis/backstop.dev/v1alpha1/namespaces/trading/stopmonitors/desk-a",
                                            {{"Content-Type", "application/json"}},
                                            object.dump()});
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_NE(put.headers.at("warning").find(R"(unknown field \"metadata.extra\")"), std::string::npos)
      << put.headers.at("warning");
  EXPECT_FALSE(nlohmann::json::parse(put.body)["metadata"].contains("extra")) << put.body;
  const net::HttpResponse status =
      http->send({"PUT",
                  "/apis/backstop.dev/v1alpha1/namespaces/trading/stopmonitors/desk-a/status?fieldValidation=Strict",
                  {{"Content-Type", "application/json"}},
                  object.dump()});
  EXPECT_EQ(status.status, 400) << status.body;
  EXPECT_NE(status.body.find(R"(unknown field \"metadata.extra\", unknown field \"status.bogus\")"), std::string::npos)
      << status.body;
}

TEST_F(KubeApiTest, CelRulesOfTheCrdAreEnforcedWithTheirMessages) {
  ASSERT_EQ(kubectl({"apply", "-f", kSource + "/crds/stopmonitors.backstop.dev.yaml"}).exit_code, 0);
  ASSERT_EQ(apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: trading\n").exit_code, 0);
  const ProcessResult no_broker =
      api->apply(example_with("  rabbitmq:\n    secretRef:\n      name: backstop-rabbitmq\n", ""));
  EXPECT_NE(no_broker.exit_code, 0);
  EXPECT_NE(no_broker.err.find("The StopMonitor \"desk-a\" is invalid: spec: Invalid value: \"object\": "
                               "outboxDrain.enabled needs spec.rabbitmq (the broker Secret)"),
            std::string::npos)
      << no_broker.err;
  EXPECT_NE(kubectl({"get", "stopmonitor", "desk-a"}).exit_code, 0);
  // Without the drain, no broker is needed.
  std::string no_drain = example_with("  rabbitmq:\n    secretRef:\n      name: backstop-rabbitmq\n", "");
  no_drain.replace(no_drain.find("  outboxDrain:\n    enabled: true\n"), 33, "");
  ASSERT_EQ(apply(no_drain).exit_code, 0);
  const ProcessResult limits =
      kubectl({"patch", "stopmonitor", "desk-a", "--type=merge", "-p",
               R"({"spec":{"guardrails":{"maxExecutionsPerMinute":10,"maxExecutionsPerHour":5}}})"});
  EXPECT_NE(limits.exit_code, 0);
  EXPECT_NE(limits.err.find("spec: Invalid value: \"object\": guardrails.maxExecutionsPerHour must be at least "
                            "maxExecutionsPerMinute"),
            std::string::npos)
      << limits.err;
  EXPECT_EQ(get("{.spec.guardrails.maxExecutionsPerMinute}"), "");

  // A CRD whose rule this server cannot evaluate is refused, not served with the rule skipped.
  std::ifstream file(kSource + "/crds/stopmonitors.backstop.dev.yaml");
  std::stringstream text;
  text << file.rdbuf();
  std::string crd = text.str();
  const std::string rule = "- rule: \"!has(self.outboxDrain) ||";
  ASSERT_NE(crd.find(rule), std::string::npos);
  crd.replace(crd.find(rule), rule.size(), "- rule: \"self.tenants.all(t, t > 0) ||");
  const ProcessResult macro = api->apply(crd);
  EXPECT_NE(macro.exit_code, 0);
  EXPECT_NE(macro.err.find("spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: "
                           "Invalid value: "),
            std::string::npos)
      << macro.err;
  EXPECT_NE(macro.err.find("compilation failed: ERROR: <input>:1:14: the function or macro 'all' is not supported"),
            std::string::npos)
      << macro.err;
}

TEST_F(KubeApiTest, DryRunValidatesAndAnswersButWritesNothing) {
  ASSERT_EQ(kubectl({"apply", "-f", kSource + "/crds/stopmonitors.backstop.dev.yaml"}).exit_code, 0);
  ASSERT_EQ(apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: trading\n").exit_code, 0);
  auto http = net::make_cpprest_transport(url(), std::chrono::seconds(10));
  const std::string list = "/apis/backstop.dev/v1alpha1/namespaces/trading/stopmonitors";
  auto revision = [&] {
    return nlohmann::json::parse(http->send({"GET", list, {}, ""}).body)["metadata"].value("resourceVersion", "");
  };
  const std::string before = revision();

  const ProcessResult created =
      kubectl({"apply", "--dry-run=server", "-f", kSource + "/crds/examples/stopmonitor-desk-a.yaml"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_NE(created.out.find("stopmonitor.backstop.dev/desk-a created (server dry run)"), std::string::npos)
      << created.out;
  EXPECT_NE(kubectl({"get", "stopmonitor", "desk-a"}).exit_code, 0) << "a dry-run create was stored";
  EXPECT_EQ(revision(), before);
  // Validated all the same.
  std::ofstream(dir + "/bad.yaml") << example_with("schedule: \"* * * * *\"", "batchSize: 0");
  const ProcessResult refused = kubectl({"apply", "--dry-run=server", "-f", dir + "/bad.yaml"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("spec.stopMonitor.batchSize in body should be greater than or equal to 1"),
            std::string::npos)
      << refused.err;

  ASSERT_EQ(kubectl({"apply", "-f", kSource + "/crds/examples/stopmonitor-desk-a.yaml"}).exit_code, 0);
  const std::string stored = revision();
  const ProcessResult patched = kubectl(
      {"patch", "stopmonitor", "desk-a", "--dry-run=server", "--type=merge", "-p", R"({"spec":{"suspend":true}})"});
  ASSERT_EQ(patched.exit_code, 0) << patched.err;
  EXPECT_EQ(get("{.spec.suspend} {.metadata.generation}"), "false 1");
  const ProcessResult deleted = kubectl({"delete", "stopmonitor", "desk-a", "--dry-run=server"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_EQ(kubectl({"get", "stopmonitor", "desk-a", "-o", "name"}).out, "stopmonitor.backstop.dev/desk-a\n");
  EXPECT_EQ(revision(), stored);
  // No watch event either: a watch from the stored revision sees nothing.
  const std::string events =
      http->send({"GET", list + "?watch=true&timeoutSeconds=1&resourceVersion=" + stored, {}, ""}).body;
  EXPECT_EQ(events, "") << events;
}

TEST_F(KubeApiTest, EventsAreSelectedByFieldSelectorOnListAndWatch) {
  auto event = [](const std::string& name, const std::string& object, const std::string& type) {
    return "apiVersion: v1\nkind: Event\nmetadata:\n  name: " + name +
           "\ninvolvedObject:\n  apiVersion: backstop.dev/v1alpha1\n  kind: StopMonitor\n  name: " + object +
           "\n  namespace: trading\nreason: Reconciled\ntype: " + type + "\nmessage: m\n";
  };
  ASSERT_EQ(apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: trading\n").exit_code, 0);
  ASSERT_EQ(apply(event("e1", "desk-a", "Normal")).exit_code, 0);
  ASSERT_EQ(apply(event("e2", "desk-b", "Warning")).exit_code, 0);
  EXPECT_EQ(kubectl({"get", "events", "--field-selector", "involvedObject.name=desk-a", "-o", "name"}).out,
            "event/e1\n");
  EXPECT_EQ(
      kubectl({"get", "events", "--field-selector", "type!=Normal,involvedObject.kind=StopMonitor", "-o", "name"}).out,
      "event/e2\n");
  EXPECT_EQ(kubectl({"get", "events", "--field-selector", "metadata.name=e2", "-o", "name"}).out, "event/e2\n");
  const ProcessResult unsupported = kubectl({"get", "events", "--field-selector", "spec.foo=bar"});
  EXPECT_NE(unsupported.exit_code, 0);
  EXPECT_NE(unsupported.err.find("field label not supported: spec.foo"), std::string::npos) << unsupported.err;

  auto http = net::make_cpprest_transport(url(), std::chrono::seconds(10));
  const std::string watched =
      http->send({"GET",
                  "/api/v1/namespaces/trading/"
                  "events?watch=true&timeoutSeconds=1&fieldSelector=involvedObject.name%3Ddesk-b",
                  {},
                  ""})
          .body;
  EXPECT_NE(watched.find(R"("name":"e2")"), std::string::npos) << watched;
  EXPECT_EQ(watched.find(R"("name":"e1")"), std::string::npos) << watched;
  const net::HttpResponse bad =
      http->send({"GET", "/api/v1/namespaces/trading/events?watch=true&fieldSelector=foo%3Dbar", {}, ""});
  EXPECT_EQ(bad.status, 400) << bad.body;
}

TEST_F(KubeApiTest, DeletingAnOwnerCollectsItsDependentsUnlessOrphaned) {
  ASSERT_EQ(kubectl({"apply", "-f", kSource + "/crds/stopmonitors.backstop.dev.yaml"}).exit_code, 0);
  ASSERT_EQ(apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: trading\n").exit_code, 0);
  auto cronjob = [&](const std::string& name, const std::string& owner_uid) {
    std::string manifest = "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: " + name + "\n";
    if (!owner_uid.empty()) {
      manifest +=
          "  ownerReferences:\n  - apiVersion: backstop.dev/v1alpha1\n    kind: StopMonitor\n    name: desk-a\n"
          "    uid: " +
          owner_uid + "\n    controller: true\n";
    }
    manifest +=
        "spec:\n  schedule: '* * * * *'\n  jobTemplate: {spec: {template: {spec: {restartPolicy: Never, "
        "containers: [{name: c, image: busybox}]}}}}\n";
    return apply(manifest);
  };
  for (const char* round : {"background", "orphan"}) {
    ASSERT_EQ(kubectl({"apply", "-f", kSource + "/crds/examples/stopmonitor-desk-a.yaml"}).exit_code, 0);
    const std::string uid = get("{.metadata.uid}");
    ASSERT_FALSE(uid.empty());
    ASSERT_EQ(cronjob("desk-a-stop-monitor", uid).exit_code, 0);
    ASSERT_EQ(cronjob("unrelated", "").exit_code, 0);
    const bool orphan = std::string(round) == "orphan";
    std::vector<std::string> args = {"delete", "stopmonitor", "desk-a"};
    if (orphan) args.push_back("--cascade=orphan");
    const ProcessResult deleted = kubectl(args);
    ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
    const std::string left = kubectl({"get", "cronjobs", "-o", "name"}).out;
    EXPECT_EQ(left.find("desk-a-stop-monitor") != std::string::npos, orphan) << round << ": " << left;
    EXPECT_NE(left.find("cronjob.batch/unrelated"), std::string::npos) << left;
    ASSERT_EQ(kubectl({"delete", "cronjobs", "--all"}).exit_code, 0);
  }
}

TEST_F(KubeApiTest, ObjectsSurviveAServerRestartAndOldWatchesAreTold410) {
  ASSERT_EQ(kubectl({"apply", "-f", kSource + "/crds/stopmonitors.backstop.dev.yaml"}).exit_code, 0);
  ASSERT_EQ(apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: trading\n").exit_code, 0);
  ASSERT_EQ(kubectl({"apply", "-f", kSource + "/crds/examples/stopmonitor-desk-a.yaml"}).exit_code, 0);
  const std::string uid = get("{.metadata.uid}");
  const long version = std::stol(get("{.metadata.resourceVersion}"));
  api->restart();
  ASSERT_EQ(kubectl({"get", "stopmonitor", "desk-a", "-o", "name"}).exit_code, 0)
      << "the restarted server does not serve the StopMonitor";
  EXPECT_EQ(get("{.metadata.uid}"), uid);
  ASSERT_EQ(kubectl({"patch", "stopmonitor", "desk-a", "--type=merge", "-p", R"({"spec":{"dryRun":true}})"}).exit_code,
            0);
  EXPECT_GT(std::stol(get("{.metadata.resourceVersion}")), version);  // versions go on, never back
  auto http = net::make_cpprest_transport(url(), std::chrono::seconds(10));
  const std::string watch = "/apis/backstop.dev/v1alpha1/namespaces/trading/stopmonitors?watch=true&timeoutSeconds=1";
  // From the version the server restarted at, the watch goes on without a gap ...
  const std::string current = http->send({"GET", watch + "&resourceVersion=" + std::to_string(version), {}, ""}).body;
  EXPECT_NE(current.find(R"("type":"MODIFIED")"), std::string::npos) << current;
  // ... from an older one the history is gone: 410, relist.
  const std::string old = http->send({"GET", watch + "&resourceVersion=" + std::to_string(version - 1), {}, ""}).body;
  EXPECT_NE(old.find(R"("code":410)"), std::string::npos) << old;
}

TEST_F(KubeApiTest, WatchStreamsChangesBookmarksAndAnswers410AfterCompaction) {
  ASSERT_EQ(kubectl({"apply", "-f", kSource + "/crds/stopmonitors.backstop.dev.yaml"}).exit_code, 0);
  ASSERT_EQ(apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: trading\n").exit_code, 0);
  // The real kubectl lists, then watches from the list's resourceVersion.
  Process watcher({kubectl_path(), "--kubeconfig", dir + "/kubeconfig", "get", "stopmonitors", "--watch",
                   "--output-watch-events", "-o", "json"},
                  {{"HOME", dir}});
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_EQ(kubectl({"apply", "-f", kSource + "/crds/examples/stopmonitor-desk-a.yaml"}).exit_code, 0);
  ASSERT_EQ(kubectl({"patch", "stopmonitor", "desk-a", "--type=merge", "-p", R"({"spec":{"dryRun":true}})"}).exit_code,
            0);
  ASSERT_EQ(kubectl({"delete", "stopmonitor", "desk-a"}).exit_code, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  watcher.kill(SIGTERM);
  const ProcessResult watched = watcher.wait();
  // One event each, in order, as the real server would stream them.
  const std::size_t added = watched.out.find(R"("type":"ADDED")");
  const std::size_t modified = watched.out.find(R"("type":"MODIFIED")");
  const std::size_t deleted = watched.out.find(R"("type":"DELETED")");
  ASSERT_NE(added, std::string::npos) << watched.out << watched.err;
  ASSERT_NE(modified, std::string::npos) << watched.out;
  ASSERT_NE(deleted, std::string::npos) << watched.out;
  EXPECT_LT(added, modified);
  EXPECT_LT(modified, deleted);
  EXPECT_EQ(watched.out.find(R"("type":"ADDED")", added + 1), std::string::npos);
  EXPECT_NE(watched.out.find(R"("dryRun":true)", modified), std::string::npos);

  // A watch from an old resourceVersion still in the history replays it, and a
  // bookmark carries the current version when the watch ends.
  auto http = net::make_cpprest_transport(url(), std::chrono::seconds(10));
  const std::string path = "/apis/backstop.dev/v1alpha1/namespaces/trading/stopmonitors?watch=true&timeoutSeconds=1";
  const std::string replay = http->send({"GET", path + "&resourceVersion=2&allowWatchBookmarks=true", {}, ""}).body;
  EXPECT_NE(replay.find(R"("type":"ADDED")"), std::string::npos) << replay;
  EXPECT_NE(replay.find(R"("type":"DELETED")"), std::string::npos) << replay;
  EXPECT_NE(replay.find(R"("type":"BOOKMARK")"), std::string::npos) << replay;
  // After compaction the same request is told 410 Gone: relist.
  ASSERT_EQ(http->send({"POST", "/admin/compact", {}, ""}).status, 200);
  const std::string expired = http->send({"GET", path + "&resourceVersion=2", {}, ""}).body;
  EXPECT_NE(expired.find(R"("type":"ERROR")"), std::string::npos) << expired;
  EXPECT_NE(expired.find(R"("code":410)"), std::string::npos) << expired;
  EXPECT_NE(expired.find("too old resource version"), std::string::npos) << expired;
}

TEST_F(KubeApiTest, ClientCrudConflictsStatusWatchAndGone) {
  ASSERT_EQ(kubectl({"apply", "-f", kSource + "/crds/stopmonitors.backstop.dev.yaml"}).exit_code, 0);
  ASSERT_EQ(apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: trading\n").exit_code, 0);
  kube::KubeConfig config;
  config.server = url();
  kube::KubeClient client(config, net::make_cpprest_transport(url(), std::chrono::seconds(10)));
  const std::string collection = "/apis/backstop.dev/v1alpha1/namespaces/trading/stopmonitors";
  const std::string path = collection + "/desk-b";
  EXPECT_FALSE(client.get(path));
  const kube::json created = client.create(
      collection,
      {{"apiVersion", "backstop.dev/v1alpha1"},
       {"kind", "StopMonitor"},
       {"metadata", {{"name", "desk-b"}}},
       {"spec",
        {{"exchange", {{"credentialsSecretRef", {{"name", "k"}}}}}, {"database", {{"secretRef", {{"name", "db"}}}}}}}});
  EXPECT_EQ(created["spec"]["stopMonitor"]["schedule"], "* * * * *");  // defaulted
  try {
    client.create(collection, created);
    FAIL() << "a second create must conflict";
  } catch (const kube::ApiError& e) {
    EXPECT_EQ(e.code(), 409);
    EXPECT_EQ(e.reason(), "AlreadyExists");
  }
  const kube::json list = client.list(collection);
  ASSERT_EQ(list["items"].size(), 1u);
  const std::string listed_at = list["metadata"]["resourceVersion"];

  // Optimistic concurrency: a replace from a stale read is a 409, never a lost update.
  kube::json stale = *client.get(path);
  client.merge_patch(path, {{"spec", {{"dryRun", true}}}});
  stale["spec"]["suspend"] = true;
  try {
    client.replace(path, stale);
    FAIL() << "a stale replace must conflict";
  } catch (const kube::ApiError& e) {
    EXPECT_TRUE(e.conflict()) << e.what();
  }
  kube::json fresh = *client.get(path);
  EXPECT_EQ(fresh["metadata"]["generation"], 2);
  fresh["status"] = {{"observedGeneration", 2}};
  const kube::json with_status = client.replace_status(path, fresh);
  EXPECT_EQ(with_status["status"]["observedGeneration"], 2);
  EXPECT_EQ(with_status["metadata"]["generation"], 2);  // status does not bump it

  // Watch from the list's version: what happened since, then a bookmark.
  std::vector<std::string> types;
  const std::string last = client.watch(collection, listed_at, std::chrono::seconds(1),
                                        [&](const kube::WatchEvent& e) { types.push_back(e.type); });
  EXPECT_EQ(types, (std::vector<std::string>{"MODIFIED", "MODIFIED", "BOOKMARK"}));
  EXPECT_GT(std::stol(last), std::stol(listed_at));
  ASSERT_EQ(client.merge_patch(path, {{"spec", {{"dryRun", false}}}})["spec"]["dryRun"], false);
  net::make_cpprest_transport(url(), std::chrono::seconds(5))->send({"POST", "/admin/compact", {}, ""});
  try {
    client.watch(collection, listed_at, std::chrono::seconds(1), [](const kube::WatchEvent&) {});
    FAIL() << "an expired watch must be a 410";
  } catch (const kube::ApiError& e) {
    EXPECT_TRUE(e.gone()) << e.what();
  }
  client.remove(path);
  EXPECT_FALSE(client.get(path));
  client.remove(path);  // already gone: fine
}

TEST_F(KubeApiTest, OneLeaderAtATimeAndTheOtherTakesOverWhenItStops) {
  kube::KubeConfig config;
  config.server = url();
  kube::KubeClient a_client(config, net::make_cpprest_transport(url(), std::chrono::seconds(10)));
  kube::KubeClient b_client(config, net::make_cpprest_transport(url(), std::chrono::seconds(10)));
  kube::LeaderElector a(a_client, {"default", "backstop-controller", "controller-a", std::chrono::seconds(1)});
  kube::LeaderElector b(b_client, {"default", "backstop-controller", "controller-b", std::chrono::seconds(1)});
  EXPECT_TRUE(a.try_acquire_or_renew());
  EXPECT_FALSE(b.try_acquire_or_renew());
  EXPECT_EQ(b.observed_holder(), "controller-a");
  // While a renews, b never takes over.
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    EXPECT_TRUE(a.try_acquire_or_renew());
    EXPECT_FALSE(b.try_acquire_or_renew());
  }
  // a dies (stops renewing): b takes over once the record has not changed for the lease duration.
  const auto last_renewal = std::chrono::steady_clock::now();
  for (int attempts = 0; !b.try_acquire_or_renew() && attempts < 100; ++attempts) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(b.is_leader());
  EXPECT_GE(std::chrono::steady_clock::now() - last_renewal, std::chrono::seconds(1));  // never before it expired
  EXPECT_FALSE(a.try_acquire_or_renew());                                               // a came back: b holds it now
  const auto lease = *b_client.get("/apis/coordination.k8s.io/v1/namespaces/default/leases/backstop-controller");
  EXPECT_EQ(lease["spec"]["holderIdentity"], "controller-b");
  EXPECT_EQ(lease["spec"]["leaseTransitions"], 1);
  // A graceful release hands over at once.
  b.release();
  EXPECT_TRUE(a.try_acquire_or_renew());
}

// The Secrets a StopMonitor names are looked up (get by name): a missing one,
// or a missing key, is SecretsMissing and Ready False, naming the field; the
// CronJobs are in place all the same, and run once the Secrets exist.
TEST_F(KubeApiTest, ReconcilerReportsMissingSecretsUntilTheyExist) {
  ASSERT_EQ(kubectl({"apply", "-f", kSource + "/crds/stopmonitors.backstop.dev.yaml"}).exit_code, 0);
  ASSERT_EQ(apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: trading\n").exit_code, 0);
  ASSERT_EQ(kubectl({"apply", "-f", kSource + "/crds/examples/stopmonitor-desk-a.yaml"}).exit_code, 0);
  ASSERT_EQ(apply("apiVersion: v1\nkind: Secret\nmetadata:\n  name: desk-a-binance\n  namespace: trading\n"
                  "stringData:\n  api-key: k\n")
                .exit_code,
            0);
  kube::KubeConfig config;
  config.server = url();
  kube::KubeClient client(config, net::make_cpprest_transport(url(), std::chrono::seconds(10)));
  controller::Reconciler reconciler(client, controller::rfc3339_now);
  controller::ReconcileResult r = reconciler.reconcile("trading", "desk-a");
  EXPECT_TRUE(r.secrets_missing);
  EXPECT_EQ(r.created, 4);  // stop-monitor, trailing-stop, reconcile, outbox-drain
  const std::string missing =
      "Secret trading/desk-a-binance has no key api-secret (spec.exchange.credentialsSecretRef); Secret "
      "trading/backstop-postgres not found (spec.database.secretRef); Secret trading/backstop-rabbitmq not found "
      "(spec.rabbitmq.secretRef)";
  EXPECT_EQ(get("{.status.conditions[?(@.type==\"SecretsMissing\")].status} "
                "{.status.conditions[?(@.type==\"SecretsMissing\")].message}"),
            "True " + missing);
  EXPECT_EQ(get("{.status.conditions[?(@.type==\"Ready\")].status} {.status.conditions[?(@.type==\"Ready\")].reason}"),
            "False SecretsMissing");
  // stringData is stored as data, as the real API server does.
  EXPECT_EQ(kubectl({"get", "secret", "desk-a-binance", "-n", "trading", "-o", "jsonpath={.data.api-key}"}).out,
            "aw==");
  ASSERT_EQ(kubectl({"apply", "-f", kSource + "/crds/examples/secrets-desk-a.yaml"}).exit_code, 0);
  r = reconciler.reconcile("trading", "desk-a");
  EXPECT_FALSE(r.secrets_missing);
  EXPECT_EQ(get("{.status.conditions[?(@.type==\"SecretsMissing\")].status} "
                "{.status.conditions[?(@.type==\"Ready\")].status}"),
            "False True");
}

TEST_F(KubeApiTest, ReconcilerOwnsCronJobsCorrectsDriftFollowsChangesAndReportsStatus) {
  ASSERT_EQ(kubectl({"apply", "-f", kSource + "/crds/stopmonitors.backstop.dev.yaml"}).exit_code, 0);
  ASSERT_EQ(apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: trading\n").exit_code, 0);
  ASSERT_EQ(kubectl({"apply", "-f", kSource + "/crds/examples/secrets-desk-a.yaml"}).exit_code, 0);
  ASSERT_EQ(kubectl({"apply", "-f", kSource + "/crds/examples/stopmonitor-desk-a.yaml"}).exit_code, 0);
  kube::KubeConfig config;
  config.server = url();
  kube::KubeClient client(config, net::make_cpprest_transport(url(), std::chrono::seconds(10)));
  controller::Reconciler reconciler(client, controller::rfc3339_now);

  controller::ReconcileResult r = reconciler.reconcile("trading", "desk-a");
  EXPECT_TRUE(r.found);
  EXPECT_EQ(r.created, 4);
  const std::string cronjobs = kubectl({"get", "cronjobs", "-o", "name"}).out;
  EXPECT_EQ(cronjobs,
            "cronjob.batch/desk-a-outbox-drain\ncronjob.batch/desk-a-reconcile\ncronjob.batch/desk-a-stop-monitor\n"
            "cronjob.batch/desk-a-trailing-stop\n");
  auto cronjob = [&](const std::string& jsonpath) {
    return kubectl({"get", "cronjob", "desk-a-stop-monitor", "-o", "jsonpath=" + jsonpath}).out;
  };
  EXPECT_EQ(cronjob("{.spec.schedule} {.spec.concurrencyPolicy} {.metadata.ownerReferences[0].kind}"),
            "* * * * * Forbid StopMonitor");
  EXPECT_NE(kubectl({"get", "stopmonitors"}).out.find("True"), std::string::npos);  // READY column
  EXPECT_EQ(get("{.status.observedGeneration} {.status.conditions[?(@.type==\"Ready\")].status}"), "1 True");
  // Nothing to do the second time.
  r = reconciler.reconcile("trading", "desk-a");
  EXPECT_EQ(r.created + r.updated + r.deleted, 0);

  // A hand edit is drift: corrected.
  ASSERT_EQ(kubectl({"patch", "cronjob", "desk-a-stop-monitor", "--type=merge", "-p",
                     R"({"spec":{"concurrencyPolicy":"Allow"}})"})
                .exit_code,
            0);
  r = reconciler.reconcile("trading", "desk-a");
  EXPECT_EQ(r.updated, 1);
  EXPECT_EQ(cronjob("{.spec.concurrencyPolicy}"), "Forbid");

  // A schedule change and a disabled component: followed, observedGeneration advances.
  ASSERT_EQ(kubectl({"patch", "stopmonitor", "desk-a", "--type=merge", "-p",
                     R"({"spec":{"stopMonitor":{"schedule":"*/5 * * * *"},"outboxDrain":{"enabled":false}}})"})
                .exit_code,
            0);
  r = reconciler.reconcile("trading", "desk-a");
  EXPECT_EQ(r.updated, 1);
  EXPECT_EQ(r.deleted, 1);
  EXPECT_EQ(cronjob("{.spec.schedule}"), "*/5 * * * *");
  EXPECT_EQ(get("{.status.observedGeneration}"), "2");
  EXPECT_EQ(kubectl({"get", "cronjobs", "-o", "name"}).out.find("outbox-drain"), std::string::npos);

  // The drain without a broker: the API server refuses it (the CRD's CEL rule).
  const ProcessResult no_broker =
      kubectl({"patch", "stopmonitor", "desk-a", "--type=merge", "-p",
               R"({"spec":{"outboxDrain":{"enabled":true},"rabbitmq":null,"stopMonitor":{"schedule":"0 * * * *"}}})"});
  EXPECT_NE(no_broker.exit_code, 0);
  EXPECT_NE(no_broker.err.find("outboxDrain.enabled needs spec.rabbitmq"), std::string::npos) << no_broker.err;
  // An invalid spec that slips past the schema (a range backwards, which the
  // pattern cannot see): a clear condition, nothing changed.
  ASSERT_EQ(
      kubectl({"patch", "stopmonitor", "desk-a", "--type=merge", "-p",
               R"({"spec":{"trailingStop":{"schedule":"30-10 * * * *"},"stopMonitor":{"schedule":"0 * * * *"}}})"})
          .exit_code,
      0);
  r = reconciler.reconcile("trading", "desk-a");
  EXPECT_TRUE(r.invalid);
  EXPECT_EQ(r.created + r.updated + r.deleted, 0);
  EXPECT_EQ(cronjob("{.spec.schedule}"), "*/5 * * * *");  // not half-applied
  EXPECT_EQ(get("{.status.conditions[?(@.type==\"InvalidSpec\")].status}"), "True");
  EXPECT_NE(get("{.status.conditions[?(@.type==\"InvalidSpec\")].message}").find("spec.trailingStop.schedule"),
            std::string::npos);
  EXPECT_EQ(get("{.status.conditions[?(@.type==\"Ready\")].status}"), "False");

  // Deleting the StopMonitor leaves its CronJobs to garbage collection.
  ASSERT_EQ(kubectl({"delete", "stopmonitor", "desk-a"}).exit_code, 0);
  EXPECT_EQ(kubectl({"get", "cronjobs", "-o", "name"}).out, "");
  EXPECT_FALSE(reconciler.reconcile("trading", "desk-a").found);
}

}  // namespace
}  // namespace backstop::testing
