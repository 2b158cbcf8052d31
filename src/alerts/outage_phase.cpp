#include "blip/alerts/outage_phase.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "blip/analysis/pattern.hpp"

namespace blip {
namespace {

std::string ordinal(int n) {
  const int tens = n % 100;
  const char* suffix = (tens >= 11 && tens <= 13) ? "th"
                       : n % 10 == 1              ? "st"
                       : n % 10 == 2              ? "nd"
                       : n % 10 == 3              ? "rd"
                                                  : "th";
  return fmt::format("{}{}", n, suffix);
}

}  // namespace

OutagePhaseTracker::Observation OutagePhaseTracker::opened(const std::string& probe,
                                                           int64_t start_ms,
                                                           int64_t watching_since_ms) {
  std::deque<int64_t>& starts = starts_[probe];
  starts.push_back(start_ms);
  while (!starts.empty() && starts.front() < start_ms - kWindowMs) starts.pop_front();
  PatternInput input;
  input.start_ms.assign(starts.begin(), starts.end());
  input.range_start_ms = std::max(watching_since_ms, start_ms - kWindowMs);
  input.range_end_ms = start_ms + 1;
  input.observed_ms = input.range_end_ms - input.range_start_ms;
  const PatternResult result = find_period(input);
  Observation observation;
  if (result.outcome != PatternResult::Outcome::pattern || !result.finding) {
    found_.erase(probe);
    return observation;
  }
  // The report's finding, word for word; this outage is counted in it only if it falls in its
  // window.
  const PeriodFinding& finding = *result.finding;
  observation.phase_text =
      in_cluster_window(finding, start_ms)
          ? fmt::format("{} outage at about {} (every {})", ordinal(finding.in_cluster),
                        finding.phase_words, period_name(finding.period_ms))
          : fmt::format("outside the pattern: outages recur every {} at about {}",
                        period_name(finding.period_ms), finding.phase_words);
  if (found_.insert(probe).second)
    observation.newly_found = fmt::format("{}: {}", probe, result.verdict);
  return observation;
}

}  // namespace blip
