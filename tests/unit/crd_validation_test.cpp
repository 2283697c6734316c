// The API test server's CustomResourceDefinition validation (tests/kube/crd_validation):
// for each rule of the real API server a CRD it accepts and one it refuses, with
// the exact field path and message the real server prints; the 422 Status; and
// the shipped StopMonitor CRD (and the chart's copy) passing.
#include "crd_validation.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace backstop::testing {
namespace {

using nlohmann::json;

const std::string kSource = BACKSTOP_SOURCE_DIR;
// A one-version CRD: the real server reports its schema under spec.validation.
const std::string kRoot = "spec.validation.openAPIV3Schema";
const std::string kA = kRoot + ".properties[a]";
const std::string kMetadataForbidden =
    kRoot +
    ".properties[metadata]: Forbidden: must not specify anything other than name and "
    "generateName, but metadata is implicitly specified";

// widgets.example.com, one served storage version v1 with this schema.
json crd(const json& schema) {
  return {
      {"apiVersion", "apiextensions.k8s.io/v1"},
      {"kind", "CustomResourceDefinition"},
      {"metadata", {{"name", "widgets.example.com"}}},
      {"spec",
       {{"group", "example.com"},
        {"scope", "Namespaced"},
        {"names", {{"plural", "widgets"}, {"singular", "widget"}, {"kind", "Widget"}, {"listKind", "WidgetList"}}},
        {"versions",
         json::array(
             {{{"name", "v1"}, {"served", true}, {"storage", true}, {"schema", {{"openAPIV3Schema", schema}}}}})}}}};
}

std::vector<std::string> messages(const std::vector<FieldError>& errors) {
  std::vector<std::string> out;
  for (const FieldError& e : errors) out.push_back(e.message());
  return out;
}
std::vector<std::string> errors_of(const json& c) { return messages(validate_crd(c)); }
// The errors of a CRD whose root schema is this JSON.
std::vector<std::string> schema_errors(const char* schema) { return errors_of(crd(json::parse(schema))); }
// The errors of a CRD whose root schema has one property, a, with this schema.
std::vector<std::string> property_errors(const char* property) {
  return errors_of(crd({{"type", "object"}, {"properties", {{"a", json::parse(property)}}}}));
}
using Errors = std::vector<std::string>;

// YAML as kubectl sends it: JSON (quoted scalars stay strings).
json to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = to_json(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node) out.push_back(to_json(item));
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string text = node.as<std::string>();
      if (node.Tag() == "!") return text;
      if (text == "true" || text == "false") return text == "true";
      if (text == "null" || text == "~") return nullptr;
      try {
        std::size_t used = 0;
        const long long value = std::stoll(text, &used);
        if (used == text.size()) return value;
      } catch (const std::exception&) {
      }
      return text;
    }
    default:
      return nullptr;
  }
}
json shipped_crd(const std::string& dir) {
  return to_json(YAML::LoadFile(kSource + dir + "/stopmonitors.backstop.dev.yaml"));
}

// --- the CRDs of this repository

TEST(CrdValidation, TheShippedCrdAndTheChartsCopyPass) {
  for (const char* dir : {"/crds", "/charts/backstop/crds"}) {
    const json c = shipped_crd(dir);
    ASSERT_TRUE(c["spec"]["versions"][0]["schema"]["openAPIV3Schema"].is_object()) << dir;
    EXPECT_EQ(errors_of(c), Errors{}) << dir;
  }
}

// Issue 12: a real v1.24 API server refused the CRD for the description on its root metadata.
TEST(CrdValidation, TheShippedCrdWithADescriptionOnItsRootMetadataIsRefusedAsARealServerRefusesIt) {
  json c = shipped_crd("/crds");
  c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["metadata"]["description"] =
      "Standard object metadata.";
  const std::vector<FieldError> errors = validate_crd(c);
  ASSERT_EQ(messages(errors), Errors{kMetadataForbidden});
  EXPECT_EQ(errors[0].path, kRoot + ".properties[metadata]");
  EXPECT_EQ(errors[0].type, FieldError::Type::Forbidden);
  EXPECT_EQ(errors[0].reason(), "FieldValueForbidden");
}

// --- the root

