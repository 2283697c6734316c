// Runs the real binaries as child processes, the way CronJobs run them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace backstop::testing {

using Env = std::vector<std::pair<std::string, std::string>>;

struct ProcessResult {
  int exit_code = -1;  // when it exited
  int signal = 0;      // when a signal ended it
  std::string out;
  std::string err;
};

// Path of a built binary (build/bin/<name>).
std::string binary(const std::string& name);

class Process {
 public:
  // Starts `args` with the current environment plus `env` (which overrides).
  Process(std::vector<std::string> args, const Env& env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Waits for the exit; fails only when the process has been silent (no output)
  // and alive for `timeout`.
  ProcessResult wait(std::chrono::seconds timeout = std::chrono::seconds(120));
  void kill(int signal);
  [[nodiscard]] pid_t pid() const { return pid_; }
  // Waits until the process has written `text` to stderr (true); false when it
  // exited without, or wrote nothing at all for `timeout`.
  bool wait_for_stderr(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Alive (not exited, not yet waited for).
  [[nodiscard]] bool running() const;

 private:
  [[nodiscard]] std::uintmax_t output_size() const;

  pid_t pid_ = -1;
  std::string out_path_;
  std::string err_path_;
  bool waited_ = false;
};

ProcessResult run(std::vector<std::string> args, const Env& env = {});

// A TCP port on 127.0.0.1 that nothing listens on right now.
int free_port();

// The JSON log lines of `text` (a binary's stderr with BACKSTOP_LOG_FORMAT=json)
// whose message starts with `message_prefix`, in order; other lines are skipped.
std::vector<nlohmann::json> json_log_lines(const std::string& text, std::string_view message_prefix);

}  // namespace backstop::testing
