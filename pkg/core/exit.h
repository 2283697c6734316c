// The life of one protective exit as a pure state machine (DOMAIN §3). What
// the exit's events say is folded into an ExitState; given that state, what the
// exchange answered (or nothing), the symbol's lot rules and the time, one step
// says what to record and what to ask the exchange next. No I/O: the stop
// monitor feeds it the store's events and the exchange's answers, the
// simulation harness (tests/sim) a model of both.
//
// The promises it keeps:
//   * the target quantity is fixed by the claim; attempts only add fills;
//   * an attempt's client order id is sent once; a later attempt gets the next
//     id (token + attempt number), so no id can be filled twice;
//   * after an unknown outcome or "no such order" (-2013) nothing is re-sent
//     before the fence: sent_at + the send deadline + recvWindow + the
//     exchange's processing window + twice the maximum clock offset + a margin
//     (ExitTiming::fence). A request still on the wire then
//     arrives with a timestamp the exchange refuses (-1021), and one the
//     exchange took has run out of time to execute (Binance's backend gives up
//     after 10 s with -1007). The query is repeated after the fence, before any
//     re-send;
//   * a failure that retrying can change (network, 5xx, 429/418, -2010, an order
//     that EXPIRED with nothing filled, rules unavailable) keeps the exit alive:
//     BLOCKED with reason EXCHANGE_RETRY and a retry time with exponential
//     backoff; only a refusal retrying cannot change (a filter or parameter
//     error, a symbol that is not listed) is FAILED, and the position is then
//     visibly unprotected;
//   * a remainder is dust only below the symbol's minimum quantity or notional;
//     above max_qty an exit is split into several orders;
//   * an attempt never sells more than the account holds: when the caller
//     knows the balance (ExitContext::sellable, ::locked), what the account
//     does not hold at all is recorded as not held (ExitState::not_held) and
//     never sold; the order is for what is free; what open orders lock waits
//     (BLOCKED EXCHANGE_RETRY) until they release it or fill; nothing held
//     above the minimum and nothing filled: FAILED NOT_HELD (issue 13,
//     docs/design/account-truth.md §3).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/decimal.h"
#include "core/event.h"
#include "core/guardrails.h"
#include "core/projection.h"

