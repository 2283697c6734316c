// trailing-stop: move trailing stops (Hand-Span or an offset), each step exactly once.
#include "app/run_guarded.h"
#include "app/trailing_stop_command.h"

int main(int argc, char** argv) {
  CLI::App app{"Backstop trailing stop: one pass (or --continuous / --stream) over trailing ACTIVE operations",
               "trailing-stop"};
  backstop::runtime::CommonOptions common;
  backstop::app::TrailingStopCommand command;
  backstop::runtime::add_common_options(app, common);
  command.add_to(app);
  if (const auto exit_code = backstop::runtime::parse_command_line(app, argc, argv, common, "trailing-stop")) {
    return *exit_code;
  }
  return backstop::app::run_guarded([&] { return command.run(common); });
}
