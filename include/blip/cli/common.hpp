#pragma once
#include <iosfwd>
#include <optional>
#include <string>

#include "blip/config/config.hpp"

namespace blip {

// Loads and validates the configuration directory; prints every error to
// `err` as file:line:col: message and returns nullopt when there are any.
std::optional<LoadedConfig> load_config_or_report(const std::string& config_dir, std::ostream& err);

}  // namespace blip
