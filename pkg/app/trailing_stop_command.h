// `trailing-stop`: move the stops of ACTIVE operations that trail (Hand-Span or
// an offset), each move a STOP_ADJUSTED event, exactly once per step.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "app/pass_loop.h"
#include "runtime/cli.h"
#include "runtime/exit_code.h"

namespace backstop::app {

class TrailingStopCommand {
 public:
  void add_to(CLI::App& app);
  runtime::ExitCode run(const runtime::CommonOptions& common);

 private:
  PassLoopOptions loop_;
  int batch_size_ = 500;
};

}  // namespace backstop::app
