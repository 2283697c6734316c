// Binance wire protocol: the documented signature vector, parsers on good and
// malformed bodies, error classification, client order ids, quantity rules.
#include "exchange/binance_protocol.h"

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

namespace backstop::exchange {
namespace {

using nlohmann::json;

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

// Account truth (issue 13): the account, its trades, its open orders and a
// cancel, parsed strictly. A wrong balance would close positions that are
// held, so every malformed answer is an error naming the field, never a
// number made up.
namespace backstop::exchange {
namespace {

void expect_protocol_error(const std::function<void()>& parse, const std::string& fragment) {
  try {
    parse();
    ADD_FAILURE() << "accepted; expected an error containing: " << fragment;
  } catch (const binance::ProtocolError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

// GET /api/v3/account as documented (developers.binance.com, account endpoints).
const char* kAccount = R"({"makerCommission":15,"takerCommission":15,"buyerCommission":0,"sellerCommission":0,
    "commissionRates":{"maker":"0.00150000","taker":"0.00150000","buyer":"0.00000000","seller":"0.00000000"},
    "canTrade":true,"canWithdraw":true,"canDeposit":true,"brokered":false,"requireSelfTradePrevention":false,
    "preventSor":false,"updateTime":123456789,"accountType":"SPOT",
    "balances":[{"asset":"BTC","free":"4723846.89208129","locked":"0.00000000"},
                {"asset":"LTC","free":"4763368.68006011","locked":"0.50000000"}],
    "permissions":["SPOT"],"uid":354937868})";

TEST(BinanceProtocol, ParseAccount) {
  const Account a = binance::parse_account(kAccount);
  EXPECT_EQ(a.account_type, "SPOT");
  EXPECT_TRUE(a.can_trade);
  EXPECT_EQ(a.uid, 354937868);
  EXPECT_EQ(a.update_time_ms, 123456789);
  ASSERT_EQ(a.balances.size(), 2u);
  EXPECT_EQ(a.balances.at("BTC").free, D("4723846.89208129"));
  EXPECT_EQ(a.balances.at("LTC").locked, D("0.5"));
  EXPECT_EQ(a.balances.at("LTC").total(), D("4763369.18006011"));
  EXPECT_EQ(a.maker_rate, D("0.0015"));
  EXPECT_EQ(a.taker_rate, D("0.0015"));
  EXPECT_EQ(a.free("ETH"), D("0"));  // absent (omitZeroBalances): nothing held
  EXPECT_EQ(a.permissions, std::vector<std::string>{"SPOT"});
}

TEST(BinanceProtocol, ParseAccountWithoutUidOrRatesKeepsThemUnknown) {
  // uid and commissionRates came later to the API: their absence is not an error.
  const Account a = binance::parse_account(
      R"({"canTrade":true,"updateTime":1,"accountType":"SPOT","balances":[],"permissions":["SPOT"]})");
  EXPECT_FALSE(a.uid.has_value());
  EXPECT_FALSE(a.maker_rate.has_value());
  EXPECT_TRUE(a.balances.empty());
}

TEST(BinanceProtocol, ParseAccountRejectsMalformedAnswersNamingTheField) {
  struct Case {
    std::string body;
    const char* fragment;
  } cases[] = {
      {std::string(kAccount).substr(0, 200), "malformed JSON in account"},
      {"[]", "account: expected a JSON object"},
      {R"({"canTrade":true,"updateTime":1,"accountType":"SPOT","permissions":[]})",
       "account: missing field \"balances\""},
      {R"({"canTrade":true,"updateTime":1,"accountType":"SPOT","balances":{},"permissions":[]})",
       "account.balances: expected a JSON array"},
      {R"({"canTrade":true,"updateTime":1,"accountType":"SPOT","permissions":[],
          "balances":[{"asset":"BTC","free":"1.x","locked":"0"}]})",
       "account.balances[0].free: invalid decimal"},
      {R"({"canTrade":true,"updateTime":1,"accountType":"SPOT","permissions":[],
          "balances":[{"asset":"BTC","free":1.5,"locked":"0"}]})",
       "account.balances[0].free: expected a string, got 1.5"},
      {R"({"canTrade":true,"updateTime":1,"accountType":"SPOT","permissions":[],
          "balances":[{"asset":"BTC","free":"1","locked":"0"},{"asset":"ETH","free":"2"}]})",
       "account.balances[1]: missing field \"locked\""},
      {R"({"canTrade":true,"updateTime":1,"accountType":"SPOT","permissions":[],
          "balances":[{"asset":"BTC","free":"1","locked":"0"},{"asset":"BTC","free":"2","locked":"0"}]})",
       "account.balances[1].asset: \"BTC\" appears twice"},
      {R"({"canTrade":true,"updateTime":1,"accountType":"SPOT","permissions":[],
          "balances":[{"asset":"BTC","free":"-0.1","locked":"0"}]})",
       "account.balances[0].free: negative -0.1"},
      {R"({"canTrade":true,"updateTime":1,"accountType":"SPOT","permissions":[],
          "balances":[{"asset":"","free":"1","locked":"0"}]})",
       "account.balances[0].asset: empty"},
      {R"({"canTrade":true,"updateTime":1,"permissions":[],"balances":[]})", "account: missing field \"accountType\""},
      {R"({"canTrade":"yes","updateTime":1,"accountType":"SPOT","permissions":[],"balances":[]})",
       "account.canTrade: expected a boolean"},
      {R"({"canTrade":true,"updateTime":1,"accountType":"SPOT","permissions":[],"balances":[],"uid":"7"})",
       "account.uid: expected an integer"},
      {R"({"canTrade":true,"updateTime":1,"accountType":"SPOT","permissions":[],"balances":[],
          "commissionRates":{"maker":"0.001"}})",
       "account.commissionRates: missing field \"taker\""},
      // A balance beyond NUMERIC(20,8) is refused, not capped: a capped balance is a wrong one.
      {R"({"canTrade":true,"updateTime":1,"accountType":"SPOT","permissions":[],
          "balances":[{"asset":"SHIB","free":"1000000000000.5","locked":"0"}]})",
       "account.balances[0].free"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    expect_protocol_error([&] { (void)binance::parse_account(c.body); }, c.fragment);
  }
}

