#include "store/schema_expectations.h"

#include <algorithm>
#include <string_view>

namespace backstop::store {
namespace {

enum class Kind { kTable, kColumn, kIndex, kConstraint, kTrigger };

struct Expectation {
  int version;
  Kind kind;
  std::string_view table;
  std::string_view name;  // column, index, constraint or trigger name
};

// Keep in step with migrations/*.up.sql.
constexpr Expectation kExpected[] = {
    {1, Kind::kTable, "tenant", ""},
    {1, Kind::kColumn, "tenant", "name"},
    {1, Kind::kTable, "operation", ""},
    {1, Kind::kColumn, "operation", "tenant_id"},
    {1, Kind::kColumn, "operation", "symbol"},
    {1, Kind::kColumn, "operation", "side"},
    {1, Kind::kColumn, "operation", "status"},
    {1, Kind::kColumn, "operation", "average_entry_price"},
    {1, Kind::kColumn, "operation", "quantity"},
    {1, Kind::kColumn, "operation", "stop_price"},
    {1, Kind::kColumn, "operation", "target_price"},
    {1, Kind::kColumn, "operation", "stop_loss_percent"},
    {1, Kind::kColumn, "operation", "stop_gain_percent"},
    {1, Kind::kColumn, "operation", "stop_execution_token"},
    {1, Kind::kColumn, "operation", "last_stop_check_at"},
    {1, Kind::kColumn, "operation", "stop_check_count"},
    {1, Kind::kColumn, "operation", "closed_at"},
    {1, Kind::kColumn, "operation", "close_reason"},
    {1, Kind::kConstraint, "operation", "backstop_operation_side_check"},
    {1, Kind::kConstraint, "operation", "backstop_operation_levels_positive_check"},
    {2, Kind::kTable, "stop_events", ""},
    {2, Kind::kColumn, "stop_events", "event_seq"},
    {2, Kind::kColumn, "stop_events", "event_id"},
    {2, Kind::kColumn, "stop_events", "execution_token"},
    {2, Kind::kColumn, "stop_events", "transaction_id"},
    {2, Kind::kColumn, "stop_events", "error_message"},
    {2, Kind::kIndex, "stop_events", "idx_stop_events_token_once"},
    {2, Kind::kIndex, "stop_events", "idx_stop_events_op_seq"},
    {2, Kind::kIndex, "stop_events", "idx_stop_events_tenant"},
    {2, Kind::kIndex, "stop_events", "idx_stop_events_type"},
    {2, Kind::kIndex, "stop_events", "idx_stop_events_source"},
    {2, Kind::kIndex, "stop_events", "idx_stop_events_symbol"},
    {2, Kind::kIndex, "stop_events", "idx_stop_events_xid"},
    {2, Kind::kConstraint, "stop_events", "stop_events_type_check"},
    {2, Kind::kConstraint, "stop_events", "stop_events_event_id_key"},
    {2, Kind::kTrigger, "stop_events", "stop_events_no_update_delete"},
    {2, Kind::kTrigger, "stop_events", "stop_events_no_truncate"},
    {2, Kind::kTable, "stop_executions", ""},
    {2, Kind::kColumn, "stop_executions", "error_message"},
    {2, Kind::kColumn, "stop_executions", "slippage_pct"},
    {2, Kind::kIndex, "stop_executions", "idx_stop_exec_op_status"},
    {2, Kind::kConstraint, "stop_executions", "stop_executions_status_check"},
    {2, Kind::kTable, "outbox", ""},
    {2, Kind::kColumn, "outbox", "retry_count"},
    {2, Kind::kColumn, "outbox", "parked_at"},
    {2, Kind::kIndex, "outbox", "idx_outbox_unpublished"},
    {2, Kind::kIndex, "outbox", "idx_outbox_pending"},
    {3, Kind::kTable, "tenant_config", ""},
    {3, Kind::kColumn, "tenant_config", "trading_enabled"},
    {3, Kind::kColumn, "tenant_config", "max_executions_per_hour"},
    {3, Kind::kConstraint, "tenant_config", "tenant_config_slippage_check"},
    {3, Kind::kTable, "circuit_breaker_state", ""},
    {3, Kind::kColumn, "circuit_breaker_state", "retry_delay_seconds"},
    {3, Kind::kConstraint, "circuit_breaker_state", "circuit_breaker_state_state_check"},
    {4, Kind::kIndex, "operation", "idx_operation_active_stop"},
    {4, Kind::kIndex, "operation", "idx_operation_active_target"},
    {4, Kind::kIndex, "operation", "idx_operation_percent_only"},
    {4, Kind::kIndex, "operation", "idx_operation_tenant_status"},
    {5, Kind::kTable, "monitor_checkpoint", ""},
    {5, Kind::kTable, "operation_check_status", ""},
    {6, Kind::kColumn, "operation", "trailing_mode"},
    {6, Kind::kColumn, "operation", "initial_stop_price"},
    {6, Kind::kColumn, "operation", "trail_wake_price"},
    {6, Kind::kColumn, "operation", "trail_error"},
    {6, Kind::kColumn, "tenant_config", "trailing_mode"},
    {6, Kind::kColumn, "tenant_config", "trailing_fee_pct"},
    {6, Kind::kTrigger, "operation", "operation_trail_inputs_changed"},
    {6, Kind::kTrigger, "tenant_config", "tenant_trailing_changed"},
    {7, Kind::kIndex, "operation", "idx_operation_trail_wake"},
    {7, Kind::kIndex, "operation", "idx_operation_trail_unarmed_own"},
    {7, Kind::kIndex, "operation", "idx_operation_trail_unarmed_tenant"},
    {7, Kind::kConstraint, "operation", "operation_trailing_mode_check"},
    {7, Kind::kConstraint, "operation", "operation_trailing_offset_check"},
    {8, Kind::kIndex, "outbox", "idx_outbox_drain"},
    {8, Kind::kIndex, "outbox", "idx_outbox_parked"},
    {9, Kind::kIndex, "stop_events", "idx_stop_events_one_exit"},
    {9, Kind::kIndex, "stop_events", "idx_stop_events_token_seq"},
    {9, Kind::kColumn, "circuit_breaker_state", "trial_started_at"},
    {9, Kind::kTrigger, "stop_events", "stop_events_adjust_after_claim"},
    {10, Kind::kColumn, "operation", "sync_status"},
    {10, Kind::kColumn, "operation", "last_synced_at"},
    {10, Kind::kColumn, "operation", "sync_error"},
    {10, Kind::kColumn, "operation", "held_quantity"},
    {10, Kind::kColumn, "operation", "original_quantity"},
    {10, Kind::kConstraint, "operation", "operation_sync_status_check"},
    {10, Kind::kColumn, "tenant_config", "exchange_account"},
    {10, Kind::kTable, "exchange_account", ""},
    {10, Kind::kTable, "account_trade", ""},
    {10, Kind::kColumn, "account_trade", "attributed_operation_id"},
    {10, Kind::kTable, "account_trade_cursor", ""},
    {10, Kind::kTable, "account_balance_seen", ""},
    {10, Kind::kTable, "sync_pending", ""},
    {10, Kind::kTable, "orphan_order", ""},
    {10, Kind::kConstraint, "stop_events", "stop_events_source_check"},
    {10, Kind::kTrigger, "stop_events", "stop_events_reconcile_guard"},
    {11, Kind::kIndex, "stop_events", "idx_stop_events_reconcile_once"},
    {12, Kind::kColumn, "exchange_account", "orphans_checked_at"},
    {12, Kind::kColumn, "orphan_order", "last_seen_at"},
};

std::string describe(const Expectation& e) {
  switch (e.kind) {
    case Kind::kTable:
      return "table " + std::string(e.table);
    case Kind::kColumn:
      return "column " + std::string(e.table) + "." + std::string(e.name);
    case Kind::kIndex:
      return "index " + std::string(e.name) + " on " + std::string(e.table);
    case Kind::kConstraint:
      return "constraint " + std::string(e.name) + " on " + std::string(e.table);
    case Kind::kTrigger:
      return "trigger " + std::string(e.name) + " on " + std::string(e.table);
  }
  return "?";
}

}  // namespace

void check_schema(pqxx::transaction_base& tx, const std::vector<int>& applied_versions,
                  std::vector<std::string>& problems, std::vector<std::string>& warnings) {
  for (const Expectation& e : kExpected) {
    if (std::find(applied_versions.begin(), applied_versions.end(), e.version) == applied_versions.end()) continue;
    const std::string table(e.table), name(e.name);
    bool present = false;
    switch (e.kind) {
      case Kind::kTable:
        present = tx.exec_params1("SELECT to_regclass($1) IS NOT NULL", table)[0].as<bool>();
        break;
      case Kind::kColumn:
        present = !tx.exec_params(
                         "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                         "AND table_name = $1 AND column_name = $2",
                         table, name)
                       .empty();
        break;
      case Kind::kIndex: {
        const auto rows = tx.exec_params(
            "SELECT i.indisvalid AND i.indisready FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_class t ON t.oid = i.indrelid WHERE c.relname = $1 AND t.relname = $2 "
            "AND c.relnamespace = to_regnamespace(current_schema())",
            name, table);
        present = !rows.empty();
        if (present && !rows[0][0].as<bool>()) {
          problems.push_back(describe(e) +
                             " is INVALID (a failed concurrent build): `migrate up` drops and builds it again");
        }
        break;
      }
      case Kind::kConstraint: {
        const auto rows = tx.exec_params(
            "SELECT c.convalidated FROM pg_constraint c WHERE c.conname = $1 AND c.conrelid = to_regclass($2)", name,
            table);
        present = !rows.empty();
        if (present && !rows[0][0].as<bool>()) {
          warnings.push_back(describe(e) + " is NOT VALID: enforced for new rows; legacy rows were not checked");
        }
        break;
      }
      case Kind::kTrigger:
        present =
            !tx.exec_params("SELECT 1 FROM pg_trigger WHERE tgname = $1 AND tgrelid = to_regclass($2)", name, table)
                 .empty();
        break;
    }
    if (!present) problems.push_back(describe(e) + " is missing");
  }
  // Any other INVALID index in our schema (e.g. from a failed concurrent build).
  for (const auto& row : tx.exec("SELECT c.relname, t.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                 "JOIN pg_class t ON t.oid = i.indrelid WHERE NOT (i.indisvalid AND i.indisready) "
                                 "AND c.relnamespace = to_regnamespace(current_schema()) ORDER BY 1")) {
    const auto index = row[0].as<std::string>();
    const bool expected = std::any_of(std::begin(kExpected), std::end(kExpected),
                                      [&](const Expectation& e) { return e.kind == Kind::kIndex && e.name == index; });
    if (!expected) {
      problems.push_back("index " + index + " on " + row[1].as<std::string>() +
                         " is INVALID (a failed concurrent build): run `migrate repair`, then `up`");
    }
  }
}

}  // namespace backstop::store
