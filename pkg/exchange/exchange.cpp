#include "exchange/exchange.h"

#include <openssl/evp.h>

#include "core/enum_names.h"
#include "core/hex.h"

namespace backstop::exchange {
namespace {

constexpr core::NameTable<OrderStatus, 8> kStatuses{{
    {OrderStatus::kNew, "NEW"},
    {OrderStatus::kPartiallyFilled, "PARTIALLY_FILLED"},
    {OrderStatus::kFilled, "FILLED"},
    {OrderStatus::kCanceled, "CANCELED"},
    {OrderStatus::kPendingCancel, "PENDING_CANCEL"},
    {OrderStatus::kRejected, "REJECTED"},
    {OrderStatus::kExpired, "EXPIRED"},
    {OrderStatus::kExpiredInMatch, "EXPIRED_IN_MATCH"},
}};

}  // namespace

std::string_view to_string(ErrorClass error_class) {
  switch (error_class) {
    case ErrorClass::kRetryable:
      return "retryable";
    case ErrorClass::kStatusUnknown:
      return "status-unknown";
    case ErrorClass::kTerminal:
      return "terminal";
    case ErrorClass::kRateLimited:
      return "rate-limited";
    case ErrorClass::kBanned:
      return "banned";
  }
  return "unknown";
}

std::string ExchangeError::describe() const {
  std::string text = std::string(to_string(error_class));
  if (http_status != 0) text += " HTTP " + std::to_string(http_status);
  if (code != 0) text += " code " + std::to_string(code);
  return text + ": " + message;
}

std::string_view to_string(OrderStatus status) { return core::name_of(kStatuses, status); }

std::optional<OrderStatus> parse_order_status(std::string_view text) { return core::value_of(kStatuses, text); }

std::optional<Decimal> Order::average_price() const {
  if (!executed_qty.is_positive()) return std::nullopt;
  return Decimal::div(cummulative_quote_qty, executed_qty, core::Rounding::kHalfUp);
}

Decimal Account::free(const std::string& asset) const {
  const auto it = balances.find(asset);
  return it == balances.end() ? Decimal() : it->second.free;
}

bool Order::done() const { return status != OrderStatus::kNew && status != OrderStatus::kPartiallyFilled; }

std::optional<Decimal> market_quantity(const SymbolRules& rules, Decimal wanted, Decimal price) {
  const bool market_lot = rules.market_step_size && rules.market_step_size->is_positive();
  const Decimal step = market_lot ? *rules.market_step_size : rules.step_size;
  const Decimal min_qty = market_lot && rules.market_min_qty ? *rules.market_min_qty : rules.min_qty;
  const Decimal max_qty =
      market_lot && rules.market_max_qty && rules.market_max_qty->is_positive() ? *rules.market_max_qty : rules.max_qty;
  Decimal quantity = wanted;
  if (max_qty.is_positive() && quantity > max_qty) quantity = max_qty;  // the rest goes in the next attempt
  if (step.is_positive()) quantity = quantity.round_down_to_step(step);
  if (!quantity.is_positive() || quantity < min_qty) return std::nullopt;
  if (rules.min_notional && Decimal::mul(quantity, price, core::Rounding::kDown) < *rules.min_notional) {
    return std::nullopt;
  }
  return quantity;
}

std::string client_order_id(std::string_view execution_token, int attempt) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(execution_token.data(), execution_token.size(), digest, &length, EVP_sha256(), nullptr);
  // 15 bytes = 30 hex digits: "bs" + 30 + "-" + attempt stays within Binance's 36 characters.
  const std::string id = "bs" + core::to_hex(digest, 15);
  return id + "-" + std::to_string(attempt);
}

}  // namespace backstop::exchange
