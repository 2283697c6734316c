// Table output (Accept: application/json;as=Table;g=meta.k8s.io;v=v1), what
// `kubectl get` prints: a Name column, then the kind's printer columns (a
// CRD's additionalPrinterColumns, Age for the others), each cell read with the
// JSONPath subset printer columns use; dates shown as an age (45s, 3m, 2h, 5d).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "resources.h"

namespace backstop::testing {

// The meta.k8s.io/v1 Table of `items`, stamped with the store's revision.
nlohmann::json table(const Resource& r, const std::vector<nlohmann::json>& items, long revision);

// The JSONPath subset printer columns use: .a.b, .a[0], .a[?(@.k=="v")].b;
// null when the path selects nothing.
nlohmann::json json_path(const nlohmann::json& object, const std::string& path);

}  // namespace backstop::testing
