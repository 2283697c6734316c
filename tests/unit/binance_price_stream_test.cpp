// The Binance price stream over a scripted WebSocket: the URL it subscribes
// to, the quotes it hands over, and malformed frames counted, not dropped
// silently.
#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "exchange/price_stream.h"

namespace backstop::exchange {
namespace {

using core::Decimal;

// Keeps what open() was given, so the test plays the server's frames.
class ScriptedWebSocket : public net::WebSocket {
 public:
  ScriptedWebSocket(std::string* url, Handlers* handlers) : url_(url), handlers_(handlers) {}
  void open(const std::string& url, Handlers handlers) override {
    *url_ = url;
    *handlers_ = std::move(handlers);
  }
  void send(const std::string&) override {}
  void close() override {}

 private:
  std::string* url_;
  Handlers* handlers_;
};

struct Delivered {
  std::string symbol;
  core::Quote quote;
  bool dated = false;
};

TEST(BinancePriceStream, CountsMalformedFramesAndDeliversTheOthers) {
  std::string url;
  net::WebSocket::Handlers server;
  auto stream = make_binance_price_stream("ws://sim:9443", std::make_unique<ScriptedWebSocket>(&url, &server));
  std::vector<Delivered> delivered;
  stream->open(
      {"BTCUSDT", "ETHUSDT"}, false,
      [&](const std::string& symbol, const core::Quote& quote,
          std::optional<std::chrono::system_clock::time_point> traded_at) {
        delivered.push_back({symbol, quote, traded_at.has_value()});
      },
      [](const std::string&) {});
  EXPECT_EQ(url, "ws://sim:9443/stream?streams=btcusdt@trade/ethusdt@trade");
  EXPECT_EQ(stream->malformed().frames, 0);

  server.on_message("not json");
  server.on_message(R"({"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","p":93000.1,"T":1}})");
  server.on_unreadable("truncated frame");
  server.on_message(R"({"result":null,"id":1})");  // a subscription reply: no price, not malformed
  server.on_message(
      R"({"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","p":"93000.10","T":1672515782130}})");

  const PriceStream::Malformed malformed = stream->malformed();
  EXPECT_EQ(malformed.frames, 3);
  EXPECT_NE(malformed.last_error.find("truncated frame"), std::string::npos) << malformed.last_error;
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_EQ(delivered[0].symbol, "BTCUSDT");
  EXPECT_EQ(delivered[0].quote.last, Decimal::parse("93000.1"));
  EXPECT_TRUE(delivered[0].dated);

  // The count spans reconnections: it is the process's, not the connection's.
  stream->open(
      {"BTCUSDT"}, true, [&](const std::string&, const core::Quote&, auto) {}, [](const std::string&) {});
  EXPECT_EQ(url, "ws://sim:9443/stream?streams=btcusdt@bookTicker");
  server.on_message(R"({"s":"BTCUSDT","b":"oops","a":"1"})");
  EXPECT_EQ(stream->malformed().frames, 4);
}

}  // namespace
}  // namespace backstop::exchange