TEST(CrdValidation, RootMustBeTypeObject) {
  EXPECT_EQ(schema_errors(R"({"type": "object"})"), Errors{});
  EXPECT_EQ(schema_errors(R"({"properties": {"spec": {"type": "object"}}})"),
            Errors{kRoot + ".type: Required value: must not be empty at the root"});
  EXPECT_EQ(schema_errors(R"({"type": "string"})"),
            Errors{kRoot + ".type: Invalid value: \"string\": must be object at the root"});
  EXPECT_EQ(schema_errors(R"({"type": "object", "nullable": true})"),
            Errors{kRoot + ".nullable: Forbidden: nullable cannot be true at the root"});
  EXPECT_EQ(schema_errors(R"({"type": "object", "additionalProperties": {"type": "string"}})"),
            Errors{kRoot + ".additionalProperties: Forbidden: must not be used at the root"});
}

TEST(CrdValidation, RootMetadataMaySayOnlyTypeObjectAndRestrictNameAndGenerateName) {
  EXPECT_EQ(schema_errors(R"({"type": "object", "properties": {"metadata": {"type": "object"}}})"), Errors{});
  EXPECT_EQ(schema_errors(R"({"type": "object", "properties": {"metadata": {"type": "object", "properties": {
              "name": {"type": "string", "maxLength": 63, "description": "a restriction on the name"},
              "generateName": {"type": "string"}}}}})"),
            Errors{});
  EXPECT_EQ(schema_errors(R"({"type": "object", "properties": {"metadata": {"type": "object",
              "description": "Standard object metadata."}}})"),
            Errors{kMetadataForbidden});
  EXPECT_EQ(schema_errors(R"({"type": "object", "properties": {"metadata": {"type": "object",
              "properties": {"name": {"type": "string"}, "labels": {"type": "object"}}}}})"),
            Errors{kMetadataForbidden});
  EXPECT_EQ(schema_errors(R"({"type": "object", "properties": {"metadata": {"type": "object",
              "x-kubernetes-preserve-unknown-fields": true}}})"),
            Errors{kMetadataForbidden});
  EXPECT_EQ(schema_errors(R"({"type": "object", "properties": {"metadata": {"type": "string"}}})"),
            Errors{kRoot + ".properties[metadata].type: Invalid value: \"string\": must be object"});
  // Without a type: not an object, and a field without a type (no Forbidden: nothing else is said).
  EXPECT_EQ(
      schema_errors(R"({"type": "object", "properties": {"metadata": {}}})"),
      (Errors{kRoot + ".properties[metadata].type: Invalid value: \"\": must be object",
              kRoot + ".properties[metadata].type: Required value: must not be empty for specified object fields"}));
  // Only at the root: a nested metadata is an ordinary field.
  EXPECT_EQ(
      property_errors(R"({"type": "object", "properties": {"metadata": {"type": "object", "description": "d"}}})"),
      Errors{});
}

TEST(CrdValidation, KindAndApiVersionOfTheResourceAreStrings) {
  EXPECT_EQ(schema_errors(
                R"({"type": "object", "properties": {"kind": {"type": "string"}, "apiVersion": {"type": "string"}}})"),
            Errors{});
  EXPECT_EQ(schema_errors(R"({"type": "object", "properties": {"kind": {"type": "integer"}}})"),
            Errors{kRoot + ".properties[kind].type: Invalid value: \"integer\": must be string"});
}

// --- every node

TEST(CrdValidation, EveryNodeHasATypeUnlessIntOrStringOrPreservingUnknownFields) {
  EXPECT_EQ(property_errors(R"({"x-kubernetes-int-or-string": true})"), Errors{});
  EXPECT_EQ(property_errors(R"({"x-kubernetes-preserve-unknown-fields": true})"), Errors{});
  EXPECT_EQ(property_errors(R"({"description": "no type"})"),
            Errors{kA + ".type: Required value: must not be empty for specified object fields"});
  EXPECT_EQ(property_errors(R"({"type": "array", "items": {"description": "no type"}})"),
            Errors{kA + ".items.type: Required value: must not be empty for specified array items"});
  EXPECT_EQ(property_errors(R"({"type": "int"})"),
            (Errors{kA + ".type: Unsupported value: \"int\": supported values: \"array\", \"boolean\", \"integer\", "
                         "\"number\", \"object\", \"string\""}));
}

