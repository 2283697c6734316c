// CustomResourceDefinition validation, after k8s.io/apiextensions-apiserver
// (pkg/apis/apiextensions/validation/validation.go: the CRD and its OpenAPI
// schema; pkg/apiserver/schema/validation.go: the structural-schema rules;
// pkg/apiserver/schema/defaulting: defaults checked against their schema), with
// the field paths and messages of the real server, so that a CRD a real cluster
// refuses is refused by the API test server with the same words.
//
// Where a schema is reported: a v1 CRD is converted to the internal version
// before validation, and when every version carries the same schema (always,
// with a single version) the schema moves up to spec.validation. The real
// server hence says spec.validation.openAPIV3Schema... for a one-version CRD
// such as the StopMonitor's (what a v1.24 server printed for it), and
// spec.versions[i].schema.openAPIV3Schema... once the versions' schemas differ.
// Both are done here.
//
// Enforced:
//   CRD: metadata.name required and equal to <names.plural>.<group>; group
//     required, with a dot; scope required, Cluster or Namespaced; a schema for
//     every version (on create the real server wants one on every version, not
//     only the served ones); unique version names; exactly one storage version;
//     names.plural and names.kind required (singular and listKind default from
//     the kind, as the real server defaults them); kind != listKind.
//   On update: group and names.plural may not change; nor scope and names.kind
//     (the real server allows that only before the CRD is Established, which it
//     is at once: this server treats every stored CRD as Established).
//   Schema (OpenAPI): type one of array/boolean/integer/number/object/string;
//     no nullable at the root; uniqueItems: true forbidden; additionalProperties
//     false or a schema together with properties forbidden; $ref, id,
//     definitions, dependencies, patternProperties, additionalItems forbidden;
//     items an array forbidden; x-kubernetes-preserve-unknown-fields false
//     forbidden; x-kubernetes-map-type granular|atomic on an object;
//     x-kubernetes-list-type atomic|set|map on an array, a set of objects or
//     arrays needs atomic items; x-kubernetes-list-map-keys only with map, map
//     needs keys naming scalar item properties that are required or defaulted
//     (and not nullable); x-kubernetes-validations: a non-empty rule, a message
//     non-blank and on one line, a message for a rule on several lines; default
//     forbidden in the top-level metadata, apiVersion and kind.
//   Schema (structural): the root is type: object without additionalProperties;
//     every node has a type unless x-kubernetes-int-or-string or
//     x-kubernetes-preserve-unknown-fields is true; an array has items;
//     x-kubernetes-int-or-string excludes preserve-unknown-fields and
//     embedded-resource; x-kubernetes-embedded-resource needs type: object and
//     properties (or preserve-unknown-fields), no additionalProperties; kind and
//     apiVersion of a resource are strings, its metadata an object; the root
//     metadata specifies nothing but type: object and properties name and/or
//     generateName; inside allOf/anyOf/oneOf/not no type, description, title,
//     default, nullable, additionalProperties, x-kubernetes-* nor metadata
//     (except the two int-or-string anyOf patterns); patterns compile.
//   Defaults (checked only when the schema is structural, as the real server
//     does): no unknown fields (they would be pruned), and valid against their
//     own schema: type (int-or-string, nullable), enum, pattern, minimum/maximum
//     (exclusive too), multipleOf, minLength/maxLength, minItems/maxItems,
//     minProperties/maxProperties, required, recursively through properties,
//     additionalProperties and items.
//
// CEL: x-kubernetes-validations rules are compiled with this server's CEL
//   subset (cel.h) and their field selections checked against the schema; a
//   rule outside the subset refuses the CRD ("compilation failed"), where a
//   real server would accept it; the Invalid value is the rule as JSON, where
//   Go prints its ValidationRule struct.
//
// Not enforced (the real server does): CEL cost estimates of
//   x-kubernetes-validations rules; structural completeness (every field a
//   value validation names also specified outside it: "because it is defined
//   in ..."); the fields allowed at the root when the status subresource is
//   on; DNS-1035/1123 syntax of names, group, versions, short names and
//   categories; printer columns, subresources (scale paths), conversion
//   webhooks; status.storedVersions; the api-approved annotation of k8s.io
//   groups; spec.preserveUnknownFields: true; formats (date-time, ...) and the
//   value validations under allOf/anyOf/oneOf/not when checking defaults;
//   object metadata inside defaults of embedded resources.
//
// Differences in wording: patterns are ECMAScript (std::regex), not Go's RE2,
//   so the reason after "must be a valid regular expression, but isn't:" is
//   libstdc++'s; an object or array in "Invalid value: ..." is printed as JSON
//   (Go prints its own struct syntax; a list of strings is printed as Go does,
//   []string{"a", "b"}); too long strings and lists are Invalid value errors
//   with the validator's sentence ("should be at most 3 chars long"), where a
//   newer server may say "Too long" / "Too many".
//
// Two rules sometimes quoted for CRDs are deliberately not here, because the
// current server does not have them: additionalProperties: false without
// properties (refused by servers before 1.15 only), and type next to
// x-kubernetes-int-or-string (accepted; only the anyOf/allOf patterns matter).
#include "crd_validation.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <regex>
#include <set>

#include "cel.h"

