#include "runtime/health.h"

#include <nlohmann/json.hpp>

namespace backstop::runtime {

Health::Health(std::chrono::milliseconds live_within, std::chrono::milliseconds ready_within)
    : live_within_(live_within), ready_within_(ready_within) {}

void Health::beat(const std::string& name, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  beats_[name] = now;
}

void Health::pass_finished(bool prices_read, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  (prices_read ? last_good_pass_ : last_failed_pass_) = now;
}

void Health::stream_state(const std::string& state) {
  std::lock_guard lock(mutex_);
  stream_ = state;
}

Health::Answer Health::live(Clock::time_point now) const { return answer(false, now); }

Health::Answer Health::ready(Clock::time_point now) const { return answer(true, now); }

Health::Answer Health::answer(bool ready, Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  const auto seconds = [&](Clock::time_point t) {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(now - t).count()) / 1000.0;
  };
  nlohmann::ordered_json body;
  bool ok = true;
  nlohmann::ordered_json loops = nlohmann::ordered_json::object();
  for (const auto& [name, at] : beats_) {
    loops[name] = seconds(at);
    if (now - at > live_within_) ok = false;
  }
  body["loops_seconds_ago"] = loops;
  body["live_within_seconds"] = static_cast<double>(live_within_.count()) / 1000.0;
  if (ready) {
    const bool recent = last_good_pass_ && now - *last_good_pass_ <= ready_within_;
    ok = ok && recent;
    body["last_good_pass_seconds_ago"] = last_good_pass_ ? nlohmann::ordered_json(seconds(*last_good_pass_)) : nullptr;
    body["last_failed_pass_seconds_ago"] =
        last_failed_pass_ ? nlohmann::ordered_json(seconds(*last_failed_pass_)) : nullptr;
    body["ready_within_seconds"] = static_cast<double>(ready_within_.count()) / 1000.0;
  }
  if (!stream_.empty()) body["stream"] = stream_;
  body["ok"] = ok;
  return {ok, body.dump() + "\n"};
}

}  // namespace backstop::runtime
