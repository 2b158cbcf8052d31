#include "blip/core/sample.hpp"

#include <algorithm>
#include <array>

namespace blip {
namespace {
constexpr std::array<std::string_view, 4> kStatusNames{"up", "degraded", "down", "blind"};
constexpr std::array<std::string_view, kErrorClassCount> kErrorNames{
    "none",          "timeout",        "refused",     "dns",      "tls",         "http_status",
    "body_mismatch", "body_too_large", "redirects",   "reset",    "protocol",    "auth",
    "lag",           "query",          "unreachable", "internal", "replication", "late",
    "overrunning",   "failed"};
}  // namespace

std::string_view to_string(Status status) { return kStatusNames.at(static_cast<size_t>(status)); }

std::string_view to_string(ErrorClass error) {
  auto index = static_cast<size_t>(error);
  return index < kErrorNames.size() ? kErrorNames[index] : "unknown";
}

std::optional<Status> parse_status(std::string_view text) {
  for (size_t i = 0; i < kStatusNames.size(); ++i) {
    if (kStatusNames[i] == text) return static_cast<Status>(i);
  }
  return std::nullopt;
}

std::optional<ErrorClass> parse_error_class(std::string_view text) {
  for (size_t i = 0; i < kErrorNames.size(); ++i) {
    if (kErrorNames[i] == text) return static_cast<ErrorClass>(i);
  }
  return std::nullopt;
}

std::string sanitize_target_text(std::string given, size_t max_bytes) {
  // Printable ASCII within the cap, not ending in a space: nothing to do.
  if (given.size() <= max_bytes && (given.empty() || given.back() != ' ') &&
      std::all_of(given.begin(), given.end(), [](char c) { return c >= 0x20 && c < 0x7f; })) {
    return given;
  }
  const std::string_view text = given;
  std::string out;
  // One character past the cap is enough to know that it was cut.
  for (size_t at = 0; at < text.size() && out.size() <= max_bytes;) {
    const auto lead = static_cast<unsigned char>(text[at]);
    if (lead < 0x80) {
      ++at;
      if (lead == '\n' || lead == '\r' || lead == '\t') {
        if (!out.empty() && out.back() != ' ') out += ' ';  // a line break or tab: one space
      } else if (lead >= 0x20 && lead != 0x7f) {
        out += static_cast<char>(lead);
      }  // every other control character (ESC of an ANSI sequence included) goes
      continue;
    }
    // A well-formed UTF-8 sequence (no overlongs, no surrogates), else U+FFFD for one byte.
    const size_t length = lead >= 0xc2 && lead <= 0xdf   ? 2
                          : lead >= 0xe0 && lead <= 0xef ? 3
                          : lead >= 0xf0 && lead <= 0xf4 ? 4
                                                         : 0;
    bool valid = length > 0 && at + length <= text.size();
    for (size_t i = 1; valid && i < length; ++i)
      valid = (static_cast<unsigned char>(text[at + i]) & 0xc0) == 0x80;
    if (valid && length >= 3) {
      const auto second = static_cast<unsigned char>(text[at + 1]);
      valid = !(lead == 0xe0 && second < 0xa0) && !(lead == 0xed && second >= 0xa0) &&
              !(lead == 0xf0 && second < 0x90) && !(lead == 0xf4 && second >= 0x90);
    }
    if (!valid) {
      out += "\xef\xbf\xbd";
      ++at;
      continue;
    }
    const bool c1_control = lead == 0xc2 && static_cast<unsigned char>(text[at + 1]) < 0xa0;
    if (!c1_control) out.append(text.substr(at, length));
    at += length;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (out.size() > max_bytes) {
    const std::string_view ellipsis = "\xe2\x80\xa6";
    size_t end = max_bytes > ellipsis.size() ? max_bytes - ellipsis.size() : 0;
    while (end > 0 && (static_cast<unsigned char>(out[end]) & 0xc0) == 0x80)
      --end;  // a character's start
    out.erase(end);
    out += ellipsis;
  }
  return out;
}

}  // namespace blip
