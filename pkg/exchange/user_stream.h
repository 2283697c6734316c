// The account's user data stream (issue 13): Binance's WebSocket API
// (/ws-api/v3), subscribed with userDataStream.subscribe.signature (an HMAC
// key signs the request; the REST listenKey endpoints are retired). Its
// events are triggers for reconciliation, never its evidence: a pass reads the
// account over REST whatever the event said. Handlers run on the socket's
// thread and must neither throw nor call open() or close().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "exchange/exchange.h"
#include "net/websocket.h"

namespace backstop::exchange {

class UserDataStream {
 public:
  struct Handlers {
    std::function<void(std::int64_t subscription_id)> on_subscribed;  // the exchange accepted the subscription
    std::function<void(const UserStreamEvent& event)> on_event;
    // A frame that is neither an answer nor a well-formed event: what it
    // reported is unknown (the caller runs a full pass).
    std::function<void(const std::string& error)> on_malformed;
    std::function<void()> on_pong;  // the answer to ping()
    // Once per open(): the connection closed, the subscription was refused
    // (the exchange's code and message), or eventStreamTerminated came.
    std::function<void(const std::string& reason)> on_down;
  };

  virtual ~UserDataStream() = default;
  // Connects and sends the subscription; throws net::TransportError when it
  // cannot. Its answer and the events arrive through `handlers`.
  virtual void open(Handlers handlers) = 0;
  // Sends the WebSocket API's ping (weight 1); its answer calls on_pong.
  // Throws net::TransportError when it cannot be sent.
  virtual void ping() = 0;
  virtual void close() = 0;
};

struct UserStreamConfig {
  std::string ws_api_url = "wss://ws-api.binance.com:443/ws-api/v3";
  std::string api_key;
  std::string api_secret;
  std::chrono::milliseconds recv_window{5000};
  std::function<std::int64_t()> now_ms;  // the request's timestamp (null: the system clock)
};

std::unique_ptr<UserDataStream> make_binance_user_stream(UserStreamConfig config,
                                                         std::unique_ptr<net::WebSocket> socket);

}  // namespace backstop::exchange
