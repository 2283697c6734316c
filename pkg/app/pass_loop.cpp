#include "app/pass_loop.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "app/probe_server.h"
#include "exchange/price_stream.h"
#include "metrics/run_metrics.h"
#include "net/http.h"
#include "net/websocket.h"
#include "runtime/health.h"
#include "runtime/stop.h"
#include "store/db.h"
#include "store/migrations.h"

namespace backstop::app {

void PassLoopOptions::add_to(CLI::App& app, bool prices) {
  app.add_option("--exchange-url", exchange_url, "Binance-compatible REST base URL")
      ->envname("BACKSTOP_EXCHANGE_URL")
      ->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "HTTP timeout per exchange call")
      ->check(CLI::Range(100, 120000))
      ->capture_default_str();
  app.add_flag("--dry-run", dry_run, "evaluate and print; write nothing, send nothing");
  app.add_flag("--json", json, "print the pass summary as JSON");
  auto* passes = app.add_flag("--continuous", continuous, "repeat passes until SIGTERM");
  if (prices) {
    // A stream runs its own REST passes every --interval: the two modes are one
    // or the other, and asking for both is a usage error (exit 2), not a guess.
    app.add_flag("--stream", stream,
                 "act on every WebSocket price tick (plus a REST pass every --interval) until SIGTERM; not with "
                 "--continuous")
        ->excludes(passes);
    app.add_option("--stream-url", stream_url, "Binance-compatible WebSocket stream base URL")
        ->envname("BACKSTOP_STREAM_URL")
        ->capture_default_str();
  }
  app.add_option("--interval", interval_s,
                 prices ? "seconds between passes with --continuous / REST passes with --stream"
                        : "seconds between passes with --continuous")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  app.add_option("--tenant", tenants, "only these tenants (repeatable or comma-separated; shards the work)")
      ->delimiter(',');
  if (prices) {
    app.add_option("--symbol", symbols, "only these symbols (repeatable or comma-separated)")->delimiter(',');
    app.add_option("--price-source", price_source, "last (last trade) or book (bid for longs, ask for shorts)")
        ->check(CLI::IsMember({"last", "book"}))
        ->capture_default_str();
    app.add_option("--max-price-age-ms", max_price_age_ms, "older prices are not acted on (guardrail)")
        ->check(CLI::Range(1, 3600000))
        ->capture_default_str();
  }
  app.add_option("--pushgateway-url", pushgateway_url, "push the run's metrics here (http://host:port)")
      ->envname("BACKSTOP_PUSHGATEWAY_URL");
  app.add_option("--metrics-instance", metrics_instance, "grouping label of this process's metrics (its shard)")
      ->envname("BACKSTOP_METRICS_INSTANCE");
  app.add_option("--health-probe-bind-address", health_bind,
                 prices ? "serve /healthz (each loop came round recently) and /readyz (the last REST pass read prices "
                          "recently) here, HOST:PORT; with --stream or --continuous"
                        : "serve /healthz (each pass came round recently) and /readyz (the last pass reached the "
                          "exchange recently) here, HOST:PORT; with --continuous")
      ->envname("BACKSTOP_HEALTH_PROBE_BIND_ADDRESS");
}

void ExchangeCredentials::add_to(CLI::App& app) {
  app.add_option("--api-key", api_key, "exchange API key")->envname("BACKSTOP_EXCHANGE_API_KEY");
  app.add_option("--api-secret", api_secret, "exchange API secret (prefer the environment / a Secret)")
      ->envname("BACKSTOP_EXCHANGE_API_SECRET");
  app.add_option("--recv-window-ms", recv_window_ms, "recvWindow of signed requests")
      ->check(CLI::Range(1, 60000))
      ->capture_default_str();
}

exchange::BinanceConfig ExchangeCredentials::sign(exchange::BinanceConfig config) const {
  config.api_key = api_key;
  config.api_secret = api_secret;
  config.recv_window = std::chrono::milliseconds(recv_window_ms);
  return config;
}

core::PriceSource PassLoopOptions::source() const { return *core::parse_price_source(price_source); }

store::ScanFilter PassLoopOptions::filter() const { return {tenants, symbols}; }

exchange::BinanceConfig PassLoopOptions::exchange_config() const {
  exchange::BinanceConfig config;
  config.base_url = exchange_url;
  config.timeout = std::chrono::milliseconds(timeout_ms);
  config.fetch_book = source() == core::PriceSource::kBook;
  return config;
}

