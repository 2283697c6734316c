// The API test server's custom resource checks (tests/kube/custom_resource,
// cel, field_selector): the CEL subset on the shipped CRD's rules, pruning
// paths, and the field errors with the real server's words.
#include "custom_resource.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cel.h"
#include "field_selector.h"

namespace backstop::testing {
namespace {

using nlohmann::json;

std::vector<std::string> shipped_spec_rules() {
  const YAML::Node crd = YAML::LoadFile(std::string(BACKSTOP_SOURCE_DIR) + "/crds/stopmonitors.backstop.dev.yaml");
  std::vector<std::string> rules;
  for (const auto& rule :
       crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"]) {
    rules.push_back(rule["rule"].as<std::string>());
  }
  return rules;
}

bool holds(const std::string& rule, const json& self) {
  const cel::Program::Result r = cel::Program::compile(rule).evaluate(self, nullptr);
  EXPECT_TRUE(r.ok) << rule << ": " << r.error;
  return r.value;
}

TEST(CelSubset, TheShippedCrdsRulesCompileAndDecide) {
  const std::vector<std::string> rules = shipped_spec_rules();
  ASSERT_EQ(rules.size(), 2U);
  EXPECT_TRUE(holds(rules[0], json::object()));
  EXPECT_TRUE(holds(rules[0], {{"outboxDrain", {{"enabled", false}}}}));
  EXPECT_FALSE(holds(rules[0], {{"outboxDrain", {{"enabled", true}}}}));
  EXPECT_TRUE(holds(rules[0], {{"outboxDrain", {{"enabled", true}}}, {"rabbitmq", json::object()}}));
  EXPECT_TRUE(holds(rules[1], {{"guardrails", {{"maxExecutionsPerMinute", 5}}}}));
  EXPECT_TRUE(holds(rules[1], {{"guardrails", {{"maxExecutionsPerMinute", 5}, {"maxExecutionsPerHour", 5}}}}));
  EXPECT_FALSE(holds(rules[1], {{"guardrails", {{"maxExecutionsPerMinute", 6}, {"maxExecutionsPerHour", 5}}}}));
}

TEST(CelSubset, ErrorsAreAbsorbedAsCelDoesAndUnsupportedTextIsRefused) {
  EXPECT_TRUE(holds("has(self.a) && self.a.b == 'x' || true", json::object()));
  EXPECT_TRUE(holds("self.a.size() > 2 ? false : 'ab' in self.a", {{"a", {"ab", "c"}}}));
  EXPECT_TRUE(holds("size(self.s) == 3 && self.s.startsWith('ab') && -self.n + 2 * 3 == 1", {{"s", "abc"}, {"n", 5}}));
  const cel::Program::Result missing = cel::Program::compile("self.a == 1").evaluate(json::object(), nullptr);
  EXPECT_FALSE(missing.ok);
  EXPECT_EQ(missing.error, "no such key: a");
  for (const char* rule : {"self.all(x, x > 0)", "int(self.a) > 0", "self.a == {'k': 1}", "other > 1", "1u == 1"}) {
    EXPECT_THROW((void)cel::Program::compile(rule), cel::CompileError) << rule;
  }
  const json schema = {{"type", "object"}, {"properties", {{"a", {{"type", "integer"}}}}}};
  EXPECT_EQ(cel::Program::compile("has(self.a) && self.b > 0").check_fields(schema), "undefined field 'b'");
  EXPECT_EQ(cel::Program::compile("self.a > 0").check_fields(schema), "");
}

TEST(CustomResource, UnknownFieldsArePrunedAtEveryLevelWithTheirPaths) {
  const json schema = {
      {"type", "object"},
      {"properties",
       {{"spec",
         {{"type", "object"},
          {"properties",
           {{"list",
             {{"type", "array"}, {"items", {{"type", "object"}, {"properties", {{"k", {{"type", "string"}}}}}}}}},
            {"free", {{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}}},
            {"n", {{"type", "integer"}}}}}}}}}};
  json object = {{"apiVersion", "x/v1"},
                 {"kind", "X"},
                 {"metadata", {{"name", "a"}, {"bogus", 1}}},
                 {"spec", {{"list", {{{"k", "v"}, {"z", 1}}}}, {"free", {{"any", 1}}}, {"n", nullptr}, {"foo", 2}}},
                 {"top", true}};
  EXPECT_EQ(prune_custom_resource(object, schema),
            (std::vector<std::string>{"metadata.bogus", "spec.foo", "spec.list[0].z", "top"}));
  EXPECT_EQ(object.dump(),
            R"({"apiVersion":"x/v1","kind":"X","metadata":{"name":"a"},"spec":{"free":{"any":1},"list":[{"k":"v"}]}})");
}

TEST(CustomResource, ErrorsReadAsTheRealServersAndBlockTheCelRules) {
  const json schema = {
      {"type", "object"},
      {"properties",
       {{"spec",
         {{"type", "object"},
          {"required", {"name"}},
          {"x-kubernetes-validations", {{{"rule", "self.n > 1"}}}},
          {"properties",
           {{"name", {{"type", "string"}, {"maxLength", 3}}},
            {"n", {{"type", "integer"}, {"maximum", 10}}},
            {"when", {{"type", "string"}, {"format", "date-time"}}},
            {"keys",
             {{"type", "array"},
              {"x-kubernetes-list-type", "map"},
              {"x-kubernetes-list-map-keys", {"type"}},
              {"items", {{"type", "object"}, {"properties", {{"type", {{"type", "string"}}}}}}}}}}}}}}}};
  auto messages = [&](const json& spec) {
    std::vector<std::string> out;
    for (const FieldError& e :
         validate_custom_resource({{"metadata", {{"name", "a"}}}, {"spec", spec}}, schema, nullptr)) {
      out.push_back(e.message());
    }
    return out;
  };
  EXPECT_EQ(messages({{"name", "abc"}, {"n", 1}}),
            (std::vector<std::string>{"spec: Invalid value: \"object\": failed rule: self.n > 1"}));
  EXPECT_EQ(
      messages({{"name", "abcd"}, {"n", 11}, {"when", "yesterday"}, {"keys", {{{"type", "A"}}, {{"type", "A"}}}}}),
      (std::vector<std::string>{
          "spec.n: Invalid value: 11: spec.n in body should be less than or equal to 10",
          "spec.name: Too long: may not be more than 3 bytes",
          "spec.when: Invalid value: \"yesterday\": spec.when in body must be of type date-time: \"yesterday\"",
          "spec.keys[1]: Duplicate value: map[string]interface {}{\"type\":\"A\"}",
          "<nil>: Invalid value: \"null\": some validation rules were not checked because the object was "
          "invalid; correct the existing errors to complete validation"}));
  EXPECT_EQ(messages({{"n", 2}})[0], "spec.name: Required value");
}

TEST(FieldSelector, SupportsTheRealServersFieldsAndRefusesOthers) {
  Resource events;
  events.plural = "events";
  const json event = {{"metadata", {{"name", "e1"}}},
                      {"involvedObject", {{"kind", "StopMonitor"}, {"name", "desk-a"}}},
                      {"source", {{"component", "backstop-controller"}}},
                      {"type", "Warning"}};
  EXPECT_TRUE(FieldSelector::parse("involvedObject.name=desk-a,type==Warning", events).matches(event));
  EXPECT_TRUE(FieldSelector::parse("source=backstop-controller,reason!=X", events).matches(event));
  EXPECT_FALSE(FieldSelector::parse("involvedObject.kind!=StopMonitor", events).matches(event));
  Resource monitors;
  monitors.plural = "stopmonitors";
  EXPECT_THROW((void)FieldSelector::parse("involvedObject.name=x", monitors), std::invalid_argument);
  try {
    (void)FieldSelector::parse("spec.suspend=true", monitors);
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "field label not supported: spec.suspend");
  }
}

}  // namespace
}  // namespace backstop::testing
