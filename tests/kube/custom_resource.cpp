#include "custom_resource.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <set>

#include "cel.h"

namespace backstop::testing {

using nlohmann::json;
using Type = FieldError::Type;

namespace {

// A CRD's patterns compiled once: compiling the cron pattern took longer than
// the rest of a request.
const std::regex& compiled(const std::string& pattern) {
  static std::mutex mutex;
  static std::map<std::string, std::regex> patterns;
  std::lock_guard lock(mutex);
  auto found = patterns.find(pattern);
  if (found == patterns.end()) found = patterns.emplace(pattern, std::regex(pattern, std::regex::ECMAScript)).first;
  return found->second;
}

// ObjectMeta's JSON fields: what survives in metadata (the real server decodes
// metadata into ObjectMeta, which drops the rest).
const std::set<std::string> kObjectMetaFields = {"name",
                                                 "generateName",
                                                 "namespace",
                                                 "selfLink",
                                                 "uid",
                                                 "resourceVersion",
                                                 "generation",
                                                 "creationTimestamp",
                                                 "deletionTimestamp",
                                                 "deletionGracePeriodSeconds",
                                                 "labels",
                                                 "annotations",
                                                 "ownerReferences",
                                                 "finalizers",
                                                 "managedFields"};

std::string child(const std::string& path, const std::string& name) { return path.empty() ? name : path + "." + name; }
std::string item(const std::string& path, std::size_t i) { return path + "[" + std::to_string(i) + "]"; }

const json* member(const json& node, const char* name) {
  if (!node.is_object()) return nullptr;
  const auto& object = node.get_ref<const json::object_t&>();
  const auto it = object.find(name);
  return it == object.end() || it->second.is_null() ? nullptr : &it->second;
}
const json* property(const json& schema, const std::string& name) {
  const json* properties = member(schema, "properties");
  return properties == nullptr ? nullptr : member(*properties, name.c_str());
}
// additionalProperties when it is a schema.
const json* additional_schema(const json& schema) {
  const json* additional = member(schema, "additionalProperties");
  return additional != nullptr && additional->is_object() ? additional : nullptr;
}
bool flag(const json& node, const char* name) {
  const json* m = member(node, name);
  return m != nullptr && m->is_boolean() && m->get<bool>();
}
std::string text(const json& node, const char* name) {
  const json* m = member(node, name);
  return m != nullptr && m->is_string() ? m->get<std::string>() : "";
}

// ---------------------------------------------------------------------------
// Pruning (structural pruning and ObjectMeta decoding).

void prune_metadata(json& metadata, const std::string& path, std::vector<std::string>& unknown) {
  if (!metadata.is_object()) return;
  for (auto it = metadata.begin(); it != metadata.end();) {
    if (kObjectMetaFields.count(it.key()) != 0) {
      ++it;
      continue;
    }
    unknown.push_back(child(path, it.key()));
    it = metadata.erase(it);
  }
}

void prune(json& v, const json& s, const std::string& path, bool resource, std::vector<std::string>& unknown) {
  if (!s.is_object()) return;
  if (v.is_array()) {
    if (const json* items = member(s, "items")) {
      for (std::size_t i = 0; i < v.size(); ++i) prune(v[i], *items, item(path, i), false, unknown);
    }
    return;
  }
  if (!v.is_object()) return;
  const bool embedded = resource || flag(s, "x-kubernetes-embedded-resource");
  const bool preserve = flag(s, "x-kubernetes-preserve-unknown-fields");
  const json* additional = member(s, "additionalProperties");
  for (auto it = v.begin(); it != v.end();) {
    const std::string k = it.key();
    if (embedded && (k == "apiVersion" || k == "kind")) {
      ++it;
      continue;
    }
    if (embedded && k == "metadata") {
      prune_metadata(*it, child(path, k), unknown);
      ++it;
      continue;
    }
    const json* ps = property(s, k);
    if (ps == nullptr) ps = additional_schema(s);
    if (ps != nullptr) {
      // Nulls of non-nullable fields go (defaulting then fills them in).
      if (it->is_null() && !flag(*ps, "nullable")) {
        it = v.erase(it);
        continue;
      }
      prune(*it, *ps, child(path, k), false, unknown);
      ++it;
      continue;
    }
    if (preserve || (additional != nullptr && *additional == true)) {
      ++it;
      continue;
    }
    unknown.push_back(child(path, k));
    it = v.erase(it);
  }
}

// ---------------------------------------------------------------------------
// Schema validation (kube-openapi's SchemaValidator, as ValidateCustomResource
// reports it).

FieldError error(Type type, std::string path, std::optional<json> value, std::string detail) {
  return {std::move(path), type, std::move(value), std::move(detail)};
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
  if (type.empty()) return true;
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

// A number bound as Go's %v prints it.
std::string number(const json& n) {
  if (n.is_number_integer()) return n.dump();
  const double d = n.get<double>();
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) {
    return std::to_string(static_cast<long long>(d));
  }
  return n.dump();
}

std::size_t code_points(const std::string& s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

int digits(const std::string& s, std::size_t at, std::size_t n) { return std::stoi(s.substr(at, n)); }

// strfmt's date-time (RFC 3339, fractional seconds optional) and date.
bool is_date(const std::string& s) {
  static const std::regex kDate(R"(^\d{4}-\d{2}-\d{2}$)");
  if (!std::regex_match(s, kDate)) return false;
  const int month = digits(s, 5, 2);
  const int day = digits(s, 8, 2);
  return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}
bool is_date_time(const std::string& s) {
  static const std::regex kDateTime(R"(^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$)");
  if (!std::regex_match(s, kDateTime) || !is_date(s.substr(0, 10))) return false;
  return digits(s, 11, 2) < 24 && digits(s, 14, 2) < 60 && digits(s, 17, 2) < 60;
}

void check(const json& v, const json& s, const std::string& path, bool resource, std::vector<FieldError>& out) {
  if (!s.is_object()) return;
  auto in_body = [&](const std::string& rest) { return path + " in body " + rest; };
  auto limit = [&](const char* field) -> const json* {
    const json* m = member(s, field);
    return m != nullptr && m->is_number() ? m : nullptr;
  };
  const std::string type = text(s, "type");
  if (v.is_null()) {
    if (!flag(s, "nullable") && !type.empty()) {
      out.push_back(error(Type::TypeInvalid, path, json("null"), in_body("must be of type " + type + ": \"null\"")));
    }
    return;
  }
  if (flag(s, "x-kubernetes-int-or-string")) {
    if (!has_type(v, "integer") && !v.is_string()) {
      out.push_back(error(Type::TypeInvalid, path, type_name(v),
                          in_body("must be of type integer,string: \"" + type_name(v) + "\"")));
      return;
    }
  } else if (!has_type(v, type)) {
    out.push_back(error(Type::TypeInvalid, path, type_name(v),
                        in_body("must be of type " + type + ": \"" + type_name(v) + "\"")));
    return;
  }

  if (v.is_string()) {
    const std::string str = v.get<std::string>();
    if (const json* max = limit("maxLength"); max != nullptr && code_points(str) > max->get<std::size_t>()) {
      out.push_back(error(Type::TooLong, path, v, "may not be more than " + number(*max) + " bytes"));
    }
    if (const json* min = limit("minLength"); min != nullptr && code_points(str) < min->get<std::size_t>()) {
      out.push_back(error(Type::Invalid, path, v, in_body("should be at least " + number(*min) + " chars long")));
    }
    const std::string pattern = text(s, "pattern");
    if (!pattern.empty()) {
      try {
        if (!std::regex_search(str, compiled(pattern))) {
          out.push_back(error(Type::Invalid, path, v, in_body("should match '" + pattern + "'")));
        }
      } catch (const std::regex_error&) {
        // the CRD was refused for it (crd_validation)
      }
    }
    const std::string format = text(s, "format");
    if ((format == "date-time" && !is_date_time(str)) || (format == "date" && !is_date(str))) {
      out.push_back(error(Type::TypeInvalid, path, v, in_body("must be of type " + format + ": " + go_quote(str))));
    }
  }
  if (v.is_number()) {
    const double d = v.get<double>();
    if (const json* factor = limit("multipleOf");
        factor != nullptr && factor->get<double>() != 0 && std::fmod(d, factor->get<double>()) != 0) {
      out.push_back(error(Type::Invalid, path, v, in_body("should be a multiple of " + number(*factor))));
    }
    if (const json* max = limit("maximum")) {
      const bool exclusive = flag(s, "exclusiveMaximum");
      if (exclusive ? d >= max->get<double>() : d > max->get<double>()) {
        out.push_back(
            error(Type::Invalid, path, v,
                  in_body(std::string(exclusive ? "should be less than " : "should be less than or equal to ") +
                          number(*max))));
      }
    }
    if (const json* min = limit("minimum")) {
      const bool exclusive = flag(s, "exclusiveMinimum");
      if (exclusive ? d <= min->get<double>() : d < min->get<double>()) {
        out.push_back(
            error(Type::Invalid, path, v,
                  in_body(std::string(exclusive ? "should be greater than " : "should be greater than or equal to ") +
                          number(*min))));
      }
    }
  }
  if (v.is_array()) {
    if (const json* items = member(s, "items")) {
      for (std::size_t i = 0; i < v.size(); ++i) check(v[i], *items, item(path, i), false, out);
    }
    if (const json* min = limit("minItems"); min != nullptr && v.size() < min->get<std::size_t>()) {
      out.push_back(error(Type::Invalid, path, v, in_body("should have at least " + number(*min) + " items")));
    }
    if (const json* max = limit("maxItems"); max != nullptr && v.size() > max->get<std::size_t>()) {
      out.push_back(error(Type::TooMany, path, static_cast<std::int64_t>(v.size()),
                          "must have at most " + number(*max) + " items"));
    }
  }
  if (const json* allowed = member(s, "enum"); allowed != nullptr && allowed->is_array()) {
    if (std::find(allowed->begin(), allowed->end(), v) == allowed->end()) {
      std::string detail;
      for (const json& a : *allowed) {
        detail +=
            (detail.empty() ? "supported values: " : ", ") + go_quote(a.is_string() ? a.get<std::string>() : a.dump());
      }
      out.push_back(error(Type::NotSupported, path, v, detail));
    }
  }
  if (!v.is_object()) return;
  if (const json* min = limit("minProperties"); min != nullptr && v.size() < min->get<std::size_t>()) {
    out.push_back(error(Type::Invalid, path, v, in_body("should have at least " + number(*min) + " properties")));
    return;
  }
  if (const json* max = limit("maxProperties"); max != nullptr && v.size() > max->get<std::size_t>()) {
    out.push_back(error(Type::TooMany, path, static_cast<std::int64_t>(v.size()),
                        "must have at most " + number(*max) + " items"));
    return;
  }
  const bool embedded = resource || flag(s, "x-kubernetes-embedded-resource");
  for (const auto& [k, field] : v.items()) {
    if (embedded && k == "metadata") continue;  // ObjectMeta's own validation
    if (const json* p = property(s, k)) {
      check(field, *p, child(path, k), false, out);
    } else if (const json* additional = additional_schema(s)) {
      check(field, *additional, child(path, k), false, out);
    }
  }
  if (const json* required = member(s, "required"); required != nullptr && required->is_array()) {
    for (const json& r : *required) {
      if (r.is_string() && !v.contains(r.get<std::string>())) {
        out.push_back(error(Type::Required, child(path, r.get<std::string>()), std::nullopt, ""));
      }
    }
  }
}

// ---------------------------------------------------------------------------
// x-kubernetes-list-type set and map (structurallisttype.ValidateListSetsAndMaps).

void check_lists(const json& v, const json& s, const std::string& path, std::vector<FieldError>& out) {
  if (!s.is_object()) return;
  if (v.is_object()) {
    for (const auto& [k, field] : v.items()) {
      const json* p = property(s, k);
      if (p == nullptr) p = additional_schema(s);
      if (p != nullptr) check_lists(field, *p, child(path, k), out);
    }
    return;
  }
  if (!v.is_array()) return;
  const std::string list_type = text(s, "x-kubernetes-list-type");
  if (list_type == "set") {
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (std::find(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v[i]) !=
          v.begin() + static_cast<std::ptrdiff_t>(i)) {
        out.push_back(error(Type::Duplicate, item(path, i), v[i], ""));
      }
    }
  } else if (list_type == "map") {
    std::vector<json> seen;
    const json* keys = member(s, "x-kubernetes-list-map-keys");
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_object() || keys == nullptr || !keys->is_array()) continue;
      json key = json::object();
      for (const json& k : *keys) {
        if (k.is_string() && v[i].contains(k.get<std::string>()))
          key[k.get<std::string>()] = v[i][k.get<std::string>()];
      }
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        out.push_back(error(Type::Duplicate, item(path, i), key, ""));
      } else {
        seen.push_back(key);
      }
    }
  }
  if (const json* items = member(s, "items")) {
    for (std::size_t i = 0; i < v.size(); ++i) check_lists(v[i], *items, item(path, i), out);
  }
}

