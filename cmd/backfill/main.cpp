// backfill: percent -> absolute stops and genesis events. See `backfill --help`.
#include "app/backfill_command.h"
#include "app/run_guarded.h"

int main(int argc, char** argv) {
  CLI::App app{"Backstop backfill: absolute stop/target levels and genesis events for ACTIVE operations", "backfill"};
  backstop::runtime::CommonOptions common;
  backstop::app::BackfillCommand command;
  backstop::runtime::add_common_options(app, common);
  command.add_to(app);
  if (const auto exit_code = backstop::runtime::parse_command_line(app, argc, argv, common, "backfill")) {
    return *exit_code;
  }
  return backstop::app::run_guarded([&] { return command.run(common); });
}
