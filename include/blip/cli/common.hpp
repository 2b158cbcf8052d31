#pragma once
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

#include "blip/config/config.hpp"
#include "blip/report/report.hpp"

namespace blip {

class Store;

// Loads and validates the configuration directory; prints every error to
// `err` as file:line:col: message and returns nullopt when there are any.
// A token given outside the configuration: `env_name` when set, else the first line of
// `token_file` when one is named. nullopt when neither is (look in the configuration); an empty
// string when the file cannot be read (said on `err`, after `command`).
std::optional<std::string> token_outside_config(const char* env_name, const std::string& token_file,
                                                std::string_view command, std::ostream& err);

std::optional<LoadedConfig> load_config_or_report(const std::string& config_dir, std::ostream& err);

// The range of `--since` or `--from`/`--to` (ISO-8601 UTC; --to defaults to now), as `blip
// report` and `blip export` read them; prints what is wrong to `err` and returns nullopt.
std::optional<ReportRange> resolve_range(const std::string& since, const std::string& from,
                                         const std::string& to, std::ostream& err);

// Whether `--probe` names a probe or job of the store; prints the known names to `err` if not.
bool known_probe_or_report(const Store& store, const std::string& probe, const std::string& db_path,
                           std::ostream& err);

// RFC 4180 quoting for free text; a cell a spreadsheet would run as a formula
// (=, +, -, @, tab, CR first) is neutralised with a leading apostrophe.
std::string csv_field(const std::string& text);

}  // namespace blip
