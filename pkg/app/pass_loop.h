// The loop of the price-driven binaries (stop-monitor, trailing-stop): their
// shared options, and one run of passes — one pass (the default, a CronJob's
// run), passes until SIGTERM (--continuous), or every tick of a WebSocket price
// stream plus a REST pass every --interval (--stream). After each pass the
// figures are pushed to the Pushgateway, then the summary (with the pushes'
// failures) printed and logged; the exit code follows the last pass (or the
// stream's total), never the push. A binary supplies its pass and
// its own options, nothing else.
#pragma once

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/trigger.h"
#include "exchange/binance_client.h"
#include "exchange/price_stream.h"
#include "feed/price_feed.h"
#include "runtime/cli.h"
#include "runtime/exit_code.h"
#include "runtime/log.h"
#include "store/monitor_repository.h"
#include "store/unit_of_work.h"

namespace backstop::metrics {
struct PushTarget;
struct PushOutcome;
struct PushRecord;
}  // namespace backstop::metrics

namespace backstop::app {

// The options every price-driven binary has (flags, environment, config file).
struct PassLoopOptions {
  std::string exchange_url = "https://api.binance.com";
  int timeout_ms = 10000;
  bool dry_run = false;
  bool json = false;
  bool continuous = false;
  bool stream = false;
  std::string stream_url = "wss://stream.binance.com:9443";
  double interval_s = 5;
  std::vector<std::int64_t> tenants;
  std::vector<std::string> symbols;
  std::string price_source = "last";
  int max_price_age_ms = 30000;
  std::string pushgateway_url;
  std::string metrics_instance;
  std::string health_bind;  // HOST:PORT of /healthz and /readyz (--stream / --continuous only)

  // `prices`: the flags of the price-driven binaries too (--stream, --symbol,
  // --price-source, --max-price-age-ms); reconcile reads no prices to act on.
  void add_to(CLI::App& app, bool prices = true);

  [[nodiscard]] core::PriceSource source() const;
  [[nodiscard]] store::ScanFilter filter() const;
  // The exchange client's settings these options decide: base URL, timeout,
  // and bid/ask reads for --price-source=book.
  [[nodiscard]] exchange::BinanceConfig exchange_config() const;
};

// The signed side of the exchange (stop-monitor, reconcile): key, secret and
// recvWindow, from flags or the environment.
struct ExchangeCredentials {
  std::string api_key;
  std::string api_secret;
  int recv_window_ms = 5000;

  void add_to(CLI::App& app);
  [[nodiscard]] bool present() const { return !api_key.empty() && !api_secret.empty(); }
  // `config` (PassLoopOptions::exchange_config()) with these for signed requests.
  [[nodiscard]] exchange::BinanceConfig sign(exchange::BinanceConfig config) const;
};

// What one pass (or a whole --stream run) did, as the loop reports it.
struct PassReport {
  // The summary as printed (text, or one JSON line with --json), with the
  // process's pushes so far (null: it does not push).
  std::function<std::string(const metrics::PushRecord* pushes)> print;
  std::vector<log::Field> log_fields;  // of the "pass finished" line
  // The exchange did not answer what the pass needs (prices, the account):
  // exit 3 after a pass (a stream retries on its own).
  bool exchange_unreachable = false;
  bool partial_failure = false;  // some work failed: exit 1
  // Pushes this pass's figures to the Pushgateway (after each pass, unless --dry-run).
  std::function<metrics::PushOutcome(const metrics::PushTarget& target, bool success, double run_seconds)> push;
};

// What PassReport::print returns for a summary: `text()`, or with --json
// `object()` on one line, each with the process's pushes.
std::string print_summary(bool json, const std::function<std::string()>& text,
                          const std::function<nlohmann::json()>& object, const metrics::PushRecord* pushes);

// --stream: the price stream the loop opened, and where its symbols come from.
struct PriceStreamWiring {
  store::MonitorRepository& repository;  // on the loop's connection
  exchange::PriceStream& stream;
  feed::StreamOptions options;  // REST passes every --interval; book ticks for --price-source=book
};

// A binary's passes: one REST pass, and a run on the price stream until `stop`
// that returns everything it did.
struct Passes {
  std::function<PassReport()> run_pass;
  std::function<PassReport(PriceStreamWiring& wiring, const std::atomic<bool>& stop)> run_stream;
  // --continuous: waits between two passes; null: --interval. A binary that
  // hears of work sooner (reconcile's user data stream) returns early.
  std::function<void(std::chrono::milliseconds interval, const std::atomic<bool>& stop)> wait;
};

// What run_passes hands a binary to build its passes on.
class PassSession {
 public:
  PassSession(store::Connection& connection, const PassLoopOptions& options, const metrics::PushTarget* push,
              std::chrono::steady_clock::time_point run_start)
      : connection_(connection), options_(options), push_(push), run_start_(run_start) {}

  [[nodiscard]] store::Connection& connection() const { return connection_; }
  // Runs `passes` as the options say; the exit code of the run.
  [[nodiscard]] runtime::ExitCode run(const Passes& passes) const;

 private:
  store::Connection& connection_;
  const PassLoopOptions& options_;
  const metrics::PushTarget* push_;                  // null: no Pushgateway
  std::chrono::steady_clock::time_point run_start_;  // the pushed run duration counts from here
};

// Names one binary: its database connection (application_name "backstop-<name>")
// and its Pushgateway job.
struct PassBinary {
  std::string name;
  std::string push_job;
};

// Connects to the database (the common options), then calls `build`, which
// makes the binary's pass on the session and returns session.run(...). A lost
// PostgreSQL connection becomes a DependencyError (exit 3).
runtime::ExitCode run_passes(const runtime::CommonOptions& common, const PassLoopOptions& options,
                             const PassBinary& binary,
                             const std::function<runtime::ExitCode(const PassSession& session)>& build);

}  // namespace backstop::app