// ---------------------------------------------------------------------------
// x-kubernetes-validations (apiextensions-apiserver's CEL validator).

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n\v\f");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r\n\v\f") - first + 1);
}

void check_rules(const json& v, const json& s, const std::string& path, const json* old, std::vector<FieldError>& out) {
  if (!s.is_object() || v.is_null()) return;
  const std::string at = path.empty() ? "<nil>" : path;
  if (const json* rules = member(s, "x-kubernetes-validations"); rules != nullptr && rules->is_array()) {
    for (const json& rule : *rules) {
      const std::string expression = trim(text(rule, "rule"));
      const std::string message = trim(text(rule, "message"));
      const std::string shown = message.empty() ? expression : message;
      try {
        const cel::Program program = cel::Program::compile(expression);
        if (program.uses_old_self() && old == nullptr) continue;  // transition rules: updates only
        const cel::Program::Result result = program.evaluate(v, old);
        if (!result.ok) {
          out.push_back(error(Type::Invalid, at, text(s, "type"), result.error + " evaluating rule: " + shown));
        } else if (!result.value) {
          out.push_back(
              error(Type::Invalid, at, text(s, "type"), message.empty() ? "failed rule: " + expression : message));
        }
      } catch (const cel::CompileError& e) {
        out.push_back(error(Type::Invalid, at, text(s, "type"), std::string("compilation failed: ") + e.what()));
      }
    }
  }
  if (v.is_object()) {
    for (const auto& [k, field] : v.items()) {
      const json* p = property(s, k);
      if (p == nullptr) p = additional_schema(s);
      if (p == nullptr) continue;
      const json* before = old != nullptr && old->is_object() && old->contains(k) ? &old->at(k) : nullptr;
      check_rules(field, *p, child(path, k), before, out);
    }
  } else if (v.is_array()) {
    if (const json* items = member(s, "items")) {
      for (std::size_t i = 0; i < v.size(); ++i) check_rules(v[i], *items, item(path, i), nullptr, out);
    }
  }
}

