#include "sim/simulator.h"

#include <algorithm>
#include <limits>
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
              {"price", e.price.to_fixed_string()},
              {"origQty", e.orig_qty.to_fixed_string()},
              {"executedQty", e.executed_qty.to_fixed_string()},
              {"cummulativeQuoteQty", e.quote_qty.to_fixed_string()},
              {"status", e.status},
              {"timeInForce", e.time_in_force},
              {"type", e.type},
              {"side", e.side},
              {"workingTime", e.time_ms},
              {"selfTradePreventionMode", "NONE"}};
}

Decimal decimal_of(const json& value, const std::string& what) {
  if (value.is_string()) return Decimal::parse(value.get<std::string>());
  if (value.is_number_integer()) return Decimal::from_integer(value.get<std::int64_t>());
  throw std::invalid_argument(what + ": expected a decimal string");
}

// An order as GET /api/v3/order and openOrders show it.
json order_detail_json(const LedgerEntry& e) {
  json body = order_json(e);
  body["stopPrice"] = "0.00000000";
  body["icebergQty"] = "0.00000000";
  body["time"] = e.time_ms;
  body["updateTime"] = e.update_time_ms;
  body["isWorking"] = true;
  body["origQuoteOrderQty"] = "0.00000000";
  return body;
}

json trade_json(const Trade& t) {
  return json{{"symbol", t.symbol},
              {"id", t.id},
              {"orderId", t.order_id},
              {"orderListId", -1},
              {"price", t.price.to_fixed_string()},
              {"qty", t.qty.to_fixed_string()},
              {"quoteQty", t.quote_qty.to_fixed_string()},
              {"commission", t.commission.to_fixed_string()},
              {"commissionAsset", t.commission_asset},
              {"time", t.time_ms},
              {"isBuyer", t.is_buyer},
              {"isMaker", t.is_maker},
              {"isBestMatch", true}};
}

bool is_open(const LedgerEntry& e) { return e.status == "NEW" || e.status == "PARTIALLY_FILLED"; }

// Binance's integer commission fields are the rate in basis points.
std::int64_t basis_points(Decimal rate) {
  const std::string text = Decimal::mul(rate, Decimal::from_integer(10000), Rounding::kDown).to_string();
  return std::stoll(text.substr(0, text.find('.')));
}

