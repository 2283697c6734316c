#include "app/stop_monitor_command.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "exchange/binance_client.h"
#include "exits/stop_monitor.h"
#include "exits/stream_runner.h"
#include "metrics/run_metrics.h"
#include "net/http.h"
#include "store/db.h"

namespace backstop::app {
namespace {

nlohmann::json to_json(const exits::PassSummary& s) {
  nlohmann::json reports = nlohmann::json::array();
  for (const auto& r : s.reports) {
    reports.push_back({{"operation_id", r.operation_id},
                       {"tenant_id", r.tenant_id},
                       {"symbol", r.symbol},
                       {"side", r.side},
                       {"kind", r.kind},
                       {"level", r.level},
                       {"price", r.price},
                       {"execution_token", r.token},
                       {"outcome", r.outcome}});
  }
  nlohmann::json j = {{"symbols", s.symbols},         {"candidates", s.candidates}, {"triggered", s.triggered},
                      {"duplicates", s.duplicates},   {"executed", s.executed},     {"failed", s.failed},
                      {"quarantined", s.quarantined}, {"pending", s.pending},       {"resumed", s.resumed},
                      {"blocked", s.blocked},         {"seconds", s.seconds},       {"triggers", reports}};
  if (!s.error.empty()) j["error"] = s.error;
  if (s.malformed_frames > 0) j["malformed_frames"] = s.malformed_frames;
  if (!s.claim_latencies_us.empty()) {
    std::vector<std::int64_t> sorted = s.claim_latencies_us;
    std::sort(sorted.begin(), sorted.end());
    auto at = [&](double q) {
      return sorted[std::min(sorted.size() - 1, static_cast<std::size_t>(q * static_cast<double>(sorted.size())))];
    };
    j["claim_latency_us"] = {{"count", sorted.size()}, {"p50", at(0.5)}, {"p99", at(0.99)}, {"max", sorted.back()}};
  }
  return j;
}

std::string to_text(const exits::PassSummary& s, bool dry_run) {
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
                static_cast<long long>(s.executed), static_cast<long long>(s.failed), static_cast<long long>(s.pending),
                static_cast<long long>(s.duplicates), static_cast<long long>(s.resumed),
                blocked.empty() ? " none" : blocked.c_str(), s.seconds);
  if (s.malformed_frames > 0) text += std::to_string(s.malformed_frames) + " malformed stream frames skipped\n";
  return text + (s.error.empty() ? "" : "error: " + s.error + "\n") + line;
}

// The figures of one stop-monitor run (possibly several passes with --continuous).
metrics::PushOutcome push_run_metrics(const metrics::PushTarget& target, const exits::PassSummary& pass, bool success,
                                      double run_seconds) {
  std::vector<metrics::RunFigure> figures = {
      {"last_run_triggers", "Stops and targets found crossed in the last run", {}, static_cast<double>(pass.triggered)},
  };
  const char* const executions = "Exits of the last run by outcome";
  figures.push_back({"last_run_executions", executions, {{"outcome", "executed"}}, static_cast<double>(pass.executed)});
  figures.push_back({"last_run_executions", executions, {{"outcome", "failed"}}, static_cast<double>(pass.failed)});
  figures.push_back({"last_run_executions", executions, {{"outcome", "pending"}}, static_cast<double>(pass.pending)});
  figures.push_back(
      {"last_run_executions", executions, {{"outcome", "duplicate"}}, static_cast<double>(pass.duplicates)});
  for (const auto& [reason, n] : pass.blocked) {
    figures.push_back({"last_run_blocked",
                       "Exits held back by a guardrail in the last run, by reason",
                       {{"reason", reason}},
                       static_cast<double>(n)});
  }
  return metrics::push_run_figures(target, "backstop_stop_monitor", figures, success, run_seconds);
}

PassReport report(exits::PassSummary s, const PassLoopOptions& loop) {
  PassReport r;
  r.print = [s, json = loop.json, dry_run = loop.dry_run](const metrics::PushRecord* pushes) {
    return print_summary(
        json, [&] { return to_text(s, dry_run); }, [&] { return to_json(s); }, pushes);
  };
  r.log_fields = {
      {"triggered", s.triggered}, {"executed", s.executed}, {"failed", s.failed}, {"duplicates", s.duplicates}};
  r.exchange_unreachable = s.price_error;
  r.partial_failure = s.failed > 0 || s.quarantined > 0;
  r.push = [s = std::move(s)](const metrics::PushTarget& target, bool success, double run_seconds) {
    return push_run_metrics(target, s, success, run_seconds);
  };
  return r;
}

}  // namespace

void StopMonitorCommand::add_to(CLI::App& app) {
  loop_.add_to(app);
  credentials_.add_to(app);
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
  app.add_option("--max-balance-age-ms", max_balance_age_ms_,
                 "exits are capped at the account's free balance read once per batch; a read older than this is "
                 "not used (the order goes out for what remains, an oversell is refused by the exchange and retried)")
      ->envname("BACKSTOP_MAX_BALANCE_AGE_MS")
      ->check(CLI::Range(0, 600000))
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
}

runtime::ExitCode StopMonitorCommand::run(const runtime::CommonOptions& common) {
  if (!loop_.dry_run && !credentials_.present()) {
    throw runtime::UsageError(
        "the exchange API key and secret are required (BACKSTOP_EXCHANGE_API_KEY / BACKSTOP_EXCHANGE_API_SECRET); "
        "use --dry-run to evaluate without them");
  }
  return run_passes(common, loop_, {"stop-monitor", "backstop_stop_monitor"}, [&](const PassSession& session) {
    const exchange::BinanceConfig config = credentials_.sign(loop_.exchange_config());
    exchange::BinanceClient client(config, net::make_cpprest_transport(config.base_url, config.timeout));
    exits::MonitorOptions options;
    options.dry_run = loop_.dry_run;
    options.price_source = loop_.source();
    options.filter = loop_.filter();
    options.max_price_age = std::chrono::milliseconds(loop_.max_price_age_ms);
    options.batch_size = static_cast<std::size_t>(batch_size_);
    options.orders_in_flight = static_cast<std::size_t>(orders_in_flight_);
    options.timing.recv_window = config.recv_window;
    options.timing.exchange_processing = std::chrono::milliseconds(exchange_processing_ms_);
    options.timing.max_clock_offset = std::chrono::milliseconds(max_clock_offset_ms_);
    options.timing.send_deadline = std::chrono::milliseconds(send_deadline_ms_);
    options.max_balance_age = std::chrono::milliseconds(max_balance_age_ms_);
    if (loop_.stream) options.source = core::EventSource::kStream;
    exits::StopMonitor monitor(session.connection(), client, options, &client);
    Passes passes;
    passes.run_pass = [&] { return report(monitor.run_pass(), loop_); };
    passes.run_stream = [&](PriceStreamWiring& wiring, const std::atomic<bool>& stop) {
      // The claimer (the session's connection) and the driver (its own
      // connection and exchange client) work on separate threads; see stream_runner.h.
      auto driver_connection = store::connect(common.database_url, "backstop-stop-monitor-driver");
      exchange::BinanceClient driver_client(config, net::make_cpprest_transport(config.base_url, config.timeout));
      exits::StopMonitor driver(*driver_connection, driver_client, options, &driver_client);
      exits::StreamRunner runner(monitor, driver, wiring.repository, wiring.stream, options.filter, wiring.options);
      return report(runner.run(stop), loop_);
    };
    return session.run(passes);
  });
}

}  // namespace backstop::app