namespace backstop::testing {
namespace {

using nlohmann::json;
using Type = FieldError::Type;

// Field paths, printed as field.Path prints them: a.b, a[key], a[0].
std::string child(const std::string& path, const std::string& name) { return path.empty() ? name : path + "." + name; }
std::string key(const std::string& path, const std::string& k) { return path + "[" + k + "]"; }
std::string index(const std::string& path, std::size_t i) { return path + "[" + std::to_string(i) + "]"; }

}  // namespace

// Go's %q.
std::string go_quote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

namespace {

// A JSON number as Go's %v prints an int64 or a float64 (5, not 5.0).
std::string go_number(const json& n) {
  if (n.is_number_integer()) return n.dump();
  const double d = n.get<double>();
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) {
    return std::to_string(static_cast<long long>(d));
  }
  return n.dump();
}

// A bad value as field.Error prints it: strings quoted, numbers and booleans
// bare, nil as "null", a list of strings as []string{...}; other objects and
// lists as JSON (Go would print its own struct syntax).
std::string go_value(const std::optional<json>& value) {
  if (!value || value->is_null()) return "\"null\"";
  const json& v = *value;
  if (v.is_string()) return go_quote(v.get<std::string>());
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number()) return go_number(v);
  if (v.is_array() && !v.empty() && std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_string(); })) {
    std::string out = "[]string{";
    for (std::size_t i = 0; i < v.size(); ++i) out += (i == 0 ? "" : ", ") + go_quote(v[i].get<std::string>());
    return out + "}";
  }
  return v.dump();
}

// A map as Go's %#v prints a map[string]interface {} (a duplicate list-map
// key): keys sorted, strings quoted.
std::string go_map(const json& v) {
  std::string out = "map[string]interface {}{";
  bool first = true;
  for (const auto& [k, e] : v.items()) {
    out += (first ? "" : ", ") + go_quote(k) + ":" + (e.is_string() ? go_quote(e.get<std::string>()) : go_value(e));
    first = false;
  }
  return out + "}";
}

FieldError required(std::string path, std::string detail = "") {
  return {std::move(path), Type::Required, std::nullopt, std::move(detail)};
}
FieldError forbidden(std::string path, std::string detail) {
  return {std::move(path), Type::Forbidden, std::nullopt, std::move(detail)};
}
FieldError invalid(std::string path, json value, std::string detail) {
  return {std::move(path), Type::Invalid, std::move(value), std::move(detail)};
}
// field.NotSupported: "Unsupported value: \"x\": supported values: \"a\", \"b\"".
FieldError not_supported(std::string path, json value, const std::vector<std::string>& supported) {
  std::string detail;
  for (const std::string& s : supported) detail += (detail.empty() ? "supported values: " : ", ") + go_quote(s);
  return {std::move(path), Type::NotSupported, std::move(value), std::move(detail)};
}

// Reading schema nodes leniently: a missing member, a null and a wrong JSON type
// all read as "not specified", as Go's decoder leaves a zero value.
const json& empty_object() {
  static const json empty = json::object();
  return empty;
}
const json* member(const json& node, const char* name) {
  if (!node.is_object()) return nullptr;
  // (The object's own map: GCC 12 sees a null dereference in nlohmann's iterator.)
  const auto& object = node.get_ref<const json::object_t&>();
  const auto it = object.find(name);
  return it == object.end() || it->second.is_null() ? nullptr : &it->second;
}
const json& object_at(const json& node, const char* name) {
  const json* m = member(node, name);
  return m != nullptr && m->is_object() ? *m : empty_object();
}
std::string text(const json& node, const char* name) {
  const json* m = member(node, name);
  return m != nullptr && m->is_string() ? m->get<std::string>() : "";
}
bool flag(const json& node, const char* name) {
  const json* m = member(node, name);
  return m != nullptr && m->is_boolean() && m->get<bool>();
}
std::vector<std::string> strings(const json& node, const char* name) {
  std::vector<std::string> out;
  const json* m = member(node, name);
  if (m == nullptr || !m->is_array()) return out;
  for (const json& s : *m) {
    if (s.is_string()) out.push_back(s.get<std::string>());
  }
  return out;
}
std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n\v\f");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r\n\v\f") - first + 1);
}
bool has_newline(const std::string& s) { return s.find_first_of("\r\n") != std::string::npos; }

const std::vector<std::string> kTypes = {"array", "boolean", "integer", "number", "object", "string"};  // sorted
bool is_meta_field(const std::string& name) { return name == "metadata" || name == "kind" || name == "apiVersion"; }

// ---------------------------------------------------------------------------
// The OpenAPI checks (ValidateCustomResourceDefinitionOpenAPISchema).
// `no_defaults` is why a default is forbidden here ("" where it is allowed).

void check_list_and_map_types(const json& s, const std::string& path, std::vector<FieldError>& out);
void check_validation_rules(const json& s, const std::string& path, std::vector<FieldError>& out);

