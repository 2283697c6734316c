#include "app/outbox_drain_command.h"

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "metrics/run_metrics.h"
#include "outbox/drainer.h"
#include "runtime/log.h"
#include "runtime/stop.h"
#include "store/db.h"
#include "store/migrations.h"
#include "store/outbox_repository.h"
#include "store/unit_of_work.h"

namespace backstop::app {
namespace {

nlohmann::json to_json(const outbox::DrainSummary& s) {
  nlohmann::json j = {
      {"published", s.published},      {"failed", s.failed},         {"parked", s.parked},
      {"batches", s.batches},          {"backlog", s.after.backlog}, {"oldest_age_seconds", s.after.oldest_age_seconds},
      {"parked_rows", s.after.parked}, {"held_rows", s.after.held},  {"seconds", s.seconds}};
  if (!s.error.empty()) j["error"] = s.error;
  return j;
}

std::string to_text(const outbox::DrainSummary& s) {
  char line[300];
  std::snprintf(line, sizeof line,
                "%lld published, %lld failed attempts, %lld parked; backlog %lld (oldest %.1f s), %lld parked rows "
                "holding %lld later rows, %.3f s\n",
                static_cast<long long>(s.published), static_cast<long long>(s.failed), static_cast<long long>(s.parked),
                static_cast<long long>(s.after.backlog), s.after.oldest_age_seconds,
                static_cast<long long>(s.after.parked), static_cast<long long>(s.after.held), s.seconds);
  return (s.error.empty() ? "" : "error: " + s.error + "\n") + std::string(line);
}

metrics::PushOutcome push(const metrics::PushTarget& target, const outbox::DrainSummary& s, bool success,
                          double seconds) {
  std::vector<metrics::RunFigure> figures = {
      {"published", "Outbox rows published and confirmed by this run", {}, static_cast<double>(s.published)},
      {"failed", "Publish attempts that failed in this run (nack, unroutable)", {}, static_cast<double>(s.failed)},
      {"parked", "Outbox rows parked by this run after the retry limit", {}, static_cast<double>(s.parked)},
      {"backlog", "Unpublished outbox rows (not parked)", {}, static_cast<double>(s.after.backlog)},
      {"oldest_age_seconds", "Age of the oldest unpublished outbox row", {}, s.after.oldest_age_seconds},
      {"parked_rows",
       "Outbox rows parked after the retry limit (kept, never deleted)",
       {},
       static_cast<double>(s.after.parked)},
      {"held_rows",
       "Outbox rows held behind a parked earlier row of their operation",
       {},
       static_cast<double>(s.after.held)},
  };
  return metrics::push_run_figures(target, "backstop_outbox_drain", figures, success, seconds);
}

}  // namespace

void OutboxDrainCommand::add_to(CLI::App& app) {
  app.add_option("--amqp-url", amqp_url_, "RabbitMQ URL amqp://user:password@host:port/vhost")
      ->envname("BACKSTOP_AMQP_URL")
      ->capture_default_str();
  app.add_option("--amqp-user", amqp_user_, "user (overrides the URL's; e.g. from a Secret)")
      ->envname("BACKSTOP_AMQP_USER");
  app.add_option("--amqp-password", amqp_password_, "password (overrides the URL's; prefer the environment)")
      ->envname("BACKSTOP_AMQP_PASSWORD");
  app.add_option("--exchange", exchange_, "durable topic exchange the events are published to")
      ->envname("BACKSTOP_AMQP_EXCHANGE")
      ->capture_default_str();
  app.add_option("--batch-size", batch_size_, "rows per transaction and confirm batch")
      ->check(CLI::Range(1, 10000))
      ->envname("BACKSTOP_BATCH_SIZE")
      ->capture_default_str();
  app.add_flag("--once", once_, "drain what is ready now, then exit (CronJob); default: run until SIGTERM");
  app.add_flag("--json", json_, "print the run summary as JSON");
  app.add_flag("--no-mandatory", no_mandatory_,
               "do not treat unroutable messages (no queue bound for the routing key) as failures");
  app.add_option("--poll-interval-ms", poll_interval_ms_, "wait when nothing was ready (continuous mode)")
      ->check(CLI::Range(1, 60000))
      ->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms_, "broker connect / confirm timeout")
      ->check(CLI::Range(100, 600000))
      ->capture_default_str();
  app.add_option("--max-retries", max_retries_, "failed attempts before a row is parked")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--retry-backoff-ms", retry_backoff_ms_, "wait after a row's first failure, doubled per retry")
      ->check(CLI::Range(0, 3600000))
      ->capture_default_str();
  app.add_option("--max-backoff-ms", max_backoff_ms_, "longest wait between a row's attempts")
      ->check(CLI::Range(0, 86400000))
      ->capture_default_str();
  app.add_option("--pushgateway-url", pushgateway_url_, "push the run's metrics here (http://host:port)")
      ->envname("BACKSTOP_PUSHGATEWAY_URL");
  app.add_option("--metrics-instance", metrics_instance_, "grouping label of this drainer's metrics")
      ->envname("BACKSTOP_METRICS_INSTANCE");
  auto* list = app.add_flag("--list-parked", list_parked_,
                            "print the parked rows (past --max-retries) with their last error, then exit");
  auto* requeue = app.add_flag("--requeue-parked", requeue_parked_,
                               "give parked rows a fresh retry budget (after fixing the cause), then exit; the next "
                               "drain publishes them first, then the rows they held");
  list->excludes(requeue);
  app.add_option("--operation", operation_, "with --list-parked / --requeue-parked: only this operation's rows")
      ->check(CLI::PositiveNumber);
}