// GET /api/v3/myTrades as documented (rest-api.md, Account trade list).
const char* kTrades = R"([{"symbol":"BNBBTC","id":28457,"orderId":100234,"orderListId":-1,"price":"4.00000100",
    "qty":"12.00000000","quoteQty":"48.000012","commission":"10.10000000","commissionAsset":"BNB",
    "time":1499865549590,"isBuyer":true,"isMaker":false,"isBestMatch":true},
    {"symbol":"BNBBTC","id":28458,"orderId":100235,"orderListId":-1,"price":"4.1","qty":"1","quoteQty":"4.1",
    "commission":"0.0041","commissionAsset":"BTC","time":1499865549600,"isBuyer":false,"isMaker":true,
    "isBestMatch":true}])";

TEST(BinanceProtocol, ParseMyTrades) {
  const std::vector<AccountTrade> trades = binance::parse_my_trades(kTrades);
  ASSERT_EQ(trades.size(), 2u);
  EXPECT_EQ(trades[0].symbol, "BNBBTC");
  EXPECT_EQ(trades[0].id, 28457);
  EXPECT_EQ(trades[0].order_id, 100234);
  EXPECT_EQ(trades[0].price, D("4.000001"));
  EXPECT_EQ(trades[0].qty, D("12"));
  EXPECT_EQ(trades[0].quote_qty, D("48.000012"));
  EXPECT_EQ(trades[0].commission, D("10.1"));
  EXPECT_EQ(trades[0].commission_asset, "BNB");
  EXPECT_EQ(trades[0].time_ms, 1499865549590);
  EXPECT_TRUE(trades[0].is_buyer);
  EXPECT_FALSE(trades[0].is_maker);
  EXPECT_FALSE(trades[1].is_buyer);
  EXPECT_TRUE(trades[1].is_maker);
  EXPECT_TRUE(binance::parse_my_trades("[]").empty());
}

