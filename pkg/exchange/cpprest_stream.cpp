// The WebSocket side of cpprestsdk, kept in its own file like the HTTP side.
#include <cpprest/ws_client.h>

#include "exchange/http.h"
#include "exchange/price_stream.h"

namespace backstop::exchange {
namespace {

namespace ws = web::websockets::client;

class CpprestPriceStream : public PriceStream {
 public:
  explicit CpprestPriceStream(std::string base_url) : base_url_(std::move(base_url)) {}
  ~CpprestPriceStream() override { close(); }

  void open(const std::vector<std::string>& symbols, bool book, std::function<void(binance::StreamTick)> on_tick,
            std::function<void(std::string)> on_closed) override {
    close();
    std::string streams;
    for (const auto& symbol : symbols) {
      std::string lower = symbol;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      streams += (streams.empty() ? "" : "/") + lower + (book ? "@bookTicker" : "@trade");
    }
    client_ = std::make_unique<ws::websocket_callback_client>();
    client_->set_message_handler([on_tick](const ws::websocket_incoming_message& message) {
      try {
        const std::string body = message.extract_string().get();
        if (auto tick = binance::parse_stream_message(body)) on_tick(std::move(*tick));
      } catch (const std::exception&) {
        // A malformed message is dropped; the next tick or the REST backstop covers it.
      }
    });
    client_->set_close_handler([on_closed](ws::websocket_close_status, const std::string& reason, const std::error_code& error) {
      on_closed(reason.empty() ? error.message() : reason);
    });
    try {
      client_->connect(base_url_ + "/stream?streams=" + streams).get();
    } catch (const std::exception& e) {
      client_.reset();
      throw TransportError("cannot open the price stream at " + base_url_ + ": " + e.what(), false);
    }
  }

  void close() override {
    if (!client_) return;
    try {
      client_->close().get();
    } catch (const std::exception&) {
    }
    client_.reset();
  }

 private:
  std::string base_url_;
  std::unique_ptr<ws::websocket_callback_client> client_;
};

}  // namespace

std::unique_ptr<PriceStream> make_cpprest_price_stream(const std::string& base_url) {
  return std::make_unique<CpprestPriceStream>(base_url);
}

}  // namespace backstop::exchange