runtime::ExitCode OutboxDrainCommand::run_parked(const runtime::CommonOptions& common) const {
  const std::optional<std::int64_t> only = operation_ > 0 ? std::optional<std::int64_t>(operation_) : std::nullopt;
  auto connection = store::connect(common.database_url, "backstop-outbox-drain");
  store::require_migrated(*connection);
  std::vector<store::ParkedRow> rows;
  if (requeue_parked_) {
    store::UnitOfWork tx(*connection);
    rows = store::OutboxRepository::requeue_parked(tx, only);
    tx.commit();
  } else {
    store::ReadOnlyWork tx(*connection);
    rows = store::OutboxRepository::parked(tx, only);
  }
  nlohmann::json listed = nlohmann::json::array();
  for (const store::ParkedRow& row : rows) {
    if (requeue_parked_) {
      log::info("parked outbox row re-queued", {{"outbox_id", row.outbox_id},
                                                {"operation", row.operation_id},
                                                {"routing_key", row.routing_key},
                                                {"retry_count", static_cast<std::int64_t>(row.retry_count)},
                                                {"held_rows", row.held},
                                                {"last_error", row.last_error}});
    }
    listed.push_back({{"outbox_id", row.outbox_id},
                      {"operation_id", row.operation_id},
                      {"routing_key", row.routing_key},
                      {"retry_count", row.retry_count},
                      {"parked_at", row.parked_at},
                      {"held_rows", row.held},
                      {"last_error", row.last_error}});
  }
  const char* verb = requeue_parked_ ? "requeued" : "parked";
  if (json_) {
    std::cout << nlohmann::json{{verb, rows.size()}, {"rows", listed}}.dump() << "\n";
  } else {
    for (const store::ParkedRow& row : rows) {
      std::cout << "outbox " << row.outbox_id << "  operation " << row.operation_id << "  " << row.routing_key
                << "  retries " << row.retry_count << "  parked " << row.parked_at << "  holding " << row.held
                << "\n    last error: " << row.last_error << "\n";
    }
    std::cout << rows.size() << " parked row(s)" << (requeue_parked_ ? " re-queued" : "") << "\n";
  }
  std::cout << std::flush;
  return runtime::ExitCode::kOk;
}