runtime::ExitCode PassSession::run(const Passes& passes) const {
  const std::atomic<bool>& stop_requested = runtime::install_stop_signals();
  const auto interval = std::chrono::milliseconds(static_cast<std::int64_t>(options_.interval_s * 1000));
  // Probes: live while every loop comes round within 10 intervals or 10
  // exchange timeouts (a pass may wait for the exchange that long) and at
  // least a minute; ready while the last REST pass read prices within 3
  // intervals or 3 exchange timeouts.
  std::optional<runtime::Health> health;
  std::optional<ProbeServer> probes;
  if (!options_.health_bind.empty()) {
    if (!options_.stream && !options_.continuous) {
      throw runtime::UsageError("--health-probe-bind-address goes with --stream or --continuous");
    }
    const auto timeout = std::chrono::milliseconds(options_.timeout_ms);
    health.emplace(std::max({10 * interval, 10 * timeout, std::chrono::milliseconds(60000)}),
                   std::max(3 * interval, 3 * timeout));
    probes.emplace(options_.health_bind, "--health-probe-bind-address", *health);
    log::info("health probes", {{"port", probes->port()}});
  }
  if (options_.stream) {
    store::MonitorRepository repository(connection_);
    auto stream = exchange::make_binance_price_stream(options_.stream_url, net::make_cpprest_websocket());
    feed::StreamOptions stream_options;
    stream_options.backstop_interval = interval;
    stream_options.book = options_.source() == core::PriceSource::kBook;
    stream_options.health = health ? &*health : nullptr;
    PriceStreamWiring wiring{repository, *stream, stream_options};
    const PassReport total = passes.run_stream(wiring, stop_requested);
    std::cout << total.print(nullptr) << std::flush;
    // A stream reconnects and retries prices on its own: only failed work fails it.
    return total.partial_failure ? runtime::ExitCode::kPartialFailure : runtime::ExitCode::kOk;
  }
  runtime::ExitCode exit_code = runtime::ExitCode::kOk;
  // A failed push is reported, never a failed run: the trading work was done.
  std::optional<metrics::PushRecord> pushes;
  if (push_ != nullptr && !options_.dry_run) pushes.emplace();
  do {
    const PassReport pass = passes.run_pass();
    if (health) {
      health->beat("passes");
      health->pass_finished(!pass.exchange_unreachable);
    }
    if (pass.exchange_unreachable) {
      exit_code = runtime::ExitCode::kDependencyUnavailable;
    } else if (pass.partial_failure) {
      exit_code = runtime::ExitCode::kPartialFailure;
    } else {
      exit_code = runtime::ExitCode::kOk;
    }
    if (pushes) {
      pushes->add(pass.push(*push_, exit_code == runtime::ExitCode::kOk,
                            std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start_).count()));
    }
    std::cout << pass.print(pushes ? &*pushes : nullptr) << std::flush;
    log::info("pass finished", pass.log_fields);
    if (options_.continuous && !stop_requested) {
      if (passes.wait) {
        passes.wait(interval, stop_requested);
      } else {
        runtime::sleep_unless_stopped(std::chrono::duration<double>(options_.interval_s));
      }
    }
  } while (options_.continuous && !stop_requested);
  return exit_code;
}

runtime::ExitCode run_passes(const runtime::CommonOptions& common, const PassLoopOptions& options,
                             const PassBinary& binary,
                             const std::function<runtime::ExitCode(const PassSession& session)>& build) {
  std::optional<metrics::PushTarget> push;
  if (!options.pushgateway_url.empty()) {
    push = metrics::parse_pushgateway_url(options.pushgateway_url);
    push->job = binary.push_job;
    if (!options.metrics_instance.empty()) push->labels["instance"] = options.metrics_instance;
  }
  const auto run_start = std::chrono::steady_clock::now();
  auto connection = store::connect(common.database_url, "backstop-" + binary.name);
  store::require_migrated(*connection);
  net::configure_http_threads(1);
  return build(PassSession(*connection, options, push ? &*push : nullptr, run_start));
}

std::string print_summary(bool json, const std::function<std::string()>& text,
                          const std::function<nlohmann::json()>& object, const metrics::PushRecord* pushes) {
  if (!json) return text() + metrics::push_text(pushes);
  nlohmann::json j = object();
  metrics::add_push_fields(j, pushes);
  // Text the exchange sent may not be valid UTF-8: replaced, never a failed run.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace backstop::app
