// `reconcile`: compare an exchange account's ACTIVE operations with what the
// account holds and its trades, and record what the account says (issue 13).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "app/pass_loop.h"
#include "runtime/cli.h"
#include "runtime/exit_code.h"

namespace backstop::app {

class ReconcileCommand {
 public:
  void add_to(CLI::App& app);
  runtime::ExitCode run(const runtime::CommonOptions& common);

 private:
  PassLoopOptions loop_;
  std::string account_;
  ExchangeCredentials credentials_;
  int grace_ms_ = 30000;
  int entry_lookback_ms_ = 600000;
  int entry_margin_ms_ = 5000;
  int max_closures_pct_ = 50;
  int orphan_check_interval_s_ = 600;
  bool cancel_orphans_ = false;
  bool list_orphans_ = false;
  bool stream_ = false;
  int max_weight_per_minute_ = 3000;
  std::string ws_api_url_;  // empty: derived from --exchange-url
  int stream_min_gap_ms_ = 1000;
  int stream_ping_interval_ms_ = 30000;

  // The WebSocket API URL: --ws-api-url, or Binance's (or its testnet's) after
  // --exchange-url; a usage error for any other exchange.
  [[nodiscard]] std::string ws_api_url() const;
  // --list-orphans: the account's orphan orders as the last passes recorded them.
  runtime::ExitCode list_orphans(const runtime::CommonOptions& common) const;
};

}  // namespace backstop::app
