#include "store/event_store.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <stdexcept>

#include "core/hex.h"
#include "runtime/progress.h"
#include "store/db.h"

namespace backstop::store {
namespace {

using core::Decimal;
using core::Event;
using core::Execution;

std::string new_uuid() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  const std::uint64_t high = generator(), low = generator();
  unsigned char bytes[16];
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<unsigned char>(high >> (56 - 8 * i));
    bytes[8 + i] = static_cast<unsigned char>(low >> (56 - 8 * i));
  }
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0F) | 0x40);  // version 4
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant
  std::string text = core::to_hex(bytes, 16);
  for (const std::size_t at : {std::size_t{8}, std::size_t{13}, std::size_t{18}, std::size_t{23}})
    text.insert(at, 1, '-');
  return text;
}

void validate(const Event& e) {
  auto fail = [&](const std::string& why) {
    throw std::invalid_argument("invalid " + std::string(core::to_string(e.type)) + " event for operation " +
                                std::to_string(e.operation_id.value) + ": " + why);
  };
  if (e.execution_token.empty()) fail("execution_token is empty");
  if (e.execution_token.size() > 64) fail("execution_token is longer than 64 characters");
  if (e.symbol.empty()) fail("symbol is empty");
  if (e.payload.empty() || e.payload.front() != '{') fail("payload must be a JSON object");
}

std::optional<std::string> name_or_null(const std::optional<core::Side>& side) {
  if (!side) return std::nullopt;
  return std::string(core::to_string(*side));
}

std::optional<std::string> name_or_null(const std::optional<core::TriggerKind>& kind) {
  if (!kind) return std::nullopt;
  return std::string(core::to_string(*kind));
}

// Columns in the order row_to_event reads them.
const char* const kEventColumns =
    "event_seq, event_id::text, occurred_at::text, operation_id, tenant_id, symbol, event_type, source, "
    "execution_token, trigger_kind, side, trigger_price, stop_price, target_price, quantity, fill_price, "
    "slippage_pct, exchange_order_id, reason, error_message, payload::text";

template <typename T>
T parse_or_throw(std::optional<T> value, const char* what, const pqxx::field& field) {
  if (!value) throw std::runtime_error(std::string("unknown ") + what + " '" + field.c_str() + "' in stop_events");
  return *value;
}

Event row_to_event(const pqxx::row& row) {
  Event e;
  e.seq = row[0].as<std::int64_t>();
  e.event_id = row[1].as<std::string>();
  e.occurred_at = row[2].as<std::string>();
  e.operation_id = core::OperationId{row[3].as<std::int64_t>()};
  e.tenant_id = core::TenantId{row[4].as<std::int64_t>()};
  e.symbol = row[5].as<std::string>();
  e.type = parse_or_throw(core::parse_event_type(row[6].c_str()), "event_type", row[6]);
  e.source = parse_or_throw(core::parse_event_source(row[7].c_str()), "source", row[7]);
  e.execution_token = row[8].as<std::string>();
  if (!row[9].is_null())
    e.trigger_kind = parse_or_throw(core::parse_trigger_kind(row[9].c_str()), "trigger_kind", row[9]);
  if (!row[10].is_null()) e.side = parse_or_throw(core::parse_side(row[10].c_str()), "side", row[10]);
  e.trigger_price = decimal_or_null(row[11]);
  e.stop_price = decimal_or_null(row[12]);
  e.target_price = decimal_or_null(row[13]);
  e.quantity = decimal_or_null(row[14]);
  e.fill_price = decimal_or_null(row[15]);
  e.slippage_pct = decimal_or_null(row[16]);
  e.exchange_order_id = text_or_null(row[17]);
  e.reason = text_or_null(row[18]);
  e.error_message = text_or_null(row[19]);
  e.payload = row[20].as<std::string>();
  return e;
}

const char* const kExecutionColumns =
    "execution_token, operation_id, tenant_id, symbol, trigger_kind, side, status, source, trigger_price, "
    "quantity, fill_price, slippage_pct, exchange_order_id, error_message, blocked_reason, triggered_at::text, "
    "blocked_at::text, submitted_at::text, executed_at::text, failed_at::text, retry_count, last_event_seq";

