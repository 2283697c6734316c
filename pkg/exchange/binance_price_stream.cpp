// Binance's combined <symbol>@trade / <symbol>@bookTicker streams over a WebSocket.
#include <cctype>
#include <mutex>

#include "exchange/binance_protocol.h"
#include "exchange/price_stream.h"

namespace backstop::exchange {
namespace {

class BinancePriceStream : public PriceStream {
 public:
  BinancePriceStream(std::string base_url, std::unique_ptr<net::WebSocket> socket)
      : base_url_(std::move(base_url)), socket_(std::move(socket)) {}
  ~BinancePriceStream() override { close(); }

  void open(const std::vector<std::string>& symbols, bool book, OnQuote on_quote,
            std::function<void(std::string)> on_closed) override {
    std::string streams;
    for (const auto& symbol : symbols) {
      std::string lower = symbol;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      streams += (streams.empty() ? "" : "/") + lower + (book ? "@bookTicker" : "@trade");
    }
    socket_->close();  // no message of the previous connection after the reset below
    {
      const std::lock_guard lock(mutex_);
      quotes_.clear();  // a trade-less book stream takes its last price from its own first bid again
    }
    net::WebSocket::Handlers handlers;
    handlers.on_message = [this, on_quote = std::move(on_quote)](const std::string& text) {
      std::optional<binance::StreamUpdate> update;
      core::Quote quote;
      {
        const std::lock_guard lock(mutex_);
        try {
          update = binance::merge_stream_message(text, quotes_);
        } catch (const binance::ProtocolError& e) {
          count_malformed(e.what());
          return;
        }
        if (!update) return;
        quote = quotes_[update->symbol];
      }
      std::optional<std::chrono::system_clock::time_point> traded_at;
      if (update->trade_time_ms > 0) {
        traded_at = std::chrono::system_clock::time_point(std::chrono::milliseconds(update->trade_time_ms));
      }
      on_quote(update->symbol, quote, traded_at);
    };
    handlers.on_unreadable = [this](const std::string& error) {
      const std::lock_guard lock(mutex_);
      count_malformed("unreadable frame: " + error);
    };
    handlers.on_closed = std::move(on_closed);
    socket_->open(base_url_ + "/stream?streams=" + streams, std::move(handlers));
  }

  void close() override { socket_->close(); }

  [[nodiscard]] Malformed malformed() const override {
    const std::lock_guard lock(mutex_);
    return malformed_;
  }

 private:
  void count_malformed(std::string error) {  // under mutex_
    ++malformed_.frames;
    malformed_.last_error = std::move(error);
  }

  std::string base_url_;
  mutable std::mutex mutex_;
  PriceSnapshot quotes_;  // the latest quote per symbol of the current connection
  Malformed malformed_;
  std::unique_ptr<net::WebSocket> socket_;  // last: destroyed first, while the state its handlers use still exists
};

}  // namespace

std::unique_ptr<PriceStream> make_binance_price_stream(std::string base_url, std::unique_ptr<net::WebSocket> socket) {
  return std::make_unique<BinancePriceStream>(std::move(base_url), std::move(socket));
}

}  // namespace backstop::exchange
