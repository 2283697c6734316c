// A Binance-spot-compatible exchange simulator ("paper" mode, tests, benchmarks):
// the same REST paths, parameters, signatures, JSON and error codes as Binance
// for what Backstop uses, market fills at the current price with configurable
// slippage, resting LIMIT orders that fill when the price crosses them, filters
// enforced, Binance's duplicate client-id rule (refused only while the first
// order is open), fault injection and a ledger of every accepted order.
// Accounts (issue 13): free and locked balances per asset and API key,
// commissions charged as Binance charges them, one trade per fill, the
// account, myTrades, openOrders and cancel endpoints, orders placed "from the
// exchange's app" (/admin/orders), and a request-weight meter behind
// X-MBX-USED-WEIGHT-1M. Transport-free: `handle` maps one HTTP request to one
// response, so it is testable without sockets and the server binary only
// forwards.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/decimal.h"

namespace backstop::sim {

using core::Decimal;

struct SimRequest {
  std::string method;
  std::string path;
  std::string query;  // raw, as signed
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

struct SimResponse {
  int status = 200;
  std::string body;
  std::map<std::string, std::string> headers;
  std::chrono::milliseconds delay{0};  // the server sleeps this long before answering
  bool drop_connection = false;        // close without an answer (a timeout for the client)
};

struct SymbolConfig {
  std::string symbol, base_asset, quote_asset;
  Decimal step_size = Decimal::parse("0.00000001");
  Decimal min_qty = Decimal::parse("0.00000001");
  Decimal max_qty = Decimal::parse("9000000");
  Decimal min_notional = Decimal::parse("0");
  Decimal tick_size = Decimal::parse("0.00000001");
};

struct Faults {
  std::chrono::milliseconds latency{0};
  int timeout_after_execute = 0;    // next N orders: execute, then never answer
  int error_5xx_after_execute = 0;  // next N orders: execute, then answer 503
  int error_5xx_before_execute = 0;
  int rate_limit = 0;              // next N requests: 429 with Retry-After
  int order_rate_limit = 0;        // next N new orders: 429 -1015 (too many orders) with Retry-After
  int ban = 0;                     // next N requests: 418
  int malformed = 0;               // next N order answers: broken JSON (after executing)
  int partial_fill = 0;            // next N orders: fill half, then EXPIRED
  std::int64_t clock_skew_ms = 0;  // server clock = real clock + skew
  // Next N new orders arrive this much later than they were sent (held on the
  // wire): the exchange checks their timestamp against recvWindow when they
  // arrive, and executes them then, whatever became of the sender.
  int deliver_late = 0;
  std::chrono::milliseconds deliver_late_by{0};
  // Next N requests to `fail_path` get `fail_status` with a body that is not
  // the exchange's JSON (a gateway or proxy answering: 503, 408, 502, ...).
  std::string fail_path;
  int fail_count = 0;
  int fail_status = 503;
  int expire_unfilled = 0;         // next N orders: EXPIRED with nothing filled (an empty book)
  std::int64_t stream_lag_ms = 0;  // trades reach the WebSocket streams this much after they happened
  int reject = 0;                  // next N orders: HTTP 400 with this code and message, nothing executed
  int reject_code = -1013;
  std::string reject_message = "Filter failure: LOT_SIZE";
  Decimal slippage_pct = Decimal::parse("0");  // fills this much worse than the price
  // Next N answers of GET /api/v3/account are broken this way: truncated,
  // bad-decimal, missing-balances, duplicate-asset or negative (issue 13: a
  // malformed account must be a clear error, never a wrong balance).
  int malformed_account = 0;
  std::string malformed_account_kind = "truncated";
};

struct LedgerEntry {
  std::int64_t order_id;
  std::string client_order_id, symbol, side, status, api_key;
  Decimal orig_qty, executed_qty, quote_qty;
  std::int64_t time_ms;
  std::string type = "MARKET";  // or LIMIT
  Decimal price;                // LIMIT: the limit price; MARKET: 0
  std::string time_in_force = "GTC";
  std::string origin = "api";  // "app": placed through /admin/orders, as by hand in Binance's app
  std::int64_t update_time_ms = 0;
};

struct Balance {
  Decimal free, locked;
};

// Per account. Binance without BNB takes the commission from the asset the
// order receives (a BUY's base asset, a SELL's quote asset); with payInBnb it
// takes BNB, converted at bnb_price (in the symbol's quote asset), and falls
// back to the received asset, whole, when the BNB balance is short.
struct CommissionSettings {
  Decimal taker_rate, maker_rate;  // e.g. 0.001
  bool pay_in_bnb = false;
  Decimal bnb_price;
};

// One fill. Its id is the order's fills[].tradeId and myTrades' id.
struct Trade {
  std::int64_t id = 0, order_id = 0;
  std::string api_key, symbol;
  bool is_buyer = false, is_maker = false;
  Decimal price, qty, quote_qty, commission;
  std::string commission_asset;
  std::int64_t time_ms = 0;
  std::string origin = "api";
};

class Simulator {
 public:
  Simulator();

