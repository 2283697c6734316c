#include "reconcile/user_stream.h"

#include <algorithm>

#include "net/http.h"
#include "runtime/log.h"

namespace backstop::reconcile {

using exchange::UserStreamEvent;

std::optional<std::string> TriggerFilter::reason(const UserStreamEvent& event) {
  switch (event.kind) {
    case UserStreamEvent::Kind::kExecutionReport: {
      const UserStreamEvent::Execution& x = event.execution;
      // A cancel's own client id is the cancel request's; C names the order.
      const std::string& order_id = x.execution_type == "CANCELED" && !x.orig_client_order_id.empty()
                                        ? x.orig_client_order_id
                                        : x.client_order_id;
      if (order_id.starts_with(prefix_)) {
        own_report_ms_ = event.event_time_ms;
        return std::nullopt;
      }
      if (x.execution_type != "TRADE") return std::nullopt;
      return "a fill elsewhere: " + x.symbol + " " + std::string(core::to_string(x.side)) + " " +
             x.last_qty.to_string() + " (order " + std::to_string(x.order_id) + ")";
    }
    case UserStreamEvent::Kind::kBalanceUpdate:
      return (event.delta.is_negative() ? "a withdrawal of " : "a deposit of ") + event.delta.to_string() + " " +
             event.asset;
    case UserStreamEvent::Kind::kAccountPosition: {
      if (own_report_ms_ >= 0 && event.event_time_ms - own_report_ms_ <= 1000) return std::nullopt;
      std::string assets;
      for (const auto& [asset, balance] : event.balances) assets += (assets.empty() ? "" : ",") + asset;
      return "balances changed: " + assets;
    }
    case UserStreamEvent::Kind::kStreamTerminated:
    case UserStreamEvent::Kind::kOther:
      return std::nullopt;
  }
  return std::nullopt;
}

void PassWakeup::request(std::chrono::milliseconds after, const std::string& reason) {
  {
    std::lock_guard lock(mutex_);
    const auto at = std::chrono::steady_clock::now() + after;
    if (!due_ || at < *due_) due_ = at;
    if (reasons_.size() < 1000) reasons_ += (reasons_.empty() ? "" : "; ") + reason;
  }
  changed_.notify_all();
}

std::optional<std::string> PassWakeup::wait_until(std::chrono::steady_clock::time_point deadline,
                                                  const std::atomic<bool>& stop) {
  std::unique_lock lock(mutex_);
  while (!stop) {
    const auto now = std::chrono::steady_clock::now();
    if (due_ && *due_ <= now) {
      due_.reset();
      return std::exchange(reasons_, std::string());
    }
    if (now >= deadline) break;
    // The stop flag is set by a signal handler, which cannot notify: look again every 100 ms.
    auto until = std::min(deadline, now + std::chrono::milliseconds(100));
    if (due_) until = std::min(until, *due_);
    changed_.wait_until(lock, until);
  }
  return std::nullopt;
}

UserStreamFollower::UserStreamFollower(exchange::UserDataStream& stream, PassWakeup& wakeup, FollowOptions options)
    : stream_(stream), wakeup_(wakeup), options_(std::move(options)), filter_(options_.client_id_prefix) {}

UserStreamFollower::~UserStreamFollower() { stop(); }

void UserStreamFollower::start() {
  thread_ = std::jthread([this](const std::stop_token& stop) { run(stop); });
}

void UserStreamFollower::stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();  // wakes the waits, which take the stop token
  thread_.join();
}

UserStreamFollower::Stats UserStreamFollower::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void UserStreamFollower::on_event(const UserStreamEvent& event) {
  const std::optional<std::string> why = filter_.reason(event);
  {
    std::lock_guard lock(mutex_);
    ++stats_.events;
    if (why) ++stats_.triggers;
  }
  if (why) {
    log::info("user data stream: pass requested", {{"reason", *why}, {"event", event.type}});
    wakeup_.request(options_.debounce, *why);
  }
}

void UserStreamFollower::run(const std::stop_token& stop) {
  auto backoff = options_.backoff_min;
  while (!stop.stop_requested()) {
    {
      std::lock_guard lock(mutex_);
      down_ = false;
      stats_.subscribed = false;
    }
    exchange::UserDataStream::Handlers handlers;
    handlers.on_subscribed = [this](std::int64_t id) {
      bool resubscribed = false;
      {
        std::lock_guard lock(mutex_);
        resubscribed = ++stats_.subscriptions > 1;
        stats_.subscribed = true;
      }
      changed_.notify_all();
      log::info("user data stream subscribed", {{"subscription_id", id}});
      // Whatever happened while it was down was not reported: read it all.
      if (resubscribed) wakeup_.request(std::chrono::milliseconds(0), "user data stream resubscribed");
    };
    handlers.on_event = [this](const UserStreamEvent& event) { on_event(event); };
    handlers.on_malformed = [this](const std::string& error) {
      {
        std::lock_guard lock(mutex_);
        ++stats_.malformed;
      }
      log::warn("user data stream: malformed frame; a full pass reads what it reported", {{"error", error}});
      wakeup_.request(options_.debounce, "malformed user data stream frame");
    };
    handlers.on_down = [this](const std::string& reason) {
      {
        std::lock_guard lock(mutex_);
        down_ = true;
        stats_.last_down = reason;
      }
      changed_.notify_all();
    };
    const auto opened_at = std::chrono::steady_clock::now();
    std::string reason;
    try {
      stream_.open(std::move(handlers));
      std::unique_lock lock(mutex_);
      // An answer that never comes is a subscription that does not exist.
      if (!changed_.wait_for(lock, stop, options_.answer_timeout, [&] { return down_ || stats_.subscribed; })) {
        if (!stop.stop_requested()) {
          down_ = true;
          stats_.last_down =
              "no answer to the subscription within " + std::to_string(options_.answer_timeout.count()) + " ms";
        }
      }
      changed_.wait(lock, stop, [&] { return down_; });
      reason = stats_.last_down;
    } catch (const net::TransportError& e) {
      reason = e.what();
    }
    stream_.close();
    if (stop.stop_requested()) break;
    {
      std::lock_guard lock(mutex_);
      ++stats_.downs;
      stats_.subscribed = false;
      stats_.last_down = reason;
    }
    if (std::chrono::steady_clock::now() - opened_at >= options_.stable_after) backoff = options_.backoff_min;
    log::warn("user data stream down; resubscribing, the --interval passes go on meanwhile",
              {{"reason", reason}, {"retry_in_ms", static_cast<std::int64_t>(backoff.count())}});
    wakeup_.request(std::chrono::milliseconds(0), "user data stream down: " + reason);
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, stop, backoff, [] { return false; });
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
}

}  // namespace backstop::reconcile