Execution row_to_execution(const pqxx::row& row) {
  Execution x;
  x.execution_token = row[0].as<std::string>();
  x.operation_id = core::OperationId{row[1].as<std::int64_t>()};
  x.tenant_id = core::TenantId{row[2].as<std::int64_t>()};
  x.symbol = row[3].as<std::string>();
  if (!row[4].is_null())
    x.trigger_kind = parse_or_throw(core::parse_trigger_kind(row[4].c_str()), "trigger_kind", row[4]);
  if (!row[5].is_null()) x.side = parse_or_throw(core::parse_side(row[5].c_str()), "side", row[5]);
  x.status = parse_or_throw(core::parse_execution_status(row[6].c_str()), "status", row[6]);
  x.source = parse_or_throw(core::parse_event_source(row[7].c_str()), "source", row[7]);
  x.trigger_price = decimal_or_null(row[8]);
  x.quantity = decimal_or_null(row[9]);
  x.fill_price = decimal_or_null(row[10]);
  x.slippage_pct = decimal_or_null(row[11]);
  x.exchange_order_id = text_or_null(row[12]);
  x.error_message = text_or_null(row[13]);
  x.blocked_reason = text_or_null(row[14]);
  x.triggered_at = text_or_null(row[15]);
  x.blocked_at = text_or_null(row[16]);
  x.submitted_at = text_or_null(row[17]);
  x.executed_at = text_or_null(row[18]);
  x.failed_at = text_or_null(row[19]);
  x.retry_count = row[20].as<std::int32_t>();
  x.last_event_seq = row[21].as<std::int64_t>();
  return x;
}

// Writes executions (insert or replace) in one statement.
// With no executions it still runs (prepare()).
void upsert_executions(pqxx::work& tx, const std::map<std::string, Execution>& executions) {
  ArrayLiteral token, operation, tenant, symbol, kind, side, status, source, trigger_price, quantity, fill_price,
      slippage, order_id, error, blocked, triggered_at, blocked_at, submitted_at, executed_at, failed_at, retries,
      last_seq;
  for (const auto& [key, x] : executions) {
    token.add(x.execution_token);
    operation.add(x.operation_id.value);
    tenant.add(x.tenant_id.value);
    symbol.add(x.symbol);
    kind.add(name_or_null(x.trigger_kind));
    side.add(name_or_null(x.side));
    status.add(core::to_string(x.status));
    source.add(core::to_string(x.source));
    trigger_price.add(x.trigger_price);
    quantity.add(x.quantity);
    fill_price.add(x.fill_price);
    slippage.add(x.slippage_pct);
    order_id.add(x.exchange_order_id);
    error.add(x.error_message);
    blocked.add(x.blocked_reason);
    triggered_at.add(x.triggered_at);
    blocked_at.add(x.blocked_at);
    submitted_at.add(x.submitted_at);
    executed_at.add(x.executed_at);
    failed_at.add(x.failed_at);
    retries.add(std::int64_t{x.retry_count});
    last_seq.add(x.last_event_seq);
  }
  exec_prepared(
      tx, "bs_upsert_executions",
      "INSERT INTO stop_executions (execution_token, operation_id, tenant_id, symbol, trigger_kind, side, status, "
      "source, trigger_price, quantity, fill_price, slippage_pct, exchange_order_id, error_message, blocked_reason, "
      "triggered_at, blocked_at, submitted_at, executed_at, failed_at, retry_count, last_event_seq) "
      "SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], "
      "$8::text[], $9::numeric[], $10::numeric[], $11::numeric[], $12::numeric[], $13::text[], $14::text[], "
      "$15::text[], $16::timestamptz[], $17::timestamptz[], $18::timestamptz[], $19::timestamptz[], "
      "$20::timestamptz[], $21::integer[], $22::bigint[]) "
      "ON CONFLICT (execution_token) DO UPDATE SET trigger_kind = EXCLUDED.trigger_kind, side = EXCLUDED.side, "
      "status = EXCLUDED.status, source = EXCLUDED.source, trigger_price = EXCLUDED.trigger_price, "
      "quantity = EXCLUDED.quantity, fill_price = EXCLUDED.fill_price, slippage_pct = EXCLUDED.slippage_pct, "
      "exchange_order_id = EXCLUDED.exchange_order_id, error_message = EXCLUDED.error_message, "
      "blocked_reason = EXCLUDED.blocked_reason, triggered_at = EXCLUDED.triggered_at, "
      "blocked_at = EXCLUDED.blocked_at, submitted_at = EXCLUDED.submitted_at, "
      "executed_at = EXCLUDED.executed_at, failed_at = EXCLUDED.failed_at, retry_count = EXCLUDED.retry_count, "
      "last_event_seq = EXCLUDED.last_event_seq, updated_at = now()",
      token.str(), operation.str(), tenant.str(), symbol.str(), kind.str(), side.str(), status.str(), source.str(),
      trigger_price.str(), quantity.str(), fill_price.str(), slippage.str(), order_id.str(), error.str(), blocked.str(),
      triggered_at.str(), blocked_at.str(), submitted_at.str(), executed_at.str(), failed_at.str(), retries.str(),
      last_seq.str());
}

