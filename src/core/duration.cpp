#include "blip/core/duration.hpp"

#include <fmt/format.h>

#include <array>
#include <utility>

namespace blip {
namespace {
constexpr std::array<std::pair<std::string_view, int64_t>, 5> kUnits{{
    {"ms", 1},
    {"s", 1000},
    {"m", 60'000},
    {"h", 3'600'000},
    {"d", 86'400'000},
}};
constexpr int64_t kMaxDurationMs = int64_t{100} * 365 * 86'400'000;  // a century is plenty
}  // namespace

std::optional<int64_t> parse_duration_ms(std::string_view text, std::string* error) {
  auto fail = [&](std::string_view why) -> std::optional<int64_t> {
    if (error)
      *error = fmt::format(
          "invalid duration \"{}\": {} (write whole numbers with a unit: 250ms, 2s, 5m, 1h, 7d)",
          text, why);
    return std::nullopt;
  };
  if (text.empty()) return fail("empty");
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] < '0' || text[i] > '9') return fail("expected a number");
    int64_t number = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      number = number * 10 + (text[i++] - '0');
      if (number > kMaxDurationMs) return fail("too large");
    }
    size_t unit_start = i;
    while (i < text.size() && (text[i] < '0' || text[i] > '9')) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    if (unit.empty()) return fail("missing unit");
    int64_t scale = 0;
    for (const auto& [name, factor] : kUnits) {
      if (unit == name) scale = factor;
    }
    if (scale == 0) return fail(fmt::format("unknown unit \"{}\"", unit));
    if (number > kMaxDurationMs / scale || total + number * scale > kMaxDurationMs)
      return fail("too large");
    total += number * scale;
  }
  return total;
}

std::string format_duration_ms(int64_t ms) {
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  for (auto it = kUnits.rbegin(); it != kUnits.rend(); ++it) {
    if (ms >= it->second) {
      out += fmt::format("{}{}", ms / it->second, it->first);
      ms %= it->second;
    }
  }
  return out;
}

std::string format_duration_brief(int64_t ms) {
  if (ms < 0) return "-" + format_duration_brief(-ms);
  const double seconds = static_cast<double>(ms) / 1000.0;
  if (ms < 10'000) return fmt::format("{:.2f}s", seconds);
  if (ms < 60'000) return fmt::format("{:.1f}s", seconds);
  if (ms < 3'600'000) return fmt::format("{}m{:02}s", ms / 60'000, ms / 1000 % 60);
  if (ms < 86'400'000) return fmt::format("{}h{:02}m", ms / 3'600'000, ms / 60'000 % 60);
  return fmt::format("{}d{:02}h", ms / 86'400'000, ms / 3'600'000 % 24);
}

}  // namespace blip
