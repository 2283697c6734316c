// cmdbench: runs a command N times and prints wall-clock and peak-RSS figures,
// so a Backstop binary and its baseline (psql, ...) are measured the same way
// in the same run.   cmdbench [--runs N] [--warmup N] --label NAME -- command args...
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Sample {
  double ms;
  long rss_kb;
  int status;
};

Sample run_once(char** argv) {
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    const int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, STDOUT_FILENO);
    dup2(devnull, STDERR_FILENO);
    execvp(argv[0], argv);
    _exit(127);
  }
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return {ms, usage.ru_maxrss, status};
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 30, warmup = 3;
  std::string label = "command";
  int i = 1;
  for (; i < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--warmup") == 0 && i + 1 < argc) {
      warmup = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--label") == 0 && i + 1 < argc) {
      label = argv[++i];
    } else if (std::strcmp(argv[i], "--") == 0) {
      ++i;
      break;
    }
  }
  if (i >= argc || runs < 1) {
    std::fprintf(stderr, "usage: cmdbench [--runs N] [--warmup N] --label NAME -- command args...\n");
    return 2;
  }
  char** command = argv + i;
  for (int w = 0; w < warmup; ++w) run_once(command);
  std::vector<Sample> samples;
  for (int r = 0; r < runs; ++r) {
    samples.push_back(run_once(command));
    if (!WIFEXITED(samples.back().status) || WEXITSTATUS(samples.back().status) != 0) {
      std::fprintf(stderr, "%s: run %d failed (status %d)\n", label.c_str(), r, samples.back().status);
      return 1;
    }
  }
  std::vector<double> ms;
  long rss = 0;
  for (const auto& s : samples) {
    ms.push_back(s.ms);
    rss = std::max(rss, s.rss_kb);
  }
  std::sort(ms.begin(), ms.end());
  double sum = 0;
  for (double m : ms) sum += m;
  std::printf("%-34s runs %3d  median %8.2f ms  p90 %8.2f ms  mean %8.2f ms  max RSS %6.1f MB\n", label.c_str(), runs,
              ms[ms.size() / 2], ms[ms.size() * 9 / 10], sum / static_cast<double>(ms.size()),
              static_cast<double>(rss) / 1024.0);
  return 0;
}
