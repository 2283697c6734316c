// The event store: append events with their projections and outbox rows in the
// caller's transaction, read an operation's history, and rebuild projections
// from the log (replay) with a check against the live rows.
//
// One append, in one transaction, in this order:
//   1. lock the affected stop_executions and operation rows (so that events of
//      one execution are inserted in the order their projection sees them, and
//      a replay holding the table lock cannot miss an append in flight);
//   2. insert the events; an event whose token is already taken for its type
//      (the unique index of DOMAIN §3) is not inserted but returned as a duplicate;
//   3. write one outbox row per inserted event (same statement);
//   4. fold the inserted events into stop_executions and operation with the
//      pure core::apply_to_execution / core::apply_to_operation.
#pragma once

#include <cstdint>
#include <map>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "core/event.h"
#include "core/projection.h"

namespace backstop::store {

struct AppendResult {
  std::vector<core::Event> appended;    // with seq, event_id and occurred_at filled in
  std::vector<core::Event> duplicates;  // lost the race for their token: nothing was written
};

struct ReplayReport {
  std::int64_t events = 0;
  std::int64_t executions = 0;
  std::int64_t operations = 0;
  std::vector<std::string> differences;  // rebuilt vs live, one line each
  bool rewritten = false;                // the live projections were replaced by the rebuilt ones
};

class EventStore {
 public:
  // Throws std::invalid_argument for a malformed event (empty token, ...) and
  // core::ProjectionError for an impossible transition; the caller's
  // transaction is then unusable and must be rolled back.
  static AppendResult append(pqxx::work& tx, std::vector<core::Event> events);
  // Runs each statement of append() with no rows, so that the connection's first
  // append does not pay for them: a new backend loads the catalog entries of
  // every table, index and trigger a statement touches and builds its generic
  // plan on its first execution (20-45 ms for a claim's statements). Changes
  // nothing; the caller rolls `tx` back.
  static void prepare(pqxx::work& tx);

  static std::vector<core::Event> history(pqxx::transaction_base& tx, core::OperationId operation);

  // Those of `tokens` that exist, by token.
  static std::map<std::string, core::Execution> executions(pqxx::transaction_base& tx,
                                                           const std::vector<std::string>& tokens);

  // Rebuilds stop_executions and the operations' levels from stop_events alone
  // and compares them with the live rows. With `rewrite`, replaces what differs
  // (stop_executions entirely) while holding a lock that stops appends.
  static ReplayReport replay(pqxx::connection& connection, bool rewrite);
};

}  // namespace backstop::store
