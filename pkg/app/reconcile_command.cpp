#include "app/reconcile_command.h"

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string_view>

#include "exchange/binance_client.h"
#include "exchange/user_stream.h"
#include "metrics/run_metrics.h"
#include "net/http.h"
#include "net/websocket.h"
#include "reconcile/reconciler.h"
#include "reconcile/user_stream.h"
#include "runtime/log.h"
#include "store/db.h"
#include "store/migrations.h"
#include "store/reconcile_repository.h"
#include "store/unit_of_work.h"

namespace backstop::app {
namespace {

// The key of the tenants that name no account: not a name --account accepts.
constexpr std::string_view kUnnamedAccount = "(default)";

// With --stream: what woke the pass, and the user data stream's state.
struct StreamFigures {
  std::string trigger;  // "interval", or the events' reasons
  reconcile::UserStreamFollower::Stats stats;
};

nlohmann::json to_json(const reconcile::ReconcileSummary& s, const std::optional<StreamFigures>& stream) {
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
  nlohmann::json orphans = nlohmann::json::array();
  for (const auto& o : s.orphans) {
    nlohmann::json entry = {{"symbol", o.symbol}, {"order_id", o.order_id}, {"client_order_id", o.client_order_id},
                            {"side", o.side},     {"type", o.type},         {"orig_qty", o.orig_qty}};
    if (!o.cancel.empty()) entry["cancel"] = o.cancel;
    orphans.push_back(std::move(entry));
  }
  nlohmann::json j = {{"account", s.account},   {"operations", s.operations}, {"in_sync", s.in_sync},
                      {"reduced", s.reduced},   {"closed", s.closed},         {"short", s.short_flagged},
                      {"pending", s.pending},   {"in_flight", s.in_flight},   {"not_reconciled", s.not_reconciled},
                      {"skipped", s.skipped},   {"held_back", s.held_back},   {"duplicates", s.duplicates},
                      {"requests", s.requests}, {"weight", s.weight},         {"trades_read", s.trades_read},
                      {"seconds", s.seconds},   {"decisions", decisions}};
  j["orphans_checked"] = s.orphans_checked;
  j["orphans"] = orphans;
  j["orphans_cancelled"] = s.orphans_cancelled;
  if (!s.error.empty()) j["error"] = s.error;
  if (stream) {
    j["trigger"] = stream->trigger;
    j["user_stream"] = {{"subscribed", stream->stats.subscribed},       {"events", stream->stats.events},
                        {"triggers", stream->stats.triggers},           {"malformed", stream->stats.malformed},
                        {"subscriptions", stream->stats.subscriptions}, {"downs", stream->stats.downs}};
    if (!stream->stats.last_down.empty()) j["user_stream"]["last_down"] = stream->stats.last_down;
  }
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
  for (const auto& o : s.orphans) {
    text += "  orphan order " + o.symbol + " " + o.client_order_id + " (order " + std::to_string(o.order_id) + ", " +
            o.side + " " + o.type + " " + o.orig_qty + ")" + (o.cancel.empty() ? "" : ": " + o.cancel) + "\n";
  }
  return text + (s.error.empty() ? "" : "error: " + s.error + "\n") + line;
}

metrics::PushOutcome push(const metrics::PushTarget& target, const reconcile::ReconcileSummary& s,
                          const std::optional<StreamFigures>& stream, bool success, double seconds) {
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
  figures.push_back({"last_run_orphans",
                     "Open orders with Backstop's client id prefix that no exit owns (when read)",
                     {},
                     static_cast<double>(s.orphans.size())});
  figures.push_back(
      {"last_run_requests", "Calls the last run made to the exchange", {}, static_cast<double>(s.requests)});
  figures.push_back({"last_run_weight",
                     "The exchange's used request weight (1 minute) after the last run",
                     {},
                     static_cast<double>(s.weight)});
  if (stream) {
    figures.push_back({"user_stream_subscribed",
                       "1 while the account's user data stream is subscribed (reconcile --stream)",
                       {},
                       stream->stats.subscribed ? 1.0 : 0.0});
    figures.push_back({"user_stream_downs",
                       "User data stream connections lost, refused, terminated or silent since the process started",
                       {},
                       static_cast<double>(stream->stats.downs)});
  }
  return metrics::push_run_figures(target, "backstop_reconcile", figures, success, seconds);
}

PassReport report(reconcile::ReconcileSummary s, const PassLoopOptions& loop, std::optional<StreamFigures> stream) {
  PassReport r;
  r.print = [s, stream, json = loop.json, dry_run = loop.dry_run](const metrics::PushRecord* pushes) {
    return print_summary(
        json,
        [&] { return (stream ? "pass woken by: " + stream->trigger + "\n" : std::string()) + to_text(s, dry_run); },
        [&] { return to_json(s, stream); }, pushes);
  };
  r.log_fields = {{"account", s.account}, {"operations", s.operations}, {"reduced", s.reduced},
                  {"closed", s.closed},   {"short", s.short_flagged},   {"pending", s.pending}};
  r.exchange_unreachable = s.exchange_unreachable;
  r.partial_failure = s.failed;
  r.push = [s = std::move(s), stream = std::move(stream)](const metrics::PushTarget& target, bool success,
                                                          double run_seconds) {
    return push(target, s, stream, success, run_seconds);
  };
  return r;
}

}  // namespace

void ReconcileCommand::add_to(CLI::App& app) {
  loop_.add_to(app, false);
  app.add_option("--account", account_,
                 "the exchange account (tenant_config.exchange_account) whose tenants' operations this pass "
                 "reconciles, all of them (not with --tenant); without it, the tenants that name no account")
      ->envname("BACKSTOP_EXCHANGE_ACCOUNT")
      ->check(CLI::Validator(
          [](std::string& value) {
            static const std::regex name("^[A-Za-z0-9_./:-]{1,128}$");
            return std::regex_match(value, name) ? std::string()
                                                 : "\"" + value +
                                                       "\" is not an account name (1-128 of A-Z, a-z, "
                                                       "0-9, _ . / : -)";
          },
          "NAME"));
  credentials_.add_to(app);
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
  app.add_option("--orphan-check-interval-s", orphan_check_interval_s_,
                 "read the account's open orders (weight 80) when they were last read this long ago")
      ->check(CLI::Range(0, 86400))
      ->capture_default_str();
  app.add_flag("--cancel-orphans", cancel_orphans_,
               "cancel open orders with Backstop's client id prefix that no exit owns (read every pass then)")
      ->envname("BACKSTOP_CANCEL_ORPHANS");
  app.add_option("--max-weight-per-minute", max_weight_per_minute_,
                 "start no read when the exchange reports the IP has used this much request weight this minute "
                 "(X-MBX-USED-WEIGHT-1M, every process behind the IP); the pass then ends with exit 3 and nothing "
                 "written, leaving the rest of the minute to the exits (Binance allows 6000; 0: no budget)")
      ->envname("BACKSTOP_RECONCILE_MAX_WEIGHT_PER_MINUTE")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  auto* stream = app.add_flag("--stream", stream_,
                              "follow the account's user data stream until SIGTERM: a pass when something moves the "
                              "account from outside Backstop (debounced 200 ms), and one every --interval whatever "
                              "the stream does");
  stream->excludes(app.get_option("--continuous"));
  app.add_option("--ws-api-url", ws_api_url_,
                 "Binance-compatible WebSocket API URL (the user data stream); default: Binance's or its testnet's, "
                 "after --exchange-url, and required for any other exchange URL")
      ->envname("BACKSTOP_WS_API_URL");
  app.add_option("--stream-min-gap-ms", stream_min_gap_ms_,
                 "passes the stream wakes start at least this far apart (a burst of events is one pass a gap)")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  app.add_option("--stream-ping-interval-ms", stream_ping_interval_ms_,
                 "ping the user data stream this often; unanswered within 10 s, it is replaced")
      ->check(CLI::Range(100, 3600000))
      ->capture_default_str();
  app.add_flag("--list-orphans", list_orphans_,
               "print the account's orphan orders as the last passes recorded them, and exit (no exchange call)");
}

std::string ReconcileCommand::ws_api_url() const {
  if (!ws_api_url_.empty()) return ws_api_url_;
  // Binance's own pairs; any other exchange URL names its WebSocket API itself
  // (never the production stream for a testnet or a simulator's keys).
  std::string rest = loop_.exchange_url;
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest == "https://api.binance.com") return "wss://ws-api.binance.com:443/ws-api/v3";
  if (rest == "https://testnet.binance.vision") return "wss://ws-api.testnet.binance.vision/ws-api/v3";
  throw runtime::UsageError("--stream needs --ws-api-url (BACKSTOP_WS_API_URL) for the exchange at " +
                            loop_.exchange_url + ": only Binance's and its testnet's are known");
}

