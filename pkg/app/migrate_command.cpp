#include "app/migrate_command.h"

#include <iostream>
#include <nlohmann/json.hpp>

#include "runtime/log.h"
#include "store/db.h"
#include "store/event_store.h"
#include "store/migrations.h"

namespace backstop::app {
namespace {

void print(bool json, const nlohmann::json& document, const std::string& text) {
  if (json) {
    std::cout << document.dump(2) << "\n";
  } else {
    std::cout << text;
  }
}

nlohmann::json run_json(const store::RunResult& r) {
  nlohmann::json j = {{"migrations", r.migrations}};
  if (!r.rebuilt_indexes.empty()) j["rebuilt_indexes"] = r.rebuilt_indexes;
  if (r.backup) j["backup"] = r.backup->string();
  return j;
}

std::string run_text(const store::RunResult& r, const char* verb) {
  std::string text;
  for (const auto& i : r.rebuilt_indexes) text += "rebuilt missing or INVALID index " + i + "\n";
  if (r.backup) text += "backup: " + r.backup->string() + "\n";
  if (r.migrations.empty()) return text + (r.rebuilt_indexes.empty() ? "nothing to do\n" : "");
  for (const auto& m : r.migrations) text += std::string(verb) + " " + m + "\n";
  return text;
}

}  // namespace

void MigrateCommand::add_to(CLI::App& app) {
  app.require_subcommand(1);
  // Options may come after the subcommand too, as the README writes them
  // (`migrate status --json`): what a subcommand does not know goes to `migrate`.
  app.fallthrough();
  app.add_option("--migrations-dir", migrations_dir_,
                 "read migrations from this directory instead of those built into the binary")
      ->envname("BACKSTOP_MIGRATIONS_DIR");
  app.add_option("--backup-dir", backup_dir_, "take a pg_dump backup here before changing anything")
      ->envname("BACKSTOP_BACKUP_DIR");
  app.add_option("--lock-timeout-ms", lock_timeout_ms_, "lock_timeout for each migration's statements")
      ->check(CLI::Range(1, 600000))
      ->capture_default_str();
  app.add_option("--runner-lock-wait", runner_lock_wait_s_, "seconds to wait for another runner")
      ->check(CLI::Range(0, 86400))
      ->capture_default_str();
  app.add_flag("--json", json_, "machine-readable output");

  up_ = app.add_subcommand("up", "apply pending migrations");
  up_->add_option("--target", target_, "stop after this version");
  down_ = app.add_subcommand("down", "revert the last N applied migrations (default 1)");
  down_->add_option("count", down_count_, "how many")->check(CLI::PositiveNumber);
  down_->add_flag("--allow-data-loss", allow_data_loss_, "revert even if tables that would be dropped hold rows");
  status_ = app.add_subcommand("status", "list migrations and their state");
  plan_ = app.add_subcommand("plan", "dry run: what `up` would apply");
  plan_->add_option("--target", target_, "stop after this version");
  verify_ = app.add_subcommand("verify", "check the expected tables, columns, indexes and constraints exist");
  repair_ = app.add_subcommand("repair",
                               "clear failed migration records, drop INVALID indexes (rebuilding those of applied "
                               "migrations)");
  replay_ = app.add_subcommand("replay", "rebuild projections from stop_events and compare with the live rows");
  replay_->add_flag("--rewrite", rewrite_, "replace the live projections where they differ");
}

runtime::ExitCode MigrateCommand::run(const runtime::CommonOptions& common) {
  using runtime::ExitCode;
  try {
    if (replay_->parsed()) {
      auto connection = store::connect(common.database_url, "backstop-replay");
      store::require_migrated(*connection);
      const store::ReplayReport r = store::EventStore::replay(*connection, rewrite_);
      std::string text = "replayed " + std::to_string(r.events) + " events into " + std::to_string(r.executions) +
                         " executions and " + std::to_string(r.operations) + " operations\n";
      for (const auto& d : r.differences) text += "DIFFERENT " + d + "\n";
      text += r.differences.empty() ? "projections are identical to the rebuild\n"
                                    : (r.rewritten ? "live projections rewritten from the events\n"
                                                   : std::to_string(r.differences.size()) + " differences\n");
      print(json_,
            {{"events", r.events},
             {"executions", r.executions},
             {"operations", r.operations},
             {"differences", r.differences},
             {"rewritten", r.rewritten}},
            text);
      return r.differences.empty() || r.rewritten ? ExitCode::kOk : ExitCode::kPartialFailure;
    }

    store::MigratorOptions options;
    options.database_url = common.database_url;
    if (!backup_dir_.empty()) options.backup_dir = backup_dir_;
    options.lock_timeout = std::chrono::milliseconds(lock_timeout_ms_);
    options.runner_lock_wait = std::chrono::seconds(runner_lock_wait_s_);
    options.allow_data_loss = allow_data_loss_;
    store::Migrator migrator(
        migrations_dir_.empty() ? store::embedded_migrations() : store::load_migrations(migrations_dir_), options);

    if (up_->parsed()) {
      const auto r = migrator.up(target_);
      print(json_, run_json(r), run_text(r, "applied"));
    } else if (down_->parsed()) {
      const auto r = migrator.down(down_count_);
      print(json_, run_json(r), run_text(r, "reverted"));
    } else if (status_->parsed() || plan_->parsed()) {
      nlohmann::json list = nlohmann::json::array();
      std::string text;
      if (status_->parsed()) {
        for (const auto& s : migrator.status()) {
          nlohmann::json j = {{"version", s.version},
                              {"name", s.name},
                              {"state", store::to_string(s.state)},
                              {"transactional", s.transactional}};
          char line[256];
          std::snprintf(line, sizeof line, "%04d %-32s %-18s", s.version, s.name.c_str(),
                        store::to_string(s.state).c_str());
          text += line;
          if (s.applied) {
            j["applied_at"] = s.applied->applied_at;
            j["execution_time_ms"] = s.applied->execution_time_ms;
            j["checksum"] = s.applied->checksum;
            if (s.applied->error_message) j["error_message"] = *s.applied->error_message;
            text += " " + s.applied->applied_at + " (" + std::to_string(s.applied->execution_time_ms) + " ms)";
            if (s.applied->error_message) text += "\n     error: " + *s.applied->error_message;
          }
          text += "\n";
          list.push_back(j);
        }
      } else {
        for (const auto& m : migrator.plan(target_)) {
          list.push_back(
              {{"version", m.version}, {"name", m.name}, {"transactional", m.transactional}, {"checksum", m.checksum}});
          text += "would apply " + m.label() + (m.transactional ? "" : " (no transaction)") + "\n";
        }
        if (list.empty()) text = "nothing to apply\n";
      }
      print(json_, list, text);
    } else if (verify_->parsed()) {
      const auto r = migrator.verify();
      std::string text;
      for (const auto& p : r.problems) text += "PROBLEM " + p + "\n";
      for (const auto& w : r.warnings) text += "warning " + w + "\n";
      if (r.problems.empty()) text += "schema verified\n";
      print(json_, {{"ok", r.problems.empty()}, {"problems", r.problems}, {"warnings", r.warnings}}, text);
      return r.problems.empty() ? ExitCode::kOk : ExitCode::kPartialFailure;
    } else if (repair_->parsed()) {
      const auto r = migrator.repair();
      std::string text;
      for (const auto& f : r.cleared_failures) text += "cleared failed record " + f + "\n";
      for (const auto& i : r.dropped_invalid_indexes) text += "dropped INVALID index " + i + "\n";
      for (const auto& i : r.rebuilt_indexes) text += "rebuilt INVALID index " + i + "\n";
      if (text.empty()) text = "nothing to repair\n";
      print(json_,
            {{"cleared_failures", r.cleared_failures},
             {"dropped_invalid_indexes", r.dropped_invalid_indexes},
             {"rebuilt_indexes", r.rebuilt_indexes}},
            text);
    }
    return ExitCode::kOk;
  } catch (const store::MigrationError& e) {
    log::error(e.what());
    if (json_) std::cout << nlohmann::json({{"error", e.what()}}).dump(2) << "\n";
    return ExitCode::kPartialFailure;
  }
}

}  // namespace backstop::app
