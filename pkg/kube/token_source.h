// The bearer token a KubeClient sends. A token read from a file (the Pod's
// projected service-account token, a kubeconfig's tokenFile) is read again
// when the file changes and at least once a minute, as client-go does: the
// kubelet rotates the projected token (it expires after about an hour) by
// swapping the file, so a token read once at start is refused (401) later. A
// static token never changes. Shared by the threads of one client.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "kube/config.h"

namespace backstop::kube {

class TokenSource {
 public:
  explicit TokenSource(const KubeConfig& config, std::chrono::seconds max_age = std::chrono::seconds(60));

  // The token to send now (nullopt: none), read again first if its file
  // changed or was read more than max_age ago.
  std::optional<std::string> token();
  // Reads the file again at once (after a 401); true if the token changed.
  bool refresh();

 private:
  // What tells a changed file: the kubelet's atomic swap gives a new inode;
  // an edit in place a new size or modification time.
  struct Stamp {
    std::uint64_t device = 0, inode = 0;
    std::int64_t size = 0, modified_ns = 0;
    bool operator==(const Stamp&) const = default;
  };
  [[nodiscard]] std::optional<Stamp> stamp() const;
  void read();  // with mutex_ held; keeps the old token if the file cannot be read

  std::mutex mutex_;
  std::optional<std::string> token_;
  std::optional<std::string> file_;
  std::chrono::seconds max_age_;
  std::optional<Stamp> read_stamp_;
  std::chrono::steady_clock::time_point read_at_{};
};

}  // namespace backstop::kube
