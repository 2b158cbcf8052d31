#pragma once
#include <optional>
#include <string>

namespace blip {

// Sets up the logger on stderr: `level` one of trace, debug, info, warn,
// error, off; `format` text ("2026-11-25T14:00:03.250Z warning outage: opened
// probe=web ...") or json (one object per line: time, level, component, event,
// each key=value as a field, and the whole message). Returns the problem with
// a bad value.
std::optional<std::string> configure_logging(const std::string& level, const std::string& format);

}  // namespace blip
