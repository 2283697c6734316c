#include "label_selector.h"

#include <stdexcept>

namespace backstop::testing {

using nlohmann::json;

LabelSelector LabelSelector::parse(const std::string& text) {
  LabelSelector out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string term = text.substr(start, end - start);
    start = end + 1;
    if (term.empty()) continue;
    if (term.find('(') != std::string::npos || term.find(" in ") != std::string::npos ||
        term.find(" notin ") != std::string::npos) {
      throw std::invalid_argument("set-based selector terms are not supported by this test server: " + term);
    }
    if (const auto at = term.find("!="); at != std::string::npos) {
      out.terms_.push_back({term.substr(0, at), "!=", term.substr(at + 2)});
    } else if (const auto eq = term.find('='); eq != std::string::npos) {
      const std::size_t value_at = term.compare(eq, 2, "==") == 0 ? eq + 2 : eq + 1;
      out.terms_.push_back({term.substr(0, eq), "=", term.substr(value_at)});
    } else if (term[0] == '!') {
      out.terms_.push_back({term.substr(1), "!exists", ""});
    } else {
      out.terms_.push_back({term, "exists", ""});
    }
  }
  return out;
}

bool LabelSelector::matches(const json& object) const {
  const json labels = object.contains("metadata") ? object["metadata"].value("labels", json::object()) : json::object();
  for (const Term& t : terms_) {
    const bool has = labels.contains(t.key);
    const std::string value = has && labels[t.key].is_string() ? labels[t.key].get<std::string>() : "";
    if (t.op == "=" && (!has || value != t.value)) return false;
    if (t.op == "!=" && has && value == t.value) return false;
    if (t.op == "exists" && !has) return false;
    if (t.op == "!exists" && has) return false;
  }
  return true;
}

}  // namespace backstop::testing
