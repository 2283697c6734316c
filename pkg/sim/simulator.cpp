#include "sim/simulator.h"

#include <nlohmann/json.hpp>
#include <thread>

#include "exchange/binance_protocol.h"

namespace backstop::sim {
namespace {

using core::Rounding;
using nlohmann::json;

SimResponse error_response(int status, int code, const std::string& message) {
  SimResponse r;
  r.status = status;
  r.body = json{{"code", code}, {"msg", message}}.dump();
  return r;
}

SimResponse json_response(const json& body) {
  SimResponse r;
  r.body = body.dump();
  return r;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string url_decode(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else if (text[i] == '+') {
      out += ' ';
    } else {
      out += text[i];
    }
  }
  return out;
}

std::optional<Decimal> decimal_param(const std::map<std::string, std::string>& params, const std::string& name) {
  const auto it = params.find(name);
  if (it == params.end()) return std::nullopt;
  try {
    return Decimal::parse(it->second);
  } catch (const core::DecimalError&) {
    return std::nullopt;
  }
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

json order_json(const LedgerEntry& e) {
  return json{{"symbol", e.symbol},
              {"orderId", e.order_id},
              {"orderListId", -1},
              {"clientOrderId", e.client_order_id},
              {"transactTime", e.time_ms},
              {"price", "0.00000000"},
              {"origQty", e.orig_qty.to_fixed_string()},
              {"executedQty", e.executed_qty.to_fixed_string()},
              {"cummulativeQuoteQty", e.quote_qty.to_fixed_string()},
              {"status", e.status},
              {"timeInForce", "GTC"},
              {"type", "MARKET"},
              {"side", e.side},
              {"workingTime", e.time_ms},
              {"selfTradePreventionMode", "NONE"}};
}

Decimal decimal_of(const json& value, const std::string& what) {
  if (value.is_string()) return Decimal::parse(value.get<std::string>());
  if (value.is_number_integer()) return Decimal::from_integer(value.get<std::int64_t>());
  throw std::invalid_argument(what + ": expected a decimal string");
}

}  // namespace

std::map<std::string, std::string> parse_query(const std::string& query) {
  std::map<std::string, std::string> params;
  std::size_t start = 0;
  while (start < query.size()) {
    auto end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    const std::string pair = query.substr(start, end - start);
    const auto eq = pair.find('=');
    if (eq != std::string::npos) params[url_decode(pair.substr(0, eq))] = url_decode(pair.substr(eq + 1));
    start = end + 1;
  }
  return params;
}

Simulator::Simulator() = default;

void Simulator::add_symbol(const SymbolConfig& symbol, Decimal price) {
  std::lock_guard lock(mutex_);
  books_[symbol.symbol] = Book{symbol, price, price, price};
}

void Simulator::set_price_listener(PriceListener listener) {
  std::lock_guard lock(mutex_);
  listener_ = std::move(listener);
}

void Simulator::set_price(const std::string& symbol, Decimal last, std::optional<Decimal> bid,
                          std::optional<Decimal> ask) {
  PriceListener listener;
  Book book;
  std::int64_t time_ms = 0;
  {
    std::lock_guard lock(mutex_);
    update_price(symbol, last, bid, ask);
    listener = listener_;
    book = books_.at(symbol);
    time_ms = server_time_ms() - faults_.stream_lag_ms;  // a lagging stream delivers old trades
  }
  if (listener) listener(symbol, book.last, book.bid, book.ask, time_ms);
}

void Simulator::update_price(const std::string& symbol, Decimal last, std::optional<Decimal> bid,
                             std::optional<Decimal> ask) {
  auto it = books_.find(symbol);
  if (it == books_.end()) {
    SymbolConfig config;
    config.symbol = symbol;
    config.base_asset = symbol.size() > 4 ? symbol.substr(0, symbol.size() - 4) : symbol;
    config.quote_asset = symbol.size() > 4 ? symbol.substr(symbol.size() - 4) : "USDT";
    it = books_.emplace(symbol, Book{config, last, last, last}).first;
  }
  it->second.last = last;
  it->second.bid = bid.value_or(last);
  it->second.ask = ask.value_or(last);
}

void Simulator::add_account(const std::string& api_key, const std::string& secret) {
  std::lock_guard lock(mutex_);
  accounts_[api_key].secret = secret;
}

void Simulator::set_balance(const std::string& api_key, const std::string& asset, Decimal amount) {
  std::lock_guard lock(mutex_);
  Account& account = accounts_[api_key];
  account.limited = true;
  account.balances[asset] = amount;
}

void Simulator::set_faults(const Faults& faults) {
  std::lock_guard lock(mutex_);
  faults_ = faults;
}

std::vector<LedgerEntry> Simulator::ledger() const {
  std::lock_guard lock(mutex_);
  std::vector<LedgerEntry> entries;
  for (const auto& o : orders_) entries.push_back(o.entry);
  return entries;
}

std::int64_t Simulator::server_time_ms() const { return now_ms() + faults_.clock_skew_ms; }

SimResponse Simulator::handle(const SimRequest& request) {
  if (request.path.rfind("/admin/", 0) == 0) {
    try {
      return admin(request);
    } catch (const std::exception& e) {
      return error_response(400, -1, std::string("admin request failed: ") + e.what());
    }
  }
  std::chrono::milliseconds latency{0};
  std::chrono::milliseconds deliver_late_by{0};
  {
    std::lock_guard lock(mutex_);
    latency = faults_.latency;
    if (faults_.ban > 0) {
      --faults_.ban;
      SimResponse r = error_response(
          418, -1003, "Way too many requests; IP banned until " + std::to_string(now_ms() + 60000) + ".");
      r.headers["Retry-After"] = "60";
      return r;
    }
    if (faults_.rate_limit > 0) {
      --faults_.rate_limit;
      SimResponse r = error_response(429, -1003,
                                     "Too much request weight used; current limit is 6000 request weight "
                                     "per 1 MINUTE. Please use WebSocket Streams for live updates.");
      r.headers["Retry-After"] = "1";
      return r;
    }
    if (faults_.fail_count > 0 && request.path == faults_.fail_path) {
      --faults_.fail_count;
      SimResponse r;
      r.status = faults_.fail_status;
      r.body = "<html><body><h1>" + std::to_string(faults_.fail_status) +
               " Service Temporarily Unavailable</h1></body></html>";
      r.headers["Content-Type"] = "text/html";
      return r;
    }
    if (faults_.deliver_late > 0 && request.method == "POST" && request.path == "/api/v3/order") {
      --faults_.deliver_late;
      deliver_late_by = faults_.deliver_late_by;
    }
  }
  // Held on the wire: it arrives (and is judged, and maybe executed) only now.
  if (deliver_late_by.count() > 0) std::this_thread::sleep_for(deliver_late_by);
  SimResponse response = api(request);
  response.delay += latency;
  response.headers["X-MBX-USED-WEIGHT-1M"] = "1";
  response.headers["Content-Type"] = "application/json;charset=UTF-8";
  return response;
}

SimResponse Simulator::admin(const SimRequest& request) {
  if (request.method == "GET" && request.path == "/admin/ledger") {
    json orders = json::array();
    for (const auto& e : ledger()) {
      orders.push_back(json{{"orderId", e.order_id},
                            {"clientOrderId", e.client_order_id},
                            {"symbol", e.symbol},
                            {"side", e.side},
                            {"status", e.status},
                            {"origQty", e.orig_qty.to_string()},
                            {"executedQty", e.executed_qty.to_string()},
                            {"quoteQty", e.quote_qty.to_string()},
                            {"apiKey", e.api_key},
                            {"time", e.time_ms}});
    }
    return json_response(orders);
  }
  const json body = request.body.empty() ? json::object() : json::parse(request.body);
  if (request.method == "POST" && request.path == "/admin/symbols") {
    for (const json& s : body) {
      SymbolConfig c;
      c.symbol = s.at("symbol").get<std::string>();
      c.base_asset = s.value("base", c.symbol.substr(0, c.symbol.size() > 4 ? c.symbol.size() - 4 : 0));
      c.quote_asset = s.value("quote", std::string("USDT"));
      if (s.contains("stepSize")) c.step_size = decimal_of(s["stepSize"], "stepSize");
      if (s.contains("minQty")) c.min_qty = decimal_of(s["minQty"], "minQty");
      if (s.contains("maxQty")) c.max_qty = decimal_of(s["maxQty"], "maxQty");
      if (s.contains("minNotional")) c.min_notional = decimal_of(s["minNotional"], "minNotional");
      if (s.contains("tickSize")) c.tick_size = decimal_of(s["tickSize"], "tickSize");
      add_symbol(c, decimal_of(s.at("price"), "price"));
    }
    return json_response(json::object());
  }
  if (request.method == "POST" && request.path == "/admin/prices") {
    for (const auto& [symbol, value] : body.items()) {
      if (value.is_object()) {
        std::optional<Decimal> bid, ask;
        if (value.contains("bid")) bid = decimal_of(value["bid"], "bid");
        if (value.contains("ask")) ask = decimal_of(value["ask"], "ask");
        set_price(symbol, decimal_of(value.at("last"), "last"), bid, ask);
      } else {
        set_price(symbol, decimal_of(value, symbol));
      }
    }
    return json_response(json::object());
  }
  if (request.method == "POST" && request.path == "/admin/accounts") {
    const std::string key = body.at("apiKey").get<std::string>();
    add_account(key, body.at("secret").get<std::string>());
    if (body.contains("balances")) {
      for (const auto& [asset, amount] : body["balances"].items()) set_balance(key, asset, decimal_of(amount, asset));
    }
    return json_response(json::object());
  }
  if (request.method == "POST" && request.path == "/admin/faults") {
    Faults f;
    f.latency = std::chrono::milliseconds(body.value("latencyMs", 0));
    f.timeout_after_execute = body.value("timeoutAfterExecute", 0);
    f.error_5xx_after_execute = body.value("error5xxAfterExecute", 0);
    f.error_5xx_before_execute = body.value("error5xxBeforeExecute", 0);
    f.rate_limit = body.value("rateLimit", 0);
    f.order_rate_limit = body.value("orderRateLimit", 0);
    f.ban = body.value("ban", 0);
    f.malformed = body.value("malformed", 0);
    f.partial_fill = body.value("partialFill", 0);
    f.clock_skew_ms = body.value("clockSkewMs", std::int64_t{0});
    f.deliver_late = body.value("deliverLate", 0);
    f.deliver_late_by = std::chrono::milliseconds(body.value("deliverLateByMs", 0));
    f.fail_path = body.value("failPath", std::string());
    f.fail_count = body.value("failCount", 0);
    f.fail_status = body.value("failStatus", 503);
    f.expire_unfilled = body.value("expireUnfilled", 0);
    f.stream_lag_ms = body.value("streamLagMs", std::int64_t{0});
    f.reject = body.value("reject", 0);
    f.reject_code = body.value("rejectCode", -1013);
    f.reject_message = body.value("rejectMessage", std::string("Filter failure: LOT_SIZE"));
    if (body.contains("slippagePct")) f.slippage_pct = decimal_of(body["slippagePct"], "slippagePct");
    set_faults(f);
    return json_response(json::object());
  }
  if (request.method == "POST" && request.path == "/admin/price-path") {
    // {"intervalMs": 5, "steps": [{"BTCUSDT": "93000"}, {"BTCUSDT": "92990", "ETHUSDT": "3000"}, ...]}
    std::vector<std::map<std::string, Decimal>> steps;
    for (const json& step : body.at("steps")) {
      std::map<std::string, Decimal> prices;
      for (const auto& [symbol, value] : step.items()) {
        std::lock_guard lock(mutex_);
        if (books_.count(symbol) == 0) throw std::invalid_argument("unknown symbol " + symbol + " in the price path");
        prices[symbol] = decimal_of(value, symbol);
      }
      steps.push_back(std::move(prices));
    }
    const std::size_t count = steps.size();
    replay_prices(std::move(steps), std::chrono::milliseconds(body.value("intervalMs", 0)));
    return json_response(json{{"steps", count}});
  }
  if (request.method == "GET" && request.path == "/admin/price-path") {
    return json_response(json{{"remaining", replay_remaining()}});
  }
  return error_response(404, -1, "unknown admin endpoint " + request.method + " " + request.path);
}

Simulator::~Simulator() {
  if (replay_.joinable()) {
    replay_.request_stop();
    replay_.join();
  }
}

void Simulator::replay_prices(std::vector<std::map<std::string, Decimal>> steps, std::chrono::milliseconds interval) {
  if (replay_.joinable()) {
    replay_.request_stop();
    replay_.join();
  }
  replay_remaining_ = steps.size();
  replay_ = std::jthread([this, steps = std::move(steps), interval](const std::stop_token& stop) {
    auto next = std::chrono::steady_clock::now();
    for (const auto& step : steps) {
      if (stop.stop_requested()) break;
      std::this_thread::sleep_until(next);
      for (const auto& [symbol, price] : step) set_price(symbol, price);
      --replay_remaining_;
      next += interval;
    }
    replay_remaining_ = 0;
  });
}

std::optional<SimResponse> Simulator::authenticate(const SimRequest& request,
                                                   std::map<std::string, std::string>& params, std::string& api_key) {
  const auto key = request.headers.find("x-mbx-apikey");
  if (key == request.headers.end()) return error_response(401, -2014, "API-key format invalid.");
  api_key = key->second;
  const auto account = accounts_.find(api_key);
  if (account == accounts_.end()) {
    return error_response(401, -2015, "Invalid API-key, IP, or permissions for action.");
  }
  // The signature covers the query string then the body, without the signature itself.
  std::string payload = request.query + request.body;
  const auto at = payload.find("signature=");
  if (at == std::string::npos) return error_response(400, -1102, "Mandatory parameter 'signature' was not sent.");
  std::string signed_part = payload.substr(0, at);
  if (!signed_part.empty() && signed_part.back() == '&') signed_part.pop_back();
  if (exchange::binance::sign(account->second.secret, signed_part) != params["signature"]) {
    return error_response(400, -1022, "Signature for this request is not valid.");
  }
  const auto timestamp = params.find("timestamp");
  if (timestamp == params.end()) return error_response(400, -1102, "Mandatory parameter 'timestamp' was not sent.");
  std::int64_t recv_window = 5000;
  if (const auto rw = params.find("recvWindow"); rw != params.end()) recv_window = std::stoll(rw->second);
  if (recv_window > 60000) return error_response(400, -1131, "recvWindow must be less than 60000");
  const std::int64_t ts = std::stoll(timestamp->second);
  const std::int64_t server = server_time_ms();
  if (ts > server + 1000 || server - ts > recv_window) {
    return error_response(400, -1021, "Timestamp for this request is outside of the recvWindow.");
  }
  return std::nullopt;
}

SimResponse Simulator::api(const SimRequest& request) {
  std::map<std::string, std::string> params = parse_query(request.query);
  for (const auto& [k, v] : parse_query(request.body)) params[k] = v;
  std::lock_guard lock(mutex_);
  if (request.path == "/api/v3/ping") return json_response(json::object());
  if (request.path == "/api/v3/time") return json_response(json{{"serverTime", server_time_ms()}});
  if (request.path == "/api/v3/ticker/price" || request.path == "/api/v3/ticker/bookTicker") {
    const bool book = request.path.ends_with("bookTicker");
    auto item = [&](const Book& b) {
      if (book) {
        return json{{"symbol", b.config.symbol},
                    {"bidPrice", b.bid.to_fixed_string()},
                    {"bidQty", "1000.00000000"},
                    {"askPrice", b.ask.to_fixed_string()},
                    {"askQty", "1000.00000000"}};
      }
      return json{{"symbol", b.config.symbol}, {"price", b.last.to_fixed_string()}};
    };
    if (const auto s = params.find("symbol"); s != params.end()) {
      const auto it = books_.find(s->second);
      if (it == books_.end()) return error_response(400, -1121, "Invalid symbol.");
      return json_response(item(it->second));
    }
    json all = json::array();
    for (const auto& [symbol, b] : books_) all.push_back(item(b));
    return json_response(all);
  }
  if (request.path == "/api/v3/exchangeInfo") {
    json symbols = json::array();
    for (const auto& [symbol, b] : books_) {
      const SymbolConfig& c = b.config;
      symbols.push_back(json{{"symbol", c.symbol},
                             {"status", "TRADING"},
                             {"baseAsset", c.base_asset},
                             {"quoteAsset", c.quote_asset},
                             {"orderTypes", {"LIMIT", "MARKET"}},
                             {"filters",
                              {{{"filterType", "PRICE_FILTER"},
                                {"minPrice", c.tick_size.to_fixed_string()},
                                {"maxPrice", "1000000.00000000"},
                                {"tickSize", c.tick_size.to_fixed_string()}},
                               {{"filterType", "LOT_SIZE"},
                                {"minQty", c.min_qty.to_fixed_string()},
                                {"maxQty", c.max_qty.to_fixed_string()},
                                {"stepSize", c.step_size.to_fixed_string()}},
                               {{"filterType", "MARKET_LOT_SIZE"},
                                {"minQty", "0.00000000"},
                                {"maxQty", c.max_qty.to_fixed_string()},
                                {"stepSize", "0.00000000"}},
                               {{"filterType", "NOTIONAL"},
                                {"minNotional", c.min_notional.to_fixed_string()},
                                {"applyMinToMarket", true},
                                {"maxNotional", "9000000.00000000"},
                                {"applyMaxToMarket", false},
                                {"avgPriceMins", 5}}}}});
    }
    return json_response(json{{"timezone", "UTC"}, {"serverTime", server_time_ms()}, {"symbols", symbols}});
  }
  if (request.path == "/api/v3/order") {
    std::string api_key;
    if (auto failure = authenticate(request, params, api_key)) return *failure;
    if (request.method == "POST") return place_order(params, api_key);
    if (request.method == "GET") return query_order(params, api_key);
  }
  return error_response(404, -1, "unknown endpoint " + request.method + " " + request.path);
}

SimResponse Simulator::place_order(const std::map<std::string, std::string>& params, const std::string& api_key) {
  if (faults_.order_rate_limit > 0) {
    --faults_.order_rate_limit;
    SimResponse r = error_response(429, -1015, "Too many new orders; current limit is 50 orders per 10 SECOND.");
    r.headers["Retry-After"] = "1";
    return r;
  }
  for (const char* required : {"symbol", "side", "type", "quantity"}) {
    if (params.count(required) == 0) {
      return error_response(
          400, -1102,
          std::string("Mandatory parameter '") + required + "' was not sent, was empty/null, or malformed.");
    }
  }
  const auto book = books_.find(params.at("symbol"));
  if (book == books_.end()) return error_response(400, -1121, "Invalid symbol.");
  const std::string side = params.at("side");
  if (side != "BUY" && side != "SELL") return error_response(400, -1117, "Invalid side.");
  if (params.at("type") != "MARKET") return error_response(400, -1116, "Invalid orderType.");
  const auto quantity = decimal_param(params, "quantity");
  if (!quantity || !quantity->is_positive()) {
    return error_response(
        400, -1100,
        "Illegal characters found in parameter 'quantity'; legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.");
  }
  const SymbolConfig& c = book->second.config;
  if (*quantity < c.min_qty || *quantity > c.max_qty || quantity->round_down_to_step(c.step_size) != *quantity) {
    return error_response(400, -1013, "Filter failure: LOT_SIZE");
  }
  std::string client_id;
  if (const auto it = params.find("newClientOrderId"); it != params.end()) client_id = it->second;
  if (client_id.empty()) client_id = "sim" + std::to_string(next_order_id_);
  const std::string key = api_key + "\n" + c.symbol + "\n" + client_id;
  if (const auto existing = by_client_id_.find(key); existing != by_client_id_.end()) {
    const std::string& status = orders_[existing->second].entry.status;
    if (status == "NEW" || status == "PARTIALLY_FILLED") return error_response(400, -2010, "Duplicate order sent.");
  }
  if (faults_.reject > 0) {
    --faults_.reject;
    return error_response(400, faults_.reject_code, faults_.reject_message);
  }
  if (faults_.error_5xx_before_execute > 0) {
    --faults_.error_5xx_before_execute;
    return error_response(503, -1008, "Service Unavailable.");
  }
  // Fill at the exit side of the book, worse by the configured slippage, on the tick.
  const bool sell = side == "SELL";
  const Decimal reference = sell ? book->second.bid : book->second.ask;
  const Decimal hundred = Decimal::from_integer(100);
  const Decimal factor = sell ? hundred - faults_.slippage_pct : hundred + faults_.slippage_pct;
  const Decimal fill_price = Decimal::mul_div(reference, factor, hundred, Rounding::kHalfUp)
                                 .round_to_step(c.tick_size, sell ? Rounding::kFloor : Rounding::kCeiling);
  Decimal executed = *quantity;
  std::string status = "FILLED";
  if (faults_.expire_unfilled > 0) {
    --faults_.expire_unfilled;
    executed = Decimal();
    status = "EXPIRED";
  } else if (faults_.partial_fill > 0) {
    --faults_.partial_fill;
    executed = Decimal::div(*quantity, Decimal::from_integer(2), Rounding::kDown).round_down_to_step(c.step_size);
    status = "EXPIRED";  // a market order that ran out of liquidity
  }
  const Decimal notional = Decimal::mul(executed, fill_price, Rounding::kHalfUp);
  if (Decimal::mul(*quantity, fill_price, Rounding::kHalfUp) < c.min_notional) {
    return error_response(400, -1013, "Filter failure: NOTIONAL");
  }
  Account& account = accounts_[api_key];
  if (account.limited) {
    const std::string& pay_asset = sell ? c.base_asset : c.quote_asset;
    const Decimal pay = sell ? executed : notional;
    if (account.balances[pay_asset] < pay) {
      return error_response(400, -2010, "Account has insufficient balance for requested action.");
    }
    account.balances[pay_asset] -= pay;
    account.balances[sell ? c.quote_asset : c.base_asset] += sell ? notional : executed;
  }
  LedgerEntry entry{next_order_id_++, client_id, c.symbol, side,     status,
                    api_key,          *quantity, executed, notional, server_time_ms()};
  orders_.push_back({entry});
  by_client_id_[key] = orders_.size() - 1;

  SimResponse response;
  json body = order_json(entry);
  body["fills"] = executed.is_positive() ? json::array({json{{"price", fill_price.to_fixed_string()},
                                                             {"qty", executed.to_fixed_string()},
                                                             {"commission", "0.00000000"},
                                                             {"commissionAsset", c.quote_asset},
                                                             {"tradeId", entry.order_id}}})
                                         : json::array();
  response.body = body.dump();
  if (faults_.timeout_after_execute > 0) {
    --faults_.timeout_after_execute;
    response.drop_connection = true;
  } else if (faults_.error_5xx_after_execute > 0) {
    --faults_.error_5xx_after_execute;
    return error_response(503, -1008, "Service Unavailable. Please try again.");
  } else if (faults_.malformed > 0) {
    --faults_.malformed;
    response.body = response.body.substr(0, response.body.size() / 2);
  }
  return response;
}

SimResponse Simulator::query_order(const std::map<std::string, std::string>& params, const std::string& api_key) {
  if (params.count("symbol") == 0) return error_response(400, -1102, "Mandatory parameter 'symbol' was not sent.");
  const auto client = params.find("origClientOrderId");
  const auto order_id = params.find("orderId");
  for (auto it = orders_.rbegin(); it != orders_.rend(); ++it) {
    const LedgerEntry& e = it->entry;
    if (e.api_key != api_key || e.symbol != params.at("symbol")) continue;
    if ((client != params.end() && e.client_order_id == client->second) ||
        (order_id != params.end() && std::to_string(e.order_id) == order_id->second)) {
      json body = order_json(e);
      body["time"] = e.time_ms;
      body["updateTime"] = e.time_ms;
      body["isWorking"] = true;
      body["origQuoteOrderQty"] = "0.00000000";
      return json_response(body);
    }
  }
  return error_response(400, -2013, "Order does not exist.");
}

}  // namespace backstop::sim
