// Kubernetes Events (core/v1) about an object, as `kubectl describe` shows
// them: type Normal or Warning, a CamelCase reason and a message, from the
// reporting component. Recording is best effort: an Event that cannot be
// written is logged, never an error of the reconcile that made it.
#pragma once

#include <atomic>
#include <string>

#include "kube/client.h"

namespace backstop::kube {

class EventRecorder {
 public:
  EventRecorder(KubeClient& client, std::string component, std::string instance)
      : client_(client), component_(std::move(component)), instance_(std::move(instance)) {}

  // `object`: the involved object as the API returned it (kind, apiVersion, metadata).
  void record(const json& object, const std::string& type, const std::string& reason, const std::string& message);
  [[nodiscard]] long recorded() const { return recorded_; }

 private:
  KubeClient& client_;
  std::string component_;  // backstop-controller
  std::string instance_;   // this process (Pod name)
  std::atomic<long> recorded_{0};
  std::atomic<long> sequence_{0};
};

// The current time as RFC 3339 (UTC, seconds), as Events and conditions carry it.
std::string rfc3339_now();

// The Event object record() sends (pure; `now` RFC 3339, `unique` a suffix).
json event_object(const json& object, const std::string& type, const std::string& reason, const std::string& message,
                  const std::string& component, const std::string& instance, const std::string& now,
                  const std::string& unique);

}  // namespace backstop::kube