void write_operations(pqxx::work& tx, const std::map<std::int64_t, core::OperationProjection>& operations) {
  ArrayLiteral id, stop, target, closed, quantity, sync;
  for (const auto& [key, p] : operations) {
    id.add(key);
    stop.add(p.stop_price);
    target.add(p.target_price);
    closed.add(p.closed ? std::string_view("true") : std::string_view("false"));
    quantity.add(p.quantity);
    sync.add(p.sync_status ? std::optional<std::string>(std::string(core::to_string(*p.sync_status))) : std::nullopt);
  }
  // quantity and sync_status only where an event decided them; the quantity
  // before reconcile first lowered it is kept in original_quantity.
  exec_prepared(tx, "bs_write_operations",
                "UPDATE operation o SET stop_price = u.stop_price, target_price = u.target_price, "
                "status = CASE WHEN u.closed AND o.status = 'ACTIVE' THEN 'CLOSED' ELSE o.status END, "
                "closed_at = CASE WHEN u.closed AND o.closed_at IS NULL THEN now() ELSE o.closed_at END, "
                "close_reason = CASE WHEN u.closed AND o.status = 'ACTIVE' AND u.sync_status = 'CLOSED_ELSEWHERE' "
                "  THEN 'CLOSED_ELSEWHERE' ELSE o.close_reason END, "
                "original_quantity = CASE WHEN o.original_quantity IS NULL AND u.quantity IS NOT NULL "
                "  AND u.quantity <> o.quantity THEN o.quantity ELSE o.original_quantity END, "
                "quantity = coalesce(u.quantity, o.quantity), sync_status = coalesce(u.sync_status, o.sync_status), "
                "updated_at = now() "
                "FROM unnest($1::bigint[], $2::numeric[], $3::numeric[], $4::boolean[], $5::numeric[], $6::text[]) "
                "  AS u(id, stop_price, target_price, closed, quantity, sync_status) "
                "WHERE o.id = u.id",
                id.str(), stop.str(), target.str(), closed.str(), quantity.str(), sync.str());
}

std::map<std::int64_t, core::OperationProjection> lock_operations(pqxx::work& tx, const std::set<std::int64_t>& ids) {
  std::map<std::int64_t, core::OperationProjection> result;
  ArrayLiteral list;
  for (const auto id : ids) list.add(id);
  for (const auto& row : exec_prepared(tx, "bs_lock_operations",
                                       "SELECT id, stop_price, target_price, status <> 'ACTIVE' FROM operation "
                                       "WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE",
                                       list.str())) {
    core::OperationProjection p;
    p.stop_price = decimal_or_null(row[1]);
    p.target_price = decimal_or_null(row[2]);
    p.closed = row[3].as<bool>();
    result[row[0].as<std::int64_t>()] = p;
  }
  return result;
}

std::map<std::string, Execution> lock_executions(pqxx::work& tx, const std::set<std::string>& execution_tokens) {
  std::map<std::string, Execution> executions;
  ArrayLiteral tokens;
  for (const auto& t : execution_tokens) tokens.add(std::string_view(t));
  for (const auto& row : exec_prepared(tx, "bs_lock_executions",
                                       std::string("SELECT ") + kExecutionColumns +
                                           " FROM stop_executions WHERE execution_token = ANY($1::text[]) "
                                           "ORDER BY execution_token FOR UPDATE",
                                       tokens.str())) {
    Execution x = row_to_execution(row);
    executions.emplace(x.execution_token, std::move(x));
  }
  return executions;
}

