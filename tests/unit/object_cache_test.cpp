#include "kube/object_cache.h"

#include <gtest/gtest.h>

namespace backstop::kube {
namespace {

json object(const std::string& ns, const std::string& name, const std::string& version, int value = 0) {
  return {{"metadata", {{"namespace", ns}, {"name", name}, {"resourceVersion", version}}}, {"spec", {{"v", value}}}};
}

TEST(ObjectCache, ListReplacesEverything) {
  ObjectCache cache;
  cache.apply("ADDED", object("a", "x", "1"));
  cache.replace(json::array({object("a", "y", "2"), object("b", "y", "3")}));
  EXPECT_FALSE(cache.get("a", "x"));
  ASSERT_TRUE(cache.get("b", "y"));
  EXPECT_EQ((*cache.get("b", "y"))["metadata"]["resourceVersion"], "3");
  EXPECT_EQ(cache.size(), 2u);
}

TEST(ObjectCache, WatchEventsKeepAndForget) {
  ObjectCache cache;
  EXPECT_TRUE(cache.apply("ADDED", object("a", "x", "1", 1)));
  EXPECT_TRUE(cache.apply("MODIFIED", object("a", "x", "2", 2)));
  EXPECT_EQ((*cache.get("a", "x"))["spec"]["v"], 2);
  EXPECT_TRUE(cache.apply("DELETED", object("a", "x", "3", 2)));
  EXPECT_FALSE(cache.get("a", "x"));
  EXPECT_TRUE(cache.apply("BOOKMARK", json{{"metadata", {{"resourceVersion", "9"}}}}));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(ObjectCache, TheEchoOfAnOwnWriteIsNotNews) {
  // The controller writes through what the API server answered; the watch
  // event for the same resourceVersion then tells nothing new, and the
  // manager does not reconcile the StopMonitor again for it.
  ObjectCache cache;
  cache.written(object("a", "x", "7", 1));
  EXPECT_FALSE(cache.apply("MODIFIED", object("a", "x", "7", 1)));
  EXPECT_TRUE(cache.apply("MODIFIED", object("a", "x", "8", 2)));  // someone else's change
  EXPECT_EQ((*cache.get("a", "x"))["spec"]["v"], 2);
  cache.removed("a", "x");
  EXPECT_FALSE(cache.get("a", "x"));
}

TEST(ObjectCache, NamespacesDoNotMix) {
  ObjectCache cache;
  cache.written(object("a", "x", "1", 1));
  cache.written(object("b", "x", "2", 2));
  EXPECT_EQ((*cache.get("a", "x"))["spec"]["v"], 1);
  EXPECT_EQ((*cache.get("b", "x"))["spec"]["v"], 2);
}

}  // namespace
}  // namespace backstop::kube
