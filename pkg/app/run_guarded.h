// The one place that maps what escapes a binary's command to its exit code
// (runtime::run_guarded), with a lost PostgreSQL connection mapped to exit 3
// (store::run_with_database). Every main calls this.
#pragma once

#include <functional>

#include "runtime/exit_code.h"

namespace backstop::app {

int run_guarded(const std::function<runtime::ExitCode()>& body);

}  // namespace backstop::app