std::optional<std::int64_t> integer_param(const std::map<std::string, std::string>& params, const std::string& name) {
  const auto it = params.find(name);
  if (it == params.end()) return std::nullopt;
  try {
    std::size_t used = 0;
    const std::int64_t value = std::stoll(it->second, &used);
    if (used != it->second.size()) return std::nullopt;
    return value;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

SimResponse mandatory(const std::string& name) {
  return error_response(400, -1102, "Mandatory parameter '" + name + "' was not sent, was empty/null, or malformed.");
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

void Simulator::set_account_listener(AccountListener listener) {
  std::lock_guard lock(mutex_);
  account_listener_ = std::move(listener);
}

void Simulator::report_order(const LedgerEntry& e, const std::string& execution_type, const std::string& order_status,
                             const Trade* trade, const std::string& cancel_client_id) {
  if (!account_listener_) return;
  const std::int64_t now = server_time_ms();
  const bool cancel = execution_type == "CANCELED";
  // The quantities as of this report: a TRADE report carries its fill; the
  // others what had executed by then.
  const Decimal cumulative = execution_type == "NEW" ? Decimal() : e.executed_qty;
  const Decimal cumulative_quote = execution_type == "NEW" ? Decimal() : e.quote_qty;
  json event = {{"e", "executionReport"},
                {"E", now},
                {"s", e.symbol},
                {"c", cancel ? cancel_client_id : e.client_order_id},
                {"S", e.side},
                {"o", e.type},
                {"f", e.time_in_force},
                {"q", e.orig_qty.to_fixed_string()},
                {"p", e.price.to_fixed_string()},
                {"P", "0.00000000"},
                {"F", "0.00000000"},
                {"g", -1},
                {"C", cancel ? e.client_order_id : std::string()},
                {"x", execution_type},
                {"X", order_status},
                {"r", "NONE"},
                {"i", e.order_id},
                {"l", trade != nullptr ? trade->qty.to_fixed_string() : "0.00000000"},
                {"z", cumulative.to_fixed_string()},
                {"L", trade != nullptr ? trade->price.to_fixed_string() : "0.00000000"},
                {"n", trade != nullptr ? trade->commission.to_fixed_string() : "0"},
                {"N", trade != nullptr ? json(trade->commission_asset) : json(nullptr)},
                {"T", trade != nullptr ? trade->time_ms : now},
                {"t", trade != nullptr ? trade->id : -1},
                {"I", e.order_id * 2},
                {"w", order_status == "NEW" || order_status == "PARTIALLY_FILLED"},
                {"m", trade != nullptr && trade->is_maker},
                {"M", false},
                {"O", e.time_ms},
                {"Z", cumulative_quote.to_fixed_string()},
                {"Y", trade != nullptr ? trade->quote_qty.to_fixed_string() : "0.00000000"},
                {"Q", "0.00000000"},
                {"W", e.time_ms},
                {"V", "NONE"}};
  pending_events_.emplace_back(e.api_key, event.dump());
}

void Simulator::report_balances(const std::string& api_key, const std::set<std::string>& assets) {
  if (!account_listener_ || assets.empty()) return;
  Account& account = accounts_.at(api_key);
  json list = json::array();
  for (const std::string& asset : assets) {
    const Balance& b = holding(account, asset);
    list.push_back(json{{"a", asset}, {"f", b.free.to_fixed_string()}, {"l", b.locked.to_fixed_string()}});
  }
  const std::int64_t now = server_time_ms();
  pending_events_.emplace_back(
      api_key, json{{"e", "outboundAccountPosition"}, {"E", now}, {"u", account.update_time_ms}, {"B", list}}.dump());
}

void Simulator::flush_account_events() {
  std::lock_guard order(events_mutex_);
  std::vector<std::pair<std::string, std::string>> events;
  AccountListener listener;
  {
    std::lock_guard lock(mutex_);
    events.swap(pending_events_);
    listener = account_listener_;
  }
  if (!listener) return;
  for (const auto& [api_key, event] : events) listener(api_key, event);
}

void Simulator::set_price(const std::string& symbol, Decimal last, std::optional<Decimal> bid,
                          std::optional<Decimal> ask) {
  PriceListener listener;
  Book book;
  std::int64_t time_ms = 0;
  {
    std::lock_guard lock(mutex_);
    update_price(symbol, last, bid, ask);
    match_resting(symbol);
    listener = listener_;
    book = books_.at(symbol);
    time_ms = server_time_ms() - faults_.stream_lag_ms;  // a lagging stream delivers old trades
  }
  if (listener) listener(symbol, book.last, book.bid, book.ask, time_ms);
  flush_account_events();  // resting orders the price reached
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
  account.balances[asset].free = amount;
  account.update_time_ms = server_time_ms();
}

const Decimal Simulator::kPaperFunds = Decimal::parse("1000000000");

Balance& Simulator::holding(Account& account, const std::string& asset) {
  const auto [it, added] = account.balances.try_emplace(asset);
  if (added && !account.limited) it->second.free = kPaperFunds;
  return it->second;
}

Balance Simulator::balance(const std::string& api_key, const std::string& asset) const {
  std::lock_guard lock(mutex_);
  const auto account = accounts_.find(api_key);
  if (account == accounts_.end()) return {};
  const auto it = account->second.balances.find(asset);
  if (it != account->second.balances.end()) return it->second;
  return account->second.limited ? Balance{} : Balance{kPaperFunds, Decimal()};
}

void Simulator::set_commission(const std::string& api_key, const CommissionSettings& settings) {
  std::lock_guard lock(mutex_);
  accounts_[api_key].commission = settings;
}

void Simulator::set_weight_limit(int limit) {
  std::lock_guard lock(mutex_);
  weight_limit_ = limit;
}

std::vector<Trade> Simulator::trades(const std::string& api_key) const {
  std::lock_guard lock(mutex_);
  std::vector<Trade> out;
  for (const Trade& t : trades_) {
    if (t.api_key == api_key) out.push_back(t);
  }
  return out;
}

int Simulator::WeightMeter::used(std::int64_t now_ms) {
  while (!entries_.empty() && entries_.front().first <= now_ms - 60000) {
    sum_ -= entries_.front().second;
    entries_.pop_front();
  }
  return sum_;
}

void Simulator::WeightMeter::add(std::int64_t now_ms, int weight) {
  entries_.emplace_back(now_ms, weight);
  sum_ += weight;
}

int Simulator::WeightMeter::retry_after_s(std::int64_t now_ms, int weight, int limit) {
  int remaining = used(now_ms);
  for (const auto& [time_ms, w] : entries_) {
    remaining -= w;
    if (remaining + weight <= limit) {
      return static_cast<int>(std::max<std::int64_t>(1, (time_ms + 60000 - now_ms + 999) / 1000));
    }
  }
  return 60;
}

int Simulator::request_weight(const SimRequest& request, const Params& params) {
  return exchange::binance::request_weight(request.method, request.path, {params.begin(), params.end()});
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
  SimResponse response = dispatch(request);
  flush_account_events();  // what the request changed reaches the user data stream before its answer
  return response;
}

SimResponse Simulator::dispatch(const SimRequest& request) {
  if (request.path.rfind("/admin/", 0) == 0) {
    try {
      return admin(request);
    } catch (const std::exception& e) {
      return error_response(400, -1, std::string("admin request failed: ") + e.what());
    }
  }
  std::chrono::milliseconds latency{0};
  std::chrono::milliseconds deliver_late_by{0};
  int used_weight = 0;
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
    Params params = parse_query(request.query);
    for (const auto& [k, v] : parse_query(request.body)) params[k] = v;
    const int weight = request_weight(request, params);
    const std::int64_t now = now_ms();
    if (weight_limit_ > 0 && weight_.used(now) + weight > weight_limit_) {
      SimResponse r = error_response(429, -1003,
                                     "Too much request weight used; current limit is " + std::to_string(weight_limit_) +
                                         " request weight per 1 MINUTE. Please use WebSocket Streams for live "
                                         "updates to avoid polling the API.");
      r.headers["Retry-After"] = std::to_string(weight_.retry_after_s(now, weight, weight_limit_));
      r.headers["X-MBX-USED-WEIGHT-1M"] = std::to_string(weight_.used(now));
      return r;
    }
    weight_.add(now, weight);
    ++requests_by_path_[request.path];
    used_weight = weight_.used(now);
  }
  // Held on the wire: it arrives (and is judged, and maybe executed) only now.
  if (deliver_late_by.count() > 0) std::this_thread::sleep_for(deliver_late_by);
  SimResponse response = api(request);
  response.delay += latency;
  response.headers["X-MBX-USED-WEIGHT-1M"] = std::to_string(used_weight);
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
                            {"type", e.type},
                            {"price", e.price.to_string()},
                            {"origin", e.origin},
                            {"time", e.time_ms}});
    }
    return json_response(orders);
  }
  if (request.method == "GET" && request.path == "/admin/trades") {
    const Params query = parse_query(request.query);
    const auto key = query.find("apiKey");
    if (key == query.end()) throw std::invalid_argument("apiKey is required");
    json list = json::array();
    for (const Trade& t : trades(key->second)) {
      json item = trade_json(t);
      item["origin"] = t.origin;
      list.push_back(std::move(item));
    }
    return json_response(list);
  }
  if (request.method == "GET" && request.path == "/admin/weight") {
    std::lock_guard lock(mutex_);
    return json_response(
        json{{"usedWeight1m", weight_.used(now_ms())}, {"limit", weight_limit_}, {"requests", requests_by_path_}});
  }
  const json body = request.body.empty() ? json::object() : json::parse(request.body);
  if (request.method == "POST" && request.path == "/admin/symbols") {
    for (const json& s : body) {
      SymbolConfig c;
      c.symbol = s.at("symbol").get<std::string>();
      c.base_asset = s.value("base", c.symbol.size() > 4 ? c.symbol.substr(0, c.symbol.size() - 4) : c.symbol);
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
    std::lock_guard lock(mutex_);
    Account& account = accounts_[key];
    if (body.contains("limited")) account.limited = body["limited"].get<bool>();
    if (body.contains("uid")) account.uid = body["uid"].get<std::int64_t>();
    if (body.contains("accountType")) account.account_type = body["accountType"].get<std::string>();
    return json_response(json::object());
  }
  if (request.method == "POST" && request.path == "/admin/commission") {
    // {"apiKey":"k","takerRate":"0.001","makerRate":"0.001","payInBnb":false,"bnbPrice":"600"}
    CommissionSettings c;
    if (body.contains("takerRate")) c.taker_rate = decimal_of(body["takerRate"], "takerRate");
    if (body.contains("makerRate")) c.maker_rate = decimal_of(body["makerRate"], "makerRate");
    c.pay_in_bnb = body.value("payInBnb", false);
    if (body.contains("bnbPrice")) c.bnb_price = decimal_of(body["bnbPrice"], "bnbPrice");
    if (c.pay_in_bnb && !c.bnb_price.is_positive()) throw std::invalid_argument("payInBnb needs a positive bnbPrice");
    set_commission(body.at("apiKey").get<std::string>(), c);
    return json_response(json::object());
  }
  if (request.method == "POST" && request.path == "/admin/balance-updates") {
    // A deposit (delta > 0) or a withdrawal (delta < 0, within free), as from outside Backstop.
    const std::string key = body.at("apiKey").get<std::string>();
    const std::string asset = body.at("asset").get<std::string>();
    const Decimal delta = decimal_of(body.at("delta"), "delta");
    std::lock_guard lock(mutex_);
    const auto account = accounts_.find(key);
    if (account == accounts_.end()) throw std::invalid_argument("unknown apiKey " + key);
    Balance& b = holding(account->second, asset);
    if (delta.is_negative() && b.free < -delta) {
      throw std::invalid_argument("withdrawal of " + (-delta).to_string() + " " + asset + " exceeds free " + asset +
                                  " " + b.free.to_string());
    }
    b.free += delta;
    account->second.update_time_ms = server_time_ms();
    if (account_listener_) {
      pending_events_.emplace_back(key, json{{"e", "balanceUpdate"},
                                             {"E", server_time_ms()},
                                             {"a", asset},
                                             {"d", delta.to_fixed_string()},
                                             {"T", account->second.update_time_ms}}
                                            .dump());
      report_balances(key, {asset});
    }
    return json_response(json{{"asset", asset}, {"free", b.free.to_fixed_string()}});
  }
  if (request.method == "POST" && request.path == "/admin/orders") {
    // An order "from the exchange's app": no signature, no faults; the same
    // matching, balances, commission and trades as the API's.
    // {"apiKey":"k","symbol":"BTCUSDT","side":"SELL","type":"MARKET|LIMIT","quantity":"0.5","price"?,"clientOrderId"?}
    auto text = [&](const char* name) {
      const json& v = body.at(name);
      return v.is_string() ? v.get<std::string>() : decimal_of(v, name).to_string();
    };
    const std::string key = body.at("apiKey").get<std::string>();
    Params params{{"symbol", body.at("symbol").get<std::string>()},
                  {"side", body.at("side").get<std::string>()},
                  {"type", body.value("type", std::string("MARKET"))},
                  {"quantity", text("quantity")}};
    if (body.contains("price")) {
      params["price"] = text("price");
      params["timeInForce"] = body.value("timeInForce", std::string("GTC"));
    }
    if (body.contains("clientOrderId")) params["newClientOrderId"] = body["clientOrderId"].get<std::string>();
    std::lock_guard lock(mutex_);
    if (accounts_.count(key) == 0) throw std::invalid_argument("unknown apiKey " + key);
    return place_order(params, key, "app");
  }
  if (request.method == "POST" && request.path == "/admin/weight") {
    set_weight_limit(body.at("limit").get<int>());
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
    f.malformed_account = body.value("malformedAccount", 0);
    f.malformed_account_kind = body.value("malformedAccountKind", std::string("truncated"));
    static const std::set<std::string> kKinds{"truncated", "bad-decimal", "missing-balances", "duplicate-asset",
                                              "negative"};
    if (kKinds.count(f.malformed_account_kind) == 0) {
      throw std::invalid_argument(
          "malformedAccountKind must be one of truncated, bad-decimal, missing-balances, "
          "duplicate-asset, negative; got " +
          f.malformed_account_kind);
    }
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

Simulator::WsApiReply Simulator::ws_api(const std::string& request_text, std::int64_t subscription_id) {
  WsApiReply reply;
  json id = nullptr;
  auto answer_error = [&](int status, int code, const std::string& message) {
    reply.text = json{{"id", id}, {"status", status}, {"error", {{"code", code}, {"msg", message}}}}.dump();
    return reply;
  };
  json request;
  try {
    request = json::parse(request_text);
  } catch (const json::exception&) {
    return answer_error(400, -1000, "Malformed request: not JSON.");
  }
  if (!request.is_object()) return answer_error(400, -1000, "Malformed request: not a JSON object.");
  if (request.contains("id")) {
    // Binance takes an integer, a string or null.
    if (!request["id"].is_string() && !request["id"].is_number_integer() && !request["id"].is_null()) {
      return answer_error(400, -1000, "Malformed request: id must be an integer, a string or null.");
    }
    id = request["id"];
  }
  if (!request.contains("method") || !request["method"].is_string()) {
    return answer_error(400, -1102, "Mandatory parameter 'method' was not sent, was empty/null, or malformed.");
  }
  const std::string method = request["method"].get<std::string>();
  const json params = request.value("params", json::object());
  if (!params.is_object()) return answer_error(400, -1000, "Malformed request: params is not an object.");
  const int weight = method == "ping" ? 1 : 2;
  std::lock_guard lock(mutex_);
  const std::int64_t now = now_ms();
  if (weight_limit_ > 0 && weight_.used(now) + weight > weight_limit_) {
    reply.text = json{{"id", id},
                      {"status", 429},
                      {"error",
                       {{"code", -1003},
                        {"msg", "Too much request weight used."},
                        {"data", {{"retryAfter", now + 1000 * weight_.retry_after_s(now, weight, weight_limit_)}}}}}}
                     .dump();
    return reply;
  }
  weight_.add(now, weight);
  ++requests_by_path_["ws-api " + method];
  const json rate_limits = json::array({{{"rateLimitType", "REQUEST_WEIGHT"},
                                         {"interval", "MINUTE"},
                                         {"intervalNum", 1},
                                         {"limit", weight_limit_ > 0 ? weight_limit_ : 6000},
                                         {"count", weight_.used(now)}}});
  if (method == "ping") {
    if (!params.empty()) {
      return answer_error(400, -1104, "Not all sent parameters were read; ping takes no parameters.");
    }
    reply.text = json{{"id", id}, {"status", 200}, {"result", json::object()}, {"rateLimits", rate_limits}}.dump();
    return reply;
  }
  if (method != "userDataStream.subscribe.signature") {
    return answer_error(400, -1100, "Unknown method '" + method + "'.");
  }
  // Signed as the REST API is, over the parameters sorted by name.
  std::map<std::string, std::string> values;
  for (const auto& [name, value] : params.items()) {
    if (value.is_string()) {
      values[name] = value.get<std::string>();
    } else if (value.is_number_integer()) {
      values[name] = std::to_string(value.get<std::int64_t>());
    } else {
      return answer_error(400, -1100, "Illegal characters found in parameter '" + name + "'.");
    }
  }
  for (const auto& [name, value] : values) {
    if (name != "apiKey" && name != "timestamp" && name != "recvWindow" && name != "signature") {
      return answer_error(400, -1104, "Not all sent parameters were read; unknown parameter '" + name + "'.");
    }
  }
  for (const char* required : {"apiKey", "timestamp", "signature"}) {
    if (values.count(required) == 0) {
      return answer_error(
          400, -1102,
          std::string("Mandatory parameter '") + required + "' was not sent, was empty/null, or malformed.");
    }
  }
  const auto account = accounts_.find(values["apiKey"]);
  if (account == accounts_.end()) return answer_error(401, -2015, "Invalid API-key, IP, or permissions for action.");
  std::string payload;
  for (const auto& [name, value] : values) {
    if (name == "signature") continue;
    payload += (payload.empty() ? "" : "&") + name + "=" + value;
  }
  if (exchange::binance::sign(account->second.secret, payload) != values["signature"]) {
    return answer_error(400, -1022, "Signature for this request is not valid.");
  }
  std::int64_t recv_window = 5000;
  std::int64_t timestamp = 0;
  try {
    timestamp = std::stoll(values["timestamp"]);
    if (values.count("recvWindow") != 0) recv_window = std::stoll(values["recvWindow"]);
  } catch (const std::exception&) {
    return answer_error(400, -1100, "Illegal characters found in parameter 'timestamp' or 'recvWindow'.");
  }
  if (recv_window > 60000) return answer_error(400, -1131, "recvWindow must be less than 60000");
  const std::int64_t server = server_time_ms();
  if (timestamp > server + 1000 || server - timestamp > recv_window) {
    return answer_error(400, -1021, "Timestamp for this request is outside of the recvWindow.");
  }
  reply.subscribed_key = values["apiKey"];
  reply.text =
      json{{"id", id}, {"status", 200}, {"result", {{"subscriptionId", subscription_id}}}, {"rateLimits", rate_limits}}
          .dump();
  return reply;
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
  if (request.path == "/api/v3/order" || request.path == "/api/v3/openOrders" || request.path == "/api/v3/account" ||
      request.path == "/api/v3/myTrades") {
    std::string api_key;
    if (auto failure = authenticate(request, params, api_key)) return *failure;
    if (request.path == "/api/v3/order") {
      if (request.method == "POST") return place_order(params, api_key, "api");
      if (request.method == "GET") return query_order(params, api_key);
      if (request.method == "DELETE") return cancel_order(params, api_key);
    } else if (request.method == "GET") {
      if (request.path == "/api/v3/openOrders") return open_orders(params, api_key);
      if (request.path == "/api/v3/account") return account_info(params, api_key);
      return my_trades(params, api_key);
    }
  }
  return error_response(404, -1, "unknown endpoint " + request.method + " " + request.path);
}

SimResponse Simulator::place_order(const Params& params, const std::string& api_key, const std::string& origin) {
  const bool from_api = origin == "api";  // the faults are the API's; an order from the app has none
  if (from_api && faults_.order_rate_limit > 0) {
    --faults_.order_rate_limit;
    SimResponse r = error_response(429, -1015, "Too many new orders; current limit is 50 orders per 10 SECOND.");
    r.headers["Retry-After"] = "1";
    return r;
  }
  for (const char* required : {"symbol", "side", "type", "quantity"}) {
    if (params.count(required) == 0) return mandatory(required);
  }
  const auto book = books_.find(params.at("symbol"));
  if (book == books_.end()) return error_response(400, -1121, "Invalid symbol.");
  const std::string side = params.at("side");
  if (side != "BUY" && side != "SELL") return error_response(400, -1117, "Invalid side.");
  const std::string type = params.at("type");
  if (type != "MARKET" && type != "LIMIT") return error_response(400, -1116, "Invalid orderType.");
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
  Decimal limit_price;
  std::string time_in_force = "GTC";
  if (type == "LIMIT") {
    if (params.count("timeInForce") == 0) return mandatory("timeInForce");
    time_in_force = params.at("timeInForce");
    if (time_in_force != "GTC" && time_in_force != "IOC" && time_in_force != "FOK") {
      return error_response(400, -1115, "Invalid timeInForce.");
    }
    if (params.count("price") == 0) return mandatory("price");
    const auto price = decimal_param(params, "price");
    if (!price || !price->is_positive()) {
      return error_response(
          400, -1100,
          "Illegal characters found in parameter 'price'; legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.");
    }
    if (price->round_down_to_step(c.tick_size) != *price)
      return error_response(400, -1013, "Filter failure: PRICE_FILTER");
    limit_price = *price;
  } else if (params.count("price") != 0) {
    return error_response(400, -1106, "Parameter 'price' sent when not required.");
  }
  std::string client_id;
  if (const auto it = params.find("newClientOrderId"); it != params.end()) client_id = it->second;
  if (client_id.empty()) client_id = (from_api ? "sim" : "app") + std::to_string(next_order_id_);
  const std::string key = api_key + "\n" + c.symbol + "\n" + client_id;
  if (const auto existing = by_client_id_.find(key); existing != by_client_id_.end()) {
    if (is_open(orders_[existing->second].entry)) return error_response(400, -2010, "Duplicate order sent.");
  }
  if (from_api && faults_.reject > 0) {
    --faults_.reject;
    return error_response(400, faults_.reject_code, faults_.reject_message);
  }
  if (from_api && faults_.error_5xx_before_execute > 0) {
    --faults_.error_5xx_before_execute;
    return error_response(503, -1008, "Service Unavailable.");
  }
  const bool sell = side == "SELL";
  const Decimal touch = sell ? book->second.bid : book->second.ask;
  Decimal fill_price;
  Decimal executed = *quantity;
  std::string status = "FILLED";
  bool rests = false;
  if (type == "MARKET") {
    // Fill at the exit side of the book, worse by the configured slippage, on the tick.
    const Decimal hundred = Decimal::from_integer(100);
    const Decimal factor = sell ? hundred - faults_.slippage_pct : hundred + faults_.slippage_pct;
    fill_price = Decimal::mul_div(touch, factor, hundred, Rounding::kHalfUp)
                     .round_to_step(c.tick_size, sell ? Rounding::kFloor : Rounding::kCeiling);
    if (from_api && faults_.expire_unfilled > 0) {
      --faults_.expire_unfilled;
      executed = Decimal();
      status = "EXPIRED";
    } else if (from_api && faults_.partial_fill > 0) {
      --faults_.partial_fill;
      executed = Decimal::div(*quantity, Decimal::from_integer(2), Rounding::kDown).round_down_to_step(c.step_size);
      status = "EXPIRED";  // a market order that ran out of liquidity
    }
    if (Decimal::mul(*quantity, fill_price, Rounding::kHalfUp) < c.min_notional) {
      return error_response(400, -1013, "Filter failure: NOTIONAL");
    }
  } else {
    if (Decimal::mul(*quantity, limit_price, Rounding::kHalfUp) < c.min_notional) {
      return error_response(400, -1013, "Filter failure: NOTIONAL");
    }
    // A limit the book already crosses takes the book's price (a taker);
    // otherwise GTC rests until the price reaches it, IOC/FOK expire.
    if (sell ? touch >= limit_price : touch <= limit_price) {
      fill_price = touch;
    } else {
      executed = Decimal();
      status = time_in_force == "GTC" ? "NEW" : "EXPIRED";
      rests = time_in_force == "GTC";
    }
  }
  // What the order takes from free now: a fill's payment or a resting order's lock.
  Account& account = accounts_[api_key];
  const std::string& pay_asset = sell ? c.base_asset : c.quote_asset;
  // A SELL needs the whole quantity it asks to sell (Binance checks the order,
  // not what a partial fill later takes); a BUY the quote its fill costs.
  const Decimal needed = rests ? (sell ? *quantity : Decimal::mul(*quantity, limit_price, Rounding::kHalfUp))
                               : (sell ? *quantity : Decimal::mul(executed, fill_price, Rounding::kHalfUp));
  if (account.limited && holding(account, pay_asset).free < needed) {
    return error_response(400, -2010, "Account has insufficient balance for requested action.");
  }
  const std::int64_t now = server_time_ms();
  LedgerEntry entry{next_order_id_++,
                    client_id,
                    c.symbol,
                    side,
                    status,
                    api_key,
                    *quantity,
                    executed,
                    Decimal::mul(executed, fill_price, Rounding::kHalfUp),
                    now,
                    type,
                    limit_price,
                    time_in_force,
                    origin,
                    now};
  orders_.push_back({entry, {}, {}});
  by_client_id_[key] = orders_.size() - 1;
  StoredOrder& stored = orders_.back();
  json fills = json::array();
  report_order(stored.entry, "NEW", "NEW", nullptr);
  std::set<std::string> moved;  // the assets whose balance the order changed
  if (executed.is_positive()) {
    const Trade t = fill(account, stored, c, executed, fill_price, false);
    fills.push_back(json{{"price", t.price.to_fixed_string()},
                         {"qty", t.qty.to_fixed_string()},
                         {"commission", t.commission.to_fixed_string()},
                         {"commissionAsset", t.commission_asset},
                         {"tradeId", t.id}});
    report_order(stored.entry, "TRADE", executed == *quantity ? "FILLED" : "PARTIALLY_FILLED", &t);
    moved = {c.base_asset, c.quote_asset, t.commission_asset};
  }
  if (status == "EXPIRED") report_order(stored.entry, "EXPIRED", "EXPIRED", nullptr);
  if (rests) {
    // An account not limited locks what it has; the rest comes from nowhere when it fills.
    Balance& b = holding(account, pay_asset);
    const Decimal take = account.limited ? needed : std::min(needed, b.free);
    b.free -= take;
    b.locked += take;
    stored.locked_asset = pay_asset;
    stored.locked = take;
    account.update_time_ms = now;
    resting_.insert(orders_.size() - 1);
    moved.insert(pay_asset);
  }
  report_balances(api_key, moved);

  SimResponse response;
  json body = order_json(stored.entry);
  body["fills"] = fills;
  response.body = body.dump();
  if (!from_api) return response;
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

Trade Simulator::fill(Account& account, StoredOrder& order, const SymbolConfig& c, Decimal qty, Decimal price,
                      bool maker) {
  const bool sell = order.entry.side == "SELL";
  const Decimal notional = Decimal::mul(qty, price, Rounding::kHalfUp);
  const std::string& pay_asset = sell ? c.base_asset : c.quote_asset;
  const std::string& receive_asset = sell ? c.quote_asset : c.base_asset;
  const Decimal pay = sell ? qty : notional;
  const Decimal received = sell ? notional : qty;
  Balance& paying = holding(account, pay_asset);
  if (!order.locked_asset.empty()) {
    paying.locked -= order.locked;  // a resting order pays with what it locked (it fills whole)
    order.locked = Decimal();
  } else {
    paying.free -= account.limited ? pay : std::min(pay, paying.free);
  }
  Trade t;
  t.id = next_trade_id_++;
  t.order_id = order.entry.order_id;
  t.api_key = order.entry.api_key;
  t.symbol = c.symbol;
  t.is_buyer = !sell;
  t.is_maker = maker;
  t.price = price;
  t.qty = qty;
  t.quote_qty = notional;
  t.commission_asset = receive_asset;
  t.time_ms = server_time_ms();
  t.origin = order.entry.origin;
  const CommissionSettings& settings = account.commission;
  const Decimal rate = maker ? settings.maker_rate : settings.taker_rate;
  bool paid_in_bnb = false;
  if (rate.is_positive() && settings.pay_in_bnb) {
    const Decimal in_bnb = Decimal::mul_div(notional, rate, settings.bnb_price, Rounding::kHalfUp);
    const auto held = account.balances.find("BNB");
    Balance* bnb = held != account.balances.end() ? &held->second
                   : account.limited              ? nullptr
                                                  : &holding(account, "BNB");
    if (in_bnb.is_positive() && bnb != nullptr && bnb->free >= in_bnb) {
      bnb->free -= in_bnb;
      t.commission = in_bnb;
      t.commission_asset = "BNB";
      paid_in_bnb = true;
    }
  }
  if (!paid_in_bnb) t.commission = Decimal::mul(received, rate, Rounding::kHalfUp);
  holding(account, receive_asset).free += paid_in_bnb ? received : received - t.commission;
  account.update_time_ms = t.time_ms;
  trades_.push_back(t);
  return t;
}

void Simulator::match_resting(const std::string& symbol) {
  const Book& book = books_.at(symbol);
  for (auto it = resting_.begin(); it != resting_.end();) {
    StoredOrder& order = orders_[*it];
    LedgerEntry& e = order.entry;
    const bool sell = e.side == "SELL";
    if (e.symbol != symbol || (sell ? book.bid < e.price : book.ask > e.price)) {
      ++it;
      continue;
    }
    // Reached: it fills whole at its own price, as the maker.
    const Trade t = fill(accounts_[e.api_key], order, book.config, e.orig_qty, e.price, true);
    e.executed_qty = e.orig_qty;
    e.quote_qty = Decimal::mul(e.orig_qty, e.price, Rounding::kHalfUp);
    e.status = "FILLED";
    e.update_time_ms = server_time_ms();
    report_order(e, "TRADE", "FILLED", &t);
    report_balances(e.api_key, {book.config.base_asset, book.config.quote_asset, t.commission_asset});
    it = resting_.erase(it);
  }
}

Simulator::StoredOrder* Simulator::find_order(const Params& params, const std::string& api_key) {
  const auto client = params.find("origClientOrderId");
  const auto order_id = params.find("orderId");
  for (auto it = orders_.rbegin(); it != orders_.rend(); ++it) {
    const LedgerEntry& e = it->entry;
    if (e.api_key != api_key || e.symbol != params.at("symbol")) continue;
    if ((order_id != params.end() && std::to_string(e.order_id) == order_id->second) ||
        (order_id == params.end() && client != params.end() && e.client_order_id == client->second)) {
      return &*it;
    }
  }
  return nullptr;
}

SimResponse Simulator::query_order(const Params& params, const std::string& api_key) {
  if (params.count("symbol") == 0) return mandatory("symbol");
  const StoredOrder* order = find_order(params, api_key);
  if (order == nullptr) return error_response(400, -2013, "Order does not exist.");
  return json_response(order_detail_json(order->entry));
}

SimResponse Simulator::cancel_order(const Params& params, const std::string& api_key) {
  if (params.count("symbol") == 0) return mandatory("symbol");
  if (params.count("orderId") == 0 && params.count("origClientOrderId") == 0) {
    return error_response(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!");
  }
  if (books_.count(params.at("symbol")) == 0) return error_response(400, -1121, "Invalid symbol.");
  StoredOrder* order = find_order(params, api_key);
  // Filled, expired, cancelled already, or never placed: Binance answers the same.
  if (order == nullptr || !is_open(order->entry)) return error_response(400, -2011, "Unknown order sent.");
  LedgerEntry& e = order->entry;
  Account& account = accounts_[api_key];
  if (!order->locked_asset.empty()) {
    Balance& b = holding(account, order->locked_asset);
    b.locked -= order->locked;
    b.free += order->locked;
    order->locked = Decimal();
  }
  e.status = "CANCELED";
  e.update_time_ms = server_time_ms();
  account.update_time_ms = e.update_time_ms;
  resting_.erase(static_cast<std::size_t>(order - orders_.data()));
  json body = order_json(e);
  body.erase("fills");
  body.erase("workingTime");
  body["origClientOrderId"] = e.client_order_id;
  const auto new_id = params.find("newClientOrderId");
  body["clientOrderId"] = new_id != params.end() ? new_id->second : "simcancel" + std::to_string(next_cancel_id_++);
  report_order(e, "CANCELED", "CANCELED", nullptr, body["clientOrderId"].get<std::string>());
  if (!order->locked_asset.empty()) report_balances(api_key, {order->locked_asset});
  body["transactTime"] = e.update_time_ms;
  return json_response(body);
}

SimResponse Simulator::open_orders(const Params& params, const std::string& api_key) {
  const auto symbol = params.find("symbol");
  if (symbol != params.end() && books_.count(symbol->second) == 0) {
    return error_response(400, -1121, "Invalid symbol.");
  }
  json list = json::array();
  for (const std::size_t index : resting_) {
    const LedgerEntry& e = orders_[index].entry;
    if (e.api_key != api_key || (symbol != params.end() && e.symbol != symbol->second)) continue;
    list.push_back(order_detail_json(e));
  }
  return json_response(list);
}

SimResponse Simulator::account_info(const Params& params, const std::string& api_key) {
  Account& account = accounts_.at(api_key);
  if (!account.limited) {
    for (const auto& [symbol, book] : books_) {
      holding(account, book.config.base_asset);
      holding(account, book.config.quote_asset);
    }
  }
  const auto omit = params.find("omitZeroBalances");
  const bool omit_zero = omit != params.end() && omit->second == "true";
  json balances = json::array();
  for (const auto& [asset, b] : account.balances) {
    if (omit_zero && b.free.is_zero() && b.locked.is_zero()) continue;
    balances.push_back(
        json{{"asset", asset}, {"free", b.free.to_fixed_string()}, {"locked", b.locked.to_fixed_string()}});
  }
  const CommissionSettings& c = account.commission;
  json body{{"makerCommission", basis_points(c.maker_rate)},
            {"takerCommission", basis_points(c.taker_rate)},
            {"buyerCommission", 0},
            {"sellerCommission", 0},
            {"commissionRates",
             {{"maker", c.maker_rate.to_fixed_string()},
              {"taker", c.taker_rate.to_fixed_string()},
              {"buyer", "0.00000000"},
              {"seller", "0.00000000"}}},
            {"canTrade", true},
            {"canWithdraw", true},
            {"canDeposit", true},
            {"brokered", false},
            {"requireSelfTradePrevention", false},
            {"preventSor", false},
            {"updateTime", account.update_time_ms},
            {"accountType", account.account_type},
            {"balances", balances},
            {"permissions", json::array({account.account_type})},
            {"uid", account.uid}};
  if (faults_.malformed_account > 0) {
    --faults_.malformed_account;
    const std::string& kind = faults_.malformed_account_kind;
    json& list = body["balances"];
    if (list.empty()) list.push_back(json{{"asset", "BTC"}, {"free", "1.00000000"}, {"locked", "0.00000000"}});
    if (kind == "truncated") {
      SimResponse r;
      r.body = body.dump();
      r.body = r.body.substr(0, r.body.size() / 2);
      return r;
    }
    if (kind == "bad-decimal") list[0]["free"] = "1.2.3";
    if (kind == "missing-balances") body.erase("balances");
    if (kind == "duplicate-asset") list.push_back(list[0]);
    if (kind == "negative") list[0]["free"] = "-0.00000001";
  }
  return json_response(body);
}

SimResponse Simulator::my_trades(const Params& params, const std::string& api_key) {
  if (params.count("symbol") == 0) return mandatory("symbol");
  const std::string& symbol = params.at("symbol");
  if (books_.count(symbol) == 0) return error_response(400, -1121, "Invalid symbol.");
  const auto order_id = integer_param(params, "orderId");
  const auto from_id = integer_param(params, "fromId");
  const auto start = integer_param(params, "startTime");
  const auto end = integer_param(params, "endTime");
  for (const char* name : {"orderId", "fromId", "startTime", "endTime", "limit"}) {
    if (params.count(name) != 0 && !integer_param(params, name)) {
      return error_response(
          400, -1100,
          std::string("Illegal characters found in parameter '") + name + "'; legal range is '^[0-9]{1,20}$'.");
    }
  }
  // The combinations Binance serves (CHANGELOG 2022-12-05): symbol alone, or
  // with orderId, startTime, endTime, fromId, startTime+endTime, orderId+fromId.
  if ((from_id && (start || end)) || (order_id && (start || end))) {
    return error_response(400, -1128, "Combination of optional parameters invalid.");
  }
  if (start && end && *end - *start > 86'400'000) {
    return error_response(400, -1127, "More than 24 hours between startTime and endTime.");
  }
  // One side of the window alone: Binance documents at most 24 hours between
  // them and not what it does with one; the strict reading is that the other
  // side is 24 hours away, so a client that counted on more cannot pass here.
  std::int64_t window_start = std::numeric_limits<std::int64_t>::min();
  std::int64_t window_end = std::numeric_limits<std::int64_t>::max();
  if (start) {
    window_start = *start;
    window_end = end ? *end : *start + 86'400'000;
  } else if (end) {
    window_start = *end - 86'400'000;
    window_end = *end;
  }
  // Default 500, at most 1000 (clamped: what Binance does with more was not checked).
  const std::int64_t limit = std::clamp<std::int64_t>(integer_param(params, "limit").value_or(500), 1, 1000);
  std::vector<const Trade*> matching;
  for (const Trade& t : trades_) {
    if (t.api_key != api_key || t.symbol != symbol) continue;
    if (order_id && t.order_id != *order_id) continue;
    if (from_id && t.id < *from_id) continue;
    if (t.time_ms < window_start || t.time_ms > window_end) continue;
    matching.push_back(&t);
  }
  // fromId or startTime: the oldest first from there; otherwise the most recent.
  std::size_t first = 0;
  if (!from_id && !start && matching.size() > static_cast<std::size_t>(limit)) {
    first = matching.size() - static_cast<std::size_t>(limit);
  }
  json list = json::array();
  for (std::size_t i = first; i < matching.size() && list.size() < static_cast<std::size_t>(limit); ++i) {
    list.push_back(trade_json(*matching[i]));
  }
  return json_response(list);
}

}  // namespace backstop::sim
