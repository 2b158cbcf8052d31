#include "blip/analysis/pattern_null.hpp"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

namespace blip {
namespace {

constexpr int64_t kWeekMs = 604'800'000;
constexpr int64_t kMidnightMonday = 1'795'392'000'000;  // 2026-11-23T00:00:00Z, a Monday

double log_uniform(std::mt19937_64& random, double low, double high) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  return std::exp(std::log(low) + (std::log(high) - std::log(low)) * unit(random));
}

}  // namespace

PatternInput random_null_history(std::mt19937_64& random, const NullHistorySettings& settings) {
  const auto outages = static_cast<int>(std::lround(
      log_uniform(random, settings.min_outages, static_cast<double>(settings.max_outages))));
  const auto range_ms =
      static_cast<int64_t>(log_uniform(random, static_cast<double>(settings.min_range_ms),
                                       static_cast<double>(settings.max_range_ms)));
  std::uniform_int_distribution<int64_t> week_offset(0, kWeekMs - 1);
  PatternInput input;
  input.range_start_ms = kMidnightMonday + week_offset(random);
  input.range_end_ms = input.range_start_ms + range_ms;

  std::uniform_int_distribution<int> windows(settings.min_blind_windows,
                                             settings.max_blind_windows);
  const int wanted = windows(random);
  const auto blind_allowed =
      static_cast<int64_t>(settings.max_blind_share * static_cast<double>(range_ms));
  int64_t blind_total = 0;
  for (int window = 0; window < wanted; ++window) {
    const auto length = static_cast<int64_t>(log_uniform(random, 5'000.0, 2.0 * 86'400'000));
    if (blind_total + length > blind_allowed) continue;
    std::uniform_int_distribution<int64_t> start(input.range_start_ms, input.range_end_ms - length);
    const int64_t from = start(random);
    const bool overlaps = std::any_of(
        input.blind_ms.begin(), input.blind_ms.end(),
        [&](const auto& span) { return from < span.second && from + length > span.first; });
    if (overlaps) continue;
    input.blind_ms.emplace_back(from, from + length);
    blind_total += length;
  }
  input.observed_ms = range_ms - blind_total;

  // Uniform over the watched time: draw an offset into it and skip the blind spans before it.
  std::vector<std::pair<int64_t, int64_t>> blind = input.blind_ms;
  std::sort(blind.begin(), blind.end());
  std::uniform_int_distribution<int64_t> offset(0, input.observed_ms - 1);
  input.start_ms.reserve(static_cast<size_t>(outages));
  for (int outage = 0; outage < outages; ++outage) {
    int64_t at = input.range_start_ms + offset(random);
    for (const auto& [from, until] : blind) {
      if (at >= from) at += until - from;
    }
    input.start_ms.push_back(at);
  }
  return input;
}

FalseDiscoveryTally count_false_discoveries(int64_t histories, uint64_t seed, double significance,
                                            const NullHistorySettings& settings) {
  std::mt19937_64 random(seed);
  FalseDiscoveryTally tally;
  for (int64_t history = 0; history < histories; ++history) {
    const PatternInput input = random_null_history(random, settings);
    const PatternResult result = find_period(input, std::nullopt, significance);
    ++tally.histories;
    const bool found = result.outcome == PatternResult::Outcome::pattern;
    tally.with_finding += found ? 1 : 0;
    size_t band = 0;
    while (band + 1 < FalseDiscoveryTally::kBandStarts.size() &&
           result.outages_in_range >= FalseDiscoveryTally::kBandStarts[band + 1]) {
      ++band;
    }
    ++tally.band_histories[band];
    tally.band_findings[band] += found ? 1 : 0;
    for (const PeriodFinding& candidate : result.candidates) {
      for (FalseDiscoveryCount* count :
           {&tally.by_period[candidate.period_ms],
            &tally.by_method[candidate.p_method == "asymptotic" ? "asymptotic" : "exact"]}) {
        ++count->tests;
        count->significant += candidate.significant ? 1 : 0;
        count->allowed += result.per_period_threshold;
      }
    }
  }
  return tally;
}

}  // namespace blip
