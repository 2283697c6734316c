#include "exchange/binance_protocol.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "core/hex.h"

namespace backstop::exchange::binance {
namespace {

using nlohmann::json;

json parse_json(std::string_view body, std::string_view what) {
  try {
    return json::parse(body);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers like 1e2222 (found by fuzzing)
    std::string shown(body.substr(0, 120));
    throw ProtocolError("malformed JSON in " + std::string(what) + " (" + e.what() + "): \"" + shown +
                        (body.size() > 120 ? "...\"" : "\""));
  }
}

const json& field(const json& object, const char* name, const std::string& where) {
  if (!object.is_object()) throw ProtocolError(where + ": expected a JSON object");
  const auto it = object.find(name);
  if (it == object.end()) throw ProtocolError(where + ": missing field \"" + name + "\"");
  return *it;
}

std::string text_field(const json& object, const char* name, const std::string& where) {
  const json& value = field(object, name, where);
  if (!value.is_string()) throw ProtocolError(where + "." + name + ": expected a string, got " + value.dump());
  return value.get<std::string>();
}

Decimal decimal_field(const json& object, const char* name, const std::string& where) {
  const std::string text = text_field(object, name, where);
  try {
    return Decimal::parse_rounded(text, core::Rounding::kHalfUp);
  } catch (const core::DecimalError& e) {
    throw ProtocolError(where + "." + name + ": " + e.what());
  }
}

// maxQty / maxPrice can exceed NUMERIC(20,8) on some symbols: cap them.
Decimal decimal_field_capped(const json& object, const char* name, const std::string& where) {
  try {
    return decimal_field(object, name, where);
  } catch (const ProtocolError&) {
    const std::string text = text_field(object, name, where);
    if (!text.empty() && text.find_first_not_of("0123456789.") == std::string::npos) {
      return Decimal::from_units(Decimal::kMaxRaw);
    }
    throw;
  }
}

std::int64_t integer_field(const json& object, const char* name, const std::string& where) {
  const json& value = field(object, name, where);
  if (!value.is_number_integer())
    throw ProtocolError(where + "." + name + ": expected an integer, got " + value.dump());
  return value.get<std::int64_t>();
}

const json& array_of(const json& document, const std::string& where) {
  if (!document.is_array()) throw ProtocolError(where + ": expected a JSON array");
  return document;
}

bool bool_field(const json& object, const char* name, const std::string& where) {
  const json& value = field(object, name, where);
  if (!value.is_boolean()) throw ProtocolError(where + "." + name + ": expected a boolean, got " + value.dump());
  return value.get<bool>();
}

std::string nonempty_text_field(const json& object, const char* name, const std::string& where) {
  std::string text = text_field(object, name, where);
  if (text.empty()) throw ProtocolError(where + "." + name + ": empty");
  return text;
}

// A balance: digits beyond the 8th are rounded down, so that what Backstop
// believes it may sell is never more than the exchange holds.
Decimal balance_field(const json& object, const char* name, const std::string& where) {
  const std::string text = text_field(object, name, where);
  Decimal value;
  try {
    value = Decimal::parse_rounded(text, core::Rounding::kDown);
  } catch (const core::DecimalError& e) {
    throw ProtocolError(where + "." + name + ": " + e.what());
  }
  if (value.is_negative()) throw ProtocolError(where + "." + name + ": negative " + value.to_string());
  return value;
}

Decimal non_negative_field(const json& object, const char* name, const std::string& where) {
  const Decimal value = decimal_field(object, name, where);
  if (value.is_negative()) throw ProtocolError(where + "." + name + ": negative " + value.to_string());
  return value;
}

Decimal positive_field(const json& object, const char* name, const std::string& where) {
  const Decimal value = decimal_field(object, name, where);
  if (!value.is_positive()) throw ProtocolError(where + "." + name + ": not positive " + value.to_string());
  return value;
}

// The fields an order answer shares (POST/GET/DELETE /api/v3/order, openOrders);
// `client_id_field` names the order's own client id in this answer.
Order order_fields(const json& document, const std::string& where, const char* client_id_field) {
  Order order;
  order.symbol = text_field(document, "symbol", where);
  order.order_id = integer_field(document, "orderId", where);
  order.client_order_id = text_field(document, client_id_field, where);
  const std::string status = text_field(document, "status", where);
  const auto parsed = parse_order_status(status);
  if (!parsed) throw ProtocolError(where + ".status: unknown status \"" + status + "\"");
  order.status = *parsed;
  order.orig_qty = decimal_field(document, "origQty", where);
  order.executed_qty = decimal_field(document, "executedQty", where);
  order.cummulative_quote_qty = decimal_field(document, "cummulativeQuoteQty", where);
  if (order.executed_qty.is_negative() || order.executed_qty > order.orig_qty) {
    throw ProtocolError(where + ": executedQty " + order.executed_qty.to_string() + " outside 0.." +
                        order.orig_qty.to_string());
  }
  return order;
}

}  // namespace

std::string sign(std::string_view secret, std::string_view payload) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), digest, &length) == nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return core::to_hex(digest, length);
}