void check_openapi(const json& s, const std::string& path, const std::string& no_defaults, bool root,
                   std::vector<FieldError>& out) {
  if (!s.is_object()) return;
  const std::string type = text(s, "type");
  if (!type.empty() && std::find(kTypes.begin(), kTypes.end(), type) == kTypes.end()) {
    out.push_back(not_supported(child(path, "type"), type, kTypes));
  }
  if (member(s, "default") != nullptr && !no_defaults.empty()) {
    out.push_back(forbidden(child(path, "default"), "must not be set " + no_defaults));
  }
  for (const char* unsupported :
       {"id", "additionalItems", "patternProperties", "definitions", "dependencies", "$ref"}) {
    if (member(s, unsupported) != nullptr) {
      out.push_back(forbidden(child(path, unsupported), std::string(unsupported) + " is not supported"));
    }
  }
  if (type == "null") {
    out.push_back(forbidden(child(path, "type"), "type cannot be set to null, use nullable as an alternative"));
  }
  const json* items = member(s, "items");
  if (items != nullptr && items->is_array()) {
    out.push_back(forbidden(child(path, "items"), "items must be a schema object and not an array"));
  }
  if (flag(s, "uniqueItems")) {
    out.push_back(forbidden(child(path, "uniqueItems"),
                            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"));
  }
  const json& properties = object_at(s, "properties");
  if (const json* additional = member(s, "additionalProperties")) {
    if (!properties.empty() && (additional->is_object() || *additional == false)) {
      out.push_back(
          forbidden(child(path, "additionalProperties"), "additionalProperties and properties are mutual exclusive"));
    }
    check_openapi(*additional, child(path, "additionalProperties"), no_defaults, false, out);
  }
  for (const auto& [name, property] : properties.items()) {
    const std::string reason = root && is_meta_field(name) ? "in top-level " + name : no_defaults;
    check_openapi(property, key(child(path, "properties"), name), reason, false, out);
  }
  if (const json* n = member(s, "not")) check_openapi(*n, child(path, "not"), no_defaults, false, out);
  for (const char* junctor : {"allOf", "oneOf", "anyOf"}) {
    const json* list = member(s, junctor);
    if (list == nullptr || !list->is_array()) continue;
    for (std::size_t i = 0; i < list->size(); ++i) {
      check_openapi((*list)[i], index(child(path, junctor), i), no_defaults, false, out);
    }
  }
  if (items != nullptr && items->is_object()) check_openapi(*items, child(path, "items"), no_defaults, false, out);
  const json* preserve = member(s, "x-kubernetes-preserve-unknown-fields");
  if (preserve != nullptr && *preserve == false) {
    out.push_back(invalid(child(path, "x-kubernetes-preserve-unknown-fields"), false, "must be true or undefined"));
  }
  check_list_and_map_types(s, path, out);
  check_validation_rules(s, path, out);
}

// "must be <want> if <extension> is specified" on the node's type.
void require_type(const json& s, const std::string& path, const std::string& want, const std::string& extension,
                  std::vector<FieldError>& out) {
  const std::string type = text(s, "type");
  if (type == want) return;
  const std::string detail = "must be " + want + " if " + extension + " is specified";
  if (type.empty()) {
    out.push_back(required(child(path, "type"), detail));
  } else {
    out.push_back(invalid(child(path, "type"), type, detail));
  }
}

void check_list_and_map_types(const json& s, const std::string& path, std::vector<FieldError>& out) {
  if (const json* map_type = member(s, "x-kubernetes-map-type")) {
    require_type(s, path, "object", "x-kubernetes-map-type", out);
    if (*map_type != "atomic" && *map_type != "granular") {
      out.push_back(not_supported(child(path, "x-kubernetes-map-type"), *map_type, {"atomic", "granular"}));
    }
  }
  const json* list_type = member(s, "x-kubernetes-list-type");
  const json* items = member(s, "items");
  const bool items_schema = items != nullptr && items->is_object();
  const std::string items_path = child(path, "items");
  if (list_type != nullptr && text(s, "type") != "array") {
    require_type(s, path, "array", "x-kubernetes-list-type", out);
  } else if (list_type != nullptr && *list_type == "set" && items_schema) {
    // Items of a set are compared whole: they must be atomic.
    const std::string item_type = text(*items, "type");
    const json* item_list_type = member(*items, "x-kubernetes-list-type");
    const json* item_map_type = member(*items, "x-kubernetes-map-type");
    const std::string detail = "must be atomic as item of a list with x-kubernetes-list-type=set";
    if (item_type == "array" && item_list_type != nullptr && *item_list_type != "atomic") {
      out.push_back(invalid(child(items_path, "x-kubernetes-list-type"), *item_list_type, detail));
    }
    if (item_type == "object" && (item_map_type == nullptr || *item_map_type != "atomic")) {
      // (The real server prints the items' list type here, usually unset: "null".)
      out.push_back(invalid(child(items_path, "x-kubernetes-map-type"),
                            item_list_type != nullptr ? *item_list_type : json(nullptr), detail));
    }
  }
  if (list_type != nullptr && *list_type != "atomic" && *list_type != "set" && *list_type != "map") {
    out.push_back(not_supported(child(path, "x-kubernetes-list-type"), *list_type, {"atomic", "set", "map"}));
  }
  const std::vector<std::string> keys = strings(s, "x-kubernetes-list-map-keys");
  if (!keys.empty()) {
    const std::string detail = "must be map if x-kubernetes-list-map-keys is non-empty";
    if (list_type == nullptr) {
      out.push_back(required(child(path, "x-kubernetes-list-type"), detail));
    } else if (*list_type != "map") {
      out.push_back(invalid(child(path, "x-kubernetes-list-type"), *list_type, detail));
    }
  }
  const bool is_map = list_type != nullptr && *list_type == "map";
  if (is_map) {
    if (keys.empty()) {
      out.push_back(
          required(child(path, "x-kubernetes-list-map-keys"), "must not be empty if x-kubernetes-list-type is map"));
    }
    if (items == nullptr) {
      out.push_back(required(items_path, "must have a schema if x-kubernetes-list-type is map"));
    } else if (items_schema && text(*items, "type") != "object") {
      out.push_back(invalid(child(items_path, "type"), text(*items, "type"),
                            "must be object if parent array's x-kubernetes-list-type is map"));
    } else if (items_schema) {
      const json& item_properties = object_at(*items, "properties");
      std::set<std::string> seen;
      for (const std::string& k : keys) {
        if (const json* p = member(item_properties, k.c_str())) {
          const std::string key_type = text(*p, "type");
          if (key_type == "array" || key_type == "object") {
            // (The real server prints the items' type, "object", as the value.)
            out.push_back(invalid(child(key(child(items_path, "properties"), k), "type"), "object",
                                  "must be a scalar type if parent array's x-kubernetes-list-type is map"));
          }
        } else {
          out.push_back(
              invalid(child(path, "x-kubernetes-list-map-keys"), keys, "entries must all be names of item properties"));
        }
        if (!seen.insert(k).second) {
          out.push_back(invalid(child(path, "x-kubernetes-list-map-keys"), keys, "must not contain duplicate entries"));
        }
      }
    }
  }
  // Items of sets and maps are never null; map keys are required or defaulted.
  if (items_schema && (is_map || (list_type != nullptr && *list_type == "set"))) {
    if (flag(*items, "nullable")) {
      out.push_back(forbidden(child(items_path, "nullable"),
                              "cannot be nullable when x-kubernetes-list-type is " + list_type->get<std::string>()));
    }
    if (is_map) {
      const std::vector<std::string> required_keys = strings(*items, "required");
      const json& item_properties = object_at(*items, "properties");
      for (const std::string& k : keys) {
        const json* p = member(item_properties, k.c_str());
        if (p == nullptr) continue;
        const std::string at = key(child(items_path, "properties"), k);
        if (std::find(required_keys.begin(), required_keys.end(), k) == required_keys.end() &&
            member(*p, "default") == nullptr) {
          out.push_back(required(child(at, "default"),
                                 "this property is in x-kubernetes-list-map-keys, so it must have "
                                 "a default or be a required property"));
        }
        if (flag(*p, "nullable")) {
          out.push_back(forbidden(child(at, "nullable"),
                                  "this property is in x-kubernetes-list-map-keys, so it cannot be nullable"));
        }
      }
    }
  }
}

void check_validation_rules(const json& s, const std::string& path, std::vector<FieldError>& out) {
  const json* rules = member(s, "x-kubernetes-validations");
  if (rules == nullptr || !rules->is_array()) return;
  for (std::size_t i = 0; i < rules->size(); ++i) {
    const json& rule = (*rules)[i];
    const std::string at = index(child(path, "x-kubernetes-validations"), i);
    const std::string expression = trim(text(rule, "rule"));
    const std::string message = text(rule, "message");
    if (expression.empty()) {
      out.push_back(required(child(at, "rule"), "rule is not specified"));
    } else if (!message.empty() && trim(message).empty()) {
      out.push_back(invalid(child(at, "message"), message, "message must be non-empty if specified"));
    } else if (has_newline(trim(message))) {
      out.push_back(invalid(child(at, "message"), message, "message must not contain line breaks"));
    } else if (has_newline(expression) && trim(message).empty()) {
      out.push_back(required(child(at, "message"), "message must be specified if rule contains line breaks"));
    }
    if (expression.empty()) continue;
    // Compiled as the real server compiles them, with this server's CEL subset
    // (cel.h): a rule it cannot evaluate refuses the CRD rather than being skipped.
    try {
      const std::string unknown = cel::Program::compile(expression).check_fields(s);
      if (!unknown.empty()) out.push_back(invalid(child(at, "rule"), rule, "compilation failed: ERROR: " + unknown));
    } catch (const cel::CompileError& e) {
      out.push_back(invalid(child(at, "rule"), rule, std::string("compilation failed: ERROR: ") + e.what()));
    }
  }
}

// ---------------------------------------------------------------------------
// The structural-schema rules (ValidateStructural).

enum class Level { Root, Item, Field };

void check_nested(const json& v, bool skip_any_of, bool skip_all_of_any_of, const std::string& path,
                  std::vector<FieldError>& out);

// The two int-or-string forms allowed to carry types under a junctor:
// anyOf: [{type: integer}, {type: string}], or that anyOf as the first allOf.
bool int_or_string_any_of(const json* any_of) {
  static const json pattern = json::parse(R"([{"type": "integer"}, {"type": "string"}])");
  return any_of != nullptr && *any_of == pattern;
}
bool int_or_string_all_of(const json* all_of) {
  return all_of != nullptr && all_of->is_array() && !all_of->empty() &&
         int_or_string_any_of(member((*all_of)[0], "anyOf"));
}

void check_value_validation(const json& s, bool skip_any_of, bool skip_first_all_of_any_of, const std::string& path,
                            std::vector<FieldError>& out) {
  for (const char* junctor : {"anyOf", "allOf", "oneOf"}) {
    const json* list = member(s, junctor);
    if (list == nullptr || !list->is_array() || (skip_any_of && std::string(junctor) == "anyOf")) continue;
    for (std::size_t i = 0; i < list->size(); ++i) {
      const bool skip = std::string(junctor) == "allOf" && skip_first_all_of_any_of && i == 0;
      check_nested((*list)[i], skip, false, index(child(path, junctor), i), out);
    }
  }
  if (const json* n = member(s, "not")) check_nested(*n, false, false, child(path, "not"), out);
  const std::string pattern = text(s, "pattern");
  if (!pattern.empty()) {
    try {
      const std::regex compiled(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      out.push_back(invalid(child(path, "pattern"), pattern,
                            std::string("must be a valid regular expression, but isn't: ") + e.what()));
    }
  }
}

// A schema under allOf/anyOf/oneOf/not validates values only: it may not say
// what the value is (type, defaults, descriptions, Kubernetes extensions).
void check_nested(const json& v, bool skip_any_of, bool skip_all_of_any_of, const std::string& path,
                  std::vector<FieldError>& out) {
  if (!v.is_object()) return;
  check_value_validation(v, skip_any_of, skip_all_of_any_of, path, out);
  if (const json* items = member(v, "items"); items != nullptr && items->is_object()) {
    check_nested(*items, false, false, child(path, "items"), out);
  }
  const json& properties = object_at(v, "properties");
  for (const auto& [name, property] : properties.items()) {
    check_nested(property, false, false, key(child(path, "properties"), name), out);
  }
  auto forbid = [&](const char* field, const char* detail) { out.push_back(forbidden(child(path, field), detail)); };
  if (!text(v, "type").empty()) forbid("type", "must be empty to be structural");
  if (member(v, "additionalProperties") != nullptr)
    forbid("additionalProperties", "must be undefined to be structural");
  if (member(v, "default") != nullptr) forbid("default", "must be undefined to be structural");
  if (!text(v, "title").empty()) forbid("title", "must be empty to be structural");
  if (!text(v, "description").empty()) forbid("description", "must be empty to be structural");
  if (flag(v, "nullable")) forbid("nullable", "must be false to be structural");
  if (flag(v, "x-kubernetes-preserve-unknown-fields")) {
    forbid("x-kubernetes-preserve-unknown-fields", "must be false to be structural");
  }
  if (flag(v, "x-kubernetes-embedded-resource"))
    forbid("x-kubernetes-embedded-resource", "must be false to be structural");
  if (flag(v, "x-kubernetes-int-or-string")) forbid("x-kubernetes-int-or-string", "must be false to be structural");
  if (!strings(v, "x-kubernetes-list-map-keys").empty()) {
    forbid("x-kubernetes-list-map-keys", "must be empty to be structural");
  }
  if (member(v, "x-kubernetes-list-type") != nullptr)
    forbid("x-kubernetes-list-type", "must be undefined to be structural");
  if (member(v, "x-kubernetes-map-type") != nullptr)
    forbid("x-kubernetes-map-type", "must be undefined to be structural");
  const json* rules = member(v, "x-kubernetes-validations");
  if (rules != nullptr && !rules->empty()) forbid("x-kubernetes-validations", "must be empty to be structural");
  if (properties.contains("metadata")) {
    out.push_back(forbidden(key(child(path, "properties"), "metadata"), "must not be specified in a nested context"));
  }
}

// The root `metadata` may say type: object and restrict name and generateName,
// nothing else: the API server owns ObjectMeta's schema. Fields the structural
// schema does not keep (example, externalDocs) and zero values do not count.
bool metadata_beyond_name_and_generate_name(const json& metadata) {
  if (!metadata.is_object()) return false;
  for (const auto& [field, value] : metadata.items()) {
    if (field == "type" || field == "default" || field == "example" || field == "externalDocs" || field == "$schema") {
      continue;
    }
    if (field == "properties" && value.is_object()) {
      for (const auto& property : value.items()) {
        if (property.key() != "name" && property.key() != "generateName") return true;
      }
      continue;
    }
    const bool zero = value.is_null() || value == false || value == "" || (value.is_array() && value.empty()) ||
                      (value.is_object() && value.empty());
    if (!zero) return true;
  }
  return false;
}

void check_structural(const json& node, Level level, const std::string& path, std::vector<FieldError>& out) {
  const json& s = node.is_object() ? node : empty_object();
  const std::string type = text(s, "type");
  const json* items = member(s, "items");
  if (type == "array" && items == nullptr) out.push_back(required(child(path, "items"), "must be specified"));
  if (items != nullptr && items->is_object()) check_structural(*items, Level::Item, child(path, "items"), out);
  const json& properties = object_at(s, "properties");
  for (const auto& [name, property] : properties.items()) {
    check_structural(property, Level::Field, key(child(path, "properties"), name), out);
  }
  const json* additional = member(s, "additionalProperties");
  if (additional != nullptr) {
    if (level == Level::Root) {
      out.push_back(forbidden(child(path, "additionalProperties"), "must not be used at the root"));
    }
    if (additional->is_object()) check_structural(*additional, Level::Field, child(path, "additionalProperties"), out);
  }
  const bool int_or_string = flag(s, "x-kubernetes-int-or-string");
  const bool preserve = flag(s, "x-kubernetes-preserve-unknown-fields");
  const bool embedded = flag(s, "x-kubernetes-embedded-resource");
  if (int_or_string && preserve) {
    out.push_back(invalid(child(path, "x-kubernetes-preserve-unknown-fields"), true,
                          "must be false if x-kubernetes-int-or-string is true"));
  }
  if (int_or_string && embedded) {
    out.push_back(invalid(child(path, "x-kubernetes-embedded-resource"), true,
                          "must be false if x-kubernetes-int-or-string is true"));
  }
  check_value_validation(s, int_or_string_any_of(member(s, "anyOf")), int_or_string_all_of(member(s, "allOf")), path,
                         out);

  if (embedded && type != "object") {
    const std::string detail = "must be object if x-kubernetes-embedded-resource is true";
    out.push_back(type.empty() ? required(child(path, "type"), detail) : invalid(child(path, "type"), type, detail));
  } else if (type.empty() && !int_or_string && !preserve) {
    const char* detail = level == Level::Root   ? "must not be empty at the root"
                         : level == Level::Item ? "must not be empty for specified array items"
                                                : "must not be empty for specified object fields";
    out.push_back(required(child(path, "type"), detail));
  }
  if (embedded && additional != nullptr) {
    out.push_back(
        forbidden(child(path, "additionalProperties"), "must not be used if x-kubernetes-embedded-resource is set"));
  }
  if (level == Level::Root && !type.empty() && type != "object") {
    out.push_back(invalid(child(path, "type"), type, "must be object at the root"));
  }
  // A resource (the root, or an embedded one): kind and apiVersion are strings,
  // metadata an object; at the root metadata says nothing more.
  if (level == Level::Root || embedded) {
    static const std::pair<const char*, const char*> kResourceFields[] = {
        {"kind", "string"}, {"apiVersion", "string"}, {"metadata", "object"}};
    for (const auto& [field, want] : kResourceFields) {
      const json* property = member(properties, field);
      if (property == nullptr || text(*property, "type") == want) continue;
      out.push_back(invalid(child(key(child(path, "properties"), field), "type"), text(*property, "type"),
                            std::string("must be ") + want));
    }
  }
  if (level == Level::Root && properties.contains("metadata") &&
      metadata_beyond_name_and_generate_name(properties["metadata"])) {
    out.push_back(forbidden(key(child(path, "properties"), "metadata"),
                            "must not specify anything other than name and generateName, but metadata is implicitly "
                            "specified"));
  }
  if (embedded && !preserve && properties.empty()) {
    out.push_back(required(child(path, "properties"),
                           "must not be empty if x-kubernetes-embedded-resource is true without "
                           "x-kubernetes-preserve-unknown-fields"));
  }
}

// ---------------------------------------------------------------------------
// Defaults (structural defaulting's ValidateDefaults): each default would be
// stored as is, so it must survive pruning and validate against its schema.

// Whether pruning with schema `s` would drop something from `value`.
bool has_unknown_fields(const json& value, const json& s) {
  if (!s.is_object()) return false;
  if (value.is_object()) {
    const json& properties = object_at(s, "properties");
    const json* additional = member(s, "additionalProperties");
    for (const auto& [name, field] : value.items()) {
      if (const json* p = member(properties, name.c_str())) {
        if (has_unknown_fields(field, *p)) return true;
      } else if (additional != nullptr && additional->is_object()) {
        if (has_unknown_fields(field, *additional)) return true;
      } else if (!(flag(s, "x-kubernetes-preserve-unknown-fields") || (additional != nullptr && *additional == true) ||
                   (flag(s, "x-kubernetes-embedded-resource") && is_meta_field(name)))) {
        return true;
      }
    }
  }
  const json* items = member(s, "items");
  if (value.is_array() && items != nullptr) {
    return std::any_of(value.begin(), value.end(), [&](const json& item) { return has_unknown_fields(item, *items); });
  }
  return false;
}

std::string type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  return "object";
}

bool has_type(const json& v, const std::string& type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "boolean") return v.is_boolean();
  if (type == "number") return v.is_number();
  if (type == "integer") {
    return v.is_number_integer() || (v.is_number_float() && v.get<double>() == std::floor(v.get<double>()));
  }
  return true;
}

std::size_t code_points(const std::string& s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// The value `v` at `name` (go-openapi's dotted path inside the default, "" for
// the default itself) against schema `s`; errors go to `base` (...default).
void check_value(const json& v, const json& s, const std::string& name, const std::string& base,
                 std::vector<FieldError>& out) {
  if (!s.is_object()) return;
  const std::string at = name.empty() ? base : base + "." + name;
  auto in_body = [&](const std::string& rest) { return (name.empty() ? "" : name + " ") + "in body " + rest; };
  auto sub = [&](const std::string& k) { return name.empty() ? k : name + "." + k; };
  auto limit = [&](const char* field) -> const json* {
    const json* m = member(s, field);
    return m != nullptr && m->is_number() ? m : nullptr;
  };

  if (v.is_null() && flag(s, "nullable")) return;
  const std::string type = text(s, "type");
  const bool int_or_string = flag(s, "x-kubernetes-int-or-string");
  const bool type_ok = int_or_string ? has_type(v, "integer") || v.is_string() : type.empty() || has_type(v, type);
  if (!type_ok) {
    const std::string want = int_or_string ? "int-or-string" : type;
    out.push_back(invalid(at, type_name(v), in_body("must be of type " + want + ": " + go_quote(type_name(v)))));
    return;
  }
  if (v.is_string()) {
    const std::string str = v.get<std::string>();
    if (const json* max = limit("maxLength"); max != nullptr && code_points(str) > max->get<std::size_t>()) {
      out.push_back(invalid(at, v, in_body("should be at most " + go_number(*max) + " chars long")));
    }
    if (const json* min = limit("minLength"); min != nullptr && code_points(str) < min->get<std::size_t>()) {
      out.push_back(invalid(at, v, in_body("should be at least " + go_number(*min) + " chars long")));
    }
    const std::string pattern = text(s, "pattern");
    if (!pattern.empty()) {
      try {
        if (!std::regex_search(str, std::regex(pattern, std::regex::ECMAScript))) {
          out.push_back(invalid(at, v, in_body("should match '" + pattern + "'")));
        }
      } catch (const std::regex_error&) {
        // reported (as the real server does) by the structural checks
      }
    }
  }
  if (v.is_number()) {
    const double d = v.get<double>();
    if (const json* max = limit("maximum")) {
      const bool exclusive = flag(s, "exclusiveMaximum");
      if (exclusive ? d >= max->get<double>() : d > max->get<double>()) {
        out.push_back(
            invalid(at, v,
                    in_body(std::string(exclusive ? "should be less than " : "should be less than or equal to ") +
                            go_number(*max))));
      }
    }
    if (const json* min = limit("minimum")) {
      const bool exclusive = flag(s, "exclusiveMinimum");
      if (exclusive ? d <= min->get<double>() : d < min->get<double>()) {
        out.push_back(
            invalid(at, v,
                    in_body(std::string(exclusive ? "should be greater than " : "should be greater than or equal to ") +
                            go_number(*min))));
      }
    }
    if (const json* factor = limit("multipleOf");
        factor != nullptr && factor->get<double>() != 0 && std::fmod(d, factor->get<double>()) != 0) {
      out.push_back(invalid(at, v, in_body("should be a multiple of " + go_number(*factor))));
    }
  }
  if (v.is_array()) {
    if (const json* max = limit("maxItems"); max != nullptr && v.size() > max->get<std::size_t>()) {
      out.push_back(invalid(at, v, in_body("should have at most " + go_number(*max) + " items")));
    }
    if (const json* min = limit("minItems"); min != nullptr && v.size() < min->get<std::size_t>()) {
      out.push_back(invalid(at, v, in_body("should have at least " + go_number(*min) + " items")));
    }
    if (const json* items = member(s, "items")) {
      for (std::size_t i = 0; i < v.size(); ++i) check_value(v[i], *items, sub(std::to_string(i)), base, out);
    }
  }
  if (const json* allowed = member(s, "enum"); allowed != nullptr && allowed->is_array()) {
    if (std::find(allowed->begin(), allowed->end(), v) == allowed->end()) {
      std::vector<std::string> values;
      for (const json& a : *allowed) values.push_back(a.is_string() ? a.get<std::string>() : a.dump());
      out.push_back(not_supported(at, v, values));
    }
  }
  if (v.is_object()) {
    if (const json* max = limit("maxProperties"); max != nullptr && v.size() > max->get<std::size_t>()) {
      out.push_back(invalid(at, v, in_body("should have at most " + go_number(*max) + " properties")));
    }
    if (const json* min = limit("minProperties"); min != nullptr && v.size() < min->get<std::size_t>()) {
      out.push_back(invalid(at, v, in_body("should have at least " + go_number(*min) + " properties")));
    }
    for (const std::string& r : strings(s, "required")) {
      if (!v.contains(r)) out.push_back(required(base + "." + sub(r)));
    }
    const json& properties = object_at(s, "properties");
    const json* additional = member(s, "additionalProperties");
    for (const auto& [k, field] : v.items()) {
      if (const json* p = member(properties, k.c_str())) {
        check_value(field, *p, sub(k), base, out);
      } else if (additional != nullptr && additional->is_object()) {
        check_value(field, *additional, sub(k), base, out);
      }
    }
  }
}

void check_defaults(const json& s, const std::string& path, bool root, std::vector<FieldError>& out) {
  if (!s.is_object()) return;
  if (const json* d = member(s, "default")) {
    if (has_unknown_fields(*d, s)) out.push_back(invalid(child(path, "default"), *d, "must not have unknown fields"));
    check_value(*d, s, "", child(path, "default"), out);
  }
  for (const auto& [name, property] : object_at(s, "properties").items()) {
    if (root && is_meta_field(name)) continue;  // defaults there are forbidden anyway
    check_defaults(property, key(child(path, "properties"), name), false, out);
  }
  if (const json* items = member(s, "items")) check_defaults(*items, child(path, "items"), false, out);
  if (const json* additional = member(s, "additionalProperties")) {
    check_defaults(*additional, child(path, "additionalProperties"), false, out);
  }
}

// One openAPIV3Schema at `path` (spec.validation.openAPIV3Schema or
// spec.versions[i].schema.openAPIV3Schema). The structural errors come sorted,
// as the real server sorts them; defaults are checked only when there are none.
std::vector<FieldError> validate_schema(const json& schema, const std::string& path) {
  std::vector<FieldError> out;
  if (flag(schema, "nullable"))
    out.push_back(forbidden(child(path, "nullable"), "nullable cannot be true at the root"));
  check_openapi(schema, path, "", true, out);
  std::vector<FieldError> structural;
  check_structural(schema, Level::Root, path, structural);
  std::stable_sort(structural.begin(), structural.end(),
                   [](const FieldError& a, const FieldError& b) { return a.message() < b.message(); });
  if (!structural.empty()) {
    out.insert(out.end(), structural.begin(), structural.end());
    return out;
  }
  check_defaults(schema, path, true, out);
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

std::string FieldError::body() const {
  std::string s;
  switch (type) {
    case Type::Required:
      s = "Required value";
      break;
    case Type::Forbidden:
      s = "Forbidden";
      break;
    case Type::Invalid:
      s = "Invalid value: " + go_value(value);
      break;
    case Type::NotSupported:
      s = "Unsupported value: " + go_value(value);
      break;
    case Type::Duplicate:
      s = "Duplicate value: " + (value && value->is_object() ? go_map(*value) : go_value(value));
      break;
    case Type::TypeInvalid:
      s = "Invalid value: " + go_value(value);
      break;
    case Type::TooLong:
      s = "Too long";
      break;
    case Type::TooMany:
      s = "Too many: " + go_value(value);
      break;
  }
  return detail.empty() ? s : s + ": " + detail;
}

std::string FieldError::message() const { return path + ": " + body(); }

std::string FieldError::reason() const {
  switch (type) {
    case Type::Required:
      return "FieldValueRequired";
    case Type::Forbidden:
      return "FieldValueForbidden";
    case Type::Invalid:
      return "FieldValueInvalid";
    case Type::NotSupported:
      return "FieldValueNotSupported";
    case Type::Duplicate:
      return "FieldValueDuplicate";
    case Type::TypeInvalid:
      return "FieldValueTypeInvalid";
    case Type::TooLong:
      return "FieldValueTooLong";
    case Type::TooMany:
      return "FieldValueTooMany";
  }
  return "FieldValueInvalid";
}

std::vector<FieldError> validate_crd(const json& crd) {
  std::vector<FieldError> out;
  auto add = [&](std::vector<FieldError> more) { out.insert(out.end(), more.begin(), more.end()); };
  const json& spec = object_at(crd, "spec");
  const json& names = object_at(spec, "names");
  const std::string group = text(spec, "group");
  const std::string plural = text(names, "plural");
  const std::string kind = text(names, "kind");
  // Defaulted by the real server before validation.
  const std::string singular = text(names, "singular").empty() ? lower(kind) : text(names, "singular");
  const std::string list_kind =
      text(names, "listKind").empty() && !kind.empty() ? kind + "List" : text(names, "listKind");

  const std::string name = text(object_at(crd, "metadata"), "name");
  if (name.empty()) {
    out.push_back(required("metadata.name", "name or generateName is required"));
  } else if (name != plural + "." + group) {
    out.push_back(invalid("metadata.name", name, R"(must be spec.names.plural+"."+spec.group)"));
  }
  if (group.empty()) {
    out.push_back(required("spec.group"));
  } else if (group.find('.') == std::string::npos) {
    out.push_back(invalid("spec.group", group, "should be a domain with at least one dot"));
  }
  const std::string scope = text(spec, "scope");
  if (scope.empty()) {
    out.push_back(required("spec.scope"));
  } else if (scope != "Cluster" && scope != "Namespaced") {
    out.push_back(not_supported("spec.scope", scope, {"Cluster", "Namespaced"}));
  }

  // The v1 -> internal conversion moves identical per-version schemas up to spec.validation.
  const json* versions_member = member(spec, "versions");
  const json versions = versions_member != nullptr && versions_member->is_array() ? *versions_member : json::array();
  auto schema_of = [](const json& version) { return version.is_object() ? version.value("schema", json()) : json(); };
  const bool hoisted = !versions.empty() && std::all_of(versions.begin(), versions.end(), [&](const json& v) {
    return schema_of(v) == schema_of(versions[0]);
  });
  const json first_schema = versions.empty() ? json() : schema_of(versions[0]);
  const json* top_schema = hoisted ? member(first_schema, "openAPIV3Schema") : nullptr;
  if (top_schema == nullptr) {
    for (std::size_t i = 0; i < versions.size(); ++i) {
      if (member(schema_of(versions[i]), "openAPIV3Schema") == nullptr) {
        out.push_back(required(index("spec.versions", i) + ".schema.openAPIV3Schema", "schemas are required"));
      }
    }
  }
  int storage = 0;
  std::set<std::string> version_names;
  bool unique = true;
  for (std::size_t i = 0; i < versions.size(); ++i) {
    if (flag(versions[i], "storage")) ++storage;
    unique = version_names.insert(text(versions[i], "name")).second && unique;
    const json schema = schema_of(versions[i]);
    if (!hoisted && member(schema, "openAPIV3Schema") != nullptr) {
      add(validate_schema(schema["openAPIV3Schema"], index("spec.versions", i) + ".schema.openAPIV3Schema"));
    }
  }
  if (!unique) out.push_back(invalid("spec.versions", versions, "must contain unique version names"));
  if (storage != 1) {
    out.push_back(invalid("spec.versions", versions, "must have exactly one version marked as storage version"));
  }
  if (plural.empty()) out.push_back(required("spec.names.plural"));
  if (singular.empty()) out.push_back(required("spec.names.singular"));
  if (kind.empty()) out.push_back(required("spec.names.kind"));
  if (list_kind.empty()) out.push_back(required("spec.names.listKind"));
  if (!kind.empty() && kind == list_kind) {
    out.push_back(invalid("spec.names.listKind", list_kind, "kind and listKind may not be the same"));
  }
  if (top_schema != nullptr) add(validate_schema(*top_schema, "spec.validation.openAPIV3Schema"));
  return out;
}

std::vector<FieldError> validate_crd_update(const json& crd, const json& old) {
  std::vector<FieldError> out = validate_crd(crd);
  const json& spec = object_at(crd, "spec");
  const json& old_spec = object_at(old, "spec");
  auto immutable = [&](const std::string& path, const std::string& now, const std::string& before) {
    if (now != before) out.push_back(invalid(path, now, "field is immutable"));
  };
  immutable("spec.scope", text(spec, "scope"), text(old_spec, "scope"));
  immutable("spec.names.kind", text(object_at(spec, "names"), "kind"), text(object_at(old_spec, "names"), "kind"));
  immutable("spec.group", text(spec, "group"), text(old_spec, "group"));
  immutable("spec.names.plural", text(object_at(spec, "names"), "plural"),
            text(object_at(old_spec, "names"), "plural"));
  return out;
}

json crd_invalid_status(const std::string& name, const std::vector<FieldError>& errors) {
  return invalid_status("CustomResourceDefinition", "apiextensions.k8s.io", name, errors);
}

json invalid_status(const std::string& kind, const std::string& group, const std::string& name,
                    const std::vector<FieldError>& errors) {
  // field.ErrorList.ToAggregate: duplicates once, one error bare, several in [..].
  std::vector<std::string> messages;
  json causes = json::array();
  for (const FieldError& e : errors) {
    causes.push_back({{"reason", e.reason()}, {"message", e.body()}, {"field", e.path}});
    if (std::find(messages.begin(), messages.end(), e.message()) == messages.end()) messages.push_back(e.message());
  }
  std::string message = kind + (group.empty() ? "" : "." + group) + " " + go_quote(name) + " is invalid";
  if (messages.size() == 1) {
    message += ": " + messages[0];
  } else if (!messages.empty()) {
    message += ": [";
    for (std::size_t i = 0; i < messages.size(); ++i) message += (i == 0 ? "" : ", ") + messages[i];
    message += "]";
  }
  return {{"kind", "Status"},
          {"apiVersion", "v1"},
          {"metadata", json::object()},
          {"status", "Failure"},
          {"message", message},
          {"reason", "Invalid"},
          {"details", {{"name", name}, {"group", group}, {"kind", kind}, {"causes", causes}}},
          {"code", 422}};
}

}  // namespace backstop::testing
