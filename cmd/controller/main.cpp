// controller: reconcile StopMonitor resources into CronJobs, with leader election and metrics.
#include "app/controller_command.h"
#include "app/run_guarded.h"

int main(int argc, char** argv) {
  CLI::App app{"Backstop controller: StopMonitor resources -> CronJobs, status, leader election, metrics",
               "controller"};
  backstop::runtime::CommonOptions common;
  backstop::app::ControllerCommand command;
  backstop::runtime::add_common_options(app, common);
  command.add_to(app);
  if (const auto exit_code = backstop::runtime::parse_command_line(app, argc, argv, common, "controller")) {
    return *exit_code;
  }
  return backstop::app::run_guarded([&] { return command.run(common); });
}
