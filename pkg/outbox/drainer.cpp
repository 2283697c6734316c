#include "outbox/drainer.h"

#include <unordered_map>
#include <unordered_set>

#include "runtime/log.h"

namespace backstop::outbox {

void accumulate(DrainSummary& total, const DrainSummary& round) {
  total.published += round.published;
  total.failed += round.failed;
  total.parked += round.parked;
  total.batches += round.batches;
  if (round.broker_error) {
    total.broker_error = true;
    total.error = round.error;
  }
  total.seconds += round.seconds;
}

// One partition's batch in its transaction. An operation's rows go out in
// waves: its first row of the batch in wave 0, its second in wave 1 once the
// first is confirmed, and so on. A row is never sent before the broker took
// the earlier row of its operation, so a consumer can never see an event
// before an earlier one of the same operation that was nacked or returned
// (one confirm round trip per wave; most batches are a single wave).
struct Drainer::InFlight {
  std::unique_ptr<store::UnitOfWork> tx;
  std::vector<store::OutboxRow> rows;           // outbox_id order
  std::vector<std::vector<std::size_t>> waves;  // indexes into rows
  std::size_t wave = 0;                         // the wave in flight
  AmqpPublisher::Ticket ticket;
};

DrainSummary Drainer::round(AmqpPublisher& publisher) {
  const auto start_time = std::chrono::steady_clock::now();
  DrainSummary summary;
  publisher.declare_exchange(options_.exchange);
  std::optional<InFlight> slots[2];
  for (int partition = 0; partition < store::OutboxRepository::kPartitions; ++partition) {
    std::optional<InFlight>& slot = slots[partition % 2];
    if (slot) finish(publisher, *slot, summary);
    slot = start(publisher, *connections_[partition % 2], partition);
  }
  for (auto& slot : slots) {
    if (slot) finish(publisher, *slot, summary);
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return summary;
}

AmqpPublisher::Ticket Drainer::send(AmqpPublisher& publisher, const std::vector<store::OutboxRow>& rows,
                                    const std::vector<std::size_t>& which) {
  std::vector<Message> messages;
  messages.reserve(which.size());
  for (const std::size_t i : which) {
    const store::OutboxRow& row = rows[i];
    const std::string& exchange = row.exchange == "stop_events" ? options_.exchange : row.exchange;
    publisher.declare_exchange(exchange);
    messages.push_back({exchange, row.routing_key, row.event_id, row.payload, row.created_at});
  }
  return publisher.send(messages, options_.mandatory);
}

std::optional<Drainer::InFlight> Drainer::start(AmqpPublisher& publisher, store::Connection& connection,
                                                int partition) {
  InFlight batch;
  batch.tx = std::make_unique<store::UnitOfWork>(connection);
  if (!store::OutboxRepository::lock_partition(*batch.tx, partition)) return std::nullopt;
  batch.rows = store::OutboxRepository::claim(*batch.tx, partition, options_.batch_size);
  if (batch.rows.empty()) {
    batch.tx->commit();
    return std::nullopt;
  }
  std::unordered_map<std::int64_t, std::size_t> earlier;  // operation -> its rows so far in the batch
  for (std::size_t i = 0; i < batch.rows.size(); ++i) {
    const std::size_t wave = earlier[batch.rows[i].operation_id]++;
    if (wave == batch.waves.size()) batch.waves.emplace_back();
    batch.waves[wave].push_back(i);
  }
  batch.ticket = send(publisher, batch.rows, batch.waves[0]);
  return batch;
}

void Drainer::finish(AmqpPublisher& publisher, InFlight& batch, DrainSummary& summary) {
  const std::vector<store::OutboxRow>& rows = batch.rows;
  std::vector<std::int64_t> published;
  std::vector<store::OutboxFailure> failures;
  std::unordered_set<std::int64_t> failed_operations;
  std::int64_t held = 0;
  while (true) {
    const std::vector<PublishOutcome> outcomes = publisher.wait(batch.ticket);
    const std::vector<std::size_t>& sent = batch.waves[batch.wave];
    for (std::size_t k = 0; k < sent.size(); ++k) {
      const store::OutboxRow& row = rows[sent[k]];
      if (outcomes[k].delivered) {
        published.push_back(row.outbox_id);
        continue;
      }
      failures.push_back({row.outbox_id, outcomes[k].error});
      failed_operations.insert(row.operation_id);
      log::warn("outbox row not delivered; it will be retried", {{"outbox_id", row.outbox_id},
                                                                 {"event_id", row.event_id},
                                                                 {"error", outcomes[k].error},
                                                                 {"attempt", row.retry_count + 1}});
    }
    // The next wave, without the later rows of operations that just failed:
    // they are not sent and not charged a retry; they wait behind the failed row.
    std::vector<std::size_t> next;
    while (next.empty() && ++batch.wave < batch.waves.size()) {
      for (const std::size_t i : batch.waves[batch.wave]) {
        if (failed_operations.count(rows[i].operation_id) != 0) {
          ++held;
        } else {
          next.push_back(i);
        }
      }
    }
    if (next.empty()) break;
    batch.waves[batch.wave] = std::move(next);
    batch.ticket = send(publisher, rows, batch.waves[batch.wave]);
  }
  store::OutboxRepository::mark_published(*batch.tx, published);
  const std::int64_t parked = store::OutboxRepository::mark_failed(*batch.tx, failures, options_.retry);
  batch.tx->commit();
  if (held > 0) {
    log::info("outbox rows held behind a failed earlier row of their operation; not sent", {{"rows", held}});
  }
  if (parked > 0) log::error("outbox rows parked after the retry limit", {{"rows", parked}});
  summary.published += static_cast<std::int64_t>(published.size());
  summary.failed += static_cast<std::int64_t>(failures.size());
  summary.parked += parked;
  ++summary.batches;
}

}  // namespace backstop::outbox
