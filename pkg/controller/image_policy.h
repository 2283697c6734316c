// Which images a StopMonitor may run. A StopMonitor names the image of its
// Jobs, and they read its exchange and broker Secrets: whoever can create one
// could otherwise run any image with those Secrets. The controller refuses a
// StopMonitor whose spec.image.repository its allow-list does not cover
// (InvalidSpec, a Warning Event, nothing created or changed; what already runs
// keeps its image).
#pragma once

#include <string>
#include <vector>

#include "controller/stop_monitor_spec.h"

namespace backstop::controller {

class ImagePolicy {
 public:
  // Each entry is a repository ("ghcr.io/backstop/backstop": that repository,
  // any tag or digest) or a prefix ending in "/*" ("registry.example.com/
  // backstop/*": every repository under it). Empty: every image (the
  // controller warns at start). Throws std::invalid_argument for a malformed
  // entry, naming it.
  explicit ImagePolicy(std::vector<std::string> allowed = {});

  [[nodiscard]] bool unrestricted() const { return allowed_.empty(); }
  [[nodiscard]] bool allows(const std::string& repository) const;
  // Throws InvalidSpec naming spec.image.repository, its value and the list.
  void check(const ImageSpec& image) const;
  [[nodiscard]] std::string describe() const;  // the entries, comma-separated

 private:
  std::vector<std::string> allowed_;
};

}  // namespace backstop::controller
