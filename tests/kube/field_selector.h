// Field selectors on list and watch (?fieldSelector=), as the real API server
// has them: terms joined by commas, each field=value, field==value or
// field!=value, on the fields a kind supports: metadata.name and
// metadata.namespace for every kind; for Events also involvedObject.kind,
// .namespace, .name, .uid, .apiVersion, .resourceVersion, .fieldPath, reason,
// reportingComponent, source and type (pkg/registry/core/event); a Secret's
// type; a Namespace's status.phase; a Job's status.successful. Any other field
// is refused ("field label not supported: ...", the caller answers 400), never
// silently ignored.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "resources.h"

namespace backstop::testing {

class FieldSelector {
 public:
  // An empty text selects everything. Throws std::invalid_argument with the
  // real server's message for an unsupported field or a malformed term.
  static FieldSelector parse(const std::string& text, const Resource& r);

  [[nodiscard]] bool matches(const nlohmann::json& object) const;

 private:
  struct Term {
    std::string field, value;
    bool equal = true;
  };
  std::vector<Term> terms_;
  std::string plural_;
};

}  // namespace backstop::testing
