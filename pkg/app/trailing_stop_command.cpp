#include "app/trailing_stop_command.h"

#include <nlohmann/json.hpp>

#include "exchange/binance_client.h"
#include "feed/price_feed.h"
#include "metrics/run_metrics.h"
#include "net/http.h"
#include "runtime/health.h"
#include "trailing/trailing_stop.h"

namespace backstop::app {
namespace {

nlohmann::json to_json(const trailing::TrailingSummary& s) {
  nlohmann::json reports = nlohmann::json::array();
  for (const auto& r : s.reports) {
    nlohmann::json j = {{"operation_id", r.operation_id},
                        {"tenant_id", r.tenant_id},
                        {"symbol", r.symbol},
                        {"side", r.side},
                        {"mode", r.mode},
                        {"old_stop", r.old_stop},
                        {"price", r.price},
                        {"outcome", r.outcome}};
    if (!r.new_stop.empty()) {
      j["new_stop"] = r.new_stop;
      j["reason"] = r.reason;
      j["execution_token"] = r.token;
      if (r.mode == "HAND_SPAN") j["step"] = r.step;
    }
    reports.push_back(std::move(j));
  }
  nlohmann::json j = {{"symbols", s.symbols},       {"due", s.due},
                      {"armed", s.armed},           {"adjusted", s.adjusted},
                      {"duplicates", s.duplicates}, {"in_flight", s.in_flight},
                      {"skipped", s.skipped},       {"invalid", s.invalid},
                      {"seconds", s.seconds},       {"adjustments", reports}};
  if (!s.error.empty()) j["error"] = s.error;
  if (s.malformed_frames > 0) j["malformed_frames"] = s.malformed_frames;
  return j;
}

std::string to_text(const trailing::TrailingSummary& s, bool dry_run) {
  std::string text;
  for (const auto& r : s.reports) {
    text += "  op " + std::to_string(r.operation_id) + " " + r.side + " " + r.symbol + " " + r.mode + " stop " +
            r.old_stop + (r.new_stop.empty() ? "" : " -> " + r.new_stop + " (" + r.reason + ")") + " price " + r.price +
            ": " + r.outcome + "\n";
  }
  char line[300];
  std::snprintf(line, sizeof line,
                "%s%lld symbols, %lld due, %lld adjusted, %lld armed, %lld duplicates, %lld in flight, "
                "%lld skipped, %lld invalid, %.3f s\n",
                dry_run ? "DRY RUN: " : "", static_cast<long long>(s.symbols), static_cast<long long>(s.due),
                static_cast<long long>(s.adjusted), static_cast<long long>(s.armed),
                static_cast<long long>(s.duplicates), static_cast<long long>(s.in_flight),
                static_cast<long long>(s.skipped), static_cast<long long>(s.invalid), s.seconds);
  if (s.malformed_frames > 0) text += std::to_string(s.malformed_frames) + " malformed stream frames skipped\n";
  return text + (s.error.empty() ? "" : "error: " + s.error + "\n") + line;
}

metrics::PushOutcome push(const metrics::PushTarget& target, const trailing::TrailingSummary& s, bool success,
                          double seconds) {
  const char* const help = "Operations of the last run by outcome";
  std::vector<metrics::RunFigure> figures;
  for (const auto& [outcome, n] : std::vector<std::pair<std::string, std::int64_t>>{{"adjusted", s.adjusted},
                                                                                    {"armed", s.armed},
                                                                                    {"duplicate", s.duplicates},
                                                                                    {"in_flight", s.in_flight},
                                                                                    {"skipped", s.skipped},
                                                                                    {"invalid", s.invalid}}) {
    figures.push_back({"last_run_operations", help, {{"outcome", outcome}}, static_cast<double>(n)});
  }
  figures.push_back({"last_run_due", "Operations the last run looked at", {}, static_cast<double>(s.due)});
  return metrics::push_run_figures(target, "backstop_trailing_stop", figures, success, seconds);
}

PassReport report(trailing::TrailingSummary s, const PassLoopOptions& loop) {
  PassReport r;
  r.print = [s, json = loop.json, dry_run = loop.dry_run](const metrics::PushRecord* pushes) {
    return print_summary(
        json, [&] { return to_text(s, dry_run); }, [&] { return to_json(s); }, pushes);
  };
  r.log_fields = {{"due", s.due}, {"adjusted", s.adjusted}, {"invalid", s.invalid}, {"duplicates", s.duplicates}};
  r.exchange_unreachable = s.price_error;
  r.push = [s = std::move(s)](const metrics::PushTarget& target, bool success, double run_seconds) {
    return push(target, s, success, run_seconds);
  };
  return r;
}

}  // namespace

void TrailingStopCommand::add_to(CLI::App& app) {
  loop_.add_to(app);
  app.add_option("--batch-size", batch_size_, "operations per transaction")
      ->check(CLI::Range(1, 100000))
      ->envname("BACKSTOP_BATCH_SIZE")
      ->capture_default_str();
}

runtime::ExitCode TrailingStopCommand::run(const runtime::CommonOptions& common) {
  return run_passes(common, loop_, {"trailing-stop", "backstop_trailing_stop"}, [&](const PassSession& session) {
    const exchange::BinanceConfig config = loop_.exchange_config();
    exchange::BinanceClient client(config, net::make_cpprest_transport(config.base_url, config.timeout));
    trailing::TrailingOptions options;
    options.dry_run = loop_.dry_run;
    options.price_source = loop_.source();
    options.filter = loop_.filter();
    options.max_price_age = std::chrono::milliseconds(loop_.max_price_age_ms);
    options.batch_size = static_cast<std::size_t>(batch_size_);
    trailing::TrailingStop trailing(session.connection(), client, options);
    Passes passes;
    passes.run_pass = [&] { return report(trailing.run_pass(), loop_); };
    passes.run_stream = [&](PriceStreamWiring& wiring, const std::atomic<bool>& stop) {
      trailing::TrailingSummary total;
      feed::follow_prices(
          wiring.stream, wiring.repository, options.filter, wiring.options, stop,
          [&](const core::PriceSnapshot& prices, const feed::BatchTimes& times) {
            accumulate(total, trailing.run_on_prices(prices, times.priced));
          },
          [&] {
            const trailing::TrailingSummary pass = trailing.run_pass();
            if (wiring.options.health != nullptr) wiring.options.health->pass_finished(!pass.price_error);
            accumulate(total, pass);
          });
      total.malformed_frames = wiring.stream.malformed().frames;
      return report(std::move(total), loop_);
    };
    return session.run(passes);
  });
}

}  // namespace backstop::app
