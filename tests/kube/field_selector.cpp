#include "field_selector.h"

#include <algorithm>
#include <stdexcept>

namespace backstop::testing {

using nlohmann::json;

namespace {

// The fields each kind can be selected on, beyond metadata.name and metadata.namespace.
std::vector<std::string> kind_fields(const std::string& plural) {
  if (plural == "events") {
    return {"involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type"};
  }
  if (plural == "secrets") return {"type"};
  if (plural == "namespaces") return {"status.phase"};
  if (plural == "jobs") return {"status.successful"};
  return {};
}

// The field's value as a string ("" when absent), read along its dotted path.
std::string field_value(const json& object, const std::string& plural, const std::string& field) {
  const std::string path = plural == "events" && field == "source" ? "source.component" : field;
  const json* at = &object;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t dot = path.find('.', start);
    if (dot == std::string::npos) dot = path.size();
    const std::string part = path.substr(start, dot - start);
    if (!at->is_object() || !at->contains(part)) return "";
    at = &at->at(part);
    start = dot + 1;
  }
  if (at->is_string()) return at->get<std::string>();
  if (at->is_null()) return "";
  return at->dump();
}

}  // namespace

FieldSelector FieldSelector::parse(const std::string& text, const Resource& r) {
  FieldSelector out;
  out.plural_ = r.plural;
  std::vector<std::string> allowed = {"metadata.name", "metadata.namespace"};
  for (const std::string& f : kind_fields(r.plural)) allowed.push_back(f);
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string term = text.substr(start, end - start);
    start = end + 1;
    if (term.empty()) continue;
    Term t;
    std::size_t value_at = 0;
    if (const auto ne = term.find("!="); ne != std::string::npos) {
      t.field = term.substr(0, ne);
      t.equal = false;
      value_at = ne + 2;
    } else if (const auto eq = term.find('='); eq != std::string::npos) {
      t.field = term.substr(0, eq);
      value_at = term.compare(eq, 2, "==") == 0 ? eq + 2 : eq + 1;
    } else {
      throw std::invalid_argument("invalid selector: '" + text + "'; can't understand '" + term + "'");
    }
    t.value = term.substr(value_at);
    if (std::find(allowed.begin(), allowed.end(), t.field) == allowed.end()) {
      throw std::invalid_argument("field label not supported: " + t.field);
    }
    out.terms_.push_back(std::move(t));
  }
  return out;
}

bool FieldSelector::matches(const json& object) const {
  return std::all_of(terms_.begin(), terms_.end(),
                     [&](const Term& t) { return (field_value(object, plural_, t.field) == t.value) == t.equal; });
}

}  // namespace backstop::testing
