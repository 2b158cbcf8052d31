#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>

namespace blip {

// Tells, as a probe's outage opens, whether its recent outages recur at a
// regular time (the report's period finding over the last day), so the alert
// can say "3rd outage at about +00:20:00 past the hour", and says when such a
// pattern is first found.
class OutagePhaseTracker {
 public:
  static constexpr int64_t kWindowMs = 86'400'000;
  struct Observation {
    std::string phase_text;                  // empty without a significant pattern
    std::optional<std::string> newly_found;  // the finding in words, the first time it holds
  };
  Observation opened(const std::string& probe, int64_t start_ms, int64_t watching_since_ms);

 private:
  std::map<std::string, std::deque<int64_t>> starts_;
  std::set<std::string> found_;
};

}  // namespace blip
