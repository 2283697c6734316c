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

struct Drainer::InFlight {
  std::unique_ptr<pqxx::work> tx;
  std::vector<store::OutboxRow> rows;
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

std::optional<Drainer::InFlight> Drainer::start(AmqpPublisher& publisher, pqxx::connection& connection,
                                                int partition) {
  InFlight batch;
  batch.tx = std::make_unique<pqxx::work>(connection);
  if (!store::OutboxRepository::lock_partition(*batch.tx, partition)) return std::nullopt;
  batch.rows = store::OutboxRepository::claim(*batch.tx, partition, options_.batch_size);
  if (batch.rows.empty()) {
    batch.tx->commit();
    return std::nullopt;
  }
  std::vector<Message> messages;
  messages.reserve(batch.rows.size());
  for (const store::OutboxRow& row : batch.rows) {
    const std::string& exchange = row.exchange == "stop_events" ? options_.exchange : row.exchange;
    publisher.declare_exchange(exchange);
    messages.push_back({exchange, row.routing_key, row.event_id, row.payload, row.created_at});
  }
  batch.ticket = publisher.send(messages, options_.mandatory);
  return batch;
}

void Drainer::finish(AmqpPublisher& publisher, InFlight& batch, DrainSummary& summary) {
  const std::vector<PublishOutcome> outcomes = publisher.wait(batch.ticket);
  const std::vector<store::OutboxRow>& rows = batch.rows;
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
  store::OutboxRepository::mark_published(*batch.tx, published);
  const std::int64_t parked = store::OutboxRepository::mark_failed(*batch.tx, failures, options_.retry);
  batch.tx->commit();
  if (parked > 0) log::error("outbox rows parked after the retry limit", {{"rows", parked}});
  summary.published += static_cast<std::int64_t>(published.size());
  summary.failed += static_cast<std::int64_t>(failures.size());
  summary.parked += parked;
  ++summary.batches;
}

}  // namespace backstop::outbox
