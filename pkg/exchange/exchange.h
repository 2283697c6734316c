// The exchange as the stop monitor sees it: a price snapshot, the symbol rules,
// a market order with our client order id, and a query by that id. Every call
// returns a classified result instead of throwing, because what to do next
// depends on the class (DOMAIN §3, §9):
//   kRetryable      nothing happened; try again (maybe after a delay)
//   kStatusUnknown  the order may or may not exist (timeout, 5xx, -1006, -1007):
//                   never resend blindly, query by client order id first
//   kTerminal       the exchange refused this request (-2010, -1013, ...): resending won't help
//   kRateLimited    HTTP 429 / -1003: back off for retry_after
//   kBanned         HTTP 418: stop calling until retry_after
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/decimal.h"
#include "core/operation.h"
#include "core/quote.h"

namespace backstop::exchange {

using core::Decimal;

enum class ErrorClass { kRetryable, kStatusUnknown, kTerminal, kRateLimited, kBanned };
std::string_view to_string(ErrorClass error_class);

struct ExchangeError {
  ErrorClass error_class = ErrorClass::kRetryable;
  int http_status = 0;  // 0: no HTTP answer (timeout, connection refused, ...)
  int code = 0;         // Binance error code (-2010, ...) when the body had one
  std::string message;  // full text, for FAILED events and logs
  std::optional<std::chrono::seconds> retry_after;
  [[nodiscard]] std::string describe() const;
};

// A value or a classified error.
template <typename T>
class Result {
 public:
  Result(T value) : state_(std::move(value)) {}              // NOLINT(google-explicit-constructor)
  Result(ExchangeError error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  [[nodiscard]] bool ok() const { return state_.index() == 0; }
  [[nodiscard]] const T& value() const { return std::get<0>(state_); }
  [[nodiscard]] T& value() { return std::get<0>(state_); }
  [[nodiscard]] const ExchangeError& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, ExchangeError> state_;
};

using core::PriceSnapshot;

// LOT_SIZE / MARKET_LOT_SIZE / MIN_NOTIONAL / NOTIONAL / PRICE_FILTER of one symbol.
struct SymbolRules {
  std::string symbol;
  std::string base_asset;  // what a SELL gives (empty: not in the answer)
  bool trading = true;
  Decimal step_size;  // LOT_SIZE
  Decimal min_qty;
  Decimal max_qty;
  std::optional<Decimal> market_step_size;  // MARKET_LOT_SIZE (0 means: use LOT_SIZE)
  std::optional<Decimal> market_min_qty;
  std::optional<Decimal> market_max_qty;
  std::optional<Decimal> min_notional;  // MIN_NOTIONAL or NOTIONAL
  std::optional<Decimal> tick_size;     // PRICE_FILTER
};
using ExchangeRules = std::map<std::string, SymbolRules>;

// The largest quantity ≤ `wanted` that a market order may carry under the
// symbol's rules (rounded down to the step), or nullopt when it is below the
// minimum quantity / notional (dust) at `price`.
std::optional<Decimal> market_quantity(const SymbolRules& rules, Decimal wanted, Decimal price);

struct OrderRequest {
  std::string symbol;
  core::Side side = core::Side::kSell;
  Decimal quantity;
  std::string client_order_id;  // ^[a-zA-Z0-9-_]{1,36}$
};

enum class OrderStatus {
  kNew,
  kPartiallyFilled,
  kFilled,
  kCanceled,
  kPendingCancel,
  kRejected,
  kExpired,
  kExpiredInMatch
};
std::string_view to_string(OrderStatus status);
std::optional<OrderStatus> parse_order_status(std::string_view text);

struct Order {
  std::string symbol;
  std::int64_t order_id = 0;
  std::string client_order_id;
  OrderStatus status = OrderStatus::kNew;
  Decimal orig_qty;
  Decimal executed_qty;
  Decimal cummulative_quote_qty;  // Binance's spelling
  [[nodiscard]] std::optional<Decimal> average_price() const;
  [[nodiscard]] bool done() const;  // no further fills will come
};

// The account as GET /api/v3/account reports it (issue 13, account truth).
struct AssetBalance {
  Decimal free;    // may be sold now
  Decimal locked;  // held by open orders
  [[nodiscard]] Decimal total() const { return free + locked; }
};

struct Account {
  std::string account_type;  // "SPOT"; Backstop refuses anything else
  bool can_trade = false;
  std::optional<std::int64_t> uid;  // documented, but absent from older answers
  std::int64_t update_time_ms = 0;
  std::map<std::string, AssetBalance> balances;  // by asset; absent: zero (omitZeroBalances)
  std::vector<std::string> permissions;
  std::optional<Decimal> maker_rate, taker_rate;  // commissionRates, when the answer has them
  [[nodiscard]] Decimal free(const std::string& asset) const;
};

// One fill of one of the account's orders (GET /api/v3/myTrades). It carries
// the exchange's orderId but no client order id.
struct AccountTrade {
  std::string symbol;
  std::int64_t id = 0;
  std::int64_t order_id = 0;
  std::int64_t order_list_id = -1;
  Decimal price, qty, quote_qty, commission;
  std::string commission_asset;
  std::int64_t time_ms = 0;
  bool is_buyer = false;
  bool is_maker = false;
};

// An order still working at the exchange (GET /api/v3/openOrders).
struct OpenOrder {
  Order order;
  core::Side side = core::Side::kSell;
  std::string type;  // LIMIT, STOP_LOSS_LIMIT, ...
  Decimal price;     // 0 for orders without a limit price
  std::int64_t time_ms = 0;
};

// Which trades GET /api/v3/myTrades returns: from_id (trades with id >=
// from_id, oldest first), or a time window (start_time_ms and/or end_time_ms,
// at most 24 hours: Binance documents no more, so a start alone is read as
// its next 24 hours), or neither (the most recent `limit`). Binance refuses
// an id with a time at once (-1128).
struct TradesQuery {
  std::optional<std::int64_t> from_id;
  std::optional<std::int64_t> start_time_ms;
  std::optional<std::int64_t> end_time_ms;
  int limit = 1000;  // Binance's maximum
};

// One message of the user data stream (WebSocket API, userDataStream.subscribe):
// a trigger for reconciliation, whose evidence stays the REST reads.
struct UserStreamEvent {
  enum class Kind { kAccountPosition, kBalanceUpdate, kExecutionReport, kStreamTerminated, kOther };
  struct Execution {                                            // executionReport
    std::string symbol, client_order_id, orig_client_order_id;  // orig: the order a cancel is about
    core::Side side = core::Side::kSell;
    std::string order_type, execution_type;  // NEW, TRADE, CANCELED, EXPIRED, ...
    OrderStatus order_status = OrderStatus::kNew;
    std::int64_t order_id = 0, trade_id = -1, transaction_time_ms = 0;
    Decimal order_qty, last_qty, cumulative_qty, last_price, commission;
    std::optional<std::string> commission_asset;  // null until something is charged
    bool is_maker = false;
  };
  Kind kind = Kind::kOther;
  std::string type;  // the "e" field, e.g. "listStatus" for kOther
  std::int64_t subscription_id = 0;
  std::int64_t event_time_ms = 0;
  std::int64_t last_update_ms = 0;               // kAccountPosition
  std::map<std::string, AssetBalance> balances;  // kAccountPosition: the assets that changed
  std::string asset;                             // kBalanceUpdate (deposit, withdrawal, transfer)
  Decimal delta;                                 // kBalanceUpdate: negative for a withdrawal
  std::int64_t clear_time_ms = 0;                // kBalanceUpdate
  Execution execution;                           // kExecutionReport
};

// What reconciliation reads from the exchange and the one thing it changes
// there (an orphan's cancel). Same error classes as Exchange.
class AccountApi {
 public:
  virtual ~AccountApi() = default;
  virtual Result<Account> account() = 0;
  virtual Result<std::vector<AccountTrade>> my_trades(const std::string& symbol, const TradesQuery& query) = 0;
  // nullopt: every symbol (weight 80 instead of 6).
  virtual Result<std::vector<OpenOrder>> open_orders(const std::optional<std::string>& symbol) = 0;
  // nullopt: the order is not open at the exchange (-2011: filled, cancelled or unknown).
  virtual Result<std::optional<Order>> cancel_order(const std::string& symbol,
                                                    const std::string& orig_client_order_id) = 0;
  // An order by the exchange's id (what myTrades names), with its client order
  // id: whose order a trade filled. nullopt: no such order (-2013).
  virtual Result<std::optional<Order>> order_by_id(const std::string& symbol, std::int64_t order_id) = 0;
};

class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual Result<PriceSnapshot> prices() = 0;
  virtual Result<ExchangeRules> rules() = 0;
  virtual Result<Order> place_market_order(const OrderRequest& request) = 0;
  // Several orders in flight at once, answers in the same order. Each one is
  // sent exactly once, as place_market_order would send it. This default sends
  // them one after another.
  virtual std::vector<Result<Order>> place_market_orders(const std::vector<OrderRequest>& requests) {
    std::vector<Result<Order>> answers;
    answers.reserve(requests.size());
    for (const auto& r : requests) answers.push_back(place_market_order(r));
    return answers;
  }
  // nullopt: the exchange has no order with this client id (-2013).
  virtual Result<std::optional<Order>> query_order(const std::string& symbol, const std::string& client_order_id) = 0;
};

// Binance-compatible client order id for attempt n of an execution:
// "bs" + 30 hex digits of SHA-256(token) + "-" + n. Deterministic, so a
// process that restarts derives the same id and can query it.
std::string client_order_id(std::string_view execution_token, int attempt);

}  // namespace backstop::exchange
