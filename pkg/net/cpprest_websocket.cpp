// The WebSocket side of cpprestsdk, kept in its own file like the HTTP side.
#include <cpprest/ws_client.h>

#include "net/http.h"
#include "net/websocket.h"

namespace backstop::net {
namespace {

namespace ws = web::websockets::client;

class CpprestWebSocket : public WebSocket {
 public:
  ~CpprestWebSocket() override { close(); }

  void open(const std::string& url, Handlers handlers) override {
    close();
    client_ = std::make_unique<ws::websocket_callback_client>();
    client_->set_message_handler(
        [on_message = std::move(handlers.on_message),
         on_unreadable = std::move(handlers.on_unreadable)](const ws::websocket_incoming_message& message) {
          std::string text;
          try {
            text = message.extract_string().get();
          } catch (const std::exception& e) {
            on_unreadable(e.what());
            return;
          }
          on_message(std::move(text));
        });
    client_->set_close_handler([on_closed = std::move(handlers.on_closed)](ws::websocket_close_status,
                                                                           const std::string& reason,
                                                                           const std::error_code& error) {
      on_closed(reason.empty() ? error.message() : reason);
    });
    try {
      client_->connect(url).get();
    } catch (const std::exception& e) {
      client_.reset();
      throw TransportError("cannot open the WebSocket " + url + ": " + e.what(), false);
    }
  }

  void send(const std::string& text) override {
    if (!client_) throw TransportError("cannot send on a WebSocket that is not open", false);
    ws::websocket_outgoing_message message;
    message.set_utf8_message(text);
    try {
      client_->send(message).get();
    } catch (const std::exception& e) {
      throw TransportError(std::string("cannot send on the WebSocket: ") + e.what(), false);
    }
  }

  void close() override {
    if (!client_) return;
    try {
      client_->close().get();
    } catch (const std::exception&) {
      // Closing a connection that already broke: its close handler has reported why.
    }
    client_.reset();
  }

 private:
  std::unique_ptr<ws::websocket_callback_client> client_;
};

}  // namespace

std::unique_ptr<WebSocket> make_cpprest_websocket() { return std::make_unique<CpprestWebSocket>(); }

}  // namespace backstop::net
