#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

// The time-of-hour pattern: do outages start at a regular time (every hour at
// :00, every 15 minutes, daily at 03:00 UTC)? Pure code over plain data.

namespace blip {

// The periods tried when none is forced, shortest first.
inline constexpr std::array<int64_t, 15> kPatternPeriodsMs{
    60'000,    120'000,    300'000,    600'000,    900'000,    1'200'000,  1'800'000,  3'600'000,
    7'200'000, 10'800'000, 14'400'000, 21'600'000, 28'800'000, 43'200'000, 86'400'000,
};

// A period needs this many outages and this many cycles of observed time to be tested.
inline constexpr int kPatternMinOutages = 3;
inline constexpr int kPatternMinCycles = 3;

struct PatternInput {
  // Outage start times, ms since the Unix epoch (any order; starts outside the range are ignored).
  std::vector<int64_t> start_ms;
  // Time blip was watching within the range, blind windows excluded.
  int64_t observed_ms = 0;
  // [range_start_ms, range_end_ms): start it no earlier than blip's first sample.
  int64_t range_start_ms = 0;
  int64_t range_end_ms = 0;
  // Starts less than this after the previous start count once: the outages of
  // several probes in one incident, or a flapping probe, are one event, not
  // independent evidence of a schedule. 0 counts every start.
  int64_t coalesce_within_ms = 30'000;
};

// The statistics of the outage starts folded by one period.
struct PeriodFinding {
  int64_t period_ms = 0;
  // Mean phase in [0, period), folded on Unix epoch time: 0 is the top of the
  // hour for 1h, midnight UTC for 24h.
  double phase_ms = 0;
  // Circular standard deviation sqrt(-2 ln R̄), in ms, at most period/2.
  double spread_ms = 0;
  // Half-width of the cluster that `share` counts: two spreads, at most period/4.
  double window_ms = 0;
  double share = 0;    // fraction of the tested starts within ±window_ms of the phase
  int in_cluster = 0;  // how many starts that is
  int outages = 0;     // starts tested: those in the last whole cycles of the range
  double cycles = 0;   // observed time / period
  double mean_resultant_length = 0;  // R̄ in [0, 1]
  double rayleigh_z = 0;             // n R̄²
  double p_value = 1;                // Rayleigh test against uniformly spread starts
  bool significant = false;          // p_value below the result's per_period_threshold
  std::string phase_words;           // "+00:00:12 past the hour"
  // "every 1h: 10 of 10 outages began within 10.0s of +00:00:12 past the hour
  // (spread 0.00s, p < 0.0001)"
  std::string words;
};

struct PatternResult {
  enum class Outcome { pattern, no_pattern, not_enough_data };
  Outcome outcome = Outcome::not_enough_data;
  // The longest significant period; with a forced period, its statistics
  // whenever there is enough data, significant or not.
  std::optional<PeriodFinding> finding;
  std::string verdict;                    // one plain sentence for people
  std::vector<PeriodFinding> candidates;  // every period tested, shortest first
  bool forced = false;
  double significance = 0;  // the family-wise false-positive rate asked for
  // Bonferroni: significance / periods tested, so that the chance of any
  // finding in data without a pattern stays below `significance`.
  double per_period_threshold = 0;
  int periods_tested = 0;
  int outages_in_range = 0;
  int independent_starts = 0;  // after coalescing starts that came together
};

// Folds the starts by each candidate period (or only `forced_period_ms`) and
// tests with the Rayleigh test whether their phases cluster. `significance`
// is the overall false-positive rate, shared among the periods tested.
PatternResult find_period(const PatternInput& input, std::optional<int64_t> forced_period_ms = {},
                          double significance = 0.01);

// The Rayleigh test's p-value for n unit vectors with resultant length R = n R̄.
double rayleigh_p_value(int n, double resultant_length);

// "1m", "15m", "1h", "24h": how periods are named in words and JSON.
std::string period_name(int64_t period_ms);

// Counts per hour of the day (UTC), e.g. of outage starts.
struct HourOfDayHistogram {
  std::array<int64_t, 24> bins{};
  void add(int64_t wall_ms, int64_t weight = 1);
  int64_t total() const;
};

}  // namespace blip
