// The backfill job (DOMAIN §2): converts deprecated percentage stops of ACTIVE
// operations to absolute levels and gives each operation its genesis
// STOP_CONFIGURED event, batch by batch. Each batch is one transaction, so a
// run killed anywhere leaves whole batches done and the rest untouched; an
// operation with a genesis event is done, so re-running resumes where it
// stopped. Rows are taken with FOR UPDATE SKIP LOCKED: runs can overlap.
#pragma once

#include <cstdint>
#include <functional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "core/backfill.h"

namespace backstop::store {

struct BackfillOptions {
  int batch_size = 1000;
  bool dry_run = false;             // decide and report, write nothing
  std::size_t max_reported = 1000;  // changes/invalid rows kept for the report (counts stay exact)
};

struct BackfillChange {
  std::int64_t operation_id = 0;
  std::string side;
  std::optional<core::Decimal> entry_price;
  std::optional<core::Decimal> stop_price;
  std::optional<core::Decimal> target_price;
  bool stop_from_percent = false;
  bool target_from_percent = false;
};

struct BackfillProblem {
  std::int64_t operation_id = 0;
  std::string reason;
};

struct BackfillSummary {
  bool dry_run = false;
  std::int64_t batches = 0;
  std::int64_t scanned = 0;
  std::int64_t configured = 0;         // genesis events written (or that would be, in dry-run)
  std::int64_t stops_converted = 0;    // stop_price computed from stop_loss_percent
  std::int64_t targets_converted = 0;  // target_price computed from stop_gain_percent
  std::int64_t already_done = 0;       // genesis written by a concurrent run meanwhile
  std::int64_t nothing_to_configure = 0;
  std::int64_t invalid = 0;
  std::vector<BackfillChange> changes;
  std::vector<BackfillProblem> problems;  // invalid rows and rows with nothing to configure
  double seconds = 0;
};

BackfillSummary run_backfill(pqxx::connection& connection, const BackfillOptions& options);

}  // namespace backstop::store
