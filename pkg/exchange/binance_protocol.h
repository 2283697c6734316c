// Binance spot REST wire protocol, without I/O: request signing, response
// parsing and error classification. Every parser takes untrusted bytes and
// either returns a value or throws ProtocolError saying what and where; the
// fuzz targets drive these functions directly.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "exchange/exchange.h"

namespace backstop::exchange::binance {

class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// HMAC-SHA256 of `payload` with `secret`, lower-case hex (the `signature` parameter).
std::string sign(std::string_view secret, std::string_view payload);

// Percent-encodes a query parameter value (RFC 3986 unreserved kept).
std::string url_encode(std::string_view value);

PriceSnapshot parse_ticker_prices(std::string_view body);             // GET /api/v3/ticker/price
void merge_book_tickers(std::string_view body, PriceSnapshot& into);  // GET /api/v3/ticker/bookTicker
ExchangeRules parse_exchange_info(std::string_view body);             // GET /api/v3/exchangeInfo
Order parse_order(std::string_view body);                             // POST/GET /api/v3/order
std::int64_t parse_server_time(std::string_view body);                // GET /api/v3/time

// Account truth (issue 13). Strict: a missing, mistyped, negative or
// duplicated field is a ProtocolError that names it (account.balances[3].free),
// never a balance or a trade made up from what was there. Quantities beyond
// NUMERIC(20,8) are refused too, not capped.
Account parse_account(std::string_view body);                      // GET /api/v3/account
std::vector<AccountTrade> parse_my_trades(std::string_view body);  // GET /api/v3/myTrades
std::vector<OpenOrder> parse_open_orders(std::string_view body);   // GET /api/v3/openOrders
// DELETE /api/v3/order. The answer's clientOrderId is the cancel request's
// own id; the Order returned carries the cancelled order's (origClientOrderId).
Order parse_cancel(std::string_view body);
// One user data stream message, {"subscriptionId":N,"event":{...}}; nullopt
// for what is not an event (the answers to requests on the same connection).
// An event type not known here is kOther, not an error: Binance adds some.
std::optional<UserStreamEvent> parse_user_stream_event(std::string_view body);

// One WebSocket message of a (combined) <symbol>@trade or <symbol>@bookTicker
// stream, folded into `quotes` (the latest quote per symbol): a trade sets
// last; a book ticker sets bid and ask, and last too while no trade has (a
// book-only stream). Returns the symbol it moved, nullopt for messages that
// carry no price (subscription replies); `quotes` is unchanged when it throws.
struct StreamUpdate {
  std::string symbol;
  std::int64_t trade_time_ms = 0;  // the trade's time; 0 for a book ticker, which carries none
};
std::optional<StreamUpdate> merge_stream_message(std::string_view body, PriceSnapshot& quotes);

// Error code and message of an error body {"code":-2010,"msg":"..."}; code 0
// and the raw text (shortened) when the body is not that shape.
struct ErrorBody {
  int code = 0;
  std::string message;
};
ErrorBody parse_error_body(std::string_view body);

// The WebSocket API (/ws-api/v3). A signed request frame
// {"id":..,"method":..,"params":{..,"signature":..}}: the parameters sorted
// by name and signed as a query string, as Binance signs them.
std::string ws_api_signed_request(std::string_view id, std::string_view method,
                                  std::vector<std::pair<std::string, std::string>> params, std::string_view secret);
// The answer to a request, {"id":..,"status":200,"result":{..}} or
// {"id":..,"status":4xx,"error":{"code":..,"msg":..}}; nullopt for a frame that
// answers nothing (an event).
struct WsApiAnswer {
  std::string id;  // as sent; "" when the server could not read it (null)
  int status = 0;
  std::optional<std::int64_t> subscription_id;  // result.subscriptionId, when there is one
  ErrorBody error;                              // status != 200
};
std::optional<WsApiAnswer> parse_ws_api_answer(std::string_view body);

enum class Call { kRead, kPlaceOrder, kQueryOrder, kCancel };
// Whether a call changes something at the exchange, so that an answer lost or
// unreadable leaves its outcome unknown: placing an order, cancelling one.
[[nodiscard]] constexpr bool changes_state(Call call) { return call == Call::kPlaceOrder || call == Call::kCancel; }
// Classifies a non-2xx answer. For kPlaceOrder and kCancel, 5xx / -1006 /
// -1007 are kStatusUnknown (the order may exist, the cancel may have been
// done: read openOrders); for reads they are kRetryable.
ExchangeError classify_http_error(Call call, int http_status, std::string_view body,
                                  std::optional<std::chrono::seconds> retry_after);

// The request weight Binance charges a REST call (spot API, per IP per
// minute; X-MBX-USED-WEIGHT-1M reports what was used).
int request_weight(std::string_view method, std::string_view path,
                   const std::vector<std::pair<std::string, std::string>>& params);

// Binance error codes with special handling.
inline constexpr int kInvalidTimestamp = -1021;
inline constexpr int kUnknownOrder = -2013;    // query: no such order
inline constexpr int kCancelRejected = -2011;  // cancel: the order is not open ("Unknown order sent.")

}  // namespace backstop::exchange::binance
