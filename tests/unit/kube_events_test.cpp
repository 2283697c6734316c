// The Event objects the controller records, and label selectors in queries.
#include <gtest/gtest.h>

#include "kube/client.h"
#include "kube/events.h"

namespace backstop::kube {
namespace {

TEST(EventObject, NamesTheInvolvedObjectAndTheReportingComponent) {
  const json monitor = {
      {"apiVersion", "backstop.dev/v1alpha1"},
      {"kind", "StopMonitor"},
      {"metadata", {{"name", "desk-a"}, {"namespace", "trading"}, {"uid", "u-1"}, {"resourceVersion", "7"}}}};
  const json e = event_object(monitor, "Warning", "InvalidSpec", "spec.rabbitmq: required", "backstop-controller",
                              "pod-1", "2026-11-25T10:00:00Z", "abc");
  EXPECT_EQ(e["metadata"]["name"], "desk-a.abc");
  EXPECT_EQ(e["metadata"]["namespace"], "trading");
  EXPECT_EQ(e["involvedObject"], (json{{"apiVersion", "backstop.dev/v1alpha1"},
                                       {"kind", "StopMonitor"},
                                       {"name", "desk-a"},
                                       {"namespace", "trading"},
                                       {"uid", "u-1"},
                                       {"resourceVersion", "7"}}));
  EXPECT_EQ(e["type"], "Warning");
  EXPECT_EQ(e["reason"], "InvalidSpec");
  EXPECT_EQ(e["message"], "spec.rabbitmq: required");
  EXPECT_EQ(e["source"]["component"], "backstop-controller");
  EXPECT_EQ(e["reportingInstance"], "pod-1");
  EXPECT_EQ(e["firstTimestamp"], "2026-11-25T10:00:00Z");
  EXPECT_EQ(e["count"], 1);
}

TEST(EventObject, LongMessagesAreCutToTheApiLimit) {
  const json object = {{"kind", "StopMonitor"}, {"metadata", {{"name", "x"}, {"namespace", "n"}}}};
  const json e = event_object(object, "Normal", "Created", std::string(5000, 'm'), "c", "i", "t", "u");
  EXPECT_EQ(e["message"].get<std::string>().size(), 1024u);
}

TEST(LabelSelector, EqualityTermsEncodedForAQuery) {
  EXPECT_EQ(label_selector({{"app.kubernetes.io/managed-by", "backstop-controller"}}),
            "?labelSelector=app.kubernetes.io/managed-by%3Dbackstop-controller");
  EXPECT_EQ(label_selector({{"a", "1"}, {"b", "2"}}), "?labelSelector=a%3D1%2Cb%3D2");
}

}  // namespace
}  // namespace backstop::kube
