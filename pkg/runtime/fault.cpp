#include "runtime/fault.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace backstop::runtime {

void fault_point(std::string_view name) {
  static const char* const configured = std::getenv("BACKSTOP_FAULT_POINT");
  if (configured == nullptr) return;
  const std::string_view spec(configured);
  const auto colon = spec.find(':');
  if (spec.substr(0, colon) != name) return;
  const long wanted =
      colon == std::string_view::npos ? 1 : std::strtol(std::string(spec.substr(colon + 1)).c_str(), nullptr, 10);
  static std::atomic<long> hits{0};
  if (++hits >= wanted) {
    std::fprintf(stderr, "fault point %s reached (hit %ld): aborting\n", std::string(name).c_str(), hits.load());
    std::abort();
  }
}

}  // namespace backstop::runtime