// ObjectMeta's name (ValidateObjectMetaAccessor with NameIsDNSSubdomain).
void check_name(const json& object, std::vector<FieldError>& out) {
  const json* metadata = member(object, "metadata");
  const std::string name = metadata == nullptr ? "" : text(*metadata, "name");
  if (name.empty()) {
    out.push_back(error(Type::Required, "metadata.name", std::nullopt, "name or generateName is required"));
    return;
  }
  if (name.size() > 253)
    out.push_back(error(Type::Invalid, "metadata.name", name, "must be no more than 253 characters"));
  static const std::regex kSubdomain(R"(^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$)");
  if (!std::regex_match(name, kSubdomain)) {
    out.push_back(error(Type::Invalid, "metadata.name", name,
                        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                        "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
                        "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"));
  }
}

}  // namespace

std::vector<std::string> prune_custom_resource(json& object, const json& schema) {
  std::vector<std::string> unknown;
  prune(object, schema, "", true, unknown);
  std::sort(unknown.begin(), unknown.end());
  return unknown;
}

std::vector<FieldError> validate_custom_resource(const json& object, const json& schema, const json* old) {
  std::vector<FieldError> out;
  check_name(object, out);
  check(object, schema, "", true, out);
  check_lists(object, schema, "", out);
  // The errors that keep the real server from running the CEL rules.
  const bool blocking = std::any_of(out.begin(), out.end(), [](const FieldError& e) {
    return e.type == Type::NotSupported || e.type == Type::Required || e.type == Type::TooLong ||
           e.type == Type::TooMany || e.type == Type::TypeInvalid;
  });
  if (blocking) {
    out.push_back(error(Type::Invalid, "<nil>", std::nullopt,
                        "some validation rules were not checked because the object was invalid; correct the existing "
                        "errors to complete validation"));
  } else {
    check_rules(object, schema, "", old, out);
  }
  return out;
}

}  // namespace backstop::testing
