// migrate: schema migrations and projection replay. See `migrate --help`.
#include "app/migrate_command.h"
#include "app/run_guarded.h"

int main(int argc, char** argv) {
  CLI::App app{"Backstop schema migrations: up, down, status, plan, verify, repair, replay", "migrate"};
  backstop::runtime::CommonOptions common;
  backstop::app::MigrateCommand command;
  backstop::runtime::add_common_options(app, common);
  command.add_to(app);
  if (const auto exit_code = backstop::runtime::parse_command_line(app, argc, argv, common, "migrate")) {
    return *exit_code;
  }
  return backstop::app::run_guarded([&] { return command.run(common); });
}