runtime::ExitCode ReconcileCommand::list_orphans(const runtime::CommonOptions& common) const {
  auto connection = store::connect(common.database_url, "backstop-reconcile");
  store::require_migrated(*connection);
  store::ReadOnlyWork tx(*connection);
  const std::string account = account_.empty() ? std::string(kUnnamedAccount) : account_;
  const auto rows = store::ReconcileRepository::orphans(tx, account);
  tx.commit();
  nlohmann::json list = nlohmann::json::array();
  std::string text;
  for (const auto& r : rows) {
    nlohmann::json j = {{"symbol", r.symbol},
                        {"order_id", r.order_id},
                        {"client_order_id", r.client_order_id},
                        {"side", r.side},
                        {"type", r.type},
                        {"orig_qty", r.orig_qty.to_string()},
                        {"first_seen_at", r.first_seen_at},
                        {"last_seen_at", r.last_seen_at}};
    if (r.cancelled_at) j["cancelled_at"] = *r.cancelled_at;
    if (r.last_error) j["last_error"] = *r.last_error;
    list.push_back(j);
    text += r.symbol + " " + r.client_order_id + " order " + std::to_string(r.order_id) + " " + r.side + " " + r.type +
            " " + r.orig_qty.to_string() + " first seen " + r.first_seen_at +
            (r.cancelled_at ? ", cancelled " + *r.cancelled_at : "") +
            (r.last_error ? ", cancel failed: " + *r.last_error : "") + "\n";
  }
  if (loop_.json) {
    std::cout << nlohmann::json{{"account", account}, {"orphans", list}}.dump() << "\n";
  } else {
    std::cout << text << rows.size() << " orphan orders on account " << account << "\n";
  }
  return runtime::ExitCode::kOk;
}

