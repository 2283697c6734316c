// The reconciler's decisions: create what is missing, correct drift without
// fighting the API server's defaults, delete disabled components, never touch
// what this StopMonitor does not own; conditions with transition times.
#include <gtest/gtest.h>

#include "controller/plan.h"

namespace backstop::controller {
namespace {

json monitor() {
  return json::parse(R"({
    "metadata": {"name": "desk-a", "namespace": "trading", "uid": "u-1", "generation": 2},
    "spec": {"stopMonitor": {"schedule": "* * * * *"}, "trailingStop": {"enabled": true},
             "outboxDrain": {"enabled": false},
             "exchange": {"credentialsSecretRef": {"name": "k"}}, "database": {"secretRef": {"name": "db"}}}
  })");
}

// What the API server returns for a created object: ours plus its defaults.
json as_stored(json object) {
  object["metadata"]["uid"] = "cj-uid";
  object["metadata"]["resourceVersion"] = "42";
  object["spec"]["timeZone"] = nullptr;
  object["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst";
  object["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] =
      "/dev/termination-log";
  return object;
}

TEST(ReconcilePlan, CreatesWhatIsMissingThenNothingOnceItExists) {
  const json m = monitor();
  const Desired d = desired_objects(parse_stop_monitor(m));
  Plan p = plan(m, d, {}, {});
  ASSERT_EQ(p.actions.size(), 3u);  // stop-monitor, trailing-stop, reconcile; outbox-drain and stream absent already
  EXPECT_EQ(p.actions[0].kind, Action::Kind::kCreate);
  EXPECT_EQ(p.actions[0].name, "desk-a-stop-monitor");
  std::map<std::string, json> live;
  for (const json& cj : d.cronjobs) live[cj["metadata"]["name"]] = as_stored(cj);
  p = plan(m, d, live, {});
  EXPECT_TRUE(p.actions.empty()) << p.actions[0].name;  // server defaults are not drift
}

TEST(ReconcilePlan, DriftAndSpecChangesAreUpdatesThatKeepTheServerFields) {
  json m = monitor();
  const Desired d = desired_objects(parse_stop_monitor(m));
  std::map<std::string, json> live;
  for (const json& cj : d.cronjobs) live[cj["metadata"]["name"]] = as_stored(cj);
  live["desk-a-stop-monitor"]["spec"]["concurrencyPolicy"] = "Allow";  // hand-edited
  Plan p = plan(m, d, live, {});
  ASSERT_EQ(p.actions.size(), 1u);
  EXPECT_EQ(p.actions[0].kind, Action::Kind::kUpdate);
  EXPECT_EQ(p.actions[0].object["spec"]["concurrencyPolicy"], "Forbid");
  EXPECT_EQ(p.actions[0].object["metadata"]["resourceVersion"], "42");  // optimistic update
  EXPECT_EQ(p.actions[0].object["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
  // A schedule change in the StopMonitor.
  m["spec"]["stopMonitor"]["schedule"] = "*/5 * * * *";
  live["desk-a-stop-monitor"]["spec"]["concurrencyPolicy"] = "Forbid";
  p = plan(m, desired_objects(parse_stop_monitor(m)), live, {});
  ASSERT_EQ(p.actions.size(), 1u);
  EXPECT_EQ(p.actions[0].object["spec"]["schedule"], "*/5 * * * *");
}

TEST(ReconcilePlan, DisabledComponentsAreDeletedAndForeignObjectsLeftAlone) {
  json m = monitor();
  const Desired d = desired_objects(parse_stop_monitor(m));
  std::map<std::string, json> live;
  for (const json& cj : d.cronjobs) live[cj["metadata"]["name"]] = as_stored(cj);
  m["spec"]["trailingStop"]["enabled"] = false;
  Plan p = plan(m, desired_objects(parse_stop_monitor(m)), live, {});
  ASSERT_EQ(p.actions.size(), 1u);
  EXPECT_EQ(p.actions[0].kind, Action::Kind::kDelete);
  EXPECT_EQ(p.actions[0].name, "desk-a-trailing-stop");
  // Someone else's CronJob with our name: reported, never changed or deleted.
  live["desk-a-trailing-stop"]["metadata"]["ownerReferences"] = json::array();
  live["desk-a-stop-monitor"]["metadata"]["ownerReferences"] = json::array();
  p = plan(m, desired_objects(parse_stop_monitor(m)), live, {});
  EXPECT_TRUE(p.actions.empty());
  EXPECT_EQ(p.conflicts, std::vector<std::string>{"cronjobs/desk-a-stop-monitor"});
}

TEST(Conditions, TransitionTimeMovesOnlyWithTheStatus) {
  json status = json::object();
  EXPECT_TRUE(set_condition(status, "Ready", "False", "Reconciling", "creating", 1, "2026-11-23T09:00:00Z"));
  EXPECT_TRUE(set_condition(status, "Ready", "True", "Reconciled", "3 CronJobs", 1, "2026-11-23T09:01:00Z"));
  EXPECT_EQ(status["conditions"][0]["lastTransitionTime"], "2026-11-23T09:01:00Z");
  EXPECT_FALSE(set_condition(status, "Ready", "True", "Reconciled", "3 CronJobs", 1, "2026-11-23T09:02:00Z"));
  EXPECT_TRUE(set_condition(status, "Ready", "True", "Reconciled", "3 CronJobs", 2, "2026-11-23T09:03:00Z"));
  EXPECT_EQ(status["conditions"][0]["lastTransitionTime"], "2026-11-23T09:01:00Z");  // still True since 09:01
  EXPECT_EQ(status["conditions"][0]["observedGeneration"], 2);
  EXPECT_TRUE(set_condition(status, "InvalidSpec", "False", "Valid", "", 2, "2026-11-23T09:03:00Z"));
  EXPECT_EQ(status["conditions"].size(), 2u);
}

}  // namespace
}  // namespace backstop::controller
