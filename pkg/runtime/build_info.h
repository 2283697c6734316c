// Which build this is: the project's version and, when it was built from a git
// checkout, the commit (fixed when CMake configured the build, see
// cmake/build_info.cmake). Every binary prints it for --version; the metric
// backstop_build_info{version, commit} carries it to Prometheus.
#pragma once

#include <string>
#include <string_view>

namespace backstop::runtime {

struct BuildInfo {
  std::string_view version;   // the CMake project's VERSION, "0.1.0"
  std::string_view commit;    // 12 hex digits of the commit; empty when built without git
  std::string_view describe;  // `git describe --tags --always --dirty`; empty without git
};

[[nodiscard]] const BuildInfo& build_info();

// "<program> <version> (commit <commit>[, git <describe>])", the --version line;
// the describe part only when it says more than the commit (a tag, -dirty at
// configure time).
[[nodiscard]] std::string version_line(std::string_view program);

}  // namespace backstop::runtime