TEST(CrdValidation, PreserveUnknownFieldsMustBeTrueIfSet) {
  EXPECT_EQ(property_errors(R"({"type": "object", "x-kubernetes-preserve-unknown-fields": true})"), Errors{});
  EXPECT_EQ(property_errors(R"({"type": "object", "x-kubernetes-preserve-unknown-fields": false})"),
            Errors{kA + ".x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined"});
}

TEST(CrdValidation, IntOrStringExcludesPreserveUnknownFieldsAndEmbeddedResource) {
  EXPECT_EQ(
      property_errors(R"({"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]})"),
      Errors{});
  EXPECT_EQ(property_errors(R"({"x-kubernetes-int-or-string": true,
              "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}, {"pattern": "^[0-9]+%?$"}]})"),
            Errors{});
  // Accepted by the real server too (no rule against it): only the anyOf/allOf forms are checked.
  EXPECT_EQ(property_errors(R"({"type": "string", "x-kubernetes-int-or-string": true})"), Errors{});
  EXPECT_EQ(property_errors(R"({"x-kubernetes-int-or-string": true, "x-kubernetes-preserve-unknown-fields": true})"),
            Errors{kA + ".x-kubernetes-preserve-unknown-fields: Invalid value: true: must be false if "
                        "x-kubernetes-int-or-string is true"});
  EXPECT_EQ(property_errors(R"({"type": "object", "x-kubernetes-int-or-string": true,
              "x-kubernetes-embedded-resource": true, "properties": {"kind": {"type": "string"}}})"),
            Errors{kA + ".x-kubernetes-embedded-resource: Invalid value: true: must be false if "
                        "x-kubernetes-int-or-string is true"});
}

TEST(CrdValidation, EmbeddedResourceNeedsTypeObjectAndFields) {
  EXPECT_EQ(property_errors(R"({"type": "object", "x-kubernetes-embedded-resource": true,
              "x-kubernetes-preserve-unknown-fields": true})"),
            Errors{});
  EXPECT_EQ(
      property_errors(R"({"x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true})"),
      Errors{kA + ".type: Required value: must be object if x-kubernetes-embedded-resource is true"});
  EXPECT_EQ(property_errors(R"({"type": "string", "x-kubernetes-embedded-resource": true,
              "x-kubernetes-preserve-unknown-fields": true})"),
            Errors{kA + ".type: Invalid value: \"string\": must be object if x-kubernetes-embedded-resource is true"});
  EXPECT_EQ(property_errors(R"({"type": "object", "x-kubernetes-embedded-resource": true})"),
            Errors{kA + ".properties: Required value: must not be empty if x-kubernetes-embedded-resource is true "
                        "without x-kubernetes-preserve-unknown-fields"});
}

TEST(CrdValidation, AnArrayHasItems) {
  EXPECT_EQ(property_errors(R"({"type": "array", "items": {"type": "string"}})"), Errors{});
  EXPECT_EQ(property_errors(R"({"type": "array"})"), Errors{kA + ".items: Required value: must be specified"});
  EXPECT_EQ(property_errors(R"({"type": "array", "items": [{"type": "string"}]})"),
            Errors{kA + ".items: Forbidden: items must be a schema object and not an array"});
}

TEST(CrdValidation, PropertiesAndAdditionalPropertiesAreMutuallyExclusive) {
  EXPECT_EQ(property_errors(R"({"type": "object", "additionalProperties": {"type": "string"}})"), Errors{});
  EXPECT_EQ(
      property_errors(R"({"type": "object", "properties": {"b": {"type": "string"}}, "additionalProperties": true})"),
      Errors{});
  EXPECT_EQ(property_errors(R"({"type": "object", "properties": {"b": {"type": "string"}},
              "additionalProperties": {"type": "string"}})"),
            Errors{kA + ".additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"});
  // false counts as a schema beside properties; alone it is accepted since Kubernetes 1.15.
  EXPECT_EQ(
      property_errors(R"({"type": "object", "properties": {"b": {"type": "string"}}, "additionalProperties": false})"),
      Errors{kA + ".additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"});
  EXPECT_EQ(property_errors(R"({"type": "object", "additionalProperties": false})"), Errors{});
}

TEST(CrdValidation, UniqueItemsIsForbidden) {
  EXPECT_EQ(property_errors(R"({"type": "array", "items": {"type": "string"}, "uniqueItems": false})"), Errors{});
  EXPECT_EQ(
      property_errors(R"({"type": "array", "items": {"type": "string"}, "uniqueItems": true})"),
      Errors{kA + ".uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes "
                  "quadratic"});
}