// Inserts the events and their outbox rows in one statement; returns the
// inserted ones' event_id, event_seq and occurred_at (a duplicate is absent).
pqxx::result insert_events(pqxx::work& tx, const std::vector<Event>& events) {
  ArrayLiteral event_id, operation, tenant, symbol, type, source, token, kind, side, trigger_price, stop_price,
      target_price, quantity, fill_price, slippage, order_id, reason, error, payload;
  for (const Event& e : events) {
    event_id.add(e.event_id);
    operation.add(e.operation_id.value);
    tenant.add(e.tenant_id.value);
    symbol.add(e.symbol);
    type.add(core::to_string(e.type));
    source.add(core::to_string(e.source));
    token.add(e.execution_token);
    kind.add(name_or_null(e.trigger_kind));
    side.add(name_or_null(e.side));
    trigger_price.add(e.trigger_price);
    stop_price.add(e.stop_price);
    target_price.add(e.target_price);
    quantity.add(e.quantity);
    fill_price.add(e.fill_price);
    slippage.add(e.slippage_pct);
    order_id.add(e.exchange_order_id);
    reason.add(e.reason);
    error.add(e.error_message);
    payload.add(e.payload);
  }
  return exec_prepared(
      tx, "bs_append_events",
      "WITH input AS ("
      "  SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], "
      "    $7::text[], $8::text[], $9::text[], $10::numeric[], $11::numeric[], $12::numeric[], $13::numeric[], "
      "    $14::numeric[], $15::numeric[], $16::text[], $17::text[], $18::text[], $19::jsonb[]) WITH ORDINALITY "
      "  AS u(event_id, operation_id, tenant_id, symbol, event_type, source, execution_token, trigger_kind, side, "
      "       trigger_price, stop_price, target_price, quantity, fill_price, slippage_pct, exchange_order_id, "
      "       reason, error_message, payload, ord)"
      "), inserted AS ("
      "  INSERT INTO stop_events (event_id, operation_id, tenant_id, symbol, event_type, source, execution_token, "
      "    trigger_kind, side, trigger_price, stop_price, target_price, quantity, fill_price, slippage_pct, "
      "    exchange_order_id, reason, error_message, payload) "
      "  SELECT event_id, operation_id, tenant_id, symbol, event_type, source, execution_token, trigger_kind, side, "
      "    trigger_price, stop_price, target_price, quantity, fill_price, slippage_pct, exchange_order_id, reason, "
      "    error_message, payload FROM input ORDER BY ord "
      "  ON CONFLICT DO NOTHING RETURNING *"
      "), outbox_rows AS ("
      "  INSERT INTO outbox (event_id, event_seq, operation_id, exchange, routing_key, payload) "
      "  SELECT event_id, event_seq, operation_id, 'stop_events', "
      "    'stop.' || lower(event_type) || '.' || tenant_id || '.' || symbol, "
      "    jsonb_strip_nulls(jsonb_build_object('event_id', event_id, 'event_seq', event_seq, "
      "      'event_type', event_type, 'operation_id', operation_id, 'tenant_id', tenant_id, 'symbol', symbol, "
      "      'source', source, 'execution_token', execution_token, 'trigger_kind', trigger_kind, 'side', side, "
      "      'trigger_price', trigger_price::text, 'stop_price', stop_price::text, "
      "      'target_price', target_price::text, 'quantity', quantity::text, 'fill_price', fill_price::text, "
      "      'slippage_pct', slippage_pct::text, 'exchange_order_id', exchange_order_id, 'reason', reason, "
      "      'error_message', error_message, 'occurred_at', occurred_at, 'data', payload)) "
      "  FROM inserted"
      ") SELECT event_id::text, event_seq, occurred_at::text FROM inserted",
      event_id.str(), operation.str(), tenant.str(), symbol.str(), type.str(), source.str(), token.str(), kind.str(),
      side.str(), trigger_price.str(), stop_price.str(), target_price.str(), quantity.str(), fill_price.str(),
      slippage.str(), order_id.str(), reason.str(), error.str(), payload.str());
}

}  // namespace

