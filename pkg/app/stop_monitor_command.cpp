#include "app/stop_monitor_command.h"

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "exchange/binance_client.h"
#include "monitor/run_metrics.h"
#include "monitor/stop_monitor.h"
#include "monitor/stream_runner.h"
#include "runtime/log.h"
#include "runtime/stop.h"
#include "store/db.h"

namespace backstop::app {
namespace {

nlohmann::json to_json(const monitor::PassSummary& s) {
  nlohmann::json reports = nlohmann::json::array();
  for (const auto& r : s.reports) {
    reports.push_back({{"operation_id", r.operation_id}, {"tenant_id", r.tenant_id}, {"symbol", r.symbol},
                       {"side", r.side}, {"kind", r.kind}, {"level", r.level}, {"price", r.price},
                       {"execution_token", r.token}, {"outcome", r.outcome}});
  }
  nlohmann::json j = {{"symbols", s.symbols},     {"candidates", s.candidates}, {"triggered", s.triggered},
                      {"duplicates", s.duplicates}, {"executed", s.executed},   {"failed", s.failed}, {"quarantined", s.quarantined},
                      {"pending", s.pending},       {"resumed", s.resumed},     {"blocked", s.blocked},
                      {"seconds", s.seconds},       {"triggers", reports}};
  if (!s.error.empty()) j["error"] = s.error;
  if (!s.claim_latencies_us.empty()) {
    std::vector<std::int64_t> sorted = s.claim_latencies_us;
    std::sort(sorted.begin(), sorted.end());
    auto at = [&](double q) { return sorted[std::min(sorted.size() - 1, static_cast<std::size_t>(q * static_cast<double>(sorted.size())))]; };
    j["claim_latency_us"] = {{"count", sorted.size()}, {"p50", at(0.5)}, {"p99", at(0.99)}, {"max", sorted.back()}};
  }
  return j;
}

std::string to_text(const monitor::PassSummary& s, bool dry_run) {
  std::string text;
  for (const auto& r : s.reports) {
    text += "  " + r.kind + " op " + std::to_string(r.operation_id) + " " + r.side + " " + r.symbol + " level " +
            r.level + " price " + r.price + " -> " + r.outcome + "\n";
  }
  std::string blocked;
  for (const auto& [reason, n] : s.blocked) blocked += " " + reason + "=" + std::to_string(n);
  char line[400];
  std::snprintf(line, sizeof line,
                "%s%lld symbols, %lld triggered, %lld executed, %lld failed, %lld pending, %lld duplicates, "
                "%lld resumed, blocked:%s, %.3f s\n",
                dry_run ? "DRY RUN: " : "", static_cast<long long>(s.symbols), static_cast<long long>(s.triggered),
                static_cast<long long>(s.executed), static_cast<long long>(s.failed),
                static_cast<long long>(s.pending), static_cast<long long>(s.duplicates),
                static_cast<long long>(s.resumed), blocked.empty() ? " none" : blocked.c_str(), s.seconds);
  return text + (s.error.empty() ? "" : "error: " + s.error + "\n") + line;
}

}  // namespace

void StopMonitorCommand::add_to(CLI::App& app) {
  app.add_option("--exchange-url", exchange_url_, "Binance-compatible REST base URL")
      ->envname("BACKSTOP_EXCHANGE_URL")
      ->capture_default_str();
  app.add_option("--api-key", api_key_, "exchange API key")->envname("BACKSTOP_EXCHANGE_API_KEY");
  app.add_option("--api-secret", api_secret_, "exchange API secret (prefer the environment / a Secret)")
      ->envname("BACKSTOP_EXCHANGE_API_SECRET");
  app.add_option("--recv-window-ms", recv_window_ms_, "recvWindow of signed requests")
      ->check(CLI::Range(1, 60000))
      ->capture_default_str();
  app.add_option("--exchange-processing-ms", exchange_processing_ms_,
                 "how long the exchange may still execute an order after it arrived (Binance: 10 s); part of the "
                 "re-send fence")
      ->envname("BACKSTOP_EXCHANGE_PROCESSING_MS")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  app.add_option("--max-clock-offset-ms", max_clock_offset_ms_,
                 "the most the exchange's clock and the database's may differ; part of the re-send fence")
      ->envname("BACKSTOP_MAX_CLOCK_OFFSET_MS")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  app.add_option("--send-deadline-ms", send_deadline_ms_,
                 "an order not sent this long after its EXECUTION_SUBMITTED waits for the fence instead; part of "
                 "the re-send fence")
      ->envname("BACKSTOP_SEND_DEADLINE_MS")
      ->check(CLI::Range(100, 60000))
      ->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms_, "HTTP timeout per exchange call")
      ->check(CLI::Range(100, 120000))
      ->capture_default_str();
  app.add_flag("--dry-run", dry_run_, "evaluate and print; write nothing, send nothing");
  app.add_flag("--json", json_, "print the pass summary as JSON");
  app.add_flag("--continuous", continuous_, "repeat passes until SIGTERM");
  app.add_flag("--stream", stream_, "act on every WebSocket price tick (plus a REST pass every --interval) until SIGTERM");
  app.add_option("--stream-url", stream_url_, "Binance-compatible WebSocket stream base URL")
      ->envname("BACKSTOP_STREAM_URL")
      ->capture_default_str();
  app.add_option("--interval", interval_s_, "seconds between passes with --continuous")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  app.add_option("--tenant", tenants_, "only these tenants (repeatable or comma-separated; shards work between monitors)")
      ->delimiter(',');
  app.add_option("--symbol", symbols_, "only these symbols (repeatable or comma-separated)")->delimiter(',');
  app.add_option("--price-source", price_source_, "last (last trade) or book (bid for longs, ask for shorts)")
      ->check(CLI::IsMember({"last", "book"}))
      ->capture_default_str();
  app.add_option("--batch-size", batch_size_, "exits driven together (one lock call, read and transaction per stage)")
      ->check(CLI::Range(1, 1000))
      ->envname("BACKSTOP_BATCH_SIZE")
      ->capture_default_str();
  app.add_option("--orders-in-flight", orders_in_flight_,
                 "new orders sent at once, each on its own connection (1: one after another)")
      ->check(CLI::Range(1, 64))
      ->envname("BACKSTOP_ORDERS_IN_FLIGHT")
      ->capture_default_str();
  app.add_option("--max-price-age-ms", max_price_age_ms_, "older prices are not acted on (guardrail)")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();
  app.add_option("--pushgateway-url", pushgateway_url_, "push the run's metrics here (http://host:port)")
      ->envname("BACKSTOP_PUSHGATEWAY_URL");
  app.add_option("--metrics-instance", metrics_instance_, "grouping label of this monitor's metrics (its shard)")
      ->envname("BACKSTOP_METRICS_INSTANCE");
}

