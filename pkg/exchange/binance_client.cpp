#include "exchange/binance_client.h"

#include <algorithm>
#include <thread>

namespace backstop::exchange {
namespace {

std::optional<std::chrono::seconds> retry_after(const net::HttpResponse& response) {
  const auto it = response.headers.find("retry-after");
  if (it == response.headers.end()) return std::nullopt;
  try {
    return std::chrono::seconds(std::stol(it->second));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

ExchangeError protocol_failure(binance::Call call, const std::string& what) {
  // An unreadable answer to an order or a cancel: it may have been done.
  return ExchangeError{binance::changes_state(call) ? ErrorClass::kStatusUnknown : ErrorClass::kRetryable, 200, 0, what,
                       std::nullopt};
}

// The body of a 2xx answer through `parse`, or the call's error; a body the
// parser refuses is a protocol failure of that call.
template <typename Parse>
auto parsed(binance::Call call, const Result<net::HttpResponse>& response, Parse parse)
    -> Result<decltype(parse(std::string_view()))> {
  if (!response.ok()) return response.error();
  try {
    return parse(std::string_view(response.value().body));
  } catch (const binance::ProtocolError& e) {
    return protocol_failure(call, e.what());
  }
}

}  // namespace

BinanceClient::BinanceClient(BinanceConfig config, std::unique_ptr<net::HttpTransport> transport, Clock clock)
    : config_(std::move(config)), transport_(std::move(transport)), clock_(std::move(clock)) {
  if (!clock_) {
    clock_ = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
}

int BinanceClient::used_weight() const {
  std::lock_guard lock(mutex_);
  return used_weight_;
}

std::int64_t BinanceClient::clock_offset_ms() const {
  std::lock_guard lock(mutex_);
  return offset_ms_;
}

Result<net::HttpRequest> BinanceClient::prepare(const std::string& method, const std::string& path,
                                                const Params& params, bool is_signed) {
  {
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (now < banned_until_) {
      return ExchangeError{ErrorClass::kBanned, 418, 0,
                           "IP banned by the exchange (HTTP 418); not calling until the ban ends",
                           std::chrono::duration_cast<std::chrono::seconds>(banned_until_ - now)};
    }
    // After a 429 Binance expects silence for Retry-After seconds; calling on
    // is what turns a rate limit into an IP ban (418).
    if (now < backoff_until_) {
      return ExchangeError{ErrorClass::kRateLimited, 429, 0,
                           "rate limited by the exchange (HTTP 429); not calling until its Retry-After has passed",
                           std::chrono::duration_cast<std::chrono::seconds>(backoff_until_ - now)};
    }
    // The reported weight counts for the minute it was reported in.
    if (config_.read_weight_budget > 0 && method == "GET" && now - weight_seen_at_ < std::chrono::seconds(60)) {
      const int weight = binance::request_weight(method, path, params);
      if (used_weight_ + weight > config_.read_weight_budget) {
        return ExchangeError{
            ErrorClass::kRateLimited, 0, 0,
            "the request weight used this minute (" + std::to_string(used_weight_) +
                ", X-MBX-USED-WEIGHT-1M) and this call's " + std::to_string(weight) +
                " would pass the read budget of " + std::to_string(config_.read_weight_budget) + ": not calling " +
                path + ", the rest is the exits'",
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::seconds(60) - (now - weight_seen_at_))};
      }
    }
  }
  std::string query;
  for (const auto& [name, value] : params) {
    query += (query.empty() ? "" : "&") + name + "=" + binance::url_encode(value);
  }
  net::HttpRequest request;
  request.method = method;
  if (is_signed) {
    std::int64_t offset = 0;
    {
      std::lock_guard lock(mutex_);
      offset = offset_ms_;
    }
    query += std::string(query.empty() ? "" : "&") + "recvWindow=" + std::to_string(config_.recv_window.count()) +
             "&timestamp=" + std::to_string(clock_() + offset);
    query += "&signature=" + binance::sign(config_.api_secret, query);
    request.headers["X-MBX-APIKEY"] = config_.api_key;
  }
  request.target = path + (query.empty() ? "" : "?" + query);
  return request;
}

Result<net::HttpResponse> BinanceClient::complete(binance::Call call, net::HttpOutcome outcome) {
  if (!outcome.response) {
    const net::TransportError& e = *outcome.error;
    const bool unknown = e.maybe_sent() && binance::changes_state(call);
    return ExchangeError{unknown ? ErrorClass::kStatusUnknown : ErrorClass::kRetryable, 0, 0, e.what(), std::nullopt};
  }
  net::HttpResponse& response = *outcome.response;
  {
    std::lock_guard lock(mutex_);
    if (const auto it = response.headers.find("x-mbx-used-weight-1m"); it != response.headers.end()) {
      try {
        used_weight_ = std::stoi(it->second);
        weight_seen_at_ = std::chrono::steady_clock::now();
      } catch (const std::exception&) {
      }
    }
  }
  if (response.status >= 200 && response.status < 300) return std::move(response);
  ExchangeError error = binance::classify_http_error(call, response.status, response.body, retry_after(response));
  if (error.error_class == ErrorClass::kBanned) {
    std::lock_guard lock(mutex_);
    banned_until_ = std::chrono::steady_clock::now() + error.retry_after.value_or(std::chrono::seconds(120));
  }
  if (error.error_class == ErrorClass::kRateLimited) {
    std::lock_guard lock(mutex_);
    backoff_until_ = std::max(backoff_until_,
                              std::chrono::steady_clock::now() + error.retry_after.value_or(std::chrono::seconds(1)));
  }
  return error;
}

Result<net::HttpResponse> BinanceClient::send_once(binance::Call call, const std::string& method,
                                                   const std::string& path, const Params& params, bool is_signed) {
  auto request = prepare(method, path, params, is_signed);
  if (!request.ok()) return request.error();
  net::HttpOutcome outcome;
  try {
    outcome.response = transport_->send(request.value());
  } catch (const net::TransportError& e) {
    outcome.error = e;
  }
  return complete(call, std::move(outcome));
}

bool BinanceClient::sync_time() {
  const std::int64_t before = clock_();
  auto response = send_once(binance::Call::kRead, "GET", "/api/v3/time", {}, false);
  if (!response.ok()) return false;
  try {
    const std::int64_t server = binance::parse_server_time(response.value().body);
    const std::int64_t after = clock_();
    std::lock_guard lock(mutex_);
    offset_ms_ = server - (before + after) / 2;
    return true;
  } catch (const binance::ProtocolError&) {
    return false;
  }
}

Result<net::HttpResponse> BinanceClient::call(binance::Call call, const std::string& method, const std::string& path,
                                              Params params, bool is_signed) {
  auto result = send_once(call, method, path, params, is_signed);
  // -1021: rejected before execution because our clock is off; resync once and retry.
  if (!result.ok() && is_signed && result.error().code == binance::kInvalidTimestamp && sync_time()) {
    result = send_once(call, method, path, params, is_signed);
  }
  return result;
}

Result<PriceSnapshot> BinanceClient::prices() {
  auto last = call(binance::Call::kRead, "GET", "/api/v3/ticker/price", {}, false);
  if (!last.ok()) return last.error();
  try {
    PriceSnapshot snapshot = binance::parse_ticker_prices(last.value().body);
    if (config_.fetch_book) {
      auto book = call(binance::Call::kRead, "GET", "/api/v3/ticker/bookTicker", {}, false);
      if (!book.ok()) return book.error();
      binance::merge_book_tickers(book.value().body, snapshot);
    }
    return snapshot;
  } catch (const binance::ProtocolError& e) {
    return protocol_failure(binance::Call::kRead, e.what());
  }
}

Result<ExchangeRules> BinanceClient::rules() {
  return parsed(binance::Call::kRead, call(binance::Call::kRead, "GET", "/api/v3/exchangeInfo", {}, false),
                binance::parse_exchange_info);
}

BinanceClient::Params BinanceClient::order_params(const OrderRequest& request) {
  return {{"symbol", request.symbol},
          {"side", std::string(core::to_string(request.side))},
          {"type", "MARKET"},
          {"quantity", request.quantity.to_string()},
          {"newClientOrderId", request.client_order_id},
          {"newOrderRespType", "FULL"}};
}

Result<Order> BinanceClient::order_from(Result<net::HttpResponse> response) {
  return parsed(binance::Call::kPlaceOrder, response, binance::parse_order);
}

Result<Order> BinanceClient::place_market_order(const OrderRequest& request) {
  return order_from(call(binance::Call::kPlaceOrder, "POST", "/api/v3/order", order_params(request), true));
}

std::vector<Result<Order>> BinanceClient::place_market_orders(const std::vector<OrderRequest>& requests) {
  std::vector<std::optional<Result<Order>>> answers(requests.size());
  std::vector<net::HttpRequest> wire;
  std::vector<std::size_t> sent;  // index into requests of each wire request
  for (std::size_t i = 0; i < requests.size(); ++i) {
    auto prepared = prepare("POST", "/api/v3/order", order_params(requests[i]), true);
    if (!prepared.ok()) {
      answers[i] = Result<Order>(prepared.error());
      continue;
    }
    wire.push_back(std::move(prepared.value()));
    sent.push_back(i);
  }
  std::vector<net::HttpOutcome> outcomes = transport_->send_all(wire);
  bool resynced = false;
  for (std::size_t k = 0; k < sent.size(); ++k) {
    const std::size_t i = sent[k];
    auto response = complete(binance::Call::kPlaceOrder, std::move(outcomes[k]));
    // -1021: rejected before execution because our clock is off; resync once and
    // send that order again, alone (as call() does).
    if (!response.ok() && response.error().code == binance::kInvalidTimestamp && (resynced || sync_time())) {
      resynced = true;
      response = send_once(binance::Call::kPlaceOrder, "POST", "/api/v3/order", order_params(requests[i]), true);
    }
    answers[i] = order_from(std::move(response));
  }
  std::vector<Result<Order>> out;
  out.reserve(answers.size());
  for (auto& a : answers) out.push_back(std::move(*a));
  return out;
}

Result<std::optional<Order>> BinanceClient::query_order(const std::string& symbol, const std::string& client_order_id) {
  auto response = call(binance::Call::kQueryOrder, "GET", "/api/v3/order",
                       {{"symbol", symbol}, {"origClientOrderId", client_order_id}}, true);
  if (!response.ok() && response.error().code == binance::kUnknownOrder) return std::optional<Order>();
  return parsed(binance::Call::kQueryOrder, response,
                [](std::string_view body) { return std::optional<Order>(binance::parse_order(body)); });
}

Result<Account> BinanceClient::account() {
  // Weight 20. Zero balances left out: what is absent is not held.
  return parsed(binance::Call::kRead,
                call(binance::Call::kRead, "GET", "/api/v3/account", {{"omitZeroBalances", "true"}}, true),
                binance::parse_account);
}

Result<std::vector<AccountTrade>> BinanceClient::my_trades(const std::string& symbol, const TradesQuery& query) {
  Params params{{"symbol", symbol}};
  if (query.from_id) params.emplace_back("fromId", std::to_string(*query.from_id));
  if (query.start_time_ms) params.emplace_back("startTime", std::to_string(*query.start_time_ms));
  if (query.end_time_ms) params.emplace_back("endTime", std::to_string(*query.end_time_ms));
  params.emplace_back("limit", std::to_string(query.limit));
  return parsed(binance::Call::kRead, call(binance::Call::kRead, "GET", "/api/v3/myTrades", std::move(params), true),
                binance::parse_my_trades);
}

Result<std::optional<Order>> BinanceClient::order_by_id(const std::string& symbol, std::int64_t order_id) {
  auto response = call(binance::Call::kRead, "GET", "/api/v3/order",
                       {{"symbol", symbol}, {"orderId", std::to_string(order_id)}}, true);
  if (!response.ok() && response.error().code == binance::kUnknownOrder) return std::optional<Order>();
  return parsed(binance::Call::kRead, response,
                [](std::string_view body) { return std::optional<Order>(binance::parse_order(body)); });
}

Result<std::vector<OpenOrder>> BinanceClient::open_orders(const std::optional<std::string>& symbol) {
  Params params;
  if (symbol) params.emplace_back("symbol", *symbol);
  return parsed(binance::Call::kRead, call(binance::Call::kRead, "GET", "/api/v3/openOrders", std::move(params), true),
                binance::parse_open_orders);
}

Result<std::optional<Order>> BinanceClient::cancel_order(const std::string& symbol,
                                                         const std::string& orig_client_order_id) {
  auto response = call(binance::Call::kCancel, "DELETE", "/api/v3/order",
                       {{"symbol", symbol}, {"origClientOrderId", orig_client_order_id}}, true);
  // Filled, cancelled already, or never placed: nothing open to cancel.
  if (!response.ok() && response.error().code == binance::kCancelRejected) return std::optional<Order>();
  return parsed(binance::Call::kCancel, response,
                [](std::string_view body) { return std::optional<Order>(binance::parse_cancel(body)); });
}

}  // namespace backstop::exchange
