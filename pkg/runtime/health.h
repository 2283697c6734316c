// What a long-running price process answers its probes (stop-monitor and
// trailing-stop with --stream or --continuous): live while each of its loops
// has come round within `live_within` (a loop stuck on a hung call or a lock
// is a process Kubernetes should restart); ready while its last REST pass that
// read the exchange's prices succeeded within `ready_within` (an exchange or
// database it cannot use is shown, not restarted: the next pass retries).
// Thread-safe; the time is passed in so the rules can be tested without waiting.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace backstop::runtime {

class Health {
 public:
  using Clock = std::chrono::steady_clock;

  Health(std::chrono::milliseconds live_within, std::chrono::milliseconds ready_within);

  // The loop `name` came round (it counts for liveness from its first beat).
  void beat(const std::string& name, Clock::time_point now = Clock::now());
  // A REST pass finished: `prices_read` false when it could not read prices
  // (or failed before it could).
  void pass_finished(bool prices_read, Clock::time_point now = Clock::now());
  // The price stream's state, shown in the answers ("open", "reconnecting", ...).
  void stream_state(const std::string& state);

  struct Answer {
    bool ok = false;
    std::string body;  // one JSON object: what was judged
  };
  [[nodiscard]] Answer live(Clock::time_point now = Clock::now()) const;
  [[nodiscard]] Answer ready(Clock::time_point now = Clock::now()) const;

 private:
  [[nodiscard]] Answer answer(bool ready, Clock::time_point now) const;

  std::chrono::milliseconds live_within_;
  std::chrono::milliseconds ready_within_;
  mutable std::mutex mutex_;
  std::map<std::string, Clock::time_point> beats_;
  std::optional<Clock::time_point> last_good_pass_;
  std::optional<Clock::time_point> last_failed_pass_;
  std::string stream_;
};

}  // namespace backstop::runtime
