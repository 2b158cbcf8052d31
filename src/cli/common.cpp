#include "blip/cli/common.hpp"

#include <ostream>

namespace blip {

std::optional<LoadedConfig> load_config_or_report(const std::string& config_dir,
                                                  std::ostream& err) {
  LoadedConfig loaded = load_config_directory(config_dir);
  // Warnings show beside errors, but only errors stop the command.
  for (const ConfigError& error : loaded.errors) err << error.to_string() << '\n';
  for (ConfigError warning : loaded.warnings) {
    warning.message = "warning: " + warning.message;
    err << warning.to_string() << '\n';
  }
  if (!loaded.ok()) return std::nullopt;
  return loaded;
}

}  // namespace blip