TEST(CrdValidation, JsonSchemaFeaturesKubernetesDoesNotSupportAreForbidden) {
  EXPECT_EQ(property_errors(R"({"type": "object", "$ref": "#/definitions/b"})"),
            Errors{kA + ".$ref: Forbidden: $ref is not supported"});
  EXPECT_EQ(property_errors(R"({"type": "object", "patternProperties": {"^x": {"type": "string"}}})"),
            Errors{kA + ".patternProperties: Forbidden: patternProperties is not supported"});
}

// --- value validations (allOf, anyOf, oneOf, not)

TEST(CrdValidation, ValueValidationsOnlyValidate) {
  EXPECT_EQ(
      property_errors(R"({"type": "string", "allOf": [{"pattern": "^a"}], "anyOf": [{"minLength": 2}, {"enum": ["x"]}],
              "oneOf": [{"maxLength": 5}], "not": {"enum": ["forbidden"]}})"),
      Errors{});
  EXPECT_EQ(property_errors(R"({"type": "string", "allOf": [{"description": "d"}]})"),
            Errors{kA + ".allOf[0].description: Forbidden: must be empty to be structural"});
  EXPECT_EQ(
      property_errors(R"({"type": "object", "properties": {"b": {"type": "string"}}, "anyOf": [{"type": "object",
              "title": "t", "nullable": true, "default": {}, "additionalProperties": true,
              "x-kubernetes-preserve-unknown-fields": true, "x-kubernetes-map-type": "atomic",
              "x-kubernetes-validations": [{"rule": "true"}], "properties": {"b": {"x-kubernetes-int-or-string": true},
              "metadata": {}}}]})"),
      (Errors{kA + ".anyOf[0].additionalProperties: Forbidden: must be undefined to be structural",
              kA + ".anyOf[0].default: Forbidden: must be undefined to be structural",
              kA + ".anyOf[0].nullable: Forbidden: must be false to be structural",
              kA + ".anyOf[0].properties[b].x-kubernetes-int-or-string: Forbidden: must be false to be structural",
              kA + ".anyOf[0].properties[metadata]: Forbidden: must not be specified in a nested context",
              kA + ".anyOf[0].title: Forbidden: must be empty to be structural",
              kA + ".anyOf[0].type: Forbidden: must be empty to be structural",
              kA + ".anyOf[0].x-kubernetes-map-type: Forbidden: must be undefined to be structural",
              kA + ".anyOf[0].x-kubernetes-preserve-unknown-fields: Forbidden: must be false to be structural",
              kA + ".anyOf[0].x-kubernetes-validations: Forbidden: must be empty to be structural"}));
  EXPECT_EQ(
      property_errors(R"({"type": "array", "items": {"type": "string"}, "not": {"x-kubernetes-list-type": "set"}})"),
      (Errors{kA + ".not.type: Required value: must be array if x-kubernetes-list-type is specified",
              kA + ".not.x-kubernetes-list-type: Forbidden: must be undefined to be structural"}));
}

TEST(CrdValidation, PatternsCompile) {
  EXPECT_EQ(property_errors(R"({"type": "string", "pattern": "^[a-z]+$"})"), Errors{});
  const Errors errors = property_errors(R"({"type": "string", "pattern": "^[a-z+$"})");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(
      errors[0].rfind(kA + ".pattern: Invalid value: \"^[a-z+$\": must be a valid regular expression, but isn't: ", 0),
      0u)
      << errors[0];
}

// --- list and map types

TEST(CrdValidation, ListTypeIsAtomicSetOrMapOnAnArray) {
  for (const char* type : {"atomic", "set"}) {
    EXPECT_EQ(property_errors((R"({"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": ")" +
                               std::string(type) + "\"}")
                                  .c_str()),
              Errors{})
        << type;
  }
  EXPECT_EQ(
      property_errors(R"({"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "bag"})"),
      Errors{kA +
             ".x-kubernetes-list-type: Unsupported value: \"bag\": supported values: \"atomic\", \"set\", \"map\""});
  EXPECT_EQ(property_errors(R"({"type": "object", "x-kubernetes-list-type": "set"})"),
            Errors{kA + ".type: Invalid value: \"object\": must be array if x-kubernetes-list-type is specified"});
  EXPECT_EQ(property_errors(R"({"type": "array", "items": {"type": "object", "properties": {"b": {"type": "string"}}},
              "x-kubernetes-list-type": "set"})"),
            Errors{kA + ".items.x-kubernetes-map-type: Invalid value: \"null\": must be atomic as item of a list with "
                        "x-kubernetes-list-type=set"});
  EXPECT_EQ(property_errors(R"({"type": "array", "items": {"type": "object", "x-kubernetes-map-type": "atomic",
              "properties": {"b": {"type": "string"}}}, "x-kubernetes-list-type": "set"})"),
            Errors{});
}

