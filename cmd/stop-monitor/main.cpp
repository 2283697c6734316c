// stop-monitor: detect triggered stops and targets, execute each exit exactly once.
#include "app/run_guarded.h"
#include "app/stop_monitor_command.h"

int main(int argc, char** argv) {
  CLI::App app{"Backstop stop monitor: one pass (or --continuous) over ACTIVE operations", "stop-monitor"};
  backstop::runtime::CommonOptions common;
  backstop::app::StopMonitorCommand command;
  backstop::runtime::add_common_options(app, common);
  command.add_to(app);
  if (const auto exit_code = backstop::runtime::parse_command_line(app, argc, argv, common, "stop-monitor")) {
    return *exit_code;
  }
  return backstop::app::run_guarded([&] { return command.run(common); });
}