std::string url_encode(std::string_view value) {
  static const char* const kHex = "0123456789ABCDEF";
  std::string out;
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    }
  }
  return out;
}

PriceSnapshot parse_ticker_prices(std::string_view body) {
  const json document = parse_json(body, "ticker/price");
  PriceSnapshot snapshot;
  std::size_t i = 0;
  for (const json& item : array_of(document, "ticker/price")) {
    const std::string where = "ticker/price[" + std::to_string(i++) + "]";
    const std::string symbol = text_field(item, "symbol", where);
    snapshot[symbol].last = decimal_field(item, "price", where);
  }
  return snapshot;
}

void merge_book_tickers(std::string_view body, PriceSnapshot& into) {
  const json document = parse_json(body, "ticker/bookTicker");
  std::size_t i = 0;
  for (const json& item : array_of(document, "ticker/bookTicker")) {
    const std::string where = "ticker/bookTicker[" + std::to_string(i++) + "]";
    const std::string symbol = text_field(item, "symbol", where);
    const auto it = into.find(symbol);
    if (it == into.end()) continue;  // no last price: not tradable for us
    it->second.bid = decimal_field(item, "bidPrice", where);
    it->second.ask = decimal_field(item, "askPrice", where);
  }
}

ExchangeRules parse_exchange_info(std::string_view body) {
  const json document = parse_json(body, "exchangeInfo");
  ExchangeRules rules;
  std::size_t i = 0;
  for (const json& s : array_of(field(document, "symbols", "exchangeInfo"), "exchangeInfo.symbols")) {
    const std::string where = "exchangeInfo.symbols[" + std::to_string(i++) + "]";
    SymbolRules r;
    r.symbol = text_field(s, "symbol", where);
    r.trading = text_field(s, "status", where) == "TRADING";
    if (s.contains("baseAsset")) r.base_asset = text_field(s, "baseAsset", where);
    bool has_lot = false;
    std::size_t j = 0;
    for (const json& f : array_of(field(s, "filters", where), where + ".filters")) {
      const std::string fw = where + ".filters[" + std::to_string(j++) + "]";
      const std::string type = text_field(f, "filterType", fw);
      if (type == "LOT_SIZE") {
        r.step_size = decimal_field(f, "stepSize", fw);
        r.min_qty = decimal_field(f, "minQty", fw);
        r.max_qty = decimal_field_capped(f, "maxQty", fw);
        has_lot = true;
      } else if (type == "MARKET_LOT_SIZE") {
        r.market_step_size = decimal_field(f, "stepSize", fw);
        r.market_min_qty = decimal_field(f, "minQty", fw);
        r.market_max_qty = decimal_field_capped(f, "maxQty", fw);
      } else if (type == "MIN_NOTIONAL" || type == "NOTIONAL") {
        const Decimal min = decimal_field(f, "minNotional", fw);
        if (!r.min_notional || min > *r.min_notional) r.min_notional = min;
      } else if (type == "PRICE_FILTER") {
        r.tick_size = decimal_field(f, "tickSize", fw);
      }
    }
    if (!has_lot) throw ProtocolError(where + ": no LOT_SIZE filter for " + r.symbol);
    rules[r.symbol] = r;
  }
  return rules;
}

Order parse_order(std::string_view body) { return order_fields(parse_json(body, "order"), "order", "clientOrderId"); }

Order parse_cancel(std::string_view body) {
  return order_fields(parse_json(body, "cancel"), "cancel", "origClientOrderId");
}

