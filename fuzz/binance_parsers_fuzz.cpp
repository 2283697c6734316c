// libFuzzer target for everything that parses exchange answers: untrusted bytes
// must give a value or a ProtocolError, never a crash, a hang or UB.
//   ./dev fuzz [seconds]   (clang's libFuzzer with ASan + UBSan)
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "exchange/binance_protocol.h"

namespace binance = backstop::exchange::binance;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  try {
    (void)binance::parse_ticker_prices(body);
  } catch (const binance::ProtocolError&) {
  }
  try {
    backstop::core::PriceSnapshot snapshot;
    snapshot["BTCUSDT"].last = backstop::core::Decimal::from_integer(1);
    binance::merge_book_tickers(body, snapshot);
  } catch (const binance::ProtocolError&) {
  }
  try {
    for (const auto& [symbol, rules] : binance::parse_exchange_info(body)) {
      (void)backstop::exchange::market_quantity(rules, backstop::core::Decimal::from_integer(3),
                                                backstop::core::Decimal::from_integer(7));
    }
  } catch (const binance::ProtocolError&) {
  } catch (const backstop::core::DecimalError&) {
  }
  try {
    const auto order = binance::parse_order(body);
    (void)order.average_price();
  } catch (const binance::ProtocolError&) {
  }
  try {
    const auto account = binance::parse_account(body);
    for (const auto& [asset, balance] : account.balances) (void)balance.total();
  } catch (const binance::ProtocolError&) {
  }
  try {
    (void)binance::parse_my_trades(body);
  } catch (const binance::ProtocolError&) {
  }
  try {
    for (const auto& open : binance::parse_open_orders(body)) (void)open.order.average_price();
  } catch (const binance::ProtocolError&) {
  }
  try {
    (void)binance::parse_cancel(body);
  } catch (const binance::ProtocolError&) {
  }
  try {
    (void)binance::parse_user_stream_event(body);
  } catch (const binance::ProtocolError&) {
  }
  try {
    (void)binance::parse_ws_api_answer(body);
  } catch (const binance::ProtocolError&) {
  }
  (void)binance::classify_http_error(binance::Call::kCancel, 400, body, std::nullopt);
  try {
    (void)binance::parse_server_time(body);
  } catch (const binance::ProtocolError&) {
  }
  try {
    backstop::core::PriceSnapshot quotes;
    (void)binance::merge_stream_message(body, quotes);
  } catch (const binance::ProtocolError&) {
  }
  (void)binance::parse_error_body(body);
  (void)binance::classify_http_error(binance::Call::kPlaceOrder, 400, body, std::nullopt);
  try {
    (void)backstop::core::Decimal::parse_rounded(body, backstop::core::Rounding::kHalfEven);
  } catch (const backstop::core::DecimalError&) {
  }
  return 0;
}
