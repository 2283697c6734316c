// A WebSocket client connection, the transport under the exchange's price
// stream and user data stream: text frames handed over one at a time, in
// order, on the connection's own thread. cpprestsdk stays behind one
// implementation file.
#pragma once

#include <functional>
#include <memory>
#include <string>

namespace backstop::net {

class WebSocket {
 public:
  struct Handlers {
    std::function<void(std::string text)> on_message;      // each text frame
    std::function<void(std::string error)> on_unreadable;  // a frame whose bytes could not be read
    std::function<void(std::string reason)> on_closed;     // once, when the connection ends
  };

  virtual ~WebSocket() = default;
  // Connects to `url` (ws:// or wss://), closing an open connection first;
  // throws TransportError (not sent) when it cannot. The handlers must not throw.
  virtual void open(const std::string& url, Handlers handlers) = 0;
  // Sends one text frame; throws TransportError (not sent) when no connection
  // is open or the frame cannot be written.
  virtual void send(const std::string& text) = 0;
  // Closes the connection, if one is open.
  virtual void close() = 0;
};

// cpprestsdk's WebSocket client.
std::unique_ptr<WebSocket> make_cpprest_websocket();

}  // namespace backstop::net
