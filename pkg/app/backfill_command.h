// `backfill`: percent → absolute stops and genesis events for ACTIVE operations.
#pragma once

#include <CLI/CLI.hpp>

#include "runtime/cli.h"
#include "runtime/exit_code.h"

namespace backstop::app {

class BackfillCommand {
 public:
  void add_to(CLI::App& app);
  runtime::ExitCode run(const runtime::CommonOptions& common);

 private:
  int batch_size_ = 1000;
  bool dry_run_ = false;
  bool json_ = false;
};

}  // namespace backstop::app
