#include "runtime/stop.h"

#include <csignal>
#include <thread>

namespace backstop::runtime {
namespace {

std::atomic<bool> stop_requested{false};

}  // namespace

const std::atomic<bool>& install_stop_signals() {
  std::signal(SIGTERM, [](int) { stop_requested = true; });
  std::signal(SIGINT, [](int) { stop_requested = true; });
  return stop_requested;
}

void sleep_unless_stopped(std::chrono::duration<double> duration) {
  const auto until = std::chrono::steady_clock::now() + duration;
  while (!stop_requested && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace backstop::runtime
