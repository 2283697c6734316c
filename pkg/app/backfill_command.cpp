#include "app/backfill_command.h"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "runtime/log.h"
#include "store/backfill.h"
#include "store/db.h"
#include "store/migrations.h"

namespace backstop::app {
namespace {

std::string show(const std::optional<core::Decimal>& d) { return d ? d->to_string() : "-"; }

nlohmann::json to_json(const store::BackfillSummary& s) {
  nlohmann::json changes = nlohmann::json::array();
  for (const auto& c : s.changes) {
    nlohmann::json j = {{"operation_id", c.operation_id}, {"side", c.side}};
    if (c.entry_price) j["entry_price"] = c.entry_price->to_string();
    if (c.stop_price) j["stop_price"] = c.stop_price->to_string();
    if (c.target_price) j["target_price"] = c.target_price->to_string();
    j["stop_from_percent"] = c.stop_from_percent;
    j["target_from_percent"] = c.target_from_percent;
    changes.push_back(j);
  }
  nlohmann::json problems = nlohmann::json::array();
  for (const auto& p : s.problems) problems.push_back({{"operation_id", p.operation_id}, {"reason", p.reason}});
  return {{"dry_run", s.dry_run},
          {"batches", s.batches},
          {"scanned", s.scanned},
          {"configured", s.configured},
          {"stops_converted", s.stops_converted},
          {"targets_converted", s.targets_converted},
          {"already_done", s.already_done},
          {"nothing_to_configure", s.nothing_to_configure},
          {"invalid", s.invalid},
          {"seconds", s.seconds},
          {"changes", changes},
          {"problems", problems}};
}

std::string to_text(const store::BackfillSummary& s) {
  std::string text = s.dry_run ? "backfill (DRY RUN: nothing written)\n" : "backfill\n";
  constexpr std::size_t kShown = 50;
  for (std::size_t i = 0; i < s.changes.size() && i < kShown; ++i) {
    const auto& c = s.changes[i];
    text += "  op " + std::to_string(c.operation_id) + " " + c.side + " entry " + show(c.entry_price) + ": stop " +
            show(c.stop_price) + (c.stop_from_percent ? " (from %)" : "") + ", target " + show(c.target_price) +
            (c.target_from_percent ? " (from %)" : "") + "\n";
  }
  if (s.changes.size() > kShown) text += "  ... " + std::to_string(s.changes.size() - kShown) + " more\n";
  for (std::size_t i = 0; i < s.problems.size() && i < kShown; ++i) {
    text += "  op " + std::to_string(s.problems[i].operation_id) + " NOT backfilled: " + s.problems[i].reason + "\n";
  }
  char line[512];
  std::snprintf(line, sizeof line,
                "scanned %lld in %lld batches, %s %lld genesis events (%lld stops and %lld targets from %%), "
                "%lld invalid, %lld with nothing to configure, %lld done by a concurrent run, %.3f s\n",
                static_cast<long long>(s.scanned), static_cast<long long>(s.batches),
                s.dry_run ? "would write" : "wrote", static_cast<long long>(s.configured),
                static_cast<long long>(s.stops_converted), static_cast<long long>(s.targets_converted),
                static_cast<long long>(s.invalid), static_cast<long long>(s.nothing_to_configure),
                static_cast<long long>(s.already_done), s.seconds);
  return text + line;
}

}  // namespace

void BackfillCommand::add_to(CLI::App& app) {
  app.add_option("--batch-size", batch_size_, "operations per transaction")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_flag("--dry-run", dry_run_, "decide and report, write nothing");
  app.add_flag("--json", json_, "print the summary as JSON");
}

runtime::ExitCode BackfillCommand::run(const runtime::CommonOptions& common) {
  auto connection = store::connect(common.database_url, "backstop-backfill");
  store::require_migrated(*connection);
  store::BackfillOptions options;
  options.batch_size = batch_size_;
  options.dry_run = dry_run_;
  const store::BackfillSummary summary = store::run_backfill(*connection, options);
  std::cout << (json_ ? to_json(summary).dump(2) + "\n" : to_text(summary));
  log::info("backfill finished",
            {{"configured", summary.configured}, {"invalid", summary.invalid}, {"dry_run", summary.dry_run}});
  return summary.invalid > 0 ? runtime::ExitCode::kPartialFailure : runtime::ExitCode::kOk;
}

}  // namespace backstop::app