Account parse_account(std::string_view body) {
  const json document = parse_json(body, "account");
  const std::string where = "account";
  if (!document.is_object()) throw ProtocolError(where + ": expected a JSON object");
  Account account;
  account.account_type = nonempty_text_field(document, "accountType", where);
  account.can_trade = bool_field(document, "canTrade", where);
  account.update_time_ms = integer_field(document, "updateTime", where);
  if (document.contains("uid")) account.uid = integer_field(document, "uid", where);
  std::size_t i = 0;
  for (const json& p : array_of(field(document, "permissions", where), where + ".permissions")) {
    const std::string pw = where + ".permissions[" + std::to_string(i++) + "]";
    if (!p.is_string()) throw ProtocolError(pw + ": expected a string, got " + p.dump());
    account.permissions.push_back(p.get<std::string>());
  }
  if (document.contains("commissionRates")) {
    const json& rates = document["commissionRates"];
    const std::string rw = where + ".commissionRates";
    account.maker_rate = non_negative_field(rates, "maker", rw);
    account.taker_rate = non_negative_field(rates, "taker", rw);
  }
  i = 0;
  for (const json& b : array_of(field(document, "balances", where), where + ".balances")) {
    const std::string bw = where + ".balances[" + std::to_string(i++) + "]";
    const std::string asset = nonempty_text_field(b, "asset", bw);
    AssetBalance balance;
    balance.free = balance_field(b, "free", bw);
    balance.locked = balance_field(b, "locked", bw);
    // Two lines for one asset: which one is the balance? Refuse rather than guess.
    if (!account.balances.emplace(asset, balance).second) {
      throw ProtocolError(bw + ".asset: \"" + asset + "\" appears twice");
    }
  }
  return account;
}

std::vector<AccountTrade> parse_my_trades(std::string_view body) {
  const json document = parse_json(body, "myTrades");
  std::vector<AccountTrade> trades;
  std::set<std::int64_t> ids;
  std::size_t i = 0;
  for (const json& t : array_of(document, "myTrades")) {
    const std::string where = "myTrades[" + std::to_string(i++) + "]";
    AccountTrade trade;
    trade.symbol = nonempty_text_field(t, "symbol", where);
    trade.id = integer_field(t, "id", where);
    trade.order_id = integer_field(t, "orderId", where);
    trade.order_list_id = integer_field(t, "orderListId", where);
    trade.price = positive_field(t, "price", where);
    trade.qty = positive_field(t, "qty", where);
    trade.quote_qty = non_negative_field(t, "quoteQty", where);
    trade.commission = non_negative_field(t, "commission", where);
    trade.commission_asset = text_field(t, "commissionAsset", where);
    trade.time_ms = integer_field(t, "time", where);
    trade.is_buyer = bool_field(t, "isBuyer", where);
    trade.is_maker = bool_field(t, "isMaker", where);
    // One fill answered twice would be counted twice as a sale elsewhere.
    if (!ids.insert(trade.id).second) {
      throw ProtocolError(where + ".id: trade " + std::to_string(trade.id) + " appears twice");
    }
    trades.push_back(std::move(trade));
  }
  return trades;
}

std::vector<OpenOrder> parse_open_orders(std::string_view body) {
  const json document = parse_json(body, "openOrders");
  std::vector<OpenOrder> orders;
  std::size_t i = 0;
  for (const json& o : array_of(document, "openOrders")) {
    const std::string where = "openOrders[" + std::to_string(i++) + "]";
    OpenOrder open;
    open.order = order_fields(o, where, "clientOrderId");
    if (open.order.done()) {
      throw ProtocolError(where + ".status: " + std::string(to_string(open.order.status)) + " is not an open status");
    }
    const std::string side = text_field(o, "side", where);
    const auto parsed_side = core::parse_side(side);
    if (!parsed_side) throw ProtocolError(where + ".side: unknown side \"" + side + "\"");
    open.side = *parsed_side;
    open.type = nonempty_text_field(o, "type", where);
    open.price = non_negative_field(o, "price", where);
    open.time_ms = integer_field(o, "time", where);
    orders.push_back(std::move(open));
  }
  return orders;
}