AppendResult EventStore::append(pqxx::work& tx, std::vector<Event> events) {
  AppendResult result;
  if (events.empty()) return result;
  std::set<std::string> execution_tokens;
  std::set<std::int64_t> operation_ids;
  for (Event& e : events) {
    validate(e);
    e.event_id = new_uuid();
    // A STOP_TRIGGERED starts its execution: there is no row to lock, and the
    // unique (token, type) index settles a race for it (the loser waits for the
    // winner's commit, then is a duplicate). Locking an existing row for it would
    // only make every loser of a race write a row lock.
    if (core::is_execution_event(e.type) && e.type != core::EventType::kStopTriggered) {
      execution_tokens.insert(e.execution_token);
    }
    if (core::affects_operation(e.type)) operation_ids.insert(e.operation_id.value);
  }

  // 1. Lock what the events will change. The table-level ROW SHARE lock that
  //    FOR UPDATE takes also waits for a replay that holds EXCLUSIVE.
  std::map<std::string, Execution> executions;
  if (!execution_tokens.empty()) executions = lock_executions(tx, execution_tokens);
  std::map<std::int64_t, core::OperationProjection> operations;
  if (!operation_ids.empty()) operations = lock_operations(tx, operation_ids);

  // 2 + 3. Insert events and their outbox rows in one statement.
  const pqxx::result inserted = insert_events(tx, events);

  std::map<std::string, std::pair<std::int64_t, std::string>> assigned;
  for (const auto& row : inserted) {
    assigned[row[0].as<std::string>()] = {row[1].as<std::int64_t>(), row[2].as<std::string>()};
  }
  for (Event& e : events) {
    const auto it = assigned.find(e.event_id);
    if (it == assigned.end()) {
      result.duplicates.push_back(std::move(e));
      continue;
    }
    e.seq = it->second.first;
    e.occurred_at = it->second.second;
    result.appended.push_back(std::move(e));
  }
  std::sort(result.appended.begin(), result.appended.end(),
            [](const Event& a, const Event& b) { return a.seq < b.seq; });

  // 4. Fold into the projections with the pure core functions.
  std::map<std::string, Execution> changed_executions;
  std::map<std::int64_t, core::OperationProjection> changed_operations;
  for (const Event& e : result.appended) {
    if (core::is_execution_event(e.type)) {
      const auto it = executions.find(e.execution_token);
      std::optional<Execution> current;
      if (it != executions.end()) current = it->second;
      Execution next = core::apply_to_execution(current, e);
      executions[e.execution_token] = next;
      changed_executions[e.execution_token] = std::move(next);
    }
    if (core::affects_operation(e.type)) {
      const auto it = operations.find(e.operation_id.value);
      if (it == operations.end()) {
        throw std::invalid_argument(std::string(core::to_string(e.type)) + " event for operation " +
                                    std::to_string(e.operation_id.value) + " which does not exist");
      }
      it->second = core::apply_to_operation(it->second, e);
      changed_operations[e.operation_id.value] = it->second;
    }
  }
  if (!changed_executions.empty()) upsert_executions(tx, changed_executions);
  if (!changed_operations.empty()) write_operations(tx, changed_operations);
  return result;
}

void EventStore::prepare(pqxx::work& tx) {
  lock_executions(tx, {});
  lock_operations(tx, {});
  insert_events(tx, {});
  upsert_executions(tx, {});
  write_operations(tx, {});
}

std::vector<Event> EventStore::history(pqxx::transaction_base& tx, core::OperationId operation) {
  std::vector<Event> events;
  for (const auto& row : tx.exec_params(
           std::string("SELECT ") + kEventColumns + " FROM stop_events WHERE operation_id = $1 ORDER BY event_seq",
           operation.value)) {
    events.push_back(row_to_event(row));
  }
  return events;
}

