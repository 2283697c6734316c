// `stop-monitor`: detect triggered stops/targets and execute each exit exactly once.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/cli.h"
#include "runtime/exit_code.h"

namespace backstop::app {

class StopMonitorCommand {
 public:
  void add_to(CLI::App& app);
  runtime::ExitCode run(const runtime::CommonOptions& common);

 private:
  std::string exchange_url_ = "https://api.binance.com";
  std::string api_key_;
  std::string api_secret_;
  int recv_window_ms_ = 5000;
  int timeout_ms_ = 10000;
  int exchange_processing_ms_ = 10000;
  int max_clock_offset_ms_ = 1000;
  int send_deadline_ms_ = 3000;
  bool dry_run_ = false;
  bool json_ = false;
  bool continuous_ = false;
  double interval_s_ = 5;
  std::vector<std::int64_t> tenants_;
  std::vector<std::string> symbols_;
  std::string price_source_ = "last";
  int max_price_age_ms_ = 30000;
  int batch_size_ = 64;
  int orders_in_flight_ = 8;
  std::string pushgateway_url_;
  bool stream_ = false;
  std::string stream_url_ = "wss://stream.binance.com:9443";
  std::string metrics_instance_;
};

}  // namespace backstop::app
