#include "reconcile/user_stream.h"

#include <algorithm>

#include "net/http.h"
#include "runtime/log.h"

namespace backstop::reconcile {

using exchange::UserStreamEvent;

std::string cut(const std::string& text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  std::size_t end = max_bytes;
  // Back to the start of a UTF-8 character: never half of one (a JSON summary refuses it).
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

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
      // Right after a report of Backstop's own order (not before it: an event
      // out of order is not explained by a later one).
      if (own_report_ms_ >= 0 && event.event_time_ms >= own_report_ms_ &&
          event.event_time_ms - own_report_ms_ <= 1000) {
        return std::nullopt;
      }
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

void PassWakeup::request(std::chrono::milliseconds after, const std::string& reason, bool event) {
  {
    std::lock_guard lock(mutex_);
    const auto at = std::chrono::steady_clock::now() + after;
    if (!due_ || at < *due_) due_ = at;
    if (pending_.reasons.size() < 1000) {
      pending_.reasons += (pending_.reasons.empty() ? "" : "; ") + cut(reason, 200);
    }
    pending_.follow_up = pending_.follow_up || event;
  }
  changed_.notify_all();
}

std::optional<PassWakeup::Wake> PassWakeup::wait_until(std::chrono::steady_clock::time_point deadline,
                                                       const std::atomic<bool>& stop) {
  std::unique_lock lock(mutex_);
  while (!stop) {
    const auto now = std::chrono::steady_clock::now();
    const auto due = due_ ? std::optional(std::max(*due_, last_pass_ + min_gap_)) : std::nullopt;
    if (due && *due <= now) {
      due_.reset();
      last_pass_ = now;
      return std::exchange(pending_, Wake{});
    }
    if (now >= deadline) break;
    // The stop flag is set by a signal handler, which cannot notify: look again every 100 ms.
    auto until = std::min(deadline, now + std::chrono::milliseconds(100));
    if (due) until = std::min(until, *due);
    changed_.wait_until(lock, until);
  }
  last_pass_ = std::chrono::steady_clock::now();
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
    log::info("user data stream: pass requested", {{"reason", cut(*why, 200)}, {"event", event.type}});
    wakeup_.request(options_.debounce, *why, true);
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
      // Whatever happened before the subscription (while it was down, or
      // between the start pass's reads and this answer) was not reported:
      // read it all.
      wakeup_.request(std::chrono::milliseconds(0),
                      resubscribed ? "user data stream resubscribed" : "user data stream subscribed");
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
    handlers.on_pong = [this] {
      {
        std::lock_guard lock(mutex_);
        pong_ = true;
      }
      changed_.notify_all();
    };
    handlers.on_down = [this](const std::string& reason) {
      {
        std::lock_guard lock(mutex_);
        down_ = true;
        stats_.last_down = cut(reason, 200);  // the exchange's message, however long it is
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
      // Subscribed: a ping now and then, whose answer shows the connection
      // still carries frames (a peer gone without closing sends nothing).
      while (!down_ && !stop.stop_requested()) {
        if (changed_.wait_for(lock, stop, options_.ping_interval, [&] { return down_; })) break;
        if (stop.stop_requested()) break;
        pong_ = false;
        lock.unlock();
        stream_.ping();
        lock.lock();
        if (!changed_.wait_for(lock, stop, options_.answer_timeout, [&] { return down_ || pong_; }) &&
            !stop.stop_requested()) {
          down_ = true;
          stats_.last_down = "no answer to a ping within " + std::to_string(options_.answer_timeout.count()) + " ms";
        }
      }
      reason = stats_.last_down;
    } catch (const net::TransportError& e) {
      reason = cut(e.what(), 200);
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