runtime::ExitCode StopMonitorCommand::run(const runtime::CommonOptions& common) {
  if (!dry_run_ && (api_key_.empty() || api_secret_.empty())) {
    throw runtime::UsageError(
        "the exchange API key and secret are required (BACKSTOP_EXCHANGE_API_KEY / BACKSTOP_EXCHANGE_API_SECRET); "
        "use --dry-run to evaluate without them");
  }
  std::optional<monitor::PushTarget> push;
  if (!pushgateway_url_.empty()) {
    push = monitor::parse_pushgateway_url(pushgateway_url_);
    if (!metrics_instance_.empty()) push->labels["instance"] = metrics_instance_;
  }
  const auto run_start = std::chrono::steady_clock::now();
  try {
    auto connection = store::connect(common.database_url, "backstop-stop-monitor");
    exchange::configure_http_threads(1);
    exchange::BinanceConfig config;
    config.base_url = exchange_url_;
    config.api_key = api_key_;
    config.api_secret = api_secret_;
    config.recv_window = std::chrono::milliseconds(recv_window_ms_);
    config.timeout = std::chrono::milliseconds(timeout_ms_);
    const core::PriceSource source = *core::parse_price_source(price_source_);
    config.fetch_book = source == core::PriceSource::kBook;
    exchange::BinanceClient client(config, exchange::make_cpprest_transport(exchange_url_, config.timeout));
    monitor::MonitorOptions options;
    options.dry_run = dry_run_;
    options.price_source = source;
    options.filter.tenants = tenants_;
    options.filter.symbols = symbols_;
    options.max_price_age = std::chrono::milliseconds(max_price_age_ms_);
    options.batch_size = static_cast<std::size_t>(batch_size_);
    options.orders_in_flight = static_cast<std::size_t>(orders_in_flight_);
    options.timing.recv_window = config.recv_window;
    options.timing.exchange_processing = std::chrono::milliseconds(exchange_processing_ms_);
    options.timing.max_clock_offset = std::chrono::milliseconds(max_clock_offset_ms_);
    options.timing.send_deadline = std::chrono::milliseconds(send_deadline_ms_);
    if (stream_) options.source = core::EventSource::kStream;
    monitor::StopMonitor monitor(*connection, client, options);

    const std::atomic<bool>& stop_requested = runtime::install_stop_signals();
    if (stream_) {
      // The claimer (this connection) and the driver (its own connection and
      // exchange client) work on separate threads; see stream_runner.h.
      auto driver_connection = store::connect(common.database_url, "backstop-stop-monitor-driver");
      exchange::BinanceClient driver_client(config, exchange::make_cpprest_transport(exchange_url_, config.timeout));
      monitor::StopMonitor driver(*driver_connection, driver_client, options);
      store::MonitorRepository repository(*connection);
      auto stream = exchange::make_cpprest_price_stream(stream_url_);
      monitor::StreamOptions stream_options;
      stream_options.backstop_interval =
          std::chrono::milliseconds(static_cast<std::int64_t>(interval_s_ * 1000));
      stream_options.book = source == core::PriceSource::kBook;
      monitor::StreamRunner runner(monitor, driver, repository, *stream, options.filter, stream_options);
      const monitor::PassSummary total = runner.run(stop_requested);
      std::cout << (json_ ? to_json(total).dump() + "\n" : to_text(total, dry_run_)) << std::flush;
      return total.failed > 0 || total.quarantined > 0 ? runtime::ExitCode::kPartialFailure : runtime::ExitCode::kOk;
    }
    runtime::ExitCode exit_code = runtime::ExitCode::kOk;
    do {
      const monitor::PassSummary summary = monitor.run_pass();
      std::cout << (json_ ? to_json(summary).dump() + "\n" : to_text(summary, dry_run_)) << std::flush;
      log::info("pass finished", {{"triggered", summary.triggered},
                                  {"executed", summary.executed},
                                  {"failed", summary.failed},
                                  {"duplicates", summary.duplicates}});
      if (summary.price_error) {
        exit_code = runtime::ExitCode::kDependencyUnavailable;
      } else if (summary.failed > 0 || summary.quarantined > 0) {
        exit_code = runtime::ExitCode::kPartialFailure;
      } else {
        exit_code = runtime::ExitCode::kOk;
      }
      if (push && !dry_run_) {
        monitor::push_run_metrics(
            *push, summary, exit_code == runtime::ExitCode::kOk,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count());
      }
      if (continuous_) runtime::sleep_unless_stopped(std::chrono::duration<double>(interval_s_));
    } while (continuous_ && !stop_requested);
    return exit_code;
  } catch (const pqxx::broken_connection& e) {
    throw runtime::DependencyError(std::string("lost the PostgreSQL connection: ") + e.what());
  }
}

}  // namespace backstop::app
