// Long work tells how far it is: rows done of the total, the rate, and the
// time left. On a terminal, one line on stderr rewritten in place (at most 5
// times a second); otherwise a JSON log line ("progress") every few seconds,
// for kubectl logs. Neither touches stdout, so --json output is unchanged.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace backstop::runtime {

class Progress {
 public:
  using Clock = std::chrono::steady_clock;

  // `what` names the work ("backfill"), `unit` what is counted ("operations");
  // `total` when known. `every`: the log line's interval when stderr is not a
  // terminal (BACKSTOP_PROGRESS_EVERY_MS overrides it).
  Progress(std::string what, std::string unit, std::optional<std::int64_t> total,
           std::chrono::milliseconds every = std::chrono::milliseconds(5000));
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress();

  void add(std::int64_t done);  // more done; reports when due
  void finish();                // the last report (once; also by the destructor)

  // The line a report prints (for tests): "backfill: 400 of 1,000 operations (40 %), 812/s, 1 s left".
  [[nodiscard]] std::string line() const;

 private:
  void report(bool last);

  std::string what_;
  std::string unit_;
  std::optional<std::int64_t> total_;
  std::chrono::milliseconds every_;
  bool terminal_;
  std::int64_t done_ = 0;
  Clock::time_point started_;
  Clock::time_point next_;
  bool finished_ = false;
  bool printed_ = false;
};

}  // namespace backstop::runtime