TEST(CrdValidation, ListTypeMapNeedsKeysNamingRequiredScalarItemProperties) {
  EXPECT_EQ(property_errors(R"({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
              "items": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}})"),
            Errors{});
  EXPECT_EQ(property_errors(R"({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
              "items": {"type": "object", "properties": {"id": {"type": "string", "default": "x"}}}})"),
            Errors{});
  EXPECT_EQ(
      property_errors(R"({"type": "array", "x-kubernetes-list-type": "map",
              "items": {"type": "object", "properties": {"id": {"type": "string"}}}})"),
      Errors{kA + ".x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"});
  EXPECT_EQ(property_errors(R"({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
              "items": {"type": "object", "properties": {"name": {"type": "string"}}}})"),
            Errors{kA + ".x-kubernetes-list-map-keys: Invalid value: []string{\"id\"}: entries must all be names of "
                        "item properties"});
  EXPECT_EQ(
      property_errors(R"({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
              "items": {"type": "object", "properties": {"id": {"type": "string"}}}})"),
      Errors{kA + ".items.properties[id].default: Required value: this property is in x-kubernetes-list-map-keys, "
                  "so it must have a default or be a required property"});
  EXPECT_EQ(
      property_errors(R"({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
              "items": {"type": "object", "required": ["id"], "properties": {"id": {"type": "object"}}}})"),
      Errors{kA + ".items.properties[id].type: Invalid value: \"object\": must be a scalar type if parent array's "
                  "x-kubernetes-list-type is map"});
  EXPECT_EQ(
      property_errors(R"({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
              "items": {"type": "string"}})"),
      Errors{kA + ".items.type: Invalid value: \"string\": must be object if parent array's x-kubernetes-list-type "
                  "is map"});
}

TEST(CrdValidation, ListMapKeysOnlyWithListTypeMap) {
  EXPECT_EQ(
      property_errors(R"({"type": "array", "x-kubernetes-list-map-keys": ["id"],
              "items": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}})"),
      Errors{kA + ".x-kubernetes-list-type: Required value: must be map if x-kubernetes-list-map-keys is non-empty"});
  EXPECT_EQ(
      property_errors(R"({"type": "array", "x-kubernetes-list-type": "atomic", "x-kubernetes-list-map-keys": ["id"],
              "items": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}})"),
      Errors{kA + ".x-kubernetes-list-type: Invalid value: \"atomic\": must be map if x-kubernetes-list-map-keys is "
                  "non-empty"});
}

TEST(CrdValidation, MapTypeIsGranularOrAtomicOnAnObject) {
  EXPECT_EQ(property_errors(R"({"type": "object", "x-kubernetes-map-type": "granular"})"), Errors{});
  EXPECT_EQ(property_errors(R"({"type": "object", "x-kubernetes-map-type": "atomic"})"), Errors{});
  EXPECT_EQ(
      property_errors(R"({"type": "object", "x-kubernetes-map-type": "merged"})"),
      Errors{kA + ".x-kubernetes-map-type: Unsupported value: \"merged\": supported values: \"atomic\", \"granular\""});
  EXPECT_EQ(property_errors(R"({"type": "string", "x-kubernetes-map-type": "atomic"})"),
            Errors{kA + ".type: Invalid value: \"string\": must be object if x-kubernetes-map-type is specified"});
}

// --- defaults

TEST(CrdValidation, DefaultsAreForbiddenInTheTopLevelMetadataKindAndApiVersion) {
  EXPECT_EQ(schema_errors(R"({"type": "object", "properties": {"metadata": {"type": "object", "default": {}}}})"),
            Errors{kRoot + ".properties[metadata].default: Forbidden: must not be set in top-level metadata"});
  EXPECT_EQ(schema_errors(R"({"type": "object", "properties": {"metadata": {"type": "object",
              "properties": {"name": {"type": "string", "default": "x"}}}}})"),
            Errors{kRoot + ".properties[metadata].properties[name].default: Forbidden: must not be set in top-level "
                           "metadata"});
  EXPECT_EQ(schema_errors(R"({"type": "object", "properties": {"kind": {"type": "string", "default": "Widget"}}})"),
            Errors{kRoot + ".properties[kind].default: Forbidden: must not be set in top-level kind"});
}

