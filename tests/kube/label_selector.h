// Label selectors on list and watch (?labelSelector=), as the test server
// understands them: equality (k=v, k==v, k!=v) and existence (k, !k) terms
// joined by commas. Set-based terms (k in (a,b), k notin (a,b)) are refused
// (the caller answers 400), never silently ignored.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace backstop::testing {

class LabelSelector {
 public:
  // An empty text selects everything. Throws std::invalid_argument for
  // set-based terms.
  static LabelSelector parse(const std::string& text);

  // Whether the object's metadata.labels satisfy every term.
  [[nodiscard]] bool matches(const nlohmann::json& object) const;

 private:
  struct Term {
    std::string key, op, value;  // op: "=", "!=", "exists", "!exists"
  };
  std::vector<Term> terms_;
};

}  // namespace backstop::testing
