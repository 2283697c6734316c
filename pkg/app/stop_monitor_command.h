// `stop-monitor`: detect triggered stops/targets and execute each exit exactly once.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "app/pass_loop.h"
#include "runtime/cli.h"
#include "runtime/exit_code.h"

namespace backstop::app {

class StopMonitorCommand {
 public:
  void add_to(CLI::App& app);
  runtime::ExitCode run(const runtime::CommonOptions& common);

 private:
  PassLoopOptions loop_;
  ExchangeCredentials credentials_;
  int exchange_processing_ms_ = 10000;
  int max_clock_offset_ms_ = 1000;
  int send_deadline_ms_ = 3000;
  int max_balance_age_ms_ = 5000;
  int batch_size_ = 64;
  int orders_in_flight_ = 8;
};

}  // namespace backstop::app
