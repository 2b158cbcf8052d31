#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <random>
#include <string>

#include "blip/analysis/pattern.hpp"

// Outage histories without a schedule, to measure how often the period finder
// claims one anyway: its false-discovery rate, which must stay at the
// significance it claims. tests/analysis/pattern_test.cpp runs a few thousand;
// bench/pattern_false_discovery the full simulation (docs/benchmarks.md).

namespace blip {

struct NullHistorySettings {
  // Outages in the range, log-uniform: from a quiet probe's few to a flaky one's hundreds.
  int min_outages = 5;
  int max_outages = 500;
  // The range, log-uniform: a new install's hours to the feed's month and more.
  int64_t min_range_ms = 6 * 3'600'000LL;
  int64_t max_range_ms = 35 * 86'400'000LL;
  // Blind windows (restarts, a frozen VM, a day switched off): up to this many,
  // each 5 s to 2 days long (log-uniform), together at most this share of the range.
  int min_blind_windows = 0;
  int max_blind_windows = 4;
  double max_blind_share = 0.3;
};

// One history: a range starting at a random time of the week, blind windows in
// it, and outage starts placed uniformly over the time blip was watching (a
// Poisson process, given how many there are).
PatternInput random_null_history(std::mt19937_64& random, const NullHistorySettings& settings = {});

struct FalseDiscoveryCount {
  int64_t tests = 0;
  int64_t significant = 0;
  double allowed = 0;  // the sum of the thresholds applied: the significant tests Bonferroni allows
};

struct FalseDiscoveryTally {
  int64_t histories = 0;
  int64_t with_finding = 0;  // histories in which a pattern was claimed
  std::map<int64_t, FalseDiscoveryCount> by_period;
  std::map<std::string, FalseDiscoveryCount> by_method;  // "monte_carlo", "arc_bound", "asymptotic"
  // Histories and findings by outages in range: [5, 10), [10, 50), [50, 200), [200, ...).
  static constexpr std::array<int, 4> kBandStarts{5, 10, 50, 200};
  std::array<int64_t, 4> band_histories{};
  std::array<int64_t, 4> band_findings{};
  double rate() const {
    return histories ? static_cast<double>(with_finding) / static_cast<double>(histories) : 0;
  }
};

// Runs `histories` random histories from `seed` through find_period at `significance`.
FalseDiscoveryTally count_false_discoveries(int64_t histories, uint64_t seed, double significance,
                                            const NullHistorySettings& settings = {});

}  // namespace blip
