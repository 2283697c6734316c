// userDataStream.subscribe.signature over Binance's WebSocket API.
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>

#include "exchange/binance_protocol.h"
#include "exchange/user_stream.h"
#include "net/http.h"

namespace backstop::exchange {
namespace {

class BinanceUserStream : public UserDataStream {
 public:
  BinanceUserStream(UserStreamConfig config, std::unique_ptr<net::WebSocket> socket)
      : config_(std::move(config)), socket_(std::move(socket)) {}
  ~BinanceUserStream() override { close(); }

  void open(Handlers handlers) override {
    socket_->close();  // no frame of the previous connection after this point
    auto state = std::make_shared<Connection>();
    current_ = state;
    state->handlers = std::move(handlers);
    state->request_id = "bs-uds-" + std::to_string(++requests_);
    net::WebSocket::Handlers socket_handlers;
    socket_handlers.on_message = [state](const std::string& text) { state->receive(text); };
    socket_handlers.on_unreadable = [state](const std::string& error) {
      state->handlers.on_malformed("unreadable frame: " + error);
    };
    socket_handlers.on_closed = [state](const std::string& reason) {
      state->down("connection closed" + (reason.empty() ? std::string() : ": " + reason));
    };
    socket_->open(config_.ws_api_url, std::move(socket_handlers));
    const std::int64_t now =
        config_.now_ms
            ? config_.now_ms()
            : std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                  .count();
    socket_->send(binance::ws_api_signed_request(state->request_id, "userDataStream.subscribe.signature",
                                                 {{"apiKey", config_.api_key},
                                                  {"recvWindow", std::to_string(config_.recv_window.count())},
                                                  {"timestamp", std::to_string(now)}},
                                                 config_.api_secret));
  }

  void ping() override {
    if (!current_) throw net::TransportError("the user data stream is not open", false);
    const std::string id = "bs-uds-ping-" + std::to_string(++requests_);
    {
      const std::lock_guard lock(current_->mutex);
      current_->ping_id = id;
    }
    socket_->send(nlohmann::json{{"id", id}, {"method", "ping"}}.dump());
  }

  void close() override { socket_->close(); }

 private:
  // One connection's handlers and whether it has gone down (reported once).
  struct Connection {
    Handlers handlers;
    std::string request_id;
    std::atomic<bool> is_down{false};
    std::atomic<std::int64_t> subscription{-1};
    std::mutex mutex;
    std::string ping_id;  // the ping in flight (guarded by mutex)

    bool is_ping(const std::string& id) {
      const std::lock_guard lock(mutex);
      return !ping_id.empty() && id == ping_id;
    }

    void down(const std::string& reason) {
      if (!is_down.exchange(true)) handlers.on_down(reason);
    }

    void receive(const std::string& text) {
      if (is_down) return;
      try {
        if (const auto answer = binance::parse_ws_api_answer(text)) {
          if (is_ping(answer->id)) {
            handlers.on_pong();
            return;
          }
          // Not ours, or the subscription's answer once more: nothing new.
          if (answer->id != request_id || subscription >= 0) return;
          if (answer->status != 200) {
            down("subscription refused: status " + std::to_string(answer->status) + ", " +
                 std::to_string(answer->error.code) + " " + answer->error.message);
          } else if (!answer->subscription_id) {
            handlers.on_malformed("the subscription's answer has no result.subscriptionId: " + text.substr(0, 200));
          } else {
            subscription = *answer->subscription_id;
            handlers.on_subscribed(*answer->subscription_id);
          }
          return;
        }
        const auto event = binance::parse_user_stream_event(text);
        // Only this connection's subscription speaks for the account.
        if (!event || subscription < 0 || event->subscription_id != subscription) return;
        if (event->kind == UserStreamEvent::Kind::kStreamTerminated) {
          down("eventStreamTerminated");
          return;
        }
        handlers.on_event(*event);
      } catch (const binance::ProtocolError& e) {
        handlers.on_malformed(e.what());
      }
    }
  };

  UserStreamConfig config_;
  std::int64_t requests_ = 0;
  std::shared_ptr<Connection> current_;
  std::unique_ptr<net::WebSocket> socket_;  // last: destroyed first
};

}  // namespace

std::unique_ptr<UserDataStream> make_binance_user_stream(UserStreamConfig config,
                                                         std::unique_ptr<net::WebSocket> socket) {
  return std::make_unique<BinanceUserStream>(std::move(config), std::move(socket));
}

}  // namespace backstop::exchange
