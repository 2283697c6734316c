// A live price stream (Binance combined <symbol>@trade or @bookTicker streams)
// for stop-monitor --stream. Ticks arrive on the stream's own thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "exchange/binance_protocol.h"
#include "net/websocket.h"

namespace backstop::exchange {

class PriceStream {
 public:
  virtual ~PriceStream() = default;
  // Connects (throws TransportError when it cannot) and then calls on_tick for
  // every price message and on_closed once when the connection ends.
  virtual void open(const std::vector<std::string>& symbols, bool book,
                    std::function<void(binance::StreamTick)> on_tick, std::function<void(std::string)> on_closed) = 0;
  virtual void close() = 0;
};

// Binance's combined streams at `base_url` (e.g. wss://stream.binance.com:9443) over `socket`.
std::unique_ptr<PriceStream> make_binance_price_stream(std::string base_url, std::unique_ptr<net::WebSocket> socket);

}  // namespace backstop::exchange
