#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

// The time-of-hour pattern: do outages start at a regular time (every hour at
// :00, every 15 minutes, daily at 03:00 UTC, Sundays at 02:00)? Pure code over
// plain data.

namespace blip {

inline constexpr int64_t kPatternWeekMs = 604'800'000;

// The periods tried when none is forced, shortest first.
inline constexpr std::array<int64_t, 16> kPatternPeriodsMs{
    60'000,     120'000,    300'000,    600'000,        900'000,    1'200'000,
    1'800'000,  3'600'000,  7'200'000,  10'800'000,     14'400'000, 21'600'000,
    28'800'000, 43'200'000, 86'400'000, kPatternWeekMs,
};

// A period needs this many outages and this many cycles of observed time to be tested.
inline constexpr int kPatternMinOutages = 3;
inline constexpr int kPatternMinCycles = 3;
// Below this many starts a period's p-value is exact (a Monte Carlo test
// against the observed time); from here on the Rayleigh test's tail, which is
// accurate at this size, stands in for it.
inline constexpr int kPatternExactBelow = 50;

struct PatternInput {
  // Outage start times, ms since the Unix epoch (any order; starts outside the range are ignored).
  std::vector<int64_t> start_ms;
  // Time blip was watching within the range, blind windows excluded: what the
  // rule of three cycles counts.
  int64_t observed_ms = 0;
  // [range_start_ms, range_end_ms): start it no earlier than blip's first sample.
  int64_t range_start_ms = 0;
  int64_t range_end_ms = 0;
  // [start, end) spans blip was not watching (blind windows; they may overlap
  // each other or reach outside the range). No outage can start in them, so
  // random starts are spread over the rest of the range, and a gap that
  // covers some phases more than others does not pass for a schedule.
  std::vector<std::pair<int64_t, int64_t>> blind_ms;
  // Starts less than this after the previous start count once: a flapping
  // probe's outages are one event, not independent evidence of a schedule
  // (an incident's outages of several probes are counted once by passing the
  // incidents' starts). 0 counts every start.
  int64_t coalesce_within_ms = 30'000;
  // What a start is, in words: "outage" or "incident".
  std::string noun = "outage";
};

// The statistics of the outage starts folded by one period, and their cluster.
struct PeriodFinding {
  int64_t period_ms = 0;
  // The cluster is the arc of phases that stands out most from an even
  // background (a scan statistic: the arc whose count most exceeds its
  // width's share). Its members alone give the phase and the window, so a
  // few outages at other times do not pull them. Computed for the finding
  // (the longest significant period, or a forced one); zero for the other
  // candidates, whose words give only their significance.
  // Median phase of the members, in [0, period), folded on Unix epoch time:
  // 0 is the top of the hour for 1h, midnight UTC for 24h, Thursday 00:00 UTC for 7d.
  double phase_ms = 0;
  double window_start_ms = 0;  // phase of the first member: the arc is [start, start + window_ms]
  double window_ms = 0;        // width of the smallest arc that holds every member
  double within_ms = 0;        // the farthest member from phase_ms
  double spread_ms = 0;        // robust standard deviation of the members: 1.4826 × their MAD
  double share = 0;            // in_cluster / outages
  int in_cluster = 0;          // members of the cluster
  int outages = 0;             // starts folded (after coalescing)
  double cycles = 0;           // observed time / period
  double mean_resultant_length = 0;  // R̄ in [0, 1], over all folded starts
  // Rayleigh's Z against the observed time: n R̄² when blip watched every phase
  // equally, corrected for the phases blind windows or a part cycle left out.
  double rayleigh_z = 0;
  double p_value = 1;
  // How p_value was found: "monte_carlo" (exact, below kPatternExactBelow
  // starts), "arc_bound" (an exact upper bound for tight clusters) or
  // "asymptotic" (Rayleigh's tail with Zar's correction).
  std::string p_method;
  bool significant = false;  // p_value below the result's per_period_threshold
  std::string phase_words;   // "+00:00:12 past the hour", "Sunday 03:00:05 UTC"
  // "every 1h: 336 of 353 outages began within 1s of +00:00:06 past the hour,
  // 17 others at other times (p < 0.0001)"
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
// tests whether their phases cluster more than starts spread at random over
// the observed time would. `significance` is the overall false-positive
// rate, shared among the periods tested.
PatternResult find_period(const PatternInput& input, std::optional<int64_t> forced_period_ms = {},
                          double significance = 0.01);

// find_period's results kept on their whole input, for a caller that asks again and again about
// a history that has mostly not changed (the feed rebuilds every second): an equal input (starts,
// range, observed and blind time, words, period, significance) gives the kept result without the
// search. Not thread-safe: one per caller.
class PatternMemo {
 public:
  PatternResult find(const PatternInput& input, std::optional<int64_t> forced_period_ms = {},
                     double significance = 0.01);
  // Forgets the results not asked for since the last call, so that it holds one round's.
  void next_round();
  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }
  size_t size() const { return current_.size() + previous_.size(); }

 private:
  struct Entry {
    PatternInput input;
    std::optional<int64_t> forced_period_ms;
    double significance = 0;
    PatternResult result;
  };
  // By a hash of the whole input; an entry matches only if all of it is the same.
  using Entries = std::unordered_multimap<uint64_t, Entry>;
  Entries current_;   // asked for this round
  Entries previous_;  // asked for last round
  int64_t hits_ = 0;
  int64_t misses_ = 0;
};

// The Rayleigh test's p-value for n unit vectors with resultant length R = n R̄
// and phases uniform on the circle: the smaller of Zar's approximation and the
// exact arc bound. (find_period tests against the observed time instead.)
double rayleigh_p_value(int n, double resultant_length);

// "1m", "15m", "1h", "24h", "7d": how periods are named in words and JSON.
std::string period_name(int64_t period_ms);

// Whether `start_ms` falls in the finding's cluster window.
bool in_cluster_window(const PeriodFinding& finding, int64_t start_ms);

// Counts per hour of the day (UTC), e.g. of outage starts.
struct HourOfDayHistogram {
  std::array<int64_t, 24> bins{};
  void add(int64_t wall_ms, int64_t weight = 1);
  int64_t total() const;
};

}  // namespace blip
