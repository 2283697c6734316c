// `outbox-drain`: publish the outbox to RabbitMQ with publisher confirms.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
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
  bool list_parked_ = false;
  bool requeue_parked_ = false;
  std::int64_t operation_ = 0;

  // --list-parked / --requeue-parked: the operator's tools for parked rows.
  runtime::ExitCode run_parked(const runtime::CommonOptions& common) const;
};

}  // namespace backstop::app
