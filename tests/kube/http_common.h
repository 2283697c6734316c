// The HTTP vocabulary every handler of the Kubernetes API test server shares:
// a failure answered as a metav1.Status object (kind Status, status Failure,
// reason and code), and a request path cut into its segments.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace backstop::testing {

// The Status body the real API server answers a failure with, e.g.
// status(404, "NotFound", "cronjobs.batch \"x\" not found").
nlohmann::json status(int code, const std::string& reason, const std::string& message);

// "/apis/batch/v1/namespaces/x/cronjobs" -> {"apis", "batch", "v1", "namespaces", "x", "cronjobs"}
std::vector<std::string> split_path(const std::string& path);

}  // namespace backstop::testing
