// The StopMonitor CRD (crds/) as Kubernetes and `kubectl explain` need it: a
// structural schema with a type and a description on every field (but the root
// metadata, which may carry none), valid
// patterns, the status subresource and printer columns; and the examples use
// only declared fields, of the declared types, matching their patterns/enums.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <regex>
#include <string>

namespace {

const std::string kDir = std::string(BACKSTOP_SOURCE_DIR) + "/crds";

YAML::Node crd() { return YAML::LoadFile(kDir + "/stopmonitors.backstop.dev.yaml"); }

// Every schema node: a type (or x-kubernetes-int-or-string) and a description,
// except the root metadata: the API server owns ObjectMeta's schema and refuses
// a CRD whose root metadata says anything but type: object (and name /
// generateName restrictions), a description included.
void check_schema(const YAML::Node& node, const std::string& path, int& fields) {
  ++fields;
  EXPECT_TRUE(node["type"].IsDefined()) << path << " has no type";
  if (path == ".metadata") {
    EXPECT_FALSE(node["description"].IsDefined()) << "the root metadata may not have a description";
  } else {
    EXPECT_TRUE(node["description"].IsDefined() && !node["description"].as<std::string>().empty())
        << path << " has no description";
  }
  if (node["pattern"]) {
    EXPECT_NO_THROW(std::regex(node["pattern"].as<std::string>())) << path << " pattern does not compile";
  }
  if (node["properties"]) {
    for (const auto& p : node["properties"]) check_schema(p.second, path + "." + p.first.as<std::string>(), fields);
  }
  if (node["items"]) check_schema(node["items"], path + "[]", fields);
}

// An example value against its schema node.
void check_value(const YAML::Node& value, const YAML::Node& schema, const std::string& path) {
  const std::string type = schema["type"].as<std::string>();
  if (type == "object") {
    ASSERT_TRUE(value.IsMap()) << path << " should be an object";
    for (const auto& kv : value) {
      const std::string key = kv.first.as<std::string>();
      if (path.empty() && (key == "apiVersion" || key == "kind" || key == "metadata")) continue;
      ASSERT_TRUE(schema["properties"] && schema["properties"][key]) << path << "." << key << " is not in the schema";
      check_value(kv.second, schema["properties"][key], path + "." + key);
    }
    if (schema["required"]) {
      for (const auto& r : schema["required"]) EXPECT_TRUE(value[r.as<std::string>()]) << path << " misses " << r;
    }
  } else if (type == "array") {
    ASSERT_TRUE(value.IsSequence()) << path << " should be a list";
    for (std::size_t i = 0; i < value.size(); ++i)
      check_value(value[i], schema["items"], path + "[" + std::to_string(i) + "]");
  } else {
    ASSERT_TRUE(value.IsScalar()) << path;
    const std::string text = value.as<std::string>();
    if (type == "integer") {
      EXPECT_TRUE(std::regex_match(text, std::regex("-?[0-9]+"))) << path << " = " << text;
    }
    if (type == "boolean") {
      EXPECT_TRUE(text == "true" || text == "false") << path << " = " << text;
    }
    if (schema["pattern"]) {
      EXPECT_TRUE(std::regex_search(text, std::regex(schema["pattern"].as<std::string>()))) << path << " = " << text;
    }
    if (schema["enum"]) {
      bool found = false;
      for (const auto& e : schema["enum"]) found = found || e.as<std::string>() == text;
      EXPECT_TRUE(found) << path << " = " << text << " is not one of the enum";
    }
  }
}

TEST(StopMonitorCrd, IdentityScopeAndNames) {
  const YAML::Node c = crd();
  EXPECT_EQ(c["apiVersion"].as<std::string>(), "apiextensions.k8s.io/v1");
  EXPECT_EQ(c["metadata"]["name"].as<std::string>(), "stopmonitors.backstop.dev");
  EXPECT_EQ(c["spec"]["group"].as<std::string>(), "backstop.dev");
  EXPECT_EQ(c["spec"]["scope"].as<std::string>(), "Namespaced");
  EXPECT_EQ(c["spec"]["names"]["shortNames"][0].as<std::string>(), "sm");
  const YAML::Node v = c["spec"]["versions"][0];
  EXPECT_EQ(v["name"].as<std::string>(), "v1alpha1");
  EXPECT_TRUE(v["subresources"]["status"].IsMap());
  std::vector<std::string> columns;
  for (const auto& col : v["additionalPrinterColumns"]) columns.push_back(col["name"].as<std::string>());
  EXPECT_EQ(columns, (std::vector<std::string>{"Schedule", "Suspended", "Ready", "Last Run", "Message", "Age"}));
}

TEST(StopMonitorCrd, EveryFieldHasATypeADescriptionAndAValidPattern) {
  int fields = 0;
  check_schema(crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"], "", fields);
  EXPECT_GT(fields, 60);
}

TEST(StopMonitorCrd, ExamplesUseOnlyDeclaredFields) {
  const YAML::Node schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
  int examples = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kDir + "/examples")) {
    if (entry.path().filename().string().rfind("stopmonitor-", 0) != 0) continue;  // the Secrets it names
    const YAML::Node example = YAML::LoadFile(entry.path().string());
    EXPECT_EQ(example["apiVersion"].as<std::string>(), "backstop.dev/v1alpha1") << entry.path();
    EXPECT_EQ(example["kind"].as<std::string>(), "StopMonitor") << entry.path();
    check_value(example, schema, "");
    ++examples;
  }
  EXPECT_GE(examples, 1);
}

TEST(StopMonitorCrd, TheCheckerCatchesAnUndeclaredField) {
  const YAML::Node schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
  const YAML::Node bad = YAML::Load(
      "spec: {exchange: {credentialsSecretRef: {name: x}}, database: {secretRef: {name: y}}, "
      "stopMonitor: {shedule: '* * * * *'}}");
  ::testing::TestPartResultArray failures;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
    check_value(bad, schema, "");
  }
  ASSERT_EQ(failures.size(), 1);
  EXPECT_NE(std::string(failures.GetTestPartResult(0).message()).find(".spec.stopMonitor.shedule is not in the schema"),
            std::string::npos);
}

}  // namespace
