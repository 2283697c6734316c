#include "store/backfill.h"

#include <chrono>
#include <nlohmann/json.hpp>

#include "runtime/fault.h"
#include "runtime/log.h"
#include "runtime/progress.h"
#include "store/db.h"
#include "store/event_store.h"

namespace backstop::store {
namespace {

// ACTIVE operations after `$1` without a genesis event, oldest first.
const char* const kSelectBatch =
    "SELECT id, tenant_id, symbol, side, average_entry_price, quantity, stop_price, target_price, "
    "stop_loss_percent, stop_gain_percent FROM operation o "
    "WHERE o.status = 'ACTIVE' AND o.id > $1 AND NOT EXISTS ("
    "  SELECT 1 FROM stop_events e WHERE e.execution_token = 'genesis-' || o.id "
    "  AND e.event_type = 'STOP_CONFIGURED') "
    "ORDER BY o.id LIMIT $2";

std::string genesis_payload(const core::BackfillInput& input, const core::BackfillDecision& decision) {
  nlohmann::json payload = {{"position_side", std::string(core::to_string(input.side))},
                            {"stop_from_percent", decision.stop_from_percent},
                            {"target_from_percent", decision.target_from_percent}};
  if (input.entry_price) payload["entry_price"] = input.entry_price->to_string();
  if (input.stop_loss_percent) payload["stop_loss_percent"] = input.stop_loss_percent->to_string();
  if (input.stop_gain_percent) payload["stop_gain_percent"] = input.stop_gain_percent->to_string();
  return payload.dump();
}

}  // namespace

BackfillSummary run_backfill(pqxx::connection& connection, const BackfillOptions& options) {
  if (options.batch_size < 1) throw std::invalid_argument("batch size must be at least 1");
  const auto start = std::chrono::steady_clock::now();
  BackfillSummary summary;
  summary.dry_run = options.dry_run;
  const std::string select = std::string(kSelectBatch) + (options.dry_run ? "" : " FOR UPDATE OF o SKIP LOCKED");
  std::int64_t after = 0;
  // What is left to do, counted once: the denominator of the progress line.
  const auto total = pqxx::nontransaction(connection)
                         .exec1(
                             "SELECT count(*) FROM operation o WHERE o.status = 'ACTIVE' AND NOT EXISTS ("
                             "  SELECT 1 FROM stop_events e WHERE e.execution_token = 'genesis-' || o.id "
                             "  AND e.event_type = 'STOP_CONFIGURED')")[0]
                         .as<std::int64_t>();
  runtime::Progress progress("backfill", "operations", total);
  while (true) {
    pqxx::work tx(connection);
    const pqxx::result rows = tx.exec_params(select, after, options.batch_size);
    if (rows.empty()) break;
    ++summary.batches;
    std::vector<core::Event> genesis;
    std::vector<BackfillChange> batch_changes;
    for (const auto& row : rows) {
      const auto id = row[0].as<std::int64_t>();
      after = id;
      ++summary.scanned;
      auto report = [&](std::string reason, bool invalid) {
        log::warn(invalid ? "operation not backfilled: invalid" : "operation has no stop or target configured",
                  {{"operation", id}, {"reason", reason}});
        (invalid ? summary.invalid : summary.nothing_to_configure)++;
        if (summary.problems.size() < options.max_reported) summary.problems.push_back({id, std::move(reason)});
      };
      core::BackfillInput input;
      input.id = core::OperationId{id};
      const auto side = row[3].is_null() ? std::nullopt : core::parse_side(row[3].c_str());
      try {
        input.entry_price = decimal_or_null(row[4]);
        input.stop_price = decimal_or_null(row[6]);
        input.target_price = decimal_or_null(row[7]);
        input.stop_loss_percent = decimal_or_null(row[8]);
        input.stop_gain_percent = decimal_or_null(row[9]);
      } catch (const core::DecimalError& e) {
        report(e.what(), true);
        continue;
      }
      if (!side) {
        report("side is " + (row[3].is_null() ? std::string("NULL") : "'" + std::string(row[3].c_str()) + "'") +
                   ", expected BUY or SELL",
               true);
        continue;
      }
      input.side = *side;
      const core::BackfillDecision decision = core::decide_backfill(input);
      if (decision.outcome == core::BackfillDecision::Outcome::kInvalid) {
        report(decision.reason, true);
        continue;
      }
      if (decision.outcome == core::BackfillDecision::Outcome::kNothingToConfigure) {
        report(decision.reason, false);
        continue;
      }
      if (row[1].is_null() || row[2].is_null()) {
        report(row[1].is_null() ? "tenant_id is NULL" : "symbol is NULL", true);
        continue;
      }
      core::Event e;
      e.operation_id = input.id;
      e.tenant_id = core::TenantId{row[1].as<std::int64_t>()};
      e.symbol = row[2].as<std::string>();
      e.type = core::EventType::kStopConfigured;
      e.source = core::EventSource::kBackfill;
      e.execution_token = core::genesis_token(input.id);
      e.stop_price = decision.stop_price;
      e.target_price = decision.target_price;
      e.quantity = decimal_or_null(row[5]);
      e.reason = "genesis";
      e.payload = genesis_payload(input, decision);
      genesis.push_back(std::move(e));
      batch_changes.push_back({id, std::string(core::to_string(input.side)), input.entry_price, decision.stop_price,
                               decision.target_price, decision.stop_from_percent, decision.target_from_percent});
    }
    auto written = static_cast<std::int64_t>(genesis.size());
    if (!options.dry_run && !genesis.empty()) {
      const AppendResult appended = EventStore::append(tx, std::move(genesis));
      written = static_cast<std::int64_t>(appended.appended.size());
      summary.already_done += static_cast<std::int64_t>(appended.duplicates.size());
      if (!appended.duplicates.empty()) {
        // Another run committed these meanwhile; report only what this run wrote.
        std::erase_if(batch_changes, [&](const BackfillChange& c) {
          for (const auto& d : appended.duplicates) {
            if (d.operation_id.value == c.operation_id) return true;
          }
          return false;
        });
      }
    }
    runtime::fault_point("backfill.before_commit");
    if (options.dry_run) {
      tx.abort();
    } else {
      tx.commit();
    }
    summary.configured += written;
    for (auto& change : batch_changes) {
      summary.stops_converted += change.stop_from_percent ? 1 : 0;
      summary.targets_converted += change.target_from_percent ? 1 : 0;
      if (summary.changes.size() < options.max_reported) summary.changes.push_back(std::move(change));
    }
    log::debug("backfill batch done", {{"batch", summary.batches}, {"last_operation", after}, {"written", written}});
    progress.add(static_cast<std::int64_t>(rows.size()));
  }
  progress.finish();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace backstop::store
