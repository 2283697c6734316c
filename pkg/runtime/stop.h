// Graceful stop for long-running commands (--continuous, --stream, drains):
// SIGTERM (Kubernetes) and SIGINT set one flag the loops poll.
#pragma once

#include <atomic>
#include <chrono>

namespace backstop::runtime {

// Installs the SIGTERM / SIGINT handlers; returns the flag they set.
const std::atomic<bool>& install_stop_signals();
// Sleeps `duration`, returning early once a stop was requested.
void sleep_unless_stopped(std::chrono::duration<double> duration);

}  // namespace backstop::runtime
