// The trailing-stop pass's reads and writes besides the event store: which
// operations are due (their wake price reached, or not computed yet), their
// rows locked for an adjustment, and the wake prices / errors written back.
//
// Safe beside stop-monitor: lock() takes the ACTIVE rows FOR UPDATE SKIP LOCKED
// (a row an exit is writing right now is left to the next pass) and only then,
// in a new statement, looks for exits in flight. A claim updates its
// operation's row in the claim's own transaction, so a claim either committed
// before the lock was taken (and is seen) or waits for this transaction to end.
#pragma once

#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <vector>

#include "core/trailing.h"
#include "store/monitor_repository.h"

namespace backstop::store {

// An operation with what decides its trailing: its own rule and its tenant's.
struct TrailingRow {
  core::OperationId id;
  core::TenantId tenant;
  std::string symbol;
  std::optional<core::Side> side;
  std::optional<core::Decimal> entry;
  std::optional<core::Decimal> stop;
  std::optional<core::Decimal> initial_stop;
  std::optional<std::string> mode;  // the operation's own (NULL: the tenant's)
  std::optional<core::Decimal> offset;
  std::optional<core::Decimal> activation_price;
  std::optional<std::string> tenant_mode;
  std::optional<core::Decimal> tenant_offset;
  core::Decimal fee_pct;
  core::Decimal slippage_buffer_pct;
  std::optional<core::Decimal> wake_price;
};

// What a pass writes back per operation (with its STOP_ADJUSTED, if any).
struct TrailState {
  std::int64_t id = 0;
  std::optional<core::Decimal> wake_price;    // nullopt: not trailing (see error)
  std::optional<core::Decimal> initial_stop;  // set once, before the first adjustment
  std::optional<std::string> error;           // why it cannot trail
};

struct LockedRows {
  std::vector<TrailingRow> rows;        // locked, ACTIVE, no exit in flight
  std::vector<std::int64_t> in_flight;  // ACTIVE but an exit is under way: left alone
  std::vector<std::int64_t> skipped;    // closed, or locked by someone else right now
};

class TrailingRepository {
 public:
  // Ids of ACTIVE operations whose wake price these prices reached, plus, with
  // `unarmed`, those whose wake price is not computed yet (own rule, or a
  // tenant default); id order.
  static std::vector<std::int64_t> due(pqxx::transaction_base& tx, const std::vector<SymbolPrice>& prices,
                                       const ScanFilter& filter, bool unarmed);
  // The rows without locking (dry runs).
  static std::vector<TrailingRow> read(pqxx::transaction_base& tx, const std::vector<std::int64_t>& ids);
  static LockedRows lock(pqxx::work& tx, const std::vector<std::int64_t>& ids);
  static void save(pqxx::work& tx, const std::vector<TrailState>& states);
};

}  // namespace backstop::store
