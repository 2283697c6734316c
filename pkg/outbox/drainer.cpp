#include "outbox/drainer.h"

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

DrainSummary Drainer::round(AmqpPublisher& publisher) {
  const auto start = std::chrono::steady_clock::now();
  DrainSummary summary;
  publisher.declare_exchange(options_.exchange);
  for (int partition = 0; partition < store::OutboxRepository::kPartitions; ++partition) {
    batch(publisher, partition, summary);
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

bool Drainer::batch(AmqpPublisher& publisher, int partition, DrainSummary& summary) {
  pqxx::work tx(connection_);
  if (!store::OutboxRepository::lock_partition(tx, partition)) return false;
  const std::vector<store::OutboxRow> rows = store::OutboxRepository::claim(tx, partition, options_.batch_size);
  if (rows.empty()) {
    tx.commit();
    return true;
  }
  std::vector<Message> messages;
  messages.reserve(rows.size());
  for (const store::OutboxRow& row : rows) {
    const std::string& exchange = row.exchange == "stop_events" ? options_.exchange : row.exchange;
    publisher.declare_exchange(exchange);
    messages.push_back({exchange, row.routing_key, row.event_id, row.payload, row.created_at});
  }
  const std::vector<PublishOutcome> outcomes = publisher.publish(messages, options_.mandatory);
  std::vector<std::int64_t> published;
  std::vector<store::OutboxFailure> failures;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (outcomes[i].delivered) {
      published.push_back(rows[i].outbox_id);
    } else {
      failures.push_back({rows[i].outbox_id, outcomes[i].error});
      log::warn("outbox row not delivered; it will be retried",
                {{"outbox_id", rows[i].outbox_id}, {"event_id", rows[i].event_id}, {"error", outcomes[i].error},
                 {"attempt", rows[i].retry_count + 1}});
    }
  }
  store::OutboxRepository::mark_published(tx, published);
  const std::int64_t parked = store::OutboxRepository::mark_failed(tx, failures, options_.retry);
  tx.commit();
  if (parked > 0) log::error("outbox rows parked after the retry limit", {{"rows", parked}});
  summary.published += static_cast<std::int64_t>(published.size());
  summary.failed += static_cast<std::int64_t>(failures.size());
  summary.parked += parked;
  ++summary.batches;
  return true;
}

}  // namespace backstop::outbox
