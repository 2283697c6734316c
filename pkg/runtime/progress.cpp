#include "runtime/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "runtime/log.h"

namespace backstop::runtime {
namespace {

std::string grouped(std::int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (n < 0 ? "-" : "") + out;
}

std::string duration(double seconds) {
  const auto s = static_cast<std::int64_t>(seconds + 0.5);
  if (s < 60) return std::to_string(s) + " s";
  if (s < 3600) return std::to_string(s / 60) + " min " + std::to_string(s % 60) + " s";
  return std::to_string(s / 3600) + " h " + std::to_string((s % 3600) / 60) + " min";
}

}  // namespace

Progress::Progress(std::string what, std::string unit, std::optional<std::int64_t> total,
                   std::chrono::milliseconds every)
    : what_(std::move(what)),
      unit_(std::move(unit)),
      total_(total),
      every_(every),
      terminal_(isatty(STDERR_FILENO) == 1),
      started_(Clock::now()) {
  if (const char* env = std::getenv("BACKSTOP_PROGRESS_EVERY_MS")) every_ = std::chrono::milliseconds(std::atoll(env));
  if (terminal_) every_ = std::chrono::milliseconds(200);
  next_ = started_ + every_;
}

Progress::~Progress() {
  try {
    finish();
  } catch (...) {  // a report must never end the work
  }
}

void Progress::add(std::int64_t done) {
  done_ += done;
  if (Clock::now() >= next_) report(false);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  // A line was shown: its last state; nothing was (short work): nothing now either.
  if (printed_) report(true);
}

std::string Progress::line() const {
  const double elapsed = std::chrono::duration<double>(Clock::now() - started_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0;
  std::string text = what_ + ": " + grouped(done_);
  if (total_) {
    text += " of " + grouped(*total_) + " " + unit_;
    if (*total_ > 0) text += " (" + std::to_string(done_ * 100 / *total_) + " %)";
  } else {
    text += " " + unit_;
  }
  text += ", " + grouped(static_cast<std::int64_t>(rate)) + "/s";
  if (total_ && rate > 0 && *total_ > done_)
    text += ", " + duration(static_cast<double>(*total_ - done_) / rate) + " left";
  return text;
}

void Progress::report(bool last) {
  printed_ = true;
  next_ = Clock::now() + every_;
  if (terminal_) {
    std::fprintf(stderr, "\r%s\033[K%s", line().c_str(), last ? "\n" : "");
    std::fflush(stderr);
    return;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - started_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0;
  std::vector<log::Field> fields = {
      {"work", what_}, {"unit", unit_}, {"done", done_}, {"rate_per_s", static_cast<std::int64_t>(rate)}};
  if (total_) {
    fields.emplace_back("total", *total_);
    if (rate > 0 && *total_ > done_) {
      fields.emplace_back("seconds_left", static_cast<std::int64_t>(static_cast<double>(*total_ - done_) / rate));
    }
  }
  log::info(last ? "progress: done" : "progress", fields);
}

}  // namespace backstop::runtime
