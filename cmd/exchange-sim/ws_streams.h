// The simulator's WebSocket streams, as Binance serves them: /ws/<symbol>@trade
// or /stream?streams=<symbol>@trade/<symbol>@bookTicker (combined, wrapped in
// {"stream":..,"data":..}). websocketpp 0.8 does not compile as C++20, so this
// is its own C++17 translation unit with a plain interface.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace backstop::sim {

class WsStreams {
 public:
  WsStreams();
  ~WsStreams();
  // Starts listening on host:port (0 = any) in a thread; returns the bound port or -1.
  int start(const std::string& host, int port);
  // Sends the messages to the subscribers of <lower_symbol>@trade / @bookTicker.
  void publish(const std::string& lower_symbol, const std::string& trade_json, const std::string& book_json);
  void stop();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace backstop::sim
