// reconcile: an exchange account's ACTIVE operations against its balances and trades.
#include "app/reconcile_command.h"
#include "app/run_guarded.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Backstop reconcile: one pass (or --continuous) comparing an exchange account's ACTIVE operations "
      "with its balances and trades",
      "reconcile"};
  backstop::runtime::CommonOptions common;
  backstop::app::ReconcileCommand command;
  backstop::runtime::add_common_options(app, common);
  command.add_to(app);
  if (const auto exit_code = backstop::runtime::parse_command_line(app, argc, argv, common, "reconcile")) {
    return *exit_code;
  }
  return backstop::app::run_guarded([&] { return command.run(common); });
}
