// A private RabbitMQ node for a test (real rabbitmq-server, 127.0.0.1 only, in
// a temporary directory), and a consumer that reads what reached a queue.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace backstop::testing {

class RabbitNode {
 public:
  RabbitNode();  // started and accepting AMQP connections
  ~RabbitNode();
  RabbitNode(const RabbitNode&) = delete;
  RabbitNode& operator=(const RabbitNode&) = delete;

  void start();
  void kill();                            // SIGKILL, as a crash; start() brings it back with its data
  [[nodiscard]] std::string url() const;  // amqp://guest:guest@127.0.0.1:<port>/
  [[nodiscard]] int port() const { return port_; }

 private:
  std::string dir_;
  std::string name_;
  int port_ = 0;
  int dist_port_ = 0;
  int pid_ = -1;
};

struct Received {
  std::string routing_key;
  std::string message_id;
  std::string content_type;
  int delivery_mode = 0;
  std::string body;
};

// Declares the durable topic exchange and a durable queue bound with `binding`
// (so published messages have somewhere to go), then reads what arrived.
class QueueReader {
 public:
  QueueReader(std::string url, std::string exchange, std::string queue, std::string binding = "stop.#");
  // Every message in the queue now (basic.get until empty), acknowledged.
  [[nodiscard]] std::vector<Received> take_all() const;

 private:
  std::string url_;
  std::string exchange_;
  std::string queue_;
};

}  // namespace backstop::testing
