// Binance spot REST client (DOMAIN §9) over a net::HttpTransport: HMAC-SHA256
// signed requests with recvWindow, server-time resync on -1021, used-weight
// tracking, 429/418 handling and classified errors. Works unchanged against
// the real exchange and against `exchange-sim`.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "exchange/binance_protocol.h"
#include "exchange/exchange.h"
#include "net/http.h"

namespace backstop::exchange {

struct BinanceConfig {
  std::string base_url = "https://api.binance.com";
  std::string api_key;
  std::string api_secret;
  std::chrono::milliseconds recv_window{5000};
  std::chrono::milliseconds timeout{10000};
  bool fetch_book = false;  // also read bid/ask (needed for the book price source)
  // Reads (GET) are not started when the weight the exchange last reported
  // as used this minute by the IP (X-MBX-USED-WEIGHT-1M: every process behind
  // it), plus the call's own, would pass this: the call fails kRateLimited
  // without going on the wire, so that a reader (reconcile) leaves the rest of
  // the minute to the exits instead of bringing the IP to a 429 or a ban.
  // 0: no budget (orders and their queries never have one).
  int read_weight_budget = 0;
};

class BinanceClient : public Exchange, public AccountApi {
 public:
  using Clock = std::function<std::int64_t()>;  // epoch milliseconds
  BinanceClient(BinanceConfig config, std::unique_ptr<net::HttpTransport> transport, Clock clock = {});

  Result<PriceSnapshot> prices() override;
  Result<ExchangeRules> rules() override;
  Result<Order> place_market_order(const OrderRequest& request) override;
  std::vector<Result<Order>> place_market_orders(const std::vector<OrderRequest>& requests) override;
  Result<std::optional<Order>> query_order(const std::string& symbol, const std::string& client_order_id) override;

  // AccountApi (issue 13): signed reads of the account, its trades and open
  // orders, and a cancel by client order id; the same signing, -1021 resync,
  // 429/418 silence and error classes as the order calls.
  Result<Account> account() override;
  Result<std::vector<AccountTrade>> my_trades(const std::string& symbol, const TradesQuery& query) override;
  Result<std::vector<OpenOrder>> open_orders(const std::optional<std::string>& symbol) override;
  Result<std::optional<Order>> order_by_id(const std::string& symbol, std::int64_t order_id) override;
  Result<std::optional<Order>> cancel_order(const std::string& symbol,
                                            const std::string& orig_client_order_id) override;

  [[nodiscard]] int used_weight() const;  // X-MBX-USED-WEIGHT-1M of the last answer
  [[nodiscard]] std::int64_t clock_offset_ms() const;

 private:
  using Params = std::vector<std::pair<std::string, std::string>>;
  Result<net::HttpResponse> call(binance::Call call, const std::string& method, const std::string& path, Params params,
                                 bool is_signed);
  Result<net::HttpResponse> send_once(binance::Call call, const std::string& method, const std::string& path,
                                      const Params& params, bool is_signed);
  // send_once in two halves, so that several requests can be in flight at once.
  Result<net::HttpRequest> prepare(const std::string& method, const std::string& path, const Params& params,
                                   bool is_signed);
  Result<net::HttpResponse> complete(binance::Call call, net::HttpOutcome outcome);
  static Params order_params(const OrderRequest& request);
  static Result<Order> order_from(Result<net::HttpResponse> response);
  bool sync_time();

  BinanceConfig config_;
  std::unique_ptr<net::HttpTransport> transport_;
  Clock clock_;
  mutable std::mutex mutex_;
  std::int64_t offset_ms_ = 0;
  int used_weight_ = 0;
  std::chrono::steady_clock::time_point weight_seen_at_{};  // when used_weight_ was reported
  std::chrono::steady_clock::time_point banned_until_{};
  std::chrono::steady_clock::time_point backoff_until_{};  // after a 429, for its Retry-After
};

}  // namespace backstop::exchange