TEST(CrdValidation, DefaultsValidateAgainstTheirSchema) {
  EXPECT_EQ(property_errors(R"({"type": "integer", "minimum": 1, "maximum": 10, "default": 10})"), Errors{});
  EXPECT_EQ(property_errors(R"({"type": "integer", "default": "ten"})"),
            Errors{kA + ".default: Invalid value: \"string\": in body must be of type integer: \"string\""});
  EXPECT_EQ(property_errors(R"({"type": "integer", "minimum": 1, "default": 0})"),
            Errors{kA + ".default: Invalid value: 0: in body should be greater than or equal to 1"});
  EXPECT_EQ(property_errors(R"({"type": "integer", "maximum": 10, "exclusiveMaximum": true, "default": 10})"),
            Errors{kA + ".default: Invalid value: 10: in body should be less than 10"});
  EXPECT_EQ(property_errors(R"({"type": "number", "multipleOf": 0.5, "default": 0.7})"),
            Errors{kA + ".default: Invalid value: 0.7: in body should be a multiple of 0.5"});
  EXPECT_EQ(property_errors(R"({"type": "string", "enum": ["last", "book"], "default": "mid"})"),
            Errors{kA + ".default: Unsupported value: \"mid\": supported values: \"last\", \"book\""});
  EXPECT_EQ(property_errors(R"({"type": "string", "pattern": "^[a-z]+$", "default": "ABC"})"),
            Errors{kA + ".default: Invalid value: \"ABC\": in body should match '^[a-z]+$'"});
  EXPECT_EQ(property_errors(R"({"type": "string", "maxLength": 3, "default": "abcd"})"),
            Errors{kA + ".default: Invalid value: \"abcd\": in body should be at most 3 chars long"});
  EXPECT_EQ(property_errors(R"({"type": "string", "minLength": 1, "default": ""})"),
            Errors{kA + ".default: Invalid value: \"\": in body should be at least 1 chars long"});
  EXPECT_EQ(property_errors(R"({"type": "array", "items": {"type": "integer"}, "maxItems": 2, "default": [1, 2, 3]})"),
            Errors{kA + ".default: Invalid value: [1,2,3]: in body should have at most 2 items"});
  EXPECT_EQ(property_errors(R"({"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1,
              "default": [1, 0]})"),
            Errors{kA + ".default.1: Invalid value: 0: 1 in body should be greater than or equal to 1"});
  EXPECT_EQ(property_errors(R"({"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1,
              "default": {}})"),
            Errors{kA + ".default: Invalid value: {}: in body should have at least 1 properties"});
}

TEST(CrdValidation, ObjectDefaultsHaveTheirRequiredFieldsAndNoUnknownOnes) {
  EXPECT_EQ(
      property_errors(R"({"type": "object", "properties": {"b": {"type": "string", "default": "x"}}, "default": {}})"),
      Errors{});
  EXPECT_EQ(property_errors(R"({"type": "object", "required": ["b"], "properties": {"b": {"type": "string"}},
              "default": {}})"),
            Errors{kA + ".default.b: Required value"});
  EXPECT_EQ(property_errors(R"({"type": "object", "properties": {"b": {"type": "string"}}, "default": {"b": 5}})"),
            Errors{kA + ".default.b: Invalid value: \"integer\": b in body must be of type string: \"integer\""});
  EXPECT_EQ(property_errors(R"({"type": "object", "properties": {"b": {"type": "string"}}, "default": {"c": "x"}})"),
            Errors{kA + ".default: Invalid value: {\"c\":\"x\"}: must not have unknown fields"});
  EXPECT_EQ(
      property_errors(R"({"type": "object", "x-kubernetes-preserve-unknown-fields": true, "default": {"c": "x"}})"),
      Errors{});
}