TEST(BinanceProtocol, ParseMyTradesRejectsMalformedAnswersNamingTheField) {
  const std::string good = R"({"symbol":"BTCUSDT","id":1,"orderId":2,"orderListId":-1,"price":"1","qty":"1",
      "quoteQty":"1","commission":"0","commissionAsset":"USDT","time":1,"isBuyer":true,"isMaker":false,
      "isBestMatch":true})";
  auto with = [&](const std::string& from, const std::string& to) {
    std::string body = good;
    body.replace(body.find(from), from.size(), to);
    return "[" + good + "," + body + "]";
  };
  struct Case {
    std::string body;
    const char* fragment;
  } cases[] = {
      {"{}", "myTrades: expected a JSON array"},
      {"[" + good, "malformed JSON in myTrades"},
      {with(R"("qty":"1")", R"("qty":"0")"), "myTrades[1].qty: not positive 0"},
      {with(R"("price":"1")", R"("price":"-1")"), "myTrades[1].price: not positive -1"},
      {with(R"("commission":"0")", R"("commission":"-0.1")"), "myTrades[1].commission: negative -0.1"},
      {with(R"("id":1)", R"("id":"1")"), "myTrades[1].id: expected an integer"},
      {with(R"("isBuyer":true)", R"("isBuyer":1)"), "myTrades[1].isBuyer: expected a boolean"},
      {with(R"("commissionAsset":"USDT",)", ""), "myTrades[1]: missing field \"commissionAsset\""},
      {with(R"("quoteQty":"1")", R"("quoteQty":"1e3")"), "myTrades[1].quoteQty: invalid decimal"},
      // Two answers for one id would count one fill twice.
      {"[" + good + "," + good + "]", "myTrades[1].id: trade 1 appears twice"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    expect_protocol_error([&] { (void)binance::parse_my_trades(c.body); }, c.fragment);
  }
}

// GET /api/v3/openOrders as documented.
const char* kOpenOrders = R"([{"symbol":"LTCBTC","orderId":1,"orderListId":-1,"clientOrderId":"myOrder1",
    "price":"0.1","origQty":"1.0","executedQty":"0.0","cummulativeQuoteQty":"0.0","status":"NEW",
    "timeInForce":"GTC","type":"LIMIT","side":"BUY","stopPrice":"0.0","icebergQty":"0.0","time":1499827319559,
    "updateTime":1499827319559,"isWorking":true,"workingTime":1499827319559,"origQuoteOrderQty":"0.000000",
    "selfTradePreventionMode":"NONE"}])";

TEST(BinanceProtocol, ParseOpenOrders) {
  const std::vector<OpenOrder> orders = binance::parse_open_orders(kOpenOrders);
  ASSERT_EQ(orders.size(), 1u);
  const OpenOrder& o = orders[0];
  EXPECT_EQ(o.order.symbol, "LTCBTC");
  EXPECT_EQ(o.order.order_id, 1);
  EXPECT_EQ(o.order.client_order_id, "myOrder1");
  EXPECT_EQ(o.order.status, OrderStatus::kNew);
  EXPECT_EQ(o.order.orig_qty, D("1"));
  EXPECT_EQ(o.side, core::Side::kBuy);
  EXPECT_EQ(o.type, "LIMIT");
  EXPECT_EQ(o.price, D("0.1"));
  EXPECT_EQ(o.time_ms, 1499827319559);
  EXPECT_TRUE(binance::parse_open_orders("[]").empty());
}

TEST(BinanceProtocol, ParseOpenOrdersRejectsMalformedAnswersNamingTheField) {
  std::string bad_side = kOpenOrders;
  bad_side.replace(bad_side.find(R"("side":"BUY")"), 12, R"("side":"HOLD")");
  expect_protocol_error([&] { (void)binance::parse_open_orders(bad_side); },
                        "openOrders[0].side: unknown side \"HOLD\"");
  std::string filled = kOpenOrders;
  filled.replace(filled.find(R"("status":"NEW")"), 14, R"("status":"FILLED")");
  expect_protocol_error([&] { (void)binance::parse_open_orders(filled); },
                        "openOrders[0].status: FILLED is not an open status");
  std::string no_price = kOpenOrders;
  no_price.replace(no_price.find(R"("price":"0.1",)"), 14, "");
  expect_protocol_error([&] { (void)binance::parse_open_orders(no_price); }, "openOrders[0]: missing field \"price\"");
  expect_protocol_error([&] { (void)binance::parse_open_orders(R"({"code":-1121})"); },
                        "openOrders: expected a JSON array");
}

// DELETE /api/v3/order as documented: clientOrderId is the cancel's own id,
// origClientOrderId the order's.
const char* kCancel = R"({"symbol":"LTCBTC","origClientOrderId":"myOrder1","orderId":4,"orderListId":-1,
    "clientOrderId":"cancelMyOrder1","transactTime":1684804350068,"price":"2.00000000","origQty":"1.00000000",
    "executedQty":"0.00000000","cummulativeQuoteQty":"0.00000000","status":"CANCELED","timeInForce":"GTC",
    "type":"LIMIT","side":"BUY","selfTradePreventionMode":"NONE"})";

