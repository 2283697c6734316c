// Crash points for recovery tests: when BACKSTOP_FAULT_POINT is "name" or
// "name:N", the N-th (default first) call of fault_point("name") aborts the
// process on the spot, as a kill -9 would, with nothing flushed or rolled back
// by the process itself. Unset in production: the check is one getenv per call.
#pragma once

#include <string_view>

namespace backstop::runtime {

void fault_point(std::string_view name);

}  // namespace backstop::runtime