std::optional<UserStreamEvent> parse_user_stream_event(std::string_view body) {
  const json document = parse_json(body, "user stream event");
  if (!document.is_object()) throw ProtocolError("user stream event: expected a JSON object");
  if (!document.contains("event")) return std::nullopt;  // {"id":...,"status":200,"result":...}
  UserStreamEvent event;
  event.subscription_id = integer_field(document, "subscriptionId", "user stream event");
  const json& e = document["event"];
  const std::string where = "event";
  event.type = nonempty_text_field(e, "e", where);
  event.event_time_ms = integer_field(e, "E", where);
  if (event.type == "outboundAccountPosition") {
    event.kind = UserStreamEvent::Kind::kAccountPosition;
    event.last_update_ms = integer_field(e, "u", where);
    std::size_t i = 0;
    for (const json& b : array_of(field(e, "B", where), where + ".B")) {
      const std::string bw = where + ".B[" + std::to_string(i++) + "]";
      const std::string asset = nonempty_text_field(b, "a", bw);
      AssetBalance balance;
      balance.free = balance_field(b, "f", bw);
      balance.locked = balance_field(b, "l", bw);
      if (!event.balances.emplace(asset, balance).second) {
        throw ProtocolError(bw + ".a: \"" + asset + "\" appears twice");
      }
    }
  } else if (event.type == "balanceUpdate") {
    event.kind = UserStreamEvent::Kind::kBalanceUpdate;
    event.asset = nonempty_text_field(e, "a", where);
    event.delta = decimal_field(e, "d", where);
    event.clear_time_ms = integer_field(e, "T", where);
  } else if (event.type == "executionReport") {
    event.kind = UserStreamEvent::Kind::kExecutionReport;
    UserStreamEvent::Execution& x = event.execution;
    x.symbol = nonempty_text_field(e, "s", where);
    x.client_order_id = text_field(e, "c", where);
    x.orig_client_order_id = text_field(e, "C", where);
    const std::string side = text_field(e, "S", where);
    const auto parsed_side = core::parse_side(side);
    if (!parsed_side) throw ProtocolError(where + ".S: unknown side \"" + side + "\"");
    x.side = *parsed_side;
    x.order_type = nonempty_text_field(e, "o", where);
    x.execution_type = nonempty_text_field(e, "x", where);
    const std::string status = text_field(e, "X", where);
    const auto parsed_status = parse_order_status(status);
    if (!parsed_status) throw ProtocolError(where + ".X: unknown status \"" + status + "\"");
    x.order_status = *parsed_status;
    x.order_id = integer_field(e, "i", where);
    x.trade_id = integer_field(e, "t", where);
    x.transaction_time_ms = integer_field(e, "T", where);
    x.order_qty = non_negative_field(e, "q", where);
    x.last_qty = non_negative_field(e, "l", where);
    x.cumulative_qty = non_negative_field(e, "z", where);
    x.last_price = non_negative_field(e, "L", where);
    x.commission = non_negative_field(e, "n", where);
    if (!field(e, "N", where).is_null()) x.commission_asset = text_field(e, "N", where);
    x.is_maker = bool_field(e, "m", where);
    if (x.cumulative_qty > x.order_qty && x.order_qty.is_positive()) {
      throw ProtocolError(where + ": z " + x.cumulative_qty.to_string() + " outside 0.." + x.order_qty.to_string());
    }
  } else if (event.type == "eventStreamTerminated") {
    event.kind = UserStreamEvent::Kind::kStreamTerminated;
  }
  return event;
}

std::string ws_api_signed_request(std::string_view id, std::string_view method,
                                  std::vector<std::pair<std::string, std::string>> params, std::string_view secret) {
  std::sort(params.begin(), params.end());
  std::string payload;
  json object = json::object();
  for (const auto& [name, value] : params) {
    payload += (payload.empty() ? "" : "&") + name + "=" + value;
    object[name] = value;
  }
  object["signature"] = sign(secret, payload);
  return json{{"id", id}, {"method", method}, {"params", object}}.dump();
}

std::optional<WsApiAnswer> parse_ws_api_answer(std::string_view body) {
  const json document = parse_json(body, "WebSocket API answer");
  if (!document.is_object()) throw ProtocolError("WebSocket API answer: expected a JSON object");
  if (!document.contains("status")) return std::nullopt;  // an event
  const std::string where = "WebSocket API answer";
  WsApiAnswer answer;
  const json& id = field(document, "id", where);
  if (id.is_string()) {
    answer.id = id.get<std::string>();
  } else if (id.is_number_integer()) {
    answer.id = std::to_string(id.get<std::int64_t>());
  } else if (!id.is_null()) {
    throw ProtocolError(where + ".id: expected a string, a number or null");
  }
  const std::int64_t status = integer_field(document, "status", where);
  if (status < 100 || status > 599)
    throw ProtocolError(where + ".status: " + std::to_string(status) + " is no HTTP status");
  answer.status = static_cast<int>(status);
  if (answer.status == 200) {
    const json& result = field(document, "result", where);
    if (result.is_object() && result.contains("subscriptionId")) {
      answer.subscription_id = integer_field(result, "subscriptionId", where + ".result");
    }
  } else {
    const json& error = field(document, "error", where);
    if (!error.is_object()) throw ProtocolError(where + ".error: expected an object");
    answer.error.code = static_cast<int>(integer_field(error, "code", where + ".error"));
    answer.error.message = text_field(error, "msg", where + ".error");
  }
  return answer;
}

