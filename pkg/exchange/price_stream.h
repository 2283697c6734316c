// A live price stream (Binance combined <symbol>@trade or @bookTicker streams)
// for stop-monitor --stream and trailing-stop --stream. Quotes arrive on the
// stream's own thread. A frame that is not a valid message is counted and
// skipped (the next tick or the REST backstop covers its price); the caller
// reports the count.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/quote.h"
#include "net/websocket.h"

namespace backstop::exchange {

class PriceStream {
 public:
  // A symbol's latest quote after a message moved it, and when it traded
  // (nullopt for a book ticker, which carries no time).
  using OnQuote = std::function<void(const std::string& symbol, const core::Quote& quote,
                                     std::optional<std::chrono::system_clock::time_point> traded_at)>;
  struct Malformed {
    std::int64_t frames = 0;  // since the stream was made, over every connection
    std::string last_error;   // why the latest one was refused
  };

  virtual ~PriceStream() = default;
  // Connects (throws net::TransportError when it cannot) and then calls
  // on_quote for every price message and on_closed once when the connection ends.
  virtual void open(const std::vector<std::string>& symbols, bool book, OnQuote on_quote,
                    std::function<void(std::string)> on_closed) = 0;
  virtual void close() = 0;
  [[nodiscard]] virtual Malformed malformed() const = 0;
};

// Binance's combined streams at `base_url` (e.g. wss://stream.binance.com:9443) over `socket`.
std::unique_ptr<PriceStream> make_binance_price_stream(std::string base_url, std::unique_ptr<net::WebSocket> socket);

}  // namespace backstop::exchange
