#include "kube/events.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>

namespace backstop::kube {

std::string rfc3339_now() {
  const std::time_t t = std::time(nullptr);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buffer;
}

json event_object(const json& object, const std::string& type, const std::string& reason, const std::string& message,
                  const std::string& component, const std::string& instance, const std::string& now,
                  const std::string& unique) {
  const json& meta = object.at("metadata");
  const std::string ns = meta.value("namespace", "default");
  // Event names are unique per object and moment, as client-go's recorder makes them.
  const std::string name = meta.value("name", "object") + "." + unique;
  return {{"apiVersion", "v1"},
          {"kind", "Event"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"involvedObject",
           {{"apiVersion", object.value("apiVersion", "")},
            {"kind", object.value("kind", "")},
            {"name", meta.value("name", "")},
            {"namespace", ns},
            {"uid", meta.value("uid", "")},
            {"resourceVersion", meta.value("resourceVersion", "")}}},
          {"type", type},
          {"reason", reason},
          {"message", message.substr(0, 1024)},
          {"source", {{"component", component}}},
          {"reportingComponent", component},
          {"reportingInstance", instance},
          {"firstTimestamp", now},
          {"lastTimestamp", now},
          {"count", 1}};
}

void EventRecorder::record(const json& object, const std::string& type, const std::string& reason,
                           const std::string& message) {
  const auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  char unique[40];
  std::snprintf(unique, sizeof unique, "%llx%02lx", static_cast<unsigned long long>(nanos), (++sequence_) % 256);
  const json event = event_object(object, type, reason, message, component_, instance_, rfc3339_now(), unique);
  try {
    client_.create("/api/v1/namespaces/" + event["metadata"]["namespace"].get<std::string>() + "/events", event);
    ++recorded_;
  } catch (const std::exception& e) {
    spdlog::warn("event {} {} for {}/{} not recorded: {}", type, reason,
                 event["involvedObject"]["namespace"].get<std::string>(),
                 event["involvedObject"]["name"].get<std::string>(), e.what());
  }
}

}  // namespace backstop::kube