TEST(CrdValidation, DefaultsAreCheckedOnlyOnceTheSchemaIsStructural) {
  // As the real server: a non-structural schema reports that, not its defaults.
  EXPECT_EQ(schema_errors(R"({"type": "object", "properties": {"a": {"type": "integer", "default": "ten"}, "b": {}}})"),
            Errors{kRoot + ".properties[b].type: Required value: must not be empty for specified object fields"});
}

// --- x-kubernetes-validations

TEST(CrdValidation, ValidationRulesHaveARuleAndAOneLineMessage) {
  EXPECT_EQ(
      property_errors(R"({"type": "integer", "x-kubernetes-validations": [{"rule": "self > 0", "message": "positive"},
              {"rule": "self < 10"}]})"),
      Errors{});
  EXPECT_EQ(property_errors(R"({"type": "integer", "x-kubernetes-validations": [{"rule": " ", "message": "m"}]})"),
            Errors{kA + ".x-kubernetes-validations[0].rule: Required value: rule is not specified"});
  EXPECT_EQ(
      property_errors(R"({"type": "integer", "x-kubernetes-validations": [{"rule": "self > 0", "message": " "}]})"),
      Errors{kA + ".x-kubernetes-validations[0].message: Invalid value: \" \": message must be non-empty if "
                  "specified"});
  EXPECT_EQ(
      property_errors(R"({"type": "integer", "x-kubernetes-validations": [{"rule": "self > 0", "message": "a\nb"}]})"),
      Errors{kA + ".x-kubernetes-validations[0].message: Invalid value: \"a\\nb\": message must not contain line "
                  "breaks"});
  EXPECT_EQ(property_errors(R"({"type": "integer", "x-kubernetes-validations": [{"rule": "self > 0 &&\nself < 10"}]})"),
            Errors{kA + ".x-kubernetes-validations[0].message: Required value: message must be specified if rule "
                        "contains line breaks"});
}

// --- versions, names, where a schema is reported

TEST(CrdValidation, VersionsHaveUniqueNamesOneStorageVersionAndSchemas) {
  json c = crd({{"type", "object"}});
  const json v1 = c["spec"]["versions"][0];
  json v2 = v1;
  v2["name"] = "v2";
  v2["storage"] = false;
  c["spec"]["versions"] = {v1, v2};
  EXPECT_EQ(errors_of(c), Errors{});

  json same_name = c;
  same_name["spec"]["versions"][1]["name"] = "v1";
  EXPECT_EQ(errors_of(same_name), Errors{"spec.versions: Invalid value: " + same_name["spec"]["versions"].dump() +
                                         ": must contain unique version names"});
  json two_storage = c;
  two_storage["spec"]["versions"][1]["storage"] = true;
  EXPECT_EQ(errors_of(two_storage), Errors{"spec.versions: Invalid value: " + two_storage["spec"]["versions"].dump() +
                                           ": must have exactly one version marked as storage version"});
  // Every version needs a schema, served or not (as the real server wants on create).
  json no_schema = c;
  no_schema["spec"]["versions"][1].erase("schema");
  no_schema["spec"]["versions"][1]["served"] = false;
  EXPECT_EQ(errors_of(no_schema),
            Errors{"spec.versions[1].schema.openAPIV3Schema: Required value: schemas are required"});
}

TEST(CrdValidation, DifferentSchemasPerVersionAreReportedUnderTheirVersion) {
  json c = crd({{"type", "object"}, {"properties", {{"metadata", {{"type", "object"}, {"description", "m"}}}}}});
  json v2 = c["spec"]["versions"][0];
  v2["name"] = "v2";
  v2["storage"] = false;
  v2["schema"]["openAPIV3Schema"] = {{"type", "object"}};
  c["spec"]["versions"].push_back(v2);
  EXPECT_EQ(errors_of(c), Errors{"spec.versions[0].schema.openAPIV3Schema.properties[metadata]: Forbidden: must not "
                                 "specify anything other than name and generateName, but metadata is implicitly "
                                 "specified"});
}

