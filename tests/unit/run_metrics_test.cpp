// The Pushgateway path of a grouping: values the path cannot carry as they are
// (a '/', an empty value, spaces) travel base64url-encoded, as the API asks.
#include "metrics/run_metrics.h"

#include <gtest/gtest.h>

namespace backstop::metrics {
namespace {

TEST(PushGrouping, PlainValuesStayReadable) {
  EXPECT_EQ(grouping_path("backstop_stop_monitor", {{"instance", "shard-a"}}),
            "/metrics/job/backstop_stop_monitor/instance/shard-a");
  EXPECT_EQ(grouping_path("backstop_stop_monitor", {}), "/metrics/job/backstop_stop_monitor");
}

TEST(PushGrouping, TheControllersNamespaceSlashNameIsBase64url) {
  // base64url("trading/desk-a") = dHJhZGluZy9kZXNrLWE (no padding needed)
  EXPECT_EQ(grouping_path("backstop_stop_monitor", {{"instance", "trading/desk-a"}}),
            "/metrics/job/backstop_stop_monitor/instance@base64/dHJhZGluZy9kZXNrLWE");
}

TEST(PushGrouping, OtherCharactersEmptyValuesAndTheJobAreEncodedToo) {
  // base64url of "a b?" = YSBiPw (the URL-safe alphabet, no '=' padding)
  EXPECT_EQ(grouping_path("j", {{"instance", "a b?"}}), "/metrics/job/j/instance@base64/YSBiPw");
  EXPECT_EQ(grouping_path("j", {{"instance", ""}}), "/metrics/job/j/instance@base64/=");
  EXPECT_EQ(grouping_path("a/b", {}), "/metrics/job@base64/YS9i");
  // '>' and '?' (0x3e, 0x3f) land on the URL-safe characters '-' and '_'.
  EXPECT_EQ(grouping_path("j", {{"x", ">>>???"}}), "/metrics/job/j/x@base64/Pj4-Pz8_");
}

TEST(PushRecord, CountsFailuresAndKeepsTheLastError) {
  PushRecord record;
  record.add({200, ""});
  EXPECT_EQ(record.failures, 0);
  record.add({400, "HTTP 400: odd number of components"});
  record.add({0, "connection refused"});
  EXPECT_EQ(record.failures, 2);
  EXPECT_EQ(record.last_error, "connection refused");
  EXPECT_EQ(push_text(&record), "metrics push failed (2x): connection refused\n");
  EXPECT_EQ(push_text(nullptr), "");
}

}  // namespace
}  // namespace backstop::metrics