  SimResponse handle(const SimRequest& request);

  // Direct control (the admin endpoints call these too).
  void add_symbol(const SymbolConfig& symbol, Decimal price);
  void set_price(const std::string& symbol, Decimal last, std::optional<Decimal> bid = {},
                 std::optional<Decimal> ask = {});
  void add_account(const std::string& api_key, const std::string& secret);
  // Sets the free balance and marks the account balance-limited: it holds
  // exactly what it is given (every other asset: nothing) and can sell and
  // spend only that (-2010 otherwise). An account never given a balance is a
  // paper account: it starts with kPaperFunds of every asset, which
  // /api/v3/account reports and its orders spend like any balance, so tests
  // that only sell keep working and an exit capped at the free balance is not
  // capped by a number the simulator made up (beyond kPaperFunds, what it
  // lacks comes from nowhere).
  void set_balance(const std::string& api_key, const std::string& asset, Decimal amount);
  static const Decimal kPaperFunds;  // 1,000,000,000 of each asset
  Balance balance(const std::string& api_key, const std::string& asset) const;
  void set_commission(const std::string& api_key, const CommissionSettings& settings);
  void set_faults(const Faults& faults);
  // Requests over this much weight in the last minute answer 429 -1003 with
  // Retry-After. 0 (the default) counts without refusing: tests that send one
  // simulator 10,000 orders would otherwise test the limit instead.
  void set_weight_limit(int limit);
  std::vector<LedgerEntry> ledger() const;
  std::vector<Trade> trades(const std::string& api_key) const;

  // Called (outside the simulator's lock) after every price change, e.g. to
  // publish it on the WebSocket streams.
  using PriceListener =
      std::function<void(const std::string& symbol, Decimal last, Decimal bid, Decimal ask, std::int64_t time_ms)>;
  void set_price_listener(PriceListener listener);

  // The user data stream (issue 13): every change to an account, as Binance
  // reports it to a userDataStream subscription of the WebSocket API:
  // executionReport (NEW, TRADE, CANCELED, EXPIRED), outboundAccountPosition
  // (the assets an order, a fill or a transfer changed) and balanceUpdate
  // (deposits, withdrawals). Called outside the simulator's lock, one event
  // at a time and in the order the changes happened; `event_json` is the
  // event object, without the {"subscriptionId":..,"event":..} envelope.
  using AccountListener = std::function<void(const std::string& api_key, const std::string& event_json)>;
  void set_account_listener(AccountListener listener);

  // One request frame of the WebSocket API (/ws-api/v3), answered as Binance
  // answers it: {"id":..,"status":200,"result":..,"rateLimits":[..]} or
  // {"id":..,"status":4xx,"error":{"code":..,"msg":..}}. Methods:
  // userDataStream.subscribe.signature (apiKey, timestamp, recvWindow,
  // signature: HMAC-SHA256 of the other parameters sorted by name, joined as
  // a query string; weight 2) and ping. A subscription the connection makes
  // gets `subscription_id`; `subscribed_key` then names the account. A
  // connection holds one subscription per account: the server answers -2035
  // for a second (WsStreams checks; this layer does not know the connection).
  struct WsApiReply {
    std::string text;
    std::string subscribed_key;  // empty unless a subscription was made
  };
  WsApiReply ws_api(const std::string& request_text, std::int64_t subscription_id);