TEST(CrdValidation, NamesArePresentAndTheCrdIsNamedPluralDotGroup) {
  json c = crd({{"type", "object"}});
  c["spec"]["names"] = {{"plural", "widgets"}, {"kind", "Widget"}};  // singular and listKind default from the kind
  EXPECT_EQ(errors_of(c), Errors{});
  json wrong_name = c;
  wrong_name["metadata"]["name"] = "widgets.example.org";
  EXPECT_EQ(
      errors_of(wrong_name),
      Errors{"metadata.name: Invalid value: \"widgets.example.org\": must be spec.names.plural+\".\"+spec.group"});
  json no_plural = c;
  no_plural["spec"]["names"].erase("plural");
  no_plural["metadata"]["name"] = ".example.com";
  EXPECT_EQ(errors_of(no_plural), Errors{"spec.names.plural: Required value"});
  json no_kind = c;
  no_kind["spec"]["names"].erase("kind");
  EXPECT_EQ(errors_of(no_kind), (Errors{"spec.names.singular: Required value", "spec.names.kind: Required value",
                                        "spec.names.listKind: Required value"}));
  json no_group = c;
  no_group["spec"].erase("group");
  no_group["metadata"]["name"] = "widgets.";
  EXPECT_EQ(errors_of(no_group), Errors{"spec.group: Required value"});
  json bad_scope = c;
  bad_scope["spec"]["scope"] = "Global";
  EXPECT_EQ(errors_of(bad_scope), Errors{"spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", "
                                         "\"Namespaced\""});
}

TEST(CrdValidation, AnUpdateKeepsGroupPluralScopeAndKind) {
  const json old = crd({{"type", "object"}});
  json changed = old;
  changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"] = {{"spec", {{"type", "object"}}}};
  EXPECT_EQ(messages(validate_crd_update(changed, old)), Errors{});
  json renamed = old;
  renamed["spec"]["names"]["plural"] = "gadgets";
  renamed["spec"]["names"]["kind"] = "Gadget";
  renamed["spec"]["names"]["singular"] = "gadget";
  renamed["spec"]["names"]["listKind"] = "GadgetList";
  renamed["spec"]["scope"] = "Cluster";
  EXPECT_EQ(messages(validate_crd_update(renamed, old)),
            (Errors{"metadata.name: Invalid value: \"widgets.example.com\": must be spec.names.plural+\".\"+spec.group",
                    "spec.scope: Invalid value: \"Cluster\": field is immutable",
                    "spec.names.kind: Invalid value: \"Gadget\": field is immutable",
                    "spec.names.plural: Invalid value: \"gadgets\": field is immutable"}));
}

// --- the Status

TEST(CrdValidation, TheStatusIsShapedAsTheRealServers) {
  const std::vector<FieldError> one = {
      {"spec.validation.openAPIV3Schema.properties[metadata]", FieldError::Type::Forbidden, std::nullopt,
       "must not specify anything other than name and generateName, but metadata is implicitly specified"}};
  const json status = crd_invalid_status("stopmonitors.backstop.dev", one);
  EXPECT_EQ(status, json::parse(R"({
    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Invalid", "code": 422,
    "message": "CustomResourceDefinition.apiextensions.k8s.io \"stopmonitors.backstop.dev\" is invalid: spec.validation.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
    "details": {"name": "stopmonitors.backstop.dev", "group": "apiextensions.k8s.io", "kind": "CustomResourceDefinition",
      "causes": [{"reason": "FieldValueForbidden", "field": "spec.validation.openAPIV3Schema.properties[metadata]",
                  "message": "Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"}]}
  })"));

  const std::vector<FieldError> several = {
      {"spec.names.plural", FieldError::Type::Required, std::nullopt, ""},
      {"spec.scope", FieldError::Type::NotSupported, json("Global"), "supported values: \"Cluster\", \"Namespaced\""},
      {"spec.names.plural", FieldError::Type::Required, std::nullopt, ""},  // the message lists it once
      {"spec.group", FieldError::Type::Invalid, json("x"), "should be a domain with at least one dot"}};
  const json many = crd_invalid_status("x", several);
  EXPECT_EQ(many["message"],
            "CustomResourceDefinition.apiextensions.k8s.io \"x\" is invalid: [spec.names.plural: Required value, "
            "spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\", spec.group: "
            "Invalid value: \"x\": should be a domain with at least one dot]");
  ASSERT_EQ(many["details"]["causes"].size(), 4u);
  EXPECT_EQ(many["details"]["causes"][1],
            (json{{"reason", "FieldValueNotSupported"},
                  {"message", "Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\""},
                  {"field", "spec.scope"}}));
  EXPECT_EQ(many["details"]["causes"][3]["reason"], "FieldValueInvalid");
  EXPECT_EQ(many["details"]["causes"][0]["reason"], "FieldValueRequired");
}

}  // namespace
}  // namespace backstop::testing
