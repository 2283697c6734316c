// outbox-drain's work (DOMAIN §6): the outbox rows to RabbitMQ, each exactly
// once on the normal path and at least once whatever happens.
//
// A round visits the partitions of store::OutboxRepository; for each one it
// owns (never waiting for another drainer's), in one transaction: take up to
// batch_size ready rows in order, publish them back to back as persistent
// JSON messages (message id = event id) with publisher confirms, then mark the
// confirmed rows published and count a failed attempt on the others (nack,
// returned as unroutable), parking a row past the retry limit. One
// operation's events leave strictly in order: its second row of a batch is
// sent only once the broker confirmed its first (rows go out in waves), and
// once one of its rows fails, its later rows of the batch are not sent at all
// (nor charged a retry): they wait behind the failed row, and behind it for
// good if it is parked (store::OutboxRepository::claim). Two partitions
// are in flight at a time, each on its own database connection: while the
// broker confirms one batch, the next is read and sent. If the broker
// connection or channel breaks, the transaction rolls back and nothing is
// marked: those rows go out again after reconnecting (consumers dedupe by
// message id), and no row is charged a retry for a broker outage.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "outbox/amqp_publisher.h"
#include "store/outbox_repository.h"
#include "store/unit_of_work.h"

namespace backstop::outbox {

struct DrainOptions {
  std::string exchange = "stop_events";  // the broker exchange for the outbox's "stop_events" rows
  std::size_t batch_size = 500;          // rows per transaction and confirm batch
  bool mandatory = true;                 // an unroutable message is a failure
  store::RetryPolicy retry;
};

struct DrainSummary {
  std::int64_t published = 0;
  std::int64_t failed = 0;  // attempts that failed (the rows wait and retry)
  std::int64_t parked = 0;  // rows parked by this run
  std::int64_t batches = 0;
  bool broker_error = false;
  std::string error;
  double seconds = 0;
  store::OutboxStats after;  // backlog, oldest age, parked and held rows when the run ended
};

void accumulate(DrainSummary& total, const DrainSummary& round);

class Drainer {
 public:
  // Two connections: one batch in flight on each.
  Drainer(store::Connection& first, store::Connection& second, DrainOptions options)
      : connections_{&first, &second}, options_(std::move(options)) {}

  // One pass over every partition (one batch each). Throws BrokerError when
  // the broker fails; the transaction of the batch in flight is rolled back.
  DrainSummary round(AmqpPublisher& publisher);

 private:
  struct InFlight;
  // Reads one partition's batch and sends it (nullopt: nothing to send, or
  // another drainer owns the partition).
  std::optional<InFlight> start(AmqpPublisher& publisher, store::Connection& connection, int partition);
  // Waits for the batch's confirms (sending its later waves), marks its rows, commits.
  void finish(AmqpPublisher& publisher, InFlight& batch, DrainSummary& summary);
  AmqpPublisher::Ticket send(AmqpPublisher& publisher, const std::vector<store::OutboxRow>& rows,
                             const std::vector<std::size_t>& which);

  store::Connection* connections_[2];
  DrainOptions options_;
};

}  // namespace backstop::outbox
