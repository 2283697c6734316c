// Binance wire protocol: the documented signature vector, parsers on good and
// malformed bodies, error classification, client order ids, quantity rules.
#include "exchange/binance_protocol.h"

#include <gtest/gtest.h>

#include <regex>

namespace backstop::exchange {
namespace {

Decimal D(const char* text) { return Decimal::parse(text); }

TEST(BinanceSigning, ReproducesTheDocumentedTestVector) {
  EXPECT_EQ(binance::sign("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
                          "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&"
                          "timestamp=1499827319559"),
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71");
}

TEST(BinanceParsing, TickerPricesAndBook) {
  PriceSnapshot s = binance::parse_ticker_prices(
      R"([{"symbol":"BTCUSDT","price":"93100.01000000"},{"symbol":"ETHUSDT","price":"3000.5"}])");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s["BTCUSDT"].last, D("93100.01"));
  binance::merge_book_tickers(
      R"([{"symbol":"BTCUSDT","bidPrice":"93100.00","bidQty":"1","askPrice":"93100.02","askQty":"2"}])", s);
  EXPECT_EQ(s["BTCUSDT"].bid, D("93100"));
  EXPECT_EQ(s["BTCUSDT"].ask, D("93100.02"));
  EXPECT_FALSE(s["ETHUSDT"].bid.has_value());
}

TEST(BinanceParsing, MalformedBodiesGiveClearErrors) {
  struct Case {
    const char* body;
    const char* fragment;
  } cases[] = {
      {"", "malformed JSON in ticker/price"},
      {"{\"symbol\":", "malformed JSON in ticker/price"},
      {"{}", "ticker/price: expected a JSON array"},
      {R"([{"symbol":"BTCUSDT"}])", "ticker/price[0]: missing field \"price\""},
      {R"([{"symbol":"BTCUSDT","price":93100}])", "ticker/price[0].price: expected a string, got 93100"},
      {R"([{"symbol":"BTCUSDT","price":"1e5"}])", "ticker/price[0].price: invalid decimal \"1e5\""},
      {R"([{"symbol":"A","price":"1"},{"symbol":"B","price":"-"}])", "ticker/price[1].price"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    try {
      (void)binance::parse_ticker_prices(c.body);
      FAIL();
    } catch (const binance::ProtocolError& e) {
      EXPECT_NE(std::string(e.what()).find(c.fragment), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW((void)binance::parse_order(R"({"symbol":"X","orderId":"1"})"), binance::ProtocolError);
  // Found by the fuzzer: a number out of double range made the JSON library throw
  // out_of_range instead of parse_error, which escaped as an uncaught exception.
  EXPECT_THROW((void)binance::parse_ticker_prices(R"({"symbol":"BTCUSDT","transactTime":1509e2222})"),
               binance::ProtocolError);
  EXPECT_THROW((void)binance::parse_order(R"({"orderId":1e999999})"), binance::ProtocolError);
  EXPECT_THROW((void)binance::parse_order(R"({"symbol":"X","orderId":1,"clientOrderId":"a","status":"WEIRD",
      "origQty":"1","executedQty":"1","cummulativeQuoteQty":"1"})"),
               binance::ProtocolError);
  EXPECT_THROW((void)binance::parse_order(R"({"symbol":"X","orderId":1,"clientOrderId":"a","status":"FILLED",
      "origQty":"1","executedQty":"2","cummulativeQuoteQty":"1"})"),
               binance::ProtocolError);
}

TEST(BinanceParsing, OrderAndAveragePrice) {
  const Order o = binance::parse_order(R"({"symbol":"BTCUSDT","orderId":28,"orderListId":-1,
      "clientOrderId":"bs0123-1","transactTime":1507725176595,"price":"0.00000000","origQty":"0.50000000",
      "executedQty":"0.50000000","cummulativeQuoteQty":"46550.00000000","status":"FILLED","timeInForce":"GTC",
      "type":"MARKET","side":"SELL","fills":[]})");
  EXPECT_EQ(o.order_id, 28);
  EXPECT_EQ(o.status, OrderStatus::kFilled);
  EXPECT_TRUE(o.done());
  EXPECT_EQ(o.average_price(), D("93100"));
}

TEST(BinanceParsing, ExchangeInfoFilters) {
  const ExchangeRules rules = binance::parse_exchange_info(R"({"symbols":[{"symbol":"BTCUSDT","status":"TRADING",
      "filters":[{"filterType":"PRICE_FILTER","minPrice":"0.01","maxPrice":"1000000.00","tickSize":"0.01"},
      {"filterType":"LOT_SIZE","minQty":"0.00001","maxQty":"9000.00000000","stepSize":"0.00001"},
      {"filterType":"MIN_NOTIONAL","minNotional":"10.00","applyToMarket":true,"avgPriceMins":5},
      {"filterType":"NOTIONAL","minNotional":"5.00","applyMinToMarket":true,"maxNotional":"9000000.00"},
      {"filterType":"MARKET_LOT_SIZE","minQty":"0.00","maxQty":"92141578.00000000000","stepSize":"0.00"}]}]})");
  const SymbolRules& r = rules.at("BTCUSDT");
  EXPECT_EQ(r.step_size, D("0.00001"));
  EXPECT_EQ(r.min_notional, D("10"));  // the stricter of MIN_NOTIONAL and NOTIONAL
  EXPECT_EQ(r.tick_size, D("0.01"));
  EXPECT_EQ(market_quantity(r, D("0.12345678"), D("93000")), D("0.12345"));  // rounded down to the step
  EXPECT_EQ(market_quantity(r, D("0.0001"), D("93000")), std::nullopt);      // 9.3 < 10 notional: dust
  EXPECT_EQ(market_quantity(r, D("0.000009"), D("93000")), std::nullopt);    // below the step
  EXPECT_EQ(market_quantity(r, D("10000"), D("93000")), D("9000"));          // capped at maxQty
}

