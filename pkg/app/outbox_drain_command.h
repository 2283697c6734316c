// `outbox-drain`: publish the outbox to RabbitMQ with publisher confirms.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "runtime/cli.h"
#include "runtime/exit_code.h"

namespace backstop::app {

class OutboxDrainCommand {
 public:
  void add_to(CLI::App& app);
  runtime::ExitCode run(const runtime::CommonOptions& common);

 private:
  std::string amqp_url_ = "amqp://guest:guest@127.0.0.1:5672/";
  std::string amqp_user_;
  std::string amqp_password_;
  std::string exchange_ = "stop_events";
  int batch_size_ = 500;
  bool once_ = false;
  bool json_ = false;
  bool no_mandatory_ = false;
  int poll_interval_ms_ = 200;
  int timeout_ms_ = 10000;
  int max_retries_ = 10;
  int retry_backoff_ms_ = 1000;
  int max_backoff_ms_ = 300000;
  std::string pushgateway_url_;
  std::string metrics_instance_;
};

}  // namespace backstop::app