  // Replays a price path on a thread of its own: one step (symbol -> last
  // price) every `interval`, replacing a replay still running. The admin
  // endpoint POST /admin/price-path calls this; GET reports what is left.
  void replay_prices(std::vector<std::map<std::string, Decimal>> steps, std::chrono::milliseconds interval);
  [[nodiscard]] std::size_t replay_remaining() const { return replay_remaining_; }
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

 private:
  struct Book {
    SymbolConfig config;
    Decimal last, bid, ask;
  };
  struct Account {
    std::string secret;
    std::map<std::string, Balance> balances;
    bool limited = false;  // see set_balance
    CommissionSettings commission;
    std::int64_t uid = 0;
    std::string account_type = "SPOT";
    std::int64_t update_time_ms = 0;
  };
  // The account's balance of `asset`; a paper account's untouched asset starts at kPaperFunds.
  static Balance& holding(Account& account, const std::string& asset);
  struct StoredOrder {
    LedgerEntry entry;
    std::string locked_asset;  // what a resting order holds back from free
    Decimal locked;
  };
  // Weight of the requests of the last 60 s (one IP: the simulator does not
  // tell clients apart, as Binance counts per IP, not per key).
  class WeightMeter {
   public:
    int used(std::int64_t now_ms);
    void add(std::int64_t now_ms, int weight);
    // Seconds until `weight` more would fit under `limit`.
    int retry_after_s(std::int64_t now_ms, int weight, int limit);

   private:
    std::deque<std::pair<std::int64_t, int>> entries_;  // oldest first
    int sum_ = 0;
  };
  using Params = std::map<std::string, std::string>;

  void update_price(const std::string& symbol, Decimal last, std::optional<Decimal> bid, std::optional<Decimal> ask);
  void match_resting(const std::string& symbol);
  SimResponse dispatch(const SimRequest& request);
  SimResponse admin(const SimRequest& request);
  // User data stream events (under mutex_): queued, then handed to the
  // account listener by flush_account_events (outside it).
  void report_order(const LedgerEntry& e, const std::string& execution_type, const std::string& order_status,
                    const Trade* trade, const std::string& cancel_client_id = {});
  void report_balances(const std::string& api_key, const std::set<std::string>& assets);
  void flush_account_events();
  SimResponse api(const SimRequest& request);
  SimResponse place_order(const Params& params, const std::string& api_key, const std::string& origin);
  SimResponse query_order(const Params& params, const std::string& api_key);
  SimResponse cancel_order(const Params& params, const std::string& api_key);
  SimResponse open_orders(const Params& params, const std::string& api_key);
  SimResponse account_info(const Params& params, const std::string& api_key);
  SimResponse my_trades(const Params& params, const std::string& api_key);
  // Moves the balances of one fill of `order` and records its trade.
  Trade fill(Account& account, StoredOrder& order, const SymbolConfig& symbol, Decimal qty, Decimal price, bool maker);
  StoredOrder* find_order(const Params& params, const std::string& api_key);
  static int request_weight(const SimRequest& request, const Params& params);
  std::optional<SimResponse> authenticate(const SimRequest& request, std::map<std::string, std::string>& params,
                                          std::string& api_key);
  std::int64_t server_time_ms() const;

  mutable std::mutex mutex_;
  std::map<std::string, Book> books_;
  std::map<std::string, Account> accounts_;
  std::vector<StoredOrder> orders_;
  std::map<std::string, std::size_t> by_client_id_;  // api_key + '\n' + symbol + '\n' + client id -> latest order
  Faults faults_;
  std::int64_t next_order_id_ = 1;
  std::set<std::size_t> resting_;  // indexes into orders_ of LIMIT orders still open, oldest first
  std::vector<Trade> trades_;
  std::int64_t next_trade_id_ = 1;
  std::int64_t next_cancel_id_ = 1;
  WeightMeter weight_;
  int weight_limit_ = 0;
  std::map<std::string, std::int64_t> requests_by_path_;
  PriceListener listener_;
  AccountListener account_listener_;
  std::vector<std::pair<std::string, std::string>> pending_events_;  // (api key, event), oldest first
  std::mutex events_mutex_;  // held while a flush hands events over, so that they leave in order
  std::atomic<std::size_t> replay_remaining_{0};
  std::jthread replay_;
};

std::map<std::string, std::string> parse_query(const std::string& query);

}  // namespace backstop::sim
