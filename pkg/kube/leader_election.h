// Leader election on a coordination.k8s.io/v1 Lease, as client-go does: the
// leader renews spec.renewTime every retry period; the others take over when
// the record has not changed for leaseDurationSeconds by their own clock (so
// clock skew between nodes does not matter). Every write is an optimistic
// update (409 = somebody else wrote first: not the leader this round). Every
// API call of a round ends by the deadline the caller gives (the leader's
// renew deadline, as client-go's RenewDeadline): a call that hangs is
// abandoned there, so a leader steps down in time, before a standby may take
// the lease over, never after the client's request timeout.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "kube/client.h"

namespace backstop::kube {

struct LeaseConfig {
  std::string namespace_name = "default";
  std::string name = "backstop-controller";
  std::string identity;  // this process (e.g. the Pod name)
  std::chrono::seconds lease_duration{15};
};

class LeaderElector {
 public:
  LeaderElector(KubeClient& client, LeaseConfig config) : client_(client), config_(std::move(config)) {}

  using Deadline = std::optional<std::chrono::steady_clock::time_point>;

  // One attempt to acquire or renew the lease; true while this identity holds
  // it. Throws net::TransportError if the API does not answer by
  // `deadline` (or it has already passed), ApiError for other API failures.
  bool try_acquire_or_renew(Deadline deadline = std::nullopt);
  // Gives the lease up at once (on shutdown), so another candidate need not wait.
  void release(Deadline deadline = std::nullopt);
  [[nodiscard]] bool is_leader() const { return leader_; }
  [[nodiscard]] const std::string& observed_holder() const { return observed_holder_; }

 private:
  [[nodiscard]] std::string path() const;

  KubeClient& client_;
  LeaseConfig config_;
  bool leader_ = false;
  std::string observed_record_;  // holder + renewTime last seen
  std::chrono::steady_clock::time_point observed_at_{};
  std::string observed_holder_;
};

}  // namespace backstop::kube
