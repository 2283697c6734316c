// outbox-drain's reads and writes (DOMAIN §6).
//
// Rows are split into kPartitions by operation id. A drainer works on one
// partition at a time under a transaction-level advisory lock, so one
// operation's events are published by one drainer at a time, in outbox_id
// order; the rows themselves are taken FOR UPDATE SKIP LOCKED as well. Rows
// are flagged published one by one, never skipped by a checkpoint, so a row
// that commits late is simply published later (no xid8 watermark needed: it
// would hold the whole outbox back behind any long write transaction in the
// cluster). Events of one operation come from transactions serialized by the
// event store's row locks, so id order is commit order for them; the one
// exception is a claim racing a trailing adjustment, which are concurrent
// facts and leave in commit order. A row whose earlier sibling of the same
// operation waits for a retry waits with it; one whose earlier sibling is
// parked is held until that row is published or un-parked (`held` below).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

namespace backstop::store {

struct OutboxRow {
  std::int64_t outbox_id = 0;
  std::string event_id;
  std::int64_t operation_id = 0;
  std::string exchange;
  std::string routing_key;
  std::string payload;
  std::int32_t retry_count = 0;
  std::int64_t created_at = 0;  // seconds since the epoch
};

struct OutboxFailure {
  std::int64_t outbox_id = 0;
  std::string error;
};

struct RetryPolicy {
  int max_retries = 10;                     // attempts before a row is parked
  std::chrono::milliseconds backoff{1000};  // doubled per retry
  std::chrono::milliseconds max_backoff{300000};
};

// A row past the retry limit, as an operator sees it before re-queueing it.
struct ParkedRow {
  std::int64_t outbox_id = 0;
  std::int64_t operation_id = 0;
  std::string routing_key;
  std::int32_t retry_count = 0;
  std::string last_error;
  std::string parked_at;
  std::int64_t held = 0;  // later unpublished rows of its operation waiting behind it
};

struct OutboxStats {
  std::int64_t backlog = 0;  // unpublished, not parked (held rows included)
  double oldest_age_seconds = 0;
  std::int64_t parked = 0;
  std::int64_t held = 0;  // unpublished rows behind a parked earlier row of their operation
};

class OutboxRepository {
 public:
  static constexpr int kPartitions = 16;

  // True if this transaction now owns `partition` (never waits).
  static bool lock_partition(pqxx::work& tx, int partition);
  // Up to `limit` rows of the partition ready to publish, in outbox_id order,
  // locked; never a row behind a parked or retry-waiting row of its operation.
  static std::vector<OutboxRow> claim(pqxx::work& tx, int partition, std::size_t limit);
  static void mark_published(pqxx::work& tx, const std::vector<std::int64_t>& ids);
  // Counts a failed attempt with its error; the next attempt waits backoff x
  // 2^retries; a row that reaches max_retries is parked (kept, never deleted).
  // Returns how many were parked now.
  static std::int64_t mark_failed(pqxx::work& tx, const std::vector<OutboxFailure>& failures,
                                  const RetryPolicy& policy);
  static OutboxStats stats(pqxx::transaction_base& tx);
  // Rows due now (not published, not parked, not waiting for a retry nor
  // behind a sibling that does or is parked), including those another drainer holds.
  static std::int64_t due(pqxx::transaction_base& tx);
  // Parked rows (of one operation, or all), oldest first.
  static std::vector<ParkedRow> parked(pqxx::transaction_base& tx, std::optional<std::int64_t> operation);
  // Puts parked rows back in the queue with a fresh retry budget (their
  // last_error is kept for the record); they go first, then the rows they
  // held. Returns the rows as they were before.
  static std::vector<ParkedRow> requeue_parked(pqxx::work& tx, std::optional<std::int64_t> operation);
};

}  // namespace backstop::store