TEST(BinanceProtocol, ParseCancel) {
  const Order o = binance::parse_cancel(kCancel);
  EXPECT_EQ(o.symbol, "LTCBTC");
  EXPECT_EQ(o.order_id, 4);
  EXPECT_EQ(o.client_order_id, "myOrder1");  // the order's id, not the cancel's
  EXPECT_EQ(o.status, OrderStatus::kCanceled);
  EXPECT_TRUE(o.done());
  std::string missing = kCancel;
  missing.replace(missing.find(R"("origClientOrderId":"myOrder1",)"), 31, "");
  expect_protocol_error([&] { (void)binance::parse_cancel(missing); }, "cancel: missing field \"origClientOrderId\"");
  std::string over = kCancel;
  over.replace(over.find(R"("executedQty":"0.00000000")"), 26, R"("executedQty":"3")");
  expect_protocol_error([&] { (void)binance::parse_cancel(over); }, "cancel: executedQty 3 outside 0..1");
}

}  // namespace
}  // namespace backstop::exchange

// User data stream events as the WebSocket API delivers them (wrapped with
// their subscriptionId), user-data-stream.md.
namespace backstop::exchange {
namespace {

TEST(BinanceProtocol, ParseUserStreamEvents) {
  const auto position = binance::parse_user_stream_event(
      R"({"subscriptionId":3,"event":{"e":"outboundAccountPosition","E":1564034571105,"u":1564034571073,
          "B":[{"a":"ETH","f":"10000.000000","l":"0.000000"},{"a":"BTC","f":"0.5","l":"0.25"}]}})");
  ASSERT_TRUE(position);
  EXPECT_EQ(position->kind, UserStreamEvent::Kind::kAccountPosition);
  EXPECT_EQ(position->subscription_id, 3);
  EXPECT_EQ(position->event_time_ms, 1564034571105);
  EXPECT_EQ(position->last_update_ms, 1564034571073);
  EXPECT_EQ(position->balances.at("BTC").locked, Decimal::parse("0.25"));

  const auto withdrawal = binance::parse_user_stream_event(
      R"({"subscriptionId":3,"event":{"e":"balanceUpdate","E":1573200697110,"a":"BTC","d":"-0.10000000",
          "T":1573200697068}})");
  ASSERT_TRUE(withdrawal);
  EXPECT_EQ(withdrawal->kind, UserStreamEvent::Kind::kBalanceUpdate);
  EXPECT_EQ(withdrawal->asset, "BTC");
  EXPECT_EQ(withdrawal->delta, Decimal::parse("-0.1"));  // withdrawals are negative
  EXPECT_EQ(withdrawal->clear_time_ms, 1573200697068);

  const auto fill = binance::parse_user_stream_event(
      R"({"subscriptionId":3,"event":{"e":"executionReport","E":1499405658658,"s":"BTCUSDT","c":"web_abc","S":"SELL",
          "o":"MARKET","f":"GTC","q":"0.50000000","p":"0.00000000","P":"0.00000000","F":"0.00000000","g":-1,"C":"",
          "x":"TRADE","X":"FILLED","r":"NONE","i":4293153,"l":"0.50000000","z":"0.50000000","L":"93000.00000000",
          "n":"46.5","N":"USDT","T":1499405658657,"t":777,"I":8641984,"w":false,"m":false,"M":false,
          "O":1499405658657,"Z":"46500.00000000","Y":"46500.00000000","Q":"0.00000000","V":"NONE"}})");
  ASSERT_TRUE(fill);
  EXPECT_EQ(fill->kind, UserStreamEvent::Kind::kExecutionReport);
  const UserStreamEvent::Execution& x = fill->execution;
  EXPECT_EQ(x.symbol, "BTCUSDT");
  EXPECT_EQ(x.client_order_id, "web_abc");
  EXPECT_EQ(x.side, core::Side::kSell);
  EXPECT_EQ(x.execution_type, "TRADE");
  EXPECT_EQ(x.order_status, OrderStatus::kFilled);
  EXPECT_EQ(x.order_id, 4293153);
  EXPECT_EQ(x.trade_id, 777);
  EXPECT_EQ(x.last_qty, Decimal::parse("0.5"));
  EXPECT_EQ(x.last_price, Decimal::parse("93000"));
  EXPECT_EQ(x.commission_asset, "USDT");

  // A NEW report has no commission asset yet (null) and trade id -1.
  const auto placed = binance::parse_user_stream_event(
      R"({"subscriptionId":3,"event":{"e":"executionReport","E":1,"s":"BTCUSDT","c":"bsX-1","S":"SELL","o":"LIMIT",
          "f":"GTC","q":"1","p":"96000","C":"","x":"NEW","X":"NEW","i":5,"l":"0","z":"0","L":"0","n":"0","N":null,
          "T":1,"t":-1,"m":false}})");
  ASSERT_TRUE(placed);
  EXPECT_FALSE(placed->execution.commission_asset.has_value());
  EXPECT_EQ(placed->execution.trade_id, -1);

  const auto terminated = binance::parse_user_stream_event(
      R"({"subscriptionId":3,"event":{"e":"eventStreamTerminated","E":1728973001334}})");
  ASSERT_TRUE(terminated);
  EXPECT_EQ(terminated->kind, UserStreamEvent::Kind::kStreamTerminated);
  // An event type this parser does not know is reported as such, not refused.
  const auto other = binance::parse_user_stream_event(R"({"subscriptionId":3,"event":{"e":"listStatus","E":1}})");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->kind, UserStreamEvent::Kind::kOther);
  EXPECT_EQ(other->type, "listStatus");
  // Answers to requests on the same connection are not events.
  EXPECT_FALSE(binance::parse_user_stream_event(R"({"id":"1","status":200,"result":{"subscriptionId":3}})"));
}

