#include "app/trailing_stop_command.h"

#include <iostream>
#include <nlohmann/json.hpp>

#include "exchange/binance_client.h"
#include "monitor/price_feed.h"
#include "monitor/run_metrics.h"
#include "monitor/trailing_stop.h"
#include "runtime/log.h"
#include "runtime/stop.h"
#include "store/db.h"

namespace backstop::app {
namespace {

nlohmann::json to_json(const monitor::TrailingSummary& s) {
  nlohmann::json reports = nlohmann::json::array();
  for (const auto& r : s.reports) {
    nlohmann::json j = {{"operation_id", r.operation_id}, {"tenant_id", r.tenant_id}, {"symbol", r.symbol},
                        {"side", r.side},   {"mode", r.mode},   {"old_stop", r.old_stop}, {"price", r.price},
                        {"outcome", r.outcome}};
    if (!r.new_stop.empty()) {
      j["new_stop"] = r.new_stop;
      j["reason"] = r.reason;
      j["execution_token"] = r.token;
      if (r.mode == "HAND_SPAN") j["step"] = r.step;
    }
    reports.push_back(std::move(j));
  }
  nlohmann::json j = {{"symbols", s.symbols},   {"due", s.due},         {"armed", s.armed},
                      {"adjusted", s.adjusted}, {"duplicates", s.duplicates}, {"in_flight", s.in_flight},
                      {"skipped", s.skipped},   {"invalid", s.invalid}, {"seconds", s.seconds},
                      {"adjustments", reports}};
  if (!s.error.empty()) j["error"] = s.error;
  return j;
}

std::string to_text(const monitor::TrailingSummary& s, bool dry_run) {
  std::string text;
  for (const auto& r : s.reports) {
    text += "  op " + std::to_string(r.operation_id) + " " + r.side + " " + r.symbol + " " + r.mode + " stop " +
            r.old_stop + (r.new_stop.empty() ? "" : " -> " + r.new_stop + " (" + r.reason + ")") + " price " +
            r.price + ": " + r.outcome + "\n";
  }
  char line[300];
  std::snprintf(line, sizeof line,
                "%s%lld symbols, %lld due, %lld adjusted, %lld armed, %lld duplicates, %lld in flight, "
                "%lld skipped, %lld invalid, %.3f s\n",
                dry_run ? "DRY RUN: " : "", static_cast<long long>(s.symbols), static_cast<long long>(s.due),
                static_cast<long long>(s.adjusted), static_cast<long long>(s.armed),
                static_cast<long long>(s.duplicates), static_cast<long long>(s.in_flight),
                static_cast<long long>(s.skipped), static_cast<long long>(s.invalid), s.seconds);
  return text + (s.error.empty() ? "" : "error: " + s.error + "\n") + line;
}

void push(const monitor::PushTarget& target, const monitor::TrailingSummary& s, bool success, double seconds) {
  const char* const help = "Operations of the last run by outcome";
  std::vector<monitor::RunFigure> figures;
  for (const auto& [outcome, n] : std::vector<std::pair<std::string, std::int64_t>>{
           {"adjusted", s.adjusted}, {"armed", s.armed}, {"duplicate", s.duplicates}, {"in_flight", s.in_flight},
           {"skipped", s.skipped}, {"invalid", s.invalid}}) {
    figures.push_back({"last_run_operations", help, {{"outcome", outcome}}, static_cast<double>(n)});
  }
  figures.push_back({"last_run_due", "Operations the last run looked at", {}, static_cast<double>(s.due)});
  monitor::push_run_figures(target, "backstop_trailing_stop", figures, success, seconds);
}

}  // namespace

void TrailingStopCommand::add_to(CLI::App& app) {
  app.add_option("--exchange-url", exchange_url_, "Binance-compatible REST base URL (public prices only)")
      ->envname("BACKSTOP_EXCHANGE_URL")
      ->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms_, "HTTP timeout per exchange call")
      ->check(CLI::Range(100, 120000))
      ->capture_default_str();
  app.add_flag("--dry-run", dry_run_, "compute and print the moves; write nothing");
  app.add_flag("--json", json_, "print the pass summary as JSON");
  app.add_flag("--continuous", continuous_, "repeat passes until SIGTERM");
  app.add_flag("--stream", stream_, "act on every WebSocket price tick (plus a full pass every --interval) until SIGTERM");
  app.add_option("--stream-url", stream_url_, "Binance-compatible WebSocket stream base URL")
      ->envname("BACKSTOP_STREAM_URL")
      ->capture_default_str();
  app.add_option("--interval", interval_s_, "seconds between passes with --continuous / full passes with --stream")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  app.add_option("--tenant", tenants_, "only these tenants (repeatable or comma-separated)")->delimiter(',');
  app.add_option("--symbol", symbols_, "only these symbols (repeatable or comma-separated)")->delimiter(',');
  app.add_option("--price-source", price_source_, "last (last trade) or book (bid for longs, ask for shorts)")
      ->check(CLI::IsMember({"last", "book"}))
      ->capture_default_str();
  app.add_option("--max-price-age-ms", max_price_age_ms_, "older prices move nothing")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();
  app.add_option("--batch-size", batch_size_, "operations per transaction")
      ->check(CLI::Range(1, 100000))
      ->envname("BACKSTOP_BATCH_SIZE")
      ->capture_default_str();
  app.add_option("--pushgateway-url", pushgateway_url_, "push the run's metrics here (http://host:port)")
      ->envname("BACKSTOP_PUSHGATEWAY_URL");
  app.add_option("--metrics-instance", metrics_instance_, "grouping label of this process's metrics (its shard)")
      ->envname("BACKSTOP_METRICS_INSTANCE");
}