TEST(BinanceErrors, ClassificationDecidesWhatToDoNext) {
  using binance::Call;
  auto cls = [](Call call, int status, const char* body) {
    return binance::classify_http_error(call, status, body, std::nullopt).error_class;
  };
  // Refused, nothing executed, and a balance can be released: retry with backoff (issue 10, defect 3).
  EXPECT_EQ(cls(Call::kPlaceOrder, 400, R"({"code":-2010,"msg":"Account has insufficient balance"})"),
            ErrorClass::kRetryable);
  EXPECT_EQ(cls(Call::kPlaceOrder, 400, R"({"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."})"),
            ErrorClass::kRetryable);
  // Not the exchange's answer (a proxy's 408 or 502 page): the order may have gone through.
  EXPECT_EQ(cls(Call::kPlaceOrder, 408, "<html>Request Timeout</html>"), ErrorClass::kStatusUnknown);
  EXPECT_EQ(cls(Call::kRead, 408, "<html>Request Timeout</html>"), ErrorClass::kRetryable);
  EXPECT_EQ(cls(Call::kPlaceOrder, 400, R"({"code":-1121,"msg":"Invalid symbol."})"), ErrorClass::kTerminal);
  EXPECT_EQ(cls(Call::kPlaceOrder, 400, R"({"code":-1013,"msg":"Filter failure: LOT_SIZE"})"), ErrorClass::kTerminal);
  EXPECT_EQ(cls(Call::kPlaceOrder, 503, "Service Unavailable"), ErrorClass::kStatusUnknown);
  EXPECT_EQ(cls(Call::kPlaceOrder, 400, R"({"code":-1006,"msg":"An unexpected response was received"})"),
            ErrorClass::kStatusUnknown);
  EXPECT_EQ(cls(Call::kPlaceOrder, 400, R"({"code":-1007,"msg":"Timeout waiting for response"})"),
            ErrorClass::kStatusUnknown);
  EXPECT_EQ(cls(Call::kRead, 503, ""), ErrorClass::kRetryable);
  EXPECT_EQ(cls(Call::kRead, 429, R"({"code":-1003,"msg":"Too much request weight used"})"), ErrorClass::kRateLimited);
  EXPECT_EQ(cls(Call::kRead, 418, R"({"code":-1003,"msg":"banned"})"), ErrorClass::kBanned);
  EXPECT_EQ(cls(Call::kPlaceOrder, 400, R"({"code":-1021,"msg":"Timestamp outside recvWindow"})"),
            ErrorClass::kRetryable);
  const auto e = binance::classify_http_error(Call::kPlaceOrder, 400, R"({"code":-2010,"msg":"Duplicate order sent."})",
                                              std::nullopt);
  EXPECT_EQ(e.code, -2010);
  EXPECT_EQ(e.message, "Duplicate order sent.");
  // The id is open at the exchange: the order exists and may fill. Ask, never re-send.
  EXPECT_EQ(e.describe(), "status-unknown HTTP 400 code -2010: Duplicate order sent.");
}

