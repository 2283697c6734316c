// Flags, environment and config file, the same way in every binary:
// a command-line flag wins over its environment variable, which wins over the
// YAML config file (--config or BACKSTOP_CONFIG), which wins over the default.
// The database URL comes from --database-url / BACKSTOP_DATABASE_URL; when
// neither is set libpq's own PG* variables (PGHOST, PGPORT, ...) apply.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace backstop::runtime {

struct CommonOptions {
  std::string database_url;
  std::string config_file;
  std::string log_level = "info";
  std::string log_format = "auto";
};

// The common options, and --version (add_version_flag).
void add_common_options(CLI::App& app, CommonOptions& options);

// --version: prints version_line(app's name) on stdout and exits 0 (through
// parse_command_line, or CLI11_PARSE for a binary without the common options).
void add_version_flag(CLI::App& app);

// Parses the command line and starts logging. Returns the exit code to stop
// with (0 after --help, 2 for a usage or config error, printed to stderr), or
// nullopt to go on.
[[nodiscard]] std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, const CommonOptions& options,
                                                    std::string_view program);

}  // namespace backstop::runtime