int request_weight(std::string_view method, std::string_view path,
                   const std::vector<std::pair<std::string, std::string>>& params) {
  auto has = [&](std::string_view name) {
    return std::any_of(params.begin(), params.end(), [&](const auto& p) { return p.first == name; });
  };
  if (path == "/api/v3/exchangeInfo" || path == "/api/v3/account") return 20;
  if (path == "/api/v3/ticker/price" || path == "/api/v3/ticker/bookTicker") return has("symbol") ? 2 : 4;
  if (path == "/api/v3/myTrades") return has("orderId") ? 5 : 20;
  if (path == "/api/v3/openOrders") return has("symbol") ? 6 : 80;
  if (path == "/api/v3/order" && method == "GET") return 4;
  return 1;  // ping, time, a new order, a cancel
}

std::int64_t parse_server_time(std::string_view body) {
  return integer_field(parse_json(body, "time"), "serverTime", "time");
}

std::optional<StreamUpdate> merge_stream_message(std::string_view body, PriceSnapshot& quotes) {
  const json document = parse_json(body, "stream message");
  if (!document.is_object()) throw ProtocolError("stream message: expected a JSON object");
  const json& data = document.contains("data") ? document["data"] : document;  // combined streams wrap it
  const std::string where = "stream message";
  if (!data.is_object() || !data.contains("s")) return std::nullopt;  // e.g. {"result":null,"id":1}
  StreamUpdate update;
  update.symbol = text_field(data, "s", where);
  if (data.contains("e")) {
    if (text_field(data, "e", where) != "trade") return std::nullopt;
    const Decimal last = decimal_field(data, "p", where);
    update.trade_time_ms = integer_field(data, "T", where);
    quotes[update.symbol].last = last;
  } else {
    const Decimal bid = decimal_field(data, "b", where);
    const Decimal ask = decimal_field(data, "a", where);
    core::Quote& quote = quotes[update.symbol];
    quote.bid = bid;
    quote.ask = ask;
    if (quote.last.is_zero()) quote.last = bid;  // book-only streams
  }
  return update;
}

ErrorBody parse_error_body(std::string_view body) {
  try {
    const json document = json::parse(body);
    if (document.is_object() && document.contains("code") && document["code"].is_number_integer()) {
      ErrorBody e;
      e.code = document["code"].get<int>();
      if (document.contains("msg") && document["msg"].is_string()) e.message = document["msg"].get<std::string>();
      return e;
    }
  } catch (const json::exception&) {
  }
  return {0, std::string(body.substr(0, 500))};
}

ExchangeError classify_http_error(Call call, int http_status, std::string_view body,
                                  std::optional<std::chrono::seconds> retry_after) {
  const ErrorBody parsed = parse_error_body(body);
  ExchangeError error;
  error.http_status = http_status;
  error.code = parsed.code;
  error.message = parsed.message;
  error.retry_after = retry_after;
  const bool order = changes_state(call);
  if (http_status == 418) {
    error.error_class = ErrorClass::kBanned;
  } else if (http_status == 429 || parsed.code == -1003 || parsed.code == -1015) {
    error.error_class = ErrorClass::kRateLimited;
  } else if (http_status >= 500 || parsed.code == -1006 || parsed.code == -1007) {
    // The request reached the matching engine or may have: an order's fate is unknown.
    error.error_class = order ? ErrorClass::kStatusUnknown : ErrorClass::kRetryable;
  } else if (parsed.code == 0) {
    // Not an answer of the exchange (a proxy, a gateway, HTTP 408): an order
    // may have gone through; anything else can simply be asked again.
    error.error_class = order ? ErrorClass::kStatusUnknown : ErrorClass::kRetryable;
  } else if (call == Call::kPlaceOrder && parsed.code == -2010 &&
             parsed.message.find("Duplicate order") != std::string::npos) {
    // An order with this client id is open at the exchange: it exists, and may fill.
    error.error_class = ErrorClass::kStatusUnknown;
  } else if (parsed.code == -1013 || (parsed.code <= -1100 && parsed.code >= -1199)) {
    // A filter or a parameter the exchange will refuse however often it is sent.
    error.error_class = ErrorClass::kTerminal;
  } else {
    // The exchange refused this request and executed nothing (-2010 insufficient
    // balance while a balance is locked, -1021 timestamp, -1001, -2015 key or
    // permissions): retrying may succeed, with backoff and an alert if it persists.
    error.error_class = ErrorClass::kRetryable;
  }
  return error;
}

}  // namespace backstop::exchange::binance
