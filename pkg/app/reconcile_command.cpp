#include "app/reconcile_command.h"

#include <nlohmann/json.hpp>

#include "exchange/binance_client.h"
#include "metrics/run_metrics.h"
#include "net/http.h"
#include "reconcile/reconciler.h"

namespace backstop::app {
namespace {

nlohmann::json to_json(const reconcile::ReconcileSummary& s) {
  nlohmann::json decisions = nlohmann::json::array();
  for (const auto& r : s.reports) {
    nlohmann::json j = {{"operation_id", r.operation_id},
                        {"tenant_id", r.tenant_id},
                        {"symbol", r.symbol},
                        {"outcome", r.outcome},
                        {"quantity", r.quantity}};
    if (!r.reason.empty()) j["reason"] = r.reason;
    if (!r.held.empty()) j["held"] = r.held;
    if (!r.new_quantity.empty()) j["new_quantity"] = r.new_quantity;
    if (!r.trade_ids.empty()) j["trade_ids"] = r.trade_ids;
    if (!r.event.empty()) j["event"] = r.event;
    decisions.push_back(std::move(j));
  }
  nlohmann::json j = {{"account", s.account},   {"operations", s.operations}, {"in_sync", s.in_sync},
                      {"reduced", s.reduced},   {"closed", s.closed},         {"short", s.short_flagged},
                      {"pending", s.pending},   {"in_flight", s.in_flight},   {"not_reconciled", s.not_reconciled},
                      {"skipped", s.skipped},   {"held_back", s.held_back},   {"duplicates", s.duplicates},
                      {"requests", s.requests}, {"weight", s.weight},         {"trades_read", s.trades_read},
                      {"seconds", s.seconds},   {"decisions", decisions}};
  if (!s.error.empty()) j["error"] = s.error;
  return j;
}

std::string to_text(const reconcile::ReconcileSummary& s, bool dry_run) {
  std::string text;
  for (const auto& r : s.reports) {
    text += "  op " + std::to_string(r.operation_id) + " " + r.symbol + " " + r.quantity + ": " + r.outcome +
            (r.reason.empty() ? "" : " (" + r.reason + ")") + (r.new_quantity.empty() ? "" : " -> " + r.new_quantity) +
            (r.event.empty() ? "" : " [" + r.event + "]") + "\n";
  }
  char line[400];
  std::snprintf(line, sizeof line,
                "%saccount %s: %lld operations, %lld in sync, %lld reduced, %lld closed, %lld short, %lld pending, "
                "%lld in flight, %lld not reconciled, %lld skipped, %lld requests, %.3f s\n",
                dry_run ? "DRY RUN: " : "", s.account.c_str(), static_cast<long long>(s.operations),
                static_cast<long long>(s.in_sync), static_cast<long long>(s.reduced), static_cast<long long>(s.closed),
                static_cast<long long>(s.short_flagged), static_cast<long long>(s.pending),
                static_cast<long long>(s.in_flight), static_cast<long long>(s.not_reconciled),
                static_cast<long long>(s.skipped), static_cast<long long>(s.requests), s.seconds);
  return text + (s.error.empty() ? "" : "error: " + s.error + "\n") + line;
}

metrics::PushOutcome push(const metrics::PushTarget& target, const reconcile::ReconcileSummary& s, bool success,
                          double seconds) {
  const char* const help = "Operations of the last run by outcome";
  std::vector<metrics::RunFigure> figures;
  for (const auto& [outcome, n] :
       std::vector<std::pair<std::string, std::int64_t>>{{"in_sync", s.in_sync},
                                                         {"reduced", s.reduced},
                                                         {"closed", s.closed},
                                                         {"short", s.short_flagged},
                                                         {"pending", s.pending},
                                                         {"in_flight", s.in_flight},
                                                         {"not_reconciled", s.not_reconciled},
                                                         {"skipped", s.skipped}}) {
    figures.push_back({"last_run_operations", help, {{"outcome", outcome}}, static_cast<double>(n)});
  }
  const char* const drift = "Drift the last run found, by kind";
  figures.push_back({"last_run_drift", drift, {{"kind", "reduced"}}, static_cast<double>(s.reduced)});
  figures.push_back({"last_run_drift", drift, {{"kind", "closed"}}, static_cast<double>(s.closed)});
  figures.push_back({"last_run_drift", drift, {{"kind", "short"}}, static_cast<double>(s.short_flagged)});
  figures.push_back(
      {"last_run_requests", "Calls the last run made to the exchange", {}, static_cast<double>(s.requests)});
  figures.push_back({"last_run_weight",
                     "The exchange's used request weight (1 minute) after the last run",
                     {},
                     static_cast<double>(s.weight)});
  return metrics::push_run_figures(target, "backstop_reconcile", figures, success, seconds);
}

PassReport report(reconcile::ReconcileSummary s, const PassLoopOptions& loop) {
  PassReport r;
  r.print = [s, json = loop.json, dry_run = loop.dry_run](const metrics::PushRecord* pushes) {
    return print_summary(
        json, [&] { return to_text(s, dry_run); }, [&] { return to_json(s); }, pushes);
  };
  r.log_fields = {{"account", s.account}, {"operations", s.operations}, {"reduced", s.reduced},
                  {"closed", s.closed},   {"short", s.short_flagged},   {"pending", s.pending}};
  r.exchange_unreachable = s.exchange_unreachable;
  r.partial_failure = s.failed;
  r.push = [s = std::move(s)](const metrics::PushTarget& target, bool success, double run_seconds) {
    return push(target, s, success, run_seconds);
  };
  return r;
}

}  // namespace

void ReconcileCommand::add_to(CLI::App& app) {
  loop_.add_to(app, false);
  app.add_option("--account", account_,
                 "the exchange account (tenant_config.exchange_account) whose tenants' operations this pass "
                 "reconciles; without it, the tenants that name no account")
      ->envname("BACKSTOP_EXCHANGE_ACCOUNT");
  app.add_option("--api-key", api_key_, "exchange API key")->envname("BACKSTOP_EXCHANGE_API_KEY");
  app.add_option("--api-secret", api_secret_, "exchange API secret (prefer the environment / a Secret)")
      ->envname("BACKSTOP_EXCHANGE_API_SECRET");
  app.add_option("--recv-window-ms", recv_window_ms_, "recvWindow of signed requests")
      ->check(CLI::Range(1, 60000))
      ->capture_default_str();
  app.add_option("--grace-ms", grace_ms_,
                 "a shortfall no trade explains is acted on only when seen again at least this much later")
      ->envname("BACKSTOP_RECONCILE_GRACE_MS")
      ->check(CLI::Range(0, 86400000))
      ->capture_default_str();
  app.add_option("--entry-lookback-ms", entry_lookback_ms_,
                 "an entry's own fills (their commission in the base asset) lie within this of its creation")
      ->check(CLI::Range(0, 86400000))
      ->capture_default_str();
  app.add_option("--entry-margin-ms", entry_margin_ms_,
                 "operations created this close to the account read are left to the next pass")
      ->check(CLI::Range(0, 3600000))
      ->capture_default_str();
  app.add_option("--max-closures-pct", max_closures_pct_,
                 "a pass that would close more than this share of the account's positions for want of any balance "
                 "closes none and flags them SHORT (a Secret pointing at another account looks like this)")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
}

runtime::ExitCode ReconcileCommand::run(const runtime::CommonOptions& common) {
  if (api_key_.empty() || api_secret_.empty()) {
    throw runtime::UsageError(
        "the exchange API key and secret are required to read the account (BACKSTOP_EXCHANGE_API_KEY / "
        "BACKSTOP_EXCHANGE_API_SECRET)");
  }
  return run_passes(common, loop_, {"reconcile", "backstop_reconcile"}, [&](const PassSession& session) {
    exchange::BinanceConfig config = loop_.exchange_config();
    config.api_key = api_key_;
    config.api_secret = api_secret_;
    config.recv_window = std::chrono::milliseconds(recv_window_ms_);
    exchange::BinanceClient client(config, net::make_cpprest_transport(config.base_url, config.timeout));
    reconcile::ReconcileOptions options;
    options.scope.account = account_.empty() ? "default" : account_;
    options.scope.named = !account_.empty();
    options.scope.tenants = loop_.tenants;
    options.dry_run = loop_.dry_run;
    options.grace = std::chrono::milliseconds(grace_ms_);
    options.entry_lookback = std::chrono::milliseconds(entry_lookback_ms_);
    options.entry_margin = std::chrono::milliseconds(entry_margin_ms_);
    options.max_closures_pct = max_closures_pct_;
    reconcile::Reconciler reconciler(session.connection(), client, client, options);
    Passes passes;
    passes.run_pass = [&] {
      reconcile::ReconcileSummary s = reconciler.run_pass();
      s.weight = client.used_weight();
      return report(std::move(s), loop_);
    };
    return session.run(passes);
  });
}

}  // namespace backstop::app
