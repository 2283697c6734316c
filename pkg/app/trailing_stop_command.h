// `trailing-stop`: move the stops of ACTIVE operations that trail (Hand-Span or
// an offset), each move a STOP_ADJUSTED event, exactly once per step.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/cli.h"
#include "runtime/exit_code.h"

namespace backstop::app {

class TrailingStopCommand {
 public:
  void add_to(CLI::App& app);
  runtime::ExitCode run(const runtime::CommonOptions& common);

 private:
  std::string exchange_url_ = "https://api.binance.com";
  int timeout_ms_ = 10000;
  bool dry_run_ = false;
  bool json_ = false;
  bool continuous_ = false;
  bool stream_ = false;
  std::string stream_url_ = "wss://stream.binance.com:9443";
  double interval_s_ = 5;
  std::vector<std::int64_t> tenants_;
  std::vector<std::string> symbols_;
  std::string price_source_ = "last";
  int max_price_age_ms_ = 30000;
  int batch_size_ = 500;
  std::string pushgateway_url_;
  std::string metrics_instance_;
};

}  // namespace backstop::app
