// Publishing to RabbitMQ with rabbitmq-c (AMQP 0-9-1): one connection, one
// channel in confirm mode, durable topic exchanges declared once.
//
// send() writes a batch of persistent messages back to back and returns at
// once; wait() reads the broker's answers until every message of that batch is
// answered (confirms are handled in batches, not one round trip per message,
// and several batches may be in flight: answers for later ones are kept). A message is delivered when its basic.ack
// arrives and no basic.return came before it (mandatory: an unroutable message
// is a failure even though the broker acks it). A basic.nack is a failure.
// A configuration the broker can never accept throws BrokerConfigError (exit 2).
// Anything else that breaks the connection or the channel throws BrokerError: the
// fate of the messages not yet confirmed is then unknown, and the caller sends
// them again later (delivery is at least once; consumers dedupe by message id).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/exit_code.h"

namespace backstop::outbox {

class BrokerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A broker configuration that cannot work as given, however often it is
// tried: a malformed URL, amqps:// (not built in), a login the broker refuses
// (403 ACCESS_REFUSED: user or password), a vhost it does not have or does not
// let the user into (530 NOT_ALLOWED), an exchange it will not declare (403,
// or 406 PRECONDITION_FAILED: it exists with another type). A usage error
// (exit 2): not a BrokerError, so that no caller retries it, a continuous
// drainer included.
class BrokerConfigError : public runtime::UsageError {
 public:
  using runtime::UsageError::UsageError;
};

struct BrokerConfig {
  std::string url = "amqp://guest:guest@127.0.0.1:5672/";  // amqp://user:password@host:port/vhost
  std::optional<std::string> user;                         // override the URL's (e.g. from a Secret)
  std::optional<std::string> password;                     // override the URL's; never logged
  std::chrono::milliseconds timeout{10000};
  int heartbeat_seconds = 30;
};

// The URL without its password, for logs and errors.
std::string redact_url(const std::string& url);

// Checks what can be checked without connecting (the URL); throws BrokerConfigError.
void check_broker_config(const BrokerConfig& config);

struct Message {
  std::string exchange;
  std::string routing_key;
  std::string message_id;      // the event id
  std::string body;            // JSON
  std::int64_t timestamp = 0;  // seconds since the epoch
};

struct PublishOutcome {
  bool delivered = false;
  std::string error;  // why not: "nack", "returned: 312 NO_ROUTE", ...
};

class AmqpPublisher {
 public:
  // Connects, logs in, opens channel 1 in confirm mode. Throws BrokerError,
  // or BrokerConfigError when the configuration is at fault.
  explicit AmqpPublisher(BrokerConfig config);
  ~AmqpPublisher();
  AmqpPublisher(const AmqpPublisher&) = delete;
  AmqpPublisher& operator=(const AmqpPublisher&) = delete;

  // Declares a durable topic exchange (once per name per connection).
  void declare_exchange(const std::string& name);
  // A batch in flight: its delivery tags are [first_tag, first_tag + count).
  struct Ticket {
    std::uint64_t first_tag = 0;
    std::size_t count = 0;
  };
  // `mandatory`: unroutable is a failure.
  Ticket send(const std::vector<Message>& messages, bool mandatory);
  // One outcome per message of the batch, in order.
  std::vector<PublishOutcome> wait(const Ticket& ticket);
  std::vector<PublishOutcome> publish(const std::vector<Message>& messages, bool mandatory) {
    return wait(send(messages, mandatory));
  }

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace backstop::outbox
