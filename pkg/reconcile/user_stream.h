// reconcile --stream (issue 13, docs/design/account-truth.md §5.2): the
// account's user data stream wakes the pass loop when something moved the
// account from outside Backstop, so a sale in the exchange's app is
// reconciled within a second instead of at the next --interval. The event is
// the trigger, the REST reads of the pass are the evidence: one code path,
// and an event lost, late or malformed costs latency, never a wrong decision.
// A connection that drops, is refused or is terminated is resubscribed with
// backoff (0.5 s doubling to 30 s), and a full pass runs at once, since events
// were missed meanwhile. A stream that goes silent without closing is covered
// by the --interval passes, which never stop.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "exchange/user_stream.h"

namespace backstop::reconcile {

// `text`, at most `max_bytes` long, cut at a UTF-8 character boundary.
std::string cut(const std::string& text, std::size_t max_bytes);

// Which events call for a pass (pure, testable without a socket):
//  - a fill (executionReport x=TRADE) of an order whose client id is not
//    Backstop's: a sale or a buy made elsewhere;
//  - balanceUpdate: a deposit, a withdrawal, a transfer;
//  - outboundAccountPosition, unless it follows a report of one of Backstop's
//    own orders within a second (an exit's own balance change is not drift).
// Reports of orders that did not fill (NEW, CANCELED, EXPIRED) call for none:
// the balance change they make comes as outboundAccountPosition.
class TriggerFilter {
 public:
  explicit TriggerFilter(std::string client_id_prefix) : prefix_(std::move(client_id_prefix)) {}
  // Why `event` calls for a pass; nullopt when it does not.
  std::optional<std::string> reason(const exchange::UserStreamEvent& event);

 private:
  std::string prefix_;
  std::int64_t own_report_ms_ = -1;  // event time of the last report of one of Backstop's orders
};

// The pass loop's alarm: passes asked for by the stream, debounced (the
// first request fixes when the pass runs; those before it join it), and never
// closer than `min_gap` to the previous pass: a burst of events (another bot
// trading on the account, a stream of garbage) costs at most one pass a
// `min_gap`, not the account's request weight.
class PassWakeup {
 public:
  struct Wake {
    std::string reasons;     // "; "-joined, each at most 200 characters
    bool follow_up = false;  // an event asked for it: the caller may look again a little later
  };
  explicit PassWakeup(std::chrono::milliseconds min_gap = std::chrono::milliseconds(1000)) : min_gap_(min_gap) {}
  // `event`: asked for by what the account did (not by the stream's own state).
  void request(std::chrono::milliseconds after, const std::string& reason, bool event = false);
  // Waits until a requested pass is due, `deadline` comes (nullopt) or `stop`
  // is set (nullopt); either way a pass is taken to start now.
  std::optional<Wake> wait_until(std::chrono::steady_clock::time_point deadline, const std::atomic<bool>& stop);

 private:
  const std::chrono::milliseconds min_gap_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<std::chrono::steady_clock::time_point> due_;
  std::chrono::steady_clock::time_point last_pass_{};
  Wake pending_;
};

struct FollowOptions {
  std::chrono::milliseconds debounce{200};
  std::chrono::milliseconds backoff_min{500};
  std::chrono::milliseconds backoff_max{30000};
  // A subscription that lived this long resets the backoff.
  std::chrono::milliseconds stable_after{60000};
  std::chrono::milliseconds answer_timeout{10000};  // the subscription or a ping unanswered this long: resubscribe
  // A subscription is pinged (the WebSocket API's ping, weight 1) this often:
  // a connection that died without closing answers nothing, and is replaced.
  std::chrono::milliseconds ping_interval{30000};
  std::string client_id_prefix = "bs";
};

// Keeps the subscription up on a thread of its own and turns its events into
// PassWakeup requests.
class UserStreamFollower {
 public:
  struct Stats {
    std::int64_t events = 0;         // well-formed events received
    std::int64_t triggers = 0;       // events that called for a pass
    std::int64_t malformed = 0;      // frames refused (each calls for a full pass)
    std::int64_t subscriptions = 0;  // subscriptions the exchange accepted
    std::int64_t downs = 0;          // connections lost, refused, terminated or silent
    bool subscribed = false;         // right now
    std::string last_down;
  };

  UserStreamFollower(exchange::UserDataStream& stream, PassWakeup& wakeup, FollowOptions options);
  ~UserStreamFollower();
  UserStreamFollower(const UserStreamFollower&) = delete;
  UserStreamFollower& operator=(const UserStreamFollower&) = delete;

  void start();
  void stop();
  [[nodiscard]] Stats stats() const;

 private:
  void run(const std::stop_token& stop);
  void on_event(const exchange::UserStreamEvent& event);

  exchange::UserDataStream& stream_;
  PassWakeup& wakeup_;
  FollowOptions options_;
  TriggerFilter filter_;  // on the socket's thread only
  mutable std::mutex mutex_;
  std::condition_variable_any changed_;
  bool down_ = false;  // the current connection went down
  bool pong_ = false;  // the current ping was answered
  Stats stats_;
  std::jthread thread_;
};

}  // namespace backstop::reconcile
