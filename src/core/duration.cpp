#include "blip/core/duration.hpp"

#include <fmt/format.h>

#include <array>
#include <limits>
#include <utility>

namespace blip {
namespace {
constexpr std::array<std::pair<std::string_view, int64_t>, 6> kUnits{{
    {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}, {"w", 604'800'000},
}};
}

std::optional<int64_t> parse_duration_ms(std::string_view text, std::string* error) {
  auto fail = [&](std::string message) -> std::optional<int64_t> {
    if (error) *error = std::move(message);
    return std::nullopt;
  };
  if (text.empty()) return fail("empty duration (write it like 250ms, 2s, 5m, 1h, 7d)");
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] < '0' || text[i] > '9') {
      return fail(fmt::format("invalid duration \"{}\" (write it like 250ms, 2s, 5m, 1h, 7d)", text));
    }
    int64_t number = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (number > std::numeric_limits<int64_t>::max() / 10 / 604'800'000) {
        return fail(fmt::format("duration \"{}\" is too large", text));
      }
      number = number * 10 + (text[i++] - '0');
    }
    size_t unit_start = i;
    while (i < text.size() && (text[i] < '0' || text[i] > '9')) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    int64_t scale = 0;
    for (const auto& [name, factor] : kUnits) {
      if (unit == name) scale = factor;
    }
    if (scale == 0) {
      return fail(fmt::format("invalid duration \"{}\": unknown or missing unit \"{}\" (use ms, s, m, h, d)",
                              text, unit));
    }
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
    if (it->first == "w") continue;
    if (ms >= it->second) {
      out += fmt::format("{}{}", ms / it->second, it->first);
      ms %= it->second;
    }
  }
  return out;
}

}  // namespace blip
