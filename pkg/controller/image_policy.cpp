#include "controller/image_policy.h"

#include <stdexcept>

namespace backstop::controller {

ImagePolicy::ImagePolicy(std::vector<std::string> allowed) : allowed_(std::move(allowed)) {
  for (const std::string& entry : allowed_) {
    const auto star = entry.find('*');
    const bool prefix = star != std::string::npos;
    const auto last_slash = entry.rfind('/');
    const bool tagged = entry.find(':', last_slash == std::string::npos ? 0 : last_slash) != std::string::npos;
    if (entry.empty() || tagged || entry.find_first_of(" \t\n@") != std::string::npos ||
        (prefix && (star != entry.size() - 1 || entry.size() < 3 || entry[entry.size() - 2] != '/'))) {
      throw std::invalid_argument("allowed image \"" + entry +
                                  "\": expected a repository without tag or digest (registry.example.com/team/"
                                  "backstop) or a prefix ending in /* (registry.example.com/team/*)");
    }
  }
}

bool ImagePolicy::allows(const std::string& repository) const {
  if (allowed_.empty()) return true;
  for (const std::string& entry : allowed_) {
    if (entry.back() == '*') {
      const std::string prefix = entry.substr(0, entry.size() - 1);  // ends in '/'
      if (repository.size() > prefix.size() && repository.compare(0, prefix.size(), prefix) == 0) return true;
    } else if (repository == entry) {
      return true;
    }
  }
  return false;
}

void ImagePolicy::check(const ImageSpec& image) const {
  if (allows(image.repository)) return;
  throw InvalidSpec("spec.image.repository: \"" + image.repository +
                    "\" is not an image this controller may run (allowed: " + describe() + ")");
}

std::string ImagePolicy::describe() const {
  std::string out;
  for (const std::string& entry : allowed_) out += (out.empty() ? "" : ", ") + entry;
  return out;
}

}  // namespace backstop::controller