TEST(ClientOrderId, DeterministicAndBinanceCompatible) {
  const std::string a = client_order_id("op7-SL-93100", 1);
  EXPECT_EQ(a, client_order_id("op7-SL-93100", 1));
  EXPECT_NE(a, client_order_id("op7-SL-93100", 2));
  EXPECT_NE(a, client_order_id("op7-SL-93100.5", 1));
  const std::regex allowed("^[a-zA-Z0-9-_]{1,36}$");
  for (int attempt : {1, 9, 99}) {
    EXPECT_TRUE(std::regex_match(client_order_id("op9223372036854775807-TP-999999999999.99999999", attempt), allowed));
  }
}

}  // namespace
}  // namespace backstop::exchange

namespace backstop::exchange {
namespace {
TEST(BinanceStream, TradeBookAndOtherMessages) {
  PriceSnapshot quotes;
  const auto trade = binance::merge_stream_message(
      R"({"stream":"btcusdt@trade","data":{"e":"trade","E":1672515782136,"s":"BTCUSDT","t":12345,
      "p":"93000.10000000","q":"0.01000000","T":1672515782130,"m":true,"M":true}})",
      quotes);
  ASSERT_TRUE(trade);
  EXPECT_EQ(trade->symbol, "BTCUSDT");
  EXPECT_EQ(trade->trade_time_ms, 1672515782130);
  EXPECT_EQ(quotes["BTCUSDT"].last, Decimal::parse("93000.1"));
  EXPECT_FALSE(quotes["BTCUSDT"].bid);
  const auto book = binance::merge_stream_message(
      R"({"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21","a":"25.36520000","A":"40.66"})", quotes);
  ASSERT_TRUE(book);
  EXPECT_EQ(book->symbol, "BNBUSDT");
  EXPECT_EQ(book->trade_time_ms, 0);  // a book ticker carries no time
  EXPECT_EQ(quotes["BNBUSDT"].bid, Decimal::parse("25.3519"));
  EXPECT_EQ(quotes["BNBUSDT"].ask, Decimal::parse("25.3652"));
  EXPECT_EQ(quotes["BNBUSDT"].last, Decimal::parse("25.3519"));  // book-only: the bid until a trade
  (void)binance::merge_stream_message(R"({"s":"BNBUSDT","b":"25.4","a":"25.5"})", quotes);
  EXPECT_EQ(quotes["BNBUSDT"].last, Decimal::parse("25.3519"));  // kept once set
  EXPECT_EQ(quotes["BNBUSDT"].bid, Decimal::parse("25.4"));
  EXPECT_FALSE(binance::merge_stream_message(R"({"result":null,"id":1})", quotes));
  EXPECT_THROW((void)binance::merge_stream_message(R"({"e":"trade","s":"X","p":1,"T":1})", quotes),
               binance::ProtocolError);
  EXPECT_THROW((void)binance::merge_stream_message(R"({"s":"Y","b":"1","a":2})", quotes), binance::ProtocolError);
  EXPECT_THROW((void)binance::merge_stream_message("not json", quotes), binance::ProtocolError);
  EXPECT_EQ(quotes.count("X") + quotes.count("Y"), 0u);  // a refused message leaves no trace
}
}  // namespace
}  // namespace backstop::exchange