std::map<std::string, Execution> EventStore::executions(pqxx::transaction_base& tx,
                                                        const std::vector<std::string>& tokens) {
  std::map<std::string, Execution> result;
  if (tokens.empty()) return result;
  ArrayLiteral literal;
  for (const auto& t : tokens) literal.add(t);
  for (const auto& row : exec_prepared(
           tx, "bs_executions",
           std::string("SELECT ") + kExecutionColumns + " FROM stop_executions WHERE execution_token = ANY($1::text[])",
           literal.str())) {
    Execution x = row_to_execution(row);
    result.emplace(x.execution_token, std::move(x));
  }
  return result;
}

namespace {

std::string show(const std::optional<Decimal>& d) { return d ? d->to_string() : "NULL"; }

void compare_execution(const Execution& rebuilt, const Execution* live, std::vector<std::string>& differences) {
  if (live == nullptr) {
    differences.push_back("stop_executions " + rebuilt.execution_token + ": missing from the live projection");
    return;
  }
  if (rebuilt == *live) return;
  std::string fields;
  auto diff = [&](const char* name, bool same) {
    if (!same) fields += (fields.empty() ? "" : ", ") + std::string(name);
  };
  diff("status", rebuilt.status == live->status);
  diff("source", rebuilt.source == live->source);
  diff("trigger_price", rebuilt.trigger_price == live->trigger_price);
  diff("quantity", rebuilt.quantity == live->quantity);
  diff("fill_price", rebuilt.fill_price == live->fill_price);
  diff("slippage_pct", rebuilt.slippage_pct == live->slippage_pct);
  diff("exchange_order_id", rebuilt.exchange_order_id == live->exchange_order_id);
  diff("error_message", rebuilt.error_message == live->error_message);
  diff("blocked_reason", rebuilt.blocked_reason == live->blocked_reason);
  diff("timestamps", rebuilt.triggered_at == live->triggered_at && rebuilt.blocked_at == live->blocked_at &&
                         rebuilt.submitted_at == live->submitted_at && rebuilt.executed_at == live->executed_at &&
                         rebuilt.failed_at == live->failed_at);
  diff("retry_count", rebuilt.retry_count == live->retry_count);
  diff("last_event_seq", rebuilt.last_event_seq == live->last_event_seq);
  diff("identity", rebuilt.operation_id == live->operation_id && rebuilt.tenant_id == live->tenant_id &&
                       rebuilt.symbol == live->symbol && rebuilt.trigger_kind == live->trigger_kind &&
                       rebuilt.side == live->side);
  differences.push_back("stop_executions " + rebuilt.execution_token + ": " + fields + " differ");
}

}  // namespace

