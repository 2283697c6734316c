// The typed StopMonitor spec: the CRD's defaults and the struct's are the same
// ones (read from crds/, both ways), absent fields take them, and a field the
// controller cannot use is refused with its path and value.
#include "controller/stop_monitor_spec.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>

namespace backstop::controller {
namespace {

using nlohmann::json;

const std::string kCrd = std::string(BACKSTOP_SOURCE_DIR) + "/crds/stopmonitors.backstop.dev.yaml";

YAML::Node spec_schema() {
  const YAML::Node crd = YAML::LoadFile(kCrd);
  return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
}

// Only what the schema requires: every other field takes its default.
json minimal() {
  return json::parse(R"({
    "metadata": {"name": "desk-a", "namespace": "trading", "uid": "0e6f9f7c-1111-4222-8333-944455556666"},
    "spec": {"exchange": {"credentialsSecretRef": {"name": "desk-a-binance"}},
             "database": {"secretRef": {"name": "backstop-postgres"}}}
  })");
}

// Whether the CRD's `default:` (YAML) is the struct's (JSON).
::testing::AssertionResult same_value(const YAML::Node& crd_default, const json& ours) {
  if (ours.is_boolean() && crd_default.as<bool>() == ours.get<bool>()) return ::testing::AssertionSuccess();
  if (ours.is_number_integer() && crd_default.as<long long>() == ours.get<long long>()) {
    return ::testing::AssertionSuccess();
  }
  if (ours.is_string() && crd_default.as<std::string>() == ours.get<std::string>()) {
    return ::testing::AssertionSuccess();
  }
  if (ours.is_object() && crd_default.IsMap() && crd_default.size() == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "the CRD says " << YAML::Dump(crd_default) << ", the struct " << ours.dump();
}

// Every `default:` under `schema` equals the value at the same path in `ours`.
void check_crd_defaults(const YAML::Node& schema, const json& ours, const std::string& path, int& checked) {
  if (schema["default"]) {
    ++checked;
    EXPECT_TRUE(same_value(schema["default"], ours)) << path;
  }
  if (!schema["properties"]) return;
  for (const auto& property : schema["properties"]) {
    const std::string key = property.first.as<std::string>();
    const YAML::Node& child = property.second;
    if (!ours.is_object() || !ours.contains(key)) {
      EXPECT_FALSE(child["default"]) << path << "." << key << " has a default in the CRD but none in the struct";
      continue;
    }
    check_crd_defaults(child, ours[key], path + "." + key, checked);
  }
}

// Every value the struct fills in by itself (not given in `given`) is a CRD `default:`.
void check_struct_defaults(const json& ours, const json& given, const YAML::Node& schema, const std::string& path,
                           int& checked) {
  if (ours.is_object()) {
    for (const auto& [key, value] : ours.items()) {
      const json next_given = given.is_object() && given.contains(key) ? given[key] : json();
      const YAML::Node child = schema["properties"] ? schema["properties"][key] : YAML::Node();
      ASSERT_TRUE(child.IsDefined()) << path << "." << key << " is not in the CRD";
      check_struct_defaults(value, next_given, child, path + "." + key, checked);
    }
    return;
  }
  if (!given.is_null() || ours.is_array()) return;  // given, or a list (empty: every tenant / symbol)
  ++checked;
  ASSERT_TRUE(schema["default"].IsDefined()) << path << " defaults to " << ours.dump() << " in the struct only";
  EXPECT_TRUE(same_value(schema["default"], ours)) << path;
}

// minimal() and the broker Secret's name, so that its key's default is compared too.
json with_rabbitmq() {
  json m = minimal();
  m["spec"]["rabbitmq"] = {{"secretRef", {{"name", "backstop-rabbitmq"}}}};
  return m;
}

TEST(StopMonitorSpec, TheCrdDefaultsAreTheStructDefaults) {
  const json ours = to_json(parse_stop_monitor(with_rabbitmq()).spec);
  int checked = 0;
  check_crd_defaults(spec_schema(), ours, "spec", checked);
  EXPECT_GE(checked, 20);  // the walk did reach the defaults
}

TEST(StopMonitorSpec, EveryStructDefaultIsACrdDefault) {
  const json ours = to_json(parse_stop_monitor(with_rabbitmq()).spec);
  int checked = 0;
  check_struct_defaults(ours, with_rabbitmq()["spec"], spec_schema(), "spec", checked);
  EXPECT_GE(checked, 20);
}

TEST(StopMonitorSpec, AbsentFieldsTakeTheDefaultsAndGivenOnesAreKept) {
  const StopMonitor m = parse_stop_monitor(minimal());
  EXPECT_EQ(m.name, "desk-a");
  EXPECT_EQ(m.namespace_name, "trading");
  EXPECT_EQ(m.spec.stop_monitor.batch_size, 64);
  EXPECT_TRUE(m.spec.trailing_stop.enabled);
  EXPECT_FALSE(m.spec.rabbitmq.has_value());
  EXPECT_EQ(m.spec.database.key, "url");

  json given = minimal();
  given["metadata"].erase("namespace");
  given["spec"]["tenants"] = {3, 1};
  given["spec"]["stopMonitor"] = {{"batchSize", 10}};
  given["spec"]["stream"] = {{"enabled", true}, {"url", "wss://example"}};
  given["spec"]["guardrails"] = {{"maxExecutionsPerMinute", 5}};
  given["spec"]["pushgatewayURL"] = nullptr;  // null: absent
  const StopMonitor g = parse_stop_monitor(given);
  EXPECT_EQ(g.namespace_name, "default");
  EXPECT_EQ(g.spec.tenants, (std::vector<std::int64_t>{3, 1}));
  EXPECT_EQ(g.spec.stop_monitor.batch_size, 10);
  EXPECT_EQ(g.spec.stop_monitor.orders_in_flight, 8);
  EXPECT_EQ(g.spec.stream.url, "wss://example");
  EXPECT_EQ(g.spec.guardrails.max_executions_per_minute, 5);
  EXPECT_EQ(g.spec.guardrails.max_price_age_ms, 30000);
  EXPECT_FALSE(g.spec.pushgateway_url.has_value());
}

TEST(StopMonitorSpec, ErrorsNameTheFieldAndTheValue) {
  struct Case {
    const char* patch;  // merged into minimal()
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"({"spec": {"stopMonitor": {"batchSize": "64"}}})",
       "spec.stopMonitor.batchSize: expected an integer, got \"64\""},
      {R"({"spec": {"suspend": "yes"}})", "spec.suspend: expected true or false, got \"yes\""},
      {R"({"spec": {"tenants": [1, "two"]}})", "spec.tenants[1]: expected an integer, got \"two\""},
      {R"({"spec": {"symbols": "BTCUSDT"}})", "spec.symbols: expected a list, got \"BTCUSDT\""},
      {R"({"spec": {"image": "backstop:1"}})", "spec.image: expected an object, got \"backstop:1\""},
      {R"({"spec": {"guardrails": {"maxPriceAgeMs": 1e3}}})",
       "spec.guardrails.maxPriceAgeMs: expected an integer, got 1000.0"},
      {R"({"spec": {"stopMonitor": {"ordersInFlight": 4294967296}}})",
       "spec.stopMonitor.ordersInFlight: expected a 32-bit integer, got 4294967296"},
      {R"({"spec": {"exchange": null}})", "spec.exchange.credentialsSecretRef is required"},
      {R"({"spec": {"exchange": {"credentialsSecretRef": {"name": null}}}})",
       "spec.exchange.credentialsSecretRef.name is required"},
      {R"({"spec": {"database": {"secretRef": {"name": 7}}}})",
       "spec.database.secretRef.name: expected a string, got 7"},
      {R"({"spec": {"outboxDrain": {"enabled": true}}})",
       "outboxDrain.enabled needs spec.rabbitmq (the broker Secret)"},
      {R"({"spec": {"rabbitmq": {"secretRef": {}}}})", "spec.rabbitmq.secretRef.name is required"},
      {R"({"metadata": {"uid": null}})", "the StopMonitor has no uid yet (not created by the API server)"},
      {R"({"spec": null})", "spec is required"},
      // Values the schema declares out of range, checked again before they become CronJob arguments.
      {R"({"spec": {"stopMonitor": {"schedule": "61 * * * *"}}})",
       "spec.stopMonitor.schedule: \"61 * * * *\" is not a CronJob schedule: end of range (61) above maximum (59) "
       "in the minute field"},
      {R"({"spec": {"trailingStop": {"schedule": "a b c d e"}}})",
       "spec.trailingStop.schedule: \"a b c d e\" is not a CronJob schedule: failed to parse int from a in the "
       "minute field"},
      {R"({"spec": {"stopMonitor": {"batchSize": -5}}})", "spec.stopMonitor.batchSize: -5 is outside 1..1000"},
      {R"({"spec": {"stopMonitor": {"ordersInFlight": 0}}})", "spec.stopMonitor.ordersInFlight: 0 is outside 1..64"},
      {R"({"spec": {"guardrails": {"maxPriceAgeMs": -1}}})", "spec.guardrails.maxPriceAgeMs: -1 is outside 1..3600000"},
      {R"({"spec": {"tenants": [3, -1]}})", "spec.tenants[1]: -1 is not a tenant id (1 or more)"},
      {R"({"spec": {"symbols": ["BTCUSDT", "btc usdt"]}})",
       "spec.symbols[1]: \"btc usdt\" is not a symbol (2-20 of A-Z, 0-9)"},
      {R"({"spec": {"exchange": {"credentialsSecretRef": {"name": "x"}, "priceSource": "mid"}}})",
       "spec.exchange.priceSource: \"mid\" is not last or book"},
  };
  for (const Case& c : cases) {
    json m = minimal();
    m.merge_patch(json::parse(c.patch));
    try {
      (void)parse_stop_monitor(m);
      ADD_FAILURE() << c.patch << " was accepted";
    } catch (const InvalidSpec& e) {
      EXPECT_EQ(e.what(), c.message) << c.patch;
    }
  }
}

}  // namespace
}  // namespace backstop::controller