runtime::ExitCode OutboxDrainCommand::run(const runtime::CommonOptions& common) {
  if (operation_ > 0 && !list_parked_ && !requeue_parked_) {
    throw runtime::UsageError("--operation goes with --list-parked or --requeue-parked");
  }
  if (list_parked_ || requeue_parked_) {
    return run_parked(common);
  }
  std::optional<metrics::PushTarget> target;
  if (!pushgateway_url_.empty()) {
    target = metrics::parse_pushgateway_url(pushgateway_url_);
    target->job = "backstop_outbox_drain";
    if (!metrics_instance_.empty()) target->labels["instance"] = metrics_instance_;
  }
  outbox::BrokerConfig broker;
  broker.url = amqp_url_;
  if (!amqp_user_.empty()) broker.user = amqp_user_;
  if (!amqp_password_.empty()) broker.password = amqp_password_;
  broker.timeout = std::chrono::milliseconds(timeout_ms_);
  outbox::check_broker_config(broker);  // a malformed URL is exit 2 before anything else
  outbox::DrainOptions options;
  options.exchange = exchange_;
  options.batch_size = static_cast<std::size_t>(batch_size_);
  options.mandatory = !no_mandatory_;
  options.retry.max_retries = max_retries_;
  options.retry.backoff = std::chrono::milliseconds(retry_backoff_ms_);
  options.retry.max_backoff = std::chrono::milliseconds(max_backoff_ms_);

  const std::atomic<bool>& stop_requested = runtime::install_stop_signals();
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  auto connection = store::connect(common.database_url, "backstop-outbox-drain");
  store::require_migrated(*connection);
  auto second = store::connect(common.database_url, "backstop-outbox-drain");
  outbox::Drainer drainer(*connection, *second, options);
  std::unique_ptr<outbox::AmqpPublisher> publisher;
  outbox::DrainSummary total;
  auto reconnect_delay = std::chrono::milliseconds(500);
  auto next_push = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  metrics::PushRecord pushes;
  auto last_progress = std::chrono::steady_clock::now();
  while (!stop_requested) {
    try {
      if (!publisher) {
        publisher = std::make_unique<outbox::AmqpPublisher>(broker);
        log::info("connected to RabbitMQ", {{"url", outbox::redact_url(broker.url)}, {"exchange", exchange_}});
        reconnect_delay = std::chrono::milliseconds(500);
      }
      const outbox::DrainSummary round = drainer.round(*publisher);
      accumulate(total, round);
      if (round.published + round.failed > 0) {
        last_progress = std::chrono::steady_clock::now();
      } else {
        if (once_) {
          // Rows still due but held by another drainer right now: --once
          // waits for them, up to --timeout-ms without progress of its own.
          store::ReadOnlyWork tx(*connection);
          if (store::OutboxRepository::due(tx) == 0 ||
              std::chrono::steady_clock::now() - last_progress > std::chrono::milliseconds(timeout_ms_)) {
            break;
          }
        }
        runtime::sleep_unless_stopped(std::chrono::milliseconds(poll_interval_ms_));
      }
    } catch (const outbox::BrokerError& e) {
      // Whatever was not confirmed goes out again after reconnecting.
      publisher.reset();
      total.broker_error = true;
      total.error = e.what();
      log::error("RabbitMQ unavailable; unconfirmed rows stay unpublished",
                 {{"error", e.what()}, {"retry_in_ms", static_cast<std::int64_t>(reconnect_delay.count())}});
      if (once_) break;
      runtime::sleep_unless_stopped(reconnect_delay);
      reconnect_delay = std::min(reconnect_delay * 2, std::chrono::milliseconds(30000));
    }
    if (target && std::chrono::steady_clock::now() >= next_push) {
      store::ReadOnlyWork tx(*connection);
      total.after = store::OutboxRepository::stats(tx);
      pushes.add(push(*target, total, !total.broker_error, elapsed()));
      next_push = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    }
  }
  {
    store::ReadOnlyWork tx(*connection);
    total.after = store::OutboxRepository::stats(tx);
  }
  total.seconds = elapsed();
  const bool broker_down = once_ && total.broker_error;
  // Pushed before printing, so that the summary says whether it went through;
  // a failed push is reported, never a failed drain.
  if (target) pushes.add(push(*target, total, !broker_down, total.seconds));
  const metrics::PushRecord* reported = target ? &pushes : nullptr;
  if (json_) {
    nlohmann::json j = to_json(total);
    metrics::add_push_fields(j, reported);
    std::cout << j.dump() << "\n";
  } else {
    std::cout << to_text(total) << metrics::push_text(reported);
  }
  std::cout << std::flush;
  if (broker_down) return runtime::ExitCode::kDependencyUnavailable;
  return total.parked > 0 ? runtime::ExitCode::kPartialFailure : runtime::ExitCode::kOk;
}

}  // namespace backstop::app