runtime::ExitCode TrailingStopCommand::run(const runtime::CommonOptions& common) {
  std::optional<monitor::PushTarget> target;
  if (!pushgateway_url_.empty()) {
    target = monitor::parse_pushgateway_url(pushgateway_url_);
    target->job = "backstop_trailing_stop";
    if (!metrics_instance_.empty()) target->labels["instance"] = metrics_instance_;
  }
  const auto run_start = std::chrono::steady_clock::now();
  try {
    auto connection = store::connect(common.database_url, "backstop-trailing-stop");
    exchange::configure_http_threads(1);
    exchange::BinanceConfig config;
    config.base_url = exchange_url_;
    config.timeout = std::chrono::milliseconds(timeout_ms_);
    const core::PriceSource source = *core::parse_price_source(price_source_);
    config.fetch_book = source == core::PriceSource::kBook;
    exchange::BinanceClient client(config, exchange::make_cpprest_transport(exchange_url_, config.timeout));
    monitor::TrailingOptions options;
    options.dry_run = dry_run_;
    options.price_source = source;
    options.filter.tenants = tenants_;
    options.filter.symbols = symbols_;
    options.max_price_age = std::chrono::milliseconds(max_price_age_ms_);
    options.batch_size = static_cast<std::size_t>(batch_size_);
    monitor::TrailingStop trailing(*connection, client, options);
    auto print = [&](const monitor::TrailingSummary& s) {
      std::cout << (json_ ? to_json(s).dump() + "\n" : to_text(s, dry_run_)) << std::flush;
    };

    const std::atomic<bool>& stop_requested = runtime::install_stop_signals();
    if (stream_) {
      store::MonitorRepository repository(*connection);
      auto stream = exchange::make_cpprest_price_stream(stream_url_);
      monitor::StreamOptions stream_options;
      stream_options.backstop_interval = std::chrono::milliseconds(static_cast<std::int64_t>(interval_s_ * 1000));
      stream_options.book = source == core::PriceSource::kBook;
      monitor::TrailingSummary total;
      monitor::follow_prices(
          *stream, repository, options.filter, stream_options, stop_requested,
          [&](const exchange::PriceSnapshot& prices, core::TimePoint received) {
            accumulate(total, trailing.run_on_prices(prices, received));
          },
          [&] { accumulate(total, trailing.run_pass()); });
      print(total);
      return runtime::ExitCode::kOk;
    }
    runtime::ExitCode exit_code = runtime::ExitCode::kOk;
    do {
      const monitor::TrailingSummary summary = trailing.run_pass();
      print(summary);
      log::info("pass finished", {{"due", summary.due},
                                  {"adjusted", summary.adjusted},
                                  {"invalid", summary.invalid},
                                  {"duplicates", summary.duplicates}});
      exit_code = summary.price_error ? runtime::ExitCode::kDependencyUnavailable : runtime::ExitCode::kOk;
      if (target && !dry_run_) {
        push(*target, summary, exit_code == runtime::ExitCode::kOk,
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
