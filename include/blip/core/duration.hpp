#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace blip {

// Parses "250ms", "2s", "5m", "1h", "7d" and sums like "1m30s" into milliseconds.
// Returns nullopt with `error` set when the text is not a duration.
std::optional<int64_t> parse_duration_ms(std::string_view text, std::string* error = nullptr);

// The shortest exact spelling: 250 -> "250ms", 90000 -> "1m30s".
std::string format_duration_ms(int64_t ms);

// For people reading reports: "2.79s", "27.8s", "4m32s", "2h05m", "3d04h".
std::string format_duration_brief(int64_t ms);

}  // namespace blip
