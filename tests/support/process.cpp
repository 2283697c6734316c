#include "support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "support/progress.h"

extern char** environ;

namespace backstop::testing {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string temp_path(const char* suffix) {
  std::string pattern = std::string("/tmp/backstop-test-XXXXXX") + suffix;
  const int fd = mkstemps(pattern.data(), static_cast<int>(std::strlen(suffix)));
  if (fd < 0) throw std::runtime_error("mkstemps failed");
  close(fd);
  return pattern;
}

}  // namespace

std::string binary(const std::string& name) { return std::string(BACKSTOP_BIN_DIR) + "/" + name; }

Process::Process(std::vector<std::string> args, const Env& env) {
  out_path_ = temp_path(".out");
  err_path_ = temp_path(".err");
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const auto eq = entry.find('=');
    if (eq != std::string::npos) merged[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const auto& [k, v] : env) merged[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : merged) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path_.c_str(), O_WRONLY | O_TRUNC, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path_.c_str(), O_WRONLY | O_TRUNC, 0);
  const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(rc));
}

Process::~Process() {
  if (!waited_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::remove(out_path_.c_str());
  std::remove(err_path_.c_str());
}

void Process::kill(int signal) { ::kill(pid_, signal); }

ProcessResult Process::wait(std::chrono::seconds timeout) {
  // `timeout` is how long the process may stay silent: while it writes to
  // stdout or stderr it is making progress, however slow the machine.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::uintmax_t output = output_size();
  int status = 0;
  while (true) {
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) break;
    const auto now = std::chrono::steady_clock::now();
    if (const std::uintmax_t grown = output_size(); grown != output) {
      output = grown;
      deadline = now + timeout;
    }
    if (now > deadline) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      waited_ = true;
      throw std::runtime_error("process " + std::to_string(pid_) + " was silent for " +
                               std::to_string(timeout.count()) + " s and did not exit; stderr: " + slurp(err_path_));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  waited_ = true;
  ProcessResult result;
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  result.out = slurp(out_path_);
  result.err = slurp(err_path_);
  return result;
}

ProcessResult run(std::vector<std::string> args, const Env& env) { return Process(std::move(args), env).wait(); }

bool Process::wait_for_stderr(const std::string& text, std::chrono::milliseconds timeout) {
  const auto written = [&] { return slurp(err_path_).find(text) != std::string::npos; };
  // Still writing is slow, not stuck: the stall counts from its last output.
  (void)wait_until({.done = [&] { return written() || !running(); },
                    .progress = [&] { return std::to_string(slurp(err_path_).size()); },
                    .stall = timeout});
  return written();
}

bool Process::running() const {
  if (waited_ || pid_ <= 0) return false;
  siginfo_t info{};
  // WNOWAIT: look without reaping, so that wait() still gets the status.
  if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return false;
  return info.si_pid == 0;
}

std::uintmax_t Process::output_size() const {
  std::error_code ignored;
  const std::uintmax_t out = std::filesystem::file_size(out_path_, ignored);
  const std::uintmax_t err = std::filesystem::file_size(err_path_, ignored);
  return (out == static_cast<std::uintmax_t>(-1) ? 0 : out) + (err == static_cast<std::uintmax_t>(-1) ? 0 : err);
}

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

std::vector<nlohmann::json> json_log_lines(const std::string& text, std::string_view message_prefix) {
  std::vector<nlohmann::json> lines;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("msg", "").rfind(message_prefix, 0) == 0) lines.push_back(std::move(j));
  }
  return lines;
}

}  // namespace backstop::testing
