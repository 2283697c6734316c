#include "store/outbox_repository.h"

#include "store/db.h"

namespace backstop::store {
namespace {

constexpr std::int32_t kLockClass = 0x6f757462;  // "outb"

// A row ready to publish: not published, not parked, not waiting for its
// retry, and not behind an earlier row of its operation that waits for its
// retry or is parked: an operation's events leave strictly in order, so a
// parked row holds the later ones until someone deals with it (they count as
// held). Earlier rows that are ready themselves come first in the same claim
// (outbox_id order), where the drainer sends them first.
const char* const kReady =
    "o.published = false AND o.parked_at IS NULL "
    "AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= now()) "
    "AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.operation_id = o.operation_id "
    "  AND e.outbox_id < o.outbox_id AND e.published = false AND e.parked_at IS NULL "
    "  AND e.next_attempt_at > now()) "
    "AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.operation_id = o.operation_id "
    "  AND e.outbox_id < o.outbox_id AND e.published = false AND e.parked_at IS NOT NULL)";

}  // namespace

bool OutboxRepository::lock_partition(pqxx::work& tx, int partition) {
  return exec_prepared(tx, "bs_outbox_lock", "SELECT pg_try_advisory_xact_lock($1::integer, $2::integer)", kLockClass,
                       partition)[0][0]
      .as<bool>();
}

std::vector<OutboxRow> OutboxRepository::claim(pqxx::work& tx, int partition, std::size_t limit) {
  std::vector<OutboxRow> rows;
  const pqxx::result result =
      exec_prepared(tx, "bs_outbox_claim",
                    std::string("SELECT o.outbox_id, o.event_id::text, o.operation_id, o.exchange, o.routing_key, "
                                "  o.payload::text, o.retry_count, extract(epoch FROM o.created_at)::bigint "
                                "FROM outbox o WHERE o.operation_id % 16 = $1 AND ") +
                        kReady + " ORDER BY o.outbox_id LIMIT $2 FOR UPDATE SKIP LOCKED",
                    partition, static_cast<std::int64_t>(limit));
  rows.reserve(result.size());
  for (const auto& row : result) {
    rows.push_back({row[0].as<std::int64_t>(), row[1].as<std::string>(), row[2].as<std::int64_t>(),
                    row[3].as<std::string>(), row[4].as<std::string>(), row[5].as<std::string>(),
                    row[6].as<std::int32_t>(), row[7].as<std::int64_t>()});
  }
  return rows;
}

void OutboxRepository::mark_published(pqxx::work& tx, const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return;
  ArrayLiteral list;
  for (const auto id : ids) list.add(id);
  exec_prepared(tx, "bs_outbox_published",
                "UPDATE outbox SET published = true, published_at = now(), next_attempt_at = NULL "
                "WHERE outbox_id = ANY($1::bigint[])",
                list.str());
}

std::int64_t OutboxRepository::mark_failed(pqxx::work& tx, const std::vector<OutboxFailure>& failures,
                                           const RetryPolicy& policy) {
  if (failures.empty()) return 0;
  ArrayLiteral ids, errors;
  for (const auto& f : failures) {
    ids.add(f.outbox_id);
    errors.add(f.error);
  }
  const pqxx::result parked =
      exec_prepared(tx, "bs_outbox_failed",
                    "UPDATE outbox o SET retry_count = o.retry_count + 1, last_error = u.error, "
                    "  next_attempt_at = now() + make_interval(secs => least($4::double precision, "
                    "    $3::double precision * power(2, least(o.retry_count, 30)))), "
                    "  parked_at = CASE WHEN o.retry_count + 1 >= $5 THEN now() END "
                    "FROM unnest($1::bigint[], $2::text[]) AS u(id, error) WHERE o.outbox_id = u.id "
                    "RETURNING o.parked_at IS NOT NULL",
                    ids.str(), errors.str(), static_cast<double>(policy.backoff.count()) / 1000.0,
                    static_cast<double>(policy.max_backoff.count()) / 1000.0, policy.max_retries);
  std::int64_t n = 0;
  for (const auto& row : parked) n += row[0].as<bool>() ? 1 : 0;
  return n;
}

OutboxStats OutboxRepository::stats(pqxx::transaction_base& tx) {
  const pqxx::row row = tx.exec1(
      "SELECT (SELECT count(*) FROM outbox WHERE published = false AND parked_at IS NULL), "
      "  coalesce((SELECT extract(epoch FROM now() - min(created_at)) FROM outbox WHERE published = false "
      "    AND parked_at IS NULL), 0)::double precision, "
      "  (SELECT count(*) FROM outbox WHERE published = false AND parked_at IS NOT NULL), "
      // From the (few) parked rows to the later unpublished rows of their operations.
      "  (SELECT count(*) FROM outbox o JOIN (SELECT operation_id, min(outbox_id) AS first_parked FROM outbox "
      "     WHERE published = false AND parked_at IS NOT NULL GROUP BY operation_id) p "
      "     ON o.operation_id = p.operation_id AND o.outbox_id > p.first_parked "
      "   WHERE o.published = false AND o.parked_at IS NULL)");
  return {row[0].as<std::int64_t>(), row[1].as<double>(), row[2].as<std::int64_t>(), row[3].as<std::int64_t>()};
}

std::int64_t OutboxRepository::due(pqxx::transaction_base& tx) {
  return tx.exec1(std::string("SELECT count(*) FROM outbox o WHERE ") + kReady)[0].as<std::int64_t>();
}

namespace {

// Parked rows (of one operation, $1, or all when NULL), oldest first, with what each holds.
constexpr const char* kSelectParked =
    "SELECT o.outbox_id, o.operation_id, o.routing_key, o.retry_count, coalesce(o.last_error, ''), "
    "o.parked_at::text, "
    "(SELECT count(*) FROM outbox l WHERE l.operation_id = o.operation_id AND l.outbox_id > o.outbox_id "
    "   AND l.published = false AND l.parked_at IS NULL) "
    "FROM outbox o WHERE o.published = false AND o.parked_at IS NOT NULL "
    "AND ($1::bigint IS NULL OR o.operation_id = $1) ORDER BY o.outbox_id";
std::vector<ParkedRow> to_parked_rows(const pqxx::result& rows) {
  std::vector<ParkedRow> result;
  result.reserve(rows.size());
  for (const auto& row : rows) {
    result.push_back({row[0].as<std::int64_t>(), row[1].as<std::int64_t>(), row[2].as<std::string>(),
                      row[3].as<std::int32_t>(), row[4].as<std::string>(), row[5].as<std::string>(),
                      row[6].as<std::int64_t>()});
  }
  return result;
}

}  // namespace

std::vector<ParkedRow> OutboxRepository::parked(pqxx::transaction_base& tx, std::optional<std::int64_t> operation) {
  return to_parked_rows(exec_prepared(tx, "bs_outbox_parked", kSelectParked, operation));
}

std::vector<ParkedRow> OutboxRepository::requeue_parked(pqxx::work& tx, std::optional<std::int64_t> operation) {
  // Locked first, so the report is what this transaction re-queued (a drainer
  // or another operator acting at the same moment waits or finds none).
  std::vector<ParkedRow> rows = to_parked_rows(
      exec_prepared(tx, "bs_outbox_parked_lock", std::string(kSelectParked) + " FOR UPDATE OF o", operation));
  if (rows.empty()) return rows;
  ArrayLiteral ids;
  for (const auto& r : rows) ids.add(r.outbox_id);
  exec_prepared(tx, "bs_outbox_requeue",
                "UPDATE outbox SET parked_at = NULL, retry_count = 0, next_attempt_at = NULL "
                "WHERE outbox_id = ANY($1::bigint[])",
                ids.str());
  return rows;
}

}  // namespace backstop::store