namespace backstop::core {

// The symbol's limits for a market order: LOT_SIZE or MARKET_LOT_SIZE, and
// MIN_NOTIONAL / NOTIONAL.
struct LotRules {
  Decimal step;                         // 0: any quantity
  Decimal min_qty;                      // 0: no minimum
  std::optional<Decimal> max_qty;       // a larger exit goes out as several orders
  std::optional<Decimal> min_notional;  // at the decisive price
};

// The next order's quantity for `remaining` at `price`: capped at max_qty,
// rounded down to the step; nullopt when `remaining` is dust (below the minimum
// quantity or notional).
[[nodiscard]] std::optional<Decimal> next_order_quantity(const LotRules& rules, Decimal remaining, Decimal price);

struct ExitTiming {
  std::chrono::milliseconds recv_window{5000};           // what the client sends as recvWindow
  std::chrono::milliseconds exchange_processing{10000};  // the exchange may still execute this long after arrival
  std::chrono::milliseconds max_clock_offset{1000};      // |exchange clock - database clock| at most
  std::chrono::milliseconds margin{1000};
  // An attempt is sent no later than this after its EXECUTION_SUBMITTED (a
  // process that stalled in between does not send it: the request's timestamp
  // would be newer than the fence assumes).
  std::chrono::milliseconds send_deadline{3000};
  std::chrono::milliseconds backoff_first{1000};  // after the first retryable failure; doubles
  std::chrono::milliseconds backoff_max{60000};
  std::chrono::milliseconds working_recheck{1000};  // an order still working: look again after
  // The request's timestamp is at most send_deadline after sent_at (plus the
  // sender's clock offset); the exchange takes it at most recv_window after its
  // timestamp by the exchange's clock, and may execute it exchange_processing
  // later; the database's clock is at most max_clock_offset from the
  // exchange's (and the sender's, which syncs with the exchange).
  [[nodiscard]] TimePoint fence(TimePoint sent_at) const {
    return sent_at + send_deadline + recv_window + exchange_processing + 2 * max_clock_offset + margin;
  }
  [[nodiscard]] bool may_send(TimePoint sent_at, TimePoint now) const { return now <= sent_at + send_deadline; }
  [[nodiscard]] std::chrono::milliseconds backoff(int failures) const;
};

inline constexpr std::string_view kExchangeRetry = "EXCHANGE_RETRY";  // BLOCKED reason of a retryable failure
inline constexpr std::string_view kNotHeld = "NOT_HELD";  // FAILED reason: the account holds nothing to sell

// What one of the exit's events says, typed (the store keeps it as columns
// and a JSON payload; the adapter converts).
struct ExitFact {
  EventType type = EventType::kStopTriggered;
  TimePoint at;                       // when it was recorded (database clock)
  std::optional<Decimal> quantity;    // STOP_TRIGGERED: the target
  int attempt = 0;                    // EXECUTION_SUBMITTED: its number
  std::string client_order_id;        // EXECUTION_SUBMITTED
  Decimal order_quantity;             // EXECUTION_SUBMITTED
  std::optional<Decimal> filled;      // filled so far (SUBMITTED: before this attempt; BLOCKED/EXECUTED/FAILED: in all)
  std::optional<Decimal> quote;       // quote quantity of `filled`
  std::optional<Decimal> not_held;    // SUBMITTED and after: what the account lacked, in all
  std::optional<std::string> reason;  // BLOCKED
  std::optional<TimePoint> retry_at;  // BLOCKED EXCHANGE_RETRY
  int failures = 0;                   // BLOCKED EXCHANGE_RETRY: consecutive retryable failures
  bool ends_attempt = false;          // BLOCKED: the open attempt was never sent (held before sending)
};

struct ExitState {
  ExecutionStatus status = ExecutionStatus::kTriggered;
  Decimal target;  // fixed by the claim
  Decimal filled;  // by attempts whose end is known
  Decimal quote;
  Decimal not_held;  // what the account did not hold when an attempt was sized: never sold
  int attempts = 0;  // the highest attempt number submitted
  // The last submission, when its end is not known: it may exist at the exchange.
  bool open = false;
  std::string client_order_id;
  Decimal order_quantity;
  TimePoint sent_at;
  std::optional<std::string> blocked_reason;
  std::optional<TimePoint> retry_at;
  int failures = 0;
  [[nodiscard]] Decimal remaining() const { return target - filled - not_held; }
  [[nodiscard]] bool finished() const {
    return status == ExecutionStatus::kExecuted || status == ExecutionStatus::kFailed;
  }
};

[[nodiscard]] ExitState fold_exit(const std::vector<ExitFact>& facts);
[[nodiscard]] ExitState apply_exit_fact(ExitState state, const ExitFact& fact);

// What the exchange said about the current attempt.
enum class AnswerKind {
  kOrder,      // the order, found or just placed
  kNotFound,   // a query: no such order (-2013)
  kNotPlaced,  // certainly not executed, retrying may succeed (429/418, -2010, -1021, refused connection, back-off)
  kUnknown,    // may or may not exist (timeout, 5xx, -1006, -1007, an answer we cannot read)
  kRejected,   // refused for a reason retrying cannot change (filters, parameters)
};
[[nodiscard]] std::string_view to_string(AnswerKind kind);

struct OrderView {
  std::string order_id;
  std::string status;  // NEW, FILLED, EXPIRED, ...
  bool final = true;   // no further fills will come
  Decimal executed;
  Decimal quote;
};

struct ExchangeAnswer {
  AnswerKind kind = AnswerKind::kUnknown;
  // When the request was sent. "No such order" proves nothing about any time
  // after the exchange looked: only a query sent after the fence allows a
  // re-send (an answer can sit in a stalled process for seconds).
  TimePoint asked_at;
  std::optional<OrderView> order;
  std::string error;                    // the exchange's full text
  std::optional<TimePoint> not_before;  // Retry-After
};

// An event the step wants recorded, typed. Each is appended (and committed)
// before the action that follows it.
struct ExitRecord {
  EventType type = EventType::kExecutionSubmitted;
  int attempt = 0;
  std::string client_order_id;
  Decimal order_quantity;
  Decimal filled;  // SUBMITTED: before this attempt; otherwise in all
  Decimal quote;
  Decimal not_held;                   // in all, this record included
  std::optional<std::string> reason;  // BLOCKED, FAILED NOT_HELD: its reason
  std::optional<std::string> error;   // BLOCKED EXCHANGE_RETRY / FAILED: the full error text
  std::optional<TimePoint> retry_at;
  int failures = 0;
  std::optional<std::string> order_id;
  std::optional<std::string> order_status;
  std::optional<Decimal> dust;  // EXECUTED with a remainder below the minimum
};

enum class ExitActionKind {
  kSend,   // place the market order `client_order_id` for `quantity`
  kQuery,  // query `client_order_id`
  kWait,   // nothing now: look again at `not_before` (a later pass)
  kDone,   // EXECUTED or FAILED
};
[[nodiscard]] std::string_view to_string(ExitActionKind kind);

struct ExitAction {
  ExitActionKind kind = ExitActionKind::kWait;
  std::string client_order_id;
  Decimal quantity;
  std::optional<TimePoint> not_before;
};

struct ExitStep {
  std::vector<ExitRecord> records;
  ExitAction next;
};

// client order id of attempt n, given by the caller (it hashes the token).
using ClientIdOf = std::string (*)(std::string_view token, int attempt);

struct ExitContext {
  std::string token;
  ClientIdOf client_id = nullptr;
  std::optional<LotRules> rules;  // nullopt: not known now (exchangeInfo unreachable)
  bool symbol_listed = true;      // false: exchangeInfo answered and does not list it
  Decimal price;                  // the decisive price (for the notional check)
  // The free base asset this exit may sell now (the account's free balance,
  // less what earlier exits of the same read were given, less what this
  // exit's attempts filled since the read); nullopt: not known (no account
  // read, or it failed or is too old), the order goes out for what remains.
  std::optional<Decimal> sellable;
  // With `sellable`: what of the asset is held but not this exit's to sell
  // now: locked by open orders (free once they are cancelled, gone if they
  // fill), or about to be sold by other exits (theirs if their orders fill).
  // Never recorded as not held.
  Decimal locked;
  TimePoint now;
  ExitTiming timing;
};

// The next submission of an exit that guardrails let go (TRIGGERED, BLOCKED,
// or a retry whose time has come): attempt n + 1 for what remains, or the
// end when the remainder is dust.
[[nodiscard]] ExitStep start_attempt(const ExitState& state, const ExitContext& context);

// What to do with an open attempt and no answer in hand (a later pass, or a
// process that took over): ask the exchange.
[[nodiscard]] ExitStep resume_open(const ExitState& state, const ExitContext& context);

// The exchange answered about the open attempt.
[[nodiscard]] ExitStep on_answer(const ExitState& state, const ExchangeAnswer& answer, const ExitContext& context);

// What `record`, appended at `at`, says as a fact of the exit; and the state after it.
[[nodiscard]] ExitFact exit_fact_of(const ExitRecord& record, TimePoint at);
[[nodiscard]] ExitState apply_exit_record(ExitState state, const ExitRecord& record, TimePoint at);

// A BLOCKED EXCHANGE_RETRY whose retry time has not come (the exit waits, nothing is recorded).
[[nodiscard]] bool waiting_for_retry(const ExitState& state, TimePoint now);

}  // namespace backstop::core