ReplayReport EventStore::replay(pqxx::connection& connection, bool rewrite) {
  ReplayReport report;
  pqxx::work tx(connection);
  if (rewrite) {
    // Appends lock stop_executions rows first; EXCLUSIVE makes them wait.
    tx.exec("LOCK TABLE stop_executions IN EXCLUSIVE MODE");
  } else {
    tx.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY");
  }
  std::map<std::string, Execution> executions;
  std::map<std::int64_t, core::OperationProjection> operations;
  // Operations whose levels the events set; the others' levels predate the
  // event log (no genesis yet) and only their closing is checked.
  std::set<std::int64_t> levels_from_events;
  constexpr int kChunk = 10000;
  std::int64_t after = 0;
  runtime::Progress progress("replay", "events",
                             tx.exec1("SELECT count(*) FROM stop_events")[0].as<std::int64_t>());  // same snapshot
  while (true) {
    const auto rows = tx.exec_params(
        std::string("SELECT ") + kEventColumns + " FROM stop_events WHERE event_seq > $1 ORDER BY event_seq LIMIT $2",
        after, kChunk);
    for (const auto& row : rows) {
      const Event e = row_to_event(row);
      ++report.events;
      after = e.seq;
      if (core::is_execution_event(e.type)) {
        const auto it = executions.find(e.execution_token);
        std::optional<Execution> current;
        if (it != executions.end()) current = it->second;
        try {
          executions[e.execution_token] = core::apply_to_execution(current, e);
        } catch (const core::ProjectionError& error) {
          report.differences.push_back("event " + std::to_string(e.seq) + ": " + error.what());
        }
      }
      if (core::affects_operation(e.type)) {
        operations[e.operation_id.value] = core::apply_to_operation(operations[e.operation_id.value], e);
        if (e.type == core::EventType::kStopConfigured || e.type == core::EventType::kStopAdjusted) {
          levels_from_events.insert(e.operation_id.value);
        }
      }
    }
    progress.add(static_cast<std::int64_t>(rows.size()));
    if (rows.size() < static_cast<std::size_t>(kChunk)) break;
  }
  progress.finish();
  report.executions = static_cast<std::int64_t>(executions.size());
  report.operations = static_cast<std::int64_t>(operations.size());

  std::map<std::string, Execution> live;
  for (const auto& row : tx.exec(std::string("SELECT ") + kExecutionColumns + " FROM stop_executions")) {
    Execution x = row_to_execution(row);
    live.emplace(x.execution_token, std::move(x));
  }
  for (const auto& [token, rebuilt] : executions) {
    const auto it = live.find(token);
    compare_execution(rebuilt, it == live.end() ? nullptr : &it->second, report.differences);
  }
  for (const auto& [token, row] : live) {
    if (executions.count(token) == 0) {
      report.differences.push_back("stop_executions " + token + ": present live but no event produces it");
    }
  }

  std::map<std::int64_t, core::OperationProjection> to_fix;
  std::vector<std::int64_t> ids;
  ids.reserve(operations.size());
  for (const auto& [id, p] : operations) ids.push_back(id);
  for (std::size_t begin = 0; begin < ids.size(); begin += kChunk) {
    ArrayLiteral list;
    for (std::size_t i = begin; i < std::min(ids.size(), begin + kChunk); ++i) list.add(ids[i]);
    std::set<std::int64_t> seen;
    for (const auto& row :
         tx.exec_params("SELECT id, stop_price, target_price, status <> 'ACTIVE', quantity FROM operation "
                        "WHERE id = ANY($1::bigint[])",
                        list.str())) {
      const auto id = row[0].as<std::int64_t>();
      seen.insert(id);
      core::OperationProjection live_row;
      live_row.stop_price = decimal_or_null(row[1]);
      live_row.target_price = decimal_or_null(row[2]);
      live_row.closed = row[3].as<bool>();
      live_row.quantity = decimal_or_null(row[4]);
      core::OperationProjection rebuilt = operations[id];
      if (levels_from_events.count(id) == 0) {
        rebuilt.stop_price = live_row.stop_price;
        rebuilt.target_price = live_row.target_price;
      }
      // An operation closed outside Backstop (no EXECUTED event) is not a difference.
      // The quantity is compared where reconcile's events set it.
      const bool same = rebuilt.stop_price == live_row.stop_price && rebuilt.target_price == live_row.target_price &&
                        (!rebuilt.closed || live_row.closed) &&
                        (!rebuilt.quantity || rebuilt.quantity == live_row.quantity);
      if (!same) {
        report.differences.push_back(
            "operation " + std::to_string(id) + ": events give stop " + show(rebuilt.stop_price) + " target " +
            show(rebuilt.target_price) + (rebuilt.closed ? " closed" : "") +
            (rebuilt.quantity ? " quantity " + rebuilt.quantity->to_string() : "") + ", row has stop " +
            show(live_row.stop_price) + " target " + show(live_row.target_price) + (live_row.closed ? " closed" : "") +
            (rebuilt.quantity ? " quantity " + show(live_row.quantity) : ""));
        to_fix[id] = rebuilt;
      }
    }
    for (std::size_t i = begin; i < std::min(ids.size(), begin + kChunk); ++i) {
      if (seen.count(ids[i]) == 0) {
        report.differences.push_back("operation " + std::to_string(ids[i]) + ": has events but no row");
      }
    }
  }

  if (rewrite && !report.differences.empty()) {
    tx.exec("DELETE FROM stop_executions");
    upsert_executions(tx, executions);
    lock_operations(tx, [&] {
      std::set<std::int64_t> s;
      for (const auto& [id, p] : to_fix) s.insert(id);
      return s;
    }());
    write_operations(tx, to_fix);
    report.rewritten = true;
  }
  tx.commit();
  return report;
}

}  // namespace backstop::store
