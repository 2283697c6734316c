#include "runtime/cli.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <iostream>

#include "runtime/build_info.h"
#include "runtime/exit_code.h"
#include "runtime/log.h"

namespace backstop::runtime {
namespace {

// YAML config files for CLI11: keys are the long flag names without dashes
// ("database-url: ..."), nested maps address subcommands, lists give repeated values.
// An option whose environment variable is set is skipped here, so that the
// environment wins over the file (CLI11 alone would let the file win).
class YamlConfig : public CLI::Config {
 public:
  explicit YamlConfig(const CLI::App* app) : app_(app) {}

  std::string to_config(const CLI::App*, bool, bool, std::string) const override {
    throw CLI::ConfigError("writing YAML config files is not supported");
  }

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::vector<CLI::ConfigItem> result;
    try {
      const YAML::Node root = YAML::Load(input);
      if (root.IsNull()) return result;
      if (!root.IsMap()) throw CLI::ConfigError("the top level must be a map of option: value");
      collect(root, {}, result);
    } catch (const YAML::Exception& e) {
      throw CLI::ConfigError("line " + std::to_string(e.mark.line + 1) + ", column " +
                             std::to_string(e.mark.column + 1) + ": " + e.msg);
    }
    return result;
  }

 private:
  bool overridden_by_environment(const std::vector<std::string>& parents, const std::string& key) const {
    const CLI::App* scope = app_;
    for (const auto& parent : parents) {
      const auto subcommands = scope->get_subcommands([&](const CLI::App* sub) { return sub->get_name() == parent; });
      if (subcommands.empty()) return false;
      scope = subcommands.front();
    }
    const CLI::Option* option = scope->get_option_no_throw("--" + key);
    return option != nullptr && !option->get_envname().empty() && std::getenv(option->get_envname().c_str()) != nullptr;
  }

  void collect(const YAML::Node& map, const std::vector<std::string>& parents,
               std::vector<CLI::ConfigItem>& out) const {
    for (const auto& entry : map) {
      const auto key = entry.first.as<std::string>();
      const YAML::Node& value = entry.second;
      CLI::ConfigItem item;
      item.parents = parents;
      item.name = key;
      if (value.IsMap()) {
        auto nested = parents;
        nested.push_back(key);
        collect(value, nested, out);
        continue;
      }
      if (value.IsSequence()) {
        for (const auto& element : value) {
          if (!element.IsScalar()) {
            throw CLI::ConfigError("line " + std::to_string(element.Mark().line + 1) + ": '" + key +
                                   "' must be a list of plain values");
          }
          item.inputs.push_back(element.as<std::string>());
        }
      } else if (value.IsScalar()) {
        item.inputs.push_back(value.as<std::string>());
      } else {
        throw CLI::ConfigError("line " + std::to_string(value.Mark().line + 1) + ": '" + key + "' has no value");
      }
      if (!overridden_by_environment(parents, key)) out.push_back(std::move(item));
    }
  }

  const CLI::App* app_;
};

// For a binary made of subcommands (migrate) called without a valid one: the
// word it was given, if any, and the valid names, instead of CLI11's "A
// subcommand is required" or "The following argument was not expected".
std::optional<std::string> subcommand_problem(CLI::App& app, const CLI::ParseError& error) {
  if (dynamic_cast<const CLI::RequiredError*>(&error) == nullptr &&
      dynamic_cast<const CLI::ExtrasError*>(&error) == nullptr) {
    return std::nullopt;
  }
  const auto all = app.get_subcommands([](const CLI::App*) { return true; });
  if (all.empty() || !app.get_subcommands().empty()) return std::nullopt;
  std::string names;
  for (const CLI::App* sub : all) names += (names.empty() ? "" : ", ") + sub->get_name();
  const std::vector<std::string> unparsed = app.remaining();
  if (unparsed.empty()) return "a subcommand is required: " + names;
  if (unparsed.front().rfind('-', 0) == 0) {
    return "unknown option '" + unparsed.front() + "'; a subcommand is required: " + names;
  }
  return "unknown subcommand '" + unparsed.front() + "'; valid subcommands: " + names;
}

}  // namespace

void add_version_flag(CLI::App& app) {
  app.set_version_flag("--version", version_line(app.get_name()), "print the version and the commit, then exit");
}

void add_common_options(CLI::App& app, CommonOptions& options) {
  add_version_flag(app);
  app.config_formatter(std::make_shared<YamlConfig>(&app));
  app.allow_config_extras(false);
  // CLI11 reads the config file before the environment, so BACKSTOP_CONFIG is
  // applied as the default file name (and then it must exist).
  const char* config_from_env = std::getenv("BACKSTOP_CONFIG");
  app.set_config("--config", config_from_env != nullptr ? config_from_env : "",
                 "YAML config file (keys are the long option names); env BACKSTOP_CONFIG",
                 config_from_env != nullptr && *config_from_env != '\0');
  app.add_option("--database-url", options.database_url,
                 "PostgreSQL URL or key=value conninfo; empty: libpq PG* variables")
      ->envname("BACKSTOP_DATABASE_URL");
  app.add_option("--log-level", options.log_level, "trace, debug, info, warn, error")
      ->envname("BACKSTOP_LOG_LEVEL")
      ->capture_default_str();
  app.add_option("--log-format", options.log_format, "auto (JSON unless stderr is a terminal), json, text")
      ->envname("BACKSTOP_LOG_FORMAT")
      ->capture_default_str();
}

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, const CommonOptions& options,
                                      std::string_view program) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string message = subcommand_problem(app, e).value_or(e.what());
    const std::string extras_prefix = "INI was not able to parse ";
    if (message.rfind(extras_prefix, 0) == 0) {
      message = "unknown key '" + message.substr(extras_prefix.size()) + "'";
    }
    const CLI::Option* config = app.get_config_ptr();
    const std::string config_path = config != nullptr && config->count() > 0 ? config->as<std::string>() : "";
    if (dynamic_cast<const CLI::ConfigError*>(&e) != nullptr || message.rfind("unknown key", 0) == 0) {
      message =
          "config file " + (config_path.empty() ? std::string("(BACKSTOP_CONFIG)") : config_path) + ": " + message;
    }
    std::cerr << program << ": " << message << "\n"
              << "Run with --help for usage.\n";
    return static_cast<int>(ExitCode::kUsage);
  }
  try {
    log::init(program, log::parse_format(options.log_format), options.log_level);
  } catch (const UsageError& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return static_cast<int>(ExitCode::kUsage);
  }
  return std::nullopt;
}

}  // namespace backstop::runtime
