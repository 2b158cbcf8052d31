#include "blip/cli/common.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <ostream>
#include <string_view>

#include "blip/core/clock.hpp"
#include "blip/core/duration.hpp"
#include "blip/store/store.hpp"

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

std::optional<ReportRange> resolve_range(const std::string& since, const std::string& from,
                                         const std::string& to, std::ostream& err) {
  const int64_t now = wall_now_ms();
  ReportRange range{0, now, now};
  if (!from.empty() || !to.empty()) {
    if (!from.empty() && !parse_iso8601_ms(from, range.from_ms)) {
      err << fmt::format(
          "--from: cannot read \"{}\" as an ISO-8601 UTC time (2026-11-25T14:00:00Z)\n", from);
      return std::nullopt;
    }
    if (!to.empty() && !parse_iso8601_ms(to, range.to_ms)) {
      err << fmt::format(
          "--to: cannot read \"{}\" as an ISO-8601 UTC time (2026-11-25T14:00:00Z)\n", to);
      return std::nullopt;
    }
  } else {
    std::string problem;
    auto since_ms = parse_duration_ms(since, &problem);
    if (!since_ms) {
      err << "--since: " << problem << '\n';
      return std::nullopt;
    }
    range.from_ms = now - *since_ms;
  }
  if (range.from_ms >= range.to_ms) {
    err << "the range is empty: --from must be before --to\n";
    return std::nullopt;
  }
  range.open_until_ms = std::min(range.to_ms, now);
  return range;
}

bool known_probe_or_report(const Store& store, const std::string& probe, const std::string& db_path,
                           std::ostream& err) {
  auto names = store.probe_names();
  if (std::find(names.begin(), names.end(), probe) != names.end()) return true;
  err << fmt::format("--probe: no probe named \"{}\" in {} (known: {})\n", probe, db_path,
                     fmt::join(names, ", "));
  return false;
}

std::string csv_field(const std::string& text) {
  const std::string cell =
      !text.empty() && std::string_view("=+-@\t\r").find(text.front()) != std::string_view::npos
          ? "'" + text
          : text;
  if (cell.find_first_of(",\"\n") == std::string::npos) return cell;
  std::string quoted = "\"";
  for (char c : cell) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::optional<std::string> token_outside_config(const char* env_name, const std::string& token_file,
                                                std::string_view command, std::ostream& err) {
  if (const char* token = std::getenv(env_name); token && *token) return std::string(token);
  if (token_file.empty()) return std::nullopt;
  std::ifstream in(token_file);
  std::string token;
  if (!in || !std::getline(in, token) || token.empty()) {
    err << fmt::format("{}: cannot read a token from {}\n", command, token_file);
    return std::string();
  }
  return token;
}

}  // namespace blip
