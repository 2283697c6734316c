// `migrate`: up, down [N], status, plan, verify, repair and replay (rebuild the
// projections from the event log and compare them with the live rows).
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "runtime/cli.h"
#include "runtime/exit_code.h"

namespace backstop::app {

class MigrateCommand {
 public:
  void add_to(CLI::App& app);
  runtime::ExitCode run(const runtime::CommonOptions& common);

 private:
  std::string migrations_dir_;
  std::string backup_dir_;
  int lock_timeout_ms_ = 5000;
  int runner_lock_wait_s_ = 600;
  bool json_ = false;
  std::optional<int> target_;
  int down_count_ = 1;
  bool allow_data_loss_ = false;
  bool rewrite_ = false;
  CLI::App* up_ = nullptr;
  CLI::App* down_ = nullptr;
  CLI::App* status_ = nullptr;
  CLI::App* plan_ = nullptr;
  CLI::App* verify_ = nullptr;
  CLI::App* repair_ = nullptr;
  CLI::App* replay_ = nullptr;
};

}  // namespace backstop::app
