// A Binance-spot-compatible exchange simulator ("paper" mode, tests, benchmarks):
// the same REST paths, parameters, signatures, JSON and error codes as Binance
// for what Backstop uses, market fills at the current price with configurable
// slippage, filters enforced, per-account balances, Binance's duplicate
// client-id rule (refused only while the first order is open), fault injection
// and a ledger of every accepted order. Transport-free: `handle` maps one HTTP
// request to one response, so it is testable without sockets and the server
// binary only forwards.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
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
};

struct LedgerEntry {
  std::int64_t order_id;
  std::string client_order_id, symbol, side, status, api_key;
  Decimal orig_qty, executed_qty, quote_qty;
  std::int64_t time_ms;
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
  void set_balance(const std::string& api_key, const std::string& asset, Decimal amount);
  void set_faults(const Faults& faults);
  std::vector<LedgerEntry> ledger() const;

  // Called (outside the simulator's lock) after every price change, e.g. to
  // publish it on the WebSocket streams.
  using PriceListener =
      std::function<void(const std::string& symbol, Decimal last, Decimal bid, Decimal ask, std::int64_t time_ms)>;
  void set_price_listener(PriceListener listener);

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
    std::map<std::string, Decimal> balances;  // absent asset: unlimited
    bool limited = false;
  };
  struct StoredOrder {
    LedgerEntry entry;
  };

  void update_price(const std::string& symbol, Decimal last, std::optional<Decimal> bid, std::optional<Decimal> ask);
  SimResponse admin(const SimRequest& request);
  SimResponse api(const SimRequest& request);
  SimResponse place_order(const std::map<std::string, std::string>& params, const std::string& api_key);
  SimResponse query_order(const std::map<std::string, std::string>& params, const std::string& api_key);
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
  PriceListener listener_;
  std::atomic<std::size_t> replay_remaining_{0};
  std::jthread replay_;
};

std::map<std::string, std::string> parse_query(const std::string& query);

}  // namespace backstop::sim