TEST(BinanceProtocol, WebSocketApiRequestsAreSignedAndAnswersRead) {
  // Signed over the parameters sorted by name, as the WebSocket API checks them.
  const json request = json::parse(binance::ws_api_signed_request("r1", "userDataStream.subscribe.signature",
                                                                  {{"timestamp", "5"}, {"apiKey", "k"}}, "s"));
  EXPECT_EQ(request.at("id"), "r1");
  EXPECT_EQ(request.at("method"), "userDataStream.subscribe.signature");
  EXPECT_EQ(request.at("params").at("signature"), binance::sign("s", "apiKey=k&timestamp=5"));
  EXPECT_EQ(request.at("params").at("apiKey"), "k");

  const auto ok = binance::parse_ws_api_answer(R"({"id":"r1","status":200,"result":{"subscriptionId":3}})");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->subscription_id, 3);
  const auto refused =
      binance::parse_ws_api_answer(R"({"id":7,"status":400,"error":{"code":-1022,"msg":"Signature bad."}})");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->id, "7");
  EXPECT_EQ(refused->error.code, -1022);
  EXPECT_EQ(refused->error.message, "Signature bad.");
  EXPECT_FALSE(binance::parse_ws_api_answer(R"({"subscriptionId":0,"event":{"e":"listStatus","E":1}})"));
  for (const char* bad :
       {R"({"id":"r1","status":"200"})", R"({"id":"r1","status":400,"error":"no"})", R"({"status":200,"result":{}})",
        R"({"id":[1],"status":200,"result":{}})", R"({"id":"r1","status":700,"result":{}})", "[1]", "{"}) {
    EXPECT_THROW((void)binance::parse_ws_api_answer(bad), binance::ProtocolError) << bad;
  }
}

TEST(BinanceProtocol, ParseUserStreamEventRejectsMalformedEventsNamingTheField) {
  struct Case {
    const char* body;
    const char* fragment;
  } cases[] = {
      {"{", "malformed JSON in user stream event"},
      {R"({"subscriptionId":1,"event":{"E":1}})", "event: missing field \"e\""},
      {R"({"subscriptionId":1,"event":{"e":"balanceUpdate","E":1,"a":"BTC","d":"x","T":1}})",
       "event.d: invalid decimal"},
      {R"({"subscriptionId":1,"event":{"e":"outboundAccountPosition","E":1,"u":1,"B":[{"a":"BTC","f":"-1","l":"0"}]}})",
       "event.B[0].f: negative -1"},
      {R"({"subscriptionId":1,"event":{"e":"outboundAccountPosition","E":1,"u":1,
          "B":[{"a":"BTC","f":"1","l":"0"},{"a":"BTC","f":"1","l":"0"}]}})",
       "event.B[1].a: \"BTC\" appears twice"},
      {R"({"subscriptionId":1,"event":{"e":"executionReport","E":1,"s":"BTCUSDT","c":"a","S":"SELL","o":"MARKET",
          "q":"1","C":"","x":"TRADE","X":"FILLED","i":1,"l":"1","z":"2","L":"1","n":"0","N":"USDT","T":1,"t":1,
          "m":false}})",
       "event: z 2 outside 0..1"},
      {R"({"subscriptionId":"1","event":{"e":"eventStreamTerminated","E":1}})", "user stream event.subscriptionId"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    expect_protocol_error([&] { (void)binance::parse_user_stream_event(c.body); }, c.fragment);
  }
}

}  // namespace
}  // namespace backstop::exchange
