// The simulator's WebSocket streams, as Binance serves them: /ws/<symbol>@trade
// or /stream?streams=<symbol>@trade/<symbol>@bookTicker (combined, wrapped in
// {"stream":..,"data":..}), and the WebSocket API at /ws-api/v3, whose
// requests `api` answers and whose userDataStream subscriptions receive each
// account's events as {"subscriptionId":N,"event":{..}}. websocketpp 0.8 does
// not compile as C++20, so this is its own C++17 translation unit with a plain
// interface.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace backstop::sim {

class WsStreams {
 public:
  WsStreams();
  ~WsStreams();
  // A WebSocket API request frame answered: the reply frame, and the account
  // (API key) a subscription was made for, empty when none was.
  struct ApiReply {
    std::string text;
    std::string subscribed_key;
  };
  using ApiHandler = std::function<ApiReply(const std::string& request, std::int64_t subscription_id)>;

  // Starts listening on host:port (0 = any) in a thread; returns the bound port or -1.
  int start(const std::string& host, int port, ApiHandler api);
  // Sends the messages to the subscribers of <lower_symbol>@trade / @bookTicker.
  void publish(const std::string& lower_symbol, const std::string& trade_json, const std::string& book_json);
  // Sends an account's event to the connections subscribed to it.
  void publish_account(const std::string& api_key, const std::string& event_json);
  // Faults of the user data stream, for tests: "disconnect" closes every
  // WebSocket API connection; "terminate" sends eventStreamTerminated to
  // every subscription and ends it; "silence" drops events and answers from now on
  // (a connection that died without closing), "resume" sends them again.
  // Returns false for an unknown action.
  bool user_stream_fault(const std::string& action);
  // Live userDataStream subscriptions, over every connection.
  int user_stream_subscriptions();
  void stop();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace backstop::sim