runtime::ExitCode ReconcileCommand::run(const runtime::CommonOptions& common) {
  // An account's balance is compared with all its positions in an asset: a
  // subset of its tenants would hide what the others' sales explain.
  if (!account_.empty() && !loop_.tenants.empty()) {
    throw runtime::UsageError(
        "--account reconciles every tenant of the account; --tenant cannot shard it (run one reconcile per account)");
  }
  if (list_orphans_) return store::run_with_database([&] { return list_orphans(common); });
  if (!credentials_.present()) {
    throw runtime::UsageError(
        "the exchange API key and secret are required to read the account (BACKSTOP_EXCHANGE_API_KEY / "
        "BACKSTOP_EXCHANGE_API_SECRET)");
  }
  // --stream: passes until SIGTERM, woken early by the stream; its URL (or a
  // usage error) before anything starts.
  const std::string ws_url = stream_ ? ws_api_url() : std::string();
  if (stream_) loop_.continuous = true;
  return run_passes(common, loop_, {"reconcile", "backstop_reconcile"}, [&](const PassSession& session) {
    exchange::BinanceConfig config = credentials_.sign(loop_.exchange_config());
    config.read_weight_budget = max_weight_per_minute_;
    exchange::BinanceClient client(config, net::make_cpprest_transport(config.base_url, config.timeout));
    reconcile::ReconcileOptions options;
    options.scope.account = account_.empty() ? std::string(kUnnamedAccount) : account_;
    options.scope.named = !account_.empty();
    options.scope.tenants = loop_.tenants;
    options.dry_run = loop_.dry_run;
    options.grace = std::chrono::milliseconds(grace_ms_);
    options.entry_lookback = std::chrono::milliseconds(entry_lookback_ms_);
    options.entry_margin = std::chrono::milliseconds(entry_margin_ms_);
    options.max_closures_pct = max_closures_pct_;
    options.orphan_check_interval = std::chrono::seconds(orphan_check_interval_s_);
    options.cancel_orphans = cancel_orphans_;
    reconcile::Reconciler reconciler(session.connection(), client, client, options);
    Passes passes;
    // --stream: the user data stream wakes the loop between its --interval passes.
    std::unique_ptr<exchange::UserDataStream> user_stream;
    std::optional<reconcile::PassWakeup> wakeup;
    std::optional<reconcile::UserStreamFollower> follower;
    std::string trigger = "start";
    if (stream_) {
      exchange::UserStreamConfig stream_config;
      stream_config.ws_api_url = ws_url;
      stream_config.api_key = config.api_key;
      stream_config.api_secret = config.api_secret;
      stream_config.recv_window = config.recv_window;
      user_stream = exchange::make_binance_user_stream(stream_config, net::make_cpprest_websocket());
      wakeup.emplace(std::chrono::milliseconds(stream_min_gap_ms_));
      reconcile::FollowOptions follow;
      follow.client_id_prefix = options.client_id_prefix;
      follow.ping_interval = std::chrono::milliseconds(stream_ping_interval_ms_);
      follower.emplace(*user_stream, *wakeup, follow);
      follower->start();
      passes.wait = [&](std::chrono::milliseconds interval, const std::atomic<bool>& stop) {
        const auto wake = wakeup->wait_until(std::chrono::steady_clock::now() + interval, stop);
        trigger = wake ? wake->reasons : "interval";
        // The exchange's REST reads may lag what its stream reported: a pass
        // an event woke is followed by one more a little later (not chained).
        if (wake && wake->follow_up) {
          wakeup->request(std::chrono::milliseconds(3000), "follow-up of a pass the stream woke");
        }
      };
    }
    passes.run_pass = [&] {
      reconcile::ReconcileSummary s = reconciler.run_pass();
      s.weight = client.used_weight();
      std::optional<StreamFigures> figures;
      if (follower) figures = StreamFigures{trigger, follower->stats()};
      return report(std::move(s), loop_, std::move(figures));
    };
    return session.run(passes);
  });
}

}  // namespace backstop::app
