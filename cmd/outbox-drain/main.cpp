// outbox-drain: publish the outbox to RabbitMQ, confirmed, in order per operation.
#include "app/outbox_drain_command.h"
#include "app/run_guarded.h"

int main(int argc, char** argv) {
  CLI::App app{"Backstop outbox drain: publish stop events to RabbitMQ with publisher confirms", "outbox-drain"};
  backstop::runtime::CommonOptions common;
  backstop::app::OutboxDrainCommand command;
  backstop::runtime::add_common_options(app, common);
  command.add_to(app);
  if (const auto exit_code = backstop::runtime::parse_command_line(app, argc, argv, common, "outbox-drain")) {
    return *exit_code;
  }
  return backstop::app::run_guarded([&] { return command.run(common); });
}
