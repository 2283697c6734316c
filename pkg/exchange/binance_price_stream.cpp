// Binance's combined <symbol>@trade / <symbol>@bookTicker streams over a WebSocket.
#include <cctype>

#include "exchange/price_stream.h"

namespace backstop::exchange {
namespace {

class BinancePriceStream : public PriceStream {
 public:
  BinancePriceStream(std::string base_url, std::unique_ptr<net::WebSocket> socket)
      : base_url_(std::move(base_url)), socket_(std::move(socket)) {}
  ~BinancePriceStream() override { close(); }

  void open(const std::vector<std::string>& symbols, bool book, std::function<void(binance::StreamTick)> on_tick,
            std::function<void(std::string)> on_closed) override {
    std::string streams;
    for (const auto& symbol : symbols) {
      std::string lower = symbol;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      streams += (streams.empty() ? "" : "/") + lower + (book ? "@bookTicker" : "@trade");
    }
    net::WebSocket::Handlers handlers;
    handlers.on_message = [on_tick](const std::string& text) {
      try {
        if (auto tick = binance::parse_stream_message(text)) on_tick(std::move(*tick));
      } catch (const std::exception&) {
        // A malformed message is dropped; the next tick or the REST backstop covers it.
      }
    };
    handlers.on_unreadable = [](const std::string&) {};
    handlers.on_closed = std::move(on_closed);
    socket_->open(base_url_ + "/stream?streams=" + streams, std::move(handlers));
  }

  void close() override { socket_->close(); }

 private:
  std::string base_url_;
  std::unique_ptr<net::WebSocket> socket_;
};

}  // namespace

std::unique_ptr<PriceStream> make_binance_price_stream(std::string base_url, std::unique_ptr<net::WebSocket> socket) {
  return std::make_unique<BinancePriceStream>(std::move(base_url), std::move(socket));
}

}  // namespace backstop::exchange
