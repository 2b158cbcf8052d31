#include "blip/core/sample.hpp"

#include <array>

namespace blip {
namespace {
constexpr std::array<std::string_view, 4> kStatusNames{"up", "degraded", "down", "blind"};
constexpr std::array<std::string_view, kErrorClassCount> kErrorNames{
    "none",          "timeout",  "refused",  "dns",      "tls",      "http_status",
    "body_mismatch", "body_too_large", "redirects", "reset", "protocol", "auth",
    "lag",           "query",    "unreachable", "internal", "replication"};
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

}  // namespace blip
