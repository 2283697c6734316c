#include "kube/leader_election.h"

#include <ctime>

namespace backstop::kube {
namespace {

// metav1.MicroTime: RFC 3339 with microseconds, UTC.
std::string micro_time_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  char buffer[40];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", std::gmtime(&seconds));
  char out[80];
  std::snprintf(out, sizeof out, "%s.%06lldZ", buffer, static_cast<long long>(micros));
  return out;
}

// What is left of the round's time for the next call.
KubeClient::Timeout time_left(const LeaderElector::Deadline& deadline) {
  if (!deadline) return std::nullopt;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now());
  if (left <= std::chrono::milliseconds(0)) {
    throw net::TransportError("lease: the renew deadline passed before the API answered", false);
  }
  return left;
}

}  // namespace

std::string LeaderElector::path() const {
  return "/apis/coordination.k8s.io/v1/namespaces/" + config_.namespace_name + "/leases/" + config_.name;
}

bool LeaderElector::try_acquire_or_renew(Deadline deadline) {
  const std::string now = micro_time_now();
  const auto duration = static_cast<int>(config_.lease_duration.count());
  try {
    auto lease = client_.get(path(), time_left(deadline));
    if (!lease) {
      client_.create("/apis/coordination.k8s.io/v1/namespaces/" + config_.namespace_name + "/leases",
                     {{"apiVersion", "coordination.k8s.io/v1"},
                      {"kind", "Lease"},
                      {"metadata", {{"name", config_.name}, {"namespace", config_.namespace_name}}},
                      {"spec",
                       {{"holderIdentity", config_.identity},
                        {"leaseDurationSeconds", duration},
                        {"acquireTime", now},
                        {"renewTime", now},
                        {"leaseTransitions", 0}}}},
                     time_left(deadline));
      observed_holder_ = config_.identity;
      return leader_ = true;
    }
    json& spec = (*lease)["spec"];
    const std::string holder = spec.value("holderIdentity", "");
    const std::string record = holder + "|" + spec.value("renewTime", "");
    if (record != observed_record_) {
      observed_record_ = record;
      observed_at_ = std::chrono::steady_clock::now();
    }
    observed_holder_ = holder;
    const auto held_for = std::chrono::seconds(spec.value("leaseDurationSeconds", duration));
    const bool expired = std::chrono::steady_clock::now() - observed_at_ >= held_for;
    if (!holder.empty() && holder != config_.identity && !expired) return leader_ = false;
    if (holder != config_.identity) {
      spec["acquireTime"] = now;
      spec["leaseTransitions"] = spec.value("leaseTransitions", 0) + 1;
    }
    spec["holderIdentity"] = config_.identity;
    spec["renewTime"] = now;
    spec["leaseDurationSeconds"] = duration;
    // Carries the read resourceVersion: 409 if someone wrote meanwhile.
    client_.replace(path(), *lease, time_left(deadline));
    observed_holder_ = config_.identity;
    return leader_ = true;
  } catch (const ApiError& e) {
    if (e.conflict()) return leader_ = false;
    throw;
  }
}

void LeaderElector::release(Deadline deadline) {
  if (!leader_) return;
  try {
    auto lease = client_.get(path(), time_left(deadline));
    if (lease && (*lease)["spec"].value("holderIdentity", "") == config_.identity) {
      (*lease)["spec"]["holderIdentity"] = "";
      client_.replace(path(), *lease, time_left(deadline));
    }
  } catch (const ApiError&) {
    // Someone took it meanwhile: the lease expires anyway.
  } catch (const net::TransportError&) {
    // The API is away: the lease expires anyway.
  }
  leader_ = false;
}

}  // namespace backstop::kube
